"""Quiz and credit services: scoring of every type, attempts, resume, limits, re-scoring,
revocation, and that exam mode never hands out a right answer before the end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, Invalid, NotFound
from app.models import (
    Answer,
    Attempt,
    AuditEvent,
    Case,
    Certificate,
    Institution,
    Question,
    ReviewItem,
    Role,
    User,
    Visibility,
)
from app.search.synonyms import SynonymTable
from app.services import credit, images
from app.services.quizzes import (
    attempts,
    authoring,
    feedback,
    marking,
    reviews,
    stacks,
    statistics,
    unknowns,
)
from tests.quizdata import QuizSet, build_quiz_set

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
TODAY = NOW.date()
EVALUATION = {"met": "5", "bias": "Yes", "comments": ""}


@pytest.fixture
def people(
    create_user: Callable[..., User], create_institution: Callable[..., Institution]
) -> dict[str, User]:
    hospital = create_institution()
    return {
        "educator": create_user(Role.EDUCATOR, institution=hospital),
        "learner": create_user(Role.LEARNER, institution=hospital),
        "other": create_user(Role.LEARNER),
    }


@pytest.fixture
def qs(session: Session, create_case: Callable[..., Case], people: dict[str, User]) -> QuizSet:
    return build_quiz_set(session, create_case, people["educator"])


def _answer_all(
    session: Session, attempt: Attempt, qs: QuizSet, user: User, wrong: tuple[int, ...] = ()
) -> None:
    right = qs.right_answers()
    for qid in attempt.question_ids:
        response = right[qid]
        if qid in wrong:
            response = (
                {"option_ids": [qs.single.options[1].id]}
                if qid == qs.single.id
                else ({"text": "pleural effusion"})
            )
        attempts.answer_question(session, attempt.id, qid, response, actor=user, now=NOW)


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize(
    ("given", "matched"),
    [
        ("Pneumothorax", "pneumothorax"),
        ("  TENSION   pneumothorax ", "tension pneumothorax"),
        ("pneumothorax tension", "tension pneumothorax"),  # word order
        ("PTX", "pneumothorax"),  # abbreviation from the synonym table
        ("tension PTX", "tension pneumothorax"),
        ("pnuemothorax", "pneumothorax"),  # transposition
        ("pneumothorx", "pneumothorax"),  # one letter missing
        ("Pneumothôrax", "pneumothorax"),  # accents
        ("pleural effusion", None),
        ("pneumonia", None),
        ("", None),
    ],
)
def test_free_text_matching(given: str, matched: str | None) -> None:
    assert marking.match_free_text(given, ["tension pneumothorax", "pneumothorax"]) == matched


def test_free_text_short_answers_need_exact_match() -> None:
    # Abbreviations one letter apart mean different things: no typo tolerance below 5 letters.
    assert marking.match_free_text("SDH", ["SAH"]) is None
    assert marking.match_free_text("subarachnoid hemorrhage", ["SAH"]) == "SAH"
    table = SynonymTable.from_groups([["ptx", "pneumothorax"]])
    assert marking.match_free_text("ptx", ["pneumothorax"], table) == "pneumothorax"


def test_free_text_marking_reads_the_case_diagnosis(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    # Restating the case's own diagnosis adds nothing; words from elsewhere still count.
    learner = people["learner"]
    qs.freetext.case.diagnosis = "Right pneumothorax after a stab wound"
    session.flush()
    attempt = attempts.start_attempt(
        session, qs.case_set.slug, actor=learner, mode="practice", now=NOW
    )
    answer = attempts.answer_question(
        session,
        attempt.id,
        qs.freetext.id,
        {"text": "pneumothorax after a stab wound"},
        actor=learner,
        now=NOW,
    )
    assert answer.correct and answer.matched == "pneumothorax"
    assert not marking.mark(qs.freetext, {"text": "pneumothorax after a gunshot wound"}).correct
    qs.freetext.case.diagnosis = ""
    assert not marking.mark(qs.freetext, {"text": "pneumothorax after a stab wound"}).correct


def test_scoring_single_multiple_hotspot(session: Session, qs: QuizSet) -> None:
    single_right = [o.id for o in qs.single.options if o.correct]
    assert marking.mark(qs.single, {"option_ids": single_right}).correct
    assert not marking.mark(qs.single, {"option_ids": [qs.single.options[1].id]}).correct
    both = [o.id for o in qs.multiple.options if o.correct]
    # Multiple response is all-or-nothing.
    assert marking.mark(qs.multiple, {"option_ids": both}).correct
    assert not marking.mark(qs.multiple, {"option_ids": both[:1]}).correct
    assert not marking.mark(
        qs.multiple, {"option_ids": [o.id for o in qs.multiple.options]}
    ).correct

    def click(frame: int, x: float, y: float) -> bool:
        raw = {"series_uid": qs.series_uid, "frame": frame, "x": x, "y": y}
        return marking.mark(qs.hotspot, marking.clean_response(session, qs.hotspot, raw)).correct

    assert click(2, 30, 20) and click(3, 39, 20) and click(2, 30, 27.5)
    assert not click(1, 30, 20)  # outside the frame range
    assert not click(2, 41, 20)  # outside the ellipse
    polygon = dict(qs.hotspot.hotspot or {})
    polygon["region"] = {"shape": "polygon", "points": [[10, 10], [50, 10], [50, 40]]}
    qs.hotspot.hotspot = polygon
    assert click(2, 45, 15) and not click(2, 15, 35)


@pytest.mark.parametrize(
    "raw",
    [
        {"frame": 2, "x": 128, "y": 10},  # one past the last column
        {"frame": 2, "x": -1, "y": 10},
        {"frame": 2, "x": 10, "y": 500},
        {"frame": 4, "x": 10, "y": 10},  # the stack has 3 images
        {"frame": 0, "x": 10, "y": 10},
        {"frame": 2, "x": "nan", "y": 10},
        {"frame": 2, "x": 10, "y": 10, "series_uid": "1.2.3"},  # not this case's series
    ],
)
def test_hotspot_click_outside_image_refused(session: Session, qs: QuizSet, raw: dict) -> None:
    raw = {"series_uid": qs.series_uid, **raw}
    assert qs.image.columns == 128 and qs.image.rows == 128
    with pytest.raises(Invalid):
        marking.clean_response(session, qs.hotspot, raw)


def test_viewer_stack_numbers_images_as_the_scoring_does(
    app: Flask, session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    """The viewer sends the image number it counts from the series' metadata (instances in
    order, each one's frames); the server scores it against series_stack. They must agree,
    with multi-frame instances and positions that are not the order of arrival."""
    series = qs.case.studies[0].study.series[0]
    first, second, third = series.instances
    second.number_of_frames = 3
    first.position, second.position, third.position = 30.0, 10.0, 20.0
    session.commit()
    session.expire_all()
    series = qs.case.studies[0].study.series[0]
    config = images.make_config(app.config["DATA_DIR"], 10_000_000)
    meta = images.series_metadata(
        session,
        config,
        series.study.study_instance_uid,
        series.series_instance_uid,
        actor=people["learner"],
    ).data
    # static/js/viewer.js, Viewer.load(): the same expansion.
    viewer = [
        (item["uid"], f)
        for item in meta["instances"]
        for f in range(1, max(1, item.get("frames") or 1) + 1)
    ]
    stack = [(s.instance.sop_instance_uid, s.frame) for s in stacks.series_stack(session, series)]
    assert viewer == stack and len(stack) == 5
    assert stack[0] == (second.sop_instance_uid, 1) and stack[3] == (third.sop_instance_uid, 1)
    # The viewer's first image and counter (the HTML before the script) agree too.
    setup = images.viewer_setup(session, series.study, actor=people["learner"], start=(third.id, 1))
    assert setup is not None and setup.first_index == 3 and setup.series[0].count == 5


def test_question_viewer_opens_on_the_series_and_the_learners_click(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    view = stacks.question_viewer(session, qs.hotspot, None, actor=learner)
    assert view is not None and view.series_uid == qs.series_uid
    assert view.study.id == qs.case.studies[0].study_id
    assert view.picked is None and view.start is None
    clicked = {"series_uid": qs.series_uid, "frame": 2, "x": 30.5, "y": 20.0}
    view = stacks.question_viewer(session, qs.hotspot, clicked, actor=learner)
    second = stacks.series_stack(session, qs.case.studies[0].study.series[0])[1]
    assert view is not None and view.picked == {"frame": 2, "x": 30.5, "y": 20.0}
    assert view.start == (second.instance.id, 1)
    # Nothing of the region or the frame range before feedback; both with it.
    assert "region" not in repr(view) and "frames" not in repr(view)
    shown = stacks.question_viewer(session, qs.hotspot, None, actor=learner, with_target=True)
    assert shown is not None and shown.target is not None
    assert shown.target["frames"] == [2, 3] and shown.start == (second.instance.id, 1)
    # Every other kind of question has the viewer too, on the case's series.
    single = stacks.question_viewer(session, qs.single, None, actor=learner)
    assert single is not None and single.series_uid == qs.series_uid and single.target is None
    # A series not in the case, or a study the actor may not see: no viewer (not a 404).
    elsewhere = Question(case=qs.case, kind="hotspot", stem="?", hotspot={"series_uid": "1.2"})
    assert stacks.question_viewer(session, elsewhere, None, actor=learner) is None
    qs.case.visibility = Visibility.PRIVATE
    session.flush()
    assert stacks.question_viewer(session, qs.hotspot, None, actor=people["other"]) is None


# --------------------------------------------------------------------------- attempts


def test_exam_attempt_scores_at_the_end_and_reviews_misses(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam", now=NOW)
    assert attempt.question_ids == [qs.single.id, qs.multiple.id, qs.freetext.id, qs.hotspot.id]
    _answer_all(session, attempt, qs, learner, wrong=(qs.freetext.id,))
    # Nothing goes to review before the end in exam mode (that would leak the mark).
    assert session.scalar(select(func.count(ReviewItem.id))) == 0
    assert not attempts.feedback_allowed(attempt, qs.single.id)
    attempts.finish_attempt(session, attempt.id, actor=learner, now=NOW)
    session.commit()
    assert (attempt.score, attempt.passed, attempt.correct_count) == (75.0, True, 3)
    items = session.scalars(select(ReviewItem)).all()
    assert [(i.question_id, i.due_on) for i in items] == [
        (qs.freetext.id, TODAY + timedelta(days=1))
    ]
    result = attempts.attempt_result(session, attempt.id, actor=learner)
    assert [r["feedback"]["correct"] for r in result["review"]] == [True, True, False, True]


def test_exam_mode_never_reveals_answers_before_the_end(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    _answer_all(session, attempt, qs, learner)
    result = attempts.attempt_result(session, attempt.id, actor=learner)
    text = json.dumps(result)
    for secret in (
        "correct",
        "explanation",
        "accepted",
        "region",
        "frames",
        "teaching_point",
        'score": 100',
    ):
        assert secret not in text, secret
    public = json.dumps(
        [feedback.public_question(q) for q in attempts.attempt_questions(session, attempt)]
    )
    assert "correct" not in public and "region" not in public and "accepted" not in public


def test_practice_feedback_after_each_answer(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    attempt = attempts.start_attempt(
        session, qs.case_set.slug, actor=learner, mode="practice", now=NOW
    )
    assert not attempts.feedback_allowed(attempt, qs.freetext.id)
    answer = attempts.answer_question(
        session, attempt.id, qs.freetext.id, {"text": "ptx"}, actor=learner, now=NOW
    )
    assert answer.correct and answer.matched == "pneumothorax"
    assert attempts.feedback_allowed(attempt, qs.freetext.id)
    assert feedback.feedback(qs.freetext, answer)["matched"] == "pneumothorax"
    # Practice: the first answer counts once its feedback was shown.
    with pytest.raises(Conflict):
        attempts.answer_question(session, attempt.id, qs.freetext.id, {"text": "x"}, actor=learner)
    attempts.answer_question(
        session,
        attempt.id,
        qs.single.id,
        {"option_ids": [qs.single.options[2].id]},
        actor=learner,
        now=NOW,
    )
    assert session.scalars(select(ReviewItem.question_id)).all() == [qs.single.id]


def test_resume_after_dropped_connection(
    app: Any, session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    """Each answer is committed on its own; a new session (another device) sees them all and
    picks up at the first unanswered question; starting again resumes the same attempt."""
    from app.db import get_db

    learner = people["learner"]
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    session.commit()
    attempts.answer_question(
        session, attempt.id, qs.single.id, qs.right_answers()[qs.single.id], actor=learner
    )
    session.commit()
    # The link drops while the second answer is on its way: that transaction never commits.
    attempts.answer_question(
        session, attempt.id, qs.multiple.id, qs.right_answers()[qs.multiple.id], actor=learner
    )
    session.rollback()
    with get_db(app).sessionmaker() as other_device:
        me = other_device.get(User, learner.id)
        assert me is not None
        again = attempts.start_attempt(other_device, qs.case_set.slug, actor=me, mode="exam")
        assert again.id == attempt.id
        assert [a.question_id for a in again.answers] == [qs.single.id]
        following = attempts.next_question(other_device, again)
        assert following is not None and following.id == qs.multiple.id
        with pytest.raises(Conflict):  # another mode while one is open
            attempts.start_attempt(other_device, qs.case_set.slug, actor=me, mode="practice")


def test_attempt_limit(
    session: Session, create_case: Callable[..., Case], people: dict[str, User]
) -> None:
    qs = build_quiz_set(session, create_case, people["educator"], max_attempts=2)
    learner = people["learner"]
    for _ in range(2):
        attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
        attempts.finish_attempt(session, attempt.id, actor=learner)
    session.commit()
    assert attempts.attempts_left(session, qs.case_set, actor=learner) == 0
    with pytest.raises(Conflict, match="all 2 exam attempts"):
        attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    assert session.scalar(select(func.count(Attempt.id))) == 2
    # Practice is unlimited and never uses up an exam attempt (issue 15).
    for _ in range(3):
        practice = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="practice")
        attempts.finish_attempt(session, practice.id, actor=learner)
    assert attempts.attempts_left(session, qs.case_set, actor=learner) == 0


def test_bad_answers_change_nothing(
    session: Session,
    qs: QuizSet,
    people: dict[str, User],
    create_case: Callable[..., Case],
) -> None:
    learner, other = people["learner"], people["other"]
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    session.commit()
    stray = build_quiz_set(session, create_case, people["educator"], slug="other-set")
    with pytest.raises(Invalid):  # a question of another set
        attempts.answer_question(
            session,
            attempt.id,
            stray.single.id,
            {"option_ids": [stray.single.options[0].id]},
            actor=learner,
        )
    with pytest.raises(Invalid):  # a forged option id (another question's)
        attempts.answer_question(
            session,
            attempt.id,
            qs.single.id,
            {"option_ids": [qs.multiple.options[0].id]},
            actor=learner,
        )
    with pytest.raises(Invalid):  # two options on a single-answer question
        attempts.answer_question(
            session,
            attempt.id,
            qs.single.id,
            {"option_ids": [o.id for o in qs.single.options[:2]]},
            actor=learner,
        )
    with pytest.raises(Invalid):
        attempts.answer_question(
            session, attempt.id, qs.single.id, {"option_ids": ["1 OR 1"]}, actor=learner
        )
    with pytest.raises(NotFound):  # somebody else's attempt
        attempts.answer_question(
            session, attempt.id, qs.single.id, qs.right_answers()[qs.single.id], actor=other
        )
    attempts.finish_attempt(session, attempt.id, actor=learner)
    session.commit()
    with pytest.raises(Conflict):  # after the end
        attempts.answer_question(
            session, attempt.id, qs.single.id, qs.right_answers()[qs.single.id], actor=learner
        )
    with pytest.raises(Conflict):
        attempts.finish_attempt(session, attempt.id, actor=learner)
    session.rollback()
    assert session.scalar(select(func.count(Answer.id))) == 0


# --------------------------------------------------------------------------- unknown cases


def test_unknown_reveal_goes_step_by_step_and_waits_for_an_open_exam(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    visitor: dict[str, int] = {}
    assert unknowns.view(session, qs.case, actor=None, visitor_steps=visitor).sections == [
        "history"
    ]
    with pytest.raises(Invalid):
        unknowns.reveal(session, qs.case, 2, actor=None, visitor_steps=visitor)
    assert unknowns.reveal(session, qs.case, 1, actor=None, visitor_steps=visitor) == 1
    assert visitor == {str(qs.case.id): 1}
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    # an open exam on the case keeps every step past the history back (the findings name
    # the signs its questions ask for)
    with pytest.raises(Conflict):
        unknowns.reveal(session, qs.case, 1, actor=learner, visitor_steps={})
    attempts.finish_attempt(session, attempt.id, actor=learner)
    assert unknowns.reveal(session, qs.case, 1, actor=learner, visitor_steps={}) == 1
    assert unknowns.reveal(session, qs.case, 2, actor=learner, visitor_steps={}) == 2
    shown = unknowns.view(session, qs.case, actor=learner, visitor_steps={})
    assert shown.diagnosis_revealed and "diagnosis_text" in shown.sections


# --------------------------------------------------------------------------- review queue


def test_review_intervals_grow_and_reset(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="practice")
    attempts.answer_question(
        session, attempt.id, qs.freetext.id, {"text": "effusion"}, actor=learner, now=NOW
    )
    assert reviews.due_reviews(session, actor=learner, today=TODAY) == []
    day = TODAY + timedelta(days=1)
    assert [i.question_id for i in reviews.due_reviews(session, actor=learner, today=day)] == [
        qs.freetext.id
    ]
    with pytest.raises(Conflict):  # not due yet
        reviews.answer_review(session, qs.freetext.id, {"text": "ptx"}, actor=learner, today=TODAY)
    intervals = []
    for _ in range(3):
        item, marked, shown = reviews.answer_review(
            session, qs.freetext.id, {"text": "PTX"}, actor=learner, today=day
        )
        assert marked.correct and shown["matched"] == "pneumothorax"
        intervals.append(item.interval_days)
        day = item.due_on
    assert intervals == [3, 7, 16]
    item, marked, _ = reviews.answer_review(
        session, qs.freetext.id, {"text": "no idea"}, actor=learner, today=day
    )
    assert not marked.correct and item.interval_days == 1 and item.lapses == 2
    with pytest.raises(NotFound):
        reviews.answer_review(session, qs.single.id, {"option_ids": []}, actor=learner, today=day)


# --------------------------------------------------------------------------- statistics


def test_statistics_and_rescoring(
    session: Session,
    qs: QuizSet,
    people: dict[str, User],
    create_user: Callable[..., User],
) -> None:
    learner = people["learner"]
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    right = qs.right_answers()
    attempts.answer_question(session, attempt.id, qs.single.id, right[qs.single.id], actor=learner)
    attempts.answer_question(
        session,
        attempt.id,
        qs.multiple.id,
        {"option_ids": [qs.multiple.options[2].id]},
        actor=learner,
    )
    attempts.answer_question(
        session, attempt.id, qs.freetext.id, {"text": "collapsed lung"}, actor=learner
    )
    attempts.answer_question(
        session, attempt.id, qs.hotspot.id, right[qs.hotspot.id], actor=learner
    )
    attempts.finish_attempt(session, attempt.id, actor=learner, now=NOW)
    session.commit()
    assert attempt.score == 50.0 and not attempt.passed
    with pytest.raises(Forbidden):  # a learner may not see the statistics
        statistics.set_statistics(session, qs.case_set.slug, actor=learner)
    stats = statistics.set_statistics(session, qs.case_set.slug, actor=people["educator"])
    assert (stats.attempts, stats.finished, stats.mean_score) == (1, 1, 50.0)
    by_id = {s.question.id: s for s in stats.questions}
    assert by_id[qs.single.id].difficulty == 1.0
    assert by_id[qs.multiple.id].difficulty == 0.0
    assert [n for _, n in by_id[qs.multiple.id].option_counts] == [0, 0, 1]
    assert by_id[qs.freetext.id].unmatched == [("collapsed lung", 1)]

    with pytest.raises(Forbidden):
        authoring.add_accepted_answer(session, qs.freetext.id, "collapsed lung", actor=learner)
    changed = authoring.add_accepted_answer(
        session, qs.freetext.id, "collapsed lung", actor=people["educator"]
    )
    session.commit()
    session.refresh(attempt)
    assert changed == 1 and attempt.score == 75.0 and attempt.passed
    answer = session.scalars(select(Answer).where(Answer.question_id == qs.freetext.id)).one()
    assert answer.correct and answer.matched == "collapsed lung"
    with pytest.raises(Conflict):
        authoring.add_accepted_answer(
            session, qs.freetext.id, "Collapsed  Lung", actor=people["educator"]
        )
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "quiz.accepted_answer_added"
            )
        )
        == 1
    )


# --------------------------------------------------------------------------- credit

ISSUER = credit.Issuer("Teachfile test provider", "Accredited for testing.", "CE hours")


def _passed_attempt(session: Session, qs: QuizSet, learner: User) -> Attempt:
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    _answer_all(session, attempt, qs, learner)
    attempts.finish_attempt(session, attempt.id, actor=learner, now=NOW)
    session.commit()
    return attempt


def test_claim_credit_revoke_and_verify(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner, educator = people["learner"], people["educator"]
    attempt = _passed_attempt(session, qs, learner)
    with pytest.raises(Invalid, match="Objectives met"):
        credit.claim_credit(
            session,
            attempt.id,
            actor=learner,
            evaluation={"bias": "Yes"},
            hours=1,
            attested=True,
            issuer=ISSUER,
            now=NOW,
        )
    with pytest.raises(Invalid, match="Attest"):
        credit.claim_credit(
            session,
            attempt.id,
            actor=learner,
            evaluation=EVALUATION,
            hours=1,
            attested=False,
            issuer=ISSUER,
            now=NOW,
        )
    with pytest.raises(Invalid, match="hours"):
        credit.claim_credit(
            session,
            attempt.id,
            actor=learner,
            evaluation=EVALUATION,
            hours="-1",
            attested=True,
            issuer=ISSUER,
            now=NOW,
        )
    session.rollback()
    assert session.scalar(select(func.count(Certificate.id))) == 0
    cert = credit.claim_credit(
        session,
        attempt.id,
        actor=learner,
        evaluation=EVALUATION,
        hours="5",
        attested=True,
        issuer=ISSUER,
        now=NOW,
    )
    session.commit()
    assert cert.hours == 2.0  # capped at the set's credit hours
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", cert.token)
    with pytest.raises(Conflict):
        credit.claim_credit(
            session,
            attempt.id,
            actor=learner,
            evaluation=EVALUATION,
            hours=1,
            attested=True,
            issuer=ISSUER,
            now=NOW,
        )
    check = credit.verify_certificate(session, cert.token)
    assert check.valid and check.as_json() == {
        "status": "valid",
        "valid": True,
        "name": "Test User",
        "activity": "Chest emergencies",
        "date": "2026-11-23",
        "hours": 2.0,
        "credit_type": "CE hours",
        "provider": "Teachfile test provider",
        "accreditation_statement": "Accredited for testing.",
        "revoked_on": None,
    }
    for tampered in (cert.token[:-1] + ("A" if cert.token[-1] != "A" else "B"), "x", "../etc"):
        with pytest.raises(NotFound):
            credit.verify_certificate(session, tampered)
    with pytest.raises(NotFound):  # only the set's educators and admins revoke
        credit.revoke_certificate(session, cert.token, actor=people["other"], reason="x")
    with pytest.raises(Forbidden_or_NotFound):
        credit.revoke_certificate(session, cert.token, actor=learner, reason="x")
    credit.revoke_certificate(session, cert.token, actor=educator, reason="Shared answers")
    session.commit()
    assert not credit.verify_certificate(session, cert.token).valid
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "credit.certificate_revoked"
            )
        )
        == 1
    )
    pdf = credit.certificate_pdf(cert, "https://example.org/verify/" + cert.token)
    _check_pdf(pdf)
    assert b"REVOKED" in pdf and b"Chest emergencies" in pdf
    rows = credit.transcript_csv(credit.transcript(session, actor=learner), {}).splitlines()
    assert rows[0].startswith("completed_on,activity") and "revoked" in rows[1]


Forbidden_or_NotFound = (NotFound, Forbidden)


def _check_pdf(pdf: bytes) -> None:
    """The xref table points at each object (a reader would open it)."""
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    start = int(pdf.rsplit(b"startxref", 1)[1].split()[0])
    lines = pdf[start:].split(b"\n")
    count = int(lines[1].split()[1])
    for number in range(1, count):
        offset = int(lines[2 + number].split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)


def test_claiming_credit_without_passing_or_outside_dates(
    session: Session, create_case: Callable[..., Case], people: dict[str, User]
) -> None:
    learner = people["learner"]
    qs = build_quiz_set(session, create_case, people["educator"])
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam")
    attempts.finish_attempt(session, attempt.id, actor=learner, now=NOW)
    with pytest.raises(Invalid, match="at least 75%"):
        credit.claim_credit(
            session,
            attempt.id,
            actor=learner,
            evaluation=EVALUATION,
            hours=1,
            attested=True,
            issuer=ISSUER,
            now=NOW,
        )
    passed = _passed_attempt(session, qs, learner)
    late = datetime(2030, 1, 5, tzinfo=UTC)
    with pytest.raises(Invalid, match="expired"):
        credit.claim_credit(
            session,
            passed.id,
            actor=learner,
            evaluation=EVALUATION,
            hours=1,
            attested=True,
            issuer=ISSUER,
            now=late,
        )
    with pytest.raises(NotFound):
        credit.claim_credit(
            session,
            passed.id,
            actor=people["other"],
            evaluation=EVALUATION,
            hours=1,
            attested=True,
            issuer=ISSUER,
            now=NOW,
        )
    assert session.scalar(select(func.count(Certificate.id))) == 0
    assert credit.credit_status(session, passed, today=date(2026, 11, 23)).eligible


def test_default_evaluation_when_none_defined(session: Session, qs: QuizSet) -> None:
    qs.case_set.evaluation = []
    form = credit.evaluation_form(qs.case_set)
    assert [i.id for i in form] == ["objectives", "practice", "bias", "comments"]
    qs.case_set.evaluation = [{"prompt": 3}, "junk", {"prompt": "Pick", "kind": "choice"}]
    assert next(i.id for i in credit.evaluation_form(qs.case_set)) == "objectives"


# --------------------------------------------------------------------------- authoring


def test_author_questions(session: Session, qs: QuizSet, people: dict[str, User]) -> None:
    educator = people["educator"]
    made = authoring.save_question(
        session,
        qs.case.slug,
        authoring.QuestionInput(
            kind="hotspot",
            stem="Click it",
            series_uid=qs.series_uid,
            frames=(1, 2),
            region={"shape": "polygon", "points": [["1", "1"], [9, 1], [9, 9]]},
        ),
        actor=educator,
    )
    assert made.hotspot == {
        "series_uid": qs.series_uid,
        "frames": [1, 2],
        "region": {"shape": "polygon", "points": [[1.0, 1.0], [9.0, 1.0], [9.0, 9.0]]},
    }
    with pytest.raises(Invalid, match="within 1-3"):
        authoring.save_question(
            session,
            qs.case.slug,
            authoring.QuestionInput(
                kind="hotspot",
                stem="x",
                series_uid=qs.series_uid,
                frames=(2, 9),
                region={"shape": "ellipse", "cx": 1, "cy": 1, "rx": 1, "ry": 1},
            ),
            actor=educator,
        )
    with pytest.raises(Invalid, match="exactly one"):
        authoring.save_question(
            session,
            qs.case.slug,
            authoring.QuestionInput(
                kind="single", stem="x", options=[("a", True, ""), ("b", True, "")]
            ),
            actor=educator,
        )
    with pytest.raises(Forbidden):
        authoring.save_question(
            session,
            qs.case.slug,
            authoring.QuestionInput(kind="freetext", stem="x", accepted=["a"]),
            actor=people["learner"],
        )
    # An answered question keeps its options' ids and cannot be deleted.
    attempt = attempts.start_attempt(
        session, qs.case_set.slug, actor=people["learner"], mode="exam"
    )
    attempts.answer_question(
        session, attempt.id, qs.single.id, qs.right_answers()[qs.single.id], actor=people["learner"]
    )
    ids = [o.id for o in qs.single.options]
    authoring.save_question(
        session,
        qs.case.slug,
        authoring.QuestionInput(
            kind="single",
            stem="Edited",
            options=[("A", False, ""), ("B", True, ""), ("C", False, "")],
        ),
        actor=educator,
        question_id=qs.single.id,
    )
    assert [o.id for o in qs.single.options] == ids
    assert not session.scalars(select(Answer)).one().correct  # re-scored to the new key
    with pytest.raises(Conflict):
        authoring.delete_question(session, qs.case.slug, qs.single.id, actor=educator)
    authoring.delete_question(session, qs.case.slug, made.id, actor=educator)
