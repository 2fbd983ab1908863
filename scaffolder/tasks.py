"""Runs of Software Templates as tasks: stored, claimed, run in a workspace, reported step by step.

``TaskRunner.start`` stores a task (template, values with the secrets masked, who ran it and
where to tell them) and wakes the runner's worker, which claims open tasks from the database
(``storage/tasks.py``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so replicas sharing a database
share the work and each task runs once) and runs each as tracked work: the engine's ``execute``
in a fresh workspace folder under the data directory, removed afterwards.

Secrets are never stored. They stay in the memory of the process the run was started in, so a
task with secrets is held by that process (only it may claim it); a task without secrets whose
template other replicas can find again (``resolve``) is open to any replica.

A holder beats (``heartbeat_at``) while it holds tasks. At start, and then as it beats, a runner
fails every task whose holder stopped beating for ``stale_after`` seconds ("interrupted by a
restart of Callboard at …; run the template again"): a task is never left running by a process
that is gone. A runner that is shut down fails the runs it had in flight the same way.

``notify`` hears of each step as it ends (``StepFinished``) and of the end (``TaskFinished``,
with the output's links and text); a failing ``notify`` is logged and never fails the task.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import secrets as token
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol, Union

from sqlalchemy.ext.asyncio import AsyncEngine

from callboard.storage import tasks as store
from callboard.storage.tasks import StoredTask

from .actions.api import ActionDeps
from .model import Runner, TemplateDef

__all__ = ["MASK", "Execute", "NotAllowed", "Notify", "RunResultLike", "StepEventLike", "StepFinished", "Task", "TaskFinished",
           "TaskNote", "TaskRunner", "Who", "interrupted_message", "mask_values", "output_links", "output_texts"]

log = logging.getLogger(__name__)

#: What a secret is replaced with wherever it would be stored or shown.
MASK = "***"

#: A task as stored (values with secrets masked, each step's state and log, the outputs).
Task = StoredTask


class StepEventLike(Protocol):
    """What the engine reports of a step (``scaffolder.engine.StepEvent``)."""

    @property
    def step_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...  # started | done | skipped | failed

    @property
    def log(self) -> tuple[str, ...]: ...


class RunResultLike(Protocol):
    """What the engine returns for a run (``scaffolder.engine.RunResult``)."""

    @property
    def ok(self) -> bool: ...

    @property
    def output(self) -> Mapping[str, Any]: ...

    @property
    def error(self) -> str | None: ...

    @property
    def failed_step(self) -> str | None: ...

    @property
    def log(self) -> tuple[str, ...]: ...

    @property
    def steps(self) -> tuple[Any, ...]: ...


class Execute(Protocol):
    """The engine's ``execute`` (``scaffolder/engine.py``)."""

    def __call__(self, template: TemplateDef, values: Mapping[str, Any], *, secrets: Mapping[str, str],
                 user: Runner, workspace: Path, deps: ActionDeps,
                 on_step: Callable[[Any], Awaitable[None]] | None = None) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Who:
    """Who runs a task and where they hear of it: ``platform`` (slack, shell, cli, …), their id
    there, and ``to``, the surface's own notion of the place to post progress (JSON values only:
    it is stored with the task, so a replica that claims the task can post too)."""

    platform: str
    user: str | None = None
    to: Any = None


@dataclass(frozen=True, slots=True)
class StepFinished:
    """A step of task ``task_id`` ended (done, skipped or failed)."""

    task_id: str
    title: str  # the template's title
    step: StepEventLike


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """Task ``task_id`` ended: completed, or failed (``error``, for the person: no secrets)."""

    task_id: str
    title: str
    status: str
    links: tuple[tuple[str, str], ...] = ()  # (title, url) from spec.output.links
    entities: tuple[tuple[str, str], ...] = ()  # (title, entity ref) from links with entityRef
    text: tuple[tuple[str, str], ...] = ()  # (title, content) from spec.output.text
    error: str | None = None
    failed_step: str | None = None


class NotAllowed(Exception):
    """The person may not run the template (``scaffolder.permissions``); the message says so, for them."""


TaskNote = Union[StepFinished, TaskFinished]
Notify = Callable[[TaskNote], Awaitable[None]]


def interrupted_message(when: datetime) -> str:
    """What a task cut off by a stop of its process says."""
    return (f"interrupted by a restart of Callboard at {when.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC; "
            "run the template again")


