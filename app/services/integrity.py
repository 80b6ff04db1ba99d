"""``teachfile verify``: every row's file is there with the right hash; nothing else is.

What the database points at:

* every :class:`~app.models.Instance` row -> ``objects/ab/cd/<sha256>``, whose content
  must hash to that sha256 (each distinct file is read and hashed once);
* every *held* :class:`~app.models.QuarantinedObject` -> ``quarantine/ab/cd/<sha256>``.

A missing or corrupt file is data loss: it is reported and never "repaired" here (the
file comes back from a backup: ``teachfile restore``). What nothing points at is
leftover: an orphan file in ``objects/`` or ``quarantine/`` (a crash between the
rename and the commit, a discarded study, a resolved quarantine item whose removal
after the commit did not happen) and staging files in ``tmp/``. ``--repair`` removes
those; it never removes a file that a row points to.

Writers put a file in place *before* committing its row, so a file younger than the
grace period may belong to a transaction still in flight: it is reported as in
flight, neither an orphan nor swept. Just before removing an orphan the database is
asked again whether a row now points at it.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Instance, QuarantinedObject, QuarantineStatus
from app.storage import AREAS, ObjectStore

#: Files younger than this may belong to a transaction that has not committed yet.
GRACE_SECONDS = 3600.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


@dataclass
class VerifyReport:
    """What ``verify`` found; paths are relative to the data directory."""

    objects_checked: int = 0  # distinct files behind Instance rows
    held_checked: int = 0  # distinct files behind held quarantine rows
    missing: list[str] = field(default_factory=list)  # "objects/<sha256>" a row points at
    corrupt: list[str] = field(default_factory=list)  # content does not hash to its name
    orphans: list[str] = field(default_factory=list)  # files no row points at
    stale_tmp: list[str] = field(default_factory=list)  # staging files left by a crash
    in_flight: int = 0  # young files that may still get their row
    removed: list[str] = field(default_factory=list)  # swept by --repair

    @property
    def lost(self) -> int:
        return len(self.missing) + len(self.corrupt)

    @property
    def leftovers(self) -> list[str]:
        """Orphans and stale staging files still on disk (not removed by a repair)."""
        gone = set(self.removed)
        return [p for p in self.orphans + self.stale_tmp if p not in gone]

    @property
    def ok(self) -> bool:
        return self.lost == 0 and not self.leftovers

    def lines(self) -> Iterator[str]:
        for path in self.missing:
            yield f"MISSING  {path} (a database row points at it)"
        for path in self.corrupt:
            yield f"CORRUPT  {path} (content does not match its sha256)"
        removed = set(self.removed)
        for path in self.orphans:
            yield f"{'REMOVED' if path in removed else 'ORPHAN '}  {path} (no row points at it)"
        for path in self.stale_tmp:
            yield f"{'REMOVED' if path in removed else 'STALE  '}  {path} (staging file)"
        yield (
            f"Checked {self.objects_checked} stored and {self.held_checked} quarantined files: "
            f"{len(self.missing)} missing, {len(self.corrupt)} corrupt, "
            f"{len(self.orphans)} orphan, {len(self.stale_tmp)} stale staging, "
            f"{self.in_flight} in flight, {len(self.removed)} removed."
        )


def verify(
    session: Session,
    store: ObjectStore,
    *,
    repair: bool = False,
    grace_seconds: float = GRACE_SECONDS,
    check_hashes: bool = True,
) -> VerifyReport:
    """Check the object store against the database; with ``repair`` sweep leftovers."""
    report = VerifyReport()
    cutoff = time.time() - grace_seconds
    # Files first, rows second: a row committed meanwhile points at a file already listed.
    on_disk = {area: dict(_area_files(store, area)) for area in AREAS}
    wanted = {
        "objects": set(session.scalars(select(Instance.sha256).distinct())),
        "quarantine": set(
            session.scalars(
                select(QuarantinedObject.sha256)
                .where(QuarantinedObject.status == QuarantineStatus.HELD)
                .distinct()
            )
        ),
    }
    report.objects_checked = len(wanted["objects"])
    report.held_checked = len(wanted["quarantine"])
    for area in AREAS:
        for sha256 in sorted(wanted[area]):
            path = store.path(sha256, area)
            relative = _relative(store, path)
            if not path.is_file():
                report.missing.append(relative)
            elif check_hashes and _hash(path) != sha256:
                report.corrupt.append(relative)
        for name, path in sorted(on_disk[area].items()):
            if name in wanted[area]:
                continue
            if _mtime(path) > cutoff:
                report.in_flight += 1
                continue
            report.orphans.append(_relative(store, path))
    for path in _tmp_files(store):
        if _mtime(path) > cutoff:
            report.in_flight += 1
        else:
            report.stale_tmp.append(_relative(store, path))
    if repair:
        _repair(session, store, report)
    return report


def _repair(session: Session, store: ObjectStore, report: VerifyReport) -> None:
    session.rollback()  # a fresh snapshot for the re-check below
    for relative in report.orphans:
        path = store.root / relative
        area = relative.split("/", 1)[0]
        if _SHA256.match(path.name) and _referenced(session, area, path.name):
            continue  # a row arrived since the scan: not an orphan after all
        if _unlink(path):
            report.removed.append(relative)
    for relative in report.stale_tmp:
        if _unlink(store.root / relative):
            report.removed.append(relative)


def _referenced(session: Session, area: str, sha256: str) -> bool:
    if area == "objects":
        query = select(Instance.id).where(Instance.sha256 == sha256).limit(1)
    else:
        query = (
            select(QuarantinedObject.id)
            .where(
                QuarantinedObject.sha256 == sha256,
                QuarantinedObject.status == QuarantineStatus.HELD,
            )
            .limit(1)
        )
    return session.scalar(query) is not None


def _area_files(store: ObjectStore, area: str) -> Iterator[tuple[str, Path]]:
    """name -> path of every file under the area (stray names included)."""
    base = store.root / area
    if not base.is_dir():
        return
    for dirpath, _dirs, names in os.walk(base):
        for name in names:
            path = Path(dirpath) / name
            # A stray name is keyed by its path so it never matches a sha256.
            yield (name if _SHA256.match(name) else str(path)), path


def _tmp_files(store: ObjectStore) -> Iterator[Path]:
    if not store.tmp.is_dir():
        return
    for dirpath, _dirs, names in os.walk(store.tmp):
        for name in names:
            yield Path(dirpath) / name


def _hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()  # vanished meanwhile: treat as in flight, not as an orphan


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def _relative(store: ObjectStore, path: Path) -> str:
    return path.relative_to(store.root).as_posix()
