"""The full access matrix: every route of the application x every reader x every object.

One world is built per module: two hospitals (A and B), an account of every role in each,
and an author (an educator of A) whose cases cover every visibility x draft/published,
each with a study, a question and a case set; on top of them comments in the open and
hospital threads, a report, a consult, annotations of every visibility, a finished exam
attempt with its certificate and review item, a held quarantine object and a DICOM
source. Then ``TABLE`` says, for every rule in ``app.url_map`` and each of its methods,
which URLs to request and what each reader gets:

- a GET answers the expected status (200, or the refusal);
- a write (POST, PUT, PATCH, DELETE) is sent, with a valid CSRF token and an empty body,
  only by the readers who may not do it: each gets its refusal and the database does not
  change. Readers who may (``ALLOWED``) are not sent the write; the behaviour of allowed
  writes is tested next to each feature.

Refusals: a visitor is sent to log in (302; 401 under ``/api/``); a role below the
route's gate gets 403 whatever the object; an object the reader may not see is a 404,
so its existence is not revealed; one they may see but not change is a 403.

A rule missing from ``TABLE`` fails :func:`test_every_rule_is_in_the_table`.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from app.db import Base, get_db, utcnow
from app.models import (
    Case,
    CaseAuthor,
    CaseLabel,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    CaseStudy,
    Institution,
    QuarantinedObject,
    Question,
    QuestionOption,
    Role,
    Study,
    Thread,
    User,
    Visibility,
)
from app.services import (
    accounts,
    annotations,
    consults,
    credit,
    discussion,
    intake,
    sources,
)
from app.services.quizzes import attempts, reviews
from tests import dicomfiles
from tests.conftest import PASSWORD, AuthActions, csrf_token
from tests.web.test_access_matrix import MATRIX, ROLES

ALLOWED = 0  # a write the reader may do: not sent (see the module docstring)

VISIBILITIES = ("public", "institution", "private")
STATUSES = ("published", "draft")
COMBOS = [(v, s) for s in STATUSES for v in VISIBILITIES]
# Changes the refused requests may leave: the log of who tried what.
UNTRACKED_TABLES = {"audit_events", "login_attempts"}


@dataclass(frozen=True)
class Reader:
    name: str
    role: Role | None  # None: a visitor
    hospital: str | None  # "A" (the author's) or "B"
    author: bool = False

    @property
    def admin(self) -> bool:
        return self.role is Role.ADMIN


READERS = [
    Reader("visitor", None, None),
    Reader("learner_a", Role.LEARNER, "A"),
    Reader("educator_a", Role.EDUCATOR, "A"),
    Reader("author", Role.EDUCATOR, "A", author=True),
    Reader("admin_a", Role.ADMIN, "A"),
    Reader("learner_b", Role.LEARNER, "B"),
    Reader("educator_b", Role.EDUCATOR, "B"),
    Reader("admin_b", Role.ADMIN, "B"),
]
RANK = {Role.LEARNER: 1, Role.EDUCATOR: 2, Role.ADMIN: 3}


def _has(reader: Reader, minimum: Role) -> bool:
    return reader.role is not None and RANK[reader.role] >= RANK[minimum]


# --- the rules, as the expected answers ------------------------------------------------


def sees(r: Reader, combo: tuple[str, str]) -> bool:
    """DESIGN.md: drafts are their authors' and admins'; published cases follow visibility."""
    visibility, status = combo
    if r.admin or r.author:
        return True
    if status == "draft":
        return False
    return visibility == "public" or (visibility == "institution" and r.hospital == "A")


def gate(r: Reader, minimum: Role, *, api: bool = False) -> int | None:
    """The route's role gate: None when passed, else its refusal."""
    if r.role is None:
        return 401 if api else 302
    return None if _has(r, minimum) else 403


def view(r: Reader, combo: tuple[str, str], ok: int = 200) -> int:
    return ok if sees(r, combo) else 404


def edit(r: Reader, combo: tuple[str, str], ok: int = 200) -> int:
    """Change a case or set: its author and admins; 403 if merely readable, else 404."""
    if r.admin or r.author:
        return ok
    return 403 if sees(r, combo) else 404


def sees_images(r: Reader, combo: tuple[str, str] | None) -> bool:
    """A study's images: its hospital's members (inbox, consults), admins, the case's readers."""
    if r.admin or (r.role is not None and r.hospital == "A"):
        return True
    return combo is not None and sees(r, combo)


# --- the world -------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, User] = field(default_factory=dict)
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    sets: dict[tuple[str, str], CaseSet] = field(default_factory=dict)
    questions: dict[tuple[str, str], Question] = field(default_factory=dict)
    study_ids: dict[str, int] = field(default_factory=dict)  # combo name or "inbox"
    images: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # study, series, sop
    series_ids: dict[str, int] = field(default_factory=dict)
    comments: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    report_id: int = 0
    consult_id: int = 0
    attempt_id: int = 0
    certificate: str = ""
    review_question_id: int = 0
    held_id: int = 0
    clients: dict[str, FlaskClient] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def name(combo: tuple[str, str]) -> str:
    return f"{combo[0]}-{combo[1]}"


