"""Quizzes on case sets: attempts, scoring of every question type, the review queue,
revealing unknown cases, question authoring and educators' statistics (issue 9).

Scoring rules, decided here once:

- single best answer: right when the one chosen option is the correct one;
- multiple response: all or nothing (the chosen set equals the correct set), as in board
  exams; partial credit would reward ticking every box;
- free text: tolerant of case, accents, punctuation, word order, synonyms and
  abbreviations (app/data/synonyms.yaml) and small misspellings (Damerau-Levenshtein
  distance at most 1 for answers of 5-8 letters, 2 from 9 letters; none for shorter ones,
  so "SAH" never matches "SDH"); the accepted answer that matched is kept and shown;
- hotspot: right when the click is on a frame within the author's range and inside the
  region (ellipse or polygon in image pixels); a click off the image is refused (400).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.casefmt import Ellipse, Polygon, Region
from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Answer,
    Attempt,
    AttemptMode,
    AttemptStatus,
    Case,
    CaseSet,
    CaseSetItem,
    CaseStudy,
    Instance,
    Question,
    QuestionOption,
    ReviewItem,
    Series,
    Study,
    User,
)
from app.search.synonyms import SynonymTable, load_synonyms, normalise
from app.services import audit
from app.services.access import Permission, can, can_view_study_images, require

MAX_TEXT_ANSWER = 300
# Spaced repetition: days until a missed question comes back after each right answer in
# review (a Leitner ladder); right on the last rung retires it.
REVIEW_INTERVALS = (1, 3, 7, 16, 35, 70)


# --------------------------------------------------------------------------- scoring


def _damerau(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance, giving up (limit + 1) once it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _allowed_typos(text: str) -> int:
    letters = len(text.replace(" ", ""))
    if letters < 5:
        return 0
    return 1 if letters <= 8 else 2


def _canonical(text: str, table: SynonymTable) -> list[str]:
    """Words of ``text`` with every synonym phrase replaced by one representative."""
    words = normalise(text).split()
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(table.longest, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            group = table.by_term.get(phrase)
            if group:
                out.append(min(group).replace(" ", "_"))
                i += n
                break
        else:
            out.append(words[i])
            i += 1
    return out


def match_free_text(
    text: str, accepted: list[str], table: SynonymTable | None = None
) -> str | None:
    """The accepted answer ``text`` matches, or None (see the module docstring for the rule)."""
    table = table or load_synonyms()
    given = normalise(text)
    if not given:
        return None
    given_words = _canonical(text, table)
    given_sorted = " ".join(sorted(given_words))
    for candidate in accepted:
        if table.equivalent(text, candidate):
            return candidate
        words = _canonical(candidate, table)
        if not words:
            continue
        if sorted(words) == sorted(given_words):
            return candidate
    # Typos: compare word-order-free canonical forms within a bounded distance.
    for candidate in accepted:
        words = _canonical(candidate, table)
        target = " ".join(sorted(words))
        limit = _allowed_typos(target)
        if limit and _damerau(given_sorted, target, limit) <= limit:
            return candidate
        plain = normalise(candidate)
        if limit and _damerau(given, plain, limit) <= limit:
            return candidate
    return None


def region_of(hotspot: dict[str, Any]) -> Region:
    """The hotspot's region as a shape with ``contains``."""
    raw = hotspot.get("region") or {}
    if raw.get("shape") == "polygon":
        return Polygon(tuple((float(p[0]), float(p[1])) for p in raw.get("points", [])))
    return Ellipse(float(raw["cx"]), float(raw["cy"]), float(raw["rx"]), float(raw["ry"]))


@dataclass(frozen=True)
class StackImage:
    """One image of a series' stack: an instance, and the frame within it (1-based)."""

    instance: Instance
    frame: int


def series_stack(session: Session, series: Series) -> list[StackImage]:
    """The series' images in stack order: instances in order, each multi-frame one's frames."""
    stack: list[StackImage] = []
    for instance in series.instances:
        for frame in range(1, max(1, instance.number_of_frames) + 1):
            stack.append(StackImage(instance, frame))
    return stack


