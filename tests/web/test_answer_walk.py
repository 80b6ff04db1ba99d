"""No answer before it is answered (issue 15 item 2): a walk over every quiz page in every
mode (practice, exam, the review queue; the HTML and the JSON the pages fetch or the API
serves) for every case set in a first-run library, and over every unknown page before each
reveal step, looking for the answers a learner has not earned yet.

The library is the real first run (``teachfile init`` loads ``cases/``, and whatever case sets
ship with it); the test adds one set of every shipped case that has questions, so each shipped
question is walked even before sets ship, and then walks every set in the database.

What counts as a leak on a page: an accepted free-text answer, a correct option's text, the
case's title or short diagnosis, a phrase (three words or more) of its diagnosis or findings
section, or a key image's caption -- for any question whose feedback the learner may not see
yet. Text is compared after normalising case, entities, punctuation and whitespace; tag text
and attribute values (alt, aria-label, data-*, href) both count.

Exemptions, and why: the site's header (identical on every page; its search box suggests
"free air" as an example query) is left out. And a needle whose every word is in what the
page is meant to show (the question's stem, its options and the case's clinical history; on
an unknown, the sections revealed so far) is not counted. The question itself must be
shown, and an option list necessarily contains the correct option's text, so the correct
option is "leaked" only by a marker, which is checked separately (no "(correct)", no
feedback list before answering).
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import create_app
from app.cli import cli
from app.db import get_db, utcnow
from app.markup import render_markdown
from app.models import (
    Attempt,
    Case,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    Question,
    ReviewItem,
    Role,
    User,
    Visibility,
)
from app.services import accounts
from tests.conftest import PASSWORD, AuthActions, csrf_token

_WORD = re.compile(r"[^\w]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower case, entities decoded, punctuation and runs of white space as one space."""
    return " ".join(_WORD.sub(" ", htmllib.unescape(text).lower()).split())


def plain(markdown: str) -> str:
    return re.sub(r"<[^>]+>", " ", str(render_markdown(markdown)))


def page_text(html: str) -> str:
    """What a reader (or a screen reader, or anyone viewing the source) gets from a page:
    its text and its attribute values; the scripts are the app's own static modules."""
    attributes = " ".join(v for _, v in re.findall(r'\s([\w:-]+)="([^"]*)"', html))
    text = re.sub(r"<[^>]+>", " ", html)
    return normalise(f"{text} {attributes}")


def json_text(data: Any) -> str:
    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    return normalise(" | ".join(strings(data)))


def phrases(text: str, *, min_words: int = 3) -> list[str]:
    """The section's sentences and clauses of at least ``min_words`` words."""
    parts = re.split(r"[.;:!?()\n,]+", htmllib.unescape(plain(text)))
    out = []
    for part in parts:
        words = normalise(part)
        if len(words.split()) >= min_words:
            out.append(words)
    return out


@dataclass
class Needle:
    what: str
    text: str


@dataclass
class Walk:
    pages: int = 0
    json: int = 0
    leaks: list[str] = field(default_factory=list)

    def check(
        self, where: str, text: str, needles: list[Needle], shown: str, *, is_json: bool = False
    ) -> None:
        if is_json:
            self.json += 1
        else:
            self.pages += 1
        allowed = set(normalise(shown).split())
        for needle in needles:
            words = needle.text.split()
            if not words or set(words) <= allowed:
                continue  # the page is meant to show these words (see the module docstring)
            found = f"{where}: {needle.what} {needle.text!r}"
            if f" {needle.text} " in f" {text} " and found not in self.leaks:
                self.leaks.append(found)


def question_needles(question: Question) -> list[Needle]:
    case = question.case
    needles = [Needle("case title", normalise(case.title))]
    if case.diagnosis:
        needles.append(Needle("diagnosis", normalise(case.diagnosis)))
    needles += [Needle("accepted answer", normalise(a)) for a in question.accepted or []]
    needles += [Needle("correct option", normalise(o.text)) for o in question.options if o.correct]
    needles += [Needle("diagnosis section", p) for p in phrases(case.diagnosis_text)]
    needles += [Needle("findings section", p) for p in phrases(case.findings)]
    needles += [Needle("key image caption", normalise(k.caption)) for k in case.key_images]
    return [n for n in needles if n.text]


def answer_needles(question: Question) -> list[Needle]:
    """The question's own answers (accepted free text, correct options' text): what no page
    may carry while the question is unanswered, whatever another question's stem, options
    or feedback say (the case-level needles are in :func:`question_needles`)."""
    needles = [Needle("accepted answer", normalise(a)) for a in question.accepted or []]
    needles += [Needle("correct option", normalise(o.text)) for o in question.options if o.correct]
    return [n for n in needles if n.text]


