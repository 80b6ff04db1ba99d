"""Options in the order a learner sees them: shuffled for each attempt (and for each learner
in the review queue), pinned ones ("None of the above") last, and the editor's warning when
a case's or a set's correct answers cluster in one position (issue 15 item 3)."""

from __future__ import annotations

import random
from collections import Counter

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import CHOICE_KINDS, QuestionKind
from app.models import Attempt, Case, CaseSet, CaseSetItem, Question, QuestionOption

# Orders are drawn from the operating system's generator and stored, so nobody can work
# one out from ids, and the same attempt shows the same order on every device.
_DRAW = random.SystemRandom()
# The editor warns when more than this share of single-answer questions (at least
# CLUSTER_MIN_QUESTIONS of them) have their correct option in the same position.
CLUSTER_SHARE = 0.5
CLUSTER_MIN_QUESTIONS = 4


def draw_order(question: Question) -> list[int]:
    """A fresh random order of the question's option ids, pinned options last as written."""
    movable = [o.id for o in question.options if not o.pinned_last]
    _DRAW.shuffle(movable)
    return movable + [o.id for o in question.options if o.pinned_last]


def draw_orders(questions: list[Question]) -> dict[str, list[int]]:
    """Orders for an attempt's choice questions, keyed by question id (JSON keys are text)."""
    return {str(q.id): draw_order(q) for q in questions if q.kind in CHOICE_KINDS}


def ordered_options(question: Question, order: list[int] | None) -> list[QuestionOption]:
    """The question's options in the stored ``order``; options added since follow, and pinned
    ones always come last in the author's order. No stored order: the author's order."""
    if not order:
        return list(question.options)
    by_id = {o.id: o for o in question.options}
    shown = [by_id[i] for i in order if i in by_id and not by_id[i].pinned_last]
    known = set(order)
    shown += [o for o in question.options if o.id not in known and not o.pinned_last]
    shown += [o for o in question.options if o.pinned_last]
    return shown


def attempt_order(attempt: Attempt, question: Question) -> list[int] | None:
    """The order this attempt shows the question's options in (None: author order)."""
    return (attempt.option_order or {}).get(str(question.id))


def _correct_position(question: Question) -> int | None:
    """1-based position of a single-answer question's correct option among the unpinned ones."""
    if question.kind != QuestionKind.SINGLE:
        return None
    movable = [o for o in question.options if not o.pinned_last]
    return next((i for i, o in enumerate(movable, 1) if o.correct), None)


def _cluster(questions: list[Question]) -> tuple[int, int, int] | None:
    """(position, how many, of how many) when correct answers cluster, else None."""
    positions = [p for p in (_correct_position(q) for q in questions) if p is not None]
    if len(positions) < CLUSTER_MIN_QUESTIONS:
        return None
    position, count = Counter(positions).most_common(1)[0]
    if count / len(positions) <= CLUSTER_SHARE:
        return None
    return position, count, len(positions)


def position_warnings(session: Session, case: Case) -> list[str]:
    """Warnings for the question editor: this case's, and each of its sets', single-answer
    questions whose correct option sits in one position too often. Learners see options
    shuffled, but an export, a printout or a pinned list keeps the written order."""
    warnings: list[str] = []
    own = list(
        session.scalars(
            select(Question).where(Question.case_id == case.id).order_by(Question.position)
        )
    )
    found = _cluster(own)
    if found:
        warnings.append(
            f"On this case, {found[1]} of {found[2]} single-answer questions have the correct "
            f"option in position {found[0]}: vary where the right answer is written."
        )
    sets = session.scalars(
        select(CaseSet)
        .join(CaseSetItem, CaseSetItem.set_id == CaseSet.id)
        .where(CaseSetItem.case_id == case.id)
        .order_by(CaseSet.title)
    ).all()
    for case_set in sets:
        questions = list(
            session.scalars(
                select(Question)
                .join(CaseSetItem, CaseSetItem.case_id == Question.case_id)
                .where(CaseSetItem.set_id == case_set.id)
            )
        )
        found = _cluster(questions)
        if found:
            warnings.append(
                f"In the set \u201c{case_set.title}\u201d, {found[1]} of {found[2]} "
                f"single-answer questions have the correct option in position {found[0]}."
            )
    return warnings
