"""Learners' own progress and educators' statistics on their sets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import QuestionKind
from app.models import (
    Answer,
    Attempt,
    AttemptStatus,
    CaseSet,
    Question,
    QuestionOption,
    ReviewItem,
    User,
)
from app.search.synonyms import normalise
from app.services.access import Permission, require
from app.services.quizzes.attempts import get_set, set_questions
from app.services.quizzes.reviews import due_reviews, upcoming_reviews


@dataclass
class SetProgress:
    case_set: CaseSet
    attempts: int
    finished: int
    best_score: float | None
    passed: bool
    open_attempt: Attempt | None
    last_attempt: Attempt


@dataclass
class Progress:
    sets: list[SetProgress]
    due: list[ReviewItem]
    upcoming: list[ReviewItem]


def learner_progress(session: Session, *, actor: User, today: date) -> Progress:
    """Sets started and finished with scores, and the review queue (credit: app.services.credit)."""
    require(actor, Permission.AUTHENTICATED)
    attempts = session.scalars(
        select(Attempt).where(Attempt.user_id == actor.id).order_by(Attempt.started_at)
    ).all()
    by_set: dict[int, list[Attempt]] = {}
    for attempt in attempts:
        by_set.setdefault(attempt.set_id, []).append(attempt)
    sets = []
    for group in by_set.values():
        finished = [a for a in group if a.status is AttemptStatus.FINISHED]
        scores = [a.score for a in finished if a.score is not None]
        sets.append(
            SetProgress(
                case_set=group[0].case_set,
                attempts=len(group),
                finished=len(finished),
                best_score=max(scores) if scores else None,
                passed=any(a.passed for a in finished),
                open_attempt=next((a for a in group if a.status is AttemptStatus.OPEN), None),
                last_attempt=group[-1],
            )
        )
    sets.sort(key=lambda s: s.last_attempt.started_at, reverse=True)
    return Progress(
        sets=sets,
        due=due_reviews(session, actor=actor, today=today),
        upcoming=upcoming_reviews(session, actor=actor),
    )


@dataclass
class QuestionStats:
    question: Question
    answered: int = 0
    correct: int = 0
    option_counts: list[tuple[QuestionOption, int]] = field(default_factory=list)
    unmatched: list[tuple[str, int]] = field(default_factory=list)

    @property
    def difficulty(self) -> float | None:
        """Share of answers that were right (the classical item difficulty index, p)."""
        return round(self.correct / self.answered, 2) if self.answered else None


@dataclass
class SetStats:
    case_set: CaseSet
    attempts: int
    finished: int
    mean_score: float | None
    passed: int
    questions: list[QuestionStats]


def set_statistics(session: Session, slug: str, *, actor: User) -> SetStats:
    """Attempts, mean score, and per question difficulty, distractor counts and the free-text
    answers that matched nothing (educators of the set and admins)."""
    case_set = get_set(session, slug, actor=actor)
    require(actor, Permission.EDIT, case_set)
    attempts = session.scalars(select(Attempt).where(Attempt.set_id == case_set.id)).all()
    finished = [a for a in attempts if a.status is AttemptStatus.FINISHED]
    scores = [a.score for a in finished if a.score is not None]
    answers = session.scalars(
        select(Answer)
        .join(Attempt, Attempt.id == Answer.attempt_id)
        .where(Attempt.set_id == case_set.id)
    ).all()
    by_question: dict[int, list[Answer]] = {}
    for answer in answers:
        by_question.setdefault(answer.question_id, []).append(answer)
    stats = []
    for question in set_questions(session, case_set, actor):
        given = by_question.get(question.id, [])
        chosen: Counter[int] = Counter()
        wrong_texts: Counter[str] = Counter()
        for answer in given:
            chosen.update(answer.response.get("option_ids", []))
            if question.kind == QuestionKind.FREE_TEXT and not answer.correct:
                wrong_texts[normalise(str(answer.response.get("text", "")))] += 1
        stats.append(
            QuestionStats(
                question=question,
                answered=len(given),
                correct=sum(1 for a in given if a.correct),
                option_counts=[(o, chosen[o.id]) for o in question.options],
                unmatched=sorted(wrong_texts.items(), key=lambda kv: (-kv[1], kv[0])),
            )
        )
    return SetStats(
        case_set=case_set,
        attempts=len(attempts),
        finished=len(finished),
        mean_score=round(sum(scores) / len(scores), 1) if scores else None,
        passed=sum(1 for a in finished if a.passed),
        questions=stats,
    )
