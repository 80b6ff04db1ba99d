"""Two web processes and one receiver on one PostgreSQL and one data directory.

The receiver stores studies sent over DICOM while two editors, each on their own web
process, turn them into cases, save drafts and publish; both also save one shared case
at once (a stale save is refused, never lost). Then: every acknowledged image is in the
database with its file (``verify``), every accepted save is a revision, and both
processes' ``/api/search`` find every published case.

The two web processes share ``<data dir>/index`` (one data directory): whoosh's lock
serialises their writers. On real separate hosts each host would keep its own index,
reconciled from the database (deploy/README.md).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import AE, StoragePresentationContexts
from sqlalchemy import create_engine, func, select, text

from app import create_app
from app.db import get_db
from app.models import Case, CaseRevision, CaseStatus, Instance, Role, Study
from app.services import accounts, integrity, sources
from app.storage import ObjectStore
from tests import dicomfiles, pg
from tests.httpsession import HttpSession

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
STUDIES = 6
SLICES = 3
SAVES_PER_CASE = 3
SHARED_SAVES = 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


@pytest.fixture
def site(tmp_path: Path, postgres: pg.PostgresServer) -> Iterator[dict[str, Any]]:
    name = f"twohost_{os.getpid()}"
    admin = create_engine(postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE teachfile_template"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TEACHFILE_")},
        "TEACHFILE_DATA_DIR": str(tmp_path / "data"),
        "TEACHFILE_DATABASE_URL": postgres.url(name),
        "TEACHFILE_LOAD_SAMPLE_CASES": "false",
    }
    app = create_app(
        {
            "DATA_DIR": env["TEACHFILE_DATA_DIR"],
            "DATABASE_URL": env["TEACHFILE_DATABASE_URL"],
            "LOAD_SAMPLE_CASES": False,
        }
    )
    with get_db(app).sessionmaker.begin() as session:
        hospital = accounts.create_institution(session, "Hill Hospital", actor=None)
        for email in ("a@hill.example", "b@hill.example"):
            accounts.create_user(
                session,
                email=email,
                display_name=email,
                password=PASSWORD,
                role=Role.EDUCATOR,
                institution_name=hospital.name,
            )
        sources.add_source(session, "SENDER", institution_name=hospital.name, actor=None)
    ports = {"a": _free_port(), "b": _free_port(), "dicom": _free_port()}
    logs = tmp_path / "logs"
    logs.mkdir()
    commands = {
        "a": ["run", "--port", str(ports["a"])],
        "b": ["run", "--port", str(ports["b"])],
        "dicom": ["receive", "--port", str(ports["dicom"]), "--workers", "1"],
    }
    handles = {key: (logs / f"{key}.log").open("wb") for key in commands}
    procs = {
        key: subprocess.Popen(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=handles[key],
            stderr=subprocess.STDOUT,
        )
        for key, args in commands.items()
    }
    try:
        deadline = time.monotonic() + 60
        for key, proc in procs.items():
            _wait_for_port(ports[key], proc, deadline)
        yield {"app": app, "ports": ports, "logs": logs}
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
        get_db(app).engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _send(port: int, acknowledged: list[str], errors: list[str]) -> None:
    ae = AE(ae_title="SENDER")
    for context in StoragePresentationContexts[:100]:
        ae.add_requested_context(context.abstract_syntax)
    for _ in range(STUDIES):
        assoc = ae.associate("127.0.0.1", port, ae_title="TEACHFILE")
        if not assoc.is_established:
            errors.append("association refused")
            continue
        for ds in dicomfiles.ct_series(SLICES):
            status = assoc.send_c_store(ds)
            if status and status.Status == 0x0000:
                acknowledged.append(str(ds.SOPInstanceUID))
            else:
                errors.append(f"C-STORE status {getattr(status, 'Status', None)}")
        assoc.release()


def _editor(
    base: str,
    email: str,
    parity: int,
    maker: Any,
    published: list[str],
    saves: list[int],
    errors: list[str],
    done_sending: threading.Event,
) -> None:
    """Turn every study whose id has this parity into a published case, saving drafts."""
    http = HttpSession(base)
    http.login(email, PASSWORD)
    taken: set[int] = set()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        with maker() as session:
            ids = [
                i
                for i in session.scalars(select(Study.id).order_by(Study.id))
                if i % 2 == parity and i not in taken
            ]
        if not ids:
            if done_sending.is_set():
                return
            time.sleep(0.1)
            continue
        for study_id in ids:
            taken.add(study_id)
            status, body = http.request(
                "POST", "/api/cases", {"study_ids": [study_id], "title": f"Zebrafinch {study_id}"}
            )
            if status != 201:
                errors.append(f"create {status} {body}")
                continue
            slug, revision = body["slug"], body["revision"]
            for n in range(SAVES_PER_CASE):
                content = {
                    "title": f"Zebrafinch {study_id}",
                    "diagnosis": "Pulmonary embolism",
                    "sections": {"history": f"Dyspnoea, save {n} from {email}."},
                }
                status, body = http.request(
                    "PUT",
                    f"/api/cases/{slug}/draft",
                    {"base_revision": revision, "content": content},
                )
                if status != 200:
                    errors.append(f"save {status} {body}")
                    break
                revision = body["revision"]
                saves.append(revision)
            status, body = http.request(
                "POST", f"/api/cases/{slug}/publish", {"visibility": "public", "confirmed": True}
            )
            if status != 200:
                errors.append(f"publish {status} {body}")
                continue
            published.append(slug)
    errors.append(f"{email}: ran out of time")


def _shared_saves(
    base: str, email: str, slug: str, accepted: list[str], refused: list[str], errors: list[str]
) -> None:
    http = HttpSession(base)
    http.login(email, PASSWORD)
    for n in range(SHARED_SAVES):
        _status, case = http.request("GET", f"/api/cases/{slug}")
        text_ = f"{email} {n}"
        content = {"title": "Shared case", "sections": {"discussion": text_}}
        status, _body = http.request(
            "PUT",
            f"/api/cases/{slug}/draft",
            {"base_revision": case["revision"], "content": content},
        )
        if status == 200:
            accepted.append(text_)
        elif status == 409:
            refused.append(text_)
        else:
            errors.append(f"shared save {status}")


def test_two_web_processes_and_a_receiver_lose_nothing(site: dict[str, Any]) -> None:
    app, ports = site["app"], site["ports"]
    maker = get_db(app).sessionmaker
    bases = {key: f"http://127.0.0.1:{ports[key]}" for key in ("a", "b")}
    acknowledged: list[str] = []
    published: list[str] = []
    saves: list[int] = []
    errors: list[str] = []
    done_sending = threading.Event()

    # A shared case both editors save at once (both are authors: same institution's draft
    # is edited by its author; b is added as co-author through the service).
    first = HttpSession(bases["a"])
    first.login("a@hill.example", PASSWORD)
    sender = threading.Thread(target=_send, args=(ports["dicom"], acknowledged, errors))
    sender.start()
    while not acknowledged and sender.is_alive():
        time.sleep(0.05)
    with maker() as session:
        study_id = session.scalars(select(Study.id).order_by(Study.id)).first()
    status, shared = first.request(
        "POST", "/api/cases", {"study_ids": [study_id], "title": "Shared case"}
    )
    assert status == 201, shared
    _add_author(app, shared["slug"], "b@hill.example")
    accepted: list[str] = []
    refused: list[str] = []

    workers = [
        threading.Thread(
            target=_editor,
            args=(
                bases[key],
                f"{key}@hill.example",
                parity,
                maker,
                published,
                saves,
                errors,
                done_sending,
            ),
        )
        for parity, key in enumerate(("a", "b"))
    ] + [
        threading.Thread(
            target=_shared_saves,
            args=(bases[key], f"{key}@hill.example", shared["slug"], accepted, refused, errors),
        )
        for key in ("a", "b")
    ]
    for worker in workers:
        worker.start()
    sender.join(60)
    done_sending.set()
    for worker in workers:
        worker.join(60)
    assert not errors, errors[:5]

    # Every acknowledged image is stored, with its file, exactly once.
    assert len(acknowledged) == STUDIES * SLICES
    with maker() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == len(acknowledged)
        report = integrity.verify(session, ObjectStore(app.config["DATA_DIR"]), grace_seconds=0)
        assert report.ok, list(report.lines())
        # Every accepted save is a revision, every refused one a conflicted revision: nothing
        # either editor was told was saved (or kept) is missing.
        case_id = session.scalars(select(Case.id).where(Case.slug == shared["slug"])).one()
        kept = {
            (rev.content.get("sections", {}).get("discussion"), rev.conflicted)
            for rev in session.scalars(select(CaseRevision).where(CaseRevision.case_id == case_id))
        }
        assert {(t, False) for t in accepted} <= kept
        assert {(t, True) for t in refused} <= kept
        assert len(accepted) >= 2
        want = set(session.scalars(select(Case.slug).where(Case.status == CaseStatus.PUBLISHED)))
    assert want == set(published)
    assert len(published) >= STUDIES - 1  # the shared case's study may also carry one

    # Both processes' search finds every published case.
    for key, base in bases.items():
        found = _search_all(HttpSession(base), "zebrafinch")
        assert found == want, f"process {key} misses {sorted(want - found)}"


def _add_author(app: Any, slug: str, email: str) -> None:
    from app.models import CaseAuthor, User

    with get_db(app).sessionmaker.begin() as session:
        case = session.scalars(select(Case).where(Case.slug == slug)).one()
        user = session.scalars(select(User).where(User.email == email)).one()
        session.add(CaseAuthor(case_id=case.id, user_id=user.id))


def _search_all(http: HttpSession, query: str) -> set[str]:
    slugs: set[str] = set()
    page = 1
    while True:
        status, body = http.request("GET", f"/api/search?q={query}&page={page}")
        assert status == 200, body
        slugs.update(item["slug"] for item in body["items"])
        if page >= body["pages"]:
            return slugs
        page += 1
