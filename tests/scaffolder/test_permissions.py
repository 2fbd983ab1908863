"""Who may run which template: rules by name, ref and tag; membership counts up the group tree;
by default everyone runs everything; bad rules fail naming the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.config import ConfigError, load_settings
from callboard.scaffolder.model import TemplateDef
from callboard.scaffolder.permissions import Permissions, may_run, rules_from_config

from .org import RULES, write_org


async def _app(make_app: Callable[..., Any], tmp_path: Path, **settings: Any) -> Any:
    app = await make_app(f"sqlite:///{tmp_path / 'cb.db'}", **settings)
    summary = await app.sync((str(write_org(tmp_path / "org")),))
    assert not summary.errors, summary.errors
    return app


async def _templates(app: Any) -> dict[str, TemplateDef]:
    out = {}
    for name in ("python-service", "docs-site", "postgres-db"):
        found = await app.template(f"template:default/{name}")
        assert found is not None, name
        out[name] = found
    return out


async def test_rules_decide_by_group_membership_up_the_tree(make_app: Callable[..., Any], tmp_path: Path) -> None:
    app = await _app(make_app, tmp_path, scaffolder_permissions=RULES)
    try:
        t = await _templates(app)
        expected = {
            "user:default/ana": {"python-service", "docs-site"},  # platform-team is under engineering
            "user:default/bob": {"docs-site", "postgres-db"},
            "user:default/carl": {"docs-site"},
            None: {"docs-site"},  # nobody the catalog knows: only what no rule names
            "user:default/nobody": {"docs-site"},
        }
        for user, allowed in expected.items():
            assert {n for n, tpl in t.items() if await may_run(app, user, tpl)} == allowed, user
            runnable = await app.permissions.runnable(user, list(t.values()))
            assert {tpl.name for tpl in runnable} == allowed, user
        perms = Permissions(RULES, app.catalog)
        assert await perms.groups_of("user:default/ana") == {"group:default/platform-team", "group:default/engineering"}
    finally:
        await app.close()


async def test_by_default_everyone_runs_everything(make_app: Callable[..., Any], tmp_path: Path) -> None:
    app = await _app(make_app, tmp_path)
    try:
        for tpl in (await _templates(app)).values():
            assert await may_run(app, None, tpl) and await may_run(app, "user:default/carl", tpl)
    finally:
        await app.close()


def test_config_reads_the_rules(tmp_path: Path) -> None:
    path = tmp_path / "callboard.yaml"
    path.write_text("scaffolder:\n  permissions:\n    - templates: [python-service, template:ops/db]\n"
                    "      tags: [Production]\n      groups: [sre, group:ops/dba]\n")
    (rule,) = load_settings(config_file=str(path), env={}).scaffolder_permissions
    assert rule.templates == {"template:default/python-service", "template:ops/db"}
    assert rule.tags == {"production"} and rule.groups == {"group:default/sre", "group:ops/dba"}
    assert load_settings(env={}).scaffolder_permissions == ()


@pytest.mark.parametrize("rules, message", [
    ("x", "scaffolder.permissions must be a list of rules"),
    ("[{groups: [sre]}]", r"scaffolder.permissions\[0\] names no template"),
    ("[{templates: [a]}]", r"scaffolder.permissions\[0\].groups must list the groups"),
    ("[{templates: [a], groups: [sre], users: [x]}]", r"scaffolder.permissions\[0\]: unknown key 'users'"),
    ("[{templates: [a], groups: [user:default/ana]}]", r"groups\[0\]: 'user:default/ana' is a user, not a group"),
    ("[{templates: a, groups: [sre]}]", r"scaffolder.permissions\[0\].templates must be a list"),
    ("[{tags: [1], groups: [sre]}]", r"scaffolder.permissions\[0\].tags must be a list of tags"),
])
def test_bad_rules_name_the_key(tmp_path: Path, rules: str, message: str) -> None:
    path = tmp_path / "callboard.yaml"
    path.write_text(f"scaffolder:\n  permissions: {rules}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(config_file=str(path), env={})
    assert str(path) in str(caught.value)


def test_unknown_scaffolder_key(tmp_path: Path) -> None:
    path = tmp_path / "callboard.yaml"
    path.write_text("scaffolder:\n  permission: []\n")
    with pytest.raises(ConfigError, match="unknown key scaffolder.permission; known: .*scaffolder.permissions"):
        load_settings(config_file=str(path), env={})


def test_rules_from_config_none_is_no_rules() -> None:
    assert rules_from_config(None) == ()