_numbers = itertools.count(1)


def _study(session: Session, institution: Institution, config: intake.IntakeConfig) -> Study:
    for ds in dicomfiles.ct_series(2):
        ds.StudyDescription = f"CT CHEST {next(_numbers)}"
        outcome = intake.ingest(
            session, dicomfiles.to_bytes(ds), institution=institution, source="test", config=config
        )
    session.commit()
    return session.scalars(
        select(Study).where(Study.study_instance_uid == outcome.study_instance_uid)
    ).one()


def _remember_images(w: World, key: str, study: Study) -> None:
    series = study.series[0]
    instance = series.instances[0]
    w.study_ids[key] = study.id
    w.series_ids[key] = series.id
    w.images[key] = (
        study.study_instance_uid,
        series.series_instance_uid,
        instance.sop_instance_uid,
    )


def build_world(session: Session, config: intake.IntakeConfig) -> World:
    w = World()
    hospitals = {h: accounts.create_institution(session, f"Hospital {h}", actor=None) for h in "AB"}
    session.commit()
    for reader in READERS[1:]:
        w.users[reader.name] = accounts.create_user(
            session,
            email=f"{reader.name}@example.org",
            display_name=reader.name.replace("_", " ").title(),
            password=PASSWORD,
            role=reader.role or Role.LEARNER,
            institution_name=f"Hospital {reader.hospital}",
        )
    session.commit()
    author = w.users["author"]
    for combo in COMBOS:
        study = _study(session, hospitals["A"], config)
        _remember_images(w, name(combo), study)
        status, visibility = CaseStatus(combo[1]), Visibility(combo[0])
        case = Case(
            slug=f"case-{name(combo)}",
            title=f"Case {name(combo)}",
            status=status,
            visibility=visibility,
            institution_id=author.institution_id,
            created_by_id=author.id,
            published_at=utcnow() if status is CaseStatus.PUBLISHED else None,
            history="A 54-year-old farmer with sudden pleuritic chest pain.",
            diagnosis="Pneumothorax",
        )
        case.authors.append(CaseAuthor(user_id=author.id))
        case.studies.append(CaseStudy(study_id=study.id))
        case.labels.append(CaseLabel(kind="modality", value="CT"))
        question = Question(case=case, position=0, kind="single", stem="Diagnosis?")
        question.options = [
            QuestionOption(position=0, text="Pneumothorax", correct=True),
            QuestionOption(position=1, text="Bulla", correct=False),
        ]
        case_set = CaseSet(
            slug=f"set-{name(combo)}",
            title=f"Set {name(combo)}",
            status=status,
            visibility=visibility,
            institution_id=author.institution_id,
            created_by_id=author.id,
            credit_hours=1.0,
            passing_score=50,
            release_date=date(2020, 1, 1),
            expiry_date=date(2099, 1, 1),
            evaluation=[{"id": "met", "prompt": "Objectives met?", "kind": "rating"}],
        )
        case_set.items.append(CaseSetItem(case=case, position=0))
        session.add_all([case, question, case_set])
        session.commit()
        w.cases[combo], w.sets[combo], w.questions[combo] = case, case_set, question
    inbox = _study(session, hospitals["A"], config)
    _remember_images(w, "inbox", inbox)

    public, hospital_only = w.cases["public", "published"], w.cases["institution", "published"]
    learner = w.users["learner_a"]
    for key, case, thread in (
        ("open", public, Thread.OPEN),
        ("hospital", public, Thread.HOSPITAL),
        ("institution-case", hospital_only, Thread.OPEN),
    ):
        comment = discussion.post_comment(
            session, case.id, actor=learner, body=f"A {key} comment.", thread=thread
        )
        w.comments[key] = comment.id
    session.flush()
    report = discussion.report_comment(
        session, w.comments["open"], actor=w.users["learner_b"], reason="off topic"
    )
    w.report_id = report.id
    w.consult_id = consults.ask(
        session, inbox.id, actor=learner, question="Is this a pneumothorax?"
    ).id

    sop = w.images[name(("public", "published"))][2]
    mark = {"instance": sop, "frame": 1, "kind": "arrow", "points": [[10, 10], [40, 40]]}
    for visibility in ("only_me", "institution", "case_readers"):
        note = annotations.create_annotation(
            session, public.id, {**mark, "visibility": visibility}, actor=learner
        )
        w.notes[visibility] = note.id
    for combo in (("institution", "published"), ("public", "draft")):
        sop = w.images[name(combo)][2]
        note = annotations.create_annotation(
            session,
            w.cases[combo].id,
            {**mark, "instance": sop, "teaching": True},
            actor=author,
        )
        w.notes[f"teaching-{name(combo)}"] = note.id
    session.commit()

    question = w.questions["public", "published"]
    right = next(o.id for o in question.options if o.correct)
    attempt = attempts.start_attempt(session, "set-public-published", actor=learner, mode="exam")
    attempts.answer_question(
        session, attempt.id, question.id, {"option_ids": [right]}, actor=learner
    )
    attempts.finish_attempt(session, attempt.id, actor=learner)
    certificate = credit.claim_credit(
        session,
        attempt.id,
        actor=learner,
        evaluation={"met": "5"},
        hours=1,
        attested=True,
        issuer=credit.Issuer("Provider", "Accredited.", "CE hours"),
    )
    reviews.schedule_review(session, learner.id, question, correct=False, today=date.today())
    w.attempt_id, w.certificate = attempt.id, certificate.token
    w.review_question_id = question.id

    intake.ingest(
        session,
        dicomfiles.to_bytes(dicomfiles.burned_in_secondary_capture()),
        institution=hospitals["A"],
        source="test",
        config=config,
    )
    sources.add_source(session, "PACS_A", institution_id=hospitals["A"].id, actor=None)
    session.commit()
    w.held_id = session.scalars(select(QuarantinedObject.id)).one()
    return w


