"""Tests of the Slack app: Block Kit alerts, the manifest, `rootcheck serve` over HTTP and Socket Mode."""
