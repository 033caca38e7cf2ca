"""The only package (with bot/app.py) that imports slack_bolt / slack_sdk."""
