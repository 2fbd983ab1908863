"""A GitHub failure in the middle of a whole template run (fetch:template → publish:github against
the GitHub fake → catalog:register), through the real app and its TaskRunner on SQLite and
PostgreSQL: the task ends failed, its error names the step and what GitHub said (never the
token, never a stack), the message the person reads says the same, and the catalog holds no
entity of the new name — also when the failure comes after the entity was registered (the
engine takes it back)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from callboard.bot.tasks_notify import task_reply
from callboard.scaffolder.model import Runner
from callboard.scaffolder.tasks import StepFinished, TaskFinished, TaskNote

from ..fakes.github import Fault, GitHubFake, _Created

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {{name: gh-service, title: GitHub service}}
spec:
  owner: web-team
  type: service
  parameters:
    - title: Service
      required: [name]
      properties:
        name: {{title: Name, type: string}}
  steps:
    - {{id: fetch, name: Fetch skeleton, action: fetch:template,
       input: {{url: ./skeleton, values: {{name: '${{{{ parameters.name }}}}'}}}}}}
    - {{id: publish, name: Publish, action: publish:github,
       input: {{repoUrl: '{host}?owner=acme&repo=${{{{ parameters.name }}}}', defaultBranch: main}}}}
    - {{id: register, name: Register, action: catalog:register,
       input: {{repoContentsUrl: '${{{{ steps.publish.output.repoContentsUrl }}}}', catalogInfoPath: /catalog-info.yaml}}}}
{extra}  output:
    links: [{{title: Repository, url: '${{{{ steps.publish.output.remoteUrl }}}}'}}]
"""

# a second repository, published after the registration (its docs, say)
SECOND_PUBLISH = """\
    - {{id: publish-docs, name: Publish docs, action: publish:github,
       input: {{repoUrl: '{host}?owner=acme&repo=${{{{ parameters.name }}}}-docs', defaultBranch: main}}}}
"""

SKELETON = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${{ values.name }}\n"
            "spec:\n  type: service\n  lifecycle: experimental\n  owner: web-team\n")
ORG = [
    {"kind": "Group", "metadata": {"name": "web-team"}, "spec": {"type": "team", "children": []}},
    {"kind": "User", "metadata": {"name": "asker"}, "spec": {"profile": {"email": "a@example.com"},
                                                            "memberOf": ["web-team"]}},
]
OPERATOR_TOKEN = "ghp_operator_token_0123456789"


@dataclass
class Rig:
    app: Any
    github: GitHubFake
    host: str


@pytest.fixture
async def github() -> AsyncIterator[GitHubFake]:
    fake = GitHubFake(token=OPERATOR_TOKEN)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


async def _rig(tmp_path: Path, make_app: Any, database_url: str, github: GitHubFake, *, token: str,
               second_publish: bool = False) -> Rig:
    host = github.url.split("://", 1)[1]  # the fake, as a GitHub Enterprise host (its pages and its API)
    root = tmp_path / "catalog"
    (root / "skeleton").mkdir(parents=True)
    extra = SECOND_PUBLISH.format(host=host) if second_publish else ""
    (root / "template.yaml").write_text(TEMPLATE.format(host=host, extra=extra))
    (root / "skeleton" / "catalog-info.yaml").write_text(SKELETON)
    (root / "skeleton" / "README.md").write_text("# ${{ values.name }}\n")
    docs = [{"kind": "Location", "metadata": {"name": "root"}, "spec": {"targets": ["./template.yaml"]}}, *ORG]
    (root / "catalog-info.yaml").write_text("\n---\n".join(
        json.dumps({"apiVersion": "backstage.io/v1alpha1", **d}) for d in docs) + "\n")
    app = await make_app(database_url, resident=True, github_api_url=github.url, github_token=token,
                         scaffolder_actions={"github_hosts": {host: github.url}, "github_timeout": 0.4})
    summary = await app.sync((str(root / "catalog-info.yaml"),))
    assert not summary.errors, summary.errors
    return Rig(app, github, host)


async def _run(rig: Rig, name: str) -> tuple[Any, list[TaskNote]]:
    template = await rig.app.template("template:default/gh-service")
    assert template is not None
    notes: list[TaskNote] = []

    async def notify(note: TaskNote) -> None:
        notes.append(note)

    task_id = await rig.app.tasks.start(template, {"name": name}, {}, Runner(ref="user:default/asker"), notify)
    deadline = time.monotonic() + 30
    while True:
        task = await rig.app.tasks.get(task_id)
        if task is not None and task.status in ("completed", "failed") and any(
                isinstance(n, TaskFinished) for n in notes):
            return task, notes
        assert time.monotonic() < deadline, f"task {task_id} did not end: {task}"
        await asyncio.sleep(0.02)


async def _assert_not_registered(app: Any, name: str) -> None:
    assert await app.catalog.get(f"component:default/{name}") is None
    reply = await app.ask(f"owner {name}")
    assert reply.status.value != "ok", reply.summary


def _said(notes: list[TaskNote]) -> str:
    """Everything the person was sent, as text."""
    replies = [task_reply(n) for n in notes]
    return "\n".join(json.dumps([r.summary, [getattr(b, "text", "") for b in r.blocks]]) for r in replies if r)


