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