@pytest.fixture(scope="module")
def module_app(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Flask]:
    """An app of this module's own: the world is built once and only read by the tests."""
    data = tmp_path_factory.mktemp("full-access") / "data"
    data.mkdir()
    shutil.copyfile(sqlite_template, data / "teachfile.sqlite3")
    application = create_app(
        {
            "TESTING": True,
            "DATA_DIR": str(data),
            "DATABASE_URL": f"sqlite:///{data / 'teachfile.sqlite3'}",
            "LOAD_SAMPLE_CASES": False,
        }
    )
    yield application
    get_db(application).engine.dispose()


@pytest.fixture(scope="module")
def world(module_app: Flask) -> World:
    config = intake.make_config(module_app.config["DATA_DIR"], module_app.config["DEID_SECRET"])
    with get_db(module_app).sessionmaker(expire_on_commit=False) as session:
        w = build_world(session, config)
    for reader in READERS:
        client = module_app.test_client()
        if reader.role is not None:
            response = AuthActions(client).login(w.users[reader.name].email)
            assert response.status_code == 302, reader.name
        w.clients[reader.name] = client
        w.tokens[reader.name] = csrf_token(client, "/")
    return w


def fingerprint(app: Flask) -> str:
    """A hash of every row the application keeps (bar the log of attempts)."""
    digest = hashlib.sha256()
    with get_db(app).engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in UNTRACKED_TABLES:
                continue
            rows = conn.execute(table.select().order_by(*table.primary_key.columns)).all()
            digest.update(f"{table.name}:{rows!r}".encode())
    return digest.hexdigest()


# --- the table -------------------------------------------------------------------------

Expect = Callable[[Reader], int]


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    expect: Expect
    body: dict[str, Any] = field(default_factory=dict)  # a write's minimal well-formed body


Targets = Callable[[World], list[Target]]


def per_combo(
    url: Callable[[World, tuple[str, str]], str],
    rule: Callable[..., int],
    body: dict[str, Any] | None = None,
) -> Targets:
    """One target per case (or set) combination, ``rule(reader, combo)`` the answer."""

    def targets(w: World) -> list[Target]:
        return [
            Target(name(c), url(w, c), lambda r, c=c: rule(r, c), body or {})  # type: ignore[misc]
            for c in COMBOS
        ]

    return targets


def one(
    label: str,
    url: Callable[[World], str],
    expect: Expect,
    body: Callable[[World], dict[str, Any]] | None = None,
) -> Targets:
    return lambda w: [Target(label, url(w), expect, body(w) if body else {})]


def gated(minimum: Role, rule: Callable[[Reader, tuple[str, str]], int], *, api: bool = False):  # type: ignore[no-untyped-def]
    return lambda r, c: gate(r, minimum, api=api) or rule(r, c)


def image_targets(path: str, *, ok: int = 200, body: dict[str, Any] | None = None) -> Targets:
    """The study of every case, and a study of hospital A in no case (the inbox)."""

    def targets(w: World) -> list[Target]:
        found = []
        for key in [name(c) for c in COMBOS] + ["inbox"]:
            combo = next((c for c in COMBOS if name(c) == key), None)
            study, series, sop = w.images[key]
            url = path.format(study=study, series=series, instance=sop)

            def expect(r: Reader, combo: tuple[str, str] | None = combo) -> int:
                return ok if sees_images(r, combo) else 404

            found.append(Target(key, url, expect, body or {}))
        return found

    return targets


def case_url(
    suffix: str = "", *, by_id: bool = False, prefix: str = "/cases/"
) -> Callable[..., str]:
    def url(w: World, c: tuple[str, str]) -> str:
        case = w.cases[c]
        return f"{prefix}{case.id if by_id else case.slug}{suffix}"

    return url


