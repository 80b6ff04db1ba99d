"""The labelled learner answers of tests/data/freetext_answers.yaml, marked by the real marker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from app.casefmt import read_case_folder
from app.domain import QuestionKind
from app.services.quizzes.marking import match_free_text

ROOT = Path(__file__).resolve().parent.parent
LABELLED = ROOT / "tests" / "data" / "freetext_answers.yaml"
PARTS = ("tune", "holdout")


@dataclass
class Figures:
    """How the marker did on one part of the labelled set."""

    part: str
    right: int = 0
    wrong: int = 0
    false_rejects: list[str] = field(default_factory=list)
    false_accepts: list[str] = field(default_factory=list)

    @property
    def accepted_right(self) -> float:
        return 100.0 * (self.right - len(self.false_rejects)) / self.right

    @property
    def accepted_wrong(self) -> float:
        return 100.0 * len(self.false_accepts) / self.wrong

    @property
    def accuracy(self) -> float:
        errors = len(self.false_rejects) + len(self.false_accepts)
        return 100.0 * (self.right + self.wrong - errors) / (self.right + self.wrong)

    def summary(self) -> str:
        return (
            f"{self.part}: {self.right + self.wrong} answers, accuracy {self.accuracy:.1f} %, "
            f"right accepted {self.right - len(self.false_rejects)}/{self.right} "
            f"({self.accepted_right:.1f} %), wrong accepted {len(self.false_accepts)}/"
            f"{self.wrong} ({self.accepted_wrong:.1f} %)"
        )


#: Where the marker test leaves its figures for the closing note (tests/services/conftest.py).
FIGURES = pytest.StashKey[dict[str, Figures]]()


def labelled() -> dict[str, dict[str, dict[str, list[str]]]]:
    data = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def shipped_free_text(slug: str) -> tuple[list[str], str]:
    """The accepted answers and stem of the shipped case's free-text question."""
    folder = read_case_folder(ROOT / "cases" / slug)
    question = next(q for q in folder.questions if q.type == QuestionKind.FREE_TEXT)
    return list(question.accepted), question.stem


def evaluate(part: str) -> Figures:
    figures = Figures(part)
    for slug, parts in labelled().items():
        accepted, stem = shipped_free_text(slug)
        for text in parts[part]["right"]:
            figures.right += 1
            if match_free_text(text, accepted, stem=stem) is None:
                figures.false_rejects.append(f"{slug}: {text!r}")
        for text in parts[part]["wrong"]:
            figures.wrong += 1
            got = match_free_text(text, accepted, stem=stem)
            if got is not None:
                figures.false_accepts.append(f"{slug}: {text!r} (as {got!r})")
    return figures
