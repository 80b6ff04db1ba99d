"""The audit trail: what was done, by whom, never the original values of patient data."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User
from app.services.pagination import Page, paginate

# Keys whose values are safe to keep; anything else passed in ``detail`` is a bug.
_SAFE_VALUE_TYPES = (int, float, bool, type(None))
_MAX_DETAIL_STRING = 200


def record(
    session: Session,
    action: str,
    *,
    actor: User | None = None,
    actor_label: str | None = None,
    target_type: str = "",
    target_id: str | int = "",
    detail: dict[str, Any] | None = None,
    remote_addr: str = "",
) -> AuditEvent:
    """Add one audit entry to the current transaction.

    ``detail`` is for identifiers, counts and enumerated values (a role, a
    reason code). Strings are cut to 200 characters so a caller cannot turn the
    log into a copy of free text.
    """
    clean: dict[str, Any] = {}
    for key, value in (detail or {}).items():
        clean[key] = (
            value if isinstance(value, _SAFE_VALUE_TYPES) else str(value)[:_MAX_DETAIL_STRING]
        )
    event = AuditEvent(
        actor_id=actor.id if actor else None,
        actor_label=actor.email if actor else (actor_label or ""),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        detail=clean,
        remote_addr=remote_addr[:64],
    )
    session.add(event)
    session.flush()
    return event


def list_events(
    session: Session, *, page: int = 1, per_page: int = 50, action: str = ""
) -> Page[AuditEvent]:
    """Newest first, optionally only one action or one action family (``auth.``)."""
    query = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    return paginate(session, query, page, per_page)
