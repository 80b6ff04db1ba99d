"""The educator's inbox: received and uploaded studies of their institution."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.dicom import render
from app.errors import NotFound
from app.models import Instance, Role, Series, Study, StudyStatus, User
from app.services import audit
from app.services.access import Permission, require
from app.services.pagination import Page, paginate
from app.storage import ObjectStore


def list_inbox(session: Session, *, actor: User, page: int = 1) -> Page[Study]:
    """Studies waiting in the actor's institution's inbox, newest first (admins: all)."""
    require(actor, Permission.RECEIVE_STUDIES)
    query = (
        select(Study)
        .where(Study.status == StudyStatus.INBOX)
        .options(selectinload(Study.series).selectinload(Series.instances))
        .order_by(Study.received_at.desc(), Study.id.desc())
    )
    if actor.role is not Role.ADMIN:
        query = query.where(Study.institution_id == (actor.institution_id or -1))
    return paginate(session, query, page, 20)


def get_study(session: Session, study_id: int, *, actor: User) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound("No such study.")
    require(actor, Permission.RECEIVE_STUDIES, study)
    return study


def discard_study(session: Session, study_id: int, *, actor: User, remote_addr: str = "") -> Study:
    """Take a study out of the inbox; its files stay (a case may still use them)."""
    study = get_study(session, study_id, actor=actor)
    study.status = StudyStatus.DISCARDED
    study.updated_at = utcnow()
    audit.record(
        session,
        "study.discarded",
        actor=actor,
        target_type="study",
        target_id=study.id,
        remote_addr=remote_addr,
    )
    session.flush()
    return study


def representative_instance(series: Series) -> Instance | None:
    """The middle instance of a series: what its thumbnail shows."""
    if not series.instances:
        return None
    return series.instances[len(series.instances) // 2]


def series_thumbnail(
    session: Session, series_id: int, *, actor: User, store: ObjectStore
) -> tuple[bytes, str]:
    """A received series' thumbnail (JPEG) and an ETag naming its immutable source."""
    series = session.get(Series, series_id)
    if series is None:
        raise NotFound("No such series.")
    require(actor, Permission.RECEIVE_STUDIES, series.study)
    instance = representative_instance(series)
    if instance is None:
        raise NotFound("The series has no images.")
    return render.thumbnail(store.path(instance.sha256)), f"{instance.sha256}-t"
