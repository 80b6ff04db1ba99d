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
#: Held-out sets written later, each in a file of its own, never tuned on (see each file).
FRESH = {
    "fresh1": ROOT / "tests" / "data" / "freetext_fresh1.yaml",
    "fresh2": ROOT / "tests" / "data" / "freetext_fresh2.yaml",
}
#: Every part the marker is measured on, in the order the closing note prints them.
MEASURED = (*PARTS, *FRESH)


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


def labelled(path: Path = LABELLED) -> dict[str, dict[str, dict[str, list[str]]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def shipped_free_text(slug: str) -> tuple[list[str], str, str]:
    """The accepted answers and stem of the shipped case's free-text question, and the
    case's title and diagnosis (what the marker is given as context in the application)."""
    folder = read_case_folder(ROOT / "cases" / slug)
    question = next(q for q in folder.questions if q.type == QuestionKind.FREE_TEXT)
    context = f"{folder.meta.title} {folder.meta.diagnosis}"
    return list(question.accepted), question.stem, context


def evaluate(part: str) -> Figures:
    figures = Figures(part)
    for slug, parts in labelled(FRESH.get(part, LABELLED)).items():
        accepted, stem, context = shipped_free_text(slug)
        for text in parts[part]["right"]:
            figures.right += 1
            if match_free_text(text, accepted, stem=stem, context=context) is None:
                figures.false_rejects.append(f"{slug}: {text!r}")
        for text in parts[part]["wrong"]:
            figures.wrong += 1
            got = match_free_text(text, accepted, stem=stem, context=context)
            if got is not None:
                figures.false_accepts.append(f"{slug}: {text!r} (as {got!r})")
    return figures