def case_series(session: Session, case: Case, series_uid: str) -> Series | None:
    """The series with this UID if it belongs to one of the case's studies."""
    return session.scalars(
        select(Series)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == case.id, Series.series_instance_uid == series_uid)
    ).first()


@dataclass(frozen=True)
class Marked:
    correct: bool
    matched: str = ""


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
        return int(value.strip())
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and len(value) < 32:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def clean_response(session: Session, question: Question, raw: dict[str, Any]) -> dict[str, Any]:
    """Check a learner's answer against the question; raise Invalid (nothing stored) if odd.

    Shapes: single/multiple ``{"option_ids": [id, ...]}``; free text ``{"text": "..."}``;
    hotspot ``{"series_uid": uid, "frame": n (1-based in the stack), "x": col, "y": row}``.
    """
    if question.kind in ("single", "multiple"):
        ids_raw = raw.get("option_ids")
        if not isinstance(ids_raw, list) or len(ids_raw) > 26:
            raise Invalid("Choose an answer.")
        ids = [_int(i) for i in ids_raw]
        known = {o.id for o in question.options}
        if not ids or any(i is None or i not in known for i in ids):
            raise Invalid("That answer is not one of this question's options.")
        unique = sorted({i for i in ids if i is not None})
        if question.kind == "single" and len(unique) != 1:
            raise Invalid("Choose exactly one answer.")
        return {"option_ids": unique}
    if question.kind == "freetext":
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Invalid("Type an answer.")
        if len(text) > MAX_TEXT_ANSWER:
            raise Invalid(f"Keep the answer under {MAX_TEXT_ANSWER} characters.")
        return {"text": " ".join(text.split())}
    if question.kind == "hotspot":
        uid = raw.get("series_uid")
        frame = _int(raw.get("frame"))
        x, y = _number(raw.get("x")), _number(raw.get("y"))
        if not isinstance(uid, str) or frame is None or x is None or y is None:
            raise Invalid("Click on the image to answer.")
        series = case_series(session, question.case, uid[:64])
        if series is None:
            raise Invalid("That series is not part of this case.")
        stack = series_stack(session, series)
        if not 1 <= frame <= len(stack):
            raise Invalid("That image is not in the series.")
        image = stack[frame - 1].instance
        if not (0 <= x < (image.columns or 0) and 0 <= y < (image.rows or 0)):
            raise Invalid("The click is outside the image.")
        return {"series_uid": uid, "frame": frame, "x": round(x, 2), "y": round(y, 2)}
    raise Invalid("This question cannot be answered.")


def mark(question: Question, response: dict[str, Any]) -> Marked:
    """Score a cleaned response (see :func:`clean_response`)."""
    if question.kind in ("single", "multiple"):
        chosen = set(response.get("option_ids", []))
        right = {o.id for o in question.options if o.correct}
        return Marked(correct=bool(right) and chosen == right)
    if question.kind == "freetext":
        matched = match_free_text(str(response.get("text", "")), list(question.accepted or []))
        return Marked(correct=matched is not None, matched=matched or "")
    if question.kind == "hotspot" and question.hotspot:
        spot = question.hotspot
        first, last = (int(f) for f in spot.get("frames", [1, 1]))
        if response.get("series_uid") != spot.get("series_uid"):
            return Marked(False)
        if not first <= int(response.get("frame", 0)) <= last:
            return Marked(False)
        return Marked(region_of(spot).contains(float(response["x"]), float(response["y"])))
    return Marked(False)


