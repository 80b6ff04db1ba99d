"""Images over HTTP: DICOMweb-shaped rendered frames and thumbnails, the viewer's metadata
and page, ROI statistics, and the annotation API.

URLs follow PS3.18 (``/studies/{study}/series/{series}/instances/{instance}/frames/{n}/
rendered``, ``.../thumbnail``). Every URL names immutable content, so answers are cached
for a year (``immutable``) with an ETag; ``public`` only when a visitor could see the
study, else ``private`` so no shared proxy keeps them. ``Save-Data: on`` gets a smaller,
lower-quality frame (``Vary: Save-Data``).
"""

from __future__ import annotations

import gzip
import json
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask.typing import ResponseReturnValue

from app.db import get_session
from app.errors import Invalid
from app.models import Annotation, Case, Study
from app.services import annotations as annotation_service
from app.services import images
from app.services.access import Permission, can
from app.web.guard import current_actor, permission_required

bp = Blueprint("images", __name__)

YEAR = 31536000
_FRAME = "/images/studies/<study>/series/<series>/instances/<instance>/frames/<int:frame>"


def config() -> images.ImagesConfig:
    """One per application, so the cache's write tally (when to sweep) is shared."""
    found = current_app.extensions.get("teachfile.images")
    if found is None:
        found = images.make_config(
            current_app.config["DATA_DIR"], int(current_app.config["RENDER_CACHE_BYTES"])
        )
        current_app.extensions["teachfile.images"] = found
    return found


def save_data() -> bool:
    """The ``Save-Data`` client hint (the reader asked for a lighter page)."""
    return request.headers.get("Save-Data", "").strip().lower() == "on"


def _cache_headers(response: Response, etag: str, public: bool, *, immutable: bool) -> None:
    response.set_etag(etag)
    if public:
        response.cache_control.public = True
    else:
        response.cache_control.private = True
    if immutable:
        response.cache_control.max_age = YEAR
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True


def _image(answer: images.ImageAnswer, vary: str) -> Response:
    if request.if_none_match.contains(answer.etag):
        response = Response(status=304)
    else:
        response = Response(answer.body(), mimetype=answer.media_type)
    _cache_headers(response, answer.etag, answer.public, immutable=True)
    response.headers["Vary"] = vary
    return response


@bp.get(f"{_FRAME}/rendered")
def frame(study: str, series: str, instance: str, frame: int) -> ResponseReturnValue:
    """One frame as JPEG (default) or PNG (``format=png``, or an Accept that names PNG only)."""
    prefer_png = (
        not request.args.get("format")
        and request.accept_mimetypes.best_match(["image/jpeg", "image/png"]) == "image/png"
    )
    render_request = images.parse_render_request(
        request.args, frame=frame, save_data=save_data(), prefer_png=prefer_png
    )
    answer = images.rendered_frame(
        get_session(), config(), study, series, instance, render_request, actor=current_actor()
    )
    return _image(answer, "Save-Data, Accept")


@bp.get("/images/studies/<study>/series/<series>/thumbnail")
def series_thumbnail(study: str, series: str) -> ResponseReturnValue:
    answer = images.series_thumbnail(get_session(), config(), study, series, actor=current_actor())
    return _image(answer, "Save-Data")


@bp.get("/images/studies/<study>/series/<series>/instances/<instance>/thumbnail")
def instance_thumbnail(study: str, series: str, instance: str) -> ResponseReturnValue:
    answer = images.instance_thumbnail(
        get_session(), config(), study, series, instance, actor=current_actor()
    )
    return _image(answer, "Save-Data")


@bp.get("/images/studies/<study>/series/<series>/metadata")
def metadata(study: str, series: str) -> ResponseReturnValue:
    """The series' ordered stack for the viewer; revalidated (a series may gain slices).
    ``?neutral=1``: without the series description (unknowns and quiz questions)."""
    answer = images.series_metadata(
        get_session(),
        config(),
        study,
        series,
        actor=current_actor(),
        neutral=request.args.get("neutral") == "1",
    )
    vary = "Accept-Encoding"
    if request.if_none_match.contains(answer.etag):
        response = Response(status=304)
    else:
        body = json.dumps(answer.data, separators=(",", ":")).encode()
        response = Response(body, mimetype="application/json")
        # A 200-slice CT's UIDs are mostly digits: gzip takes them to about a third,
        # which is a second saved on a 384 kbit/s link.
        if "gzip" in request.headers.get("Accept-Encoding", "") and len(body) > 1024:
            response.set_data(gzip.compress(body, compresslevel=6))
            response.headers["Content-Encoding"] = "gzip"
    _cache_headers(response, answer.etag, answer.public, immutable=False)
    response.headers["Vary"] = vary
    return response


