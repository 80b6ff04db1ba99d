"""The images a question shows: a series' stack, its frames, and the hotspot viewer's start."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import QuestionKind
from app.models import Case, CaseStudy, Instance, Question, Series, Study, User
from app.services.access import can_view_study_images
from app.services.quizzes.parse import as_int


@dataclass(frozen=True)
class StackImage:
    """One image of a series' stack: an instance, and the frame within it (1-based)."""

    instance: Instance
    frame: int


def series_stack(session: Session, series: Series) -> list[StackImage]:
    """The series' images in stack order: instances in order, each multi-frame one's frames."""
    stack: list[StackImage] = []
    for instance in series.instances:
        for frame in range(1, max(1, instance.number_of_frames) + 1):
            stack.append(StackImage(instance, frame))
    return stack


def case_series(session: Session, case: Case, series_uid: str) -> Series | None:
    """The series with this UID if it belongs to one of the case's studies."""
    return session.scalars(
        select(Series)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == case.id, Series.series_instance_uid == series_uid)
    ).first()


@dataclass(frozen=True)
class FrameRef:
    """One image to show: the UIDs of its rendered-frame URL, and its size in pixels."""

    study_uid: str
    series_uid: str
    sop_uid: str
    frame: int
    columns: int
    rows: int


def _ref(instance: Instance, frame: int) -> FrameRef:
    series = instance.series
    return FrameRef(
        study_uid=series.study.study_instance_uid,
        series_uid=series.series_instance_uid,
        sop_uid=instance.sop_instance_uid,
        frame=frame,
        columns=instance.columns or 0,
        rows=instance.rows or 0,
    )


@dataclass(frozen=True)
class HotspotView:
    """Where a hotspot question's viewer opens: the study, the question's series, and the
    learner's earlier click on it (``{"frame", "x", "y"}``, frame 1-based in the stack) with
    ``start``, that image as (instance id, frame), so the viewer opens on it."""

    study: Study
    series_uid: str
    picked: dict[str, Any] | None = None
    start: tuple[int, int] | None = None


def hotspot_view(
    session: Session,
    question: Question,
    response: dict[str, Any] | None,
    *,
    actor: User | None,
) -> HotspotView | None:
    """The viewer of a hotspot question (None if its series or study cannot be shown).

    Only UIDs and the learner's own click: never the region or the frame range.
    """
    if question.kind != QuestionKind.HOTSPOT or not question.hotspot:
        return None
    series = case_series(session, question.case, str(question.hotspot.get("series_uid")))
    if series is None or not can_view_study_images(session, actor, series.study):
        return None
    uid = series.series_instance_uid
    if not response or response.get("series_uid") != uid:
        return HotspotView(series.study, uid)
    stack = series_stack(session, series)
    frame = as_int(response.get("frame"))
    if frame is None or not 1 <= frame <= len(stack):
        return HotspotView(series.study, uid)
    image = stack[frame - 1]
    picked = {"frame": frame, "x": response.get("x"), "y": response.get("y")}
    return HotspotView(series.study, uid, picked, (image.instance.id, image.frame))


def question_images(session: Session, question: Question) -> list[FrameRef]:
    """The images of a question for the API: the hotspot series' whole stack (to scroll
    and click in), or for other questions the case's key images (the first frame if none).
    The pages show a hotspot question's stack in the viewer instead (:func:`hotspot_view`)."""
    if question.kind == QuestionKind.HOTSPOT and question.hotspot:
        series = case_series(session, question.case, str(question.hotspot.get("series_uid")))
        if series is not None:
            return [_ref(s.instance, s.frame) for s in series_stack(session, series)]
        return []
    refs = [_ref(k.instance, k.frame) for k in question.case.key_images]
    if not refs:
        first = session.scalars(
            select(Instance)
            .join(Series, Series.id == Instance.series_id)
            .join(CaseStudy, CaseStudy.study_id == Series.study_id)
            .where(CaseStudy.case_id == question.case_id)
            .order_by(
                CaseStudy.position,
                Series.series_number,
                Instance.position,
                Instance.instance_number,
                Instance.id,
            )
        ).first()
        if first is not None:
            refs.append(_ref(first, 1))
    return refs
