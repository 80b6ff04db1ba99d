"""Shared fixtures: an app on a fresh data directory per test, on SQLite or PostgreSQL."""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from app import create_app
from app.db import get_db, make_engine, upgrade_database
from app.models import Institution, Role, User
from app.services import accounts
from tests import pg

PASSWORD = "correct horse battery"
_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.PostgresServer]:
    """One PostgreSQL server for the whole run, with a migrated template database."""
    if os.environ.get("TEACHFILE_SKIP_POSTGRES") == "1":
        pytest.skip("TEACHFILE_SKIP_POSTGRES=1")
    server = pg.start()
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE teachfile_template"))
    engine = make_engine(server.url("teachfile_template"))
    upgrade_database(engine)
    engine.dispose()
    admin.dispose()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating each time costs ~0.3 s)."""
    path = tmp_path_factory.mktemp("template") / "teachfile.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which database the test runs on; tests/services widen this to PostgreSQL too."""
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "data" / "teachfile.sqlite3"
        target.parent.mkdir()
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
        return
    server: pg.PostgresServer = request.getfixturevalue("postgres")
    name = f"t_{os.getpid()}_{next(_counter)}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name} TEMPLATE teachfile_template"))
    yield server.url(name)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[Flask]:
    application = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(tmp_path / "data"),
            "DATABASE_URL": database_url,
            "LOAD_SAMPLE_CASES": False,
        }
    )
    yield application
    get_db(application).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session of the test's own, committed by the test where it needs to."""
    with get_db(app).sessionmaker() as db_session:
        yield db_session


@pytest.fixture
def create_institution(session: Session) -> Callable[..., Institution]:
    def make(name: str | None = None) -> Institution:
        institution = accounts.create_institution(
            session, name or f"Hospital {next(_counter)}", actor=None
        )
        session.commit()
        return institution

    return make


@pytest.fixture
def create_user(session: Session) -> Callable[..., User]:
    def make(
        role: Role | str = Role.LEARNER,
        institution: Institution | None = None,
        email: str | None = None,
        password: str = PASSWORD,
    ) -> User:
        user = accounts.create_user(
            session,
            email=email or f"user{next(_counter)}@example.org",
            display_name="Test User",
            password=password,
            role=Role(role),
            institution_name=institution.name if institution else None,
        )
        session.commit()
        return user

    return make


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    page = client.get(path).get_data(as_text=True)
    match = _CSRF_META.search(page)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, email: str, password: str = PASSWORD) -> Any:
        token = csrf_token(self._client, "/auth/login")
        return self._client.post(
            "/auth/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self, everywhere: bool = False) -> Any:
        token = csrf_token(self._client)
        data = {"csrf_token": token}
        if everywhere:
            data["everywhere"] = "1"
        return self._client.post("/auth/logout", data=data)


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def intake_config(app: Flask) -> Any:
    from app.services import intake

    return intake.make_config(app.config["DATA_DIR"], app.config["DEID_SECRET"])


@pytest.fixture
def create_study(session: Session, intake_config: Any) -> Callable[..., Any]:
    """A received study of ``institution``: ``slices`` CT images, de-identified and stored."""
    from app.models import Study
    from app.services import intake
    from tests import dicomfiles

    def make(institution: Institution, slices: int = 3, **changes: Any) -> Study:
        datasets = dicomfiles.ct_series(slices)
        for ds in datasets:
            for keyword, value in changes.items():
                setattr(ds, keyword, value)
            outcome = intake.ingest(
                session,
                dicomfiles.to_bytes(ds),
                institution=institution,
                source="test",
                config=intake_config,
            )
        session.commit()
        study = session.scalars(
            select(Study).where(Study.study_instance_uid == outcome.study_instance_uid)
        ).one()
        return study

    return make


@pytest.fixture
def create_case(session: Session, create_study: Callable[..., Any]) -> Callable[..., Any]:
    """A case by ``author`` (an educator) on a fresh study of the author's institution.

    ``status`` "draft" or "published"; ``visibility`` "private", "institution" or "public".
    """
    from app.db import utcnow
    from app.models import Case, CaseAuthor, CaseLabel, CaseStatus, CaseStudy, Visibility

    def make(
        author: User,
        *,
        status: str = "published",
        visibility: str = "public",
        title: str | None = None,
        slices: int = 3,
        **fields: Any,
    ) -> Case:
        assert author.institution is not None, "give the author an institution"
        study = create_study(author.institution, slices=slices)
        number = next(_counter)
        case = Case(
            slug=f"case-{number}",
            title=title or f"Case {number}",
            status=CaseStatus(status),
            visibility=Visibility(visibility),
            institution_id=author.institution_id,
            created_by_id=author.id,
            published_at=utcnow() if status == "published" else None,
            history="A 54-year-old farmer with sudden pleuritic chest pain.",
            findings="Visceral pleural line with absent lung markings beyond it.",
            diagnosis="Pneumothorax",
            diagnosis_text="Right pneumothorax.",
            **fields,
        )
        case.authors.append(CaseAuthor(user_id=author.id))
        case.studies.append(CaseStudy(study_id=study.id))
        case.labels.append(CaseLabel(kind="modality", value="CT"))
        session.add(case)
        session.commit()
        return case

    return make


PHI_SCAN_NOTE = pytest.StashKey[list[str]]()


@pytest.hookimpl(specname="pytest_terminal_summary")
def pytest_terminal_summary_phi_scan(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Closing note: the identifier scan's figures (tests/services/test_phi_scan.py).

    Its own name (``specname``) so other closing notes can sit beside it in this file.
    """
    lines = config.stash.get(PHI_SCAN_NOTE, [])
    if lines:
        terminalreporter.write_sep(
            "-", "identifier scan on the labelled set (tests/data/phi_corpus.txt)"
        )
        for line in lines:
            terminalreporter.write_line(line)
