"""``create`` through the real dispatcher: the templates a person may run (filtered, typos and all),
each opening its form; ``create status`` shows only the person's own tasks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from callboard.commands.api import Actions, Code, Links, OpenForm, Reply, Status, Steps
from callboard.scaffolder.model import Runner
from callboard.scaffolder.tasks import Who

from ..scaffolder.org import RULES, write_org
from ..scaffolder.test_tasks import Engine, finished

ANA = "user:default/ana"
BOB = "user:default/bob"


@pytest.fixture
async def app(make_app: Callable[..., Any], tmp_path: Path) -> AsyncIterator[Any]:
    app = await make_app(f"sqlite:///{tmp_path / 'cb.db'}", scaffolder_permissions=RULES)
    summary = await app.sync((str(write_org(tmp_path / "org")),))
    assert not summary.errors, summary.errors
    app.tasks.execute = Engine()  # the engine is not merged yet: its double (tests/scaffolder/test_tasks.py)
    yield app
    await app.close()


async def ask(app: Any, text: str, user_ref: str | None = ANA, user: str = "U-ana") -> Reply:
    return await app.dispatcher.dispatch(text, platform="slack", user=user, user_ref=user_ref)


def refs(reply: Reply) -> list[str]:
    return [t["ref"] for t in reply.data["templates"]]


def forms(reply: Reply) -> list[str]:
    return [a.form for b in reply.blocks if isinstance(b, Actions) for a in b.actions if isinstance(a, OpenForm)]


async def test_lists_what_the_person_may_run_each_with_its_form(app: Any) -> None:
    reply = await ask(app, "create")
    assert reply.status is Status.OK and reply.command == "create"
    assert refs(reply) == ["template:default/docs-site", "template:default/python-service"]  # by title
    assert forms(reply) == refs(reply)
    listed = reply.data["templates"][1]
    assert listed["tags"] == ["python", "service", "recommended"] and "FastAPI" in listed["description"]
    bob = await ask(app, "/create", user_ref=BOB, user="U-bob")
    assert refs(bob) == ["template:default/docs-site", "template:default/postgres-db"]
    nobody = await ask(app, "create", user_ref=None, user="U-x")
    assert refs(nobody) == ["template:default/docs-site"]


@pytest.mark.parametrize("text, expected", [
    ("create python", ["template:default/python-service"]),
    ("create pyhton servce", ["template:default/python-service"]),  # typos
    ("create mkdocs", ["template:default/docs-site"]),  # a word of the description
    ("create recommended", ["template:default/python-service"]),  # a tag
    ("create docs", ["template:default/docs-site"]),
    ("create a new documentation site", ["template:default/docs-site"]),
    ("I want to create a new documentation site", ["template:default/docs-site"]),
    ("scaffold python service", ["template:default/python-service"]),
])
async def test_words_after_create_filter(app: Any, text: str, expected: list[str]) -> None:
    reply = await ask(app, text)
    assert reply.status is Status.OK, reply.summary
    assert refs(reply) == expected and forms(reply) == expected


async def test_a_filter_never_shows_what_the_person_may_not_run(app: Any) -> None:
    reply = await ask(app, "create database")
    assert reply.status is Status.NOT_FOUND
    assert 'No template you may run matches "database"' in reply.summary and "postgres" not in reply.summary
    assert refs(await ask(app, "create database", user_ref=BOB, user="U-bob")) == ["template:default/postgres-db"]


async def test_which_templates_are_there(app: Any) -> None:
    reply = await ask(app, "which templates can I use?")
    assert reply.command == "create" and len(refs(reply)) == 2


async def test_status_shows_the_persons_own_tasks(app: Any) -> None:
    none_yet = await ask(app, "create status")
    assert none_yet.status is Status.NOT_FOUND and "You have not run a template yet" in none_yet.summary
    python = await app.template("template:default/python-service")
    first = await app.tasks.start(python, {"name": "one"}, {}, Runner(ref=ANA), who=Who(platform="slack", user="U-ana"))
    await finished(app.tasks, first)
    latest = await app.tasks.start(python, {"name": "two"}, {}, Runner(ref=ANA), who=Who(platform="slack", user="U-ana"))
    await finished(app.tasks, latest)

    reply = await ask(app, "create status")
    assert reply.status is Status.OK, reply.summary
    assert reply.data["task"]["id"] == latest and reply.data["task"]["status"] == "completed"
    assert reply.summary == f"Task {latest} (Python service): completed"
    steps = next(b for b in reply.blocks if isinstance(b, Steps))
    assert steps.items == ("Say hello: done",)
    log = next(b for b in reply.blocks if isinstance(b, Code))
    assert "[log] log: name=two" in log.text
    links = next(b for b in reply.blocks if isinstance(b, Links))
    assert links.links == (("Repository", "https://git.example/acme/${{ parameters.name }}"),)  # the double renders nothing

    by_id = await ask(app, f"create status {first}")
    assert by_id.data["task"]["id"] == first
    by_prefix = await ask(app, f"create status {first[:6]}")
    assert by_prefix.data["task"]["id"] == first
    in_words = await ask(app, "what is the status of my last task?")
    assert in_words.data["task"]["id"] == latest

    # another person: no such task, as if it did not exist
    for text in (f"create status {first}", f"create status {first[:6]}"):
        other = await ask(app, text, user_ref=BOB, user="U-bob")
        assert other.status is Status.NOT_FOUND and "You have no task" in other.summary
    assert (await ask(app, "create status", user_ref=BOB, user="U-bob")).status is Status.NOT_FOUND
    usage = await ask(app, "create status a b")
    assert usage.status is Status.USAGE


async def test_status_of_a_failed_task_says_where(app: Any) -> None:
    app.tasks.execute = Engine(fail_at="log")
    python = await app.template("template:default/python-service")
    task_id = await app.tasks.start(python, {"name": "x"}, {"token": "tok-secret-1"}, Runner(ref=ANA),
                                    who=Who(platform="slack", user="U-ana"))
    await finished(app.tasks, task_id)
    reply = await ask(app, "create status")
    assert reply.data["task"]["status"] == "failed" and reply.data["task"]["failed_step"] == "log"
    assert "Failed (step log): step log failed: token" in reply.blocks[2].text  # type: ignore[union-attr]
    assert "tok-secret-1" not in repr(reply)
