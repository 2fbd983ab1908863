"""Settings a database remembers: which ones, and who wins (bot/config.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from callboard.bot.config import REMEMBERED, Settings, load_settings, remembered, with_remembered


def test_only_settings_this_run_set_are_recorded_and_never_a_credential(tmp_path: Path) -> None:
    assert remembered(load_settings(env={})) == {}
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("oncall:\n  schedule_file: ops/rota.yaml\n  timeout: 2\n  pagerduty: {}\n")
    settings = load_settings(config_file=str(cfg), env={"PAGERDUTY_TOKEN": "pd-secret",
                                                        "OPSGENIE_API_URL": "https://api.eu.opsgenie.com"})
    record = remembered(settings)
    assert record == {"oncall_schedule_file": str((tmp_path / "ops" / "rota.yaml").resolve()),
                      "oncall_timeout": 2.0, "opsgenie_api_url": "https://api.eu.opsgenie.com"}
    assert "pd-secret" not in repr(record) and set(record) <= set(REMEMBERED)
    with_token = load_settings(env={"PAGERDUTY_API_URL": "https://user:pw@pd.example.com"})
    assert "pagerduty_api_url" not in remembered(with_token)  # a URL holding a credential is not kept


def test_what_this_run_sets_wins_over_the_record_and_the_record_over_defaults() -> None:
    record = {"oncall_schedule_file": "/srv/rota.yaml", "oncall_timeout": 7.0,
              "pagerduty_api_url": "https://api.eu.pagerduty.com", "opsgenie_api_url": "ftp://nope"}
    merged = with_remembered(Settings(oncall_timeout=2.0, explicit=frozenset({"oncall_timeout"})), record)
    assert merged.oncall_timeout == 2.0
    assert merged.oncall_schedule_file == "/srv/rota.yaml"
    assert merged.pagerduty_api_url == "https://api.eu.pagerduty.com"
    assert merged.opsgenie_api_url == "https://api.opsgenie.com"  # not a URL it could use: the default stays
    assert remembered(merged)["oncall_schedule_file"] == "/srv/rota.yaml"  # recorded again by its next sync
    assert with_remembered(Settings(), {"oncall_timeout": -1, "oncall_schedule_file": 3}) == Settings()


def test_the_scaffolder_actions_settings_are_checked_and_reach_the_actions(tmp_path: Path) -> None:
    """scaffolder.publish_dir (relative to the config file), github_hosts, github_timeout,
    default_author: checked at start with the key named, given to every action."""
    from callboard.bot.config import ConfigError, load_settings

    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("scaffolder:\n  publish_dir: ./repos\n  github_hosts: {ghe.example.com: 'https://ghe.example.com/api/v3/'}\n"
                   "  github_timeout: 10\n  default_author: {name: Platform, email: platform@example.com}\n"
                   "  max_skeleton_files: 500\n  max_skeleton_bytes: 1000000\n")
    settings = load_settings(config_file=str(cfg), env={})
    assert settings.scaffolder_actions == {
        "publish_dir": str(tmp_path / "repos"), "github_hosts": {"ghe.example.com": "https://ghe.example.com/api/v3"},
        "github_timeout": 10, "default_author": {"name": "Platform", "email": "platform@example.com"},
        "max_skeleton_files": 500, "max_skeleton_bytes": 1000000}
    for bad, named in [("github_hosts: [ghe.example.com]", "scaffolder.github_hosts"),
                       ("github_timeout: -1", "scaffolder.github_timeout"),
                       ("max_skeleton_files: 0", "scaffolder.max_skeleton_files"),
                       ("max_skeleton_bytes: lots", "scaffolder.max_skeleton_bytes"),
                       ("publish_dir: ''", "scaffolder.publish_dir"),
                       ("default_author: {name: x}", "scaffolder.default_author"),
                       ("publish_dri: ./x", "publish_dri")]:
        cfg.write_text(f"scaffolder:\n  {bad}\n")
        with pytest.raises(ConfigError, match=named):
            load_settings(config_file=str(cfg), env={})
