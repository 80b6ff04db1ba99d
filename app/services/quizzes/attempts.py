"""Attempts on a case set: starting, answering, finishing, and their results."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Answer,
    Attempt,
    AttemptMode,
    AttemptStatus,
    CaseSet,
    CaseSetItem,
    Question,
    QuestionOption,
    User,
)
from app.services import audit
from app.services.access import Permission, can, require
from app.services.quizzes.feedback import feedback, public_question
from app.services.quizzes.marking import clean_response, mark
from app.services.quizzes.ordering import attempt_order, draw_orders, ordered_options
from app.services.quizzes.reviews import ANSWER_IN_EXAM, open_exam_question_ids, schedule_review


def get_set(session: Session, slug: str, *, actor: User | None) -> CaseSet:
    """The case set ``slug`` if the actor may see it, else NotFound."""
    case_set = session.scalars(select(CaseSet).where(CaseSet.slug == slug[:80])).first()
    if case_set is None:
        raise NotFound("No such case set.")
    require(actor, Permission.VIEW, case_set)
    return case_set


def set_questions(session: Session, case_set: CaseSet, actor: User | None) -> list[Question]:
    """The set's questions in order (case order, then question order), on readable cases."""
    rows = session.scalars(
        select(Question)
        .join(CaseSetItem, CaseSetItem.case_id == Question.case_id)
        .where(CaseSetItem.set_id == case_set.id)
        .order_by(CaseSetItem.position, Question.position, Question.id)
    ).all()
    return [q for q in rows if can(actor, Permission.VIEW, q.case)]


def list_attempts(session: Session, case_set: CaseSet, *, actor: User) -> list[Attempt]:
    return list(
        session.scalars(
            select(Attempt)
            .where(Attempt.set_id == case_set.id, Attempt.user_id == actor.id)
            .order_by(Attempt.number)
        )
    )


def open_attempt(session: Session, case_set: CaseSet, *, actor: User) -> Attempt | None:
    return session.scalars(
        select(Attempt).where(
            Attempt.set_id == case_set.id,
            Attempt.user_id == actor.id,
            Attempt.status == AttemptStatus.OPEN,
        )
    ).first()


def attempts_left(session: Session, case_set: CaseSet, *, actor: User) -> int | None:
    """How many more exam attempts the learner may start (None: no limit).

    Practice is unlimited and never uses one up (issue 15): it gives the answers away
    as it goes, so only exam attempts are rationed.
    """
    if case_set.max_attempts is None:
        return None
    used = session.scalar(
        select(func.count(Attempt.id)).where(
            Attempt.set_id == case_set.id,
            Attempt.user_id == actor.id,
            Attempt.mode == AttemptMode.EXAM,
        )
    )
    return max(0, case_set.max_attempts - int(used or 0))


def start_attempt(
    session: Session, slug: str, *, actor: User, mode: str, now: datetime | None = None
) -> Attempt:
    """Start (or resume, when one of the same mode is open) an attempt on the set ``slug``."""
    require(actor, Permission.AUTHENTICATED)
    case_set = get_set(session, slug, actor=actor)
    try:
        chosen = AttemptMode(mode)
    except ValueError:
        raise Invalid("Choose practice or exam mode.") from None
    now = now or utcnow()
    current = open_attempt(session, case_set, actor=actor)
    if current is not None and close_if_overdue(session, current, actor=actor, now=now):
        current = None
    if current is not None:
        if current.mode is chosen:
            return current
        raise Conflict(
            f"You have an unfinished {current.mode.value} attempt on this set: "
            "finish it before starting another."
        )
    left = attempts_left(session, case_set, actor=actor) if chosen is AttemptMode.EXAM else None
    if left == 0:
        raise Conflict(
            f"You have used all {case_set.max_attempts} exam attempts on this set "
            "(practice stays open)."
        )
    questions = set_questions(session, case_set, actor)
    if not questions:
        raise Invalid("This set has no questions yet.")
    number = 1 + int(
        session.scalar(
            select(func.count(Attempt.id)).where(
                Attempt.set_id == case_set.id, Attempt.user_id == actor.id
            )
        )
        or 0
    )
    attempt = Attempt(
        user_id=actor.id,
        set_id=case_set.id,
        number=number,
        mode=chosen,
        status=AttemptStatus.OPEN,
        question_ids=[q.id for q in questions],
        option_order=draw_orders(questions),
        total=len(questions),
        started_at=now,
        deadline_at=now + timedelta(minutes=case_set.time_limit_minutes)
        if chosen is AttemptMode.EXAM and case_set.time_limit_minutes
        else None,
    )
    # No savepoint: pysqlite opens none inside an implicit transaction (its RELEASE would
    # commit). A collision fails the flush; the caller rolls the request back.
    session.add(attempt)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("Another attempt was started at the same moment; reload.") from None
    audit.record(
        session,
        "quiz.attempt_started",
        actor=actor,
        target_type="case_set",
        target_id=case_set.id,
        detail={"attempt": attempt.id, "mode": chosen.value},
    )
    return attempt


