"""unknowns: an opaque token per case and each reader's reveal step (issue 15)

Revision ID: 0006_quiz_unknowns
Revises: 0006_phi_gate
Create Date: 2026-12-04 18:45:00
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0006_quiz_unknowns"
down_revision: str | None = "0006_phi_gate"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unknown_token", sa.String(length=32), nullable=True))
    # Existing cases get their random token here (new ones from the model's default).
    cases = sa.table("cases", sa.column("id", sa.Integer()), sa.column("unknown_token"))
    connection = op.get_bind()
    for (case_id,) in connection.execute(sa.select(cases.c.id)).all():
        connection.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(unknown_token=secrets.token_urlsafe(12))
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("unknown_token", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_cases_unknown_token"), ["unknown_token"])

    op.create_table(
        "unknown_reveals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_unknown_reveals_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_unknown_reveals_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unknown_reveals")),
        sa.UniqueConstraint("user_id", "case_id", name=op.f("uq_unknown_reveals_user_id")),
    )
    with op.batch_alter_table("unknown_reveals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unknown_reveals_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("unknown_reveals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unknown_reveals_case_id"))
    op.drop_table("unknown_reveals")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_cases_unknown_token"), type_="unique")
        batch_op.drop_column("unknown_token")
