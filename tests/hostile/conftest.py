"""A real Teachfile web server and DICOM receiver, each in its own process under an
address-space cap, for the hostile-input suite.

Both processes are started once per session on free loopback ports with a fresh data
directory. Tests drive them over HTTP and DICOM; after every hostile request the web
server must still answer ``/healthz`` and a normal page, and the receiver a C-ECHO.
At the end of the session the resident set size of each process must not have grown
past a generous bound.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from app import create_app
from app.db import get_db, upgrade_database
from app.models import Role
from app.services import accounts, sources
from tests.httpsession import HttpSession

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct horse battery"
EDUCATOR = "educator@hostile.example"
SENDER = "HOSTILESCU"
# Address space each process may map. The web server idles at ~0.3 GiB of address space
# (VmSize; most of it shared libraries and thread stacks), the receiver likewise; a
# hostile request that tried to materialise a 4 GiB length or a 1 GiB inflated
# dataset would hit the cap and fail (MemoryError) rather than take the machine down.
ADDRESS_SPACE_CAP = 1536 * 1024 * 1024
# Resident growth allowed over the whole suite (caches, the SQLite page cache): issue 17
# asks for idle within 50 MB of the start; the allocator gives freed heap back after a
# refusal (malloc_trim in app/dicom/safe_read.py).
RSS_GROWTH_BOUND = 50 * 1024 * 1024
# Peak resident set (VmHWM) over the suite, absolute: issue 17's 300 MB for the web server
# and a receiver worker (measured before: 500 MB and 465 MB refusing a deflate bomb).
PEAK_BOUND = 300 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cap_address_space() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP))


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, VmSize, VmPeak of ``pid`` in bytes."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM", "VmSize", "VmPeak"}:
            values[key] = int(rest.split()[0]) * 1024
    return values


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}: {log.read_text()[-2000:]}")


@dataclass
class Site:
    data_dir: Path
    env: dict[str, str]
    web_port: int
    dicom_port: int
    web: subprocess.Popen[bytes]
    receiver: subprocess.Popen[bytes]
    logs: Path
    start_memory: dict[str, dict[str, int]] = field(default_factory=dict)
    # The highest VmHWM seen before a test reset it (tests/hostile/test_refusals.py
    # measures each refusal on its own through /proc/PID/clear_refs).
    peaks: dict[str, int] = field(default_factory=dict)

    def reset_peak(self, which: str) -> None:
        """Note the peak so far, then set VmHWM back to the current resident set."""
        pid = (self.web if which == "web" else self.receiver).pid
        self.peaks[which] = max(self.peaks.get(which, 0), vm_status(pid)["VmHWM"])
        Path(f"/proc/{pid}/clear_refs").write_text("5")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def session(self) -> HttpSession:
        http = HttpSession(self.base, timeout=60)
        http.login(EDUCATOR, PASSWORD)
        return http

    def objects(self) -> set[str]:
        """Every file in the object store."""
        root = self.data_dir / "objects"
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def assert_web_alive(self) -> None:
        """The server answers ``/healthz`` and a normal page."""
        assert self.web.poll() is None, f"the web server died: {self.web.returncode}"
        with urllib.request.urlopen(self.base + "/healthz", timeout=20) as response:
            assert response.status == 200
        with urllib.request.urlopen(self.base + "/auth/login", timeout=20) as response:
            assert response.status == 200
            assert b"csrf-token" in response.read()

    def echo(self) -> int:
        """Status of a C-ECHO from the allowed sender (0 = success)."""
        ae = AE(ae_title=SENDER)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", self.dicom_port, ae_title="TEACHFILE")
        assert assoc.is_established, "the receiver refused an allowed sender"
        try:
            status = assoc.send_c_echo()
            return int(status.Status) if status else -1
        finally:
            assoc.release()

    def vm(self, which: str) -> dict[str, int]:
        return vm_status((self.web if which == "web" else self.receiver).pid)

    def assert_receiver_alive(self) -> None:
        assert self.receiver.poll() is None, f"the receiver died: {self.receiver.returncode}"
        assert self.echo() == 0x0000


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("hostile")
    data_dir = root / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEACHFILE_")},
        "TEACHFILE_DATA_DIR": str(data_dir),
        "TEACHFILE_LOAD_SAMPLE_CASES": "false",
        "PYTHONDONTWRITEBYTECODE": "1",
        # glibc reserves 64 MiB of address space per thread arena (up to 8 per core):
        # under an address-space cap that reservation, not real use, would stop new
        # threads. Two arenas keep the cap about memory actually used.
        "MALLOC_ARENA_MAX": "2",
    }
    app = create_app({"DATA_DIR": str(data_dir), "LOAD_SAMPLE_CASES": False})
    upgrade_database(get_db(app).engine)
    with get_db(app).sessionmaker.begin() as session:
        hospital = accounts.create_institution(session, "Hostile General", actor=None)
        accounts.create_user(
            session,
            email=EDUCATOR,
            display_name="Hostile Educator",
            password=PASSWORD,
            role=Role.EDUCATOR,
            institution_name=hospital.name,
        )
        sources.add_source(session, SENDER, institution_name=hospital.name, actor=None)
    get_db(app).engine.dispose()
    web_port, dicom_port = _free_port(), _free_port()
    logs = root / "logs"
    logs.mkdir()
    commands = {
        "web": ["run", "--port", str(web_port)],
        "receiver": ["receive", "--port", str(dicom_port), "--workers", "1"],
    }
    handles = {key: (logs / f"{key}.log").open("wb") for key in commands}
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=handles[key],
            stderr=subprocess.STDOUT,
            preexec_fn=_cap_address_space,
        )
        for key, args in commands.items()
    }
    try:
        deadline = time.monotonic() + 90
        _wait_for_port(web_port, procs["web"], logs / "web.log", deadline)
        _wait_for_port(dicom_port, procs["receiver"], logs / "receiver.log", deadline)
        site = Site(data_dir, env, web_port, dicom_port, procs["web"], procs["receiver"], logs)
        # Warm both processes (imports done lazily on first use) before the baseline.
        site.assert_web_alive()
        site.session()
        site.assert_receiver_alive()
        site.start_memory = {key: vm_status(proc.pid) for key, proc in procs.items()}
        yield site
        end_memory = {key: vm_status(proc.pid) for key, proc in procs.items()}
        report = root / "memory.txt"
        report.write_text(f"start {site.start_memory}\nend {end_memory}\n")
        sys.stderr.write(
            f"\nhostile suite memory: start {site.start_memory} end {end_memory}"
            f" peaks before resets {site.peaks}\n"
        )
        for key in procs:
            assert procs[key].poll() is None, f"{key} died: {(logs / f'{key}.log').read_text()}"
            growth = end_memory[key]["VmRSS"] - site.start_memory[key]["VmRSS"]
            assert growth < RSS_GROWTH_BOUND, f"{key} RSS grew by {growth} bytes"
            peak = max(end_memory[key]["VmHWM"], site.peaks.get(key, 0))
            assert peak <= PEAK_BOUND, f"{key} peaked at {peak} bytes"
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in handles.values():
            handle.close()


@pytest.fixture
def http(site: Site) -> HttpSession:
    return site.session()


def fetch(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """Status and body of one raw request (no cookies)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
