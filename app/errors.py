"""Domain exceptions shared by services, adapters and the web layer.

Views and the CLI translate these into HTTP statuses, DICOM statuses and exit
codes; nothing below the web layer knows about HTTP.
"""

from __future__ import annotations


class TeachfileError(Exception):
    """Base class: the message is safe to show to the user (never PHI).

    ``code`` is a short stable name of the reason (``zip-damaged``, ``truncated``) for
    the audit log, where the message's wording may change and no value may go.
    """

    status = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class NotFound(TeachfileError):
    """The object does not exist, or the actor may not know that it exists."""

    status = 404
    default_code = "not-found"


class Forbidden(TeachfileError):
    """The actor is known to see the object but may not do this to it."""

    status = 403
    default_code = "forbidden"


class Invalid(TeachfileError):
    """Input broke a rule; the message says which."""

    status = 400


class Conflict(TeachfileError):
    """The change collides with another (duplicate, stale revision)."""

    status = 409
    default_code = "conflict"


class TooLarge(TeachfileError):
    """The input is larger than this server accepts (HTTP 413)."""

    status = 413
    default_code = "too-large"


class TooManyRequests(TeachfileError):
    """Throttled: try again later."""

    status = 429
    default_code = "throttled"


# The reason code of a refusal that names none, from its DICOM status (PS3.4 B.2.3 and
# the receiver's own 0xC0xx statuses in app/dicom/conformance.py).
_CODE_BY_DICOM_STATUS = {
    0xA700: "too-large",
    0xA900: "sop-class-mismatch",
    0xC000: "unreadable",
    0xC010: "invalid-uid",
    0xC020: "invalid-pixels",
    0xC030: "free-text-sr",
}


class DicomRejected(TeachfileError):
    """A DICOM object was refused; ``reason`` never quotes a value from the object.

    ``status`` here is the DICOM failure status to send back (PS3.4 Annex B.2.3),
    for example 0xA900 (dataset does not match SOP class) or 0xC000 (cannot
    understand).
    """

    def __init__(
        self, message: str, dicom_status: int = 0xC000, *, code: str | None = None
    ) -> None:
        code = code or _CODE_BY_DICOM_STATUS.get(dicom_status, "unreadable")
        super().__init__(message, code=code)
        self.dicom_status = dicom_status
        # The de-identified Study Instance UID, when the object got that far, so an
        # upload can refuse the rest of the study with it (all-or-nothing).
        self.study_uid: str | None = None


class StorageError(TeachfileError):
    """The data directory could not take a write (disk full, I/O error).

    Maps to HTTP 507 and to DICOM status 0xA700 (Refused: Out of Resources).
    """

    status = 507
    default_code = "storage-failed"


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
