"""Consult-to-case (issue 10): ask about one of one's hospital's studies; an educator
turns the consult into a case draft.

A consult is private to its asker and the educators of the study's institution (and
admins): :func:`app.services.access.can` and ``readable_consults`` decide.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.markup import check_length
from app.models import (
    Case,
    CaseNote,
    Consult,
    ConsultMessage,
    ConsultStatus,
    NotificationKind,
    Role,
    Series,
    Study,
    StudyStatus,
    User,
)
from app.services import audit, cases, identifier_gate, notifications
from app.services.access import Permission, readable_consults, require
from app.services.discussion import PostingLimit, check_posting_rate
from app.services.pagination import Page, paginate

#: Longest question or message (characters of Markdown).
MESSAGE_MAX_CHARS = 5_000


def list_hospital_studies(session: Session, *, actor: User, page: int = 1) -> Page[Study]:
    """De-identified studies of the actor's own institution, newest first (not discarded)."""
    require(actor, Permission.CONSULT)
    query = (
        select(Study)
        .where(
            Study.institution_id == (actor.institution_id or -1),
            Study.status != StudyStatus.DISCARDED,
        )
        .options(selectinload(Study.series).selectinload(Series.instances))
        .order_by(Study.received_at.desc(), Study.id.desc())
    )
    return paginate(session, query, page, 20)


def get_hospital_study(session: Session, study_id: int, *, actor: User) -> Study:
    """One of the actor's hospital's studies, else NotFound."""
    study = session.get(Study, study_id)
    if study is None or study.status is StudyStatus.DISCARDED:
        raise NotFound("No such study.")
    require(actor, Permission.CONSULT, study)
    if actor.role is Role.ADMIN and study.institution_id != actor.institution_id:
        # "My hospital's studies": an admin asks about their own hospital's only.
        raise NotFound("No such study.")
    return study


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Invalid(f"Write the {what} first.")
    return check_length(text.replace("\r\n", "\n").strip(), f"The {what}", MESSAGE_MAX_CHARS)


def _educators(session: Session, institution_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User).where(
                User.institution_id == institution_id,
                User.is_active.is_(True),
                User.role.in_([Role.EDUCATOR, Role.ADMIN]),
            )
        )
    )


def ask(
    session: Session,
    study_id: int,
    *,
    actor: User,
    question: object,
    limit: PostingLimit | None = None,
    confirm_identifiers: bool = False,
) -> Consult:
    """Open a consult about a study; the institution's educators are notified. A question
    with identifier findings is sent only once its writer confirms (the identifier gate)."""
    study = get_hospital_study(session, study_id, actor=actor)
    text = _check_text(question, "question")
    check_posting_rate(session, actor, limit or PostingLimit())
    findings = identifier_gate.check(
        session,
        {"Question": text},
        enforce=True,
        confirmed=confirm_identifiers,
        action="consult.asked",
        target_type="study",
        target_id=study.id,
    )
    consult = Consult(
        study=study, institution_id=study.institution_id, asker_id=actor.id, question=text
    )
    session.add(consult)
    session.flush()
    identifier_gate.record(
        session,
        "consult.asked",
        findings,
        actor=actor,
        target_type="consult",
        target_id=consult.id,
        confirmed=confirm_identifiers,
        detail={"study_id": study.id},
    )
    for educator in _educators(session, study.institution_id):
        if educator.id != actor.id:
            notifications.notify(
                session, educator, NotificationKind.CONSULT, actor, consult=consult
            )
    return consult


def list_consults(session: Session, *, actor: User, page: int = 1) -> Page[Consult]:
    """The consults ``actor`` may read, most recently active first."""
    require(actor, Permission.AUTHENTICATED)
    query = (
        select(Consult)
        .where(readable_consults(actor))
        .options(selectinload(Consult.study), selectinload(Consult.asker))
        .order_by(Consult.updated_at.desc(), Consult.id.desc())
    )
    return paginate(session, query, page, 30)