def set_url(suffix: str = "") -> Callable[..., str]:
    return lambda w, c: f"/sets/{w.sets[c].slug}{suffix}"


def comment_sees(r: Reader, key: str) -> bool:
    if r.role is None:
        return False
    if key == "hospital":
        return r.admin or r.hospital == "A"
    if key == "institution-case":
        return sees(r, ("institution", "published"))
    return True


def comment_targets(suffix: str, rule: Callable[[Reader, str], int]) -> Targets:
    def targets(w: World) -> list[Target]:
        return [
            Target(key, f"/comments/{cid}{suffix}", lambda r, key=key: rule(r, key))  # type: ignore[misc]
            for key, cid in w.comments.items()
        ]

    return targets


def comment_rule(may: Callable[[Reader], bool], ok: int = ALLOWED) -> Callable[[Reader, str], int]:
    """Logged-in readers of the comment; 403 when they see it but ``may`` not act."""

    def rule(r: Reader, key: str) -> int:
        if r.role is None:
            return 302
        if not comment_sees(r, key):
            return 404
        return ok if may(r) else 403

    return rule


def note_sees(r: Reader, key: str) -> bool:
    if key.startswith("teaching-"):
        combo = ("institution", "published") if "institution" in key else ("public", "draft")
        return sees(r, combo)
    if r.admin or r.name == "learner_a":
        return True
    return key == "case_readers" or (key == "institution" and r.hospital == "A")


def note_may_edit(r: Reader, key: str) -> bool:
    if key.startswith("teaching-"):
        return r.admin or r.author
    return r.admin or r.name == "learner_a"


def note_targets(w: World) -> list[Target]:
    found = []
    for key, note_id in w.notes.items():
        case_id = w.cases[("public", "published")].id
        if key.startswith("teaching-"):
            combo = ("institution", "published") if "institution" in key else ("public", "draft")
            case_id = w.cases[combo].id

        def expect(r: Reader, key: str = key) -> int:
            if r.role is None:
                return 401
            if not note_sees(r, key):
                return 404
            return ALLOWED if note_may_edit(r, key) else 403

        found.append(Target(key, f"/api/cases/{case_id}/annotations/{note_id}", expect))
    return found


def unknown_url(suffix: str = "") -> Callable[..., str]:
    return lambda w, c: f"/unknowns/{w.cases[c].unknown_token}{suffix}"


def unknown_note_targets(w: World) -> list[Target]:
    """The annotations again, through the unknown of their case (issue 15)."""
    return [
        Target(
            t.label,
            t.url.replace(
                f"/api/cases/{case_id}/annotations",
                f"/unknowns/{case.unknown_token}/annotations",
            ),
            lambda r, expect=t.expect: 302 if r.role is None else expect(r),  # type: ignore[misc]
        )
        for t in note_targets(w)
        for case_id, case in ((c.id, c) for c in w.cases.values())
        if t.url.startswith(f"/api/cases/{case_id}/")
    ]


def consult_sees(r: Reader) -> bool:
    return r.admin or r.name == "learner_a" or (_has(r, Role.EDUCATOR) and r.hospital == "A")


def attempt_rule(ok: int = 200, *, api: bool = False) -> Expect:
    """A learner's attempt is theirs alone: everyone else, admins included, gets a 404."""
    return lambda r: gate(r, Role.LEARNER, api=api) or (ok if r.name == "learner_a" else 404)


def certificate_rule(ok: int = 200) -> Expect:
    """The holder, the set's educators (its author) and admins."""
    return lambda r: (
        gate(r, Role.LEARNER) or (ok if r.name == "learner_a" or r.author or r.admin else 404)
    )


def hospital_study(ok: int = 200) -> Expect:
    """A study received by hospital A, in no case: A's members ask about it (consults);
    an admin of another hospital is not one of them."""
    return lambda r: gate(r, Role.LEARNER) or (ok if r.hospital == "A" else 404)


def inbox_study(ok: int = 200) -> Expect:
    """The inbox: educators of the receiving hospital and admins."""
    return lambda r: gate(r, Role.EDUCATOR) or (ok if r.admin or r.hospital == "A" else 404)


def by_role(minimum: Role, ok: int = ALLOWED, *, api: bool = False) -> Expect:
    return lambda r: gate(r, minimum, api=api) or ok


FRAME = "/images/studies/{study}/series/{series}/instances/{instance}/frames/1/rendered"

