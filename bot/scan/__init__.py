"""The offline face (`rootcheck scan`): inputs, the analysis over many files, and terminal output.
An offline scan never imports boto3 or the Slack SDK unless an `s3://` path asks for it."""