# --------------------------------------------------------------------------- attempts


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
    """How many more attempts the learner may start (None: no limit)."""
    if case_set.max_attempts is None:
        return None
    used = session.scalar(
        select(func.count(Attempt.id)).where(
            Attempt.set_id == case_set.id, Attempt.user_id == actor.id
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
    current = open_attempt(session, case_set, actor=actor)
    if current is not None:
        if current.mode is chosen:
            return current
        raise Conflict(
            f"You have an unfinished {current.mode.value} attempt on this set: "
            "finish it before starting another."
        )
    left = attempts_left(session, case_set, actor=actor)
    if left == 0:
        raise Conflict(f"You have used all {case_set.max_attempts} attempts on this set.")
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
        total=len(questions),
        started_at=now or utcnow(),
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
    question not in the attempt, a finished attempt, an option of another question.
    """
    attempt = get_attempt(session, attempt_id, actor=actor)
    if attempt.status is not AttemptStatus.OPEN:
        raise Conflict("This attempt has ended: its answers can no longer change.")
    if question_id not in (attempt.question_ids or []):
        raise Invalid("That question is not part of this attempt.")
    question = session.get(Question, question_id)
    if question is None:
        raise Invalid("That question is not part of this attempt.")
    cleaned = clean_response(session, question, response)
    result = mark(question, cleaned)
    now = now or utcnow()
    existing = answers_by_question(attempt).get(question_id)
    if existing is not None:
        if attempt.mode is AttemptMode.PRACTICE:
            raise Conflict("You have already answered this question.")
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


def _rescore(attempt: Attempt, passing_score: int) -> None:
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
    attempt.status = AttemptStatus.FINISHED
    attempt.finished_at = now
    _rescore(attempt, attempt.case_set.passing_score)
    if attempt.mode is AttemptMode.EXAM:
        answered = answers_by_question(attempt)
        for question in attempt_questions(session, attempt):
            answer = answered.get(question.id)
            schedule_review(
                session,
                actor.id,
                question,
                correct=bool(answer and answer.correct),
                today=now.date(),
            )
    session.flush()
    audit.record(
        session,
        "quiz.attempt_finished",
        actor=actor,
        target_type="case_set",
        target_id=attempt.set_id,
        detail={"attempt": attempt.id, "score": attempt.score, "passed": attempt.passed},
    )
    return attempt


# --------------------------------------------------------------------------- what the learner sees


def public_question(question: Question) -> dict[str, Any]:
    """A question as a learner sees it before answering: never which option is right,
    no explanations, no accepted answers, no hotspot region or frame range."""
    data: dict[str, Any] = {
        "id": question.id,
        "kind": question.kind,
        "stem": question.stem,
        "case": {"slug": question.case.slug, "title": question.case.title},
    }
    if question.kind in ("single", "multiple"):
        data["options"] = [{"id": o.id, "text": o.text} for o in question.options]
    if question.kind == "hotspot" and question.hotspot:
        data["series_uid"] = question.hotspot.get("series_uid")
    return data


def feedback(question: Question, answer: Answer | None) -> dict[str, Any]:
    """What a learner sees after answering (practice) or at the end (exam)."""
    data: dict[str, Any] = {
        "question_id": question.id,
        "answered": answer is not None,
        "correct": bool(answer and answer.correct),
        "response": answer.response if answer else None,
        "reference": question.reference,
        "teaching_point": question.teaching_point,
    }
    if question.kind in ("single", "multiple"):
        chosen = set((answer.response if answer else {}).get("option_ids", []))
        data["options"] = [
            {
                "id": o.id,
                "text": o.text,
                "correct": o.correct,
                "chosen": o.id in chosen,
                "explanation": o.explanation,
            }
            for o in question.options
        ]
    elif question.kind == "freetext":
        data["accepted"] = list(question.accepted or [])
        data["matched"] = answer.matched if answer else ""
    elif question.kind == "hotspot":
        data["hotspot"] = question.hotspot
    return data


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
                    "question": public_question(question),
                    "feedback": feedback(question, answered.get(question.id)),
                }
            )
        else:
            review.append(
                {"question": public_question(question), "answered": question.id in answered}
            )
    return {"attempt": attempt_summary(attempt), "review": review}


# --------------------------------------------------------------------------- unknown cases


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


# --------------------------------------------------------------------------- review queue


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
            )
        )
    else:
        item.interval_days = REVIEW_INTERVALS[0]
        item.due_on = today + timedelta(days=REVIEW_INTERVALS[0])
        item.lapses += 1
        item.retired = False
        item.updated_at = utcnow()
    session.flush()


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
    return [i for i in items if can(actor, Permission.VIEW, i.case)]


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
    return item, result, feedback(question, shown)


# --------------------------------------------------------------------------- progress


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


# --------------------------------------------------------------------------- statistics


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
            if question.kind == "freetext" and not answer.correct:
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


def add_accepted_answer(
    session: Session, question_id: int, text: str, *, actor: User, remote_addr: str = ""
) -> int:
    """Accept ``text`` for a free-text question and re-score every past answer to it
    (attempt scores and pass marks follow). Returns how many answers became right."""
    question = session.get(Question, question_id)
    if question is None or not can(actor, Permission.VIEW, question.case):
        raise NotFound("No such question.")
    require(actor, Permission.EDIT, question.case)
    if question.kind != "freetext":
        raise Invalid("Only free-text questions have accepted answers.")
    text = " ".join(text.split())
    if not text or len(text) > MAX_TEXT_ANSWER:
        raise Invalid(f"Give an accepted answer of 1 to {MAX_TEXT_ANSWER} characters.")
    if any(normalise(a) == normalise(text) for a in question.accepted or []):
        raise Conflict("That answer is already accepted.")
    question.accepted = [*(question.accepted or []), text]
    changed = rescore_question(session, question)
    audit.record(
        session,
        "quiz.accepted_answer_added",
        actor=actor,
        target_type="question",
        target_id=question.id,
        detail={"rescored": changed},
        remote_addr=remote_addr,
    )
    return changed


def rescore_question(session: Session, question: Question) -> int:
    """Mark every stored answer to ``question`` again; update the attempts they belong to."""
    changed = 0
    touched: dict[int, Attempt] = {}
    for answer in session.scalars(select(Answer).where(Answer.question_id == question.id)):
        result = mark(question, answer.response)
        if result.correct != answer.correct or result.matched != answer.matched:
            changed += int(result.correct and not answer.correct)
            answer.correct, answer.matched = result.correct, result.matched[:300]
            touched[answer.attempt_id] = answer.attempt
    for attempt in touched.values():
        _rescore(attempt, attempt.case_set.passing_score)
    session.flush()
    return changed


# --------------------------------------------------------------------------- authoring


@dataclass
class QuestionInput:
    """A question as an educator's form gives it (validated by :func:`save_question`)."""

    kind: str
    stem: str
    reference: str = ""
    teaching_point: str = ""
    options: list[tuple[str, bool, str]] = field(default_factory=list)  # text, correct, why
    accepted: list[str] = field(default_factory=list)
    series_uid: str = ""
    frames: tuple[int, int] = (1, 1)
    region: dict[str, Any] = field(default_factory=dict)


def get_editable_case(session: Session, slug: str, *, actor: User) -> Case:
    case = session.scalars(select(Case).where(Case.slug == slug[:80])).first()
    if case is None:
        raise NotFound("No such case.")
    require(actor, Permission.EDIT, case)
    return case


def case_questions(session: Session, case: Case) -> list[Question]:
    return list(
        session.scalars(
            select(Question)
            .where(Question.case_id == case.id)
            .order_by(Question.position, Question.id)
        )
    )


def question_answered(session: Session, question_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Answer.question_id == question_id))))


