"""Credentials of the built-in apps, as request headers."""

DEMO = {"X-App-Key": "demo_app", "X-App-Secret": "demo_secret"}
