"""Repository functions: all the SQL Callboard runs, behind async functions.

Callers pass an ``AsyncConnection`` (one transaction per location during a
sync) and get plain rows back (named tuples, read by field name, and dicts);
``catalog`` turns them into its dataclasses. Bulk writes go through the driver's ``executemany`` — the
fastest path both aiosqlite and asyncpg offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable, Container, Iterable, Sequence
from datetime import datetime, timezone
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import CursorResult, Insert, String, delete, func, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import sqlite_file_lock
from .schema import catalog_errors, chat_events, docs_sites, entities, locations, relations

__all__ = [
    "DocsRefRow",
    "EntityRow",
    "EntityState",
    "IndexRow",
    "all_errors",
    "all_relations",
    "catalog_version",
    "delete_docs_sites",
    "docs_site",
    "docs_sites_all",
    "entities_with_docs",
    "save_docs_site",
    "tag_counts",
    "claim_event",
    "prune_events",
    "sync_lease",
    "user_key_by_email",
    "child_locations",
    "counts",
    "delete_entities",
    "delete_entities_of",
    "delete_location_tree",
    "entity_count",
    "entity_hashes",
    "entity_states_of",
    "retire_locations",
    "update_location_state",
    "key_locations",
    "location_entities",
    "reparent_location",
    "entity_states",
    "update_lines",
    "errors_for_location",
    "get_entities",
    "index_rows",
    "location_states",
    "relations_of",
    "relations_to",
    "replace_errors",
    "replace_relations",
    "root_locations",
    "save_location",
    "upsert_entities",
]

class EntityRow(NamedTuple):
    """One row of ``entities`` as the sync writes it. The field order is the column order of
    the bulk writes (``_ENTITY_COLUMNS``), so the rows go to the driver as they are; read
    them by name."""

    key: str
    kind: str
    namespace: str
    name: str
    title: str | None
    location_key: str
    file: str | None
    line: int | None
    hash: str
    source_hash: str | None
    data: str
    raw: str | None


class EntityState(NamedTuple):
    """What the sync needs to know of a stored entity to tell whether it changed."""

    hash: str  # of the entity document as stored
    source_hash: str | None  # of the document's text as read (None: not recorded)
    line: int | None
    has_raw: bool  # it read placeholders ($text, $json, $yaml): its text alone does not decide


class DocsRefRow(NamedTuple):
    """An entity with a techdocs-ref annotation: where it was read from, and the annotation."""

    key: str
    name: str
    file: str | None
    location_key: str
    ref: str


class IndexRow(NamedTuple):
    """What the in-memory search index holds of an entity."""

    key: str
    name: str
    title: str | None


_CHUNK = 500


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _params(conn: AsyncConnection, n: int) -> str:
    if conn.dialect.name == "postgresql":
        return ", ".join(f"${i}" for i in range(1, n + 1))
    return ", ".join("?" for _ in range(n))


_ENTITY_COLUMNS: tuple[str, ...] = EntityRow._fields


async def _copy(conn: AsyncConnection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """PostgreSQL's COPY through asyncpg, inside the caller's transaction (~10x an INSERT batch)."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=rows, columns=list(columns))


#: pg_advisory_lock key of the sync lease (the migrations use another).
_SYNC_LOCK_KEY = 7419239


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- locations ---------------------------------------------------------------------------


