"""Typed ORM models; importing this package registers every table on ``Base.metadata``."""

from app.models.audit import AuditEvent, LoginAttempt
from app.models.case import (
    Annotation,
    AnnotationVisibility,
    Case,
    CaseAuthor,
    CaseLabel,
    CaseOfTheDay,
    CaseRevision,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    CaseStudy,
    KeyImage,
    Visibility,
)
from app.models.education import Question, QuestionOption
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
    "Annotation",
    "AnnotationVisibility",
    "AuditEvent",
    "Case",
    "CaseAuthor",
    "CaseLabel",
    "CaseOfTheDay",
    "CaseRevision",
    "CaseSet",
    "CaseSetItem",
    "CaseStatus",
    "CaseStudy",
    "DicomSource",
    "Instance",
    "Institution",
    "KeyImage",
    "LoginAttempt",
    "Patient",
    "QuarantineStatus",
    "QuarantinedObject",
    "Question",
    "QuestionOption",
    "Role",
    "Series",
    "Study",
    "StudyStatus",
    "User",
    "Visibility",
]
