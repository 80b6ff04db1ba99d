"""teachfile verify: rows without files, corrupt files, orphans and staging leftovers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli import cli
from app.models import Instance, Institution, QuarantinedObject
from app.services import intake, integrity
from tests import dicomfiles

OLD = time.time() - 2 * integrity.GRACE_SECONDS


def _age(path: Path) -> Path:
    os.utime(path, (OLD, OLD))
    return path


def _held(session: Session, institution: Institution, config: Any) -> QuarantinedObject:
    outcome = intake.ingest(
        session,
        dicomfiles.to_bytes(dicomfiles.burned_in_secondary_capture()),
        institution=institution,
        source="test",
        config=config,
    )
    session.commit()
    assert outcome.status == "quarantined"
    return session.scalars(select(QuarantinedObject)).one()


def test_clean_store_passes(
    runner: FlaskCliRunner,
    session: Session,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    intake_config: Any,
) -> None:
    hospital = create_institution()
    create_study(hospital, slices=3)
    _held(session, hospital, intake_config)
    result = runner.invoke(cli, ["verify"])
    assert result.exit_code == 0, result.output
    assert "Checked 3 stored and 1 quarantined files: 0 missing, 0 corrupt" in result.output


def test_missing_and_corrupt_files_fail_and_are_never_repaired(
    runner: FlaskCliRunner,
    session: Session,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    intake_config: Any,
) -> None:
    hospital = create_institution()
    create_study(hospital, slices=3)
    held = _held(session, hospital, intake_config)
    store = intake_config.store
    first, second, _ = sorted(session.scalars(select(Instance.sha256)))
    store.path(first).unlink()
    corrupt = store.path(second)
    os.chmod(corrupt, 0o600)
    corrupt.write_bytes(corrupt.read_bytes()[:-1] + b"\x00")
    store.path(held.sha256, "quarantine").unlink()

    result = runner.invoke(cli, ["verify", "--repair"])
    assert result.exit_code == 1
    assert f"MISSING  objects/{first[:2]}/{first[2:4]}/{first}" in result.output
    assert f"CORRUPT  objects/{second[:2]}/{second[2:4]}/{second}" in result.output
    assert f"MISSING  quarantine/{held.sha256[:2]}" in result.output
    assert corrupt.exists()  # the evidence stays; only a backup brings the content back


def test_orphans_and_stale_tmp_reported_then_swept(
    runner: FlaskCliRunner,
    session: Session,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    intake_config: Any,
) -> None:
    hospital = create_institution()
    create_study(hospital, slices=2)
    store = intake_config.store
    kept = [store.path(sha) for sha in session.scalars(select(Instance.sha256))]
    orphan = _age(store.path(store.put(b"crashed before commit").sha256))
    stray = store.root / "objects" / "ab" / "not-a-hash"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"x")
    _age(stray)
    resolved = _age(
        store.path(store.put(b"released, file not removed", "quarantine").sha256, "quarantine")
    )
    stale = store.tmp / "abc.123.456"
    stale.write_bytes(b"half")
    _age(stale)
    young_orphan = store.path(store.put(b"a transaction in flight").sha256)

    result = runner.invoke(cli, ["verify"])
    assert result.exit_code == 1
    for path in (orphan, stray, resolved):
        assert f"ORPHAN   {path.relative_to(store.root).as_posix()}" in result.output
    assert "STALE    tmp/abc.123.456" in result.output
    assert "3 orphan, 1 stale staging, 1 in flight, 0 removed" in result.output

    result = runner.invoke(cli, ["verify", "--repair"])
    assert result.exit_code == 0, result.output
    assert "4 removed" in result.output
    assert not orphan.exists() and not stray.exists() and not resolved.exists()
    assert not stale.exists()
    assert young_orphan.exists()  # may still get its row
    assert all(path.exists() for path in kept)

    assert runner.invoke(cli, ["verify"]).exit_code == 0


def test_repair_never_removes_a_file_a_row_points_to(
    app: Flask,
    session: Session,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    intake_config: Any,
) -> None:
    """A row committed between the scan and the sweep keeps its file."""
    hospital = create_institution()
    create_study(hospital, slices=1)
    store = intake_config.store
    instance = session.scalars(select(Instance)).one()
    path = _age(store.path(instance.sha256))
    report = integrity.VerifyReport(orphans=[path.relative_to(store.root).as_posix()])
    integrity._repair(session, store, report)
    assert path.exists()
    assert report.removed == []
