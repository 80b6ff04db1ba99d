"""Item analysis of a set's quiz for its educators (issue 15, item 7): per question the
facility, the discrimination, distractor counts, a chart and for hotspots a heat map of
clicks; per set the score distribution and completion.

Definitions (classical test theory), decided here once:

- only finished attempts count (an open one has not been scored), in both modes;
  a question left unanswered in a finished attempt scores 0, as it did in the attempt;
- facility p = the share of those attempts that got the question right;
- discrimination = the point-biserial correlation between the question's score (0/1)
  and the rest of the attempt's score (right answers on the other questions), i.e. the
  Pearson correlation of the two; None when either does not vary or n < 2. Rules of
  thumb: below 0.2 the question does not separate strong from weak learners; negative
  means the strong ones get it wrong more often (a wrong key, an ambiguous stem).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import charts
from app.domain import CHOICE_KINDS, QuestionKind
from app.models import Answer, Attempt, AttemptStatus, Question, User
from app.services.access import Permission, require
from app.services.quizzes.attempts import get_set, set_questions
from app.services.quizzes.stacks import case_series, series_stack

#: Below this the question does not separate strong from weak learners.
LOW_DISCRIMINATION = 0.2


def point_biserial(item: Sequence[int], rest: Sequence[float]) -> float | None:
    """Pearson correlation of a 0/1 item score with the rest score (None if undefined)."""
    n = len(item)
    if n < 2 or n != len(rest):
        return None
    mean_x = sum(item) / n
    mean_y = sum(rest) / n
    sxx = sum((x - mean_x) ** 2 for x in item)
    syy = sum((y - mean_y) ** 2 for y in rest)
    if sxx == 0 or syy == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(item, rest, strict=True))
    return sxy / math.sqrt(sxx * syy)


@dataclass(frozen=True)
class HeatMap:
    """Learners' clicks on a hotspot question, drawn over the first frame of its target."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frame: int
    columns: int
    rows: int
    svg: str
    on_image: int  # clicks on the frames of the target range (drawn)
    elsewhere: int  # clicks on other images of the series (not drawn)


@dataclass
class ItemStats:
    question: Question
    attempts: int = 0  # finished attempts that asked it
    answered: int = 0
    correct: int = 0
    facility: float | None = None
    discrimination: float | None = None
    distractors: list[tuple[str, int, bool]] = field(default_factory=list)  # text, n, right
    chart: str = ""
    heat_map: HeatMap | None = None

    @property
    def flags(self) -> list[str]:
        """What an educator should look at first."""
        out = []
        if self.discrimination is not None and self.discrimination < 0:
            out.append("negative discrimination: check the key and the stem")
        elif self.discrimination is not None and self.discrimination < LOW_DISCRIMINATION:
            out.append("low discrimination")
        if self.facility is not None and self.attempts >= 5 and self.facility > 0.95:
            out.append("nearly everyone gets it right")
        if self.facility is not None and self.attempts >= 5 and self.facility < 0.2:
            out.append("nearly everyone gets it wrong")
        unused = [text for text, n, right in self.distractors if not right and n == 0]
        if self.attempts >= 5 and unused:
            out.append(f"{len(unused)} distractor(s) never chosen")
        return out


@dataclass
class SetAnalysis:
    started: int
    finished: int
    passed: int
    scores: list[float]
    distribution: str  # SVG histogram of finished attempts' scores
    items: list[ItemStats]

    def item(self, question_id: int) -> ItemStats | None:
        """The figures of one question of the set (None if it is not in the set)."""
        return next((i for i in self.items if i.question.id == question_id), None)

    @property
    def completion(self) -> float | None:
        """Share of started attempts that were finished."""
        return self.finished / self.started if self.started else None


def _rest_scores(finished: list[Attempt], answers: dict[int, dict[int, Answer]]) -> dict[int, int]:
    return {a.id: sum(1 for x in answers.get(a.id, {}).values() if x.correct) for a in finished}


