"""Scaffolder tasks in the database (``tasks``): one row per run of a Software Template.

A task is ``open`` until a runner claims it, ``processing`` while it runs, then ``completed``,
``failed`` or ``cancelled``. Replicas sharing one PostgreSQL claim open tasks with
``SELECT … FOR UPDATE SKIP LOCKED``, so each task runs once and no replica waits on another's
lock; on SQLite (one process) a claim is a compare-and-set on the row's status.

``runner`` names the process holding a task: the one that claimed it, or, for a task whose
secrets only that process knows (secrets are never stored), the one that started it. A holder
keeps ``heartbeat_at`` fresh; a task whose holder stopped beating is failed by ``fail_stale``,
never left running.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import tasks

__all__ = ["ACTIVE", "FINISHED", "StoredTask", "cancel_task", "claim_task", "fail_stale", "finish_task", "get_task",
           "heartbeat", "insert_task", "tasks_of", "update_steps"]

#: Statuses of a task that is not over yet.
ACTIVE = ("open", "processing")
#: Statuses a task ends in.
FINISHED = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task row, its JSON columns read."""

    id: str
    template_ref: str
    template_title: str
    values: Mapping[str, Any]
    user_ref: str | None
    platform: str
    user_id: str
    who: Mapping[str, Any]
    status: str
    runner: str | None
    steps: tuple[Mapping[str, Any], ...]
    output: Mapping[str, Any] | None
    error: str | None
    failed_step: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    """SQLite gives datetimes back without their zone; every one stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _json(value: str | None, default: Any) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default


def _stored(row: RowMapping) -> StoredTask:
    created = _utc(row["created_at"])
    assert created is not None
    steps = _json(row["steps"], [])
    return StoredTask(
        id=row["id"],
        template_ref=row["template_ref"],
        template_title=row["template_title"],
        values=_json(row["template_values"], {}),
        user_ref=row["user_ref"],
        platform=row["platform"],
        user_id=row["user_id"],
        who=_json(row["who"], {}),
        status=row["status"],
        runner=row["runner"],
        steps=tuple(s for s in steps if isinstance(s, dict)) if isinstance(steps, list) else (),
        output=_json(row["output"], None),
        error=row["error"],
        failed_step=row["failed_step"],
        created_at=created,
        started_at=_utc(row["started_at"]),
        finished_at=_utc(row["finished_at"]),
        heartbeat_at=_utc(row["heartbeat_at"]),
    )


async def insert_task(conn: AsyncConnection, *, id: str, template_ref: str, template_title: str,
                      values: Mapping[str, Any], user_ref: str | None, platform: str, user_id: str,
                      who: Mapping[str, Any], runner: str | None, now: datetime) -> None:
    """Store a new ``open`` task. ``runner``: the process that alone may claim it (None: any)."""
    await conn.execute(insert(tasks).values(
        id=id, template_ref=template_ref, template_title=template_title, template_values=json.dumps(values),
        user_ref=user_ref, platform=platform, user_id=user_id, who=json.dumps(who), status="open", runner=runner,
        steps="[]", created_at=now, heartbeat_at=now if runner is not None else None,
    ))


async def claim_task(conn: AsyncConnection, runner: str, now: datetime, *, shared: bool = True) -> StoredTask | None:
    """Claim the oldest open task ``runner`` may run (one any runner may run, or one held by it;
    with ``shared=False`` only one held by it): it becomes ``processing`` under ``runner``. None
    when there is none free.

    Call inside a transaction (``engine.begin()``): on PostgreSQL the row stays locked until it
    commits, and other replicas skip it rather than wait.
    """
    mine = tasks.c.runner == runner
    claimable = and_(tasks.c.status == "open", or_(tasks.c.runner.is_(None), mine) if shared else mine)
    oldest = select(tasks.c.id).where(claimable).order_by(tasks.c.created_at, tasks.c.id).limit(1)
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        oldest = oldest.with_for_update(skip_locked=True)
    for _ in range(8):  # SQLite: another writer may take the row between the read and the write
        task_id = (await conn.execute(oldest)).scalar()
        if task_id is None:
            return None
        claimed = await conn.execute(
            update(tasks).where(tasks.c.id == task_id, claimable)
            .values(status="processing", runner=runner, started_at=now, heartbeat_at=now)
        )
        if claimed.rowcount == 1:
            return await get_task(conn, task_id)
        if postgres:  # locked and still open: cannot happen; do not spin
            return None
    return None


async def update_steps(conn: AsyncConnection, task_id: str, runner: str, steps: Sequence[Mapping[str, Any]],
                       now: datetime) -> bool:
    """Record the steps so far of a task ``runner`` is running (False: it no longer holds it)."""
    result = await conn.execute(
        update(tasks).where(tasks.c.id == task_id, tasks.c.runner == runner, tasks.c.status == "processing")
        .values(steps=json.dumps(list(steps)), heartbeat_at=now)
    )
    return result.rowcount == 1


async def finish_task(conn: AsyncConnection, task_id: str, runner: str, *, status: str,
                      steps: Sequence[Mapping[str, Any]], output: Mapping[str, Any] | None, error: str | None,
                      failed_step: str | None, now: datetime) -> bool:
    """End a task ``runner`` holds (False: it no longer holds it, e.g. it was failed as stale)."""
    if status not in FINISHED:
        raise ValueError(f"a task ends completed, failed or cancelled, not {status!r}")
    result = await conn.execute(
        update(tasks).where(tasks.c.id == task_id, tasks.c.runner == runner, tasks.c.status.in_(ACTIVE))
        .values(status=status, steps=json.dumps(list(steps)), output=None if output is None else json.dumps(output),
                error=error, failed_step=failed_step, finished_at=now, heartbeat_at=now)
    )
    return result.rowcount == 1


async def heartbeat(conn: AsyncConnection, runner: str, now: datetime) -> int:
    """``runner`` is alive: every unfinished task it holds says so."""
    result = await conn.execute(
        update(tasks).where(tasks.c.runner == runner, tasks.c.status.in_(ACTIVE)).values(heartbeat_at=now)
    )
    return int(result.rowcount or 0)


async def fail_stale(conn: AsyncConnection, older_than: datetime, message: Callable[[datetime], str],
                     now: datetime) -> list[str]:
    """Fail every unfinished task whose holder has not beaten since ``older_than`` (it stopped:
    a restart, a crash); ``message(last_heartbeat)`` is the error each gets. Returns their ids."""
    stale = and_(tasks.c.status.in_(ACTIVE), tasks.c.runner.is_not(None), tasks.c.heartbeat_at < older_than)
    query = select(tasks.c.id, tasks.c.heartbeat_at).where(stale)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    failed: list[str] = []
    for task_id, beat in (await conn.execute(query)).all():
        last = _utc(beat) or now
        result = await conn.execute(update(tasks).where(tasks.c.id == task_id, stale).values(
            status="failed", error=message(last), finished_at=now))
        if result.rowcount == 1:
            failed.append(task_id)
    return failed


async def cancel_task(conn: AsyncConnection, task_id: str) -> bool:
    """Cancel a task nobody has started yet (False: it is running or over)."""
    result = await conn.execute(update(tasks).where(tasks.c.id == task_id, tasks.c.status == "open").values(
        status="cancelled", finished_at=datetime.now(timezone.utc)))
    return result.rowcount == 1


async def get_task(conn: AsyncConnection, task_id: str) -> StoredTask | None:
    if not task_id or len(task_id) > 32:
        return None
    row = (await conn.execute(select(tasks).where(tasks.c.id == task_id))).mappings().first()
    return None if row is None else _stored(row)


async def tasks_of(conn: AsyncConnection, *, user_ref: str | None, platform: str, user_id: str,
                   limit: int = 20) -> list[StoredTask]:
    """A person's tasks, newest first: by their catalog User when known, else by who they are on
    the platform they asked from."""
    if user_ref:
        mine = tasks.c.user_ref == user_ref
    else:
        mine = and_(tasks.c.user_ref.is_(None), tasks.c.platform == platform, tasks.c.user_id == user_id)
    rows = (await conn.execute(select(tasks).where(mine).order_by(tasks.c.created_at.desc(), tasks.c.id.desc())
                               .limit(limit))).mappings().all()
    return [_stored(r) for r in rows]
