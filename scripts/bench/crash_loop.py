"""Crash loop: ingest and edit under load, SIGKILL everything at a random moment, repeat.

Each cycle starts the web server (gunicorn if installed, else ``teachfile run``) and the
DICOM receiver on one temporary data directory (SQLite, loopback only), drives load —
C-STORE sends from pynetdicom (the success statuses it sees are what was acknowledged)
and case saves through the JSON API with a logged-in session (the 200s are what was
acknowledged) — and kills both process groups with SIGKILL after a random delay. After
every cycle the database is opened directly: every acknowledged image must be there
(found by its de-identified SOP Instance UID) and every acknowledged save must be a
revision with its text. At the end ``teachfile verify --repair --grace 0`` sweeps the
orphans the crashes left and ``verify`` must pass (no row without its file: dangling).

    .venv/bin/python scripts/bench/crash_loop.py --cycles 50 --max-seconds 600

Prints ``N acknowledged, L lost, D dangling``; exits 1 unless L and D are 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pynetdicom import AE, StoragePresentationContexts  # noqa: E402
from sqlalchemy import select  # noqa: E402

from app import create_app  # noqa: E402
from app.db import get_db  # noqa: E402
from app.dicom.deidentify import replace_uid  # noqa: E402
from app.models import Case, CaseRevision, Instance, Role, Study  # noqa: E402
from app.services import accounts, sources  # noqa: E402
from tests import dicomfiles  # noqa: E402
from tests.httpsession import HttpSession  # noqa: E402

PASSWORD = "correct horse battery"
EMAIL = "editor@crash.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.3).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_healthy(base: str, deadline: float) -> bool:
    """The port opens before gunicorn's workers have loaded the app: wait for /healthz."""
    while time.monotonic() < deadline:
        try:
            if HttpSession(base, timeout=2).request("GET", "/healthz")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


