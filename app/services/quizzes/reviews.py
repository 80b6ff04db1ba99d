"""The spaced-repetition review queue of missed questions (a Leitner ladder)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, NotFound
from app.models import (
    Answer,
    Attempt,
    AttemptMode,
    AttemptStatus,
    Question,
    QuestionOption,
    ReviewItem,
    User,
)
from app.services.access import Permission, can
from app.services.quizzes.feedback import feedback
from app.services.quizzes.marking import Marked, clean_response, mark
from app.services.quizzes.ordering import draw_order, ordered_options

# Spaced repetition: days until a missed question comes back after each right answer in
# review (a Leitner ladder); right on the last rung retires it.
REVIEW_INTERVALS = (1, 3, 7, 16, 35, 70)


def schedule_review(
    session: Session, user_id: int, question: Question, *, correct: bool, today: date
) -> None:
    """A missed question comes back tomorrow; a right answer elsewhere leaves the queue be."""
    if correct:
        return
    item = session.scalars(
        select(ReviewItem).where(
            ReviewItem.user_id == user_id, ReviewItem.question_id == question.id
        )
    ).first()
    if item is None:
        session.add(
            ReviewItem(
                user_id=user_id,
                question_id=question.id,
                case_id=question.case_id,
                interval_days=REVIEW_INTERVALS[0],
                due_on=today + timedelta(days=REVIEW_INTERVALS[0]),
                lapses=1,
                option_order=draw_order(question) if question.options else None,
            )
        )
    else:
        item.interval_days = REVIEW_INTERVALS[0]
        item.due_on = today + timedelta(days=REVIEW_INTERVALS[0])
        item.lapses += 1
        item.retired = False
        item.updated_at = utcnow()
        if item.option_order is None and question.options:  # queued before orders were kept
            item.option_order = draw_order(question)
    session.flush()


def open_exam_question_ids(
    session: Session, user_id: int, *, besides: int | None = None
) -> set[int]:
    """The questions of the learner's unfinished exam attempts (other than ``besides``).

    While an exam asks a question, no other way of answering it may show its answer: the
    review queue and practice attempts on other sets holding the same case refuse it, as
    the unknown of the case refuses its diagnosis step (a learner who missed it on a first
    exam attempt would otherwise read the answer in review during the second).
    """
    query = select(Attempt).where(
        Attempt.user_id == user_id,
        Attempt.mode == AttemptMode.EXAM,
        Attempt.status == AttemptStatus.OPEN,
    )
    if besides is not None:
        query = query.where(Attempt.id != besides)
    return {q for attempt in session.scalars(query) for q in attempt.question_ids or []}


ANSWER_IN_EXAM = (
    "Your unfinished exam asks this question: finish the exam before answering it here."
)


def due_reviews(session: Session, *, actor: User, today: date) -> list[ReviewItem]:
    """The learner's review items due today or earlier, on cases they may still read."""
    items = session.scalars(
        select(ReviewItem)
        .where(
            ReviewItem.user_id == actor.id,
            ReviewItem.retired.is_(False),
            ReviewItem.due_on <= today,
        )
        .order_by(ReviewItem.due_on, ReviewItem.id)
    ).all()
    in_exam = open_exam_question_ids(session, actor.id)
    return [
        i for i in items if can(actor, Permission.VIEW, i.case) and i.question_id not in in_exam
    ]


def upcoming_reviews(session: Session, *, actor: User) -> list[ReviewItem]:
    return list(
        session.scalars(
            select(ReviewItem)
            .where(ReviewItem.user_id == actor.id, ReviewItem.retired.is_(False))
            .order_by(ReviewItem.due_on, ReviewItem.id)
        )
    )


def get_review_item(session: Session, question_id: int, *, actor: User) -> ReviewItem:
    item = session.scalars(
        select(ReviewItem).where(
            ReviewItem.user_id == actor.id, ReviewItem.question_id == question_id
        )
    ).first()
    if item is None or not can(actor, Permission.VIEW, item.case):
        raise NotFound("That question is not in your review queue.")
    return item


def answer_review(
    session: Session, question_id: int, response: dict[str, Any], *, actor: User, today: date
) -> tuple[ReviewItem, Marked, dict[str, Any]]:
    """Answer a due review question: right moves it up the ladder (longer interval), wrong
    sends it back to tomorrow. Returns the item, the mark and the feedback."""
    item = get_review_item(session, question_id, actor=actor)
    if item.retired or item.due_on > today:
        raise Conflict(f"This question is not due for review until {item.due_on.isoformat()}.")
    if question_id in open_exam_question_ids(session, actor.id):
        raise Conflict(ANSWER_IN_EXAM)
    question = item.question
    cleaned = clean_response(session, question, response)
    result = mark(question, cleaned)
    item.reviews += 1
    item.updated_at = utcnow()
    if result.correct:
        higher = [d for d in REVIEW_INTERVALS if d > item.interval_days]
        if not higher:
            item.retired = True
        else:
            item.interval_days = higher[0]
        item.due_on = today + timedelta(days=item.interval_days)
    else:
        item.lapses += 1
        item.interval_days = REVIEW_INTERVALS[0]
        item.due_on = today + timedelta(days=REVIEW_INTERVALS[0])
    session.flush()
    shown = Answer(
        question_id=question.id, response=cleaned, correct=result.correct, matched=result.matched
    )
    named = case_feedback_allowed(session, item, actor=actor, today=today)
    return item, result, feedback(question, shown, item.option_order, with_case=named)


def case_feedback_allowed(session: Session, item: ReviewItem, *, actor: User, today: date) -> bool:
    """Whether a review answer's feedback may name the case (title, diagnosis): only when
    none of the learner's other questions on that case is still due today, since the title
    names the diagnosis that the next due question may ask for (as in an attempt, see
    ``attempts.case_feedback_allowed``)."""
    others = session.scalars(
        select(ReviewItem.id).where(
            ReviewItem.user_id == actor.id,
            ReviewItem.case_id == item.case_id,
            ReviewItem.id != item.id,
            ReviewItem.retired.is_(False),
            ReviewItem.due_on <= today,
        )
    ).first()
    return others is None


def review_options(item: ReviewItem) -> list[QuestionOption]:
    """The review question's options in the order this learner always sees them."""
    return ordered_options(item.question, item.option_order)
