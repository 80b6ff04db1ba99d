"""Uploaded files and zip archives, read with limits before anything is parsed.

A zip from a browser may be hostile: bombs, traversal, symlinks, devices, nested
archives, encrypted or oddly named entries. Every entry's metadata is checked
before any entry is read, and an archive with one entry refused for safety is
refused whole (``ArchiveRefused``), so a hostile archive never contributes part of
a study. Each entry is then read through a bounded stream (the header's sizes are
not trusted). Entries are identified by their position in the archive, never by
name: a name may carry a patient's name.
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
    """One file of an upload: its bytes, or why it was left out (``data`` is None).

    ``position`` is the 1-based entry number inside a zip (0 for a plain file);
    ``name`` is only used to classify the entry and is never shown back.
    """

    name: str
    data: bytes | None
    reason: str = ""
    refused: bool = False  # refused (a safety or size rule), rather than skipped
    too_large: bool = False
    quiet: bool = False  # skipped without fuss: folders, OS litter and DICOMDIR
    position: int = 0
    code: str = ""  # the refusal's short stable code, for the audit log


@dataclass(frozen=True)
class EntryRefusal:
    """Why one entry (by 1-based position; 0 for the archive itself) was refused."""

    position: int
    reason: str
    code: str = ""  # the refusal's short stable code, for the audit log


class ArchiveRefused(Invalid):
    """The archive is refused whole; ``entries`` lists each reason, by position."""

    def __init__(self, message: str, entries: list[EntryRefusal], *, too_large: bool = False):
        # The first entry's code stands for the archive (the audit log counts each entry's).
        super().__init__(message, code=entries[0].code if entries else "zip-refused")
        self.entries = entries
        self.too_large = too_large


_QUIET_NAMES = {".ds_store", "thumbs.db", "desktop.ini", "dicomdir"}
_ARCHIVE_SUFFIXES = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst"}
_READ_CHUNK = 1024 * 1024
TOO_LARGE = "the file is larger than an upload may hold"


def is_zip(name: str, head: bytes) -> bool:
    return head.startswith(b"PK\x03\x04") or (name.lower().endswith(".zip") and head[:2] == b"PK")


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
    """Yield the members of a zip archive, or raise ``ArchiveRefused`` for the whole of it.

    The refusal may come after some members were yielded (a bomb is only found by
    reading it); the caller must then drop what it took from this archive.
    """
    limits = limits or ArchiveLimits()
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
        raise ArchiveRefused(
            "The zip file is damaged or not a zip file.",
            [EntryRefusal(0, "the zip file is damaged or not a zip file", "zip-damaged")],
        ) from err
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            reason = f"the zip file has more than {limits.max_entries} entries"
            raise ArchiveRefused(
                f"The zip file has more than {limits.max_entries} entries.",
                [EntryRefusal(0, reason, "zip-too-many-entries")],
                too_large=True,
            )
        unsafe = _unsafe_entries(infos)
        if unsafe:
            raise ArchiveRefused(
                "The zip file was refused whole: some of its entries are unsafe.", unsafe
            )
        total = 0
        for position, info in enumerate(infos, start=1):
            quiet = _quiet(info)
            if quiet:
                yield Member(info.filename, None, quiet, quiet=True, position=position)
                continue
            if info.file_size > limits.max_entry_bytes:
                yield Member(
                    info.filename,
                    None,
                    TOO_LARGE,
                    refused=True,
                    too_large=True,
                    position=position,
                    code="too-large",
                )
                continue
            data = _read_bounded(archive, info, limits, limits.max_total_bytes - total, position)
            if data is None:
                yield Member(
                    info.filename,
                    None,
                    TOO_LARGE,
                    refused=True,
                    too_large=True,
                    position=position,
                    code="too-large",
                )
                continue
            total += len(data)
            yield Member(info.filename, data, position=position)


def _quiet(info: zipfile.ZipInfo) -> str:
    """Why ``info`` is left out without a report (a folder or OS litter), or ""."""
    base = PurePosixPath(info.filename).name.lower()
    if info.is_dir():
        return "folder"
    if info.filename.startswith("__MACOSX/") or base.startswith("._") or base in _QUIET_NAMES:
        return "not a medical image (system file or DICOMDIR)"
    return ""


def _unsafe_entries(infos: list[zipfile.ZipInfo]) -> list[EntryRefusal]:
    """Every entry refused for safety, read from the central directory alone."""
    seen: set[str] = set()
    refused: list[EntryRefusal] = []
    for position, info in enumerate(infos, start=1):
        reason, code = _unsafe(info, seen)
        if reason:
            refused.append(EntryRefusal(position, reason, code))
    return refused


def _unsafe(info: zipfile.ZipInfo, seen: set[str]) -> tuple[str, str]:
    """Why ``info`` is unsafe and the reason's code, or ("", "")."""
    name = info.filename
    reason = _odd_name(name)
    if reason:
        return reason, "zip-bad-name"
    if name in seen:
        return "the archive holds this name twice", "zip-duplicate"
    seen.add(name)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symbolic links are not followed", "zip-symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return "device files, pipes and sockets are not read", "zip-device"
    if info.flag_bits & 0x1:
        return "encrypted entries cannot be read", "zip-encrypted"
    if info.is_dir():
        return "", ""
    if PurePosixPath(name.lower()).suffix in _ARCHIVE_SUFFIXES:
        return "archives inside archives are not opened", "zip-nested"
    return "", ""


def _read_bounded(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    limits: ArchiveLimits,
    budget: int,
    position: int,
) -> bytes | None:
    """The entry's bytes, or None when it is larger than one entry may be.

    Raises ``ArchiveRefused`` for a bomb, a damaged entry or an archive that
    unpacks to more than an upload may hold.
    """
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
                        raise ArchiveRefused(
                            "The zip file unpacks to more than an upload may hold.",
                            [
                                EntryRefusal(
                                    0,
                                    "the zip file unpacks to more than an upload may hold",
                                    "zip-too-large",
                                )
                            ],
                            too_large=True,
                        )
                    return None
                if size > limits.ratio_floor_bytes and size > limits.max_ratio * max(
                    info.compress_size, 1
                ):
                    raise ArchiveRefused(
                        "The zip file was refused whole: an entry is a zip bomb.",
                        [
                            EntryRefusal(
                                position,
                                "the entry is compressed suspiciously well (a zip bomb?)",
                                "zip-bomb",
                            )
                        ],
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as err:
        raise ArchiveRefused(
            "The zip file was refused whole: an entry is damaged.",
            [
                EntryRefusal(
                    position,
                    "the entry is damaged or uses an unsupported compression",
                    "zip-damaged",
                )
            ],
        ) from err
    return b"".join(chunks)


def looks_like_dicom(data: bytes) -> bool:
    """A DICOM Part 10 file: 128-byte preamble, then ``DICM`` (PS3.10 7.1)."""
    return len(data) > 132 and data[128:132] == b"DICM"
