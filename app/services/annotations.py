"""Annotations on a case's images: readers' own marks and the author's teaching overlay.

Who sees and changes which annotation is decided by the one access rule
(:func:`app.services.access.can` on an :class:`~app.models.Annotation`); this
module checks the input and keeps the rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.errors import Forbidden, Invalid, NotFound, TooManyRequests
from app.models import (
    Annotation,
    AnnotationVisibility,
    Case,
    CaseStatus,
    CaseStudy,
    Instance,
    Series,
    User,
)
from app.services import audit, identifier_gate
from app.services.access import Permission, can, require

#: Points each kind takes: two ends (arrow: tail, head), the ellipse's bounding box
#: corners, a text's anchor. Coordinates are image pixels (column, row).
KINDS = {"arrow": 2, "line": 2, "ellipse": 2, "text": 1}
MAX_TEXT = 500
MAX_COORDINATE = 100_000
#: One reader's annotations on one case; past this a script is running away.
MAX_PER_USER_AND_CASE = 1000
#: The most annotations a listing returns.
MAX_LISTED = 5000


def _case(session: Session, case_id: int, actor: User | None) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("No such case.")
    require(actor, Permission.VIEW, case)
    return case


def list_annotations(
    session: Session, case_id: int, *, actor: User | None, series_uid: str | None = None
) -> list[Annotation]:
    """The case's annotations the actor may see, oldest first (optionally of one series)."""
    case = _case(session, case_id, actor)
    query = (
        select(Annotation)
        .where(Annotation.case_id == case.id)
        .options(selectinload(Annotation.instance), selectinload(Annotation.user))
        .order_by(Annotation.id)
        .limit(MAX_LISTED)
    )
    if series_uid:
        query = query.join(Series, Series.id == Annotation.series_id).where(
            Series.series_instance_uid == series_uid[:64]
        )
    return [note for note in session.scalars(query) if can(actor, Permission.VIEW, note)]


def _points(kind: str, value: object) -> list[list[float]]:
    if not isinstance(value, list) or len(value) != KINDS[kind]:
        raise Invalid(f"a {kind} takes {KINDS[kind]} point(s) [x, y]")
    points = []
    for point in value:
        if not isinstance(point, list) or len(point) != 2:
            raise Invalid("a point is [x, y]")
        pair = []
        for v in point:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise Invalid("point coordinates must be numbers")
            if not math.isfinite(v) or abs(v) > MAX_COORDINATE:
                raise Invalid("point coordinates must be finite and inside the image")
            pair.append(round(float(v), 2))
        points.append(pair)
    return points


def _text(kind: str, value: object) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid("text must be a string")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise Invalid(f"text is at most {MAX_TEXT} characters")
    if kind == "text" and not value:
        raise Invalid("a text annotation needs its text")
    return value


def _visibility(value: object, actor: User) -> AnnotationVisibility:
    try:
        visibility = AnnotationVisibility(str(value) if value is not None else "only_me")
    except ValueError:
        raise Invalid("visibility must be only_me, institution or case_readers") from None
    if visibility is AnnotationVisibility.INSTITUTION and actor.institution_id is None:
        raise Invalid("your account belongs to no institution; share with case readers")
    return visibility


def _gate(
    session: Session,
    case: Case,
    text: str,
    *,
    teaching: bool,
    visibility: AnnotationVisibility,
    data: Mapping[str, Any],
    action: str,
    target_type: str,
    target_id: int,
) -> list[identifier_gate.Finding]:
    """The identifier gate for an annotation's text: refused without confirmation when
    readers see it at once (a published case's teaching overlay, a shared mark)."""
    shown = (
        case.status is CaseStatus.PUBLISHED
        if teaching
        else visibility is not AnnotationVisibility.ONLY_ME
    )
    return identifier_gate.check(
        session,
        {"Annotation text": text},
        enforce=shown,
        confirmed=data.get("confirm_identifiers") is True,
        action=action,
        target_type=target_type,
        target_id=target_id,
    )


