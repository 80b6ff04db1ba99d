"""A configuration that cannot work stops `teachfile run/init/receive` and the WSGI entry
point with one line on stderr and a non-zero exit, before anything is served."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import pg

ROOT = Path(__file__).resolve().parent.parent


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "TEACHFILE_LOAD_SAMPLE_CASES": "false"}
    return subprocess.run(
        [sys.executable, *args],
        env={**base, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line(result: subprocess.CompletedProcess[str], starts: str) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(starts), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


CLI = ["-m", "app.cli"]
WSGI = ["-c", "import app.wsgi"]


@pytest.mark.parametrize("command", [[*CLI, "run"], [*CLI, "init"], [*CLI, "receive"], WSGI])
def test_unparseable_database_url(tmp_path: Path, command: list[str]) -> None:
    result = _run(
        command,
        {"TEACHFILE_DATA_DIR": str(tmp_path / "d"), "TEACHFILE_DATABASE_URL": "not a url"},
        ROOT,
    )
    _one_line(result, "Error: TEACHFILE_DATABASE_URL is not a database URL")


@pytest.mark.parametrize("command", [[*CLI, "run"], [*CLI, "receive"], WSGI])
def test_unreachable_database_hides_the_password(tmp_path: Path, command: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    url = f"postgresql+psycopg://teachfile:hunter2secret@127.0.0.1:{port}/teachfile"
    result = _run(
        command, {"TEACHFILE_DATA_DIR": str(tmp_path / "d"), "TEACHFILE_DATABASE_URL": url}, ROOT
    )
    line = _one_line(result, "Error: cannot reach the database postgresql+psycopg://teachfile:***@")
    assert "hunter2secret" not in result.stderr + result.stdout
    assert "refused" in line.lower()


def test_unsupported_database(tmp_path: Path) -> None:
    result = _run(
        [*CLI, "run"],
        {"TEACHFILE_DATA_DIR": str(tmp_path / "d"), "TEACHFILE_DATABASE_URL": "mysql://x@h/db"},
        ROOT,
    )
    _one_line(result, "Error: TEACHFILE_DATABASE_URL: unsupported database 'mysql'")


@pytest.mark.parametrize("command", [[*CLI, "run"], [*CLI, "init"], [*CLI, "receive"], WSGI])
def test_data_directory_that_cannot_be_created(tmp_path: Path, command: list[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = _run(command, {"TEACHFILE_DATA_DIR": str(blocker / "data")}, ROOT)
    _one_line(result, "Error: cannot prepare the data directory")


def test_read_only_data_directory(tmp_path: Path) -> None:
    """The start-up probe writes a file: tmp/ replaced by a file stands for a read-only mount
    (tests run as root, which ignores permission bits)."""
    data = tmp_path / "d"
    assert _run([*CLI, "init"], {"TEACHFILE_DATA_DIR": str(data)}, ROOT).returncode == 0
    (data / "tmp").rmdir()
    (data / "tmp").write_text("")
    result = _run([*CLI, "run"], {"TEACHFILE_DATA_DIR": str(data)}, ROOT)
    _one_line(result, "Error: cannot prepare the data directory")


@pytest.mark.parametrize("command", [[*CLI, "run"], [*CLI, "receive"], WSGI])
def test_production_needs_an_existing_data_directory(tmp_path: Path, command: list[str]) -> None:
    env = {"TEACHFILE_DATA_DIR": str(tmp_path / "missing"), "TEACHFILE_ENV": "production"}
    _one_line(_run(command, env, ROOT), "Error: the data directory")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", [[*CLI, "run"], [*CLI, "receive"], WSGI])
def test_production_needs_its_secrets(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "d"
    data.mkdir()
    env = {"TEACHFILE_DATA_DIR": str(data), "TEACHFILE_ENV": "production"}
    line = _one_line(_run(command, env, ROOT), "Error: SECRET_KEY is not set")
    assert "TEACHFILE_SECRET_KEY" in line
    assert not (data / "secret_key").exists()
    env["TEACHFILE_SECRET_KEY"] = "k" * 64
    _one_line(_run(command, env, ROOT), "Error: DEID_SECRET is not set")


def test_production_init_creates_then_the_wsgi_app_starts(tmp_path: Path) -> None:
    data = tmp_path / "d"
    env = {"TEACHFILE_DATA_DIR": str(data), "TEACHFILE_ENV": "production"}
    init = _run([*CLI, "init"], env, ROOT)
    assert init.returncode == 0, init.stderr
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600
    started = _run(["-c", "from app.wsgi import app; print(app.name)"], env, ROOT)
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "app"


@pytest.mark.postgres
def test_postgres_url_that_works(tmp_path: Path, postgres: pg.PostgresServer) -> None:
    env = {
        "TEACHFILE_DATA_DIR": str(tmp_path / "d"),
        "TEACHFILE_DATABASE_URL": postgres.url("teachfile_template"),
    }
    started = _run(["-c", "from app.wsgi import app; print('ok')"], env, ROOT)
    assert started.returncode == 0, started.stderr


def test_gunicorn_stops_instead_of_respawning(tmp_path: Path) -> None:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed (pip install '.[deploy]')")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEACHFILE_")},
        "TEACHFILE_DATA_DIR": str(tmp_path / "missing"),
        "TEACHFILE_ENV": "production",
    }
    result = subprocess.run(
        [str(gunicorn), "--preload", "-w", "2", "-b", "127.0.0.1:0", "app.wsgi:app"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Error: the data directory" in result.stderr


def test_wsgi_trusts_one_proxy_only_when_told(tmp_path: Path) -> None:
    code = (
        "from app.wsgi import app\n"
        "from flask import request\n"
        "app.add_url_rule('/ip', 'ip', lambda: request.remote_addr + ' ' + request.scheme)\n"
        "print(app.test_client().get('/ip', headers={'X-Forwarded-For': '203.0.113.7',"
        " 'X-Forwarded-Proto': 'https'}).get_data(as_text=True))\n"
    )
    env = {"TEACHFILE_DATA_DIR": str(tmp_path / "d")}
    assert _run(["-c", code], env, ROOT).stdout.strip() == "127.0.0.1 http"
    env["TEACHFILE_TRUSTED_PROXIES"] = "1"
    assert _run(["-c", code], env, ROOT).stdout.strip() == "203.0.113.7 https"
