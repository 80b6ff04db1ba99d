"""Uploads from the browser: files, folders and zips, all-or-nothing per study and per archive.

The report names every file by its position ("file 3", "entry 12"), never by its
name, which may carry a patient's name. Its ``status`` tells a script or a gateway
the truth: 200 only when something was kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy.orm import Session

from app.dicom.archive import (
    TOO_LARGE,
    ArchiveLimits,
    ArchiveRefused,
    Member,
    is_zip,
    iter_zip,
    looks_like_dicom,
)
from app.dicom.safe_read import release_memory
from app.errors import DicomRejected, Invalid, TeachfileError, TooLarge
from app.models import User
from app.services import audit, intake
from app.services.access import Permission, require

MAX_FILES = 10_000
ACCEPTED = ("stored", "duplicate", "quarantined")
NO_DICOM = "No DICOM files found: nothing was stored."
NOT_DICOM = "not a DICOM Part 10 file"


@dataclass(frozen=True)
class FileReport:
    """One line of the report: where the file was in the upload, and what became of it."""

    file: int  # 1-based position of the uploaded file
    entry: int  # 1-based position inside a zip; 0 for the file itself
    outcome: str  # stored, duplicate, quarantined, skipped, refused
    reason: str = ""
    too_large: bool = False
    single: bool = True  # the only file of its upload: entries need not name it
    code: str = ""  # the refusal's short stable code (the audit log keeps codes, not reasons)

    @property
    def item(self) -> str:
        """Where the file was, never what it was called."""
        if not self.entry:
            return f"file {self.file}"
        return f"entry {self.entry}" if self.single else f"file {self.file}, entry {self.entry}"


@dataclass
class UploadReport:
    """What an upload did, file by file, and the HTTP status that sums it up."""

    files: list[FileReport] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)  # whole-archive refusals, in plain words
    uploaded: int = 0  # files sent (a zip counts once)
    unsupported: int = 0  # of those, neither a zip nor a DICOM Part 10 file

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    def refusal_codes(self) -> dict[str, int]:
        """``{"refused:truncated": 2, ...}``: how many files were refused for which reason."""
        codes = Counter(
            f"refused:{f.code or 'other'}" for f in self.files if f.outcome == "refused"
        )
        return dict(sorted(codes.items()))

    @property
    def summary(self) -> str:
        return (
            f"{self.count('stored')} stored, {self.count('refused')} refused, "
            f"{self.count('duplicate')} already here, {self.count('quarantined')} held for review, "
            f"{self.count('skipped')} skipped; {len(self.studies)} studies."
        )

    @property
    def status(self) -> int:
        """The HTTP status (RFC 9110) of this result: 200 when anything was kept."""
        if any(f.outcome in ACCEPTED for f in self.files):
            return 200
        refused = [f for f in self.files if f.outcome == "refused"]
        if refused:
            return 413 if all(f.too_large for f in refused) else 422
        if self.uploaded and self.unsupported == self.uploaded:
            return 415
        return 422

    @property
    def error(self) -> str:
        """Why nothing was kept, or "" when something was."""
        status = self.status
        if status == 200:
            return ""
        if status == 413:
            return "Nothing was stored: the upload is larger than this server accepts."
        if status == 415:
            return "Nothing was stored: the files are neither DICOM nor zip."
        if self.count("refused"):
            return (
                "Nothing was stored: what was sent was refused or skipped; "
                "the reasons are listed by position."
            )
        return NO_DICOM


@dataclass(frozen=True)
class _Refusal:
    """A zip of the upload was refused whole (``file`` is its position)."""

    file: int
    error: ArchiveRefused


def _members(
    uploads: list[tuple[str, IO[bytes]]], limits: ArchiveLimits, report: UploadReport
) -> Iterator[tuple[int, Member | _Refusal]]:
    for position, (name, stream) in enumerate(uploads, start=1):
        head = stream.read(132)
        stream.seek(0)
        if is_zip(name, head[:4]):
            try:
                for member in iter_zip(stream, limits):
                    yield position, member
            except ArchiveRefused as err:
                yield position, _Refusal(position, err)
            continue
        if not looks_like_dicom(head + b"\0"):
            # Not read whole: a 500 MB file of anything else would sit in memory only to
            # be skipped (issue 17).
            report.unsupported += 1
            yield position, Member(name, None, NOT_DICOM)
            continue
        data = stream.read(limits.max_entry_bytes + 1)
        if len(data) > limits.max_entry_bytes:
            yield (
                position,
                Member(name, None, TOO_LARGE, refused=True, too_large=True, code="too-large"),
            )
            continue
        yield position, Member(name, data)


def ingest_upload(
    session: Session,
    uploads: Iterable[tuple[str, IO[bytes]]],
    *,
    actor: User,
    config: intake.IntakeConfig,
    limits: ArchiveLimits | None = None,
    remote_addr: str = "",
) -> UploadReport:
    """De-identify every file in memory, then store each study only if none of its files
    was refused and no zip it came in was refused whole; files and zip entries that are
    not DICOM are reported and skipped."""
    require(actor, Permission.RECEIVE_STUDIES)
    institution = actor.institution
    if institution is None:
        raise Invalid(
            "Your account belongs to no institution yet; ask an admin to add you.",
            code="no-institution",
        )
    limits = limits or ArchiveLimits()
    sent = list(uploads)
    single = len(sent) == 1
    report = UploadReport(uploaded=len(sent))
    prepared: list[tuple[FileReport, intake.Prepared]] = []
    refused_studies: set[str] = set()
    refused_archives: dict[int, bool] = {}  # file position -> refused for size
    for index, (position, member) in enumerate(_members(sent, limits, report)):
        if index >= MAX_FILES:
            raise TooLarge(f"An upload may hold at most {MAX_FILES} files.", code="too-many-files")
        if isinstance(member, _Refusal):
            refused_archives[position] = member.error.too_large
            _refuse_archive(report, member, single=single)
            continue
        where = FileReport(position, member.position, "", single=single)
        if member.data is None:
            if not member.quiet:
                outcome = "refused" if member.refused else "skipped"
                report.files.append(
                    _with(where, outcome, member.reason, member.too_large, member.code)
                )
            continue
        if not looks_like_dicom(member.data):
            report.files.append(_with(where, "skipped", NOT_DICOM))
            continue
        try:
            item = intake.prepare(session, member.data, institution=institution, config=config)
        except DicomRejected as err:
            if err.study_uid:
                refused_studies.add(err.study_uid)
            report.files.append(_with(where, "refused", err.message, code=err.code))
            continue
        prepared.append((where, item))
    for where, item in prepared:
        study_uid = item.meta.study_instance_uid
        if where.file in refused_archives:
            refused_studies.add(study_uid)
    for where, item in prepared:
        study_uid = item.meta.study_instance_uid
        if where.file in refused_archives:
            reason = "the zip file it came in was refused whole"
            report.files.append(
                _with(where, "refused", reason, refused_archives[where.file], "archive-refused")
            )
            continue
        if study_uid in refused_studies:
            report.files.append(
                _with(
                    where,
                    "refused",
                    "another file of this study was refused, so none "
                    "of the study was stored; fix or remove that file and send again",
                    code="study-refused",
                )
            )
            continue
        stored = intake.store_prepared(
            session, item, institution=institution, source="upload", config=config
        )
        report.studies.add(study_uid)
        report.files.append(_with(where, stored.status, stored.reason))
    report.files.sort(key=lambda f: (f.file, f.entry))
    if report.count("refused") or report.count("skipped"):
        release_memory()
    audit.record(
        session,
        "upload.received",
        actor=actor,
        remote_addr=remote_addr,
        detail={
            "channel": "upload",
            "stored": report.count("stored"),
            "duplicate": report.count("duplicate"),
            "quarantined": report.count("quarantined"),
            "refused": report.count("refused"),
            "skipped": report.count("skipped"),
            "studies": len(report.studies),
            **report.refusal_codes(),
        },
    )
    return report


def record_refused_upload(
    session: Session, err: TeachfileError, *, actor: User, remote_addr: str = ""
) -> None:
    """Audit an upload refused as a whole (too many files, no institution), after the
    caller rolled its work back: the code, never the message."""
    audit.record(
        session,
        "upload.refused",
        actor=actor,
        remote_addr=remote_addr,
        detail={"channel": "upload", "code": err.code},
    )


def _with(
    where: FileReport, outcome: str, reason: str, too_large: bool = False, code: str = ""
) -> FileReport:
    return FileReport(where.file, where.entry, outcome, reason, too_large, where.single, code)


def _refuse_archive(report: UploadReport, refusal: _Refusal, *, single: bool) -> None:
    """List each reason the zip was refused for, by entry position."""
    err = refusal.error
    for entry in err.entries:
        report.files.append(
            FileReport(
                refusal.file,
                entry.position,
                "refused",
                entry.reason,
                err.too_large,
                single,
                entry.code or err.code,
            )
        )
    message = err.message
    if not single:
        message = message.replace("The zip file", f"The zip file (file {refusal.file})", 1)
    report.notes.append(f"{message} Nothing in it was stored.")
