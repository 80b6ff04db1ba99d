"""Fair options (issue 15 item 3): shuffled per attempt, stable on reload and across devices,
pinned options last, marked by option id, and "always pick the first" fails the shipped set."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app import PROJECT_ROOT, casefmt
from app.domain import CHOICE_KINDS, QuestionKind
from app.models import (
    Case,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    Institution,
    Question,
    QuestionOption,
    Role,
    User,
    Visibility,
)
from app.services.quizzes import attempts, authoring, reviews
from tests.conftest import AuthActions, csrf_token
from tests.quizdata import QuizSet, build_quiz_set

SHIPPED = sorted((PROJECT_ROOT / "cases").glob("*/quiz.yaml"))


@pytest.fixture
def people(
    create_user: Callable[..., User], create_institution: Callable[..., Institution]
) -> dict[str, User]:
    hospital = create_institution()
    return {
        "educator": create_user(Role.EDUCATOR, institution=hospital),
        "learner": create_user(Role.LEARNER, institution=hospital),
    }


@pytest.fixture
def qs(session: Session, create_case: Callable[..., Case], people: dict[str, User]) -> QuizSet:
    return build_quiz_set(session, create_case, people["educator"])


def _shown(client: FlaskClient, attempt_id: int, position: int) -> list[int]:
    """The option ids of the question at ``position`` in the order the page shows them."""
    page = client.get(f"/quiz/attempts/{attempt_id}?q={position}")
    assert page.status_code == 200
    return [int(v) for v in re.findall(r'name="option" value="(\d+)"', page.get_data(as_text=True))]


def _api(client: FlaskClient, method: str, path: str, body: Any = None) -> Any:
    token = csrf_token(client, "/")
    return client.open(path, method=method, json=body, headers={"X-CSRFToken": token})


def test_order_differs_between_attempts_and_is_stable_on_reload_and_devices(
    app: Flask, client: FlaskClient, auth: AuthActions, qs: QuizSet, people: dict[str, User],
    session: Session,
) -> None:
    learner = people["learner"]
    auth.login(learner.email)
    seen: set[tuple[int, ...]] = set()
    for _ in range(8):
        attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
        session.commit()
        first = _shown(client, attempt.id, 1)
        assert sorted(first) == sorted(o.id for o in qs.single.options)
        assert _shown(client, attempt.id, 1) == first  # reload
        other_device = app.test_client()
        AuthActions(other_device).login(learner.email)
        assert _shown(other_device, attempt.id, 1) == first
        api = _api(other_device, "GET", f"/api/attempts/{attempt.id}/next").get_json()
        assert [o["id"] for o in api["question"]["options"]] == first
        seen.add(tuple(first))
        attempts.finish_attempt(session, attempt.id, actor=learner)
        session.commit()
    # 3 options: 6 orders; eight attempts all alike would happen once in 6**7 runs.
    assert len(seen) > 1


def test_marking_uses_option_ids_not_positions(
    client: FlaskClient, auth: AuthActions, qs: QuizSet, people: dict[str, User],
    session: Session,
) -> None:
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "practice"}
    ).get_json()["id"]
    shown = _shown(client, attempt_id, 1)
    right = next(o.id for o in qs.single.options if o.correct)
    reply = _api(
        client,
        "POST",
        f"/api/attempts/{attempt_id}/answers",
        {"question_id": qs.single.id, "option_ids": [right]},
    ).get_json()
    assert reply["feedback"]["correct"]
    # The feedback lists the options in the order the learner saw them.
    assert [o["id"] for o in reply["feedback"]["options"]] == shown


def test_pinned_options_stay_last_in_attempts_and_review(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    educator, learner = people["educator"], people["learner"]
    saved = authoring.save_question(
        session,
        qs.case.slug,
        authoring.QuestionInput(
            kind=QuestionKind.SINGLE,
            stem="Which is not a sign of tension?",
            options=[
                ("Mediastinal shift", False, ""),
                ("None of the above", False, ""),
                ("Deep sulcus", False, ""),
                ("Pleural thickening", True, ""),
                ("All of the above", False, ""),
            ],
            pinned_last=frozenset({1, 4}),
        ),
        actor=educator,
    )
    session.commit()
    texts = {o.id: o.text for o in saved.options}
    for _ in range(6):
        attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
        shown = [texts[o.id] for o in attempts.shown_options(attempt, saved)]
        assert shown[-2:] == ["None of the above", "All of the above"]
        attempts.finish_attempt(session, attempt.id, actor=learner)  # unanswered: to review
        session.commit()
    item = reviews.get_review_item(session, saved.id, actor=learner)
    in_review = [texts[o.id] for o in reviews.review_options(item)]
    assert in_review[-2:] == ["None of the above", "All of the above"]
    assert [o.id for o in reviews.review_options(item)] == item.option_order  # stable


def test_editor_warns_when_correct_answers_cluster(
    client: FlaskClient, auth: AuthActions, qs: QuizSet, people: dict[str, User],
    session: Session,
) -> None:
    auth.login(people["educator"].email)
    page = client.get(f"/quiz/cases/{qs.case.slug}/questions").get_data(as_text=True)
    assert "data-position-warning" not in page  # one single-answer question: nothing to say
    for n in range(3):
        authoring.save_question(
            session,
            qs.case.slug,
            authoring.QuestionInput(
                kind=QuestionKind.SINGLE,
                stem=f"Question {n}?",
                options=[("Right", True, ""), ("Wrong", False, ""), ("Also wrong", False, "")],
            ),
            actor=people["educator"],
        )
    session.commit()
    page = client.get(f"/quiz/cases/{qs.case.slug}/questions").get_data(as_text=True)
    assert "4 of 4 single-answer questions have the correct option in position 1" in page
    assert "Chest emergencies" in page  # the set's warning too


def _shipped_set(session: Session, author: User) -> CaseSet:
    """The shipped cases' choice questions on cases of their own, in one published set."""
    case_set = CaseSet(
        slug="shipped-choice",
        title="Shipped choice questions",
        status=CaseStatus.PUBLISHED,
        visibility=Visibility.PUBLIC,
        institution_id=author.institution_id,
        created_by_id=author.id,
        passing_score=70,
    )
    for position, path in enumerate(SHIPPED):
        folder = casefmt.read_case_folder(path.parent)
        case = Case(
            slug=f"shipped-{folder.slug}",
            title=folder.meta.title,
            status=CaseStatus.PUBLISHED,
            visibility=Visibility.PUBLIC,
            institution_id=author.institution_id,
        )
        session.add(case)
        session.flush()
        for index, q in enumerate(x for x in folder.questions if x.type in CHOICE_KINDS):
            row = Question(case_id=case.id, position=index, kind=q.type, stem=q.stem)
            row.options = [
                QuestionOption(position=i, text=o.text, correct=o.correct)
                for i, o in enumerate(q.options)
            ]
            session.add(row)
        case_set.items.append(CaseSetItem(case_id=case.id, position=position))
    session.add(case_set)
    session.commit()
    return case_set


def test_always_picking_the_first_option_fails_the_shipped_questions(
    session: Session, people: dict[str, User]
) -> None:
    questions = [q for p in SHIPPED for q in casefmt.read_case_folder(p.parent).questions]
    singles = [q for q in questions if q.type == QuestionKind.SINGLE]
    # As written: the correct option is first in at most a third of them, nowhere in most.
    assert sum(q.options[0].correct for q in singles) <= len(singles) / 3
    # As shown: a learner who always picks the first option shown fails the exam.
    case_set = _shipped_set(session, people["educator"])
    learner = people["learner"]
    attempt = attempts.start_attempt(session, case_set.slug, actor=learner, mode="exam")
    asked = attempts.attempt_questions(session, attempt)
    assert len(asked) >= 14
    for question in asked:
        first = attempts.shown_options(attempt, question)[0]
        attempts.answer_question(
            session, attempt.id, question.id, {"option_ids": [first.id]}, actor=learner
        )
    finished = attempts.finish_attempt(session, attempt.id, actor=learner)
    # Chance alone: about a quarter right, far below the 70 % pass mark.
    assert not finished.passed
