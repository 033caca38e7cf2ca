"""Pure detectors: plain records and report rows in, findings out. No I/O, no clock, no env."""
