"""Quarantine: objects that may show burned-in text, held until an admin cleans them.

The reviewer sees every frame, gets OCR's proposed rectangles (:func:`propose`),
adjusts them, looks at the blacked-out result (:func:`preview`, nothing stored),
then releases: the same rectangles are blacked out on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import after_commit, utcnow
from app.dicom import ocr
from app.dicom.deidentify import DeidResult, blackout, default_date_offset, write_dataset
from app.dicom.meta import image_meta
from app.dicom.render import (
    ImageGeometry,
    RenderRequest,
    read_geometry,
    render_dataset_frame,
    render_frame,
)
from app.dicom.safe_read import read_dataset
from app.errors import Invalid, NotFound
from app.models import Patient, QuarantinedObject, QuarantineStatus, User
from app.services import audit, intake
from app.services.access import Permission, require
from app.services.pagination import Page, paginate

Rectangle = tuple[int, int, int, int]
MAX_RECTANGLES = 50


def list_held(session: Session, *, actor: User, page: int = 1) -> Page[QuarantinedObject]:
    require(actor, Permission.MANAGE_SOURCES)
    query = (
        select(QuarantinedObject)
        .where(QuarantinedObject.status == QuarantineStatus.HELD)
        .order_by(QuarantinedObject.received_at.desc())
    )
    return paginate(session, query, page, 50)


def get_held(session: Session, item_id: int, *, actor: User) -> QuarantinedObject:
    item = session.get(QuarantinedObject, item_id)
    if item is None or item.status is not QuarantineStatus.HELD:
        raise NotFound("No such held object.")
    require(actor, Permission.MANAGE_SOURCES, item)
    return item


def held_file(session: Session, item_id: int, *, actor: User, config: intake.IntakeConfig) -> Path:
    item = get_held(session, item_id, actor=actor)
    return config.store.path(item.sha256, "quarantine")


def parse_rectangles(text: str, *, columns: int, rows: int) -> list[Rectangle]:
    """``x,y,w,h`` per line or separated by ``;`` (pixels); each must lie inside the image."""
    rectangles: list[Rectangle] = []
    for line in text.replace(";", "\n").strip().splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4 or not all(p.isdigit() and len(p) < 6 for p in parts):
            raise Invalid("Give each rectangle as x,y,width,height in whole pixels, one a line.")
        x, y, w, h = (int(p) for p in parts)
        if w == 0 or h == 0 or x + w > columns or y + h > rows:
            raise Invalid(f"A rectangle must lie inside the {columns}x{rows} image.")
        rectangles.append((x, y, w, h))
    if len(rectangles) > MAX_RECTANGLES:
        raise Invalid(f"At most {MAX_RECTANGLES} rectangles.")
    return rectangles


def release(
    session: Session,
    item_id: int,
    rectangles_text: str,
    *,
    actor: User,
    config: intake.IntakeConfig,
    remote_addr: str = "",
) -> intake.IngestOutcome:
    """Black out the rectangles on every frame, mark Burned In Annotation NO, and store it
    like any received object (PS3.15 E.3.1, Clean Pixel Data)."""
    item = get_held(session, item_id, actor=actor)
    path = config.store.path(item.sha256, "quarantine")
    geometry = read_geometry(path)
    rectangles = parse_rectangles(rectangles_text, columns=geometry.columns, rows=geometry.rows)
    ds = read_dataset(path)
    cleaned = blackout(ds, rectangles) if rectangles else ds
    cleaned.BurnedInAnnotation = "NO"
    pseudonym = str(cleaned.get("PatientID", ""))
    offset = session.scalar(
        select(Patient.date_offset_days).where(
            Patient.institution_id == item.institution_id, Patient.pseudonym == pseudonym
        )
    )
    result = DeidResult(
        dataset=cleaned,
        patient_pseudonym=pseudonym,
        date_offset_days=offset
        if offset is not None
        else default_date_offset(config.secret, pseudonym),
        study_uid=str(cleaned.StudyInstanceUID),
        series_uid=str(cleaned.SeriesInstanceUID),
        sop_instance_uid=str(cleaned.SOPInstanceUID),
    )
    prepared = intake.Prepared(result, image_meta(cleaned), write_dataset(result))
    outcome = intake.store_prepared(
        session, prepared, institution=item.institution, source=item.source, config=config
    )
    _resolve(session, item, QuarantineStatus.RELEASED, actor)
    audit.record(
        session,
        "quarantine.released",
        actor=actor,
        target_type="quarantined_object",
        target_id=item.id,
        detail={"rectangles": len(rectangles)},
        remote_addr=remote_addr,
    )
    _remove_after_commit(session, item, config)
    return outcome


def delete(
    session: Session,
    item_id: int,
    *,
    actor: User,
    config: intake.IntakeConfig,
    remote_addr: str = "",
) -> None:
    item = get_held(session, item_id, actor=actor)
    _resolve(session, item, QuarantineStatus.DELETED, actor)
    audit.record(
        session,
        "quarantine.deleted",
        actor=actor,
        target_type="quarantined_object",
        target_id=item.id,
        remote_addr=remote_addr,
    )
    _remove_after_commit(session, item, config)


def _resolve(
    session: Session, item: QuarantinedObject, status: QuarantineStatus, actor: User
) -> None:
    item.status = status
    item.resolved_at = utcnow()
    item.resolved_by = actor
    session.flush()


def _remove_after_commit(
    session: Session, item: QuarantinedObject, config: intake.IntakeConfig
) -> None:
    """The held file goes once the row says so; a crash between leaves an orphan that
    ``teachfile verify --repair`` removes, never a held row without its file."""
    sha256 = item.sha256
    after_commit(session, lambda: config.store.remove(sha256, "quarantine"))


def held_geometry(
    session: Session, item_id: int, *, actor: User, config: intake.IntakeConfig
) -> ImageGeometry:
    """Rows, columns and frame count of a held object, for the review page."""
    return read_geometry(held_file(session, item_id, actor=actor, config=config))


def held_frame(
    session: Session,
    item_id: int,
    frame: int,
    *,
    actor: User,
    config: intake.IntakeConfig,
    thumbnail: bool = False,
) -> bytes:
    """One frame of the held object as PNG, untouched (lossless, so text stays legible);
    a ``thumbnail`` fits 128 pixels, for the review page's strip of every frame."""
    path = held_file(session, item_id, actor=actor, config=config)
    viewport = (128, 128) if thumbnail else None
    return render_frame(path, RenderRequest(frame=frame, format="png", viewport=viewport))


