"""Builders for quiz tests: a published, credit-bearing set whose case carries one question
of every kind (single, multiple, free text, hotspot on the case's CT stack)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from app.models import (
    Case,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    Instance,
    Question,
    QuestionOption,
    User,
    Visibility,
)
from app.services.quizzes import stacks


@dataclass
class QuizSet:
    case_set: CaseSet
    case: Case
    single: Question
    multiple: Question
    freetext: Question
    hotspot: Question
    series_uid: str
    image: Instance  # the first image of the hotspot's stack

    def right_answers(self) -> dict[int, dict[str, Any]]:
        """A right answer for every question (the hotspot: the centre of its region, frame 2)."""
        return {
            self.single.id: {"option_ids": [o.id for o in self.single.options if o.correct]},
            self.multiple.id: {"option_ids": [o.id for o in self.multiple.options if o.correct]},
            self.freetext.id: {"text": "PTX"},
            self.hotspot.id: {"series_uid": self.series_uid, "frame": 2, "x": 30, "y": 20},
        }


def build_quiz_set(
    session: Session,
    create_case: Callable[..., Case],
    author: User,
    *,
    credit_hours: float | None = 2.0,
    max_attempts: int | None = None,
    passing_score: int = 75,
    slug: str = "chest-emergencies",
) -> QuizSet:
    case = create_case(author, title="Tension pneumothorax", slices=3)
    series = case.studies[0].study.series[0]
    stack = stacks.series_stack(session, series)
    single = Question(
        case_id=case.id,
        position=0,
        kind="single",
        stem="Most likely diagnosis?",
        teaching_point="Look for the pleural line.",
        reference="Radiopaedia.",
    )
    single.options = [
        QuestionOption(
            position=0,
            text="Pneumothorax",
            correct=True,
            explanation="The visceral pleural line is displaced.",
        ),
        QuestionOption(
            position=1, text="Bulla", correct=False, explanation="A bulla has a curved wall."
        ),
        QuestionOption(position=2, text="Skin fold", correct=False, explanation="Fades out."),
    ]
    multiple = Question(
        case_id=case.id, position=1, kind="multiple", stem="Which signs of tension are present?"
    )
    multiple.options = [
        QuestionOption(position=0, text="Mediastinal shift", correct=True),
        QuestionOption(position=1, text="Flattened hemidiaphragm", correct=True),
        QuestionOption(position=2, text="Kerley B lines", correct=False),
    ]
    freetext = Question(
        case_id=case.id,
        position=2,
        kind="freetext",
        stem="Your diagnosis?",
        accepted=["tension pneumothorax", "pneumothorax"],
    )
    hotspot = Question(
        case_id=case.id,
        position=3,
        kind="hotspot",
        stem="Click the air.",
        hotspot={
            "series_uid": series.series_instance_uid,
            "frames": [2, 3],
            "region": {"shape": "ellipse", "cx": 30, "cy": 20, "rx": 10, "ry": 8},
        },
    )
    session.add_all([single, multiple, freetext, hotspot])
    case_set = CaseSet(
        slug=slug,
        title="Chest emergencies",
        objectives="Recognise a tension pneumothorax.",
        status=CaseStatus.PUBLISHED,
        visibility=Visibility.PUBLIC,
        institution_id=author.institution_id,
        created_by_id=author.id,
        credit_hours=credit_hours,
        passing_score=passing_score,
        max_attempts=max_attempts,
        faculty="Dr A. Faculty, consultant radiologist",
        disclosures="No relevant financial relationships.",
        release_date=date(2026, 1, 1),
        review_date=date(2026, 6, 1),
        expiry_date=date(2029, 12, 31),
        evaluation=[
            {"id": "met", "prompt": "Objectives met?", "kind": "rating"},
            {
                "id": "bias",
                "prompt": "Free of commercial bias?",
                "kind": "choice",
                "choices": ["Yes", "No"],
            },
            {"id": "comments", "prompt": "Comments", "kind": "text"},
        ],
    )
    case_set.items.append(CaseSetItem(case_id=case.id, position=0))
    session.add(case_set)
    session.commit()
    return QuizSet(
        case_set,
        case,
        single,
        multiple,
        freetext,
        hotspot,
        series.series_instance_uid,
        stack[0].instance,
    )
