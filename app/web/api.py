"""The JSON API: the same services as the pages, for scripts.

Writes need the CSRF token in the ``X-CSRFToken`` header (Flask-WTF), the
same session cookie as the pages, and pass through the same permission rule.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from app.db import get_session
from app.errors import Invalid
from app.models import AuditEvent, Institution, User
from app.services import accounts, audit
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