@bp.post(f"/api{_FRAME}/roi")
def roi(study: str, series: str, instance: str, frame: int) -> ResponseReturnValue:
    """Ellipse statistics on the real pixel values: JSON ``{cx, cy, rx, ry}`` in image pixels."""
    ellipse = images.parse_ellipse(request.get_json(silent=True))
    stats = images.roi(
        get_session(), config(), study, series, instance, frame, ellipse, actor=current_actor()
    )
    return {
        "mean": stats.mean,
        "sd": stats.sd,
        "min": stats.min,
        "max": stats.max,
        "area_mm2": stats.area_mm2,
        "pixel_count": stats.pixel_count,
        "units": stats.units,
        "spacing_source": stats.spacing_source,
    }


@bp.get("/viewer/studies/<study>")
def viewer(study: str) -> ResponseReturnValue:
    """The standalone viewer: a study's series with thumbnails, and the stack.

    ``?case=<id>`` shows that case's annotations (the case must show the study);
    ``?series=<uid>`` opens that series first.
    """
    session = get_session()
    found = images.get_study(session, study, actor=current_actor())
    case = images.viewer_case(session, request.args.get("case", ""), found, actor=current_actor())
    series = request.args.get("series", "")[:64] or None
    return render_template("images/viewer.html", study=found, case=case, series=series)


@bp.app_template_global("image_viewer")
def image_viewer(
    study: Study,
    case: Case | None = None,
    start: tuple[int, int] | None = None,
    series: str | None = None,
) -> images.ViewerSetup | None:
    """For templates that embed the viewer (``images/_viewer.html``)."""
    return images.viewer_setup(
        get_session(), study, actor=current_actor(), case=case, start=start, series_uid=series
    )


@bp.app_template_global("image_save_data")
def image_save_data() -> bool:
    return save_data()


# ---------------------------------------------------------------------------
# Annotations
# ---------------------------------------------------------------------------


def note_json(note: Annotation) -> dict[str, Any]:
    actor = current_actor()
    return {
        "id": note.id,
        "kind": note.kind,
        "points": note.points,
        "text": note.text,
        "visibility": note.visibility.value,
        "teaching": note.teaching,
        "instance": note.instance.sop_instance_uid,
        "frame": note.frame,
        "author": note.user.display_name if note.user else "",
        "mine": actor is not None and note.user_id == actor.id,
        "editable": can(actor, Permission.EDIT, note),
    }


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    return body


@bp.get("/api/cases/<int:case_id>/annotations")
def annotation_list(case_id: int) -> ResponseReturnValue:
    notes = annotation_service.list_annotations(
        get_session(), case_id, actor=current_actor(), series_uid=request.args.get("series")
    )
    response = Response(
        json.dumps({"items": [note_json(n) for n in notes]}), mimetype="application/json"
    )
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


@bp.post("/api/cases/<int:case_id>/annotations")
@permission_required(Permission.AUTHENTICATED)
def annotation_create(case_id: int) -> ResponseReturnValue:
    session = get_session()
    actor = current_actor()
    assert actor is not None
    note = annotation_service.create_annotation(session, case_id, _json_body(), actor=actor)
    session.commit()
    return note_json(note), 201


@bp.patch("/api/cases/<int:case_id>/annotations/<int:annotation_id>")
@permission_required(Permission.AUTHENTICATED)
def annotation_update(case_id: int, annotation_id: int) -> ResponseReturnValue:
    session = get_session()
    actor = current_actor()
    assert actor is not None
    note = annotation_service.update_annotation(
        session, case_id, annotation_id, _json_body(), actor=actor
    )
    session.commit()
    return note_json(note)


@bp.delete("/api/cases/<int:case_id>/annotations/<int:annotation_id>")
@permission_required(Permission.AUTHENTICATED)
def annotation_delete(case_id: int, annotation_id: int) -> ResponseReturnValue:
    session = get_session()
    actor = current_actor()
    assert actor is not None
    annotation_service.delete_annotation(session, case_id, annotation_id, actor=actor)
    session.commit()
    return "", 204