def get_consult(session: Session, consult_id: int, *, actor: User | None) -> Consult:
    consult = session.get(Consult, consult_id)
    if consult is None:
        raise NotFound("No such consult.")
    require(actor, Permission.VIEW, consult)
    return consult


def add_message(
    session: Session,
    consult_id: int,
    *,
    actor: User,
    body: object,
    limit: PostingLimit | None = None,
    confirm_identifiers: bool = False,
) -> ConsultMessage:
    """Reply in a consult; the asker and the institution's educators are notified. The
    message passes the identifier gate like the question."""
    consult = get_consult(session, consult_id, actor=actor)
    text = _check_text(body, "message")
    check_posting_rate(session, actor, limit or PostingLimit())
    findings = identifier_gate.check(
        session,
        {"Message": text},
        enforce=True,
        confirmed=confirm_identifiers,
        action="consult.message_posted",
        target_type="consult",
        target_id=consult.id,
    )
    message = ConsultMessage(consult=consult, author_id=actor.id, body=text)
    session.add(message)
    consult.updated_at = utcnow()
    session.flush()
    identifier_gate.record(
        session,
        "consult.message_posted",
        findings,
        actor=actor,
        target_type="consult",
        target_id=consult.id,
        confirmed=confirm_identifiers,
        detail={"message_id": message.id},
    )
    people = _educators(session, consult.institution_id)
    if consult.asker is not None:
        people.append(consult.asker)
    for user in {u.id: u for u in people}.values():
        if user.id != actor.id:
            notifications.notify(session, user, NotificationKind.CONSULT, actor, consult=consult)
    return message


def transcript(consult: Consult) -> str:
    """The consult as Markdown, for the case draft's private note."""

    def who(user: User | None) -> str:
        return user.display_name if user else "Former member"

    parts = [
        f"Consult #{consult.id} on study {consult.study.study_instance_uid}",
        "",
        f"**{who(consult.asker)}** asked ({consult.created_at:%Y-%m-%d %H:%M} UTC):",
        "",
        consult.question,
    ]
    for message in consult.messages:
        parts += [
            "",
            "---",
            "",
            f"**{who(message.author)}** ({message.created_at:%Y-%m-%d %H:%M} UTC):",
            "",
            message.body,
        ]
    return "\n".join(parts) + "\n"


def convert_to_case(
    session: Session, consult_id: int, *, actor: User, remote_addr: str = ""
) -> Case:
    """Turn a consult into a private case draft by ``actor`` (an educator of the institution).

    The draft shows the study, takes the question as its clinical history, and keeps the
    whole consult as a private note for its authors. Nothing is published.
    """
    consult = get_consult(session, consult_id, actor=actor)
    require(actor, Permission.EDIT, consult)
    if consult.status is ConsultStatus.CONVERTED and consult.case_id is not None:
        raise Conflict("This consult is already a case draft.")
    study = consult.study
    case = cases.create_case(
        session,
        actor=actor,
        study_ids=[study.id],
        title=study.description or f"Consult {consult.id}",
        history=consult.question,
        remote_addr=remote_addr,
    )
    session.add(
        CaseNote(
            case_id=case.id, author_id=actor.id, consult_id=consult.id, body=transcript(consult)
        )
    )
    consult.status = ConsultStatus.CONVERTED
    consult.case_id = case.id
    consult.updated_at = utcnow()
    audit.record(
        session,
        "consult.converted",
        actor=actor,
        target_type="consult",
        target_id=consult.id,
        detail={"case_id": case.id, "messages": len(consult.messages)},
        remote_addr=remote_addr,
    )
    session.flush()
    return case


def case_notes(session: Session, case: Case, *, actor: User | None) -> list[CaseNote]:
    """The private notes of a case, for those who may edit it (its authors, admins)."""
    require(actor, Permission.EDIT, case)
    return list(
        session.scalars(select(CaseNote).where(CaseNote.case_id == case.id).order_by(CaseNote.id))
    )
