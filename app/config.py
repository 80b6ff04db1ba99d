"""Configuration: defaults in git, then ``TEACHFILE_*`` environment, then the test mapping.

Secrets are never in git: ``SECRET_KEY`` (sessions, CSRF) and ``DEID_SECRET``
(keys the de-identifier's UID hashes and pseudonyms) are generated on first use
and kept in the data directory with mode 0600.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "DATA_DIR": "instance",
    "DATABASE_URL": None,  # None -> SQLite in the data directory
    # 64 MiB per request covers a zip of a modest CT series; bigger studies arrive
    # over DICOM or in several uploads.
    "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "teachfile_session",
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
    "WTF_CSRF_HEADERS": ["X-CSRFToken"],
    # Log-in throttling (stored in the database, so it holds across processes).
    "LOGIN_WINDOW_SECONDS": 15 * 60,
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 30,
    "ALLOW_REGISTRATION": True,
    "LOAD_SAMPLE_CASES": True,
    # Rendered frames and thumbnails under renders/ (rebuildable), evicted LRU past this.
    "RENDER_CACHE_BYTES": 2 * 1024**3,
}

_SECRET_FILES = {"SECRET_KEY": "secret_key", "DEID_SECRET": "deid_secret"}


def load(test_config: dict[str, Any] | None) -> dict[str, Any]:
    """Merge defaults, ``TEACHFILE_*`` environment and ``test_config`` (last wins)."""
    config = dict(DEFAULTS)
    for key, value in os.environ.items():
        if key.startswith("TEACHFILE_"):
            config[key.removeprefix("TEACHFILE_")] = _parse_env(value)
    if test_config:
        config.update(test_config)
    data_dir = Path(config["DATA_DIR"]).expanduser().resolve()
    config["DATA_DIR"] = str(data_dir)
    if not config.get("DATABASE_URL"):
        config["DATABASE_URL"] = f"sqlite:///{data_dir / 'teachfile.sqlite3'}"
    return config


def _parse_env(value: str) -> Any:
    """Integers and booleans from the environment become Python values."""
    lowered = value.strip().lower()
    if lowered in {"true", "yes", "on"}:
        return True
    if lowered in {"false", "no", "off"}:
        return False
    if lowered.isdigit():
        return int(lowered)
    return value


def prepare_data_dir(config: dict[str, Any]) -> None:
    """Create the data directory layout and any missing secret (mode 0600).

    First run must just work, so this is the one side effect of ``create_app``:
    it is idempotent and never overwrites an existing secret.
    """
    data_dir = Path(config["DATA_DIR"])
    for sub in ("", "objects", "renders", "index", "tmp", "quarantine"):
        (data_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    for key, filename in _SECRET_FILES.items():
        if config.get(key):
            continue
        config[key] = _read_or_create_secret(data_dir / filename)
    if isinstance(config["DEID_SECRET"], str):
        config["DEID_SECRET"] = config["DEID_SECRET"].encode()


def _read_or_create_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_hex(32)
    # O_EXCL: two processes starting at once agree on the first one's secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value
