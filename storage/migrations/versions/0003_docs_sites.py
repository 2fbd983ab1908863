"""TechDocs sites: per entity, what its docs were built from and how the last build went.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "docs_sites",
        sa.Column("entity_key", sa.String(512), primary_key=True),
        sa.Column("ref", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("source_hash", sa.String(64), nullable=True),
        sa.Column("built_hash", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("warnings", sa.Text, nullable=True),
        sa.Column("pages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("sections", sa.Integer, nullable=False, server_default="0"),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("docs_sites")
