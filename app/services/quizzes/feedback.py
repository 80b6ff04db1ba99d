"""What a learner sees of a question: before answering, and the feedback after."""

from __future__ import annotations

from typing import Any

from app.domain import CHOICE_KINDS, QuestionKind
from app.models import Answer, Question
from app.services.quizzes.ordering import ordered_options


def public_question(question: Question, order: list[int] | None = None) -> dict[str, Any]:
    """A question as a learner sees it before answering: what its author chose to show (the
    stem, the options in the learner's ``order`` (:mod:`app.services.quizzes.ordering`), the
    case's clinical history); never which option is right, no explanations, accepted
    answers, hotspot region or frame range, and nothing naming the case (its title and slug
    name the diagnosis: issue 15), which comes with the feedback."""
    data: dict[str, Any] = {
        "id": question.id,
        "kind": question.kind,
        "stem": question.stem,
        "history": question.case.history,
    }
    if question.kind in CHOICE_KINDS:
        data["options"] = [{"id": o.id, "text": o.text} for o in ordered_options(question, order)]
    if question.kind == QuestionKind.HOTSPOT and question.hotspot:
        data["series_uid"] = question.hotspot.get("series_uid")
    return data


def feedback(
    question: Question,
    answer: Answer | None,
    order: list[int] | None = None,
    *,
    with_case: bool = True,
) -> dict[str, Any]:
    """What a learner sees after answering (practice) or at the end (exam), options in the
    order the learner saw them; ``with_case`` adds the case's title and diagnosis (see
    ``attempts.case_feedback_allowed``)."""
    data: dict[str, Any] = {
        "question_id": question.id,
        "answered": answer is not None,
        "correct": bool(answer and answer.correct),
        "response": answer.response if answer else None,
        "reference": question.reference,
        "teaching_point": question.teaching_point,
    }
    if with_case:
        data["case"] = {
            "slug": question.case.slug,
            "title": question.case.title,
            "diagnosis": question.case.diagnosis,
        }
    if question.kind in CHOICE_KINDS:
        chosen = set((answer.response if answer else {}).get("option_ids", []))
        data["options"] = [
            {
                "id": o.id,
                "text": o.text,
                "correct": o.correct,
                "chosen": o.id in chosen,
                "explanation": o.explanation,
            }
            for o in ordered_options(question, order)
        ]
    elif question.kind == QuestionKind.FREE_TEXT:
        data["accepted"] = list(question.accepted or [])
        data["matched"] = answer.matched if answer else ""
    elif question.kind == QuestionKind.HOTSPOT:
        data["hotspot"] = question.hotspot
    return data
