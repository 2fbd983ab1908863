"""Scaffolder tasks: one row per run of a Software Template (who ran what, its values with secrets
masked, its status, each step's log, its outputs), claimed by the replica that runs it.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("template_ref", sa.String(512), nullable=False),
        sa.Column("template_title", sa.Text, nullable=False),
        sa.Column("template_values", sa.Text, nullable=False),
        sa.Column("user_ref", sa.String(512), nullable=True),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("who", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runner", sa.String(64), nullable=True),
        sa.Column("steps", sa.Text, nullable=False),
        sa.Column("output", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("failed_step", sa.String(256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_tasks_status_created_at", "tasks", ["status", "created_at"])
    op.create_index("ix_tasks_user_ref_created_at", "tasks", ["user_ref", "created_at"])
    op.create_index("ix_tasks_platform_user_id_created_at", "tasks", ["platform", "user_id", "created_at"])


def downgrade() -> None:
    op.drop_table("tasks")
