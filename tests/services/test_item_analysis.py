"""Item analysis (issue 15, item 7) on a constructed set of attempts with known answers:
facility, the exact point-biserial discrimination, distractor counts, completion, and
the stats page's server-drawn charts and heat map (escaped, no script)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app import charts
from app.errors import Forbidden
from app.models import (
    Answer,
    Attempt,
    AttemptMode,
    AttemptStatus,
    Case,
    Institution,
    Role,
    User,
)
from app.services.quizzes import item_analysis
from app.services.quizzes.item_analysis import point_biserial
from tests.conftest import AuthActions
from tests.quizdata import QuizSet, build_quiz_set

WHEN = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)

# Right (1), wrong (0) or unanswered (None) per question, four finished attempts:
#              single multiple freetext hotspot  -> total right
PATTERNS = [
    (1, 1, 1, 1),  # 4
    (1, 0, 1, 0),  # 2
    (0, 1, 0, 0),  # 1
    (0, 0, None, 1),  # 1
]


def test_point_biserial_matches_the_textbook_formula() -> None:
    item, rest = [1, 1, 0, 0], [3, 1, 1, 1]
    # r_pb = (M1 - M0) / s_n * sqrt(p q): M1 = 2, M0 = 1, s_n = sqrt(0.75), p = q = 0.5
    assert point_biserial(item, rest) == pytest.approx((2 - 1) / math.sqrt(0.75) * 0.5)
    assert point_biserial(item, rest) == pytest.approx(1 / math.sqrt(3))
    assert point_biserial([1, 1, 1], [0, 1, 2]) is None  # everyone right: undefined
    assert point_biserial([1, 0], [2, 2]) is None
    assert point_biserial([1], [1]) is None


@pytest.fixture
def world(
    session: Session,
    create_case: Callable[..., Case],
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> tuple[QuizSet, User]:
    hospital = create_institution()
    educator = create_user(Role.EDUCATOR, institution=hospital)
    qs = build_quiz_set(session, create_case, educator)
    qs.single.options[1].text = "<b>Bulla</b> & co"
    order = [qs.single, qs.multiple, qs.freetext, qs.hotspot]
    right = qs.right_answers()
    wrong: dict[int, dict[str, Any]] = {
        qs.single.id: {"option_ids": [qs.single.options[1].id]},
        qs.multiple.id: {"option_ids": [qs.multiple.options[0].id]},
        qs.freetext.id: {"text": "pleural effusion"},
        qs.hotspot.id: {"series_uid": qs.series_uid, "frame": 2, "x": 2.0, "y": 3.0},
    }
    for pattern in PATTERNS:
        learner = create_user(Role.LEARNER, institution=hospital)
        attempt = Attempt(
            user_id=learner.id,
            set_id=qs.case_set.id,
            number=1,
            mode=AttemptMode.EXAM,
            status=AttemptStatus.FINISHED,
            question_ids=[q.id for q in order],
            total=4,
            correct_count=sum(x or 0 for x in pattern),
            score=100.0 * sum(x or 0 for x in pattern) / 4,
            passed=sum(x or 0 for x in pattern) >= 3,
            started_at=WHEN,
            finished_at=WHEN,
        )
        for question, outcome in zip(order, pattern, strict=True):
            if outcome is None:
                continue
            response = right[question.id] if outcome else wrong[question.id]
            attempt.answers.append(
                Answer(question_id=question.id, response=response, correct=bool(outcome))
            )
        session.add(attempt)
    still_open = create_user(Role.LEARNER, institution=hospital)
    session.add(
        Attempt(
            user_id=still_open.id,
            set_id=qs.case_set.id,
            number=1,
            mode=AttemptMode.EXAM,
            status=AttemptStatus.OPEN,
            question_ids=[q.id for q in order],
            total=4,
        )
    )
    session.commit()
    return qs, educator


def test_item_figures_on_known_attempts(session: Session, world: tuple[QuizSet, User]) -> None:
    qs, educator = world
    analysis = item_analysis.analyse_set(session, qs.case_set.slug, actor=educator)
    assert (analysis.started, analysis.finished, analysis.passed) == (5, 4, 1)
    assert analysis.completion == pytest.approx(0.8)
    assert sorted(analysis.scores) == [25.0, 25.0, 50.0, 100.0]
    single, multiple, freetext, hotspot = analysis.items
    # single: item [1, 1, 0, 0] against the rest of each attempt [3, 1, 1, 1]
    assert single.facility == 0.5 and single.attempts == 4
    assert single.discrimination == pytest.approx(1 / math.sqrt(3), abs=1e-12)
    # multiple: item [1, 0, 1, 0], rest [3, 2, 0, 1]: deviations cancel, r = 0 exactly
    assert multiple.facility == 0.5
    assert multiple.discrimination == pytest.approx(0.0, abs=1e-12)
    # freetext: unanswered in attempt 4 scores 0; item [1, 1, 0, 0], rest [3, 1, 1, 1]
    assert freetext.facility == 0.5 and freetext.answered == 3
    assert freetext.discrimination == pytest.approx(1 / math.sqrt(3), abs=1e-12)
    assert freetext.distractors == [("Right", 2, True), ("Wrong", 1, False)]
    # hotspot: item [1, 0, 0, 1], rest [3, 2, 1, 0] -> r = 0
    assert hotspot.discrimination == pytest.approx(0.0, abs=1e-12)
    assert [(t, n) for t, n, _ in single.distractors] == [
        ("Pneumothorax", 2),
        ("<b>Bulla</b> & co", 2),
        ("Skin fold", 0),
    ]
    assert hotspot.heat_map is not None
    assert (hotspot.heat_map.on_image, hotspot.heat_map.elsewhere) == (4, 0)
    assert hotspot.heat_map.svg.count("<circle") == 4
    assert "low discrimination" in hotspot.flags


def test_only_the_sets_educators_see_the_analysis(
    session: Session, world: tuple[QuizSet, User], create_user: Callable[..., User]
) -> None:
    qs, _ = world
    with pytest.raises(Forbidden):
        item_analysis.analyse_set(session, qs.case_set.slug, actor=create_user(Role.EDUCATOR))


def test_stats_page_draws_charts_and_heat_map_without_script(
    client: FlaskClient, auth: AuthActions, world: tuple[QuizSet, User]
) -> None:
    qs, educator = world
    auth.login(educator.email)
    response = client.get(f"/sets/{qs.case_set.slug}/quiz/stats")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<script" not in page.split("</main>")[0].split("<main")[1]
    assert "data-completion>80%" in page
    assert page.count('data-chart="answers"') == 4 and 'data-chart="scores"' in page
    assert page.count('data-chart="heat-map"') == 1
    figures = re.findall(r"data-discrimination>([^<]*)<", page)
    assert figures == ["0.577", "0.000", "0.577", "0.000"]
    assert "&lt;b&gt;Bulla&lt;/b&gt; &amp; co" in page and "<b>Bulla</b>" not in page
    assert " style=" not in "".join(re.findall(r"<svg.*?</svg>", page, flags=re.S))
    frame = re.search(r'<img src="(/images/studies/[^"]+/rendered)"', page)
    assert frame and client.get(frame.group(1)).status_code == 200


def test_histogram_counts_every_score_in_its_bin() -> None:
    svg = charts.histogram([0, 9.9, 10, 100, 100], title="t", bins=10)
    counts = [int(n) for n in re.findall(r": (\d+)</title></rect>", svg)]
    assert counts == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2]
