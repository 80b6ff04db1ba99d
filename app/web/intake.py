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

from app.db import get_session
from app.errors import TeachfileError
from app.services import inbox, intake, uploads
from app.services.access import Permission
from app.web.guard import page_arg, permission_required, remote_addr, signed_in_actor

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
@permission_required(Permission.RECEIVE_STUDIES)
def upload() -> ResponseReturnValue:
    wants_json = request.accept_mimetypes.best == "application/json"
    if request.method == "GET":
        return render_template("intake/upload.html")
    request.max_content_length = MAX_UPLOAD_BYTES
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        message = "Choose at least one file, folder or zip to upload."
        if wants_json:
            return {"error": message, "status": 400}, 400
        flash(message, "error")
        return render_template("intake/upload.html"), 400
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
        if wants_json:
            return {"error": err.message, "status": err.status}, err.status
        flash(err.message, "error")
        return render_template("intake/upload.html"), err.status
    session.commit()
    if wants_json:
        return {
            "files": [
                {"name": f.name, "outcome": f.outcome, "reason": f.reason} for f in report.files
            ],
            "counts": {
                key: report.count(key)
                for key in ("stored", "duplicate", "quarantined", "refused", "skipped")
            },
            "studies": len(report.studies),
        }
    return render_template("intake/result.html", report=report)


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
