"""The golden path, end to end over HTTP: a new hire types ``/create`` in Slack, picks a template,
fills its modal (a mistake first, then right), confirms the review; the task runs (skeleton,
``publish:file`` into a real git repository, ``catalog:register``), its progress and links arrive
by DM, and ``/owner`` answers for the new service at once. Real server, real Slack stack against
the Slack fake, real SQLite and PostgreSQL, real git."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from ..fakes.slack import SlackFake
from .test_slack_real_shapes import ASKER, Rig, fake, serving  # noqa: F401  (fake: a fixture)
from .test_slack_template_forms import _inputs, _submit, _text

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: tiny-service
  title: Tiny service
  description: A service with a README, published to a local git repository
  tags: [python, recommended]
spec:
  owner: web-team
  type: service
  parameters:
    - title: Service
      required: [name, owner]
      properties:
        name:
          title: Name
          type: string
          pattern: '^[a-z][a-z0-9-]*$'
          ui:help: lower case, digits and dashes
        owner:
          title: Owner
          type: string
          ui:field: OwnerPicker
          ui:options: {catalogFilter: {kind: Group}}
  steps:
    - id: fetch
      name: Fetch skeleton
      action: fetch:template
      input:
        url: ./skeleton
        values: {name: '${{ parameters.name }}', owner: '${{ parameters.owner }}'}
    - id: publish
      name: Publish
      action: publish:file
      input: {repoUrl: 'local?owner=acme&repo=${{ parameters.name }}'}
    - id: register
      name: Register
      action: catalog:register
      input: {repoContentsUrl: '${{ steps.publish.output.repoContentsUrl }}', catalogInfoPath: /catalog-info.yaml}
  output:
    links:
      - {title: Repository, url: '${{ steps.publish.output.remoteUrl }}'}
      - {title: Open in catalog, icon: catalog, entityRef: '${{ steps.register.output.entityRef }}'}
"""

SKELETON = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${{ values.name }}
spec:
  type: service
  lifecycle: experimental
  owner: ${{ values.owner }}