def _secret_fields(template: TemplateDef) -> set[str]:
    """Names of the parameters a template marks as secret (``ui:widget: password``, ``ui:field: Secret``),
    wherever in its pages they are (conditional branches included)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            props = node.get("properties")
            if isinstance(props, Mapping):
                for name, prop in props.items():
                    if isinstance(prop, Mapping) and (prop.get("ui:widget") == "password"
                                                      or prop.get("ui:field") == "Secret"):
                        found.add(str(name))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(list(template.parameters))
    return found


class _Masker:
    """Replaces secret values in text (longest first, so one secret inside another is masked whole)."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self.values = sorted({v for v in secrets.values() if isinstance(v, str) and v}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.values:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def deep(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {str(k): self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


def mask_values(values: Mapping[str, Any], secrets: Mapping[str, str], template: TemplateDef) -> dict[str, Any]:
    """``values`` as they may be stored: a field that is a secret (its name among ``secrets``, or a
    password field of the template) replaced by ``MASK``, and any secret's value inside text too."""
    masker = _Masker(secrets)
    hidden = set(secrets) | _secret_fields(template)
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[str(key)] = MASK if key in hidden and value not in (None, "") else masker.deep(value)
    return out


def _json_safe(value: Any) -> Any:
    """``value`` as JSON holds it (what cannot be held becomes its text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _default_execute() -> Execute:
    """The engine's ``execute``, imported when first needed (the engine imports the actions)."""
    engine = importlib.import_module("callboard.scaffolder.engine")
    execute: Execute = engine.execute
    return execute


@dataclass(frozen=True, slots=True)
class _Step:
    """A step as the person is told of it (its log with the secrets masked)."""

    step_id: str
    name: str
    status: str
    log: tuple[str, ...]


@dataclass(slots=True)
class _Held:
    """What only the starting process knows of a task: the template as given, the values unmasked,
    the secrets, and the caller's notify."""

    template: TemplateDef
    values: Mapping[str, Any]
    secrets: Mapping[str, str]
    user: Runner
    notify: Notify | None


@dataclass(slots=True)
class _Run:
    task: asyncio.Task[None]
    cancel_requested: bool = False


@dataclass(slots=True)
class _Steps:
    """The steps of one run as they go (what ``tasks.steps`` holds)."""

    order: list[str] = field(default_factory=list)
    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, step_id: str, name: str, status: str, lines: Iterable[str]) -> None:
        if step_id not in self.by_id:
            self.order.append(step_id)
            self.by_id[step_id] = {"id": step_id, "name": name, "status": status, "log": []}
        entry = self.by_id[step_id]
        entry["name"] = name or entry["name"]
        entry["status"] = status
        lines = list(lines)
        kept: list[str] = entry["log"]
        if lines[:len(kept)] == kept:  # the step's whole log so far
            entry["log"] = lines
        else:  # only what is new
            kept.extend(lines)

    def rows(self) -> list[dict[str, Any]]:
        return [self.by_id[s] for s in self.order]