def get_attempt(session: Session, attempt_id: int, *, actor: User | None) -> Attempt:
    """The actor's own attempt, else NotFound (nobody else sees a learner's answers)."""
    attempt = session.get(Attempt, attempt_id)
    if attempt is None or actor is None or attempt.user_id != actor.id:
        raise NotFound("No such attempt.")
    return attempt


def attempt_questions(session: Session, attempt: Attempt) -> list[Question]:
    """The attempt's questions in asking order (a question deleted since is left out)."""
    ids = list(attempt.question_ids or [])
    found = {q.id: q for q in session.scalars(select(Question).where(Question.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def answers_by_question(attempt: Attempt) -> dict[int, Answer]:
    return {a.question_id: a for a in attempt.answers}


def next_question(session: Session, attempt: Attempt) -> Question | None:
    """The first question not answered yet, or None when all are."""
    answered = answers_by_question(attempt)
    for question in attempt_questions(session, attempt):
        if question.id not in answered:
            return question
    return None


def feedback_allowed(attempt: Attempt, question_id: int) -> bool:
    """Whether the learner may see the right answer to this question now.

    Exam mode: only once the attempt is finished. Practice: once the question is answered.
    """
    if attempt.status is AttemptStatus.FINISHED:
        return True
    return attempt.mode is AttemptMode.PRACTICE and any(
        a.question_id == question_id for a in attempt.answers
    )


class TimeIsUp(Conflict):
    """An exam answer given after its deadline: refused; the caller then closes the attempt
    with :func:`close_if_overdue` (scored on what was answered in time) and commits."""


def overdue(attempt: Attempt, now: datetime) -> bool:
    """Whether an open timed exam has passed its deadline."""
    return (
        attempt.status is AttemptStatus.OPEN
        and attempt.deadline_at is not None
        and now >= attempt.deadline_at
    )


def seconds_left(attempt: Attempt, now: datetime) -> int | None:
    """Seconds until a timed exam's deadline (0 when passed; None: untimed or finished)."""
    if attempt.status is not AttemptStatus.OPEN or attempt.deadline_at is None:
        return None
    return max(0, int((attempt.deadline_at - now).total_seconds()))


def close_if_overdue(session: Session, attempt: Attempt, *, actor: User, now: datetime) -> bool:
    """Finish a timed exam whose deadline has passed, at its deadline, scored on the
    answers given in time. Returns whether it did."""
    if not overdue(attempt, now):
        return False
    _finish(session, attempt, actor=actor, at=attempt.deadline_at or now, timed_out=True)
    return True


def case_feedback_allowed(session: Session, attempt: Attempt, question: Question) -> bool:
    """Whether feedback may name the question's case (title, diagnosis): only once every
    question of the attempt on that case may show its answer, since the title of a case
    names the diagnosis that its next question asks for (issue 15)."""
    return all(
        feedback_allowed(attempt, q.id)
        for q in attempt_questions(session, attempt)
        if q.case_id == question.case_id
    )


def answer_question(
    session: Session,
    attempt_id: int,
    question_id: int,
    response: dict[str, Any],
    *,
    actor: User,
    now: datetime | None = None,
) -> Answer:
    """Store (and score) the learner's answer the moment it is given.

    Exam mode: the answer may be changed until the attempt is finished. Practice mode:
    the first answer counts (its feedback has been shown). Refused, nothing changed: a
    question not in the attempt, a finished attempt, an option of another question, and
    (:class:`TimeIsUp`) an answer after a timed exam's deadline.
    """
    attempt = get_attempt(session, attempt_id, actor=actor)
    if attempt.status is not AttemptStatus.OPEN:
        raise Conflict("This attempt has ended: its answers can no longer change.")
    if overdue(attempt, now or utcnow()):
        raise TimeIsUp(
            "Time is up: this exam's time limit has passed, so this answer was not saved. "
            "The exam is finished and scored on the answers you gave in time."
        )
    if question_id not in (attempt.question_ids or []):
        raise Invalid("That question is not part of this attempt.")
    question = session.get(Question, question_id)
    if question is None:
        raise Invalid("That question is not part of this attempt.")
    cleaned = clean_response(session, question, response)
    result = mark(question, cleaned)
    now = now or utcnow()
    existing = answers_by_question(attempt).get(question_id)
    if existing is not None and attempt.mode is AttemptMode.PRACTICE:
        raise Conflict("You have already answered this question.")
    if attempt.mode is AttemptMode.PRACTICE and question_id in open_exam_question_ids(
        session, actor.id, besides=attempt.id
    ):
        raise Conflict(ANSWER_IN_EXAM)
    if existing is not None:
        existing.response = cleaned
        existing.correct = result.correct
        existing.matched = result.matched[:300]
        existing.answered_at = now
        session.flush()
        return existing
    answer = Answer(
        attempt_id=attempt.id,
        question_id=question_id,
        response=cleaned,
        correct=result.correct,
        matched=result.matched[:300],
        answered_at=now,
    )
    # Two windows answering at once meet the unique (attempt, question); see start_attempt.
    session.add(answer)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("This question was answered from another window; reload.") from None
    session.expire(attempt, ["answers"])
    if attempt.mode is AttemptMode.PRACTICE:
        schedule_review(session, actor.id, question, correct=result.correct, today=now.date())
    return answer


def rescore_attempt(attempt: Attempt, passing_score: int) -> None:
    attempt.correct_count = sum(1 for a in attempt.answers if a.correct)
    total = len(attempt.question_ids or [])
    attempt.total = total
    if attempt.status is AttemptStatus.FINISHED:
        attempt.score = round(100.0 * attempt.correct_count / total, 1) if total else 0.0
        attempt.passed = attempt.score >= passing_score


def finish_attempt(
    session: Session, attempt_id: int, *, actor: User, now: datetime | None = None
) -> Attempt:
    """End the attempt: unanswered questions count as wrong; missed ones go to review."""
    attempt = get_attempt(session, attempt_id, actor=actor)
    if attempt.status is not AttemptStatus.OPEN:
        raise Conflict("This attempt has already ended.")
    now = now or utcnow()
    if close_if_overdue(session, attempt, actor=actor, now=now):
        return attempt
    _finish(session, attempt, actor=actor, at=now)
    return attempt


def _finish(
    session: Session, attempt: Attempt, *, actor: User, at: datetime, timed_out: bool = False
) -> None:
    """Close the attempt at ``at``: unanswered questions count as wrong; an exam's missed
    questions go to the review queue."""
    attempt.status = AttemptStatus.FINISHED
    attempt.finished_at = at
    rescore_attempt(attempt, attempt.case_set.passing_score)
    if attempt.mode is AttemptMode.EXAM:
        answered = answers_by_question(attempt)
        for question in attempt_questions(session, attempt):
            answer = answered.get(question.id)
            schedule_review(
                session,
                actor.id,
                question,
                correct=bool(answer and answer.correct),
                today=at.date(),
            )
    session.flush()
    audit.record(
        session,
        "quiz.attempt_finished",
        actor=actor,
        target_type="case_set",
        target_id=attempt.set_id,
        detail={
            "attempt": attempt.id,
            "score": attempt.score,
            "passed": attempt.passed,
            **({"timed_out": True} if timed_out else {}),
        },
    )


def attempt_summary(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "set": attempt.case_set.slug,
        "number": attempt.number,
        "mode": attempt.mode.value,
        "status": attempt.status.value,
        "answered": len(attempt.answers),
        "total": len(attempt.question_ids or []),
        "started_at": attempt.started_at.isoformat(),
        "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        "score": attempt.score if attempt.status is AttemptStatus.FINISHED else None,
        "passed": attempt.passed if attempt.status is AttemptStatus.FINISHED else None,
        "passing_score": attempt.case_set.passing_score,
        "deadline_at": attempt.deadline_at.isoformat() if attempt.deadline_at else None,
    }


def attempt_result(session: Session, attempt_id: int, *, actor: User) -> dict[str, Any]:
    """Score and review of every question; for an open attempt only what feedback allows."""
    attempt = get_attempt(session, attempt_id, actor=actor)
    answered = answers_by_question(attempt)
    review: list[dict[str, Any]] = []
    for question in attempt_questions(session, attempt):
        if feedback_allowed(attempt, question.id):
            review.append(
                {
                    "question": public_question(question, attempt_order(attempt, question)),
                    "feedback": question_feedback(
                        attempt,
                        question,
                        answered.get(question.id),
                        with_case=case_feedback_allowed(session, attempt, question),
                    ),
                }
            )
        else:
            review.append(
                {
                    "question": public_question(question, attempt_order(attempt, question)),
                    "answered": question.id in answered,
                }
            )
    return {"attempt": attempt_summary(attempt), "review": review}


def shown_options(attempt: Attempt, question: Question) -> list[QuestionOption]:
    """The question's options in the order this attempt shows them."""
    return ordered_options(question, attempt_order(attempt, question))


def question_view(attempt: Attempt, question: Question) -> dict[str, Any]:
    """:func:`public_question` with the options in this attempt's order."""
    return public_question(question, attempt_order(attempt, question))


def question_feedback(
    attempt: Attempt, question: Question, answer: Answer | None, *, with_case: bool = True
) -> dict[str, Any]:
    """:func:`feedback` with the options in this attempt's order."""
    return feedback(question, answer, attempt_order(attempt, question), with_case=with_case)