def _siblings(question: Question, among: list[Question]) -> list[Question]:
    """The other questions of the question's case in ``among``: the ones whose answers its
    stem, options or feedback could give away (a word shared with another case's answer,
    "aorta", answers nothing)."""
    return [q for q in among if q.case_id == question.case_id and q.id != question.id]


def question_shown(question: Question) -> str:
    """What the question's author chose to show: the stem, the options, the history."""
    options = " ".join(o.text for o in question.options)
    return f"{plain(question.stem)} {options} {plain(question.case.history)}"


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Flask]:
    """A first run: migrate, load the shipped cases (and any shipped sets)."""
    application = create_app(
        {"TESTING": True, "DATA_DIR": str(tmp_path / "library"), "LOAD_SAMPLE_CASES": True}
    )
    result = application.test_cli_runner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    yield application
    get_db(application).engine.dispose()


def _learner(session: Session, name: str, case_set: CaseSet) -> str:
    """A learner who may take the set: of its institution, so a hospital's own set is walked
    as its learners see it."""
    email = f"{name}@example.org"
    accounts.create_user(
        session,
        email=email,
        display_name="Walker",
        password=PASSWORD,
        role=Role.LEARNER,
        institution_name=case_set.institution.name if case_set.institution else None,
    )
    session.commit()
    return email


def _wrong(question: Question) -> dict[str, Any]:
    """A wrong answer (so practice sends the question to the review queue)."""
    if question.kind in ("single", "multiple"):
        wrong = [o.id for o in question.options if not o.correct] or [question.options[0].id]
        return {"option": [str(wrong[0])]}
    if question.kind == "freetext":
        return {"text": "no idea at all"}
    spot = question.hotspot or {}
    return {"series_uid": spot.get("series_uid", ""), "frame": "1", "x": "0", "y": "0"}


def _without_site_header(html: str) -> str:
    """The page minus the site's header, the same on every page: its search box's
    placeholder suggests "PTX, free air", which is no answer to anything on the page."""
    return re.sub(r'<header class="site">.*?</header>', " ", html, count=1, flags=re.S)


def _fetched_json(client: FlaskClient, html: str) -> Iterator[tuple[str, Any]]:
    """The JSON the page's viewer fetches: each series' metadata and its annotations."""
    for attrs in re.findall(r'<section class="viewer"([^>]*)>', html):
        found = dict(re.findall(r'([\w-]+)="([^"]*)"', attrs))
        study, series = found.get("data-study"), found.get("data-series")
        neutral = "?neutral=1" if "data-neutral" in found else ""
        url = f"/images/studies/{study}/series/{series}/metadata{neutral}"
        yield url, client.get(url).get_json()
        notes = htmllib.unescape(found.get("data-annotations-url", ""))
        if notes:
            yield notes, client.get(notes).get_json()


def _check_page(
    walk: Walk,
    client: FlaskClient,
    url: str,
    needles: list[Needle],
    shown: str,
    *,
    unanswered: bool = True,
    others: tuple[list[Needle], str] = ([], ""),
) -> str:
    """``needles`` may be exempt by what the page is meant to show (``shown``); the needles
    in ``others`` (the answers of the page's other questions) only by ``others[1]``, the
    case's history: a question's stem that names the answer of another question of the same
    case gives that answer away as surely as the case title does."""
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.get_data(as_text=True)
    text = page_text(_without_site_header(html))
    walk.check(url, text, needles, shown)
    walk.check(url, text, others[0], others[1])
    if unanswered and ("(correct)" in html or "option-review" in html):
        walk.leaks.append(f"{url}: options marked right or wrong before the answer")
    for fetched, data in _fetched_json(client, html):
        walk.check(f"{url} -> {fetched}", json_text(data), needles, shown, is_json=True)
    return html


