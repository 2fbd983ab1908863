"""The ``callboard`` CLI as a user runs it: real process, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from callboard.bot.config import ConfigError, load_settings


def _run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ.update({"CALLBOARD_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "callboard.bot.cli", *args],
        capture_output=True, text=True, env=environ, cwd=tmp_path, timeout=120,
    )


def test_ask_demo_catalog_from_anywhere(tmp_path: Path) -> None:
    done = _run(["ask", "who owns paymnet-servce?"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "payments-team" in done.stdout
    assert (tmp_path / "data" / "callboard.db").exists()  # the user's data dir, not the cwd
    assert not list(tmp_path.glob("*.db"))


def test_ask_exit_codes_and_json(tmp_path: Path) -> None:
    nothing = _run(["ask", "owner qqqq-zzzz-xxxx"], tmp_path)
    assert nothing.returncode == 1
    usage = _run(["ask", "frobnicate it"], tmp_path)
    assert usage.returncode == 2
    as_json = _run(["ask", "--format", "json", "owner checkout-api"], tmp_path)
    assert as_json.returncode == 0
    payload = json.loads(as_json.stdout)
    assert payload["status"] == "ok" and payload["owners"][0]["ref"] == "group:default/checkout-team"
    bad_option = _run(["ask", "--format", "xml", "owner x"], tmp_path)
    assert bad_option.returncode == 2


def test_sync_then_answer_from_database_as_is(tmp_path: Path) -> None:
    catalog = tmp_path / "cat"
    catalog.mkdir()
    (catalog / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: widget\n"
        "spec:\n  type: service\n  lifecycle: production\n  owner: widget-team\n"
        "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: [bad\n"
    )
    db = f"sqlite:///{tmp_path / 'mine.db'}"
    synced = _run(["sync", "--catalog", str(catalog), "--database-url", db], tmp_path)
    assert synced.returncode == 0, synced.stderr
    assert "1 added" in synced.stdout and "1 error" in synced.stdout
    assert "catalog-info.yaml:" in synced.stdout  # file and line of the error
    strict = _run(["sync", "--catalog", str(catalog), "--database-url", db, "--strict"], tmp_path)
    assert strict.returncode == 1
    answered = _run(["ask", "--database-url", db, "who owns widget"], tmp_path)
    assert answered.returncode == 0 and "widget-team" in answered.stdout
    # the database as it is: the demo catalog was not added
    demo = _run(["ask", "--database-url", db, "owner payment-service"], tmp_path)
    assert demo.returncode == 1


def test_bad_database_url_and_config(tmp_path: Path) -> None:
    bad = _run(["ask", "--database-url", "mysql://x/y", "help"], tmp_path)
    assert bad.returncode == 2 and "Unsupported database" in bad.stderr
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("catalog:\n  max_file_bytes: lots\n")
    broken = _run(["ask", "--config", str(cfg), "help"], tmp_path)
    assert broken.returncode == 2 and "catalog.max_file_bytes" in broken.stderr


def test_config_file_env_substitution_and_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("database:\n  url: ${DB_URL}\ncatalog:\n  locations: [./cat]\n  sync_interval: 60\n")
    settings = load_settings(config_file=str(cfg), env={"DB_URL": "sqlite:///x.db"})
    assert settings.database_url == "sqlite:///x.db"
    assert settings.catalog == (str((tmp_path / "cat").resolve()),)
    assert settings.sync_interval == 60
    with pytest.raises(ConfigError, match="database.url: environment variable DB_URL is not set"):
        load_settings(config_file=str(cfg), env={})
    cfg.write_text("catalog:\n  locaitons: []\n")
    with pytest.raises(ConfigError, match="catalog.locaitons"):
        load_settings(config_file=str(cfg), env={})
    cfg.write_text("databse: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'databse'"):
        load_settings(config_file=str(cfg), env={})
    env = {"CALLBOARD_CONFIG": str(cfg), "CALLBOARD_DATABASE_URL": "postgresql://u@h/db"}
    cfg.write_text("log:\n  level: info\n")
    assert load_settings(env=env).database_url == "postgresql://u@h/db"


def test_chat_reads_questions_from_a_pipe(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    environ["CALLBOARD_DATA_DIR"] = str(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "-m", "callboard.bot.cli", "chat"], input="who owns checkout-api\nteam sre-team\n",
        capture_output=True, text=True, env=environ, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "checkout-team" in done.stdout.lower() and "entities from the demo catalog" in done.stdout


def test_mine_in_the_terminal_uses_the_configured_email(tmp_path: Path) -> None:
    done = _run(["ask", "mine"], tmp_path, CALLBOARD_USER_EMAIL="priya.raman@acme.example.com")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "teams own" in done.stdout
    anonymous = _run(["ask", "mine"], tmp_path)
    assert anonymous.returncode == 1 and "CALLBOARD_USER_EMAIL" not in anonymous.stderr


def test_docs_settings_and_their_errors(tmp_path: Path) -> None:
    cfg = tmp_path / "callboard.yaml"
    cfg.write_text("docs:\n  store: ./site-store\n  build_timeout: 30\n  workers: 3\n  allow_hooks: true\n"
                   "backstage:\n  base_url: https://backstage.example.com/\nserver:\n  public_url: http://cb.example.com\n")
    s = load_settings(config_file=str(cfg), env={"GITHUB_TOKEN": "ghp_x", "GITHUB_API_URL": "https://ghe.example.com/api/v3"})
    assert s.effective_docs_store == str((tmp_path / "site-store").resolve())
    assert (s.docs_build_timeout, s.docs_workers, s.docs_allow_hooks) == (30.0, 3, True)
    assert s.backstage_base_url == "https://backstage.example.com" and s.public_url == "http://cb.example.com"
    assert s.github_token == "ghp_x" and "ghp_x" not in repr(s)  # secrets never in reprs or logs
    assert s.github_api_url == "https://ghe.example.com/api/v3"
    for text, message in (
        ("docs:\n  build_timeout: soon\n", "docs.build_timeout"),
        ("docs:\n  workers: -1\n", "docs.workers"),
        ("docs:\n  allow_hooks: maybe\n", "docs.allow_hooks"),
        ("docs:\n  store: ''\n", "docs.store"),
        ("docs:\n  stor: x\n", "docs.stor"),
        ("backstage:\n  base_url: backstage.example.com\n", "backstage.base_url"),
        ("server:\n  public_url: 3000\n", "server.public_url"),
    ):
        cfg.write_text(text)
        with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
            load_settings(config_file=str(cfg), env={})
    with pytest.raises(ConfigError, match="GITHUB_API_URL"):
        load_settings(env={"GITHUB_API_URL": "ghe.example.com"})
