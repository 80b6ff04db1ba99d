"""option order: pinned_last options, shuffled option order per attempt and review item

Revision ID: 0006_quiz_marker
Revises: 0005
Create Date: 2026-12-04 18:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_quiz_marker"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("question_options") as batch:
        batch.add_column(
            sa.Column("pinned_last", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("quiz_attempts") as batch:
        batch.add_column(sa.Column("option_order", sa.JSON(), nullable=True))
    with op.batch_alter_table("review_items") as batch:
        batch.add_column(sa.Column("option_order", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("option_order")
    with op.batch_alter_table("quiz_attempts") as batch:
        batch.drop_column("option_order")
    with op.batch_alter_table("question_options") as batch:
        batch.drop_column("pinned_last")
