"""The Slack surface: slack-bolt adapter and Block Kit renderer."""