async def location_states(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(select(locations))
    return {row.key: dict(row._mapping) for row in rows}


async def root_locations(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(locations).where(locations.c.is_root == 1).order_by(locations.c.key))
    return [dict(r._mapping) for r in rows]


async def child_locations(conn: AsyncConnection, parent_key: str) -> list[dict[str, Any]]:
    rows = await conn.execute(select(locations).where(locations.c.parent_key == parent_key))
    return [dict(r._mapping) for r in rows]


async def save_location(conn: AsyncConnection, row: dict[str, Any], *, child: bool = False) -> None:
    """Insert or update one location's state (``row`` has the column names).

    ``child``: a Location entity lists it; a registered root keeps being a root.
    """
    row = {**row, "synced_at": row.get("synced_at") or _now()}
    query = update(locations).where(locations.c.key == row["key"])
    if child:
        exists = await conn.execute(select(locations.c.is_root).where(locations.c.key == row["key"]))
        found = exists.first()
        if found is not None:
            if not found[0]:
                await conn.execute(query.values(parent_key=row["parent_key"], origin_key=row["origin_key"]))
            return
        await conn.execute(locations.insert().values(**row))
        return
    result = await conn.execute(query.values(**row))
    if result.rowcount == 0:
        await conn.execute(locations.insert().values(**row))


async def location_entities(conn: AsyncConnection, *, except_location: str) -> list[tuple[str, str, str]]:
    """(location key, entity key, entity document) of every Location entity not defined in
    ``except_location``."""
    rows = await conn.execute(
        select(entities.c.location_key, entities.c.key, entities.c.data).where(
            entities.c.kind == "Location", entities.c.location_key != except_location
        )
    )
    return [(loc, key, data) for loc, key, data in rows]


async def reparent_location(conn: AsyncConnection, key: str, parent_key: str) -> None:
    await conn.execute(update(locations).where(locations.c.key == key).values(parent_key=parent_key))


async def update_location_state(conn: AsyncConnection, key: str, **values: Any) -> None:
    """Set some state columns of one location (``status``, ``content_hash``, ...), nothing else."""
    await conn.execute(update(locations).where(locations.c.key == key).values(**values, synced_at=_now()))


async def retire_locations(conn: AsyncConnection, keys: Sequence[str]) -> None:
    """Mark roots that are no longer synced: their entities stay until the sync that drops them
    has written the new catalog; a re-sync of the registered roots does not read them again."""
    for chunk in _chunks(list(keys)):
        await conn.execute(update(locations).where(locations.c.key.in_(chunk)).values(status="retired"))


async def delete_location_tree(conn: AsyncConnection, key: str, *, keep: Container[str] = ()) -> list[str]:
    """Forget a location, the locations it registered, and their entities; return removed keys.

    Locations in ``keep`` (read again by this sync through another parent) stay, with what
    they registered.
    """
    removed: list[str] = []
    todo = [key]
    seen: set[str] = set()
    while todo:
        current = todo.pop()
        if current in seen or current in keep:
            continue
        seen.add(current)
        # registered roots stay: another Location listing them does not own them
        todo.extend(r["key"] for r in await child_locations(conn, current) if not r["is_root"])
        keys = list(await entity_hashes(conn, current))
        await delete_entities(conn, keys)
        removed.extend(keys)
        await conn.execute(delete(catalog_errors).where(catalog_errors.c.location_key == current))
        await conn.execute(delete(locations).where(locations.c.key == current))
    return removed


# --- entities ----------------------------------------------------------------------------


async def entity_hashes(conn: AsyncConnection, location_key: str) -> dict[str, str]:
    rows = await conn.execute(
        select(entities.c.key, entities.c.hash).where(entities.c.location_key == location_key)
    )
    return {k: h for k, h in rows}


def _state_columns() -> tuple[Any, ...]:
    return (entities.c.key, entities.c.hash, entities.c.source_hash, entities.c.line, entities.c.raw.is_not(None))


#: an ``EntityState`` from a tuple of its fields: a re-sync reads one per entity of a location
#: (100k in one file), and ``tuple.__new__`` costs a third of the named constructor
_state: Callable[[tuple[Any, ...]], EntityState] = partial(tuple.__new__, EntityState)


async def entity_states(conn: AsyncConnection, location_key: str) -> dict[str, EntityState]:
    """key -> stored state of every entity one location holds."""
    rows = await conn.execute(select(*_state_columns()).where(entities.c.location_key == location_key))
    return {k: _state((h, sh, line, bool(raw))) for k, h, sh, line, raw in rows}


async def entity_states_of(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, EntityState]:
    """key -> stored state of these entities, wherever they are defined (for entities that move
    from one location to another)."""
    out: dict[str, EntityState] = {}
    for chunk in _chunks(list(keys)):
        rows = await conn.execute(select(*_state_columns()).where(entities.c.key.in_(chunk)))
        out.update({k: _state((h, sh, line, bool(raw))) for k, h, sh, line, raw in rows})
    return out


async def entity_count(conn: AsyncConnection, location_key: str) -> int:
    result = await conn.execute(select(func.count()).select_from(entities).where(entities.c.location_key == location_key))
    return int(result.scalar() or 0)


async def key_locations(conn: AsyncConnection) -> dict[str, str]:
    """Every entity key with the location that holds it (for conflict checks during a sync)."""
    result: CursorResult[str, str] = await conn.exec_driver_sql("SELECT key, location_key FROM entities")
    interned: dict[str, str] = {}
    return {key: interned.setdefault(loc, loc) for key, loc in result}


async def upsert_entities(conn: AsyncConnection, rows: Sequence[EntityRow], *, new: bool) -> None:
    """Insert new entity rows, or update existing ones (by key)."""
    if not rows:
        return
    if new:
        if conn.dialect.name == "postgresql":
            await _copy(conn, "entities", _ENTITY_COLUMNS, rows)
            return
        sql = f"INSERT INTO entities ({', '.join(_ENTITY_COLUMNS)}) VALUES ({_params(conn, len(_ENTITY_COLUMNS))})"
        await conn.exec_driver_sql(sql, list(rows))
        return
    # numbered parameters ($n in PostgreSQL, ?n in SQLite) name each column's place in the row
    mark = "$" if conn.dialect.name == "postgresql" else "?"
    sets = ", ".join(f"{c}={mark}{i}" for i, c in enumerate(_ENTITY_COLUMNS, start=1) if c != "key")
    key_at = _ENTITY_COLUMNS.index("key") + 1
    await conn.exec_driver_sql(f"UPDATE entities SET {sets} WHERE key={mark}{key_at}", list(rows))


async def update_lines(conn: AsyncConnection, rows: Sequence[tuple[str, int]]) -> None:
    """Move entities whose unchanged document shifted within its file: (key, line)."""
    if not rows:
        return
    mark = "$" if conn.dialect.name == "postgresql" else "?"
    await conn.exec_driver_sql(f"UPDATE entities SET line={mark}2 WHERE key={mark}1", list(rows))


async def delete_entities(conn: AsyncConnection, keys: Sequence[str]) -> None:
    for chunk in _chunks(list(keys)):
        await conn.execute(delete(relations).where(relations.c.source.in_(chunk)))
        await conn.execute(delete(entities).where(entities.c.key.in_(chunk)))


async def delete_entities_of(conn: AsyncConnection, location_key: str, keys: Sequence[str]) -> list[str]:
    """Delete those of ``keys`` that ``location_key`` still holds (an entity that moved to another
    location since stays); return the keys deleted."""
    held: list[str] = []
    for chunk in _chunks(list(keys)):
        rows = await conn.execute(
            select(entities.c.key).where(entities.c.location_key == location_key, entities.c.key.in_(chunk))
        )
        held.extend(k for (k,) in rows)
    await delete_entities(conn, held)
    return held


async def get_entities(conn: AsyncConnection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(list(dict.fromkeys(keys))):
        rows = await conn.execute(select(entities).where(entities.c.key.in_(chunk)))
        out.update({r.key: dict(r._mapping) for r in rows})
    return out


async def index_rows(conn: AsyncConnection) -> list[IndexRow]:
    """Every entity as the in-memory search index needs it."""
    rows = await conn.execute(select(entities.c.key, entities.c.name, entities.c.title))
    return [IndexRow(key, name, title) for key, name, title in rows]


async def counts(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(entities.c.kind, func.count()).group_by(entities.c.kind))
    return {kind: n for kind, n in rows}


# --- relations ---------------------------------------------------------------------------


async def replace_relations(
    conn: AsyncConnection, sources: Sequence[str], rows: Sequence[tuple[str, str, str]], *, fresh: bool = False
) -> None:
    """Replace the relations emitted by ``sources`` with ``rows``.

    ``fresh`` skips the delete when the sources are new to the catalog.
    """
    if not fresh:
        for chunk in _chunks(list(sources)):
            await conn.execute(delete(relations).where(relations.c.source.in_(chunk)))
    if rows:
        if conn.dialect.name == "postgresql":
            await _copy(conn, "relations", ("source", "type", "target"), rows)
            return
        await conn.exec_driver_sql(
            f"INSERT INTO relations (source, type, target) VALUES ({_params(conn, 3)})", list(rows)
        )


async def all_relations(conn: AsyncConnection) -> list[tuple[str, str, str]]:
    """Every stored relation (source, type, target): what the in-memory graph is built from."""
    result = await conn.exec_driver_sql("SELECT source, type, target FROM relations")
    return [tuple(r) for r in result]


async def relations_of(conn: AsyncConnection, key: str) -> list[tuple[str, str, str]]:
    """Relations emitted by ``key`` (source, type, target)."""
    rows = await conn.execute(
        select(relations.c.source, relations.c.type, relations.c.target).where(relations.c.source == key)
    )
    return [tuple(r) for r in rows]


async def relations_to(conn: AsyncConnection, key: str) -> list[tuple[str, str, str]]:
    """Relations other entities emitted towards ``key`` (source, type, target)."""
    rows = await conn.execute(
        select(relations.c.source, relations.c.type, relations.c.target).where(relations.c.target == key)
    )
    return [tuple(r) for r in rows]


# --- errors ------------------------------------------------------------------------------


async def replace_errors(conn: AsyncConnection, location_key: str, rows: Sequence[dict[str, Any]]) -> None:
    await conn.execute(delete(catalog_errors).where(catalog_errors.c.location_key == location_key))
    if rows:
        await conn.execute(catalog_errors.insert(), [{**r, "location_key": location_key} for r in rows])


async def errors_for_location(conn: AsyncConnection, location_key: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(catalog_errors).where(catalog_errors.c.location_key == location_key).order_by(catalog_errors.c.id)
    )
    return [dict(r._mapping) for r in rows]


async def all_errors(conn: AsyncConnection, entity: str | None = None) -> list[dict[str, Any]]:
    query = select(catalog_errors).order_by(catalog_errors.c.file, catalog_errors.c.line)
    if entity is not None:
        query = query.where(catalog_errors.c.entity == entity)
    rows = await conn.execute(query)
    return [dict(r._mapping) for r in rows]


# --- chat events -------------------------------------------------------------------------


async def claim_event(conn: AsyncConnection, event_id: str) -> bool:
    """Record ``event_id``; False when some process (this or another replica) already has it."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt: Insert = pg_insert(chat_events).values(event_id=event_id, received_at=_now()).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(chat_events).values(event_id=event_id, received_at=_now()).on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def catalog_version(conn: AsyncConnection) -> str:
    """A digest of every location's content fingerprint: it changes whenever a sync wrote
    something, whichever process ran it."""
    rows = await conn.execute(
        select(locations.c.key, locations.c.status, locations.c.content_hash, locations.c.entity_count).order_by(
            locations.c.key
        )
    )
    digest = hashlib.blake2b(digest_size=16)
    for key, status, content_hash, count in rows:
        digest.update(f"{key}\0{status}\0{content_hash}\0{count}\n".encode())
    return digest.hexdigest()


@contextlib.asynccontextmanager
async def sync_lease(engine: AsyncEngine) -> AsyncIterator[None]:
    """Exclusive right to sync the catalog, so that replicas sharing one database (and a
    ``callboard sync`` beside them) take turns instead of interleaving their read-compare-write.

    PostgreSQL: a session advisory lock. SQLite file: an exclusive ``flock`` on a lock file beside
    the database (polled, so a cancelled wait leaves nothing behind). An in-memory SQLite
    belongs to one connection and needs none.
    """
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            # polled, not one waiting pg_advisory_lock: another replica's sync may hold the lease
            # for longer than a statement may take (engine.STATEMENT_TIMEOUT)
            while not (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _SYNC_LOCK_KEY})).scalar():
                await asyncio.sleep(0.2)
            try:
                yield
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _SYNC_LOCK_KEY})
                await conn.commit()
        return
    async with sqlite_file_lock(engine, "sync-lock"):
        yield


async def prune_events(conn: AsyncConnection, older_than: datetime) -> int:
    """Forget event ids received before ``older_than`` (Slack stops retrying after minutes)."""
    result = await conn.execute(delete(chat_events).where(chat_events.c.received_at < older_than))
    return int(result.rowcount or 0)


async def tag_counts(conn: AsyncConnection, *, kinds: Sequence[str] = (), contains: str = "",
                     limit: int = 50) -> list[tuple[str, int]]:
    """The tags entities carry (``metadata.tags``), most used first, then by name: at most
    ``limit``, of entities of ``kinds`` (any case; empty: all), holding ``contains`` (any case).
    Counted in the database: one row per tag comes back, never the entities."""
    pg = conn.dialect.name == "postgresql"
    params: list[Any] = []

    def mark() -> str:
        return f"${len(params)}" if pg else "?"

    tag = "t.tag" if pg else "t.value"
    where: list[str] = []
    if kinds:
        marks = []
        for kind in kinds:
            params.append(kind.lower())
            marks.append(mark())
        where.append(f"lower(e.kind) IN ({', '.join(marks)})")
    if contains:
        params.append(contains.lower())
        where.append(f"strpos(lower({tag}), {mark()}) > 0" if pg else f"instr(lower({tag}), {mark()}) > 0")
    params.append(max(1, int(limit)))
    if pg:
        source = ("entities e CROSS JOIN LATERAL json_array_elements_text(CASE WHEN json_typeof("
                  "e.data::json -> 'metadata' -> 'tags') = 'array' THEN e.data::json -> 'metadata' -> 'tags' "
                  "ELSE '[]'::json END) AS t(tag)")
    else:
        source = "entities e, json_each(e.data, '$.metadata.tags') AS t"
        where.append("t.type = 'text'")
    collate = ' COLLATE "C"' if pg else ""  # ties by code point, as SQLite orders them
    sql = (f"SELECT {tag}, count(*) AS n FROM {source}"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + f" GROUP BY {tag} ORDER BY n DESC, {tag}{collate} LIMIT {mark()}")
    result = await conn.exec_driver_sql(sql, tuple(params))
    rows: Sequence[Any] = result.all()
    return [(str(row[0]), int(row[1])) for row in rows]


async def user_key_by_email(conn: AsyncConnection, email: str) -> str | None:
    """The catalog User whose spec.profile.email is ``email`` (case-insensitive)."""
    if conn.dialect.name == "postgresql":
        sql = (
            "SELECT key FROM entities WHERE kind = 'User' "
            "AND lower((data::json -> 'spec' -> 'profile' ->> 'email')) = lower($1) LIMIT 1"
        )
    else:
        sql = (
            "SELECT key FROM entities WHERE kind = 'User' "
            "AND lower(json_extract(data, '$.spec.profile.email')) = lower(?) LIMIT 1"
        )
    result = await conn.exec_driver_sql(sql, (email,))
    row = result.first()
    return str(row[0]) if row else None


# --- bulk loading ------------------------------------------------------------------------

#: Secondary indexes that a load into an empty catalog builds once at the end instead of
#: maintaining row by row (a sorted build is several times cheaper than random inserts).
_BULK_INDEXES = (
    ("ix_relations_target", "relations", "target"),
    ("ix_entities_location_key", "entities", "location_key"),
    ("ix_entities_kind", "entities", "kind"),
)


async def is_empty(conn: AsyncConnection) -> bool:
    return (await conn.execute(select(entities.c.key).limit(1))).first() is None


async def drop_bulk_indexes(conn: AsyncConnection) -> None:
    for name, _table, _column in _BULK_INDEXES:
        await conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


async def create_bulk_indexes(conn: AsyncConnection) -> None:
    for name, table, column in _BULK_INDEXES:
        await conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")


# --- TechDocs ------------------------------------------------------------------------------

TECHDOCS_REF = "backstage.io/techdocs-ref"


async def entities_with_docs(conn: AsyncConnection) -> list[DocsRefRow]:
    """Every entity that has a techdocs-ref annotation, in no particular order: a table scan
    (in key order the database would read the table row by row through the key's index)."""
    if conn.dialect.name == "postgresql":
        ref = literal_column(f"(data::json -> 'metadata' -> 'annotations' ->> '{TECHDOCS_REF}')", String)
    else:
        ref = literal_column(f"json_extract(data, '$.metadata.annotations.\"{TECHDOCS_REF}\"')", String)
    rows = await conn.execute(
        select(entities.c.key, entities.c.name, entities.c.file, entities.c.location_key, ref.label("ref"))
        # a plain substring test first: most entities have no docs, and it is far cheaper than JSON
        .where(entities.c.data.contains(TECHDOCS_REF, autoescape=True), ref.is_not(None))
    )
    return [DocsRefRow(*r) for r in rows]


async def docs_sites_all(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(select(docs_sites))
    return {r.entity_key: dict(r._mapping) for r in rows}


async def docs_site(conn: AsyncConnection, key: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(docs_sites).where(docs_sites.c.entity_key == key))).first()
    return dict(row._mapping) if row else None


async def save_docs_site(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(delete(docs_sites).where(docs_sites.c.entity_key == row["entity_key"]))
    await conn.execute(docs_sites.insert().values(**row))


async def delete_docs_sites(conn: AsyncConnection, keys: Sequence[str]) -> None:
    for chunk in _chunks(list(keys)):
        await conn.execute(delete(docs_sites).where(docs_sites.c.entity_key.in_(chunk)))
