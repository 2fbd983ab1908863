"""What a conversation keeps between a person's clicks: the question behind a Next button, a form's
values so far. Server-side, so a button carries a short key and not the state itself.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_chat_state_created_at", "chat_state", ["created_at"])


def downgrade() -> None:
    op.drop_table("chat_state")