class TaskRunner:
    """Stores tasks and runs them; one per process (``runner_id`` names it in the database).

    ``execute`` defaults to the engine's; ``resolve`` finds a template by ref again (tasks without
    secrets can then run on any replica); ``notifier`` gives the notify of a task this process
    did not start (built from its ``Who``), None for no progress messages; ``allowed`` is asked
    before a task is stored (``NotAllowed`` when the person may not run the template), so every
    way of starting a run is checked when it is submitted.

    ``shared=False`` (a short-lived process such as ``callboard create``): this runner runs only the
    tasks it started, and those only here; it never claims a server's tasks (it would cut them off
    when it exits), and no server claims its tasks (it waits for them to end).
    """

    def __init__(self, engine: AsyncEngine, *, data_dir: str | Path, deps: ActionDeps | None = None,
                 execute: Execute | None = None,
                 resolve: Callable[[str], Awaitable[TemplateDef | None]] | None = None,
                 notifier: Callable[[Who], Notify | None] | None = None,
                 allowed: Callable[[str | None, TemplateDef], Awaitable[bool]] | None = None,
                 concurrency: int = 4, heartbeat_s: float = 5.0, stale_after_s: float = 60.0,
                 poll_s: float = 2.0, clock: Callable[[], datetime] = _now, shared: bool = True) -> None:
        if concurrency < 1:
            raise ValueError("a task runner runs at least one task at a time (concurrency >= 1)")
        if stale_after_s <= heartbeat_s:
            raise ValueError("stale_after_s must be longer than heartbeat_s, or live tasks would be failed")
        self.engine = engine
        self.workspaces = Path(data_dir) / "tasks"
        self.deps = deps or ActionDeps()
        self._execute = execute
        self.resolve = resolve
        self.notifier = notifier
        self.allowed = allowed
        self.concurrency = concurrency
        self.heartbeat_s = heartbeat_s
        self.stale_after = timedelta(seconds=stale_after_s)
        self.poll_s = poll_s
        self.clock = clock
        self.shared = shared
        self.runner_id = f"{socket.gethostname()[:32]}:{os.getpid()}:{token.token_hex(4)}"
        self._held: dict[str, _Held] = {}
        self._running: dict[str, _Run] = {}
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._opened = False
        self._closing = False

    @property
    def execute(self) -> Execute:
        """The engine's ``execute`` unless another was given."""
        if self._execute is None:
            self._execute = _default_execute()
        return self._execute

    @execute.setter
    def execute(self, execute: Execute) -> None:
        self._execute = execute

    # --- life cycle ---------------------------------------------------------------------------

    async def open(self) -> list[str]:
        """Fail the tasks a stopped process left unfinished, then start working. Returns those ids."""
        if self._opened:
            return []
        self._opened = True
        try:
            failed = await self.reap()
        except Exception:  # noqa: BLE001 - the database is down: the heartbeat reaps once it answers
            log.warning("could not check for interrupted tasks at start; the heartbeat will", exc_info=True)
            failed = []
        self._loops = [asyncio.create_task(self._work(), name="tasks-worker"),
                       asyncio.create_task(self._beat(), name="tasks-heartbeat")]
        return failed

    async def close(self) -> None:
        """Stop working: runs in flight are cut off and failed (their secrets die with this process)."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        runs = list(self._running.values())
        for run in runs:
            run.task.cancel()
        await asyncio.gather(*(r.task for r in runs), return_exceptions=True)
        # held but never started: nobody else can run them (their secrets are here)
        for task_id in list(self._held):
            async with self.engine.begin() as conn:
                await store.finish_task(conn, task_id, self.runner_id, status="failed", steps=[], output=None,
                                        error=interrupted_message(self.clock()), failed_step=None, now=self.clock())
        self._held.clear()
        self._opened = False

    async def reap(self) -> list[str]:
        """Fail every unfinished task whose holder stopped beating; remove their workspaces here."""
        now = self.clock()
        async with self.engine.begin() as conn:
            failed = await store.fail_stale(conn, now - self.stale_after, interrupted_message, now)
        for task_id in failed:
            log.warning("task %s failed: its process stopped while holding it", task_id)
            await asyncio.to_thread(self._remove_workspaces, task_id)
        return failed

    def _remove_workspaces(self, task_id: str) -> None:
        if self.workspaces.is_dir():
            for left in self.workspaces.glob(f"{task_id}-*"):
                shutil.rmtree(left, ignore_errors=True)

    # --- starting -----------------------------------------------------------------------------

    async def start(self, template: TemplateDef, values: Mapping[str, Any], secrets: Mapping[str, str],
                    runner: Runner, notify: Notify | None = None, *, who: Who | None = None) -> str:
        """Store a task for ``template`` run by ``runner`` with ``values`` (secrets masked in what is
        stored; ``secrets`` kept in this process's memory only) and have it run. Returns its id."""
        who = who or Who(platform="cli")
        if self.allowed is not None and not await self.allowed(runner.ref, template):
            log.info("task refused template=%s user=%s: not allowed", template.ref, runner.ref)
            raise NotAllowed(f"You may not run the template {template.title} ({template.ref}): it is kept for "
                             "some teams (scaffolder.permissions).")
        masked = mask_values(values, secrets, template)
        portable = (self.shared and not secrets and masked == dict(values) and self.resolve is not None
                    and await self.resolve(template.ref) is not None)
        task_id = token.token_hex(6)
        stored_who = {"to": _json_safe(who.to), "user": who.user,
                      "runner": {"ref": runner.ref, "groups": list(runner.groups),
                                 "entity": _json_safe(runner.entity) if runner.entity is not None else None}}
        self._held[task_id] = _Held(template, dict(values), dict(secrets), runner, notify)
        try:
            async with self.engine.begin() as conn:
                await store.insert_task(
                    conn, id=task_id, template_ref=template.ref, template_title=template.title,
                    values=_json_safe(masked), user_ref=runner.ref, platform=who.platform, user_id=who.user or "",
                    who=stored_who, runner=None if portable else self.runner_id, now=self.clock())
        except BaseException:
            self._held.pop(task_id, None)
            raise
        log.info("task stored task=%s template=%s user=%s portable=%s", task_id, template.ref, runner.ref, portable)
        if not self._opened:
            await self.open()
        self._wake.set()
        return task_id

    async def cancel(self, task_id: str) -> bool:
        """Cancel a task that has not started (False: it is running, or over)."""
        async with self.engine.begin() as conn:
            cancelled = await store.cancel_task(conn, task_id)
        if cancelled:
            self._held.pop(task_id, None)
        return cancelled

    # --- reading ------------------------------------------------------------------------------

    async def get(self, task_id: str) -> Task | None:
        async with self.engine.connect() as conn:
            return await store.get_task(conn, task_id)

    async def tasks_of(self, user_ref: str | None, who: Who, limit: int = 20) -> list[Task]:
        """A person's tasks, newest first (by catalog User when known, else by platform id)."""
        async with self.engine.connect() as conn:
            return await store.tasks_of(conn, user_ref=user_ref, platform=who.platform, user_id=who.user or "",
                                        limit=limit)

    async def wait(self, task_id: str) -> None:
        """Until this process's run of ``task_id`` is over (returns at once when it runs no such task)."""
        run = self._running.get(task_id)
        if run is not None:
            await asyncio.gather(run.task, return_exceptions=True)

    # --- working ------------------------------------------------------------------------------

    async def _work(self) -> None:
        while not self._closing:
            self._wake.clear()
            try:
                while len(self._running) < self.concurrency:
                    async with self.engine.begin() as conn:
                        claimed = await store.claim_task(conn, self.runner_id, self.clock(), shared=self.shared)
                    if claimed is None:
                        break
                    self._launch(claimed)
            except Exception:  # noqa: BLE001 - the database is down: try again at the next poll
                log.warning("claiming tasks failed; trying again in %.0f s", self.poll_s, exc_info=True)
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except asyncio.TimeoutError:
                pass

    async def _beat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.heartbeat_s)
            try:
                async with self.engine.begin() as conn:
                    await store.heartbeat(conn, self.runner_id, self.clock())
                await self.reap()
            except Exception:  # noqa: BLE001 - a database that is down: the next beat tries again
                log.warning("task heartbeat failed", exc_info=True)

    def _launch(self, task: Task) -> None:
        run = _Run(asyncio.create_task(self._run(task), name=f"task-{task.id}"))
        self._running[task.id] = run

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(task.id, None)
            self._wake.set()  # room for another

        run.task.add_done_callback(done)

    async def _prepare(self, task: Task) -> tuple[_Held | None, str | None]:
        """What a claimed task runs with, or the reason it cannot run here."""
        held = self._held.pop(task.id, None)
        if held is not None:
            return held, None
        if task.runner is not None and task.who.get("runner") is None:
            return None, "the task's details are missing from the database"
        template = await self.resolve(task.template_ref) if self.resolve is not None else None
        if template is None:
            return None, f"the template {task.template_ref} is no longer in the catalog; run it again from the list"
        stored = task.who.get("runner") or {}
        user = Runner(ref=stored.get("ref"), entity=stored.get("entity"),
                      groups=tuple(str(g) for g in stored.get("groups") or ()))
        to = Who(platform=task.platform, user=task.who.get("user"), to=task.who.get("to"))
        notify = self.notifier(to) if self.notifier is not None else None
        return _Held(template, dict(task.values), {}, user, notify), None

    async def _run(self, task: Task) -> None:
        held, problem = await self._prepare(task)
        if held is None:
            await self._finish(task.id, task.template_title, None, [], status="failed", output=None,
                               error=problem, failed_step=None, masker=_Masker({}))
            return
        masker = _Masker(held.secrets)
        title = held.template.title
        steps = _Steps()
        notify = held.notify

        async def on_step(event: Any) -> None:
            lines = tuple(masker.text(str(line)) for line in (getattr(event, "log", ()) or ()))
            steps.record(str(event.step_id), masker.text(str(event.name or event.step_id)), str(event.status), lines)
            async with self.engine.begin() as conn:
                await store.update_steps(conn, task.id, self.runner_id, steps.rows(), self.clock())
            if event.status != "started" and notify is not None:
                shown = _Step(step_id=str(event.step_id), name=steps.by_id[str(event.step_id)]["name"],
                              status=str(event.status), log=lines)
                await _tell(notify, StepFinished(task_id=task.id, title=title, step=shown), task.id)

        workspace: Path | None = None
        try:
            workspace = await asyncio.to_thread(self._workspace, task.id)
            result = await self.execute(held.template, held.values, secrets=held.secrets, user=held.user,
                                        workspace=workspace, deps=self.deps, on_step=on_step)
        except asyncio.CancelledError:
            await asyncio.shield(self._finish(task.id, title, notify, steps.rows(), status="failed", output=None,
                                              error=interrupted_message(self.clock()), failed_step=None,
                                              masker=masker))
            raise
        except Exception:
            ref = token.token_hex(3)
            log.exception("task %s failed in Callboard itself ref=%s", task.id, ref)
            await self._finish(task.id, title, notify, steps.rows(), status="failed", output=None,
                               error=f"Callboard failed while running this task (ref {ref}); the error is in its log.",
                               failed_step=None, masker=masker)
            return
        finally:
            if workspace is not None:
                await asyncio.to_thread(shutil.rmtree, workspace, True)
        for event in getattr(result, "steps", ()) or ():  # the engine's own account is the final one
            steps.record(str(event.step_id), masker.text(str(event.name or event.step_id)), str(event.status),
                         (masker.text(str(line)) for line in (event.log or ())))
        await self._finish(task.id, title, notify, steps.rows(), status="completed" if result.ok else "failed",
                           output=dict(result.output or {}), error=None if result.ok else (result.error or "failed"),
                           failed_step=result.failed_step, masker=masker)

    def _workspace(self, task_id: str) -> Path:
        self.workspaces.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{task_id}-", dir=self.workspaces))

    async def _finish(self, task_id: str, title: str, notify: Notify | None, steps: list[dict[str, Any]], *,
                      status: str, output: Mapping[str, Any] | None, error: str | None, failed_step: str | None,
                      masker: _Masker) -> None:
        safe_output = _json_safe(masker.deep(output)) if output is not None else None
        safe_error = masker.text(error) if error is not None else None
        async with self.engine.begin() as conn:
            held = await store.finish_task(conn, task_id, self.runner_id, status=status, steps=steps,
                                           output=safe_output, error=safe_error, failed_step=failed_step,
                                           now=self.clock())
        if not held:  # failed as stale meanwhile (a very long stall): the database's account stands
            log.warning("task %s ended here but was no longer held by this process", task_id)
            return
        log.info("task finished task=%s status=%s failed_step=%s", task_id, status, failed_step or "-")
        if notify is not None:
            links, entities = output_links(safe_output)
            await _tell(notify, TaskFinished(task_id=task_id, title=title, status=status, links=links,
                                             entities=entities, text=output_texts(safe_output), error=safe_error,
                                             failed_step=failed_step), task_id)


async def _tell(notify: Notify, note: TaskNote, task_id: str) -> None:
    try:
        await notify(note)
    except Exception:  # noqa: BLE001 - a message that cannot be posted does not fail the run
        log.warning("task %s: progress message failed", task_id, exc_info=True)


def output_links(output: Mapping[str, Any] | None) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """spec.output.links as (title, url) and (title, entity ref) pairs (http(s) URLs only)."""
    urls: list[tuple[str, str]] = []
    entities: list[tuple[str, str]] = []
    links = (output or {}).get("links")
    for link in links if isinstance(links, list) else ():
        if not isinstance(link, Mapping):
            continue
        url, ref = link.get("url"), link.get("entityRef")
        title = link.get("title")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            urls.append((str(title) if title else url, url))
        elif isinstance(ref, str) and ref:
            entities.append((str(title) if title else ref, ref))
    return tuple(urls), tuple(entities)


def output_texts(output: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    """spec.output.text as (title, content) pairs."""
    texts = (output or {}).get("text")
    out: list[tuple[str, str]] = []
    for item in texts if isinstance(texts, list) else ():
        if isinstance(item, Mapping) and isinstance(item.get("content"), str):
            out.append((str(item.get("title") or ""), item["content"]))
    return tuple(out)
