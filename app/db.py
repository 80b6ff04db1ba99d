"""The SQLAlchemy base, engine and per-request session."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

_log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


@dataclass
class Database:
    engine: Engine
    sessionmaker: sessionmaker[Session]


def make_engine(url: str) -> Engine:
    """An engine with the SQLite settings the embedded default needs.

    WAL lets the web server read while the receiver writes. ``synchronous=FULL``
    because an acknowledged C-STORE or quiz answer must survive a power cut,
    not only a process crash (NORMAL may lose the last commits on power loss).
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    maker = sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name == "sqlite":
        WriteGate(Path(app.config["DATA_DIR"]) / "sqlite-writer.lock").install(maker)
    app.extensions["teachfile.db"] = Database(engine, maker)
    app.teardown_appcontext(_close_session)


class WriteGate:
    """One SQLite writer at a time across threads and processes, waiting in a queue.

    SQLite's own busy handler backs off in steps of up to 100 ms, so writers that
    collide (the web server, several receiver processes) lose most of their time
    asleep: 4 associations into 2 receiver processes stored fewer images per second
    than 1 (scripts/bench/ingest.py). A session takes this file lock at its first
    flush and gives it back when its transaction ends; waiting polls every 0.5 ms.
    """

    timeout = 30.0

    def __init__(self, path: Path) -> None:
        self.path = path

    def install(self, maker: sessionmaker[Session]) -> None:
        event.listen(maker, "before_flush", self._acquire)
        event.listen(maker, "after_transaction_end", self._release)

    def _acquire(self, session: Session, *_args: Any) -> None:
        if "teachfile.write_gate" in session.info:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TimeoutError("the database stayed busy for 30 s") from None
                time.sleep(0.0005)
        session.info["teachfile.write_gate"] = fd

    @staticmethod
    def _release(session: Session, transaction: Any) -> None:
        if transaction.parent is None:
            fd = session.info.pop("teachfile.write_gate", None)
            if fd is not None:
                os.close(fd)  # closing the descriptor drops the flock


def get_db(app: Flask | None = None) -> Database:
    database: Database = (app or current_app).extensions["teachfile.db"]
    return database


def get_session() -> Session:
    """The session of this request; closed at teardown, uncommitted work rolled back."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(engine: Engine) -> Any:
    """Alembic configured in code, so no ini file is needed at run time."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return cfg


def upgrade_database(engine: Engine) -> None:
    """Bring the schema to the migration head (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


_AFTER_COMMIT = "teachfile.after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction commits; drop it on rollback.

    For work that must follow the commit, never precede it: deleting a file whose
    row is gone, updating the search index (DESIGN.md, "Data that lives on disk").
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception as err:
            # The commit stands; the derived work is redone by reconcile/verify.
            _log.error("after-commit work failed: %s", type(err).__name__)


@event.listens_for(Session, "after_rollback")
def _drop_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)
