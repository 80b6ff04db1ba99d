"""The images a quiz question shows (issue 15 item 6): the real viewer on the question's
series for every kind of question, never the teaching overlay, and for a hotspot question's
feedback the target region and the learner's mark on the image they clicked.

Before feedback is allowed nothing here carries the region or the frame range: the caller says
whether feedback is shown (``with_target``) and only then is the target handed out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import CaseStudy, Question, Series, Study, User
from app.services.access import can_view_study_images
from app.services.quizzes import case_series, series_stack


@dataclass(frozen=True)
class QuestionViewer:
    """Where a question's viewer opens: the study, the series opened first, the image shown
    first as (instance id, frame), the learner's mark (``{"frame", "x", "y"}``, frame 1-based
    in that series' stack) and, in feedback only, the hotspot's ``target``
    (``{"frames": [first, last], "region": {...}}``, in the same stack and image pixels)."""

    study: Study
    series_uid: str
    start: tuple[int, int] | None = None
    picked: dict[str, Any] | None = None
    target: dict[str, Any] | None = None


def _first_series(session: Session, question: Question) -> Series | None:
    """A non-hotspot question's series: its case's first key image's, else the first with
    images (the study the author put first)."""
    for key in question.case.key_images:
        return key.instance.series
    for series in session.scalars(
        select(Series)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == question.case_id)
        .order_by(CaseStudy.position, Series.series_number, Series.id)
    ):
        if series.instances:
            return series
    return None


def _frame(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and len(value) < 7:
        return int(value)
    return None


def question_viewer(
    session: Session,
    question: Question,
    response: dict[str, Any] | None,
    *,
    actor: User | None,
    with_target: bool = False,
) -> QuestionViewer | None:
    """The viewer of a question (None if the case has no image the actor may see).

    Hotspot: the question's series, opened on the learner's click if they gave one, else (in
    feedback) on the first image of the target's range, else on the first image. Other kinds:
    the series of the case's first key image, opened on it (the image the author chose to
    show; a key image's caption is never shown here).
    """
    if question.kind == "hotspot":
        spot = question.hotspot or {}
        series = case_series(session, question.case, str(spot.get("series_uid", "")))
    else:
        series = _first_series(session, question)
    if series is None or not can_view_study_images(session, actor, series.study):
        return None
    uid = series.series_instance_uid
    if question.kind != "hotspot":
        key = next(iter(question.case.key_images), None)
        if key is None or key.instance.series_id != series.id:
            return QuestionViewer(series.study, uid)
        return QuestionViewer(series.study, uid, (key.instance_id, key.frame))
    stack = series_stack(session, series)
    target = None
    if with_target and question.hotspot:
        frames = [int(f) for f in question.hotspot.get("frames", [1, 1])]
        target = {"frames": frames, "region": question.hotspot.get("region") or {}}
    picked = None
    start = None
    frame = _frame((response or {}).get("frame"))
    if response and response.get("series_uid") == uid and frame and 1 <= frame <= len(stack):
        picked = {"frame": frame, "x": response.get("x"), "y": response.get("y")}
        image = stack[frame - 1]
        start = (image.instance.id, image.frame)
    elif target and 1 <= target["frames"][0] <= len(stack):
        image = stack[target["frames"][0] - 1]
        start = (image.instance.id, image.frame)
    return QuestionViewer(series.study, uid, start, picked, target)