def _walk_attempt(
    walk: Walk, app: Flask, session: Session, case_set: CaseSet, mode: str
) -> list[int]:
    client = app.test_client()
    AuthActions(client).login(_learner(session, f"{mode}-{case_set.id}", case_set))
    questions = _set_questions(session, case_set)
    every = [n for q in questions for n in question_needles(q)]
    everything_shown = " ".join(question_shown(q) for q in questions)
    start = f"/sets/{case_set.slug}/quiz"
    _check_page(walk, client, f"/sets/{case_set.slug}", every, everything_shown)
    _check_page(walk, client, start, every, everything_shown)
    started = client.post(
        f"{start}/start", data={"mode": mode, "csrf_token": csrf_token(client, start)}
    )
    assert started.status_code == 302, started.get_data(as_text=True)
    attempt_url = started.headers["Location"]
    attempt_id = int(attempt_url.rstrip("/").rsplit("/", 1)[-1])
    asked = _attempt_order(session, attempt_id, questions)
    for position, question in enumerate(asked, 1):
        unanswered = asked[position - 1 :]
        if mode == "exam":  # nothing is shown before the end
            unanswered = asked
        needles = [n for q in unanswered for n in question_needles(q)]
        others = [n for q in _siblings(question, unanswered) for n in answer_needles(q)]
        shown = question_shown(question)
        _check_page(
            walk,
            client,
            f"{attempt_url}?q={position}",
            needles,
            shown,
            others=(others, plain(question.case.history)),
        )
        api = f"/api/attempts/{attempt_id}"
        walk.check(
            f"{api}/next",
            json_text(client.get(f"{api}/next").get_json()),
            needles,
            shown,
            is_json=True,
        )
        # The result of an open attempt lists every question (stems and options) as asked.
        result = json_text(client.get(f"{api}/result").get_json())
        walk.check(f"{api}/result", result, needles, everything_shown, is_json=True)
        answer = {
            "question_id": str(question.id),
            "csrf_token": csrf_token(client, attempt_url),
            **_wrong(question),
        }
        saved = client.post(f"{attempt_url}/answer", data=answer)
        assert saved.status_code == 303
        if mode == "practice":
            # The feedback on this answer must not answer a question still to come (an
            # option's explanation naming the diagnosis that a later question asks for).
            later = [n for q in _siblings(question, asked[position:]) for n in answer_needles(q)]
            _check_page(
                walk,
                client,
                saved.headers["Location"],
                [],
                "",
                unanswered=False,
                others=(later, plain(question.case.history)),
            )
    if mode == "exam":
        # Saved exam answers still show nothing until the attempt is finished.
        for position, question in enumerate(asked, 1):
            needles = [n for q in asked for n in question_needles(q)]
            others = [n for q in _siblings(question, asked) for n in answer_needles(q)]
            _check_page(
                walk,
                client,
                f"{attempt_url}?q={position}",
                needles,
                question_shown(question),
                others=(others, plain(question.case.history)),
            )
    return [q.id for q in asked]


def _set_questions(session: Session, case_set: CaseSet) -> list[Question]:
    return list(
        session.scalars(
            select(Question)
            .join(CaseSetItem, CaseSetItem.case_id == Question.case_id)
            .where(CaseSetItem.set_id == case_set.id)
            .order_by(CaseSetItem.position, Question.position, Question.id)
        )
    )


def _attempt_order(session: Session, attempt_id: int, questions: list[Question]) -> list[Question]:
    """The attempt's asking order (options or questions may be shuffled per attempt)."""
    session.expire_all()
    attempt = session.get(Attempt, attempt_id)
    assert attempt is not None
    by_id = {q.id: q for q in questions}
    return [by_id[i] for i in attempt.question_ids or [] if i in by_id]


def _walk_review(walk: Walk, app: Flask, session: Session, case_set: CaseSet) -> None:
    """The practice walker's missed questions, made due today, in the review queue."""
    email = f"practice-{case_set.id}@example.org"
    user = session.scalars(select(User).where(User.email == email)).one()
    items = session.scalars(select(ReviewItem).where(ReviewItem.user_id == user.id)).all()
    assert items, "the practice walk's wrong answers should be in the review queue"
    for item in items:
        item.due_on = utcnow().date() - timedelta(days=1)
    session.commit()
    client = app.test_client()
    AuthActions(client).login(email)
    due = [n for item in items for n in question_needles(item.question)]
    everything_shown = " ".join(question_shown(item.question) for item in items)
    _check_page(walk, client, "/quiz/progress", due, everything_shown)
    for item in items:
        question = item.question
        queued = [i.question for i in items]
        others = [n for q in _siblings(question, queued) for n in answer_needles(q)]
        _check_page(
            walk,
            client,
            f"/quiz/review/{question.id}",
            question_needles(question),
            question_shown(question),
            others=(others, plain(question.case.history)),
        )


def _walk_steps(walk: Walk, app: Flask, session: Session, case_set: CaseSet) -> None:
    """The set's step pages: the history and the link to the unknown."""
    client = app.test_client()
    AuthActions(client).login(_learner(session, f"steps-{case_set.id}", case_set))
    for position, item in enumerate(case_set.items, 1):
        needles = [n for q in _questions_of(item.case) for n in question_needles(q)]
        url = f"/sets/{case_set.slug}/cases/{position}"
        _check_page(walk, client, url, needles, plain(item.case.history))


