"""Images for the viewer: rendered frames, thumbnails, series metadata and ROI statistics.

Every request names immutable content (an object's UIDs, a frame number and the
render parameters), so answers carry an ETag made from the object's sha256 and
the parameters, and the web layer may cache them for a year. Access is asked of
:func:`app.services.access.can_view_study_images` on every request; UIDs that do
not exist, do not belong together, or belong to a study the actor may not see
are all the same :class:`NotFound`.

Rendered bytes go through the render cache (:mod:`app.rendercache`), so the
second reader of a frame costs a file read.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from app.dicom import render
from app.errors import Invalid, NotFound
from app.models import Case, Instance, Series, Study, User
from app.rendercache import RenderCache
from app.services.access import Permission, can, can_view_study_images
from app.storage import ObjectStore

#: What ``Save-Data: on`` gets: a frame no larger than this square, at this JPEG quality.
SAVE_DATA_VIEWPORT = 512
SAVE_DATA_QUALITY = 50
DEFAULT_QUALITY = 85
THUMBNAIL_SIZE = 128
#: Renders at once per process: each holds a decoded frame and its float32 copy
#: (up to render.MAX_FRAME_PIXELS x 4 bytes), so memory stays bounded under load.
RENDER_SLOTS = threading.BoundedSemaphore(4)

#: CT window presets (centre, width) in HU.
CT_PRESETS: tuple[tuple[str, float, float], ...] = (
    ("Soft tissue", 40, 400),
    ("Lung", -600, 1500),
    ("Bone", 400, 1800),
    ("Brain", 40, 80),
    ("Liver", 60, 160),
    ("Mediastinum", 50, 350),
    ("Stroke", 40, 40),
)
_UID_MAX = 64


@dataclass(frozen=True)
class ImagesConfig:
    """Where objects are read and renders are cached."""

    store: ObjectStore
    cache: RenderCache


def make_config(data_dir: str, cache_bytes: int) -> ImagesConfig:
    return ImagesConfig(store=ObjectStore(data_dir), cache=RenderCache(data_dir, cache_bytes))


@dataclass(frozen=True)
class ImageAnswer:
    """An image the actor may see: its validator, cacheability and (lazily) its bytes."""

    etag: str
    public: bool
    media_type: str
    produce: Callable[[], bytes]

    def body(self) -> bytes:
        return self.produce()


@dataclass(frozen=True)
class JsonAnswer:
    etag: str
    public: bool
    data: dict[str, Any]


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Invalid(f"{what} must be a number") from None
    if not math.isfinite(value):
        raise Invalid(f"{what} must be a finite number")
    return value


def _whole(text: str, what: str) -> int:
    text = text.strip()
    if not text.isdigit() or len(text) > 6:
        raise Invalid(f"{what} must be a whole number")
    return int(text)


def parse_render_request(
    args: Mapping[str, str], *, frame: int, save_data: bool = False, prefer_png: bool = False
) -> render.RenderRequest:
    """Turn the query (``window=c,w``, ``quality``, ``viewport=w,h``, ``format``, ``invert``)
    into a checked :class:`~app.dicom.render.RenderRequest`.

    ``save_data`` (the ``Save-Data: on`` request header) caps the viewport at
    :data:`SAVE_DATA_VIEWPORT` and the quality at :data:`SAVE_DATA_QUALITY`.
    """
    window: tuple[float, float] | None = None
    if args.get("window"):
        parts = args["window"].split(",")
        if len(parts) != 2:
            raise Invalid("window must be centre,width")
        centre, width = _number(parts[0], "the window centre"), _number(parts[1], "the width")
        if width <= 0:
            raise Invalid("the window width must be greater than zero")
        if width < 1:
            raise Invalid("the window width must be at least 1")
        if abs(centre) > 1e7 or width > 1e7:
            raise Invalid("the window is outside any modality's range")
        window = (centre, width)
    quality = DEFAULT_QUALITY
    if args.get("quality"):
        quality = _whole(args["quality"], "quality")
        low, high = render.QUALITY_RANGE
        if not low <= quality <= high:
            raise Invalid(f"quality must be from {low} to {high}")
    viewport: tuple[int, int] | None = None
    if args.get("viewport"):
        parts = args["viewport"].split(",")
        if len(parts) != 2:
            raise Invalid("viewport must be width,height")
        w, h = (_whole(p, "the viewport") for p in parts)
        if not (1 <= w <= render.MAX_VIEWPORT and 1 <= h <= render.MAX_VIEWPORT):
            raise Invalid(f"viewport sides must be from 1 to {render.MAX_VIEWPORT}")
        viewport = (w, h)
    fmt = args.get("format", "")
    if fmt not in ("", "jpeg", "png"):
        raise Invalid("format must be jpeg or png")
    if not fmt:
        fmt = "png" if prefer_png else "jpeg"
    invert = args.get("invert", "") in ("1", "true", "on", "yes")
    if save_data:
        side = SAVE_DATA_VIEWPORT
        viewport = (min(viewport[0], side), min(viewport[1], side)) if viewport else (side, side)
        quality = min(quality, SAVE_DATA_QUALITY)
        if fmt == "png":
            fmt = "jpeg"  # lossless frames are several times the bytes
    return render.RenderRequest(
        frame=frame,
        window=window,
        format="png" if fmt == "png" else "jpeg",
        quality=quality,
        viewport=viewport,
        invert=invert,
    )


def parse_ellipse(body: object) -> tuple[float, float, float, float]:
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object with cx, cy, rx and ry.")
    values = []
    for key in ("cx", "cy", "rx", "ry"):
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"{key} must be a number")
        if not math.isfinite(value) or abs(value) > 1e6:
            raise Invalid(f"{key} must be a finite number")
        values.append(float(value))
    return values[0], values[1], values[2], values[3]


# ---------------------------------------------------------------------------
# Lookups and access
# ---------------------------------------------------------------------------


def _check_uids(*uids: str) -> None:
    if any(not uid or len(uid) > _UID_MAX for uid in uids):
        raise NotFound("No such image.")


def _visible(session: Session, actor: User | None, study: Study) -> bool:
    """Whether the actor may see the study; public when a visitor could."""
    if not can_view_study_images(session, actor, study):
        raise NotFound("No such image.")
    return actor is None or can_view_study_images(session, None, study)


def get_study(session: Session, study_uid: str, *, actor: User | None) -> Study:
    """A study whose images the actor may see, or NotFound."""
    _check_uids(study_uid)
    study = session.scalars(select(Study).where(Study.study_instance_uid == study_uid)).first()
    if study is None or not can_view_study_images(session, actor, study):
        raise NotFound("No such study.")
    return study


def _series(session: Session, study_uid: str, series_uid: str) -> Series:
    _check_uids(study_uid, series_uid)
    series = session.scalars(
        select(Series)
        .join(Study, Study.id == Series.study_id)
        .options(contains_eager(Series.study))
        .where(Study.study_instance_uid == study_uid, Series.series_instance_uid == series_uid)
    ).first()
    if series is None:
        raise NotFound("No such series.")
    return series


def _instance(session: Session, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    _check_uids(study_uid, series_uid, sop_uid)
    # One query for the instance, its series and study (the access check needs the study).
    instance = session.scalars(
        select(Instance)
        .join(Series, Series.id == Instance.series_id)
        .join(Study, Study.id == Series.study_id)
        .options(contains_eager(Instance.series).contains_eager(Series.study))
        .where(
            Study.study_instance_uid == study_uid,
            Series.series_instance_uid == series_uid,
            Instance.sop_instance_uid == sop_uid,
        )
    ).first()
    if instance is None:
        raise NotFound("No such image.")
    return instance


def _etag(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _cached(config: ImagesConfig, sha256: str, key: str, make: Callable[[], bytes]) -> bytes:
    data = config.cache.get(sha256, key)
    if data is not None:
        return data
    with RENDER_SLOTS:
        data = make()
    config.cache.put(sha256, key, data)
    return data


# ---------------------------------------------------------------------------
# Frames and thumbnails
# ---------------------------------------------------------------------------


def rendered_frame(
    session: Session,
    config: ImagesConfig,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: render.RenderRequest,
    *,
    actor: User | None,
) -> ImageAnswer:
    """Frame ``request.frame`` (1-based, PS3.18 10.4.1.1.3) of an instance, rendered."""
    instance = _instance(session, study_uid, series_uid, sop_uid)
    public = _visible(session, actor, instance.series.study)
    if not 1 <= request.frame <= max(instance.number_of_frames, 1):
        raise NotFound("The instance has no such frame.")
    key = request.cache_key()
    path = config.store.path(instance.sha256)
    return ImageAnswer(
        etag=_etag(instance.sha256, key),
        public=public,
        media_type="image/png" if request.format == "png" else "image/jpeg",
        produce=lambda: _cached(
            config, instance.sha256, key, lambda: render.render_frame(path, request)
        ),
    )


def _thumbnail(config: ImagesConfig, instance: Instance, public: bool) -> ImageAnswer:
    key = f"thumb{THUMBNAIL_SIZE}.jpg"
    path = config.store.path(instance.sha256)
    return ImageAnswer(
        etag=_etag(instance.sha256, key),
        public=public,
        media_type="image/jpeg",
        produce=lambda: _cached(
            config, instance.sha256, key, lambda: render.thumbnail(path, THUMBNAIL_SIZE)
        ),
    )


def instance_thumbnail(
    session: Session,
    config: ImagesConfig,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    *,
    actor: User | None,
) -> ImageAnswer:
    instance = _instance(session, study_uid, series_uid, sop_uid)
    return _thumbnail(config, instance, _visible(session, actor, instance.series.study))


def series_thumbnail(
    session: Session, config: ImagesConfig, study_uid: str, series_uid: str, *, actor: User | None
) -> ImageAnswer:
    """The middle instance's thumbnail, as in the inbox."""
    series = _series(session, study_uid, series_uid)
    public = _visible(session, actor, series.study)
    if not series.instances:
        raise NotFound("The series has no images.")
    return _thumbnail(config, series.instances[len(series.instances) // 2], public)


# ---------------------------------------------------------------------------
# Metadata for the viewer
# ---------------------------------------------------------------------------


def _geometry(config: ImagesConfig, instance: Instance) -> dict[str, Any]:
    """The instance's geometry as JSON-ready values, cached beside its renders."""
    raw = config.cache.get(instance.sha256, "geometry.json")
    if raw is not None:
        try:
            cached: dict[str, Any] = json.loads(raw)
            return cached
        except ValueError:
            pass
    try:
        g = render.read_geometry(config.store.path(instance.sha256))
    except FileNotFoundError:
        raise NotFound("The stored file is missing.") from None
    data = {
        "rows": g.rows,
        "columns": g.columns,
        "spacing": list(g.pixel_spacing) if g.pixel_spacing else None,
        "spacing_source": g.spacing_source,
        "spacing_note": g.spacing_note,
        "units": g.units,
        "window": list(g.default_window) if g.default_window else None,
        "photometric": g.photometric,
        "modality": g.modality,
        "greyscale": g.is_greyscale,
    }
    config.cache.put(instance.sha256, "geometry.json", json.dumps(data).encode())
    return data


def presets_for(modality: str) -> list[dict[str, Any]]:
    """Window presets: CT's by name; other modalities use the object's own window."""
    if modality.upper() == "CT":
        return [{"name": n, "centre": c, "width": w} for n, c, w in CT_PRESETS]
    return []


def series_metadata(
    session: Session,
    config: ImagesConfig,
    study_uid: str,
    series_uid: str,
    *,
    actor: User | None,
    neutral: bool = False,
) -> JsonAnswer:
    """The ordered stack of a series for the viewer.

    Geometry shared by the instances is given once (``defaults``); an instance lists
    only what differs, which keeps a 200-slice CT's metadata to a few kilobytes.
    ``neutral`` leaves out the series description, which may name the diagnosis (the
    viewer of an unknown or of a quiz question asks for it: issue 15).
    """
    series = _series(session, study_uid, series_uid)
    public = _visible(session, actor, series.study)
    instances = list(series.instances)
    defaults: dict[str, Any] = _geometry(config, instances[0]) if instances else {}
    items: list[dict[str, Any]] = []
    for instance in instances:
        geometry = _geometry(config, instance)
        item: dict[str, Any] = {"uid": instance.sop_instance_uid}
        if instance.number_of_frames > 1:  # as quizzes.stacks.series_stack: at least one frame
            item["frames"] = instance.number_of_frames
        item.update({k: v for k, v in geometry.items() if defaults.get(k) != v})
        items.append(item)
    modality = series.modality or str(defaults.get("modality") or "")
    data = {
        "study": study_uid,
        "series": series_uid,
        "modality": modality,
        "number": series.series_number,
        "presets": presets_for(modality) if defaults.get("greyscale") else [],
        "defaults": defaults,
        "instances": items,
    }
    if not neutral:
        data["description"] = series.description
    etag = _etag("meta-neutral" if neutral else "meta", series_uid, *(i.sha256 for i in instances))
    return JsonAnswer(etag=etag, public=public, data=data)


def roi(
    session: Session,
    config: ImagesConfig,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame: int,
    ellipse: tuple[float, float, float, float],
    *,
    actor: User | None,
) -> render.RoiStats:
    """Mean, SD, min, max and area inside an ellipse, on the real values (HU for CT)."""
    instance = _instance(session, study_uid, series_uid, sop_uid)
    _visible(session, actor, instance.series.study)
    if not 1 <= frame <= max(instance.number_of_frames, 1):
        raise NotFound("The instance has no such frame.")
    with RENDER_SLOTS:
        return render.roi_stats(config.store.path(instance.sha256), frame, ellipse)


# ---------------------------------------------------------------------------
# The viewer's page
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ViewerSeries:
    uid: str
    number: int | None
    description: str
    modality: str
    count: int


@dataclass(frozen=True)
class ViewerSetup:
    """What the viewer's HTML needs: the series and the frame shown first."""

    study_uid: str
    series: list[ViewerSeries]
    first_series: str
    first_instance: str
    first_frame: int
    first_index: int
    can_teach: bool
    signed_in: bool


def viewer_case(session: Session, case_id: str, study: Study, *, actor: User | None) -> Case | None:
    """The case named by the standalone viewer's ``?case=`` (for its annotations), if any.

    NotFound unless the actor may see the case and the case shows the study.
    """
    if not case_id:
        return None
    if not case_id.isdigit() or len(case_id) > 12:
        raise NotFound("No such case.")
    case = session.get(Case, int(case_id))
    if case is None or not can(actor, Permission.VIEW, case):
        raise NotFound("No such case.")
    if all(link.study_id != study.id for link in case.studies):
        raise NotFound("No such case.")
    return case


def viewer_setup(
    session: Session,
    study: Study,
    *,
    actor: User | None,
    case: Case | None = None,
    start: tuple[int, int] | None = None,
    series_uid: str | None = None,
) -> ViewerSetup | None:
    """The viewer's starting point for a study the actor may see (None if it has no images).

    ``start`` is (instance id, frame), such as a case's key image; otherwise the
    first frame of ``series_uid`` or of the first series that has images.
    """
    if not can_view_study_images(session, actor, study):
        raise NotFound("No such study.")
    listed = [s for s in study.series if s.instances]
    if not listed:
        return None
    first_series, first_instance, first_frame, first_index = listed[0], None, 1, 0
    for series in listed:
        if series_uid and series.series_instance_uid == series_uid:
            first_series = series
    if start is not None:
        for series in listed:
            index = 0
            for instance in series.instances:
                frames = max(1, instance.number_of_frames)
                if instance.id == start[0] and 1 <= start[1] <= frames:
                    first_series, first_instance = series, instance
                    first_frame, first_index = start[1], index + start[1] - 1
                index += frames
    if first_instance is None:
        first_instance = first_series.instances[0]
    return ViewerSetup(
        study_uid=study.study_instance_uid,
        series=[
            ViewerSeries(
                uid=s.series_instance_uid,
                number=s.series_number,
                description=s.description,
                modality=s.modality,
                count=sum(max(1, i.number_of_frames) for i in s.instances),
            )
            for s in listed
        ],
        first_series=first_series.series_instance_uid,
        first_instance=first_instance.sop_instance_uid,
        first_frame=first_frame,
        first_index=first_index,
        can_teach=case is not None and can(actor, Permission.EDIT, case),
        signed_in=actor is not None,
    )
