"""catalog:register into the real catalog (SQLite and PostgreSQL): the new entity answers `owner`
through the real dispatcher right after the step, survives a later sync of the configured
catalog, and the undo a failed run calls leaves nothing registered. Files come from publish:file
(a real git repository) and from publish:github (the GitHub fake, read back over HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from callboard.scaffolder.actions.api import ActionError
from callboard.scaffolder.actions.publish import PUBLISH_FILE, PUBLISH_GITHUB
from callboard.scaffolder.actions.register import CATALOG_REGISTER
from callboard.storage import repo

from ..fakes.github import GitHubFake
from .test_publish import make_ctx

ORG = """\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: team-a
spec:
  type: team
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ana
spec:
  profile: {email: ana@example.com}
  memberOf: [team-a]
"""

SERVICE = """\
apiVersion: backstage.io/v1alpha1
kind: Location
metadata:
  name: generated-orders-location
spec:
  targets: []
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
spec:
  type: service
  lifecycle: experimental
  owner: team-a
"""


@pytest.fixture
async def rig(tmp_path: Path, make_app: Any, database_url: str) -> AsyncIterator[tuple[Any, Path]]:
    org = tmp_path / "org"
    org.mkdir()
    (org / "catalog-info.yaml").write_text(ORG)
    app = await make_app(database_url, resident=True)
    try:
        summary = await app.sync((str(org),))
        assert not summary.errors, summary.errors
        yield app, org
    finally:
        await app.close()


async def _publish(app: Any, tmp_path: Path, name: str, content: str | None = None) -> dict[str, Any]:
    workspace = tmp_path / f"ws-{name}"
    workspace.mkdir()
    (workspace / "catalog-info.yaml").write_text(content if content is not None else SERVICE.format(name=name))
    ctx, _ = make_ctx(workspace, {"repoUrl": f"github.com?owner=acme&repo={name}"}, app=app)
    await PUBLISH_FILE.run(ctx)
    return ctx.outputs


async def _entity_keys(app: Any) -> set[str]:
    async with app.engine.connect() as conn:
        return set(await repo.key_locations(conn))


async def test_registered_entity_answers_owner_at_once_and_stays(rig: tuple[Any, Path], tmp_path: Path,
                                                                 make_app: Any, database_url: str) -> None:
    app, org = rig
    assert (await app.ask("owner orders")).status.value != "ok"
    published = await _publish(app, tmp_path, "orders")
    ctx, lines = make_ctx(tmp_path, {"repoContentsUrl": published["repoContentsUrl"],
                                     "catalogInfoPath": "/catalog-info.yaml"}, app=app, step_id="register")
    await CATALOG_REGISTER.run(ctx)
    assert ctx.outputs == {"entityRef": "component:default/orders",
                           "catalogInfoUrl": f"{published['repoContentsUrl']}/catalog-info.yaml"}
    reply = await app.ask("owner orders")
    assert reply.status.value == "ok", reply.summary
    assert reply.data["entity"] == "component:default/orders"
    assert "group:default/team-a" in str(reply.data)
    assert any("Registered" in line for line in lines)
    # a later sync of the configured catalog keeps it, and so does a new process re-syncing
    summary = await app.sync((str(org),))
    assert not summary.errors and summary.removed == 0
    assert (await app.ask("owner orders")).status.value == "ok"
    other = await make_app(database_url)
    try:
        await other.sync(None)
        assert (await other.ask("owner orders")).status.value == "ok"
    finally:
        await other.close()


async def test_undo_after_a_later_failure_leaves_nothing_registered(rig: tuple[Any, Path], tmp_path: Path) -> None:
    app, org = rig
    before = await _entity_keys(app)
    published = await _publish(app, tmp_path, "billing")
    ctx, lines = make_ctx(tmp_path, {"catalogInfoUrl": f"{published['repoContentsUrl']}/catalog-info.yaml"},
                          app=app, step_id="register")
    await CATALOG_REGISTER.run(ctx)
    assert (await app.ask("owner billing")).status.value == "ok"
    assert CATALOG_REGISTER.undo is not None
    await CATALOG_REGISTER.undo(ctx)  # what the runner does when a later step fails
    assert (await app.ask("owner billing")).status.value != "ok"
    assert await _entity_keys(app) == before
    async with app.engine.connect() as conn:
        assert [r["target"] for r in await repo.root_locations(conn)] == [str(org / "catalog-info.yaml")]
    await app.sync((str(org),))  # and it does not come back
    assert await _entity_keys(app) == before
    assert any("Unregistered" in line for line in lines)


@pytest.mark.parametrize(("content", "message"), [
    ("kind: [unclosed\n", "could not be registered"),
    ("", "holds no entity"),
    (SERVICE.format(name="Not A Valid Name!"), "could not be registered"),
])
async def test_a_bad_catalog_file_fails_the_step_and_registers_nothing(
        rig: tuple[Any, Path], tmp_path: Path, content: str, message: str) -> None:
    app, _ = rig
    before = await _entity_keys(app)
    published = await _publish(app, tmp_path, "broken", content)
    ctx, _ = make_ctx(tmp_path, {"repoContentsUrl": published["repoContentsUrl"]}, app=app)
    with pytest.raises(ActionError, match=f"catalog:register: .*{message}"):
        await CATALOG_REGISTER.run(ctx)
    assert await _entity_keys(app) == before
    async with app.engine.connect() as conn:
        assert len(await repo.root_locations(conn)) == 1
    optional, lines = make_ctx(tmp_path, {"repoContentsUrl": published["repoContentsUrl"], "optional": True}, app=app)
    await CATALOG_REGISTER.run(optional)  # optional: a warning, and still nothing registered
    assert any(line.startswith("warning:") for line in lines) and not optional.outputs
    assert await _entity_keys(app) == before


async def test_an_entity_another_location_holds_is_a_conflict(rig: tuple[Any, Path], tmp_path: Path) -> None:
    app, _ = rig
    published = await _publish(app, tmp_path, "clash", ORG.split("---")[0])  # defines group team-a again
    ctx, _ = make_ctx(tmp_path, {"repoContentsUrl": published["repoContentsUrl"]}, app=app)
    with pytest.raises(ActionError, match="could not be registered"):
        await CATALOG_REGISTER.run(ctx)
    assert (await app.catalog.get("group:default/team-a")) is not None


@pytest.mark.parametrize(("url", "message"), [
    ("file:///etc/passwd", "outside the folder publish:file writes to"),
    ("http://169.254.169.254/latest/catalog-info.yaml", "neither a GitHub host Callboard knows nor listed in reading.allow"),
    ("ftp://example.com/catalog-info.yaml", "not a file:// or http"),
    ("https://github.com/acme/orders/tree/main", "not a GitHub file URL"),
    ("https://github.com/acme/orders/blob/main/%2E%2E/x.yaml", "not a plain name"),
])
async def test_urls_callboard_may_not_read_are_refused(rig: tuple[Any, Path], tmp_path: Path, url: str,
                                                       message: str) -> None:
    app, _ = rig
    before = await _entity_keys(app)
    ctx, _ = make_ctx(tmp_path, {"catalogInfoUrl": url}, app=app)
    with pytest.raises(ActionError, match=message):
        await CATALOG_REGISTER.run(ctx)
    assert await _entity_keys(app) == before


async def test_publish_github_then_register_reads_it_back_from_github(tmp_path: Path, make_app: Any,
                                                                      database_url: str) -> None:
    fake = GitHubFake()
    await fake.start()
    org = tmp_path / "org"
    org.mkdir()
    (org / "catalog-info.yaml").write_text(ORG)
    app = await make_app(database_url, resident=True, github_api_url=fake.url, github_token=fake.token)
    try:
        await app.sync((str(org),))
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "catalog-info.yaml").write_text(SERVICE.format(name="payments"))
        host = fake.url.removeprefix("http://")
        config = {"github_hosts": {host: fake.url}}  # the fake's web host, as a GitHub Enterprise host
        publish, _ = make_ctx(workspace, {"repoUrl": f"{host}?owner=acme&repo=payments", "defaultBranch": "main"},
                              app=app, config=config)
        await PUBLISH_GITHUB.run(publish)
        register, _ = make_ctx(tmp_path, {"repoContentsUrl": publish.outputs["repoContentsUrl"],
                                          "catalogInfoPath": "/catalog-info.yaml"}, app=app, config=config)
        await CATALOG_REGISTER.run(register)
        assert register.outputs["entityRef"] == "component:default/payments"
        assert (await app.ask("owner payments")).status.value == "ok"
        assert any("/contents/catalog-info.yaml" in c for c in fake.calls)
        assert CATALOG_REGISTER.undo is not None
        await CATALOG_REGISTER.undo(register)
        assert (await app.ask("owner payments")).status.value != "ok"
    finally:
        await app.close()
        await fake.stop()


def test_register_has_no_dry_run_and_no_example_entity() -> None:
    assert not CATALOG_REGISTER.supports_dry_run and dict(CATALOG_REGISTER.example_outputs) == {}


async def test_what_another_process_registers_or_unregisters_survives_this_ones_sync(
        rig: tuple[Any, Path], tmp_path: Path, make_app: Any, database_url: str) -> None:
    """``serve --workers``: a template run on a worker that does not sync registers its entity;
    worker 0's next sync of the configured catalog keeps it (and, once unregistered there, does
    not bring it back), and worker 0 answers for it after its next look at the catalog."""
    syncing, org = rig
    service = tmp_path / "orders"
    service.mkdir()
    (service / "catalog-info.yaml").write_text(SERVICE.format(name="orders"))
    follower = await make_app(database_url, resident=True)
    try:
        key, summary = await follower.register(str(service / "catalog-info.yaml"))
        assert not summary.errors, summary.errors
        assert await syncing.follow()  # what worker 0 does every few seconds between its syncs
        assert (await syncing.ask("owner orders")).status.value == "ok"
        summary = await syncing.sync((str(org),))
        assert not summary.errors and summary.removed == 0
        assert "component:default/orders" in await _entity_keys(syncing)
        assert await follower.unregister(key) == 2  # the Location and the Component
        summary = await syncing.sync((str(org),))
        assert summary.added == 0, summary
        assert "component:default/orders" not in await _entity_keys(syncing)
        assert (await syncing.ask("owner orders")).status.value != "ok"
    finally:
        await follower.close()
