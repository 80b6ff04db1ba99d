"""Uploads from the browser: files, folders and zips, all-or-nothing per study."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy.orm import Session

from app.dicom.archive import (
    ArchiveLimits,
    Member,
    display_name,
    is_zip,
    iter_zip,
    looks_like_dicom,
)
from app.dicom.safe_read import release_memory
from app.errors import DicomRejected, Invalid, TeachfileError
from app.models import User
from app.services import audit, intake
from app.services.access import Permission, require

MAX_FILES = 10_000
NOT_DICOM = "not a DICOM Part 10 file"


@dataclass(frozen=True)
class FileReport:
    name: str
    outcome: str  # stored, duplicate, quarantined, skipped, refused
    reason: str = ""
    code: str = ""  # the refusal's short stable code (the audit log keeps codes, not reasons)


@dataclass
class UploadReport:
    files: list[FileReport] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)

    def count(self, outcome: str) -> int:
        return sum(1 for f in self.files if f.outcome == outcome)

    def refusal_codes(self) -> dict[str, int]:
        """``{"refused:truncated": 2, ...}``: how many files were refused for which reason."""
        codes = Counter(
            f"refused:{f.code or 'other'}" for f in self.files if f.outcome == "refused"
        )
        return dict(sorted(codes.items()))


def _members(uploads: Iterable[tuple[str, IO[bytes]]], limits: ArchiveLimits) -> Iterator[Member]:
    for name, stream in uploads:
        head = stream.read(132)
        stream.seek(0)
        if is_zip(name, head[:4]):
            yield from iter_zip(stream, limits)
        elif not looks_like_dicom(head + b"\0"):
            # Not read whole: a 500 MB file of anything else would sit in memory only to
            # be skipped (issue 17).
            yield Member(name, None, NOT_DICOM)
        else:
            data = stream.read(limits.max_entry_bytes + 1)
            if len(data) > limits.max_entry_bytes:
                yield Member(
                    name,
                    None,
                    "refused: the file is larger than an upload may hold",
                    code="too-large",
                )
            else:
                yield Member(name, data)


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
    was refused; files and zip entries that are not DICOM are reported and skipped."""
    require(actor, Permission.RECEIVE_STUDIES)
    institution = actor.institution
    if institution is None:
        raise Invalid(
            "Your account belongs to no institution yet; ask an admin to add you.",
            code="no-institution",
        )
    limits = limits or ArchiveLimits()
    report = UploadReport()
    prepared: list[tuple[str, intake.Prepared]] = []
    refused_studies: set[str] = set()
    for index, member in enumerate(_members(uploads, limits)):
        if index >= MAX_FILES:
            raise Invalid(f"An upload may hold at most {MAX_FILES} files.", code="too-many-files")
        name = display_name(member.name)
        if member.data is None:
            if not member.quiet:
                outcome = "refused" if member.skipped.startswith("refused") else "skipped"
                report.files.append(FileReport(name, outcome, member.skipped, member.code))
            continue
        if not looks_like_dicom(member.data):
            report.files.append(FileReport(name, "skipped", NOT_DICOM))
            continue
        try:
            prepared.append(
                (name, intake.prepare(session, member.data, institution=institution, config=config))
            )
        except DicomRejected as err:
            if err.study_uid:
                refused_studies.add(err.study_uid)
            report.files.append(FileReport(name, "refused", err.message, err.code))
    for name, item in prepared:
        study_uid = item.meta.study_instance_uid
        if study_uid in refused_studies:
            report.files.append(
                FileReport(
                    name,
                    "refused",
                    "another file of this study was refused, so none "
                    "of the study was stored; fix or remove that file and send again",
                    "study-refused",
                )
            )
            continue
        stored = intake.store_prepared(
            session, item, institution=institution, source="upload", config=config
        )
        report.studies.add(study_uid)
        report.files.append(FileReport(name, stored.status, stored.reason))
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
    """Audit an upload refused as a whole (a damaged zip, a zip that unpacks too far, too
    many files), after the caller rolled its work back: the code, never the message."""
    audit.record(
        session,
        "upload.refused",
        actor=actor,
        remote_addr=remote_addr,
        detail={"channel": "upload", "code": err.code},
    )
