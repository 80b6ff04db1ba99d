"""Configuration order and the secrets kept in the data directory."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from app import create_app


def test_secret_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = create_app({"DATA_DIR": str(tmp_path)})
    second = create_app({"DATA_DIR": str(tmp_path)})
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 64
    assert first.config["DEID_SECRET"] != first.config["SECRET_KEY"].encode()
    assert (tmp_path / "objects").is_dir() and (tmp_path / "tmp").is_dir()


def test_environment_then_test_mapping(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEACHFILE_DATA_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("TEACHFILE_LOGIN_MAX_FAILURES_PER_ACCOUNT", "7")
    monkeypatch.setenv("TEACHFILE_ALLOW_REGISTRATION", "false")
    app = create_app()
    assert app.config["DATA_DIR"] == str(tmp_path / "from-env")
    assert app.config["DATABASE_URL"].endswith("from-env/teachfile.sqlite3")
    assert app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] == 7
    assert app.config["ALLOW_REGISTRATION"] is False
    overridden = create_app({"DATA_DIR": str(tmp_path / "mapping")})
    assert overridden.config["DATA_DIR"] == str(tmp_path / "mapping")
