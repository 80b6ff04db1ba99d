"""Typed ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.audit import AuditEvent, LoginAttempt
from app.models.user import Institution, Role, User

__all__ = ["AuditEvent", "Institution", "LoginAttempt", "Role", "User"]
