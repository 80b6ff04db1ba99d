"""/healthz and /readyz: JSON, no log-in, no secrets, 503 when a dependency fails."""

from __future__ import annotations

import shutil
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient


def test_healthz_answers_without_login_or_cookie(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_readyz_reports_each_dependency(client: FlaskClient, app: Flask) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body == {"status": "ok", "checks": {"database": True, "data_dir": True, "index": True}}
    text = response.get_data(as_text=True)
    assert app.config["DATA_DIR"] not in text
    assert app.config["SECRET_KEY"] not in text
    assert "sqlite" not in text


def test_readyz_is_503_when_the_data_directory_cannot_be_written(
    client: FlaskClient, app: Flask
) -> None:
    tmp = Path(app.config["DATA_DIR"]) / "tmp"
    shutil.rmtree(tmp)
    tmp.write_text("a file where the staging directory should be")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": True, "data_dir": False, "index": True}
    assert str(tmp) not in response.get_data(as_text=True)


def test_readyz_is_503_when_the_database_is_gone(client: FlaskClient, app: Flask) -> None:
    from app.db import get_db

    database = get_db(app)
    database.engine.dispose()
    Path(database.engine.url.database or "").unlink()
    # A database file that cannot be opened: a directory in its place.
    Path(database.engine.url.database or "").mkdir()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] is False
