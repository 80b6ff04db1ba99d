"""Configuration: defaults in git, then ``TEACHFILE_*`` environment, then the test mapping.

Secrets are never in git: ``SECRET_KEY`` (sessions, CSRF) and ``DEID_SECRET``
(keys the de-identifier's UID hashes and pseudonyms) are generated on first use
and kept in the data directory with mode 0600.

Start-up checks (:func:`validate`, :func:`check_database`): a bad database URL, an
unreachable database, or a data directory that cannot be created or written stops
the process with one line (:class:`ConfigError`). With ``TEACHFILE_ENV=production``
nothing is created silently: the data directory must exist and both secrets must
come from the environment (``TEACHFILE_SECRET_KEY``, ``TEACHFILE_DEID_SECRET``) or
from the files ``teachfile init`` wrote. A missing mount must not become an empty
library with new keys (new sessions keys log everyone out; a new de-identification
key files the next send of a known patient as someone new).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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
    # What a certificate names when its set does not say (issue 15): who issues the
    # credit, the accreditation statement, and the kind of credit.
    "CREDIT_PROVIDER": "Teachfile sample library",
    "ACCREDITATION_STATEMENT": (
        "This activity is not accredited: set TEACHFILE_ACCREDITATION_STATEMENT to the "
        "statement your accrediting body requires."
    ),
    "CREDIT_TYPE": "Continuing-education hours",
}

_SECRET_FILES = {"SECRET_KEY": "secret_key", "DEID_SECRET": "deid_secret"}
_LAYOUT = ("", "objects", "renders", "index", "tmp", "quarantine")


class ConfigError(Exception):
    """The configuration cannot work; ``str()`` is one line for stderr."""


def is_production(config: dict[str, Any]) -> bool:
    return str(config.get("ENV") or "").strip().lower() == "production"


def validate(config: dict[str, Any], *, creating: bool = False) -> None:
    """Refuse a configuration that cannot work, before anything is created.

    ``creating`` is ``teachfile init``: in production it may create the data directory
    and the secrets; nothing else may.
    """
    try:
        url = make_url(str(config["DATABASE_URL"]))
    except ArgumentError:
        raise ConfigError("TEACHFILE_DATABASE_URL is not a database URL") from None
    if url.get_backend_name() not in {"sqlite", "postgresql"}:
        raise ConfigError(
            f"TEACHFILE_DATABASE_URL: unsupported database {url.get_backend_name()!r} "
            "(use sqlite or postgresql+psycopg)"
        )
    if not is_production(config) or creating:
        return
    data_dir = Path(config["DATA_DIR"])
    if not data_dir.is_dir():
        raise ConfigError(
            f"the data directory {data_dir} does not exist (TEACHFILE_DATA_DIR; "
            "in production it is created only by teachfile init)"
        )
    for key, filename in _SECRET_FILES.items():
        if not config.get(key) and not (data_dir / filename).is_file():
            raise ConfigError(
                f"{key} is not set: in production set TEACHFILE_{key} or run "
                f"teachfile init to create {data_dir / filename}"
            )


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
    try:
        for sub in _LAYOUT:
            (data_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        _probe_writable(data_dir / "tmp")
        for key, filename in _SECRET_FILES.items():
            if config.get(key):
                continue
            config[key] = _read_or_create_secret(data_dir / filename)
    except OSError as err:
        where = err.filename or data_dir
        raise ConfigError(
            f"cannot prepare the data directory: {err.strerror or err}: {where}"
        ) from None
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


def _probe_writable(directory: Path) -> None:
    """Write and remove a small file: a read-only mount fails here, not at the first upload."""
    probe = directory / f"start.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def check_database(config: dict[str, Any]) -> None:
    """Connect once; an unreachable database is one line, not a traceback at first request."""
    url = make_url(str(config["DATABASE_URL"]))
    engine = create_engine(
        url,
        connect_args={"timeout": 10}
        if url.get_backend_name() == "sqlite"
        else {"connect_timeout": 10},
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as err:  # every driver's error type
        cause = getattr(err, "orig", None) or err
        detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        if url.password:
            detail = detail.replace(str(url.password), "***")
        raise ConfigError(
            f"cannot reach the database {url.render_as_string(hide_password=True)}: {detail}"
        ) from None
    finally:
        engine.dispose()
