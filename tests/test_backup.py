"""teachfile backup / restore: a live backup restores into an empty directory and verifies."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from app import create_app
from app.cli import cli
from app.db import get_db
from app.models import Instance, Institution
from app.services import backup, intake
from tests import dicomfiles, pg


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def restore_target(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """An empty data directory (and an empty PostgreSQL database) in the environment."""
    data_dir = tmp_path / "restored"
    monkeypatch.setenv("TEACHFILE_DATA_DIR", str(data_dir))
    target = {"DATA_DIR": str(data_dir)}
    if backend == "sqlite":
        monkeypatch.delenv("TEACHFILE_DATABASE_URL", raising=False)
        yield target
        return
    server: pg.PostgresServer = request.getfixturevalue("postgres")
    name = f"restore_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    monkeypatch.setenv("TEACHFILE_DATABASE_URL", server.url(name))
    target["DATABASE_URL"] = server.url(name)
    yield target
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def _restored_app(target: dict[str, str]) -> Flask:
    return create_app({"TESTING": True, "LOAD_SAMPLE_CASES": False, **target})


def _instances(app: Flask) -> int:
    with get_db(app).sessionmaker() as session:
        return session.scalar(select(func.count()).select_from(Instance)) or 0


def test_backup_then_restore_passes_verify(
    app: Flask,
    runner: FlaskCliRunner,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    tmp_path: Path,
    restore_target: dict[str, str],
) -> None:
    hospital = create_institution()
    create_study(hospital, slices=4)
    dest = tmp_path / "backup"
    result = runner.invoke(cli, ["backup", str(dest)])
    assert result.exit_code == 0, result.output
    assert "4 images" in result.output
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["counts"]["instances"] == 4
    assert manifest["files"]["objects"]["count"] == 4
    assert manifest["complete"] is True
    assert (dest / "secret_key").stat().st_mode & 0o777 == 0o600

    restored = runner.invoke(cli, ["restore", str(dest)])
    assert restored.exit_code == 0, restored.output
    assert "Restored 4 files" in restored.output
    again = _restored_app(restore_target)
    try:
        assert _instances(again) == 4
        assert again.config["SECRET_KEY"] == app.config["SECRET_KEY"]
        assert again.config["DEID_SECRET"] == app.config["DEID_SECRET"]
        verify = again.test_cli_runner().invoke(cli, ["verify"])
        assert verify.exit_code == 0, verify.output
    finally:
        get_db(again).engine.dispose()


def test_restore_refuses_a_data_directory_that_is_not_empty(
    runner: FlaskCliRunner,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    tmp_path: Path,
    restore_target: dict[str, str],
) -> None:
    create_study(create_institution(), slices=1)
    dest = tmp_path / "backup"
    assert runner.invoke(cli, ["backup", str(dest)]).exit_code == 0
    Path(restore_target["DATA_DIR"]).mkdir()
    (Path(restore_target["DATA_DIR"]) / "secret_key").write_text("someone else's\n")
    result = runner.invoke(cli, ["restore", str(dest)])
    assert result.exit_code == 1
    assert "is not empty; restore only into an empty one" in result.output
    assert (Path(restore_target["DATA_DIR"]) / "secret_key").read_text() == "someone else's\n"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_restore_refuses_an_incomplete_or_damaged_backup(
    runner: FlaskCliRunner,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    tmp_path: Path,
    restore_target: dict[str, str],
) -> None:
    create_study(create_institution(), slices=1)
    dest = tmp_path / "backup"
    assert runner.invoke(cli, ["backup", str(dest)]).exit_code == 0
    with (dest / "teachfile.sqlite3").open("ab") as handle:
        handle.write(b"\0")
    result = runner.invoke(cli, ["restore", str(dest)])
    assert result.exit_code == 1
    assert "does not match the manifest" in result.output
    (dest / "manifest.json").unlink()
    result = runner.invoke(cli, ["restore", str(dest)])
    assert "holds no manifest.json" in result.output
    assert not Path(restore_target["DATA_DIR"]).exists()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_incremental_backup_keeps_files_and_refuses_strangers(
    runner: FlaskCliRunner,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    tmp_path: Path,
) -> None:
    hospital = create_institution()
    create_study(hospital, slices=2)
    dest = tmp_path / "backup"
    assert runner.invoke(cli, ["backup", str(dest)]).exit_code == 0
    create_study(hospital, slices=3)
    result = runner.invoke(cli, ["backup", str(dest)])
    assert result.exit_code == 0, result.output
    assert "3 files copied, 2 already there, 0 removed" in result.output

    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"x")
    result = runner.invoke(cli, ["backup", str(stranger)])
    assert result.exit_code == 1
    assert "is not empty and holds no earlier backup" in result.output


def test_backup_while_ingesting_restores_clean(
    app: Flask,
    session: Session,
    create_institution: Callable[..., Institution],
    intake_config: Any,
    tmp_path: Path,
    restore_target: dict[str, str],
) -> None:
    """Another thread keeps storing images (bounded) while two backups are taken."""
    hospital = create_institution()
    hospital_id = hospital.id
    stop = threading.Event()
    stored: list[int] = []
    errors: list[BaseException] = []

    def ingest() -> None:
        maker = get_db(app).sessionmaker
        datasets = dicomfiles.ct_series(60)
        try:
            for number, ds in enumerate(datasets):
                if stop.is_set():
                    break
                with maker.begin() as writer:
                    intake.ingest(
                        writer,
                        dicomfiles.to_bytes(ds),
                        institution=writer.get_one(Institution, hospital_id),
                        source="test",
                        config=intake_config,
                    )
                stored.append(number)
        except BaseException as err:  # reported by the test below
            errors.append(err)

    worker = threading.Thread(target=ingest)
    worker.start()
    dest = tmp_path / "backup"
    try:
        while not stored:
            worker.join(0.01)
        first = backup.backup(app.config["DATABASE_URL"], app.config["DATA_DIR"], dest)
        second = backup.backup(app.config["DATABASE_URL"], app.config["DATA_DIR"], dest)
    finally:
        stop.set()
        worker.join(60)
    assert not errors
    assert first.ok and second.ok
    backed_up = second.manifest["counts"]["instances"]
    assert 0 < backed_up <= len(stored)
    assert second.manifest["files"]["objects"]["count"] == backed_up

    backup.restore(
        dest,
        restore_target.get("DATABASE_URL", _sqlite_url(restore_target)),
        restore_target["DATA_DIR"],
    )
    again = _restored_app(restore_target)
    try:
        assert _instances(again) == backed_up
        verify = again.test_cli_runner().invoke(cli, ["verify", "--grace", "0"])
        assert verify.exit_code == 0, verify.output
        assert "0 orphan" in verify.output
    finally:
        get_db(again).engine.dispose()


def _sqlite_url(target: dict[str, str]) -> str:
    return f"sqlite:///{Path(target['DATA_DIR']).resolve() / 'teachfile.sqlite3'}"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_restore_command_in_a_fresh_process(
    runner: FlaskCliRunner,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """`teachfile restore` must not create the data directory (and secrets) before it looks."""
    import subprocess
    import sys

    create_study(create_institution(), slices=2)
    dest = tmp_path / "backup"
    assert runner.invoke(cli, ["backup", str(dest)]).exit_code == 0
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TEACHFILE_DATA_DIR": str(tmp_path / "fresh"),
    }
    root = Path(__file__).resolve().parent.parent
    for command in (["restore", str(dest)], ["verify"]):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", *command],
            env=env,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