def _check_region(region: dict[str, Any]) -> dict[str, Any]:
    shape = region.get("shape")
    if shape == "ellipse":
        values = {k: _number(region.get(k)) for k in ("cx", "cy", "rx", "ry")}
        if any(v is None for v in values.values()):
            raise Invalid("An ellipse needs numbers for cx, cy, rx and ry.")
        if (values["rx"] or 0) <= 0 or (values["ry"] or 0) <= 0:
            raise Invalid("rx and ry must be greater than 0.")
        return {"shape": "ellipse", **values}
    if shape == "polygon":
        points = region.get("points")
        if not isinstance(points, list) or not 3 <= len(points) <= 1000:
            raise Invalid("A polygon needs 3 to 1000 points.")
        out = []
        for p in points:
            if not isinstance(p, list | tuple) or len(p) != 2:
                raise Invalid("Give polygon points as x,y pairs.")
            x, y = _number(p[0]), _number(p[1])
            if x is None or y is None:
                raise Invalid("Give polygon points as x,y pairs.")
            out.append([x, y])
        return {"shape": "polygon", "points": out}
    raise Invalid("Choose an ellipse or a polygon for the region.")


def save_question(
    session: Session,
    slug: str,
    data: QuestionInput,
    *,
    actor: User,
    question_id: int | None = None,
) -> Question:
    """Add or change a question on a case the actor may edit.

    Options of a question that learners have answered keep their ids (edited in place by
    position) and their number, so stored answers and statistics stay meaningful.
    """
    case = get_editable_case(session, slug, actor=actor)
    stem = data.stem.strip()
    if not stem or len(stem) > 5000:
        raise Invalid("Write the question's stem (up to 5,000 characters).")
    if data.kind not in ("single", "multiple", "freetext", "hotspot"):
        raise Invalid("Choose a question type.")
    question: Question | None = None
    if question_id is not None:
        question = session.get(Question, question_id)
        if question is None or question.case_id != case.id:
            raise NotFound("No such question.")
        if question.kind != data.kind and question_answered(session, question.id):
            raise Conflict("Learners have answered this question: its type cannot change.")
    else:
        position = len(case_questions(session, case))
        question = Question(case_id=case.id, position=position, kind=data.kind, stem=stem)
        session.add(question)
    question.kind = data.kind
    question.stem = stem
    question.reference = data.reference.strip()[:5000]
    question.teaching_point = data.teaching_point.strip()[:5000]
    question.accepted, question.hotspot = [], None
    if data.kind in ("single", "multiple"):
        options = [(t.strip(), c, e.strip()) for t, c, e in data.options if t.strip()]
        if not 2 <= len(options) <= 26:
            raise Invalid("Give 2 to 26 options.")
        right = sum(1 for _, c, _ in options if c)
        if data.kind == "single" and right != 1:
            raise Invalid("Mark exactly one option correct.")
        if data.kind == "multiple" and right < 1:
            raise Invalid("Mark at least one option correct.")
        existing = list(question.options) if question_id is not None else []
        answered = question_id is not None and question_answered(session, question.id)
        if answered and len(options) != len(existing):
            raise Conflict("Learners have answered this question: keep the number of options.")
        for i, (text, correct, why) in enumerate(options):
            if i < len(existing):
                existing[i].text, existing[i].correct, existing[i].explanation = text, correct, why
                existing[i].position = i
            else:
                question.options.append(
                    QuestionOption(position=i, text=text, correct=correct, explanation=why)
                )
        for extra in existing[len(options) :]:
            question.options.remove(extra)
    else:
        for option in list(question.options):
            question.options.remove(option)
    if data.kind == "freetext":
        accepted = [" ".join(a.split()) for a in data.accepted if a.strip()]
        if not accepted:
            raise Invalid("List at least one accepted answer.")
        question.accepted = accepted[:100]
    if data.kind == "hotspot":
        series = case_series(session, case, data.series_uid.strip())
        if series is None:
            raise Invalid("Choose a series of this case for the hotspot.")
        first, last = data.frames
        size = len(series_stack(session, series))
        if not 1 <= first <= last <= size:
            raise Invalid(f"Give a frame range within 1-{size}, first before last.")
        question.hotspot = {
            "series_uid": series.series_instance_uid,
            "frames": [first, last],
            "region": _check_region(data.region),
        }
    session.flush()
    if question_id is not None and question_answered(session, question.id):
        rescore_question(session, question)
    audit.record(
        session,
        "quiz.question_saved",
        actor=actor,
        target_type="question",
        target_id=question.id,
        detail={"case": case.id, "kind": data.kind, "new": question_id is None},
    )
    return question


