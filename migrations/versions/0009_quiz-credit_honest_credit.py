"""honest credit: exam time limits, credit provider, accreditation statement, credit type

Revision ID: 0006_quiz_credit
Revises: 0006_quiz_unknowns
Create Date: 2026-12-04 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0006_quiz_credit"
down_revision: str | None = "0006_quiz_unknowns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("case_sets") as batch:
        batch.add_column(sa.Column("time_limit_minutes", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("credit_provider", sa.String(length=300), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("accreditation_statement", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("credit_type", sa.String(length=200), nullable=False, server_default="")
        )
    with op.batch_alter_table("quiz_attempts") as batch:
        batch.add_column(sa.Column("deadline_at", app.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(
            sa.Column("provider", sa.String(length=300), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("accreditation_statement", sa.Text(), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("credit_type", sa.String(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("credit_type")
        batch.drop_column("accreditation_statement")
        batch.drop_column("provider")
    with op.batch_alter_table("quiz_attempts") as batch:
        batch.drop_column("deadline_at")
    with op.batch_alter_table("case_sets") as batch:
        batch.drop_column("credit_type")
        batch.drop_column("accreditation_statement")
        batch.drop_column("credit_provider")
        batch.drop_column("time_limit_minutes")
