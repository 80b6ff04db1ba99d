"""Scoring every question type and matching free-text answers (issue 9).

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

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.casefmt import Ellipse, Polygon, Region
from app.domain import CHOICE_KINDS, QuestionKind
from app.errors import Invalid
from app.models import Question
from app.search.synonyms import SynonymTable, load_synonyms, normalise
from app.services.quizzes.parse import as_int, as_number
from app.services.quizzes.stacks import case_series, series_stack

MAX_TEXT_ANSWER = 300


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
class Marked:
    correct: bool
    matched: str = ""


def clean_response(session: Session, question: Question, raw: dict[str, Any]) -> dict[str, Any]:
    """Check a learner's answer against the question; raise Invalid (nothing stored) if odd.

    Shapes: single/multiple ``{"option_ids": [id, ...]}``; free text ``{"text": "..."}``;
    hotspot ``{"series_uid": uid, "frame": n (1-based in the stack), "x": col, "y": row}``.
    """
    if question.kind in CHOICE_KINDS:
        ids_raw = raw.get("option_ids")
        if not isinstance(ids_raw, list) or len(ids_raw) > 26:
            raise Invalid("Choose an answer.")
        ids = [as_int(i) for i in ids_raw]
        known = {o.id for o in question.options}
        if not ids or any(i is None or i not in known for i in ids):
            raise Invalid("That answer is not one of this question's options.")
        unique = sorted({i for i in ids if i is not None})
        if question.kind == QuestionKind.SINGLE and len(unique) != 1:
            raise Invalid("Choose exactly one answer.")
        return {"option_ids": unique}
    if question.kind == QuestionKind.FREE_TEXT:
        text = raw.get("text")
        if not isinstance(text, str) or not text.strip():
            raise Invalid("Type an answer.")
        if len(text) > MAX_TEXT_ANSWER:
            raise Invalid(f"Keep the answer under {MAX_TEXT_ANSWER} characters.")
        return {"text": " ".join(text.split())}
    if question.kind == QuestionKind.HOTSPOT:
        uid = raw.get("series_uid")
        frame = as_int(raw.get("frame"))
        x, y = as_number(raw.get("x")), as_number(raw.get("y"))
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
    if question.kind in CHOICE_KINDS:
        chosen = set(response.get("option_ids", []))
        right = {o.id for o in question.options if o.correct}
        return Marked(correct=bool(right) and chosen == right)
    if question.kind == QuestionKind.FREE_TEXT:
        matched = match_free_text(str(response.get("text", "")), list(question.accepted or []))
        return Marked(correct=matched is not None, matched=matched or "")
    if question.kind == QuestionKind.HOTSPOT and question.hotspot:
        spot = question.hotspot
        first, last = (int(f) for f in spot.get("frames", [1, 1]))
        if response.get("series_uid") != spot.get("series_uid"):
            return Marked(False)
        if not first <= int(response.get("frame", 0)) <= last:
            return Marked(False)
        return Marked(region_of(spot).contains(float(response["x"]), float(response["y"])))
    return Marked(False)
