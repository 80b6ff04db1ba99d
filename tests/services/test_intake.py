"""Intake: de-identify, store the file, add the rows; re-sends are idempotent."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import DicomRejected, StorageError
from app.models import Instance, Institution, Patient, QuarantinedObject, Study
from app.services import intake
from app.storage import ObjectStore
from tests import dicomfiles


@pytest.fixture
def config(app: Flask) -> intake.IntakeConfig:
    return intake.make_config(app.config["DATA_DIR"], app.config["DEID_SECRET"])


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution("Rural General")


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_stored_file_is_deidentified_and_rows_point_at_it(
    session: Session, config: intake.IntakeConfig, hospital: Institution
) -> None:
    outcome = intake.ingest(
        session,
        dicomfiles.to_bytes(dicomfiles.ct()),
        institution=hospital,
        source="upload",
        config=config,
    )
    session.commit()
    assert outcome.status == "stored"
    instance = session.scalars(select(Instance)).one()
    data = config.store.read(instance.sha256)
    assert dicomfiles.PLANTED_NAME.encode() not in data
    assert dicomfiles.PLANTED_ID.encode() not in data
    assert instance.sop_instance_uid.startswith("2.25.")
    assert (instance.rows, instance.columns) == (128, 128)
    assert instance.pixel_spacing is not None
    study = session.scalars(select(Study)).one()
    assert study.institution_id == hospital.id
    assert study.patient.pseudonym != dicomfiles.PLANTED_ID


def test_resend_adds_nothing(
    session: Session, config: intake.IntakeConfig, hospital: Institution
) -> None:
    raw = dicomfiles.to_bytes(dicomfiles.ct())
    first = intake.ingest(session, raw, institution=hospital, source="a", config=config)
    second = intake.ingest(session, raw, institution=hospital, source="b", config=config)
    assert (first.status, second.status) == ("stored", "duplicate")
    assert first.sop_instance_uid == second.sop_instance_uid
    assert _count(session, Instance) == 1


def test_one_patient_one_offset_across_studies(
    session: Session, config: intake.IntakeConfig, hospital: Institution
) -> None:
    for ds in (dicomfiles.ct_series(1)[0], dicomfiles.ct_series(1)[0]):
        intake.ingest(
            session, dicomfiles.to_bytes(ds), institution=hospital, source="x", config=config
        )
    session.commit()
    assert _count(session, Patient) == 1
    assert _count(session, Study) == 2


def test_same_patient_id_at_two_hospitals_is_two_patients(
    session: Session, config: intake.IntakeConfig, create_institution: Callable[..., Institution]
) -> None:
    for hospital in (create_institution("A"), create_institution("B")):
        intake.ingest(
            session,
            dicomfiles.to_bytes(dicomfiles.ct_series(1)[0]),
            institution=hospital,
            source="x",
            config=config,
        )
    pseudonyms = session.scalars(select(Patient.pseudonym)).all()
    assert len(set(pseudonyms)) == 2


def test_burned_in_object_is_held_not_stored(
    session: Session, config: intake.IntakeConfig, hospital: Institution
) -> None:
    raw = dicomfiles.to_bytes(dicomfiles.burned_in_secondary_capture())
    outcome = intake.ingest(session, raw, institution=hospital, source="x", config=config)
    assert outcome.status == "quarantined"
    assert _count(session, Instance) == 0
    held = session.scalars(select(QuarantinedObject)).one()
    data = config.store.read(held.sha256, "quarantine")
    assert dicomfiles.PLANTED_NAME.encode() not in data
    assert list(config.store.iter_hashes("objects")) == []


@pytest.mark.parametrize(
    "raw",
    [b"", b"not dicom at all" * 100, b"\0" * 128 + b"DICM" + b"\xff" * 50],
    ids=["empty", "text", "garbage-after-prefix"],
)
def test_malformed_input_is_refused_and_nothing_stored(
    session: Session, config: intake.IntakeConfig, hospital: Institution, raw: bytes
) -> None:
    with pytest.raises(DicomRejected):
        intake.ingest(session, raw, institution=hospital, source="x", config=config)
    assert _count(session, Instance) == 0
    assert list(config.store.iter_hashes()) == []


def test_image_without_pixels_does_not_match_its_sop_class(
    session: Session, config: intake.IntakeConfig, hospital: Institution
) -> None:
    ds = dicomfiles.ct()
    del ds.PixelData
    with pytest.raises(DicomRejected) as refused:
        intake.ingest(
            session, dicomfiles.to_bytes(ds), institution=hospital, source="x", config=config
        )
    assert refused.value.dicom_status == 0xA900


@pytest.mark.parametrize("failing", ["write", "fsync", "replace"])
def test_disk_full_at_each_step_leaves_no_row_and_no_partial_file(
    session: Session,
    config: intake.IntakeConfig,
    hospital: Institution,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    def full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, full)
    with pytest.raises(StorageError, match="full"):
        intake.ingest(
            session,
            dicomfiles.to_bytes(dicomfiles.ct()),
            institution=hospital,
            source="x",
            config=config,
        )
    monkeypatch.undo()
    session.rollback()
    assert _count(session, Instance) == 0
    assert list(config.store.iter_hashes()) == []
    assert list(config.store.tmp.iterdir()) == []
    # The next object goes through once the disk has room again.
    assert (
        intake.ingest(
            session,
            dicomfiles.to_bytes(dicomfiles.ct()),
            institution=hospital,
            source="x",
            config=config,
        ).status
        == "stored"
    )


def test_crash_between_rename_and_commit_leaves_only_an_orphan_file(
    session: Session, config: intake.IntakeConfig, hospital: Institution
) -> None:
    intake.ingest(
        session,
        dicomfiles.to_bytes(dicomfiles.ct()),
        institution=hospital,
        source="x",
        config=config,
    )
    session.rollback()  # the process died before the commit
    assert _count(session, Instance) == 0
    orphans = list(config.store.iter_hashes())
    assert len(orphans) == 1  # a file without a row: swept by verify, never the reverse


def test_store_refuses_paths_that_are_not_hashes(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    for bad in ("../../etc/passwd", "ab" * 40, "A" * 64):
        with pytest.raises(Exception, match="No such object"):
            store.path(bad)


def test_sweep_tmp_removes_stale_staging_files(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path)
    store.tmp.mkdir(parents=True)
    stale = store.tmp / "left-by-a-crash"
    stale.write_bytes(b"x")
    os.utime(stale, (0, 0))
    (store.tmp / "in-progress").write_bytes(b"y")
    assert store.sweep_tmp() == 1
    assert [p.name for p in store.tmp.iterdir()] == ["in-progress"]
