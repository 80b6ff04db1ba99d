"""The object store: content-addressed, immutable files under the data directory.

A file is written to ``tmp/`` on the same filesystem, fsynced, renamed into
place, and the directory fsynced (DESIGN.md, "Data that lives on disk"); the
database row that points at it is committed afterwards by the caller. A crash
at any step leaves at most an orphan file, never a row without its file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.errors import NotFound, StorageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
AREAS = ("objects", "quarantine")


@dataclass(frozen=True)
class StoredObject:
    sha256: str
    size: int
    created: bool  # False when identical content was already stored


class ObjectStore:
    """Content-addressed files in ``<data_dir>/<area>/ab/cd/<sha256>``."""

    def __init__(self, data_dir: Path | str) -> None:
        self.root = Path(data_dir)
        self.tmp = self.root / "tmp"

    def path(self, sha256: str, area: str = "objects") -> Path:
        """The file's path; refuses anything that is not a sha256 (no traversal)."""
        if area not in AREAS or not _SHA256.match(sha256):
            raise NotFound("No such object.")
        return self.root / area / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, area: str = "objects") -> StoredObject:
        """Store ``data`` durably under its sha256; idempotent for identical content."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.path(digest, area)
        if final.exists():
            # Touch it: `teachfile verify --repair` leaves files younger than its grace
            # period alone, so a reused orphan is not swept while its row is being added.
            try:
                os.utime(final)
            except FileNotFoundError:
                pass
            else:
                return StoredObject(digest, len(data), created=False)
        tmp_path: Path | None = None
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp_path = self.tmp / f"{digest}.{os.getpid()}.{time.monotonic_ns()}"
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp_path, final)
            tmp_path = None
            _fsync_dir(final.parent)
        except OSError as err:
            raise StorageError(_describe(err)) from None
        finally:
            if tmp_path is not None:
                tmp_path.unlink(missing_ok=True)
        return StoredObject(digest, len(data), created=True)

    def read(self, sha256: str, area: str = "objects") -> bytes:
        try:
            return self.path(sha256, area).read_bytes()
        except FileNotFoundError:
            raise NotFound("The stored file is missing.") from None

    def exists(self, sha256: str, area: str = "objects") -> bool:
        return self.path(sha256, area).is_file()

    def remove(self, sha256: str, area: str) -> None:
        """Delete a file; only quarantine holds files that are ever deleted."""
        if area != "quarantine":
            raise StorageError("Stored objects are immutable.")
        self.path(sha256, area).unlink(missing_ok=True)

    def iter_hashes(self, area: str = "objects") -> Iterator[str]:
        base = self.root / area
        for path in base.glob("??/??/*"):
            if _SHA256.match(path.name):
                yield path.name

    def sweep_tmp(self, older_than_seconds: float = 3600) -> int:
        """Remove staging files left by a crash; returns how many."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        if not self.tmp.is_dir():
            return 0
        for path in self.tmp.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _describe(err: OSError) -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return "The data directory is full; the object was not stored."
    return "The data directory could not be written (I/O error); the object was not stored."
