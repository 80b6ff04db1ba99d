"""Questions on cases (the quiz engine of issue 9 builds attempts on these)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.domain import QuestionKind
from app.models.case import Case

QUESTION_KINDS = tuple(QuestionKind)


class Question(Base):
    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(20))
    stem: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text, default="")
    teaching_point: Mapped[str] = mapped_column(Text, default="")
    # QuestionKind.FREE_TEXT: accepted answers (synonyms come from app/data/synonyms.yaml)
    accepted: Mapped[list[str]] = mapped_column(JSON, default=list)
    # hotspot: {"series_uid", "frames": [first, last], "region": {...}}
    hotspot: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    case: Mapped[Case] = relationship()
    options: Mapped[list[QuestionOption]] = relationship(
        back_populates="question",
        cascade="all, delete-orphan",
        order_by="QuestionOption.position",
    )


class QuestionOption(Base):
    __tablename__ = "question_options"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(Text)
    correct: Mapped[bool] = mapped_column(default=False)
    explanation: Mapped[str] = mapped_column(Text, default="")
    # "None of the above" and its kind stay last when options are shuffled (issue 15).
    pinned_last: Mapped[bool] = mapped_column(default=False, server_default=false())

    question: Mapped[Question] = relationship(back_populates="options")
