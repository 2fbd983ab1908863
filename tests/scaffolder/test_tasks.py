"""Template runs as tasks: stored, claimed (SKIP LOCKED on PostgreSQL), run in a workspace, reported,
failed when their process stops, and never a secret in the database.

The engine is not merged yet: ``fake_execute`` below is a test double with the engine's API
(``execute(template, values, *, secrets, user, workspace, deps, on_step)``, StepEvent, RunResult).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.scaffolder.actions.api import ActionDeps
from callboard.scaffolder.model import Runner, TemplateDef, template_from_document
from callboard.scaffolder.tasks import (MASK, NotAllowed, StepFinished, TaskFinished, TaskNote, TaskRunner, Who,
                                        mask_values)
from callboard.storage import tasks as store
from callboard.storage.engine import open_database
from callboard.storage.schema import tasks as tasks_table

from ..conftest import fresh_postgres

SECRET = "s3cr3t-Token-7f9a"

DOC = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "python-service", "title": "Python service", "tags": ["python"]},
    "spec": {
        "owner": "group:default/platform-team",
        "parameters": [{"properties": {"name": {"type": "string"},
                                       "dbPassword": {"type": "string", "ui:widget": "password"}}}],
        "steps": [{"id": "fetch", "name": "Fetch skeleton", "action": "fetch:template"},
                  {"id": "publish", "name": "Publish", "action": "publish:file"}],
        "output": {"links": [{"title": "Repository", "url": "https://git.example/acme/x"},
                             {"title": "Open in catalog", "entityRef": "component:default/x"}],
                   "text": [{"title": "Next", "content": "Push your first change"}]},
    },
}
TEMPLATE = template_from_document(DOC)
ANA = Runner(ref="user:default/ana", groups=("group:default/platform-team",))


@dataclass(frozen=True)
class FakeStep:
    step_id: str
    name: str
    status: str
    log: tuple[str, ...] = ()


@dataclass(frozen=True)
class FakeResult:
    ok: bool
    output: dict[str, Any]
    error: str | None = None
    failed_step: str | None = None
    log: tuple[str, ...] = ()
    steps: tuple[FakeStep, ...] = ()


@dataclass
class Engine:
    """A stand-in for scaffolder.engine.execute: runs the steps, logging what it was given (the
    secret included: the runner must mask it), writing into the workspace."""

    fail_at: str | None = None
    raise_at: str | None = None
    gate: asyncio.Event | None = None  # each run waits for it before its steps
    calls: list[dict[str, Any]] = field(default_factory=list)
    workspaces: list[Path] = field(default_factory=list)

    async def __call__(self, template: TemplateDef, values: Mapping[str, Any], *, secrets: Mapping[str, str],
                       user: Runner, workspace: Path, deps: ActionDeps,
                       on_step: Callable[[Any], Awaitable[None]] | None = None) -> FakeResult:
        self.calls.append({"values": dict(values), "secrets": dict(secrets), "user": user})
        self.workspaces.append(workspace)
        assert workspace.is_dir() and not any(workspace.iterdir())
        if self.gate is not None:
            await self.gate.wait()
        done: list[FakeStep] = []
        for step in template.steps:
            sid, name = step["id"], step["name"]
            assert on_step is not None
            await on_step(FakeStep(sid, name, "started"))
            (workspace / f"{sid}.txt").write_text(str(values.get("name")))
            if self.raise_at == sid:
                raise RuntimeError(f"boom with {SECRET}")
            lines = (f"{sid}: name={values.get('name')}", f"{sid}: using token {secrets.get('token', '-')}")
            if self.fail_at == sid:
                failed = FakeStep(sid, name, "failed", (*lines, f"could not push with {SECRET}"))
                await on_step(failed)
                return FakeResult(ok=False, output={}, error=f"step {sid} failed: token {SECRET} refused",
                                  failed_step=sid, steps=(*done, failed))
            event = FakeStep(sid, name, "done", lines)
            await on_step(event)
            done.append(event)
        return FakeResult(ok=True, output={**template.output, "secretEcho": SECRET}, steps=tuple(done))


class Heard:
    def __init__(self) -> None:
        self.notes: list[TaskNote] = []
        self.finished = asyncio.Event()

    async def __call__(self, note: TaskNote) -> None:
        self.notes.append(note)
        if isinstance(note, TaskFinished):
            self.finished.set()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    db = await open_database(database_url)
    yield db
    await db.dispose()


def make_runner(engine: AsyncEngine, tmp_path: Path, execute: Any, **kw: Any) -> TaskRunner:
    kw.setdefault("poll_s", 0.05)
    kw.setdefault("heartbeat_s", 0.05)
    kw.setdefault("stale_after_s", 30.0)
    return TaskRunner(engine, data_dir=tmp_path / "data", execute=execute, **kw)


async def finished(runner: TaskRunner, task_id: str, limit: float = 10.0) -> store.StoredTask:
    async def poll() -> store.StoredTask:
        while True:
            task = await runner.get(task_id)
            assert task is not None
            if task.status in store.FINISHED:
                return task
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), limit)


async def all_rows_text(engine: AsyncEngine) -> str:
    async with engine.connect() as conn:
        return repr((await conn.execute(select(tasks_table))).all())


async def test_a_run_from_start_to_finish(engine: AsyncEngine, tmp_path: Path) -> None:
    fake = Engine()
    heard = Heard()
    runner = make_runner(engine, tmp_path, fake)
    try:
        task_id = await runner.start(TEMPLATE, {"name": "x", "dbPassword": "hunter22"}, {"token": SECRET}, ANA,
                                     heard, who=Who(platform="slack", user="U1", to=["D1", None, "U1"]))
        task = await finished(runner, task_id)
        await asyncio.wait_for(heard.finished.wait(), 5)
    finally:
        await runner.close()
    assert task.status == "completed", task.error
    assert task.template_ref == "template:default/python-service" and task.template_title == "Python service"
    assert task.user_ref == "user:default/ana" and task.platform == "slack" and task.user_id == "U1"
    assert task.who["to"] == ["D1", None, "U1"] and task.who["runner"]["groups"] == ["group:default/platform-team"]
    assert task.values == {"name": "x", "dbPassword": MASK}
    assert [(s["id"], s["name"], s["status"]) for s in task.steps] == [("fetch", "Fetch skeleton", "done"),
                                                                        ("publish", "Publish", "done")]
    assert task.steps[0]["log"] == ["fetch: name=x", f"fetch: using token {MASK}"]
    assert task.output is not None and task.output["links"][0]["url"] == "https://git.example/acme/x"
    assert task.created_at <= task.started_at <= task.finished_at  # type: ignore[operator]
    # the engine got the real values and secrets; the workspace was fresh, under the data dir, and is gone
    assert fake.calls[0]["values"]["dbPassword"] == "hunter22" and fake.calls[0]["secrets"] == {"token": SECRET}
    assert fake.workspaces[0].parent == tmp_path / "data" / "tasks" and not fake.workspaces[0].exists()
    # notify: each step as it finished, then the end with the output's links and text
    steps = [n for n in heard.notes if isinstance(n, StepFinished)]
    assert [(n.step.step_id, n.step.status) for n in steps] == [("fetch", "done"), ("publish", "done")]
    assert all(n.task_id == task_id and n.title == "Python service" for n in steps)
    end = heard.notes[-1]
    assert isinstance(end, TaskFinished) and end.status == "completed"
    assert end.links == (("Repository", "https://git.example/acme/x"),)
    assert end.entities == (("Open in catalog", "component:default/x"),)
    assert end.text == (("Next", "Push your first change"),)
    assert SECRET not in repr(heard.notes)


async def test_secrets_are_never_stored(engine: AsyncEngine, tmp_path: Path) -> None:
    """The secret goes to the engine, and appears in a value, a log line, the output and the error:
    no row of the table holds it, whichever way the run ends."""
    for fake in (Engine(), Engine(fail_at="publish"), Engine(raise_at="fetch")):
        runner = make_runner(engine, tmp_path, fake)
        try:
            task_id = await runner.start(TEMPLATE, {"name": f"x {SECRET}", "dbPassword": SECRET}, {"token": SECRET},
                                         ANA)
            task = await finished(runner, task_id)
        finally:
            await runner.close()
        assert fake.calls and fake.calls[0]["secrets"] == {"token": SECRET}
        assert task.status == ("completed" if fake.fail_at is None and fake.raise_at is None else "failed")
    dump = await all_rows_text(engine)
    assert dump.count("'completed'") == 1 and dump.count("'failed'") == 2
    assert SECRET not in dump and "s3cr3t" not in dump
    assert MASK in dump


async def test_a_failed_step_fails_the_task_and_says_where(engine: AsyncEngine, tmp_path: Path) -> None:
    heard = Heard()
    runner = make_runner(engine, tmp_path, Engine(fail_at="publish"))
    try:
        task = await finished(runner, await runner.start(TEMPLATE, {"name": "x"}, {"token": SECRET}, ANA, heard))
        await asyncio.wait_for(heard.finished.wait(), 5)
    finally:
        await runner.close()
    assert task.status == "failed" and task.failed_step == "publish"
    assert task.error == f"step publish failed: token {MASK} refused"
    assert [s["status"] for s in task.steps] == ["done", "failed"]
    end = heard.notes[-1]
    assert isinstance(end, TaskFinished) and end.status == "failed" and end.failed_step == "publish"
    assert [n.step.status for n in heard.notes if isinstance(n, StepFinished)] == ["done", "failed"]


async def test_a_crash_in_callboard_is_a_failed_task_with_a_reference(engine: AsyncEngine, tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    runner = make_runner(engine, tmp_path, Engine(raise_at="fetch"))
    try:
        task = await finished(runner, await runner.start(TEMPLATE, {"name": "x"}, {}, ANA))
    finally:
        await runner.close()
    assert task.status == "failed"
    assert task.error is not None and "(ref " in task.error and "boom" not in task.error
    assert "boom" in caplog.text  # the exception is in the log


async def test_a_restart_fails_what_the_stopped_process_held(engine: AsyncEngine, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    long_ago = now - timedelta(minutes=10)
    common: dict[str, Any] = dict(template_ref=TEMPLATE.ref, template_title=TEMPLATE.title, values={}, user_ref=ANA.ref,
                  platform="slack", user_id="U1", who={})
    async with engine.begin() as conn:
        # running in a process that stopped beating ten minutes ago
        await store.insert_task(conn, id="running0dead", runner=None, now=long_ago, **common)
        assert (await store.claim_task(conn, "dead-host:1:aa", long_ago)) is not None
        # held (its secrets were in that process) but never started
        await store.insert_task(conn, id="waiting0dead", runner="dead-host:1:aa", now=long_ago,
                                **common)
        # running in a live process (beat just now)
        await store.insert_task(conn, id="running0live", runner="live:2:bb", now=now, **common)
        await conn.execute(text("UPDATE tasks SET status = 'processing' WHERE id = 'running0live'"))
    (tmp_path / "data" / "tasks" / "running0dead-abc").mkdir(parents=True)
    fake = Engine()
    runner = make_runner(engine, tmp_path, fake)
    try:
        assert sorted(await runner.open()) == ["running0dead", "waiting0dead"]
    finally:
        await runner.close()
    for task_id in ("running0dead", "waiting0dead"):
        task = await runner.get(task_id)
        assert task is not None and task.status == "failed" and task.finished_at is not None
        assert task.error is not None and task.error.startswith("interrupted by a restart of Callboard at ")
        assert task.error.endswith("; run the template again")
        assert long_ago.strftime("%Y-%m-%d %H:%M") in task.error
    live = await runner.get("running0live")
    assert live is not None and live.status == "processing"
    assert not (tmp_path / "data" / "tasks" / "running0dead-abc").exists()
    assert fake.calls == []  # the new process ran none of them


async def test_a_holder_that_stops_beating_is_noticed_while_running(engine: AsyncEngine, tmp_path: Path) -> None:
    """A replica that dies is noticed by the others as they beat, not only at a restart."""
    runner = make_runner(engine, tmp_path, Engine(), heartbeat_s=0.05, stale_after_s=0.3)
    await runner.open()
    try:
        async with engine.begin() as conn:
            await store.insert_task(conn, id="heldbyother", template_ref=TEMPLATE.ref, template_title="T", values={},
                                    user_ref=None, platform="cli", user_id="", who={}, runner="gone:3:cc",
                                    now=datetime.now(timezone.utc))
        task = await finished(runner, "heldbyother", limit=5)
    finally:
        await runner.close()
    assert task.status == "failed" and (task.error or "").startswith("interrupted by a restart")


async def test_shutting_down_fails_runs_in_flight(engine: AsyncEngine, tmp_path: Path) -> None:
    gate = asyncio.Event()
    fake = Engine(gate=gate)
    runner = make_runner(engine, tmp_path, fake, concurrency=1)
    first = await runner.start(TEMPLATE, {"name": "a"}, {"token": SECRET}, ANA)
    second = await runner.start(TEMPLATE, {"name": "b"}, {"token": SECRET}, ANA)
    while not fake.calls:
        await asyncio.sleep(0.01)
    await runner.close()
    for task_id in (first, second):
        task = await runner.get(task_id)
        assert task is not None and task.status == "failed", task_id
        assert (task.error or "").startswith("interrupted by a restart of Callboard")
    assert len(fake.calls) == 1 and not fake.workspaces[0].exists()


async def test_cancel_a_task_that_has_not_started(engine: AsyncEngine, tmp_path: Path) -> None:
    gate = asyncio.Event()
    fake = Engine(gate=gate)
    runner = make_runner(engine, tmp_path, fake, concurrency=1)
    try:
        first = await runner.start(TEMPLATE, {"name": "a"}, {}, ANA)
        while not fake.calls:
            await asyncio.sleep(0.01)
        second = await runner.start(TEMPLATE, {"name": "b"}, {}, ANA)
        assert await runner.cancel(second) is True
        assert await runner.cancel(first) is False  # running: it finishes
        gate.set()
        assert (await finished(runner, first)).status == "completed"
        cancelled = await runner.get(second)
        assert cancelled is not None and cancelled.status == "cancelled" and cancelled.finished_at is not None
        await asyncio.sleep(0.2)
        assert len(fake.calls) == 1
    finally:
        await runner.close()


async def test_permission_is_checked_when_a_run_is_submitted(engine: AsyncEngine, tmp_path: Path) -> None:
    async def only_bob(user_ref: str | None, template: TemplateDef) -> bool:
        return user_ref == "user:default/bob"

    fake = Engine()
    runner = make_runner(engine, tmp_path, fake, allowed=only_bob)
    try:
        with pytest.raises(NotAllowed, match="You may not run the template Python service"):
            await runner.start(TEMPLATE, {"name": "x"}, {}, ANA)
        task_id = await runner.start(TEMPLATE, {"name": "x"}, {}, Runner(ref="user:default/bob"))
        assert (await finished(runner, task_id)).status == "completed"
    finally:
        await runner.close()
    assert "'user:default/ana'" not in await all_rows_text(engine)


async def test_the_persons_tasks_newest_first(engine: AsyncEngine, tmp_path: Path) -> None:
    runner = make_runner(engine, tmp_path, Engine())
    try:
        ids = [await runner.start(TEMPLATE, {"name": str(i)}, {}, ANA, who=Who(platform="slack", user="U1"))
               for i in range(3)]
        anonymous = await runner.start(TEMPLATE, {"name": "z"}, {}, Runner(), who=Who(platform="shell"))
        for task_id in (*ids, anonymous):
            await finished(runner, task_id)
        mine = await runner.tasks_of("user:default/ana", Who(platform="teams", user="other-id"))
        assert [t.id for t in mine] == ids[::-1]
        assert [t.id for t in await runner.tasks_of(None, Who(platform="shell"))] == [anonymous]
        assert await runner.tasks_of(None, Who(platform="slack", user="U2")) == []
    finally:
        await runner.close()


def test_masking_values() -> None:
    values = {"name": "svc", "dbPassword": "pw", "token": "abc", "note": f"see {SECRET} here",
              "nested": {"list": [SECRET, 1, True]}, "empty": ""}
    masked = mask_values(values, {"token": "abc", "other": SECRET}, TEMPLATE)
    assert masked == {"name": "svc", "dbPassword": MASK, "token": MASK, "note": f"see {MASK} here",
                      "nested": {"list": [MASK, 1, True]}, "empty": ""}


async def test_two_runners_share_the_work_each_task_once(postgres_url: str, tmp_path: Path) -> None:
    """Two replicas on one PostgreSQL: each claims with SKIP LOCKED, both work at the same time (each
    run waits until the other replica is running one too), and every task runs exactly once."""
    db_a, db_b = await open_database(postgres_url), await open_database(postgres_url)
    running = 0
    both = asyncio.Event()
    ran: list[tuple[str, str]] = []

    def replica(name: str) -> Any:
        async def execute(template: TemplateDef, values: Mapping[str, Any], **kw: Any) -> FakeResult:
            nonlocal running
            running += 1
            if running >= 2:
                both.set()
            await asyncio.wait_for(both.wait(), 10)
            ran.append((name, str(values["n"])))
            await asyncio.sleep(0.01)
            running -= 1
            return FakeResult(ok=True, output={})
        return execute

    async def resolve(ref: str) -> TemplateDef | None:
        return TEMPLATE if ref == TEMPLATE.ref else None

    a = TaskRunner(db_a, data_dir=tmp_path / "a", execute=replica("a"), resolve=resolve, concurrency=1, poll_s=0.05)
    b = TaskRunner(db_b, data_dir=tmp_path / "b", execute=replica("b"), resolve=resolve, concurrency=1, poll_s=0.05)
    try:
        await b.open()
        ids = [await a.start(TEMPLATE, {"n": i}, {}, ANA) for i in range(8)]
        for task_id in ids:
            assert (await finished(a, task_id)).status == "completed"
    finally:
        await a.close()
        await b.close()
        await db_a.dispose()
        await db_b.dispose()
    assert sorted(n for _, n in ran) == sorted(str(i) for i in range(8))  # each once
    assert {who for who, _ in ran} == {"a", "b"}


async def test_a_locked_task_is_skipped_not_waited_for(postgres_url: str) -> None:
    db = await open_database(postgres_url)
    try:
        now = datetime.now(timezone.utc)
        async with db.begin() as conn:
            for i in range(2):
                await store.insert_task(conn, id=f"task{i}", template_ref="template:default/t", template_title="T",
                                        values={}, user_ref=None, platform="cli", user_id="", who={}, runner=None,
                                        now=now + timedelta(seconds=i))
        async with db.connect() as first, db.connect() as second:
            async with first.begin():
                one = await store.claim_task(first, "r1", now)
                assert one is not None and one.id == "task0"
                async with second.begin():  # task0 is locked by the open transaction: skipped at once
                    two = await asyncio.wait_for(store.claim_task(second, "r2", now), 3)
                    assert two is not None and two.id == "task1"
                    assert await asyncio.wait_for(store.claim_task(second, "r2", now), 3) is None
    finally:
        await db.dispose()


async def test_a_task_held_by_a_replica_is_claimed_only_by_it(engine: AsyncEngine) -> None:
    now = datetime.now(timezone.utc)
    async with engine.begin() as conn:
        await store.insert_task(conn, id="pinned", template_ref="template:default/t", template_title="T", values={},
                                user_ref=None, platform="cli", user_id="", who={}, runner="r1", now=now)
        assert await store.claim_task(conn, "r2", now) is None
        claimed = await store.claim_task(conn, "r1", now)
        assert claimed is not None and claimed.status == "processing" and claimed.runner == "r1"
        assert await store.claim_task(conn, "r1", now) is None


async def test_an_unshared_runner_runs_only_its_own_tasks(engine: AsyncEngine, tmp_path: Path) -> None:
    """``callboard create`` (shared=False) never takes a server's open task, and its own task,
    though portable by its contents, is pinned to it (no server runs it while the CLI waits)."""
    now = datetime.now(timezone.utc)
    async with engine.begin() as conn:
        await store.insert_task(conn, id="server1", template_ref=TEMPLATE.ref, template_title="T", values={},
                                user_ref=None, platform="slack", user_id="U1", who={}, runner=None, now=now)
        assert await store.claim_task(conn, "cli", now, shared=False) is None

    async def resolve(ref: str) -> TemplateDef | None:
        return TEMPLATE

    cli = make_runner(engine, tmp_path, Engine(), resolve=resolve, shared=False)
    try:
        task_id = await cli.start(TEMPLATE, {"name": "x"}, {}, ANA)
        assert (await finished(cli, task_id)).status == "completed"
        stored = await cli.get(task_id)
        assert stored is not None and stored.runner == cli.runner_id
        server = await cli.get("server1")
        assert server is not None and server.status == "open"  # left for a server to run
    finally:
        await cli.close()


async def test_the_table_is_the_migrations(engine: AsyncEngine) -> None:
    def columns(sync_conn: Any) -> set[str]:
        from sqlalchemy import inspect

        return {c["name"] for c in inspect(sync_conn).get_columns("tasks")}

    async with engine.connect() as conn:
        assert await conn.run_sync(columns) == set(tasks_table.c.keys())
