"""The database schema (SQLAlchemy Core). Alembic migrations create it; this module
names the tables for the repository code.

Only the relations an entity *emits* are stored (``source --type--> target``);
the inverse side is read through the ``target`` index. Backstage stores both,
which doubles the rows to write.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text

__all__ = ["metadata", "locations", "entities", "relations", "catalog_errors", "chat_events", "chat_state", "docs_sites",
           "sync_settings", "tasks"]

metadata = MetaData()

locations = Table(
    "locations",
    metadata,
    Column("key", String(2048), primary_key=True),
    Column("type", String(32), nullable=False),
    Column("target", Text, nullable=False),
    Column("parent_key", String(2048), nullable=True, index=True),
    Column("origin_key", String(2048), nullable=True),
    Column("is_root", Integer, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="pending"),
    Column("content_hash", String(64), nullable=True),
    Column("deps", Text, nullable=True),
    Column("entity_count", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("synced_at", DateTime(timezone=True), nullable=True),
)

entities = Table(
    "entities",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("kind", String(63), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("name", String(63), nullable=False),
    Column("title", Text, nullable=True),
    Column("location_key", String(2048), nullable=False),
    Column("file", Text, nullable=True),
    Column("line", Integer, nullable=True),
    Column("hash", String(64), nullable=False),
    Column("source_hash", String(64), nullable=True),
    Column("data", Text, nullable=False),
    Column("raw", Text, nullable=True),
    Index("ix_entities_location_key", "location_key"),
    Index("ix_entities_kind", "kind"),
)

relations = Table(
    "relations",
    metadata,
    Column("source", String(512), primary_key=True),
    Column("type", String(32), primary_key=True),
    Column("target", String(512), primary_key=True),
    Index("ix_relations_target", "target"),
    sqlite_with_rowid=False,  # the primary key is the table: one b-tree less to write
)

catalog_errors = Table(
    "catalog_errors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("location_key", String(2048), nullable=False),
    Column("file", Text, nullable=False),
    Column("line", Integer, nullable=True),
    Column("entity", String(512), nullable=True),
    Column("name", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_catalog_errors_location_key", "location_key"),
    Index("ix_catalog_errors_entity", "entity"),
)

chat_events = Table(
    "chat_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False, index=True),
)

chat_state = Table(
    "chat_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("value", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

docs_sites = Table(
    "docs_sites",
    metadata,
    Column("entity_key", String(512), primary_key=True),
    Column("ref", Text, nullable=False),  # the techdocs-ref annotation as written
    Column("source", Text, nullable=True),  # the folder or URL it resolved to
    Column("source_hash", String(64), nullable=True),  # of the sources, at the last check
    Column("built_hash", String(64), nullable=True),  # of the sources the stored site was built from
    Column("status", String(16), nullable=False),  # ok | failed
    Column("error", Text, nullable=True),  # MkDocs' own message when the last build failed
    Column("warnings", Text, nullable=True),  # JSON list
    Column("pages", Integer, nullable=False, default=0),
    Column("sections", Integer, nullable=False, default=0),
    Column("built_at", DateTime(timezone=True), nullable=True),
    Column("checked_at", DateTime(timezone=True), nullable=True),
)

#: What the syncs that filled this database were given (catalog roots, on-call settings; never a
#: credential), one JSON value per key: runs naming only the database answer as those syncs did.
sync_settings = Table(
    "sync_settings",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("saved_at", DateTime(timezone=True), nullable=False),
)

#: Scaffolder tasks (``storage/tasks.py``): one per run of a template. ``template_values`` has the
#: secrets masked (secrets are never stored); ``runner`` is the process that holds the task (its
#: secrets live in that process's memory) and ``heartbeat_at`` says it is still alive.
tasks = Table(
    "tasks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("template_ref", String(512), nullable=False),
    Column("template_title", Text, nullable=False),
    Column("template_values", Text, nullable=False),  # JSON, secrets masked
    Column("user_ref", String(512), nullable=True),  # the catalog User who ran it
    Column("platform", String(32), nullable=False),  # where it was started from (slack, shell, cli, ...)
    Column("user_id", String(128), nullable=False),  # the platform's user id ("" when none)
    Column("who", Text, nullable=False),  # JSON: where to notify, the runner's groups
    Column("status", String(16), nullable=False),  # open | processing | completed | failed | cancelled
    Column("runner", String(64), nullable=True),
    Column("steps", Text, nullable=False),  # JSON list: each step's id, name, status, log lines
    Column("output", Text, nullable=True),  # JSON: the rendered spec.output
    Column("error", Text, nullable=True),
    Column("failed_step", String(256), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Index("ix_tasks_status_created_at", "status", "created_at"),
    Index("ix_tasks_user_ref_created_at", "user_ref", "created_at"),
    Index("ix_tasks_platform_user_id_created_at", "platform", "user_id", "created_at"),
)