def analyse_set(session: Session, slug: str, *, actor: User) -> SetAnalysis:
    """The item analysis of set ``slug`` (its educators and admins)."""
    case_set = get_set(session, slug, actor=actor)
    require(actor, Permission.EDIT, case_set)
    attempts = list(session.scalars(select(Attempt).where(Attempt.set_id == case_set.id)))
    finished = [a for a in attempts if a.status is AttemptStatus.FINISHED]
    by_attempt: dict[int, dict[int, Answer]] = {a.id: {} for a in finished}
    if finished:
        for answer in session.scalars(
            select(Answer).where(Answer.attempt_id.in_([a.id for a in finished]))
        ):
            by_attempt[answer.attempt_id][answer.question_id] = answer
    totals = _rest_scores(finished, by_attempt)
    items = [
        _item(session, question, finished, by_attempt, totals)
        for question in set_questions(session, case_set, actor)
    ]
    scores = [float(a.score) for a in finished if a.score is not None]
    return SetAnalysis(
        started=len(attempts),
        finished=len(finished),
        passed=sum(1 for a in finished if a.passed),
        scores=scores,
        distribution=charts.histogram(
            scores,
            title=f"Scores of {len(scores)} finished attempts",
            mark=float(case_set.passing_score),
            mark_label=f"pass {case_set.passing_score}%",
        ),
        items=items,
    )


def _item(
    session: Session,
    question: Question,
    finished: list[Attempt],
    by_attempt: dict[int, dict[int, Answer]],
    totals: dict[int, int],
) -> ItemStats:
    asked = [a for a in finished if question.id in (a.question_ids or [])]
    given = [by_attempt[a.id][question.id] for a in asked if question.id in by_attempt[a.id]]
    item_scores = [
        int(question.id in by_attempt[a.id] and by_attempt[a.id][question.id].correct)
        for a in asked
    ]
    rest = [totals[a.id] - s for a, s in zip(asked, item_scores, strict=True)]
    stats = ItemStats(
        question=question,
        attempts=len(asked),
        answered=len(given),
        correct=sum(item_scores),
        facility=sum(item_scores) / len(asked) if asked else None,
        discrimination=point_biserial(item_scores, rest),
    )
    unanswered = len(asked) - len(given)
    if question.kind in CHOICE_KINDS:
        chosen: Counter[int] = Counter()
        for answer in given:
            chosen.update(answer.response.get("option_ids", []))
        stats.distractors = [(o.text, chosen[o.id], o.correct) for o in question.options]
    else:
        right = sum(1 for a in given if a.correct)
        stats.distractors = [("Right", right, True), ("Wrong", len(given) - right, False)]
    bars = [charts.Bar(text, n, ok) for text, n, ok in stats.distractors]
    bars.append(charts.Bar("No answer", unanswered))
    stats.chart = charts.bar_chart(
        bars,
        title=f"Answers to question {question.id} in {len(asked)} finished attempts",
        total=len(asked) or None,
    )
    if question.kind == QuestionKind.HOTSPOT:
        stats.heat_map = _heat_map(session, question, given)
    return stats


def _heat_map(session: Session, question: Question, given: list[Answer]) -> HeatMap | None:
    spot = question.hotspot or {}
    series = case_series(session, question.case, str(spot.get("series_uid")))
    if series is None:
        return None
    stack = series_stack(session, series)
    first, last = (int(f) for f in spot.get("frames", [1, 1]))
    if not 1 <= first <= len(stack):
        return None
    image = stack[first - 1]
    clicks, elsewhere = [], 0
    for answer in given:
        r = answer.response
        if (
            r.get("series_uid") == series.series_instance_uid
            and first <= int(r.get("frame", 0)) <= last
        ):
            clicks.append(charts.Click(float(r["x"]), float(r["y"]), answer.correct))
        else:
            elsewhere += 1
    raw = spot.get("region") or {}
    size = max(image.instance.columns or 1, image.instance.rows or 1) / 200
    outline = (
        charts.polygon([(float(x), float(y)) for x, y in raw.get("points", [])], stroke_width=size)
        if raw.get("shape") == "polygon"
        else charts.ellipse(
            float(raw["cx"]),
            float(raw["cy"]),
            float(raw["rx"]),
            float(raw["ry"]),
            stroke_width=size,
        )
    )
    columns, rows = image.instance.columns or 0, image.instance.rows or 0
    return HeatMap(
        study_uid=series.study.study_instance_uid,
        series_uid=series.series_instance_uid,
        sop_uid=image.instance.sop_instance_uid,
        frame=image.frame,
        columns=columns,
        rows=rows,
        svg=charts.heat_map(
            columns,
            rows,
            clicks,
            title=f"{len(clicks)} clicks on the target image",
            region=outline,
        ),
        on_image=len(clicks),
        elsewhere=elsewhere,
    )
