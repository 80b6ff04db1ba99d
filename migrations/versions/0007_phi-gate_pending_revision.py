"""pending revision: an edit of a published case with identifier findings waits for confirmation

Revision ID: 0006_phi_gate
Revises: 0006_quiz_marker
Create Date: 2026-12-04 18:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_phi_gate"
down_revision: str | None = "0006_quiz_marker"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("pending_revision", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("pending_revision")
