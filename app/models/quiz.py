"""Quiz attempts and answers, the review queue, activity evaluations and certificates (issue 9)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.models.case import Case, CaseSet
from app.models.education import Question
from app.models.user import User


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class AttemptMode(enum.StrEnum):
    PRACTICE = "practice"  # feedback after each answer
    EXAM = "exam"  # nothing until the end


class AttemptStatus(enum.StrEnum):
    OPEN = "open"
    FINISHED = "finished"


class Attempt(Base):
    """One learner's run through a case set; the questions are fixed when it starts."""

    __tablename__ = "quiz_attempts"
    # One number per learner and set: two concurrent starts cannot both pass the limit.
    __table_args__ = (UniqueConstraint("user_id", "set_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    set_id: Mapped[int] = mapped_column(ForeignKey("case_sets.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(default=1)  # 1 for the learner's first on this set
    mode: Mapped[AttemptMode] = mapped_column(_enum(AttemptMode), default=AttemptMode.PRACTICE)
    status: Mapped[AttemptStatus] = mapped_column(_enum(AttemptStatus), default=AttemptStatus.OPEN)
    # Question ids in the order they are asked (frozen: later edits to the set do not move them).
    question_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # Each choice question's options in the order this attempt shows them, drawn at random
    # when it starts ({question id: [option ids]}), so resuming on any device shows the same
    # order and no two attempts share one (issue 15). None: author order (older attempts).
    option_order: Mapped[dict[str, list[int]] | None] = mapped_column(JSON)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    correct_count: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    score: Mapped[float | None]  # percent, set when finished (and on re-scoring)
    passed: Mapped[bool] = mapped_column(default=False)
    # Exam time limit (issue 15): fixed when the attempt starts, so changing the set's
    # limit later does not move a running exam's deadline. None: untimed.
    deadline_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
    case_set: Mapped[CaseSet] = relationship()
    answers: Mapped[list[Answer]] = relationship(
        back_populates="attempt", cascade="all, delete-orphan", order_by="Answer.id"
    )


class Answer(Base):
    """A learner's answer to one question of an attempt, stored the moment it is given."""

    __tablename__ = "quiz_answers"
    __table_args__ = (UniqueConstraint("attempt_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("quiz_attempts.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    # {"option_ids": [...]} | {"text": "..."} | {"series_uid", "frame", "x", "y"}
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    correct: Mapped[bool] = mapped_column(default=False)
    matched: Mapped[str] = mapped_column(String(300), default="")  # free text: which accepted
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)

    attempt: Mapped[Attempt] = relationship(back_populates="answers")
    question: Mapped[Question] = relationship()


class ReviewItem(Base):
    """A missed question that comes back at growing intervals (spaced repetition)."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("user_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    interval_days: Mapped[int] = mapped_column(default=1)
    due_on: Mapped[date] = mapped_column(index=True)
    reviews: Mapped[int] = mapped_column(default=0)
    lapses: Mapped[int] = mapped_column(default=1)
    retired: Mapped[bool] = mapped_column(default=False)  # learnt: no longer comes back
    # The question's option ids in the order this learner sees them in review (issue 15).
    option_order: Mapped[list[int] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    question: Mapped[Question] = relationship()
    case: Mapped[Case] = relationship()


class EvaluationResponse(Base):
    """The learner's answers to a credit-bearing set's activity evaluation."""

    __tablename__ = "evaluation_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(
        ForeignKey("quiz_attempts.id", ondelete="CASCADE"), unique=True
    )
    set_id: Mapped[int] = mapped_column(ForeignKey("case_sets.id", ondelete="CASCADE"), index=True)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    """Issued credit. Never deleted: revocation is the only way to withdraw one.

    The learner's name, the activity title and the hours are copied at issue so the
    certificate keeps saying what it said when a name or a set changes later.
    """

    __tablename__ = "certificates"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)  # secrets.token_urlsafe(24)
    # SET NULL: the certificate outlives its learner's account, set and attempt (its text
    # is copied above), so nothing another feature deletes can take issued credit with it.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    set_id: Mapped[int | None] = mapped_column(
        ForeignKey("case_sets.id", ondelete="SET NULL"), index=True
    )
    attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("quiz_attempts.id", ondelete="SET NULL"), unique=True
    )
    learner_name: Mapped[str] = mapped_column(String(100))
    activity_title: Mapped[str] = mapped_column(String(300))
    hours: Mapped[float]  # attested, capped at the set's credit hours
    score: Mapped[float]
    completed_on: Mapped[date]
    # Copied at issue from the set (or the TEACHFILE_CREDIT_* defaults), issue 15.
    provider: Mapped[str] = mapped_column(String(300), default="")
    accreditation_statement: Mapped[str] = mapped_column(Text, default="")
    credit_type: Mapped[str] = mapped_column(String(200), default="")
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoke_reason: Mapped[str] = mapped_column(String(300), default="")

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    case_set: Mapped[CaseSet | None] = relationship()

    @property
    def valid(self) -> bool:
        return self.revoked_at is None


class UnknownReveal(Base):
    """How far a signed-in reader has revealed a case read as an unknown (issue 15): 0 history
    and images, 1 findings, 2 diagnosis, 3 discussion and references. Visitors keep theirs
    in the Flask session."""

    __tablename__ = "unknown_reveals"
    __table_args__ = (UniqueConstraint("user_id", "case_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