def delete_question(session: Session, slug: str, question_id: int, *, actor: User) -> None:
    """Remove a question nobody has answered (answered ones are learners' records)."""
    case = get_editable_case(session, slug, actor=actor)
    question = session.get(Question, question_id)
    if question is None or question.case_id != case.id:
        raise NotFound("No such question.")
    if question_answered(session, question.id):
        raise Conflict("Learners have answered this question, so it stays.")
    session.delete(question)
    session.flush()
    audit.record(
        session,
        "quiz.question_deleted",
        actor=actor,
        target_type="question",
        target_id=question_id,
        detail={"case": case.id},
    )


def case_series_choices(session: Session, case: Case) -> list[tuple[Series, int]]:
    """The case's series with the number of images in each stack (for the hotspot form)."""
    series = session.scalars(
        select(Series)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == case.id)
        .order_by(CaseStudy.position, Series.series_number, Series.id)
    ).all()
    return [(s, len(series_stack(session, s))) for s in series]


# --------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class FrameRef:
    """One image to show: the UIDs of its rendered-frame URL, and its size in pixels."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frame: int
    columns: int
    rows: int


def _ref(instance: Instance, frame: int) -> FrameRef:
    series = instance.series
    return FrameRef(
        study_uid=series.study.study_instance_uid,
        series_uid=series.series_instance_uid,
        sop_uid=instance.sop_instance_uid,
        frame=frame,
        columns=instance.columns or 0,
        rows=instance.rows or 0,
    )


@dataclass(frozen=True)
class HotspotView:
    """Where a hotspot question's viewer opens: the study, the question's series, and the
    learner's earlier click on it (``{"frame", "x", "y"}``, frame 1-based in the stack) with
    ``start``, that image as (instance id, frame), so the viewer opens on it."""

    study: Study
    series_uid: str
    picked: dict[str, Any] | None = None
    start: tuple[int, int] | None = None


def hotspot_view(
    session: Session,
    question: Question,
    response: dict[str, Any] | None,
    *,
    actor: User | None,
) -> HotspotView | None:
    """The viewer of a hotspot question (None if its series or study cannot be shown).

    Only UIDs and the learner's own click: never the region or the frame range.
    """
    if question.kind != "hotspot" or not question.hotspot:
        return None
    series = case_series(session, question.case, str(question.hotspot.get("series_uid")))
    if series is None or not can_view_study_images(session, actor, series.study):
        return None
    uid = series.series_instance_uid
    if not response or response.get("series_uid") != uid:
        return HotspotView(series.study, uid)
    stack = series_stack(session, series)
    frame = _int(response.get("frame"))
    if frame is None or not 1 <= frame <= len(stack):
        return HotspotView(series.study, uid)
    image = stack[frame - 1]
    picked = {"frame": frame, "x": response.get("x"), "y": response.get("y")}
    return HotspotView(series.study, uid, picked, (image.instance.id, image.frame))


def question_images(session: Session, question: Question) -> list[FrameRef]:
    """The images of a question for the API: the hotspot series' whole stack (to scroll
    and click in), or for other questions the case's key images (the first frame if none).
    The pages show a hotspot question's stack in the viewer instead (:func:`hotspot_view`)."""
    if question.kind == "hotspot" and question.hotspot:
        series = case_series(session, question.case, str(question.hotspot.get("series_uid")))
        if series is not None:
            return [_ref(s.instance, s.frame) for s in series_stack(session, series)]
        return []
    refs = [_ref(k.instance, k.frame) for k in question.case.key_images]
    if not refs:
        first = session.scalars(
            select(Instance)
            .join(Series, Series.id == Instance.series_id)
            .join(CaseStudy, CaseStudy.study_id == Series.study_id)
            .where(CaseStudy.case_id == question.case_id)
            .order_by(
                CaseStudy.position,
                Series.series_number,
                Instance.position,
                Instance.instance_number,
                Instance.id,
            )
        ).first()
        if first is not None:
            refs.append(_ref(first, 1))
    return refs
