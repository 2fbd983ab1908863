"""Initial schema: locations, entities, relations, catalog errors.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locations",
        sa.Column("key", sa.String(2048), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("parent_key", sa.String(2048), nullable=True),
        sa.Column("origin_key", sa.String(2048), nullable=True),
        sa.Column("is_root", sa.Integer, nullable=False, server_default="0"),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("deps", sa.Text, nullable=True),
        sa.Column("entity_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_locations_parent_key", "locations", ["parent_key"])
    op.create_table(
        "entities",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("location_key", sa.String(2048), nullable=False),
        sa.Column("file", sa.Text, nullable=True),
        sa.Column("line", sa.Integer, nullable=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("source_hash", sa.String(64), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=True),
    )
    op.create_index("ix_entities_location_key", "entities", ["location_key"])
    op.create_index("ix_entities_kind", "entities", ["kind"])
    op.create_table(
        "relations",
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.PrimaryKeyConstraint("source", "type", "target"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_relations_target", "relations", ["target"])
    op.create_table(
        "catalog_errors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("location_key", sa.String(2048), nullable=False),
        sa.Column("file", sa.Text, nullable=False),
        sa.Column("line", sa.Integer, nullable=True),
        sa.Column("entity", sa.String(512), nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_catalog_errors_location_key", "catalog_errors", ["location_key"])
    op.create_index("ix_catalog_errors_entity", "catalog_errors", ["entity"])


def downgrade() -> None:
    for table in ("catalog_errors", "relations", "entities", "locations"):
        op.drop_table(table)