def create_annotation(
    session: Session, case_id: int, data: Mapping[str, Any], *, actor: User
) -> Annotation:
    """Add a mark on one frame of one of the case's images.

    ``data``: ``instance`` (SOP Instance UID), ``frame`` (1-based), ``kind`` (arrow,
    line, ellipse, text), ``points``, ``text``, ``visibility``, ``teaching`` (the
    case's teaching overlay: its editors only), ``confirm_identifiers`` (true once the
    writer saw the identifier findings of the text).
    """
    case = _case(session, case_id, actor)
    require(actor, Permission.AUTHENTICATED)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise Invalid("kind must be arrow, line, ellipse or text")
    teaching = data.get("teaching", False)
    if not isinstance(teaching, bool):
        raise Invalid("teaching must be true or false")
    if teaching and not can(actor, Permission.EDIT, case):
        raise Forbidden("Only the case's authors add to its teaching overlay.")
    uid = data.get("instance")
    if not isinstance(uid, str) or not 0 < len(uid) <= 64:
        raise Invalid("instance must be a SOP Instance UID of the case's images")
    instance = session.scalars(
        select(Instance)
        .join(Series, Series.id == Instance.series_id)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == case.id, Instance.sop_instance_uid == uid)
    ).first()
    if instance is None:
        raise Invalid("instance must be a SOP Instance UID of the case's images")
    frame = data.get("frame", 1)
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise Invalid("frame must be a whole number")
    if not 1 <= frame <= max(instance.number_of_frames, 1):
        raise Invalid("the instance has no such frame")
    count = session.scalar(
        select(func.count())
        .select_from(Annotation)
        .where(Annotation.case_id == case.id, Annotation.user_id == actor.id)
    )
    if (count or 0) >= MAX_PER_USER_AND_CASE:
        raise TooManyRequests("You have reached the number of annotations one case takes.")
    text = _text(kind, data.get("text"))
    visibility = (
        AnnotationVisibility.CASE_READERS
        if teaching
        else _visibility(data.get("visibility"), actor)
    )
    findings = _gate(
        session,
        case,
        text,
        teaching=teaching,
        visibility=visibility,
        data=data,
        action="annotation.created",
        target_type="case",
        target_id=case.id,
    )
    note = Annotation(
        case_id=case.id,
        user_id=actor.id,
        series_id=instance.series_id,
        instance_id=instance.id,
        frame=frame,
        kind=kind,
        points=_points(kind, data.get("points")),
        text=text,
        visibility=visibility,
        teaching=teaching,
        institution_id=actor.institution_id,
    )
    note.case = case
    note.instance = instance
    session.add(note)
    session.flush()
    identifier_gate.record(
        session,
        "annotation.created",
        findings,
        actor=actor,
        target_type="annotation",
        target_id=note.id,
        confirmed=data.get("confirm_identifiers") is True,
        detail={"case_id": case.id, "teaching": teaching},
    )
    return note


def _own(session: Session, case_id: int, annotation_id: int, actor: User) -> Annotation:
    _case(session, case_id, actor)
    note = session.get(Annotation, annotation_id)
    if note is None or note.case_id != case_id or not can(actor, Permission.VIEW, note):
        raise NotFound("No such annotation.")
    if not can(actor, Permission.EDIT, note):
        raise Forbidden("Only its author changes an annotation.")
    return note


def update_annotation(
    session: Session, case_id: int, annotation_id: int, data: Mapping[str, Any], *, actor: User
) -> Annotation:
    """Change an annotation's points, text or visibility (the teaching flag stays)."""
    note = _own(session, case_id, annotation_id, actor)
    text = _text(note.kind, data["text"]) if "text" in data else note.text
    visibility = (
        _visibility(data["visibility"], actor)
        if "visibility" in data and not note.teaching
        else note.visibility
    )
    # Checked before anything changes: sharing an old text counts as showing it.
    findings = _gate(
        session,
        note.case,
        text,
        teaching=note.teaching,
        visibility=visibility,
        data=data,
        action="annotation.updated",
        target_type="annotation",
        target_id=note.id,
    )
    if "points" in data:
        note.points = _points(note.kind, data["points"])
    note.text = text
    note.visibility = visibility
    note.updated_at = utcnow()
    identifier_gate.record(
        session,
        "annotation.updated",
        findings,
        actor=actor,
        target_type="annotation",
        target_id=note.id,
        confirmed=data.get("confirm_identifiers") is True,
        detail={"case_id": case_id, "teaching": note.teaching},
    )
    session.flush()
    return note


def delete_annotation(session: Session, case_id: int, annotation_id: int, *, actor: User) -> None:
    note = _own(session, case_id, annotation_id, actor)
    audit.record(
        session,
        "annotation.deleted",
        actor=actor,
        target_type="annotation",
        target_id=note.id,
        detail={"case_id": case_id},
    )
    session.delete(note)
    session.flush()