def _walk_unknown(walk: Walk, app: Flask, session: Session, case: Case) -> None:
    """The unknown before each reveal step: a visitor's on a public case, else that of a
    learner of the case's hospital."""
    client = app.test_client()
    if case.visibility is not Visibility.PUBLIC:
        email = f"unknown-{case.id}@example.org"
        accounts.create_user(
            session,
            email=email,
            display_name="Walker",
            password=PASSWORD,
            role=Role.LEARNER,
            institution_name=case.institution.name if case.institution else None,
        )
        session.commit()
        AuthActions(client).login(email)
    url = f"/unknowns/{case.unknown_token}"
    answers = [n for q in _questions_of(case) for n in question_needles(q)]
    later = {
        # step -> what must not be on the page yet, and what the page shows by then
        0: (
            answers + [Needle("findings section", p) for p in phrases(case.findings)],
            plain(case.history),
        ),
        1: (answers, f"{plain(case.history)} {plain(case.findings)}"),
        2: (
            [Needle("case title", normalise(case.title))]
            + [Needle("discussion", p) for p in phrases(case.discussion, min_words=4)]
            + [Needle("teaching points", p) for p in phrases(case.teaching_points, min_words=4)],
            " ".join(
                plain(getattr(case, name))
                for name in ("history", "findings", "diagnosis_text", "differential")
            )
            + f" {case.diagnosis} "
            + " ".join(k.caption for k in case.key_images),
        ),
    }
    for step in range(3):
        needles, shown = later[step]
        _check_page(walk, client, f"{url}#before-step-{step + 1}", needles, shown)
        client.post(f"{url}/reveal", data={"step": step + 1, "csrf_token": csrf_token(client, url)})


def _questions_of(case: Case) -> list[Question]:
    session = Session.object_session(case)
    assert session is not None
    return list(session.scalars(select(Question).where(Question.case_id == case.id)))


def test_no_quiz_or_unknown_page_gives_an_answer_away(
    library: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    walk = Walk()
    with get_db(library).sessionmaker() as session:
        shipped = session.scalars(
            select(Case).where(Case.id.in_(select(Question.case_id))).order_by(Case.id)
        ).all()
        assert len(shipped) >= 10, "the first run should load the shipped cases with questions"
        every = CaseSet(
            slug="every-shipped-question",
            title="Every shipped question",
            status=CaseStatus.PUBLISHED,
            visibility=Visibility.PUBLIC,
        )
        every.items = [CaseSetItem(case_id=c.id, position=i) for i, c in enumerate(shipped)]
        session.add(every)
        session.commit()
        sets = session.scalars(
            select(CaseSet).where(CaseSet.status == CaseStatus.PUBLISHED).order_by(CaseSet.id)
        ).all()
        walked_questions: set[int] = set()
        for case_set in sets:
            for mode in ("practice", "exam"):
                walked_questions.update(_walk_attempt(walk, library, session, case_set, mode))
            _walk_review(walk, library, session, case_set)
            _walk_steps(walk, library, session, case_set)
        walked_cases = {c.id for s in sets for c in (i.case for i in s.items)}
        for case in session.scalars(select(Case).where(Case.id.in_(walked_cases))).all():
            _walk_unknown(walk, library, session, case)
        assert walked_questions >= set(session.scalars(select(Question.id)))
    with capsys.disabled():
        print(
            f"\nanswer walk: {len(sets)} set(s), {len(walked_questions)} questions, "
            f"{walk.pages} HTML pages and {walk.json} JSON answers walked, "
            f"{len(walk.leaks)} leak(s) found"
        )
        for leak in walk.leaks[:80]:
            print(f"  leak: {leak}")
    assert walk.leaks == []


def test_the_walk_finds_a_planted_leak() -> None:
    """The checker itself: a title on the page is found; the question's own words are not."""
    walk = Walk()
    needles = [Needle("case title", normalise("Tension pneumothorax after a stab wound"))]
    walk.check(
        "p", page_text("<h3>Tension  Pneumothorax after a\nstab&nbsp;wound</h3>"), needles, ""
    )
    walk.check("q", page_text('<img alt="Tension pneumothorax after a stab wound">'), needles, "")
    shown = "Tension pneumothorax after a stab wound: what next?"
    walk.check("r", page_text("<p>Tension pneumothorax after a stab wound</p>"), needles, shown)
    assert [leak.split(":")[0] for leak in walk.leaks] == ["p", "q"]
    assert json_text({"case": {"title": "Tension PNEUMOTHORAX after a stab-wound"}}) == (
        needles[0].text
    )
