"""What conversations keep in the database: state behind buttons and forms (``chat_state``).

A button carries a short random key; what it stands for (the question a Next button pages
through, a form's values so far) is a row here, so it survives a restart, is shared by replicas,
and has no size limit that a platform's button value would impose.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import chat_state

__all__ = ["load_state", "prune_state", "save_state"]


async def save_state(conn: AsyncConnection, kind: str, value: Any) -> str:
    """Keep ``value`` (anything JSON can hold) and return the key that finds it again."""
    key = secrets.token_urlsafe(12)
    await conn.execute(insert(chat_state).values(key=key, kind=kind, value=json.dumps(value),
                                                 created_at=datetime.now(timezone.utc)))
    return key


async def load_state(conn: AsyncConnection, key: str, kind: str) -> Any | None:
    """The value kept under ``key`` when it is of ``kind``; None when there is none (expired, or a
    key someone made up)."""
    if not key or len(key) > 64:
        return None
    row = (await conn.execute(select(chat_state.c.value).where(chat_state.c.key == key, chat_state.c.kind == kind))
           ).first()
    return None if row is None else json.loads(row[0])


async def prune_state(conn: AsyncConnection, older_than: datetime) -> int:
    """Forget state kept before ``older_than``."""
    result = await conn.execute(delete(chat_state).where(chat_state.c.created_at < older_than))
    return int(result.rowcount or 0)