"""

#: the same template publishing to GitHub (the GitHub fake, in tests and in bench/bench_create.py)
GITHUB_TEMPLATE = TEMPLATE.replace(
    "action: publish:file\n      input: {repoUrl: 'local?owner=acme&repo=${{ parameters.name }}'}",
    "action: publish:github\n      input: {repoUrl: 'github.com?owner=acme&repo=${{ parameters.name }}', "
    "description: 'The ledger, lighter', repoVisibility: private, topics: [ledger]}")
assert GITHUB_TEMPLATE != TEMPLATE


def _catalog(root: Path) -> Path:
    (root / "skeleton").mkdir(parents=True)
    (root / "template.yaml").write_text(TEMPLATE)
    (root / "skeleton" / "catalog-info.yaml").write_text(SKELETON)
    (root / "skeleton" / "README.md").write_text("# ${{ values.name }}\n\nOwned by ${{ values.owner }}.\n")
    docs = [
        {"kind": "Location", "metadata": {"name": "root"}, "spec": {"targets": ["./template.yaml"]}},
        {"kind": "Group", "metadata": {"name": "web-team", "title": "Web"}, "spec": {"type": "team", "children": []}},
        {"kind": "User", "metadata": {"name": "asker"},
         "spec": {"profile": {"email": "asker@example.com"}, "memberOf": ["web-team"]}},
    ]
    (root / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **d}) for d in docs) + "\n")
    return root / "catalog-info.yaml"


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b.get("type") == "actions" for e in b["elements"]]


#: the person's pick in the modal's owner picker, as Slack sends it back
OWNER = {"type": "external_select", "selected_option": {"value": "group:default/web-team",
                                                         "text": {"type": "plain_text", "text": "Web"}}}


async def _open_modal(rig: Rig, fake: SlackFake, words: str) -> dict[str, Any]:
    """``/create <words>``, then its Tiny service button: the modal Slack was asked to open."""
    listed = await rig.slash("/create", words)
    await rig.settled()
    blocks = [b for a in [listed] + [c.params for c in fake.calls if c.method == "response_url"]
              for b in a.get("blocks") or []]
    assert "Tiny service" in json.dumps(blocks) and "local git repository" in json.dumps(blocks)
    (opener,) = [b for b in _buttons(blocks) if "tiny-service" in str(b.get("value"))]
    await rig.click(opener["value"], action_id=opener["action_id"], name="open")
    view: dict[str, Any] = (await fake.wait_for("views.open"))[-1].params["view"]
    return view


async def _dms(fake: SlackFake, until: tuple[str, ...], timeout: float = 30.0) -> list[str]:
    """The texts posted to the asker directly, once one contains one of ``until``."""
    deadline = time.monotonic() + timeout
    while True:
        texts = [str(c.params.get("text")) for c in fake.calls_to("chat.postMessage") if c.params.get("channel") == ASKER]
        if any(u in t for u in until for t in texts) or time.monotonic() > deadline:
            return texts
        await asyncio.sleep(0.05)


async def test_create_in_slack_to_owner_answering(fake: SlackFake, tmp_path: Path, database_url: str) -> None:
    async with serving(fake, tmp_path, catalog=_catalog(tmp_path / "catalog"), database_url=database_url) as rig:
        # /create lists the template with its description, and a button that opens its form
        view = await _open_modal(rig, fake, "")
        assert view["title"]["text"] == "Tiny service" and list(_inputs(view)) == ["name", "owner"]

        # a bad name: its error on its field, the modal stays
        owner = OWNER
        wrong = await _submit(rig, view, {"name": _text("Bad Name!"), "owner": owner})
        assert wrong["response_action"] == "errors" and set(wrong["errors"]) == {"name"}

        # corrected: the review, then the run
        review = await _submit(rig, view, {"name": _text("ledger-lite"), "owner": owner})
        assert review["response_action"] == "update", review
        started = time.monotonic()
        done = await _submit(rig, review["view"], {})
        assert done.get("response_action") in ("clear", "update", None), done

        texts = await _dms(fake, ("Tiny service: done", "Tiny service failed"))
        assert any("Tiny service: done" in t for t in texts), texts
        assert any("Publish" in t for t in texts), texts  # progress, step by step

        # the repository exists, with the skeleton rendered
        repos = list((tmp_path / "data-a" / "repos").rglob("ledger-lite"))
        assert repos, list((tmp_path / "data-a").rglob("*"))[:20]
        repo = repos[0]
        assert (repo / "README.md").read_text() == "# ledger-lite\n\nOwned by group:default/web-team.\n"
        log = subprocess.run(["git", "-C", str(repo), "log", "--oneline"], capture_output=True, text=True, check=True)
        assert log.stdout.strip()

        # /owner answers for the new service at once
        answer = await rig.slash("/owner", "ledger-lite")
        await rig.settled()
        every = json.dumps([answer] + [c.params for c in fake.calls if c.method == "response_url"])
        assert "web-team" in every and "ledger-lite" in every
        assert time.monotonic() - started < 10


async def test_a_step_failing_after_the_registration_leaves_no_entity(fake: SlackFake, tmp_path: Path,
                                                                      database_url: str) -> None:
    """The run fails after catalog:register: the entity it registered is taken back (no
    half-created service answering `owner`), the person is told which step failed and why."""
    catalog = _catalog(tmp_path / "catalog")
    (tmp_path / "catalog" / "template.yaml").write_text(TEMPLATE.replace("""  output:""", """    - id: docs
      name: Fetch docs
      action: fetch:plain
      input: {url: ./no-such-folder, targetPath: docs}
  output:"""))
    async with serving(fake, tmp_path, catalog=catalog, database_url=database_url) as rig:
        view = await _open_modal(rig, fake, "tiny")
        owner = OWNER
        review = await _submit(rig, view, {"name": _text("half-done"), "owner": owner})
        await _submit(rig, review["view"], {})

        texts = await _dms(fake, ("Tiny service: done", "Tiny service failed"))
        (failed,) = [t for t in texts if "Tiny service failed" in t]
        assert "docs" in failed and "no-such-folder" in failed, failed
        assert await rig.app.catalog.get("component:default/half-done") is None
        answer = await rig.slash("/owner", "half-done")
        await rig.settled()
        every = json.dumps([answer] + [c.params for c in fake.calls if c.method == "response_url"][-1:])
        assert "No entity matches" in every or "nothing in the catalog" in every, every


async def test_create_in_slack_publishes_to_github_then_owner_answers(fake: SlackFake, tmp_path: Path,
                                                                      database_url: str) -> None:
    """The same path with ``publish:github`` against the GitHub fake (in the shapes of GitHub's API):
    the repository and its content are at the fake, the entity is registered from the file there."""
    from ..fakes.github import GitHubFake

    github = GitHubFake()
    await github.start()
    try:
        catalog = _catalog(tmp_path / "catalog")
        (tmp_path / "catalog" / "template.yaml").write_text(GITHUB_TEMPLATE)
        fake_host = github.url.split("://", 1)[1]  # the fake's own address stands for GitHub's pages too
        async with serving(fake, tmp_path, catalog=catalog, database_url=database_url, github_api_url=github.url,
                           github_token=github.token, scaffolder_actions={"github_hosts": {fake_host: github.url}}) as rig:
            view = await _open_modal(rig, fake, "tiny service")
            owner = OWNER
            wrong = await _submit(rig, view, {"name": _text("Ledger Lite"), "owner": owner})
            assert wrong["response_action"] == "errors" and set(wrong["errors"]) == {"name"}
            review = await _submit(rig, view, {"name": _text("ledger-lite"), "owner": owner})
            await _submit(rig, review["view"], {})

            texts = await _dms(fake, ("Tiny service: done", "Tiny service failed"))
            assert any("Tiny service: done" in t for t in texts), texts
            # the repository and its content, at GitHub
            created = github.created[("acme", "ledger-lite")]
            assert (created.private, created.description, created.topics, created.organization) == (
                True, "The ledger, lighter", ["ledger"], True)
            files = github.files("acme", "ledger-lite", "master")
            assert files["README.md"] == b"# ledger-lite\n\nOwned by group:default/web-team.\n"
            assert b"name: ledger-lite" in files["catalog-info.yaml"]
            # the entity, in the catalog at once, answering /owner
            answer = await rig.slash("/owner", "ledger-lite")
            await rig.settled()
            every = json.dumps([answer] + [c.params for c in fake.calls if c.method == "response_url"][-1:])
            assert "web-team" in every and "ledger-lite" in every
    finally:
        await github.stop()
