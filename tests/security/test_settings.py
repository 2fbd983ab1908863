"""Settings are trusted, but what they hold must not leak: reprs (which end up in logs and
tracebacks) mask every password and token."""

from __future__ import annotations

from pathlib import Path

import pytest

from callboard.bot.config import ConfigError, load_settings, mask_url

ENV = {
    "SLACK_BOT_TOKEN": "xoxb-bot-secret",
    "SLACK_SIGNING_SECRET": "signing-secret",
    "SLACK_APP_TOKEN": "xapp-app-secret",
    "GITHUB_TOKEN": "ghp_github_secret",
    "PAGERDUTY_TOKEN": "pd-secret",
    "OPSGENIE_API_KEY": "og-secret",
    "CALLBOARD_DATABASE_URL": "postgresql://callboard:db-pass-secret@db.internal:5432/callboard",
    "GITHUB_API_URL": "https://bot:gh-url-secret@github.corp.example/api/v3",
}


def test_repr_masks_every_secret() -> None:
    settings = load_settings(env=ENV, catalog=("https://reader:catalog-secret@git.corp.example/catalog.yaml",))
    shown = repr(settings)
    for secret in ("xoxb-bot-secret", "signing-secret", "xapp-app-secret", "ghp_github_secret", "pd-secret",
                   "og-secret", "db-pass-secret", "gh-url-secret", "catalog-secret"):
        assert secret not in shown, secret
    # what is not secret stays readable, so the repr is still useful in a log
    assert "postgresql://callboard:***@db.internal:5432/callboard" in shown
    assert "slack_bot_token='***'" in shown and "slack_app_token='***'" in shown
    assert settings.database_url == ENV["CALLBOARD_DATABASE_URL"]  # the value itself is intact


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
    ("https://token@h/x", "https://***@h/x"),  # a user info without a password is a token
    ("https://h/x?a=b@c", "https://h/x?a=b@c"),
    ("sqlite:///tmp/cb.db", "sqlite:///tmp/cb.db"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("reading:\n  allow: git.corp.example\n", "reading.allow must be a list"),
    ("reading:\n  allow: ['a b']\n", "reading.allow[0]"),
    ("reading:\n  allow: [{port: 80}]\n", "reading.allow[0]"),
    ("docs:\n  allow_env: 'yes'\n", "docs.allow_env must be true or false"),
    ("docs:\n  plugins: search\n", "docs.plugins must be a list"),
    ("reading:\n  deny: []\n", "unknown key reading.deny"),
])
def test_new_keys_name_what_is_wrong(tmp_path: Path, yaml_text: str, message: str) -> None:
    config = tmp_path / "callboard.yaml"
    config.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        load_settings(config_file=str(config), env={})


def test_reading_allow_reads_hosts_and_ranges(tmp_path: Path) -> None:
    config = tmp_path / "callboard.yaml"
    config.write_text("reading:\n  allow: [Git.Corp.Example, '*.corp.example', 10.0.0.0/8, {host: 'h:8080'}, {cidr: 'fd00::/8'}]\n")
    settings = load_settings(config_file=str(config), env={})
    assert settings.reading_allow == ("git.corp.example", "*.corp.example", "10.0.0.0/8", "h:8080", "fd00::/8")