class Ledger:
    """What the sender and the editor were told succeeded."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.images: set[str] = set()  # original SOP Instance UIDs acknowledged
        self.saves: list[tuple[str, str]] = []  # (slug, discussion text) answered 200
        self.notes: list[str] = []  # why an editor stopped (expected: the kill)


def send_loop(port: int, ledger: Ledger, stop: threading.Event) -> None:
    ae = AE(ae_title="SENDER")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 5
    for context in StoragePresentationContexts[:100]:
        ae.add_requested_context(context.abstract_syntax)
    while not stop.is_set():
        try:
            assoc = ae.associate("127.0.0.1", port, ae_title="TEACHFILE")
        except Exception:
            return
        if not assoc.is_established:
            return
        try:
            for ds in dicomfiles.ct_series(4):
                if stop.is_set():
                    break
                status = assoc.send_c_store(ds)
                if status and status.Status == 0x0000:
                    with ledger.lock:
                        ledger.images.add(str(ds.SOPInstanceUID))
            assoc.release()
        except Exception:
            return


class Editor:
    """One logged-in editor for the whole run: the session cookie outlives the restarts
    (the secret key is in the data directory), so each cycle goes straight to saving."""

    def __init__(self) -> None:
        self.http: HttpSession | None = None
        self.slug = ""

    def loop(self, base: str, ledger: Ledger, stop: threading.Event, study_id: int) -> None:
        try:
            if self.http is None:
                http = HttpSession(base, timeout=5)
                http.login(EMAIL, PASSWORD)
                self.http = http
            self.http.base = base
            if not self.slug:
                status, body = self.http.request(
                    "POST", "/api/cases", {"study_ids": [study_id], "title": "Crash case"}
                )
                if status != 201:
                    ledger.notes.append(f"create case: {status}")
                    return
                self.slug = body["slug"]
            status, body = self.http.request("GET", f"/api/cases/{self.slug}")
            revision = body["revision"]
            while not stop.is_set():
                text = f"save {time.monotonic_ns()}"
                status, body = self.http.request(
                    "PUT",
                    f"/api/cases/{self.slug}/draft",
                    {
                        "base_revision": revision,
                        "content": {"title": "Crash case", "sections": {"discussion": text}},
                    },
                )
                if status != 200:
                    ledger.notes.append(f"save: {status}")
                    return
                revision = body["revision"]
                with ledger.lock:
                    ledger.saves.append((self.slug, text))
        except Exception as err:  # killed mid-request: unacknowledged, nothing to check
            ledger.notes.append(type(err).__name__)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def check(app: Any, ledger: Ledger, secret: bytes) -> tuple[int, list[str]]:
    """(acknowledged, what is missing)."""
    with get_db(app).sessionmaker() as session:
        stored = set(session.scalars(select(Instance.sop_instance_uid)))
        missing = [u for u in ledger.images if replace_uid(secret, u) not in stored]
        texts = {
            (slug, rev.content.get("sections", {}).get("discussion"))
            for slug, rev in session.execute(
                select(Case.slug, CaseRevision).join(CaseRevision, CaseRevision.case_id == Case.id)
            )
            if not rev.conflicted
        }
        missing += [f"save {s}" for s in ledger.saves if s not in texts]
    return len(ledger.images) + len(ledger.saves), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="teachfile-crash-"))
    data = work / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEACHFILE_")},
        "TEACHFILE_DATA_DIR": str(data),
        "TEACHFILE_LOAD_SAMPLE_CASES": "false",
    }
    app = create_app({"DATA_DIR": str(data), "LOAD_SAMPLE_CASES": False})
    from app.cli import prepare

    with app.app_context():
        prepare(app)
    with get_db(app).sessionmaker.begin() as session:
        accounts.create_institution(session, "Crash Hospital", actor=None)
        accounts.create_user(
            session,
            email=EMAIL,
            display_name="Editor",
            password=PASSWORD,
            role=Role.EDUCATOR,
            institution_name="Crash Hospital",
        )
        sources.add_source(session, "SENDER", institution_name="Crash Hospital", actor=None)
    secret: bytes = app.config["DEID_SECRET"]
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = "gunicorn" if gunicorn.exists() else "teachfile run"
    ledger = Ledger()
    editor = Editor()
    started = time.monotonic()
    cycles = 0
    lost: list[str] = []
    print(f"data directory {data}; web server: {server}", flush=True)
    while cycles < args.cycles and time.monotonic() - started < args.max_seconds:
        web_port, dicom_port = free_port(), free_port()
        if gunicorn.exists():
            web_cmd = [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{web_port}", "app.wsgi:app"]
        else:
            web_cmd = [sys.executable, "-m", "app.cli", "run", "--port", str(web_port)]
        rx_cmd = [sys.executable, "-m", "app.cli", "receive", "--port", str(dicom_port)]
        rx_cmd += ["--workers", "1"]
        web = start(web_cmd, env, work / "web.log")
        rx = start(rx_cmd, env, work / "receiver.log")
        deadline = time.monotonic() + 60
        base = f"http://127.0.0.1:{web_port}"
        if not (wait_healthy(base, deadline) and wait_port(dicom_port, deadline)):
            kill(web)
            kill(rx)
            print(f"cycle {cycles}: servers did not start (see {work})", flush=True)
            return 1
        with get_db(app).sessionmaker() as session:
            study_ids = list(session.scalars(select(Study.id).limit(1)))
        stop = threading.Event()
        threads = [threading.Thread(target=send_loop, args=(dicom_port, ledger, stop))]
        if study_ids:
            threads.append(
                threading.Thread(target=editor.loop, args=(base, ledger, stop, study_ids[0]))
            )
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 3.0))
        kill(web)  # SIGKILL at a random moment, mid-request most of the time
        kill(rx)
        stop.set()
        for thread in threads:
            thread.join(10)
        cycles += 1
        acknowledged, missing = check(app, ledger, secret)
        lost = missing
        print(
            f"cycle {cycles}: {acknowledged} acknowledged so far, {len(missing)} lost", flush=True
        )
        if missing:
            break
    acknowledged, lost = check(app, ledger, secret)
    verify = [sys.executable, "-m", "app.cli", "verify"]
    repaired = subprocess.run(
        [*verify, "--repair", "--grace", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    final = subprocess.run(verify, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    dangling = sum(
        1 for line in final.stdout.splitlines() if line.startswith(("MISSING", "CORRUPT"))
    )
    print(repaired.stdout.strip().splitlines()[-1] if repaired.stdout else repaired.stderr)
    print(final.stdout.strip().splitlines()[-1] if final.stdout else final.stderr)
    print(
        f"{cycles} cycles in {time.monotonic() - started:.0f} s ({server}); "
        f"{len(ledger.images)} images and {len(ledger.saves)} saves acknowledged"
    )
    print("editor stopped by: " + ", ".join(sorted(set(ledger.notes))))
    print(f"{acknowledged} acknowledged, {len(lost)} lost, {dangling} dangling")
    get_db(app).engine.dispose()
    ok = not lost and dangling == 0 and final.returncode == 0
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work} for inspection; lost: {lost[:5]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