def _fail(github: GitHubFake, case: str) -> str:
    """Make the fake fail as ``case`` says; returns what GitHub said, as the error must carry it."""
    if case == "401":
        return r"The GitHub account acme: GitHub refused \(401\): Bad credentials$"
    if case == "422":
        github.created[("acme", "ledger")] = _Created(owner="acme", name="ledger", description="", private=True,
                                                      visibility="private", default_branch="main", organization=True)
        return "create the repository acme/ledger: GitHub answered 422: .*name already exists"
    if case in ("500", "502"):
        github.faults.append(Fault("POST", "/orgs/acme/repos", status=int(case)))
        return f"create the repository acme/ledger: GitHub answered {case}: Server Error"
    assert case == "timeout"
    github.faults.append(Fault("POST", "/orgs/acme/repos", delay=3.0))
    return r"create the repository acme/ledger: GitHub could not be reached .*within 0.4 s"


@pytest.mark.parametrize("case", ["401", "422", "500", "502", "timeout"])
async def test_a_github_failure_fails_the_task_clearly_and_registers_nothing(
        tmp_path: Path, make_app: Any, database_url: str, github: GitHubFake, case: str) -> None:
    token = "ghp_revoked_token_abcdef987" if case == "401" else OPERATOR_TOKEN
    rig = await _rig(tmp_path, make_app, database_url, github, token=token)
    try:
        expected = _fail(github, case)
        started = time.monotonic()
        task, notes = await _run(rig, "ledger")
        assert time.monotonic() - started < 10  # a timeout is the step's own, not a hang
        assert task.status == "failed" and task.failed_step == "publish", task
        assert task.error is not None and task.error.startswith("publish:github: "), task.error

        assert re.search(expected, task.error), task.error
        for text in (task.error, json.dumps(list(task.steps)), _said(notes)):
            assert token not in text and "Traceback" not in text and 'File "' not in text, text
        # the steps as stored: fetched, then the publish failed; register never ran
        states = {s["id"]: s["status"] for s in task.steps}
        assert states.get("fetch") == "done" and states.get("publish") == "failed", states
        assert "register" not in states, states  # never begun
        # what the person reads: the step that failed, with GitHub's word
        (finished,) = [n for n in notes if isinstance(n, TaskFinished)]
        reply = task_reply(finished)
        assert reply is not None and reply.status.value == "error"
        assert reply.summary.startswith("GitHub service failed at step publish: publish:github: "), reply.summary
        assert re.search(expected, reply.summary), reply.summary
        step_failed = [n for n in notes if isinstance(n, StepFinished) and n.step.status == "failed"]
        assert [n.step.step_id for n in step_failed] == ["publish"]
        await _assert_not_registered(rig.app, "ledger")
        if case == "422":  # the repository that was there already is left as it was
            assert ("acme", "ledger") in github.created and not github.created[("acme", "ledger")].refs
    finally:
        await rig.app.close()


async def test_a_github_failure_after_the_registration_takes_the_entity_back(
        tmp_path: Path, make_app: Any, database_url: str, github: GitHubFake) -> None:
    rig = await _rig(tmp_path, make_app, database_url, github, token=OPERATOR_TOKEN, second_publish=True)
    try:
        # the service's repository is made and registered; its docs repository fails mid-push
        github.faults.append(Fault("POST", "/repos/acme/ledger-docs/git/blobs", status=502))
        task, notes = await _run(rig, "ledger")
        assert task.status == "failed" and task.failed_step == "publish-docs", task
        assert task.error is not None
        assert task.error.startswith("publish:github: Could not upload ") and "acme/ledger-docs" in task.error
        assert "GitHub answered 502" in task.error and OPERATOR_TOKEN not in task.error
        states = {s["id"]: s["status"] for s in task.steps}
        assert states == {"fetch": "done", "publish": "done", "register": "done", "publish-docs": "failed"}, states
        log = [line for s in task.steps for line in s.get("log") or ()]
        assert any("Took back step register (catalog:register)" in line for line in log), log
        # the first repository stays (as in Backstage); the entity it carried is gone
        assert github.files("acme", "ledger", "main")["catalog-info.yaml"].startswith(b"apiVersion")
        await _assert_not_registered(rig.app, "ledger")
        said = _said(notes)
        assert "failed at step publish-docs" in said and "GitHub answered 502" in said, said
        assert OPERATOR_TOKEN not in said
    finally:
        await rig.app.close()


async def test_the_same_template_completes_when_github_answers(tmp_path: Path, make_app: Any, database_url: str,
                                                                github: GitHubFake) -> None:
    """The control: without a fault the run completes and the entity answers `owner` (so the
    failures above fail for GitHub's answer, not for the rig)."""
    rig = await _rig(tmp_path, make_app, database_url, github, token=OPERATOR_TOKEN, second_publish=True)
    try:
        task, notes = await _run(rig, "ledger")
        assert task.status == "completed", (task.error, task.steps)
        reply = await rig.app.ask("owner ledger")
        assert reply.status.value == "ok" and "web-team" in json.dumps(reply.data)
        assert ("acme", "ledger-docs") in github.created
    finally:
        await rig.app.close()
