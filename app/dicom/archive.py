"""Uploaded files and zip archives, read with limits before anything is parsed.

A zip from a browser may be hostile: bombs, traversal, symlinks, nested
archives, encrypted or oddly named entries. Each entry is read through a
bounded stream (the header's sizes are not trusted) and either yielded with
its bytes or reported with the reason it was skipped.
"""

from __future__ import annotations

import stat
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from app.errors import Invalid


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int = 10_000
    max_entry_bytes: int = 512 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    # DICOM compresses about 2-4:1 with deflate; 100:1 only happens for bombs or
    # images that are mostly zero, so entries above 1 MiB may not exceed it.
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Member:
    """One file of an upload: its bytes, or why it was skipped (``data`` is None)."""

    name: str
    data: bytes | None
    skipped: str = ""
    quiet: bool = False  # skipped without fuss: OS litter and DICOMDIR
    code: str = ""  # the refusal's short stable code, for the audit log


_QUIET_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "dicomdir"}
_ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst"}
_READ_CHUNK = 1024 * 1024


def is_zip(name: str, head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") or (name.lower().endswith(".zip") and head[:2] == b"PK")


def display_name(name: str, limit: int = 200) -> str:
    """A printable version of an entry name for the result page (never stored or logged)."""
    printable = "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in name)
    return printable[:limit]


def _odd_name(name: str) -> str:
    if not name or len(name) > 1024:
        return "the name is empty or too long"
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in name):
        return "the name has control characters"
    if "\\" in name:
        return "the name has a backslash"
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "the path is absolute"
    if any(part == ".." for part in path.parts):
        return "the path leaves the archive (..)"
    return ""


def iter_zip(stream: IO[bytes], limits: ArchiveLimits | None = None) -> Iterator[Member]:
    """Yield the members of a zip archive, each checked before and while it is read."""
    limits = limits or ArchiveLimits()
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise Invalid("The zip file is damaged or not a zip file.", code="zip-damaged") from err
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise Invalid(
                f"The zip file has {len(infos)} entries; "
                f"at most {limits.max_entries} are accepted.",
                code="zip-too-many-entries",
            )
        seen: set[str] = set()
        total = 0
        for info in infos:
            member = _check_entry(info, seen)
            if member is not None:
                yield member
                continue
            data = _read_bounded(archive, info, limits, limits.max_total_bytes - total)
            if isinstance(data, tuple):
                reason, code = data
                if reason.startswith("!"):
                    raise Invalid(reason[1:], code=code)
                yield Member(info.filename, None, reason, code=code)
                continue
            total += len(data)
            yield Member(info.filename, data)


def _check_entry(info: zipfile.ZipInfo, seen: set[str]) -> Member | None:
    """A Member describing why ``info`` is skipped, or None when it should be read."""
    name = info.filename
    base = PurePosixPath(name).name.lower()
    if info.is_dir():
        return Member(name, None, "folder", quiet=True)
    if name.startswith("__MACOSX/") or base.startswith("._") or base in _QUIET_NAMES:
        return Member(name, None, "not a medical image (system file or DICOMDIR)", quiet=True)
    reason = _odd_name(name)
    if reason:
        return Member(name, None, f"refused: {reason}", code="zip-bad-name")
    if name in seen:
        return Member(
            name, None, "refused: the archive holds this name twice", code="zip-duplicate"
        )
    seen.add(name)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return Member(name, None, "refused: symbolic links are not followed", code="zip-symlink")
    if info.flag_bits & 0x1:
        return Member(name, None, "refused: encrypted entries cannot be read", code="zip-encrypted")
    if PurePosixPath(base).suffix in _ARCHIVE_SUFFIXES:
        return Member(
            name, None, "refused: archives inside archives are not opened", code="zip-nested"
        )
    return None


def _read_bounded(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, budget: int
) -> bytes | tuple[str, str]:
    """The entry's bytes, or a reason and its code (a reason "!..." ends the whole upload)."""
    if info.file_size > limits.max_entry_bytes:
        return "refused: the file is larger than an upload may hold", "too-large"
    cap = min(limits.max_entry_bytes, budget)
    chunks: list[bytes] = []
    size = 0
    try:
        with archive.open(info) as handle:
            while True:
                chunk = handle.read(_READ_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > cap:
                    if cap == budget:
                        return (
                            "!The zip file unpacks to more than an upload may hold.",
                            "zip-too-large",
                        )
                    return "refused: the file is larger than an upload may hold", "too-large"
                if (
                    size > limits.ratio_floor_bytes
                    and size > limits.max_ratio * max(info.compress_size, 1)
                ):
                    return (
                        "refused: the entry is compressed suspiciously well (a zip bomb?)",
                        "zip-bomb",
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
        return "refused: the entry is damaged or uses an unsupported compression", "zip-damaged"
    return b"".join(chunks)


def looks_like_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble, then ``DICM`` (PS3.10 7.1)."""
    return len(data) > 132 and data[128:132] == b"DICM"
