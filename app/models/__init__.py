"""Typed ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.audit import AuditEvent, LoginAttempt
from app.models.imaging import (
    DicomSource,
    Instance,
    Patient,
    QuarantinedObject,
    QuarantineStatus,
    Series,
    Study,
    StudyStatus,
)
from app.models.user import Institution, Role, User

__all__ = [
    "AuditEvent",
    "DicomSource",
    "Instance",
    "Institution",
    "LoginAttempt",
    "Patient",
    "QuarantineStatus",
    "QuarantinedObject",
    "Role",
    "Series",
    "Study",
    "StudyStatus",
    "User",
]
