"""A run's progress reaches the person through the surface it was started from: a message per
finished step, then the end with the output's links (the Surface seam, ``Conversation.task_notify``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from callboard.bot.conversation import Conversation
from callboard.bot.shell import ShellSurface
from callboard.bot.slack.render import render
from callboard.bot.surface import Answer, Profile
from callboard.bot.tasks_notify import TaskNotifier, task_reply
from callboard.commands.api import Actions, Links, RunCommand, Status
from callboard.commands.forms import Form
from callboard.scaffolder.model import Runner
from callboard.scaffolder.tasks import StepFinished, TaskFinished, Who

from ..scaffolder.org import write_org
from ..scaffolder.test_tasks import SECRET, Engine, FakeStep, finished


class Recorder:
    """A surface that keeps what it was asked to post."""

    name = "recorder"
    page_size: int | None = None

    def __init__(self) -> None:
        self.sent: list[tuple[Any, Answer]] = []

    async def identify(self, user: str) -> Profile:
        return Profile(email=None)

    async def find_people(self, emails: Sequence[str]) -> Mapping[str, str]:
        return {}

    async def send(self, to: Any, answer: Answer) -> None:
        self.sent.append((to, answer))

    async def open_form(self, to: Any, form: Form, key: str) -> None:
        raise AssertionError("no form here")


async def _app(make_app: Callable[..., Any], tmp_path: Path) -> Any:
    app = await make_app(f"sqlite:///{tmp_path / 'cb.db'}")
    assert not (await app.sync((str(write_org(tmp_path / "org")),))).errors
    return app


async def test_progress_and_links_are_posted_where_the_run_started(make_app: Callable[..., Any],
                                                                    tmp_path: Path) -> None:
    app = await _app(make_app, tmp_path)
    try:
        app.tasks.execute = Engine()
        template = await app.template("template:default/python-service")
        surface = Recorder()
        conversation = Conversation(surface, app, set())
        to = ("D123", None, "U-ana")
        task_id = await app.tasks.start(template, {"name": "svc"}, {}, Runner(ref="user:default/ana"),
                                        conversation.task_notify(to), who=Who(platform="recorder", user="U-ana", to=to))
        await finished(app.tasks, task_id)
        await app.tasks.wait(task_id)
    finally:
        await app.close()
    assert [where for where, _ in surface.sent] == [to, to]
    step, end = (answer.reply for _, answer in surface.sent)
    assert step.summary == "Python service: step “Say hello” done." and step.command == "create"
    assert end.status is Status.OK and end.summary == "Python service: done"
    links = next(b for b in end.blocks if isinstance(b, Links))
    assert links.links == (("Repository", "https://git.example/acme/${{ parameters.name }}"),)
    actions = next(b for b in end.blocks if isinstance(b, Actions)).actions
    assert RunCommand(label="Status", command=f"create status {task_id}") in actions
    assert surface.sent[1][1].view.asked == f"create status {task_id}"
    # Slack renders the final message with its link
    slack = render(end, surface.sent[1][1].view)
    assert "https://git.example/acme/" in json.dumps(slack.blocks)


async def test_through_the_terminal_surface(make_app: Callable[..., Any], tmp_path: Path) -> None:
    app = await _app(make_app, tmp_path)
    printed: list[str] = []
    try:
        app.tasks.execute = Engine(fail_at="log")
        template = await app.template("template:default/python-service")
        shell = ShellSurface(app, out=printed.append)
        task_id = await app.tasks.start(template, {"name": "svc"}, {"token": SECRET}, Runner(),
                                        shell.conversation.task_notify(None), who=Who(platform="shell"))
        await finished(app.tasks, task_id)
        await app.tasks.wait(task_id)
    finally:
        await app.close()
    text = "\n".join(printed)
    assert "step “Say hello” failed" in text
    assert "Python service failed at step log: step log failed: token *** refused" in text
    assert SECRET not in text


async def test_a_message_that_cannot_be_posted_does_not_fail_the_run(make_app: Callable[..., Any],
                                                                      tmp_path: Path) -> None:
    app = await _app(make_app, tmp_path)
    try:
        app.tasks.execute = Engine()
        template = await app.template("template:default/docs-site")

        async def broken(note: Any) -> None:
            raise RuntimeError("the platform is down")

        task_id = await app.tasks.start(template, {"name": "d"}, {}, Runner(), broken)
        assert (await finished(app.tasks, task_id)).status == "completed"
    finally:
        await app.close()


async def test_a_task_claimed_from_another_replica_posts_through_this_ones_surface() -> None:
    surface = Recorder()
    notifier = TaskNotifier({"recorder": surface})
    assert notifier(Who(platform="teams", user="x", to="conv")) is None  # no such surface here
    assert notifier(Who(platform="recorder", user="x")) is None  # nowhere to post
    notify = notifier(Who(platform="recorder", user="U1", to=["C1", "171.2", "U1"]))  # as stored: JSON
    assert notify is not None
    await notify(TaskFinished(task_id="abc", title="Docs", status="completed"))
    assert surface.sent[0][0] == ("C1", "171.2", "U1")


def test_what_is_worth_a_message() -> None:
    assert task_reply(StepFinished(task_id="t", title="T", step=FakeStep("a", "A", "skipped"))) is None
    assert task_reply(StepFinished(task_id="t", title="T", step=FakeStep("a", "A", "started"))) is None
    failed = task_reply(StepFinished(task_id="t", title="T", step=FakeStep("a", "A", "failed", ("x", "last line"))))
    assert failed is not None and failed.status is Status.ERROR and "last line" in repr(failed.blocks)
    done = task_reply(TaskFinished(task_id="t", title="T", status="completed",
                                   entities=(("Open in catalog", "component:default/x"),),
                                   text=(("Next", "push"),)))
    assert done is not None
    actions = next(b for b in done.blocks if isinstance(b, Actions)).actions
    assert RunCommand(label="Open in catalog", command="info component:default/x") in actions


async def test_serve_fails_runs_a_stopped_process_left_and_starts_the_worker(make_app: Callable[..., Any],
                                                                              tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from callboard.storage import tasks as store

    from ..serving import served

    app = await make_app(f"sqlite:///{tmp_path / 'cb.db'}", resident=True)
    long_ago = datetime.now(timezone.utc) - timedelta(hours=1)
    async with app.engine.begin() as conn:
        await store.insert_task(conn, id="leftrunning", template_ref="template:default/python-service",
                                template_title="Python service", values={}, user_ref=None, platform="slack",
                                user_id="U1", who={}, runner="old-process:1:aa", now=long_ago)
    async with served(app, catalog=write_org(tmp_path / "org")):
        task = await app.tasks.get("leftrunning")
        assert task is not None and task.status == "failed"
        assert (task.error or "").startswith("interrupted by a restart of Callboard at ")
        assert isinstance(app.tasks.notifier, TaskNotifier)
        app.tasks.execute = Engine()
        template = await app.template("template:default/docs-site")
        task_id = await app.tasks.start(template, {"name": "d"}, {}, Runner())
        assert (await finished(app.tasks, task_id)).status == "completed"
