"""What a database remembers of the syncs that filled it (``sync_settings``).

A sync records the catalog roots it was given and the on-call sources' settings it ran with (the
schedule file, API addresses; never a credential). A later run that names only this database reads
them back, so it finds the same schedule file and asks the same sources as the sync did. Each key
holds one JSON value; a sync replaces the whole record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import locations, sync_settings

__all__ = ["ever_synced", "load_sync_settings", "save_sync_settings"]


async def load_sync_settings(conn: AsyncConnection) -> dict[str, Any]:
    """Every remembered key with its value; a value that is not JSON (edited by hand) is left out."""
    out: dict[str, Any] = {}
    for key, value in await conn.execute(select(sync_settings.c.key, sync_settings.c.value)):
        try:
            out[key] = json.loads(value)
        except ValueError:
            continue
    return out


async def save_sync_settings(conn: AsyncConnection, values: Mapping[str, Any]) -> None:
    """Replace the record with ``values`` (anything JSON can hold, per key)."""
    now = datetime.now(timezone.utc)
    await conn.execute(delete(sync_settings))
    if values:
        await conn.execute(insert(sync_settings), [
            {"key": key, "value": json.dumps(value, sort_keys=True), "saved_at": now} for key, value in values.items()
        ])


async def ever_synced(conn: AsyncConnection) -> bool:
    """Has a sync ever registered a catalog in this database (or recorded what it was given)?"""
    query = select(exists().where(locations.c.is_root == 1)).union_all(select(exists().select_from(sync_settings)))
    return any(bool(found) for (found,) in await conn.execute(query))
