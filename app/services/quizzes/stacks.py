"""The images a question shows: a series' stack, its frames, and where the viewer opens."""

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
class QuestionViewer:
    """Where a question's viewer opens (issue 15 item 6): the study, the series opened first,
    the image shown first as (instance id, frame), the learner's mark (``{"frame", "x", "y"}``,
    frame 1-based in that series' stack) and, in feedback only, the hotspot's ``target``
    (``{"frames": [first, last], "region": {...}}``, in the same stack and image pixels)."""

    study: Study
    series_uid: str
    start: tuple[int, int] | None = None
    picked: dict[str, Any] | None = None
    target: dict[str, Any] | None = None


def _first_series(session: Session, question: Question) -> Series | None:
    """A non-hotspot question's series: its case's first key image's, else the first with
    images (in the order the author put the studies)."""
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


def question_viewer(
    session: Session,
    question: Question,
    response: dict[str, Any] | None,
    *,
    actor: User | None,
    with_target: bool = False,
) -> QuestionViewer | None:
    """The viewer of any question (None if the case has no image the actor may see).

    Hotspot: the question's series, opened on the learner's click if they gave one, else (in
    feedback) on the first image of the target's range, else on the first image. Other kinds:
    the series of the case's first key image, opened on it (the image the author chose to
    show; its caption is not shown). The region and the frame range are handed out only
    ``with_target`` (the caller shows feedback); before that, only UIDs and the learner's
    own click.
    """
    if question.kind == QuestionKind.HOTSPOT:
        spot = question.hotspot or {}
        series = case_series(session, question.case, str(spot.get("series_uid", "")))
    else:
        series = _first_series(session, question)
    if series is None or not can_view_study_images(session, actor, series.study):
        return None
    uid = series.series_instance_uid
    if question.kind != QuestionKind.HOTSPOT:
        key = next(iter(question.case.key_images), None)
        if key is None or key.instance.series_id != series.id:
            return QuestionViewer(series.study, uid)
        return QuestionViewer(series.study, uid, (key.instance_id, key.frame))
    stack = series_stack(session, series)
    target = None
    if with_target and question.hotspot:
        frames = [int(f) for f in question.hotspot.get("frames", [1, 1])]
        target = {"frames": frames, "region": question.hotspot.get("region") or {}}
    frame = as_int((response or {}).get("frame"))
    if response and response.get("series_uid") == uid and frame and 1 <= frame <= len(stack):
        image = stack[frame - 1]
        picked = {"frame": frame, "x": response.get("x"), "y": response.get("y")}
        return QuestionViewer(
            series.study, uid, (image.instance.id, image.frame), picked, target
        )
    if target and 1 <= target["frames"][0] <= len(stack):
        image = stack[target["frames"][0] - 1]
        return QuestionViewer(series.study, uid, (image.instance.id, image.frame), None, target)
    return QuestionViewer(series.study, uid, None, None, target)


def question_images(session: Session, question: Question) -> list[FrameRef]:
    """The images of a question for the API: the hotspot series' whole stack (to scroll
    and click in), or for other questions the case's key images (the first frame if none).
    The pages show every question's series in the viewer instead (:func:`question_viewer`)."""
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
