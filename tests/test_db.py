"""The embedded SQLite default is configured for a web server and a receiver writing at once."""

from __future__ import annotations

from flask import Flask

from app.db import get_db


def test_sqlite_pragmas(app: Flask) -> None:
    with get_db(app).engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        }
    assert pragma["journal_mode"] == "wal"
    assert pragma["synchronous"] == 2  # FULL: see app/db.py for why
    assert pragma["foreign_keys"] == 1
    assert pragma["busy_timeout"] >= 5000


def test_write_gate_is_held_from_first_flush_to_transaction_end(app: Flask) -> None:
    import fcntl
    import os
    from pathlib import Path

    from app.services import accounts

    lock = Path(app.config["DATA_DIR"]) / "sqlite-writer.lock"

    def gate_is_free() -> bool:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with get_db(app).sessionmaker() as session:
        accounts.create_institution(session, "Gate Hospital", actor=None)  # flushes
        assert not gate_is_free()
        session.commit()
        assert gate_is_free()
        accounts.create_institution(session, "Other Hospital", actor=None)
        assert not gate_is_free()
        session.rollback()
        assert gate_is_free()


def test_concurrent_writers_all_succeed(app: Flask) -> None:
    import threading

    from app.services import accounts

    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(10):
                with get_db(app).sessionmaker.begin() as session:
                    accounts.create_institution(session, f"H{n}-{i}", actor=None)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with get_db(app).sessionmaker() as session:
        assert len(accounts.list_institutions(session)) == 40