TABLE: dict[tuple[str, str], Targets] = {
    # Cases: the page and the API follow visibility; the editor's routes need an educator.
    ("GET", "/cases/<slug>"): per_combo(case_url(), view),
    ("GET", "/api/cases/<slug>"): per_combo(case_url(prefix="/api/cases/"), view),
    ("GET", "/cases/<slug>/preview"): per_combo(case_url("/preview"), gated(Role.EDUCATOR, edit)),
    ("GET", "/cases/<slug>/edit"): per_combo(case_url("/edit"), gated(Role.EDUCATOR, edit)),
    ("POST", "/cases/<slug>/edit"): per_combo(
        case_url("/edit"), gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED))
    ),
    ("GET", "/cases/<slug>/revisions"): per_combo(
        case_url("/revisions"), gated(Role.EDUCATOR, edit)
    ),
    ("GET", "/cases/<slug>/revisions/<int:number>/diff"): per_combo(
        case_url("/revisions/1/diff"), gated(Role.EDUCATOR, lambda r, c: edit(r, c, 404))
    ),
    ("GET", "/cases/<slug>/publish"): per_combo(case_url("/publish"), gated(Role.EDUCATOR, edit)),
    ("GET", "/cases/<slug>/delete"): per_combo(case_url("/delete"), gated(Role.EDUCATOR, edit)),
    **{
        ("POST", f"/cases/<slug>/{action}"): per_combo(
            case_url(f"/{action}"), gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED))
        )
        for action in ("publish", "delete", "key-images", "unpublish", "confirm-revision")
    },
    # Any educator may make a public case they read today's case of the day.
    ("POST", "/cases/<slug>/case-of-the-day"): per_combo(
        case_url("/case-of-the-day"),
        gated(
            Role.EDUCATOR,
            lambda r, c: view(r, c, ALLOWED if c == ("public", "published") else 400),
        ),
    ),
    ("PUT", "/api/cases/<slug>/draft"): per_combo(
        case_url("/draft", prefix="/api/cases/"),
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED), api=True),
        {"base_revision": 1, "content": {"title": "Changed"}},
    ),
    ("POST", "/api/cases/<slug>/confirm"): per_combo(
        case_url("/confirm", prefix="/api/cases/"),
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED), api=True),
        {"revision": 2},
    ),
    ("POST", "/api/cases/<slug>/publish"): per_combo(
        case_url("/publish", prefix="/api/cases/"),
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED), api=True),
        {"visibility": "public", "confirmed": True},
    ),
    # Questions of a case: its editors.
    ("GET", "/quiz/cases/<slug>/questions"): per_combo(
        case_url("/questions", prefix="/quiz/cases/"), gated(Role.EDUCATOR, edit)
    ),
    ("POST", "/quiz/cases/<slug>/questions"): per_combo(
        case_url("/questions", prefix="/quiz/cases/"),
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED)),
    ),
    ("GET", "/quiz/cases/<slug>/questions/<int:question_id>"): per_combo(
        lambda w, c: f"/quiz/cases/{w.cases[c].slug}/questions/{w.questions[c].id}",
        gated(Role.EDUCATOR, edit),
    ),
    ("POST", "/quiz/cases/<slug>/questions/<int:question_id>"): per_combo(
        lambda w, c: f"/quiz/cases/{w.cases[c].slug}/questions/{w.questions[c].id}",
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED)),
    ),
    ("POST", "/quiz/cases/<slug>/questions/<int:question_id>/delete"): per_combo(
        lambda w, c: f"/quiz/cases/{w.cases[c].slug}/questions/{w.questions[c].id}/delete",
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED)),
    ),
    # Discussion of a case: logged-in readers of the case.
    ("GET", "/cases/<int:case_id>/discussion"): per_combo(
        case_url("/discussion", by_id=True), view
    ),
    ("POST", "/cases/<int:case_id>/comments"): per_combo(
        case_url("/comments", by_id=True),
        gated(Role.LEARNER, lambda r, c: view(r, c, ALLOWED)),
    ),
    ("GET", "/api/cases/<int:case_id>/comments"): per_combo(
        case_url("/comments", by_id=True, prefix="/api/cases/"),
        gated(Role.LEARNER, view, api=True),
    ),
    ("POST", "/api/cases/<int:case_id>/comments"): per_combo(
        case_url("/comments", by_id=True, prefix="/api/cases/"),
        gated(Role.LEARNER, lambda r, c: view(r, c, ALLOWED), api=True),
    ),
    # Annotations: listed to the case's readers; added by its logged-in readers.
    ("GET", "/api/cases/<int:case_id>/annotations"): per_combo(
        case_url("/annotations", by_id=True, prefix="/api/cases/"), view
    ),
    ("POST", "/api/cases/<int:case_id>/annotations"): per_combo(
        case_url("/annotations", by_id=True, prefix="/api/cases/"),
        gated(Role.LEARNER, lambda r, c: view(r, c, ALLOWED), api=True),
    ),
    # Unknowns: read by the case's readers (visitors too, who may reveal); notes as above.
    ("GET", "/unknowns/<token>"): per_combo(unknown_url(), view),
    ("POST", "/unknowns/<token>/reveal"): per_combo(
        unknown_url("/reveal"), lambda r, c: view(r, c, ALLOWED)
    ),
    ("GET", "/unknowns/<token>/annotations"): per_combo(unknown_url("/annotations"), view),
    ("POST", "/unknowns/<token>/annotations"): per_combo(
        unknown_url("/annotations"), gated(Role.LEARNER, lambda r, c: view(r, c, ALLOWED))
    ),
    ("DELETE", "/unknowns/<token>/annotations/<int:annotation_id>"): unknown_note_targets,
    ("PATCH", "/api/cases/<int:case_id>/annotations/<int:annotation_id>"): note_targets,
    ("DELETE", "/api/cases/<int:case_id>/annotations/<int:annotation_id>"): note_targets,
    # Comments.
    ("GET", "/comments/<int:comment_id>"): comment_targets("", comment_rule(lambda r: True, 302)),
    ("GET", "/comments/<int:comment_id>/edit"): comment_targets(
        "/edit", comment_rule(lambda r: r.name == "learner_a", 200)
    ),
    ("POST", "/comments/<int:comment_id>/edit"): comment_targets(
        "/edit", comment_rule(lambda r: r.name == "learner_a")
    ),
    ("POST", "/comments/<int:comment_id>/delete"): comment_targets(
        "/delete", comment_rule(lambda r: r.name == "learner_a")
    ),
    ("POST", "/comments/<int:comment_id>/report"): comment_targets(
        "/report", comment_rule(lambda r: True)
    ),
    **{
        ("POST", f"/comments/<int:comment_id>/{action}"): comment_targets(
            f"/{action}",
            lambda r, key: gate(r, Role.EDUCATOR) or (ALLOWED if comment_sees(r, key) else 404),
        )
        for action in ("hide", "unhide")
    },
    ("POST", "/admin/comment-reports/<int:report_id>/resolve"): one(
        "report", lambda w: f"/admin/comment-reports/{w.report_id}/resolve", by_role(Role.ADMIN)
    ),
    # Consults: the asker, the hospital's educators, admins.
    ("GET", "/consults/<int:consult_id>"): one(
        "consult",
        lambda w: f"/consults/{w.consult_id}",
        lambda r: gate(r, Role.LEARNER) or (200 if consult_sees(r) else 404),
    ),
    ("POST", "/consults/<int:consult_id>/messages"): one(
        "consult",
        lambda w: f"/consults/{w.consult_id}/messages",
        lambda r: gate(r, Role.LEARNER) or (ALLOWED if consult_sees(r) else 404),
    ),
    ("POST", "/consults/<int:consult_id>/convert"): one(
        "consult",
        lambda w: f"/consults/{w.consult_id}/convert",
        lambda r: gate(r, Role.EDUCATOR) or (ALLOWED if consult_sees(r) else 404),
    ),
    ("GET", "/consults/studies/<int:study_id>/ask"): one(
        "inbox", lambda w: f"/consults/studies/{w.study_ids['inbox']}/ask", hospital_study()
    ),
    ("POST", "/consults/studies/<int:study_id>/ask"): one(
        "inbox", lambda w: f"/consults/studies/{w.study_ids['inbox']}/ask", hospital_study(ALLOWED)
    ),
    # Images: DICOMweb-shaped URLs, the viewer and measurements.
    (
        "GET",
        "/images/studies/<study>/series/<series>/instances/<instance>/frames/<int:frame>/rendered",
    ): image_targets(FRAME),
    ("GET", "/images/studies/<study>/series/<series>/thumbnail"): image_targets(
        "/images/studies/{study}/series/{series}/thumbnail"
    ),
    (
        "GET",
        "/images/studies/<study>/series/<series>/instances/<instance>/thumbnail",
    ): image_targets("/images/studies/{study}/series/{series}/instances/{instance}/thumbnail"),
    ("GET", "/images/studies/<study>/series/<series>/metadata"): image_targets(
        "/images/studies/{study}/series/{series}/metadata"
    ),
    ("GET", "/viewer/studies/<study>"): image_targets("/viewer/studies/{study}"),
    # A measurement changes nothing: every reader of the image may send it.
    (
        "POST",
        "/api/images/studies/<study>/series/<series>/instances/<instance>/frames/<int:frame>/roi",
    ): image_targets(
        "/api" + FRAME.replace("/rendered", "/roi"),
        ok=ALLOWED,
        body={"cx": 10, "cy": 10, "rx": 5, "ry": 5},
    ),
    # The inbox: educators of the receiving hospital.
    ("GET", "/intake/studies/<int:study_id>"): one(
        "inbox", lambda w: f"/intake/studies/{w.study_ids['inbox']}", inbox_study()
    ),
    ("POST", "/intake/studies/<int:study_id>/discard"): one(
        "inbox", lambda w: f"/intake/studies/{w.study_ids['inbox']}/discard", inbox_study(ALLOWED)
    ),
    ("GET", "/intake/series/<int:series_id>/thumbnail"): one(
        "inbox", lambda w: f"/intake/series/{w.series_ids['inbox']}/thumbnail", inbox_study()
    ),
    # Quarantine and sources: admins.
    ("GET", "/admin/quarantine/<int:item_id>"): one(
        "held", lambda w: f"/admin/quarantine/{w.held_id}", by_role(Role.ADMIN, 200)
    ),
    ("POST", "/admin/quarantine/<int:item_id>"): one(
        "held", lambda w: f"/admin/quarantine/{w.held_id}", by_role(Role.ADMIN)
    ),
    ("GET", "/admin/quarantine/<int:item_id>/image"): one(
        "held", lambda w: f"/admin/quarantine/{w.held_id}/image", by_role(Role.ADMIN, 200)
    ),
    ("GET", "/admin/quarantine/<int:item_id>/ocr"): one(
        "held", lambda w: f"/admin/quarantine/{w.held_id}/ocr", by_role(Role.ADMIN, 200)
    ),
    ("GET", "/admin/quarantine/<int:item_id>/preview"): one(
        "held", lambda w: f"/admin/quarantine/{w.held_id}/preview", by_role(Role.ADMIN, 200)
    ),
    ("POST", "/admin/quarantine/<int:item_id>/delete"): one(
        "held", lambda w: f"/admin/quarantine/{w.held_id}/delete", by_role(Role.ADMIN)
    ),
    ("POST", "/admin/sources/<ae_title>/remove"): one(
        "PACS_A", lambda w: "/admin/sources/PACS_A/remove", by_role(Role.ADMIN)
    ),
    # Case sets and their quizzes.
    ("GET", "/sets/<slug>"): per_combo(set_url(), view),
    ("GET", "/sets/<slug>/cases/<case_slug>"): per_combo(
        lambda w, c: f"/sets/{w.sets[c].slug}/cases/{w.cases[c].slug}", view
    ),
    **{
        (method, f"/sets/<slug>/{action}"): per_combo(
            set_url(f"/{action}"),
            gated(Role.EDUCATOR, lambda r, c, ok=ok: edit(r, c, ok)),  # type: ignore[misc]
        )
        for method, action, ok in (
            ("GET", "edit", 200),
            ("GET", "credit", 200),
            ("POST", "credit", ALLOWED),
            ("POST", "publish", ALLOWED),
            ("GET", "quiz/stats", 200),
        )
    },
    ("POST", "/sets/<slug>/edit"): per_combo(
        set_url("/edit"),
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED)),
        {"title": "Changed", "cases": ""},
    ),
    ("GET", "/sets/<slug>/quiz"): per_combo(set_url("/quiz"), view),
    ("POST", "/sets/<slug>/quiz/start"): per_combo(
        set_url("/quiz/start"), gated(Role.LEARNER, lambda r, c: view(r, c, ALLOWED))
    ),
    ("POST", "/api/sets/<slug>/attempts"): per_combo(
        lambda w, c: f"/api/sets/{w.sets[c].slug}/attempts",
        gated(Role.LEARNER, lambda r, c: view(r, c, ALLOWED), api=True),
    ),
    ("POST", "/sets/<slug>/quiz/questions/<int:question_id>/accepted"): per_combo(
        lambda w, c: f"/sets/{w.sets[c].slug}/quiz/questions/{w.questions[c].id}/accepted",
        gated(Role.EDUCATOR, lambda r, c: edit(r, c, ALLOWED)),
    ),
    # A learner's attempt, review and certificate.
    # A finished attempt's page sends its owner to the result.
    ("GET", "/quiz/attempts/<int:attempt_id>"): one(
        "attempt", lambda w: f"/quiz/attempts/{w.attempt_id}", attempt_rule(302)
    ),
    **{
        ("GET", f"/quiz/attempts/<int:attempt_id>{suffix}"): one(
            "attempt", lambda w, s=suffix: f"/quiz/attempts/{w.attempt_id}{s}", attempt_rule()
        )
        for suffix in ("/result", "/credit")
    },
    **{
        ("POST", f"/quiz/attempts/<int:attempt_id>/{action}"): one(
            "attempt",
            lambda w, a=action: f"/quiz/attempts/{w.attempt_id}/{a}",
            attempt_rule(ALLOWED),
            lambda w: {"question_id": str(w.review_question_id)},
        )
        for action in ("answer", "finish", "credit")
    },
    **{
        ("GET", f"/api/attempts/<int:attempt_id>{suffix}"): one(
            "attempt",
            lambda w, s=suffix: f"/api/attempts/{w.attempt_id}{s}",
            attempt_rule(api=True),
        )
        for suffix in ("", "/next", "/result")
    },
    **{
        ("POST", f"/api/attempts/<int:attempt_id>/{action}"): one(
            "attempt",
            lambda w, a=action: f"/api/attempts/{w.attempt_id}/{a}",
            attempt_rule(ALLOWED, api=True),
            lambda w: {"question_id": w.review_question_id, "option_ids": []},
        )
        for action in ("answers", "finish")
    },
    ("GET", "/quiz/review/<int:question_id>"): one(
        "review", lambda w: f"/quiz/review/{w.review_question_id}", attempt_rule()
    ),
    ("POST", "/quiz/review/<int:question_id>"): one(
        "review", lambda w: f"/quiz/review/{w.review_question_id}", attempt_rule(ALLOWED)
    ),
    ("GET", "/certificates/<token>"): one(
        "certificate", lambda w: f"/certificates/{w.certificate}", certificate_rule()
    ),
    ("GET", "/certificates/<token>.pdf"): one(
        "certificate", lambda w: f"/certificates/{w.certificate}.pdf", certificate_rule()
    ),
    ("POST", "/certificates/<token>/revoke"): one(
        "certificate",
        lambda w: f"/certificates/{w.certificate}/revoke",
        lambda r: (
            gate(r, Role.LEARNER)
            or (ALLOWED if r.author or r.admin else 403 if r.name == "learner_a" else 404)
        ),
    ),
    # Public verification of a certificate: anyone with the link.
    ("GET", "/verify/<token>"): one(
        "certificate", lambda w: f"/verify/{w.certificate}", lambda r: 200
    ),
    ("GET", "/api/certificates/<token>"): one(
        "certificate", lambda w: f"/api/certificates/{w.certificate}", lambda r: 200
    ),
    # Writes without an object.
    ("POST", "/auth/logout"): one("-", lambda w: "/auth/logout", lambda r: ALLOWED),
    ("POST", "/notifications/read"): one(
        "-", lambda w: "/notifications/read", by_role(Role.LEARNER)
    ),
    ("POST", "/api/cases"): one("-", lambda w: "/api/cases", by_role(Role.EDUCATOR, api=True)),
    ("POST", "/admin/users/<int:user_id>"): one(
        "learner_b",
        lambda w: f"/admin/users/{w.users['learner_b'].id}",
        by_role(Role.ADMIN),
    ),
}


