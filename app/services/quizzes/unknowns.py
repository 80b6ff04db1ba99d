"""Whether a case with questions (an unknown) may show its diagnosis to a reader yet."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Answer, Attempt, AttemptMode, AttemptStatus, Case, Question, ReviewItem, User
from app.services.access import Permission, can


def case_revealed_for(session: Session, user: User | None, case: Case) -> bool:
    """Whether the case page may show its diagnosis sections (``HIDDEN_IN_UNKNOWN_MODE``).

    A case with questions is an "unknown": its diagnosis, differential, discussion and
    teaching points stay hidden until the viewer has answered every question on it, in a
    practice attempt or the review queue (feedback shown) or in a finished exam attempt
    (an open exam must not leak answers). Authors, editors and admins always see them; so
    does everyone on a case without questions. Visitors never answer, so it is False for
    them on a case with questions (the case page may offer its own "reveal" button).
    """
    if user is not None and can(user, Permission.EDIT, case):
        return True
    question_ids = set(session.scalars(select(Question.id).where(Question.case_id == case.id)))
    if not question_ids:
        return True
    if user is None:
        return False
    answered = set(
        session.scalars(
            select(Answer.question_id)
            .join(Attempt, Attempt.id == Answer.attempt_id)
            .where(
                Attempt.user_id == user.id,
                Answer.question_id.in_(question_ids),
                (Attempt.mode == AttemptMode.PRACTICE) | (Attempt.status == AttemptStatus.FINISHED),
            )
        )
    )
    reviewed = set(
        session.scalars(
            select(ReviewItem.question_id).where(
                ReviewItem.user_id == user.id, ReviewItem.question_id.in_(question_ids)
            )
        )
    )
    return question_ids <= answered | reviewed
