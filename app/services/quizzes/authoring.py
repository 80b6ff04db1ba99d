"""Writing questions: options, accepted answers, hotspot regions, and rescoring."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from app.domain import CHOICE_KINDS, QuestionKind
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Answer,
    Attempt,
    Case,
    CaseStatus,
    CaseStudy,
    Question,
    QuestionOption,
    Series,
    User,
)
from app.search.synonyms import normalise
from app.services import audit, identifier_gate
from app.services.access import Permission, can, require
from app.services.quizzes.attempts import rescore_attempt
from app.services.quizzes.marking import MAX_TEXT_ANSWER, mark
from app.services.quizzes.parse import as_number
from app.services.quizzes.stacks import case_series, series_stack


def add_accepted_answer(
    session: Session,
    question_id: int,
    text: str,
    *,
    actor: User,
    remote_addr: str = "",
    confirm_identifiers: bool = False,
) -> int:
    """Accept ``text`` for a free-text question and re-score every past answer to it
    (attempt scores and pass marks follow). Returns how many answers became right.
    Learners see accepted answers in feedback, so the text passes the identifier gate."""
    question = session.get(Question, question_id)
    if question is None or not can(actor, Permission.VIEW, question.case):
        raise NotFound("No such question.")
    require(actor, Permission.EDIT, question.case)
    if question.kind != QuestionKind.FREE_TEXT:
        raise Invalid("Only free-text questions have accepted answers.")
    text = " ".join(text.split())
    if not text or len(text) > MAX_TEXT_ANSWER:
        raise Invalid(f"Give an accepted answer of 1 to {MAX_TEXT_ANSWER} characters.")
    if any(normalise(a) == normalise(text) for a in question.accepted or []):
        raise Conflict("That answer is already accepted.")
    findings = identifier_gate.check(
        session,
        {"Accepted answer": text},
        enforce=question.case.status is CaseStatus.PUBLISHED,
        confirmed=confirm_identifiers,
        action="quiz.accepted_answer_added",
        target_type="question",
        target_id=question.id,
    )
    question.accepted = [*(question.accepted or []), text]
    changed = rescore_question(session, question)
    audit.record(
        session,
        "quiz.accepted_answer_added",
        actor=actor,
        target_type="question",
        target_id=question.id,
        detail={
            "rescored": changed,
            **identifier_gate.counts(findings, confirmed=confirm_identifiers),
        },
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
        rescore_attempt(attempt, attempt.case_set.passing_score)
    session.flush()
    return changed


@dataclass
class QuestionInput:
    """A question as an educator's form gives it (validated by :func:`save_question`)."""

    kind: str
    stem: str
    reference: str = ""
    teaching_point: str = ""
    options: list[tuple[str, bool, str]] = field(default_factory=list)  # text, correct, why
    # Which of ``options`` stay last when shuffled ("None of the above"), by index.
    pinned_last: frozenset[int] = frozenset()
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
        values = {k: as_number(region.get(k)) for k in ("cx", "cy", "rx", "ry")}
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
            x, y = as_number(p[0]), as_number(p[1])
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
    confirm_identifiers: bool = False,
) -> Question:
    """Add or change a question on a case the actor may edit; its text passes the
    identifier gate (refused on a published case unless ``confirm_identifiers``).

    Options of a question that learners have answered keep their ids (edited in place by
    position) and their number, so stored answers and statistics stay meaningful.
    """
    case = get_editable_case(session, slug, actor=actor)
    stem = data.stem.strip()
    if not stem or len(stem) > 5000:
        raise Invalid("Write the question's stem (up to 5,000 characters).")
    if data.kind not in tuple(QuestionKind):
        raise Invalid("Choose a question type.")
    findings = identifier_gate.check_question(session, case, data, confirmed=confirm_identifiers)
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
    if data.kind in CHOICE_KINDS:
        options = [(t.strip(), c, e.strip()) for t, c, e in data.options if t.strip()]
        pinned = [i in data.pinned_last for i, (t, _, _) in enumerate(data.options) if t.strip()]
        if not 2 <= len(options) <= 26:
            raise Invalid("Give 2 to 26 options.")
        right = sum(1 for _, c, _ in options if c)
        if data.kind == QuestionKind.SINGLE and right != 1:
            raise Invalid("Mark exactly one option correct.")
        if data.kind == QuestionKind.MULTIPLE and right < 1:
            raise Invalid("Mark at least one option correct.")
        if all(pinned):
            raise Invalid("Leave at least one option unpinned, so there is something to shuffle.")
        existing = list(question.options) if question_id is not None else []
        answered = question_id is not None and question_answered(session, question.id)
        if answered and len(options) != len(existing):
            raise Conflict("Learners have answered this question: keep the number of options.")
        for i, (text, correct, why) in enumerate(options):
            if i < len(existing):
                existing[i].text, existing[i].correct, existing[i].explanation = text, correct, why
                existing[i].position, existing[i].pinned_last = i, pinned[i]
            else:
                question.options.append(
                    QuestionOption(
                        position=i,
                        text=text,
                        correct=correct,
                        explanation=why,
                        pinned_last=pinned[i],
                    )
                )
        for extra in existing[len(options) :]:
            question.options.remove(extra)
    else:
        for option in list(question.options):
            question.options.remove(option)
    if data.kind == QuestionKind.FREE_TEXT:
        accepted = [" ".join(a.split()) for a in data.accepted if a.strip()]
        if not accepted:
            raise Invalid("List at least one accepted answer.")
        question.accepted = accepted[:100]
    if data.kind == QuestionKind.HOTSPOT:
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
        detail={
            "case": case.id,
            "kind": data.kind,
            "new": question_id is None,
            **identifier_gate.counts(findings, confirmed=confirm_identifiers),
        },
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
