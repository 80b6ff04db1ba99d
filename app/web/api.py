"""The JSON API: the same services as the pages, for scripts.

Writes need the CSRF token in the ``X-CSRFToken`` header (Flask-WTF), the
same session cookie as the pages, and pass through the same permission rule.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from app.db import get_session
from app.errors import Invalid, TeachfileError
from app.models import AuditEvent, Case, Institution, User, Visibility
from app.models.case import LABEL_KINDS, SECTION_FIELDS
from app.services import accounts, audit, cases, identifier_gate
from app.services.access import Permission
from app.web.guard import current_actor, page_arg, permission_required, remote_addr

bp = Blueprint("api", __name__, url_prefix="/api")


def _user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "display_name": user.display_name,
        "role": user.role.value,
        "institution": user.institution.name if user.institution else None,
    }


def _institution_json(institution: Institution) -> dict[str, Any]:
    return {"id": institution.id, "name": institution.name}


def _event_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": event.actor_label,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "detail": event.detail,
    }


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    return body


@bp.get("/me")
@permission_required(Permission.AUTHENTICATED)
def me() -> ResponseReturnValue:
    actor = current_actor()
    assert actor is not None
    return _user_json(actor)


@bp.get("/institutions")
@permission_required(Permission.MANAGE_INSTITUTIONS)
def institutions() -> ResponseReturnValue:
    return {"items": [_institution_json(i) for i in accounts.list_institutions(get_session())]}


@bp.post("/institutions")
@permission_required(Permission.MANAGE_INSTITUTIONS)
def institution_create() -> ResponseReturnValue:
    name = _json_body().get("name")
    if not isinstance(name, str):
        raise Invalid("Give the institution's name as a string.")
    session = get_session()
    institution = accounts.create_institution(
        session, name, actor=current_actor(), remote_addr=remote_addr()
    )
    session.commit()
    return _institution_json(institution), 201


@bp.get("/audit")
@permission_required(Permission.VIEW_AUDIT_LOG)
def audit_log() -> ResponseReturnValue:
    page = audit.list_events(
        get_session(),
        page=page_arg(),
        action=request.args.get("action", "")[:64],
    )
    return {
        "items": [_event_json(e) for e in page.items],
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
    }


def _case_summary(case: Case) -> dict[str, Any]:
    return {
        "slug": case.slug,
        "title": case.title,
        "status": case.status.value,
        "visibility": case.visibility.value,
        "difficulty": case.difficulty,
        "certainty": case.certainty,
        "labels": {kind: case.label_values(kind) for kind in LABEL_KINDS},
        "published_at": case.published_at.isoformat() if case.published_at else None,
        "url": url_for("cases.detail", slug=case.slug, _external=False),
    }


@bp.get("/cases")
def case_list() -> ResponseReturnValue:
    filters = cases.CaseFilters(
        **{
            key: request.args.get(key, "")[:80]
            for key in ("modality", "body_region", "difficulty", "certainty", "tag")
        }
    )
    page = cases.list_cases(get_session(), actor=current_actor(), filters=filters, page=page_arg())
    return {
        "items": [_case_summary(c) for c in page.items],
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
    }


@bp.get("/cases/<slug>")
def case_detail(slug: str) -> ResponseReturnValue:
    case = cases.get_case(get_session(), slug, actor=current_actor())
    body = _case_summary(case)
    body["revision"] = case.revision
    body["diagnosis"] = case.diagnosis
    body["sections"] = {name: getattr(case, name) for name in SECTION_FIELDS}
    return body


@bp.post("/cases")
@permission_required(Permission.AUTHOR_CASES)
def case_create() -> ResponseReturnValue:
    body = _json_body()
    study_ids = body.get("study_ids")
    if not isinstance(study_ids, list) or not all(isinstance(i, int) for i in study_ids):
        raise Invalid("Give study_ids as a list of numbers.")
    title = body.get("title", "")
    if not isinstance(title, str):
        raise Invalid("The title must be text.")
    session = get_session()
    actor = current_actor()
    assert actor is not None
    case = cases.create_case(
        session, actor=actor, study_ids=study_ids, title=title, remote_addr=remote_addr()
    )
    session.commit()
    return _case_summary(case) | {"revision": case.revision}, 201


@bp.put("/cases/<slug>/draft")
@permission_required(Permission.AUTHOR_CASES)
def case_save(slug: str) -> ResponseReturnValue:
    body = _json_body()
    base = body.get("base_revision")
    if not isinstance(base, int):
        raise Invalid("Give base_revision: the revision the text started from.")
    content = cases.CaseContent.from_json(body.get("content"))
    session = get_session()
    actor = current_actor()
    assert actor is not None
    try:
        result = cases.save_draft(
            session, slug, content, base_revision=base, actor=actor, remote_addr=remote_addr()
        )
    except TeachfileError:
        session.commit()  # a refused stale save is kept as a conflicted revision
        raise
    session.commit()
    # ``pending``: a published case's edit with findings, kept from readers until
    # POST .../confirm; on a draft the findings are a warning.
    return {
        "revision": result.revision,
        "saved_at": result.saved_at,
        "pending": result.pending,
        "findings": identifier_gate.findings_json(result.findings),
    }


@bp.post("/cases/<slug>/confirm")
@permission_required(Permission.AUTHOR_CASES)
def case_confirm(slug: str) -> ResponseReturnValue:
    """The author confirms the pending revision's findings: it goes live."""
    revision = _json_body().get("revision")
    if not isinstance(revision, int) or isinstance(revision, bool):
        raise Invalid("Give revision: the number of the pending revision you checked.")
    session = get_session()
    actor = current_actor()
    assert actor is not None
    case = cases.confirm_pending(
        session, slug, revision=revision, actor=actor, remote_addr=remote_addr()
    )
    session.commit()
    return _case_summary(case) | {"revision": case.revision}


@bp.post("/cases/<slug>/publish")
@permission_required(Permission.AUTHOR_CASES)
def case_publish(slug: str) -> ResponseReturnValue:
    body = _json_body()
    try:
        visibility = Visibility(str(body.get("visibility")))
    except ValueError:
        raise Invalid("visibility is private, institution or public.") from None
    session = get_session()
    actor = current_actor()
    assert actor is not None
    case = cases.publish(
        session,
        slug,
        visibility=visibility,
        confirmed=body.get("confirmed") is True,
        actor=actor,
        remote_addr=remote_addr(),
    )
    session.commit()
    return _case_summary(case)