def _matrix_targets(template: str, method: str) -> Targets:
    """A simple route of MATRIX (tests/web/test_access_matrix.py): its GET statuses per
    role; a write there is refused where the GET is, and allowed where the GET is 200."""
    statuses = MATRIX[template]

    def expect(r: Reader) -> int:
        status = statuses[ROLES.index(r.role.value if r.role else "visitor")]
        return status if method == "GET" or status != 200 else ALLOWED

    return lambda w: [Target("-", template.format(other=w.users["learner_b"].id), expect)]


def _template(rule: str) -> str:
    return rule.replace("<int:user_id>", "{other}")


def rule_methods(app: Flask) -> list[tuple[str, str]]:
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    )


def targets_for(method: str, rule: str) -> Targets | None:
    if (method, rule) in TABLE:
        return TABLE[method, rule]
    if _template(rule) in MATRIX:
        return _matrix_targets(_template(rule), method)
    return None


def test_every_rule_is_in_the_table(module_app: Flask) -> None:
    missing = [pair for pair in rule_methods(module_app) if targets_for(*pair) is None]
    assert not missing, f"add these (method, rule) pairs to TABLE or MATRIX: {missing}"


def _send(w: World, reader: Reader, method: str, target: Target) -> int:
    client = w.clients[reader.name]
    token = w.tokens[reader.name]
    if method == "GET":
        return client.get(target.url).status_code
    headers = {"X-CSRFToken": token}
    if target.url.startswith("/api/"):
        response = client.open(target.url, method=method, json=target.body, headers=headers)
    else:
        data = {**target.body, "csrf_token": token}
        response = client.open(target.url, method=method, data=data, headers=headers)
    return response.status_code


