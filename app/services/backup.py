"""``teachfile backup DEST`` and ``teachfile restore SRC``: consistent while the server runs.

Order is what makes a live backup consistent. Files are written (and renamed into
place) *before* the rows that point at them are committed, and they never change
afterwards. So the database is copied first, as one snapshot, and then exactly the
files that this snapshot's rows point at are copied: every one of them exists
already. Rows committed after the snapshot are not in the backup, and neither are
their files (the backup holds no orphans).

* SQLite: the online backup API in one step (a consistent read snapshot; writers
  carry on under WAL).
* PostgreSQL: ``pg_dump --format=custom`` with a snapshot exported by a
  REPEATABLE READ transaction, the same transaction that lists the files.

A backup directory::

    DEST/manifest.json            written last: a backup without it is incomplete
    DEST/teachfile.sqlite3        or DEST/database.pgdump
    DEST/secret_key, deid_secret  mode 0600
    DEST/objects/ab/cd/<sha256>   de-identified DICOM
    DEST/quarantine/ab/cd/<sha256>

Backing up into the same DEST again is incremental: content-addressed files already
there are kept, files the new snapshot no longer needs are removed. Each copied file
is hashed on the way, so a corrupt source file is reported, not copied silently.

``restore`` brings a backup back into an empty data directory only (and, for
PostgreSQL, an empty database), checks every file's hash against its name and the
database dump against the manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, func, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.errors import TeachfileError
from app.models import Case, Instance, QuarantinedObject, QuarantineStatus, User
from app.storage import AREAS, ObjectStore

MANIFEST = "manifest.json"
SQLITE_FILE = "teachfile.sqlite3"
PG_DUMP_FILE = "database.pgdump"
SECRETS = ("secret_key", "deid_secret")
FORMAT = 1
_CHUNK = 1024 * 1024


class BackupError(TeachfileError):
    """A backup or restore that cannot be done; the message says why, in one line."""


@dataclass
class BackupResult:
    dest: Path
    manifest: dict[str, Any]
    copied: int = 0  # files copied this time
    kept: int = 0  # files already in DEST (incremental)
    pruned: int = 0  # files in DEST the snapshot no longer needs
    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    corrupt: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.corrupt


# -- backup ------------------------------------------------------------------------------


def backup(database_url: str, data_dir: str | Path, dest: str | Path) -> BackupResult:
    """Back up the database, then the files its rows point at, then the manifest."""
    started = time.monotonic()
    store = ObjectStore(data_dir)
    dest = Path(dest).resolve()
    _check_dest(dest, Path(data_dir).resolve())
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    (dest / MANIFEST).unlink(missing_ok=True)  # incomplete until the new one is written
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        kind, db_file, wanted, counts = _backup_sqlite(url.database or "", dest)
    elif url.get_backend_name() == "postgresql":
        kind, db_file, wanted, counts = _backup_postgres(database_url, dest)
    else:
        raise BackupError(f"cannot back up a {url.get_backend_name()} database")
    result = BackupResult(dest=dest, manifest={})
    for name in SECRETS:
        source = store.root / name
        if source.is_file():
            _copy_file(source, dest / name)
    files: dict[str, dict[str, int]] = {}
    for area in AREAS:
        size = 0
        for sha256 in sorted(wanted[area]):
            size += _backup_object(store, area, sha256, dest, result)
        result.pruned += _prune(dest / area, wanted[area])
        files[area] = {"count": len(wanted[area]), "bytes": size}
    result.manifest = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": kind,
        "database_file": db_file,
        "database_sha256": _hash_file(dest / db_file),
        "counts": counts,
        "files": files,
        "objects_digest": _names_digest(wanted["objects"]),
        "quarantine_digest": _names_digest(wanted["quarantine"]),
        "secrets": [name for name in SECRETS if (dest / name).is_file()],
        "complete": result.ok,
        "missing": result.missing,
        "corrupt": result.corrupt,
    }
    _write_atomic(dest / MANIFEST, json.dumps(result.manifest, indent=2).encode() + b"\n")
    result.seconds = time.monotonic() - started
    return result


def _check_dest(dest: Path, data_dir: Path) -> None:
    if dest == data_dir or data_dir in dest.parents or dest in data_dir.parents:
        raise BackupError("the backup must go outside the data directory")
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not _looks_like_backup(dest):
        raise BackupError(f"{dest} is not empty and holds no earlier backup")


def _looks_like_backup(path: Path) -> bool:
    return any((path / name).exists() for name in (MANIFEST, SQLITE_FILE, PG_DUMP_FILE))


def _backup_sqlite(path: str, dest: Path) -> tuple[str, str, dict[str, set[str]], dict[str, int]]:
    if not Path(path).is_file():
        raise BackupError(f"no SQLite database at {path}")
    partial = dest / f"{SQLITE_FILE}.partial"
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(partial)
    try:
        source.execute("PRAGMA busy_timeout=30000")
        # pages=-1: the whole database in one step, i.e. one read snapshot.
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=DELETE")
        target.commit()
    finally:
        target.close()
        source.close()
    os.chmod(partial, 0o600)
    engine = create_engine(f"sqlite:///{partial}")
    try:
        with engine.connect() as connection:
            wanted, counts = _snapshot_contents(connection)
    finally:
        engine.dispose()
    _fsync(partial)
    os.replace(partial, dest / SQLITE_FILE)
    (dest / PG_DUMP_FILE).unlink(missing_ok=True)
    return "sqlite", SQLITE_FILE, wanted, counts


def _backup_postgres(
    database_url: str, dest: Path
) -> tuple[str, str, dict[str, set[str]], dict[str, int]]:
    partial = dest / f"{PG_DUMP_FILE}.partial"
    partial.unlink(missing_ok=True)
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
            # The dump and the file list read the same snapshot.
            _pg_tool(
                "pg_dump",
                database_url,
                ["--format=custom", "--no-owner", f"--snapshot={snapshot}", f"--file={partial}"],
            )
            wanted, counts = _snapshot_contents(connection)
            connection.rollback()
    finally:
        engine.dispose()
    os.chmod(partial, 0o600)
    _fsync(partial)
    os.replace(partial, dest / PG_DUMP_FILE)
    (dest / SQLITE_FILE).unlink(missing_ok=True)
    return "postgresql", PG_DUMP_FILE, wanted, counts


def _snapshot_contents(connection: Connection) -> tuple[dict[str, set[str]], dict[str, int]]:
    session = Session(bind=connection)
    held = QuarantinedObject.status == QuarantineStatus.HELD
    wanted = {
        "objects": set(session.scalars(select(Instance.sha256).distinct())),
        "quarantine": set(session.scalars(select(QuarantinedObject.sha256).where(held).distinct())),
    }
    counts = {
        "instances": session.scalar(select(func.count()).select_from(Instance)) or 0,
        "quarantine_held": session.scalar(select(func.count()).where(held)) or 0,
        "cases": session.scalar(select(func.count()).select_from(Case)) or 0,
        "users": session.scalar(select(func.count()).select_from(User)) or 0,
    }
    return wanted, counts


def _backup_object(
    store: ObjectStore, area: str, sha256: str, dest: Path, result: BackupResult
) -> int:
    source = store.path(sha256, area)
    target = dest / source.relative_to(store.root)
    relative = target.relative_to(dest).as_posix()
    with contextlib.suppress(FileNotFoundError):
        size = target.stat().st_size
        result.kept += 1
        return size  # content-addressed: a file already there is this content
    try:
        size, digest = _copy_file(source, target)
    except FileNotFoundError:
        result.missing.append(relative)
        return 0
    if digest != sha256:
        target.unlink()
        result.corrupt.append(relative)
        return 0
    result.copied += 1
    return size


def _prune(root: Path, wanted: set[str]) -> int:
    removed = 0
    if not root.is_dir():
        return 0
    for path in root.glob("??/??/*"):
        if path.name not in wanted:
            path.unlink()
            removed += 1
    return removed


# -- restore -----------------------------------------------------------------------------


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    files: int
    seconds: float


def restore(source: str | Path, database_url: str, data_dir: str | Path) -> RestoreResult:
    """Bring the backup in ``source`` into an empty data directory (and empty database)."""
    started = time.monotonic()
    source = Path(source)
    data_dir = Path(data_dir)
    manifest = _read_manifest(source)
    if not _is_empty(data_dir):
        raise BackupError(
            f"the data directory {data_dir} is not empty; restore only into an empty one"
        )
    url = make_url(database_url)
    db_file = source / manifest["database_file"]
    if _hash_file(db_file) != manifest["database_sha256"]:
        raise BackupError(f"{db_file} does not match the manifest (damaged backup)")
    if manifest["database"] != url.get_backend_name():
        raise BackupError(
            f"the backup holds a {manifest['database']} database but the configured "
            f"database is {url.get_backend_name()}"
        )
    if url.get_backend_name() == "postgresql":
        _check_empty_postgres(database_url)
    elif Path(url.database or "").exists():
        raise BackupError(f"a database already exists at {url.database}")
    # Files first (as in normal operation), then the database that points at them.
    for sub in ("", "objects", "renders", "index", "tmp", "quarantine"):
        (data_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in manifest.get("secrets", []):
        _copy_file(source / name, data_dir / name)
    store = ObjectStore(data_dir)
    files = 0
    for area in AREAS:
        for path in sorted((source / area).glob("??/??/*")):
            target = store.path(path.name, area)
            _size, digest = _copy_file(path, target)
            if digest != path.name:
                raise BackupError(f"{path} does not match its sha256 (damaged backup)")
            files += 1
    if url.get_backend_name() == "sqlite":
        target_db = Path(url.database or "")
        target_db.parent.mkdir(parents=True, exist_ok=True)
        _copy_file(db_file, target_db)
    else:
        _pg_tool("pg_restore", database_url, ["--no-owner", "--exit-on-error", str(db_file)])
    return RestoreResult(manifest=manifest, files=files, seconds=time.monotonic() - started)


def _read_manifest(source: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} holds no {MANIFEST} (not a complete backup)") from None
    except ValueError:
        raise BackupError(f"{source / MANIFEST} is not valid JSON") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')!r}")
    if not manifest.get("complete"):
        raise BackupError("this backup is incomplete (files were missing when it was made)")
    return manifest


def _is_empty(data_dir: Path) -> bool:
    """Nothing in it but empty directories (the layout a first start creates)."""
    if not data_dir.exists():
        return True
    if not data_dir.is_dir():
        return False
    return all(not files for _dir, _subdirs, files in os.walk(data_dir))


def _check_empty_postgres(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
    except Exception as err:
        raise BackupError(f"cannot reach the PostgreSQL database: {type(err).__name__}") from None
    finally:
        engine.dispose()
    if tables:
        raise BackupError("the PostgreSQL database is not empty; restore only into an empty one")


# -- helpers -----------------------------------------------------------------------------


def pg_bin_dir() -> Path | None:
    """Debian's newest ``/usr/lib/postgresql/<version>/bin``, else the tools on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_dump")
    return Path(on_path).parent if on_path else None


def _pg_tool(tool: str, database_url: str, args: list[str]) -> None:
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        raise BackupError(f"{tool} is not installed (Debian package postgresql-client)")
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    conninfo = url.set(drivername="postgresql", password=None).render_as_string()
    target = ["--dbname", conninfo]
    completed = subprocess.run(  # noqa: S603 - fixed tool, arguments as a list
        [str(bin_dir / tool), *target, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        detail = (completed.stderr.strip().splitlines() or ["failed"])[-1]
        raise BackupError(f"{tool} failed: {detail}")


def _copy_file(source: Path, target: Path) -> tuple[int, str]:
    """Copy through a staging name next to the target, fsync, rename; (size, sha256)."""
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                size += len(chunk)
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(partial, target)
    return size, digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _names_digest(names: set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
