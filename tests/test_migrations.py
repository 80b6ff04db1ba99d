"""Drift guards: one Alembic head, and the models equal the schema the migrations build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

import app.models  # noqa: F401
from app.db import Base, alembic_config


def test_there_is_one_migration_head() -> None:
    engine = create_engine("sqlite://")
    heads = ScriptDirectory.from_config(alembic_config(engine)).get_heads()
    assert len(heads) == 1, f"several heads: {heads}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_models_match_migration_head(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
