"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work).

No log-in, no session, no secrets: a reverse proxy or a monitor polls them. Both
answer JSON and are never cached.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app.db import get_db
from app.services import health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up; touches nothing else."""
    response = jsonify(status="ok")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """200 when the database, the data directory and the search index all work, else 503."""
    checks = health.readiness(get_db().engine, current_app.config["DATA_DIR"])
    ready = all(checks.values())
    response = jsonify(status="ok" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response
