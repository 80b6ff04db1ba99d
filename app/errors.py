"""Domain exceptions shared by services, adapters and the web layer.

Views and the CLI translate these into HTTP statuses, DICOM statuses and exit
codes; nothing below the web layer knows about HTTP.
"""

from __future__ import annotations


class TeachfileError(Exception):
    """Base class: the message is safe to show to the user (never PHI)."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(TeachfileError):
    """The object does not exist, or the actor may not know that it exists."""

    status = 404


class Forbidden(TeachfileError):
    """The actor is known to see the object but may not do this to it."""

    status = 403


class Invalid(TeachfileError):
    """Input broke a rule; the message says which."""

    status = 400


class Conflict(TeachfileError):
    """The change collides with another (duplicate, stale revision)."""

    status = 409


class TooManyRequests(TeachfileError):
    """Throttled: try again later."""

    status = 429


class DicomRejected(TeachfileError):
    """A DICOM object was refused; ``reason`` never quotes a value from the object.

    ``status`` here is the DICOM failure status to send back (PS3.4 Annex B.2.3),
    for example 0xA900 (dataset does not match SOP class) or 0xC000 (cannot
    understand).
    """

    def __init__(self, message: str, dicom_status: int = 0xC000) -> None:
        super().__init__(message)
        self.dicom_status = dicom_status
        # The de-identified Study Instance UID, when the object got that far, so an
        # upload can refuse the rest of the study with it (all-or-nothing).
        self.study_uid: str | None = None


class StorageError(TeachfileError):
    """The data directory could not take a write (disk full, I/O error).

    Maps to HTTP 507 and to DICOM status 0xA700 (Refused: Out of Resources).
    """

    status = 507


class IdentifiersFound(TeachfileError):
    """Reader-visible text looks like it names a patient; the author must confirm or fix it.

    ``findings`` are (field, kind, excerpt) mappings of the author's own text, shown
    only back to its author; the audit entry of the refusal keeps ids and a count.
    """

    status = 422

    def __init__(
        self,
        message: str,
        findings: list[dict[str, str]],
        *,
        action: str,
        target_type: str,
        target_id: str,
    ) -> None:
        super().__init__(message)
        self.findings = findings
        self.action = action
        self.target_type = target_type
        self.target_id = target_id
