"""The running bot (`rootcheck serve` and `rootcheck doctor`): wiring, scheduler, queue consumer,
the operations people and jobs ask for, and the monitor that turns sweeps into alerts."""