def _all_pairs() -> list[tuple[str, str]]:
    # Collected without an app: the table's own pairs plus MATRIX's GETs and the
    # writes of those routes (test_every_rule_is_in_the_table checks the union is whole).
    pairs = set(TABLE)
    pairs |= {("GET", template) for template in MATRIX}
    pairs |= {
        (m, template)
        for m, template in (
            ("POST", "/auth/login"),
            ("POST", "/auth/register"),
            ("POST", "/admin/institutions"),
            ("POST", "/admin/sources"),
            ("POST", "/intake/upload"),
            ("POST", "/cases/new"),
            ("POST", "/sets/new"),
            ("POST", "/api/institutions"),
        )
    }
    return sorted(pairs)


@pytest.mark.parametrize(("method", "rule"), _all_pairs(), ids=lambda v: str(v))
def test_access(module_app: Flask, world: World, method: str, rule: str) -> None:
    rule = rule.replace("{other}", "<int:user_id>")
    targets = targets_for(method, rule)
    assert targets is not None
    wrong: dict[str, tuple[int, int]] = {}
    before = fingerprint(module_app) if method != "GET" else ""
    for target in targets(world):
        for reader in READERS:
            expected = target.expect(reader)
            if expected == ALLOWED:
                continue
            got = _send(world, reader, method, target)
            if got != expected:
                wrong[f"{target.label} as {reader.name}"] = (got, expected)
    assert not wrong, f"{method} {rule}: (got, expected): {wrong}"
    if method != "GET":
        assert fingerprint(module_app) == before, f"a refused {method} {rule} changed data"
