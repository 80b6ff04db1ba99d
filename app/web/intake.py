"""The educator's inbox and uploads."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from app.db import get_session
from app.errors import Invalid, TeachfileError, TooLarge
from app.services import inbox, intake, uploads
from app.services.access import Permission
from app.web.guard import body_limit, page_arg, permission_required, remote_addr, signed_in_actor

bp = Blueprint("intake", __name__, url_prefix="/intake")

# Uploads may be much larger than other requests: a zipped CT series. Werkzeug
# spools them to anonymous temporary files (unlinked on creation), so nothing
# identifiable stays on disk whatever happens to the request.
MAX_UPLOAD_BYTES = 512 * 1024 * 1024


def config() -> intake.IntakeConfig:
    return intake.make_config(current_app.config["DATA_DIR"], current_app.config["DEID_SECRET"])


@bp.get("/")
@permission_required(Permission.RECEIVE_STUDIES)
def index() -> ResponseReturnValue:
    page = inbox.list_inbox(get_session(), actor=signed_in_actor(), page=page_arg())
    return render_template("intake/index.html", page=page, thumb=inbox.representative_instance)


@bp.route("/upload", methods=["GET", "POST"])
@body_limit(MAX_UPLOAD_BYTES, Permission.RECEIVE_STUDIES)
@permission_required(Permission.RECEIVE_STUDIES)
def upload() -> ResponseReturnValue:
    """Store what can be stored; the status says whether anything was (see the README's API)."""
    wants_json = request.accept_mimetypes.best == "application/json"
    if request.method == "GET":
        return render_template("intake/upload.html")
    try:
        files = [f for f in request.files.getlist("files") if f.filename]
    except RequestEntityTooLarge:
        return _refused(TooLarge("The upload is larger than this server accepts."), wants_json)
    if not files:
        return _refused(
            Invalid(f"{uploads.NO_DICOM} Choose at least one file, folder or zip to upload."),
            wants_json,
            status=422,
        )
    session = get_session()
    try:
        report = uploads.ingest_upload(
            session,
            [(f.filename or "", f.stream) for f in files],
            actor=signed_in_actor(),
            config=config(),
            remote_addr=remote_addr(),
        )
    except TeachfileError as err:
        session.rollback()
        uploads.record_refused_upload(
            session, err, actor=signed_in_actor(), remote_addr=remote_addr()
        )
        session.commit()
        return _refused(err, wants_json)
    session.commit()
    status = report.status
    if wants_json:
        body: dict[str, object] = {
            "summary": report.summary,
            "files": [
                {
                    "item": f.item,
                    "file": f.file,
                    "entry": f.entry or None,
                    "outcome": f.outcome,
                    "reason": f.reason,
                }
                for f in report.files
            ],
            "counts": {
                key: report.count(key)
                for key in ("stored", "duplicate", "quarantined", "refused", "skipped")
            },
            "studies": len(report.studies),
            "notes": report.notes,
        }
        if status != 200:
            body.update(error=report.error, status=status)
        return body, status
    return render_template("intake/result.html", report=report), status


def _refused(err: TeachfileError, wants_json: bool, status: int = 0) -> ResponseReturnValue:
    """The whole upload was refused before any file could be reported on."""
    status = status or err.status
    if wants_json:
        return {"error": err.message, "status": status}, status
    flash(err.message, "error")
    return render_template("intake/upload.html"), status


@bp.get("/studies/<int:study_id>")
@permission_required(Permission.RECEIVE_STUDIES)
def study(study_id: int) -> ResponseReturnValue:
    found = inbox.get_study(get_session(), study_id, actor=signed_in_actor())
    return render_template("intake/study.html", study=found, thumb=inbox.representative_instance)


@bp.post("/studies/<int:study_id>/discard")
@permission_required(Permission.RECEIVE_STUDIES)
def discard(study_id: int) -> ResponseReturnValue:
    session = get_session()
    inbox.discard_study(session, study_id, actor=signed_in_actor(), remote_addr=remote_addr())
    session.commit()
    flash("The study was taken out of the inbox.", "success")
    return redirect(url_for("intake.index"))


@bp.get("/series/<int:series_id>/thumbnail")
@permission_required(Permission.RECEIVE_STUDIES)
def series_thumbnail(series_id: int) -> ResponseReturnValue:
    data, etag = inbox.series_thumbnail(
        get_session(), series_id, actor=signed_in_actor(), store=config().store
    )
    response = Response(data, mimetype="image/jpeg")
    response.set_etag(etag)
    response.cache_control.private = True
    response.cache_control.max_age = 31536000
    response.cache_control.immutable = True
    return response.make_conditional(request)