@dataclass(frozen=True)
class Proposal:
    """OCR's proposed rectangles for a held object; ``message`` says why there are none
    when OCR could not run. The recognised text itself is never kept or returned."""

    available: bool
    message: str
    frames_total: int
    frames_checked: list[int] = field(default_factory=list)
    #: One set for every frame (what release applies).
    rectangles: list[Rectangle] = field(default_factory=list)
    #: frame number -> that frame's own rectangles, frames with text only.
    by_frame: dict[int, list[Rectangle]] = field(default_factory=dict)


def propose(
    session: Session, item_id: int, *, actor: User, config: intake.IntakeConfig
) -> Proposal:
    """OCR every frame (up to :data:`app.dicom.ocr.REVIEW_FRAMES`) of a held object."""
    path = held_file(session, item_id, actor=actor, config=config)
    frames = read_geometry(path).frames
    try:
        report = ocr.find_text(path)
    except ocr.OcrUnavailable as missing:
        return Proposal(False, missing.message, frames)
    except ocr.OcrFailed as failed:
        return Proposal(True, f"OCR could not finish: {failed.message}", frames)
    checked = list(report.frames_checked)
    if len(checked) < frames:
        message = f"OCR read {len(checked)} of {frames} frames, evenly spaced."
    else:
        message = f"OCR read all {frames} frame{'s' if frames != 1 else ''}."
    if not report.found:
        message += " It found no text; look at every frame yourself."
    return Proposal(
        True,
        message,
        frames,
        checked,
        report.rectangles,
        {f.frame: list(f.rectangles) for f in report.frames},
    )


def preview(
    session: Session,
    item_id: int,
    rectangles_text: str,
    frame: int,
    *,
    actor: User,
    config: intake.IntakeConfig,
) -> bytes:
    """The frame as :func:`release` would store it, as PNG; nothing is written."""
    path = held_file(session, item_id, actor=actor, config=config)
    geometry = read_geometry(path)
    rectangles = parse_rectangles(rectangles_text, columns=geometry.columns, rows=geometry.rows)
    ds = read_dataset(path)
    cleaned = blackout(ds, rectangles) if rectangles else ds
    return render_dataset_frame(cleaned, RenderRequest(frame=frame, format="png"))
