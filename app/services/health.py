"""Liveness and readiness for the proxy and monitors (``/healthz``, ``/readyz``).

Readiness answers whether this process can do its work: the database answers a
``SELECT 1``, the data directory takes a small file (written to ``tmp/`` and removed)
and the search index opens. Each check reports only ``true``/``false``: no paths,
URLs or error texts, which could tell a stranger about the deployment.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.services import search

log = logging.getLogger(__name__)


def readiness(engine: Engine, data_dir: str | Path) -> dict[str, bool]:
    """name -> whether that dependency works now."""
    return {
        "database": _database(engine),
        "data_dir": _data_dir(Path(data_dir)),
        "index": _index(engine, Path(data_dir)),
    }


def _database(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception as err:  # any driver error means "not ready"
        log.warning("readiness: database unreachable: %s", type(err).__name__)
        return False


def _data_dir(data_dir: Path) -> bool:
    probe = data_dir / "tmp" / f"ready.{os.getpid()}.{uuid.uuid4().hex}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
        probe.unlink()
        return (data_dir / "objects").is_dir()
    except OSError as err:
        log.warning("readiness: data directory not writable: %s", err.strerror)
        return False


def _index(engine: Engine, data_dir: Path) -> bool:
    try:
        holder = search.attach(engine, data_dir)
        holder.get()  # opened once per process, then cached
        return any(holder.path.iterdir())
    except Exception as err:  # a locked, missing or corrupt index
        log.warning("readiness: search index unavailable: %s", type(err).__name__)
        return False
