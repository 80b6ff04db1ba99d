"""Study intake: every DICOM object that arrives is de-identified, stored, and listed.

One path for all of them (a C-STORE, an upload, an imported case): parse with
limits, de-identify in memory, write only the de-identified bytes to the object
store, then add the rows. Objects that may show burned-in text are held in the
admin-only quarantine instead (PS3.15 E.3.1 is not claimed for them): those the
de-identifier suspects, and those that declare Burned In Annotation NO where text
is the rule (ultrasound, screen and camera captures) but whose pixels OCR reads
text on, or that OCR cannot check (:mod:`app.dicom.ocr`). CT, MR and the like are
not OCR'd here: about half a second a frame would stall the receiver.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import textscan
from app.db import Base, utcnow
from app.dicom import ocr
from app.dicom.conformance import uid_text
from app.dicom.deidentify import (
    BurnedInTextSuspected,
    DeidContext,
    DeidResult,
    default_date_offset,
    deidentify,
    replace_uid,
    write_dataset,
)
from app.dicom.meta import STATUS_MISMATCH, ImageMeta, image_meta
from app.dicom.safe_read import read_dataset
from app.errors import DicomRejected
from app.models import (
    Instance,
    Institution,
    Patient,
    QuarantinedObject,
    Series,
    Study,
    StudyStatus,
)
from app.storage import ObjectStore

Status = Literal["stored", "duplicate", "quarantined"]
OCR_FOUND_TEXT = "the object declares no burned-in text but OCR reads text in its pixels"
M = TypeVar("M", bound=Base)


@dataclass(frozen=True)
class IntakeConfig:
    """What every intake path needs besides the session: where files go, and the key."""

    store: ObjectStore
    secret: bytes


def make_config(data_dir: str, secret: bytes) -> IntakeConfig:
    return IntakeConfig(store=ObjectStore(data_dir), secret=secret)


@dataclass(frozen=True)
class Prepared:
    """An object de-identified in memory, not yet stored."""

    result: DeidResult
    meta: ImageMeta
    data: bytes
    quarantine_reason: str = ""


@dataclass
class IngestOutcome:
    status: Status
    sop_instance_uid: str
    study_instance_uid: str
    reason: str = ""


@dataclass
class StudyCounts:
    stored: int = 0
    duplicate: int = 0
    quarantined: int = 0


@dataclass
class IntakeTally:
    """Per-study counts of one association or upload, for the audit log."""

    studies: dict[str, StudyCounts] = field(default_factory=dict)
    refused: int = 0

    def add(self, outcome: IngestOutcome) -> None:
        counts = self.studies.setdefault(outcome.study_instance_uid, StudyCounts())
        setattr(counts, outcome.status, getattr(counts, outcome.status) + 1)


def source_key(institution: Institution) -> str:
    """Pseudonyms are per source institution (issue 4): the same MRN at two hospitals differs."""
    return f"institution:{institution.id}"


def prepare(
    session: Session,
    raw: bytes | BinaryIO,
    *,
    institution: Institution,
    config: IntakeConfig,
    expected_sop_class: str | None = None,
) -> Prepared:
    """Parse and de-identify one object in memory; nothing is written.

    Raises ``DicomRejected`` (with the DICOM status to send) for objects that are
    refused outright. ``expected_sop_class`` is the SOP Class the sender announced
    (C-STORE Affected SOP Class UID); a dataset of another class is 0xA900.
    """
    ds = read_dataset(raw)
    # raw reads: pydicom's conversion of an invalid UID logs a warning quoting it, and
    # deidentify() checks the UIDs (app/dicom/conformance.py) before anything else
    if expected_sop_class and uid_text(ds, 0x00080016) != expected_sop_class:
        raise DicomRejected(
            "The dataset's SOP Class differs from the one announced.", STATUS_MISMATCH
        )

    def offset_for(pseudonym: str) -> int:
        existing = session.scalar(
            select(Patient.date_offset_days).where(
                Patient.institution_id == institution.id, Patient.pseudonym == pseudonym
            )
        )
        return existing if existing is not None else default_date_offset(config.secret, pseudonym)

    context = DeidContext(
        secret=config.secret,
        source=source_key(institution),
        date_offset_days=offset_for,
        find_identifiers=functools.partial(textscan.spans, institutions=(institution.name,)),
    )
    original_study_uid = uid_text(ds, 0x0020000D)  # deidentify() rewrites ds
    try:
        try:
            result = deidentify(ds, context)
        except BurnedInTextSuspected as held:
            return Prepared(
                held.result,
                image_meta(held.result.dataset),
                write_dataset(held.result),
                held.message,
            )
        return Prepared(result, image_meta(result.dataset), write_dataset(result),
                        _text_seen(result))
    except DicomRejected as refused:
        if original_study_uid:
            refused.study_uid = replace_uid(config.secret, original_study_uid)
        raise


def _text_seen(result: DeidResult) -> str:
    """Why an object that declares no burned-in text is held anyway, or ""."""
    ds = result.dataset
    if not ocr.needs_intake_check(ds):
        return ""
    try:
        report = ocr.find_text(ds, max_frames=ocr.INTAKE_FRAMES,
                               deadline_s=ocr.INTAKE_DEADLINE_S, stop_at_first=True,
                               thorough=False)
    except ocr.OcrFailed as failed:
        problem = failed.message
    except DicomRejected as failed:
        problem = f"its frames cannot be read ({failed.message})"
    else:
        return OCR_FOUND_TEXT if report.found else ""
    return f"the object declares no burned-in text but could not be checked: {problem}"


def store_prepared(
    session: Session,
    prepared: Prepared,
    *,
    institution: Institution,
    source: str,
    config: IntakeConfig,
) -> IngestOutcome:
    """Write the de-identified bytes (tmp, fsync, rename), then add the rows; caller commits."""
    meta = prepared.meta
    if prepared.quarantine_reason:
        return _quarantine(session, prepared, institution=institution, source=source, config=config)
    if _already_stored(session, meta.sop_instance_uid):
        return IngestOutcome(
            "duplicate", meta.sop_instance_uid, meta.study_instance_uid, "already stored"
        )
    stored = config.store.put(prepared.data)
    patient = _get_or_create(
        session,
        Patient,
        {"institution_id": institution.id, "pseudonym": prepared.result.patient_pseudonym},
        {"date_offset_days": prepared.result.date_offset_days},
    )
    study = _get_or_create(
        session,
        Study,
        {"study_instance_uid": meta.study_instance_uid},
        {
            "patient_id": patient.id,
            "institution_id": institution.id,
            "study_date": meta.study_date,
            "description": meta.study_description,
            "patient_age": meta.patient_age,
            "patient_sex": meta.patient_sex,
            "source": source[:40],
        },
    )
    if study.institution_id != institution.id:
        # Deterministic UIDs are keyed per instance secret, not per institution; a
        # collision across institutions would mean the same original study was sent
        # by two hospitals. Keep them apart rather than merging their cases.
        raise DicomRejected(
            "This study was already received from another institution.", code="other-institution"
        )
    study.updated_at = utcnow()
    if study.status is StudyStatus.DISCARDED:
        study.status = StudyStatus.INBOX
    series = _get_or_create(
        session,
        Series,
        {"series_instance_uid": meta.series_instance_uid},
        {
            "study_id": study.id,
            "modality": meta.modality,
            "body_part_examined": meta.body_part_examined,
            "description": meta.series_description,
            "series_number": meta.series_number,
        },
    )
    session.add(
        Instance(
            sop_instance_uid=meta.sop_instance_uid,
            sop_class_uid=meta.sop_class_uid,
            series_id=series.id,
            instance_number=meta.instance_number,
            position=meta.position,
            rows=meta.rows,
            columns=meta.columns,
            number_of_frames=meta.number_of_frames,
            pixel_spacing=meta.pixel_spacing,
            transfer_syntax_uid=meta.transfer_syntax_uid,
            sha256=stored.sha256,
            size_bytes=stored.size,
        )
    )
    session.flush()
    return IngestOutcome("stored", meta.sop_instance_uid, meta.study_instance_uid)


def ingest(
    session: Session,
    raw: bytes | BinaryIO,
    *,
    institution: Institution,
    source: str,
    config: IntakeConfig,
) -> IngestOutcome:
    """Prepare and store one object (the C-STORE path)."""
    prepared = prepare(session, raw, institution=institution, config=config)
    return store_prepared(session, prepared, institution=institution, source=source, config=config)


def _quarantine(
    session: Session,
    prepared: Prepared,
    *,
    institution: Institution,
    source: str,
    config: IntakeConfig,
) -> IngestOutcome:
    meta = prepared.meta
    outcome = IngestOutcome(
        "quarantined", meta.sop_instance_uid, meta.study_instance_uid, prepared.quarantine_reason
    )
    if session.scalar(
        select(QuarantinedObject.id).where(
            QuarantinedObject.sop_instance_uid == meta.sop_instance_uid
        )
    ) or _already_stored(session, meta.sop_instance_uid):
        return outcome
    stored = config.store.put(prepared.data, area="quarantine")
    session.add(
        QuarantinedObject(
            institution_id=institution.id,
            sop_instance_uid=meta.sop_instance_uid,
            modality=meta.modality,
            reason=prepared.quarantine_reason[:200],
            sha256=stored.sha256,
            source=source[:40],
        )
    )
    session.flush()
    return outcome


def _already_stored(session: Session, sop_instance_uid: str) -> bool:
    """A re-send of an instance already stored adds nothing (UIDs are deterministic)."""
    return (
        session.scalar(select(Instance.id).where(Instance.sop_instance_uid == sop_instance_uid))
        is not None
    )


def _get_or_create(
    session: Session, model: type[M], lookup: dict[str, Any], defaults: dict[str, Any]
) -> M:
    """Find a row by its unique key or add it; a concurrent insert by another
    association (the unique constraint fires) is resolved by reading the winner."""
    query = select(model).filter_by(**lookup)
    existing = session.scalar(query)
    if existing is not None:
        return existing
    try:
        with session.begin_nested():
            row = model(**lookup, **defaults)
            session.add(row)
        return row
    except IntegrityError:
        winner = session.scalar(query)
        if winner is None:
            raise
        return winner
