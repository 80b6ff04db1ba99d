"""The one permission rule: who may see or change what.

Every view, API route and list query asks here. Role gates (``Permission``)
raise ``Forbidden``; object rules added by later domains raise ``NotFound`` so
a forbidden object's existence is not revealed.
"""

from __future__ import annotations

import enum

from app.errors import Forbidden, NotFound
from app.models import DicomSource, Institution, QuarantinedObject, Role, Study, User


class Permission(enum.StrEnum):
    AUTHENTICATED = "authenticated"
    RECEIVE_STUDIES = "receive_studies"
    AUTHOR_CASES = "author_cases"
    MANAGE_USERS = "manage_users"
    MANAGE_INSTITUTIONS = "manage_institutions"
    MANAGE_SOURCES = "manage_sources"
    VIEW_AUDIT_LOG = "view_audit_log"


# The least role that holds each permission (roles are cumulative).
MINIMUM_ROLE: dict[Permission, Role] = {
    Permission.AUTHENTICATED: Role.LEARNER,
    Permission.RECEIVE_STUDIES: Role.EDUCATOR,
    Permission.AUTHOR_CASES: Role.EDUCATOR,
    Permission.MANAGE_USERS: Role.ADMIN,
    Permission.MANAGE_INSTITUTIONS: Role.ADMIN,
    Permission.MANAGE_SOURCES: Role.ADMIN,
    Permission.VIEW_AUDIT_LOG: Role.ADMIN,
}


def can(actor: User | None, permission: Permission, obj: object | None = None) -> bool:
    """Answer whether ``actor`` (None for a visitor) holds ``permission`` on ``obj``."""
    if actor is None or not actor.is_active:
        return False
    if not actor.has_role(MINIMUM_ROLE[permission]):
        return False
    if obj is None:
        return True
    if actor.role is Role.ADMIN:
        return True
    if isinstance(obj, Study):
        # Received studies (the inbox) belong to the institution that sent them.
        return actor.institution_id is not None and obj.institution_id == actor.institution_id
    # Accounts, institutions, sources and quarantined objects are admins' alone.
    if isinstance(obj, User | Institution | DicomSource | QuarantinedObject):
        return False
    return False


def require(actor: User | None, permission: Permission, obj: object | None = None) -> None:
    """Raise unless ``can``: NotFound for an object the actor may not reach, else Forbidden."""
    if can(actor, permission, obj):
        return
    if obj is not None:
        raise NotFound("No such page.")
    raise Forbidden("Your account's role does not allow this.")
