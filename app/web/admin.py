"""Admin pages: accounts, institutions and the audit log."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.db import get_session
from app.errors import Invalid
from app.models import Role
from app.services import accounts, audit, quarantine, sources
from app.services.access import Permission
from app.web.guard import (
    page_arg,
    permission_required,
    remote_addr,
    signed_in_actor,
    submit,
)
from app.web.intake import config as intake_config

bp = Blueprint("admin", __name__, url_prefix="/admin")


class UserForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role])
    institution_id = SelectField("Institution", coerce=str)
    is_active = BooleanField("Account active")


class InstitutionForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])


class SourceForm(FlaskForm):
    ae_title = StringField("Calling AE title", validators=[DataRequired(), Length(max=16)])
    host = StringField("Only from IP address (optional)", validators=[Optional(), Length(max=64)])
    institution_id = SelectField("Institution")


class ReleaseForm(FlaskForm):
    rectangles = TextAreaField(
        "Rectangles to black out (x,y,width,height in image pixels, one a line)",
        validators=[Length(max=2000)],
    )


@bp.get("/users")
@permission_required(Permission.MANAGE_USERS)
def users() -> ResponseReturnValue:
    page = accounts.list_users(get_session(), actor=signed_in_actor(), page=page_arg())
    return render_template("admin/users.html", page=page)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_USERS)
def user_edit(user_id: int) -> ResponseReturnValue:
    session = get_session()
    user = accounts.get_user(session, user_id, actor=signed_in_actor())
    form = UserForm(obj=None if request.method == "POST" else user)
    form.institution_id.choices = [SelectChoice("", "— none —")] + [
        SelectChoice(str(i.id), i.name) for i in accounts.list_institutions(session)
    ]
    if request.method == "GET":
        form.role.data = user.role.value
        form.institution_id.data = str(user.institution_id or "")
    done = submit(
        form,
        lambda: accounts.update_user(
            session,
            user.id,
            role=Role(form.role.data),
            institution_id=int(form.institution_id.data) if form.institution_id.data else None,
            is_active=bool(form.is_active.data),
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
        ),
        success=f"Saved {user.email}.",
    )
    if done.result is not None:
        return redirect(url_for("admin.users"))
    return render_template("admin/user_edit.html", form=form, user=user), done.status


@bp.route("/institutions", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_INSTITUTIONS)
def institutions() -> ResponseReturnValue:
    session = get_session()
    form = InstitutionForm()
    done = submit(
        form,
        lambda: accounts.create_institution(
            session, form.name.data or "", actor=signed_in_actor(), remote_addr=remote_addr()
        ),
        success=lambda institution: f"Added {institution.name}.",
    )
    if done.result is not None:
        return redirect(url_for("admin.institutions"))
    items = accounts.list_institutions(session)
    return render_template("admin/institutions.html", form=form, institutions=items), done.status


@bp.get("/audit")
@permission_required(Permission.VIEW_AUDIT_LOG)
def audit_log() -> ResponseReturnValue:
    action = request.args.get("action", "")[:64]
    page = audit.list_events(get_session(), page=page_arg(), action=action)
    return render_template("admin/audit.html", page=page, action=action)


@bp.route("/sources", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SOURCES)
def sources_page() -> ResponseReturnValue:
    session = get_session()
    form = SourceForm()
    form.institution_id.choices = [
        SelectChoice(str(i.id), i.name) for i in accounts.list_institutions(session)
    ]
    done = submit(
        form,
        lambda: sources.add_source(
            session,
            form.ae_title.data or "",
            institution_id=int(form.institution_id.data),
            host=form.host.data,
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
        ),
        success=lambda source: f"{source.ae_title} may now send studies.",
    )
    if done.result is not None:
        return redirect(url_for("admin.sources_page"))
    items = sources.list_sources(session)
    return render_template("admin/sources.html", form=form, sources=items), done.status


@bp.post("/sources/<ae_title>/remove")
@permission_required(Permission.MANAGE_SOURCES)
def source_remove(ae_title: str) -> ResponseReturnValue:
    session = get_session()
    sources.remove_source(session, ae_title, actor=signed_in_actor(), remote_addr=remote_addr())
    session.commit()
    flash(f"{ae_title} may no longer send.", "success")
    return redirect(url_for("admin.sources_page"))


@bp.get("/quarantine")
@permission_required(Permission.MANAGE_SOURCES)
def quarantine_list() -> ResponseReturnValue:
    page = quarantine.list_held(get_session(), actor=signed_in_actor(), page=page_arg())
    return render_template("admin/quarantine.html", page=page)


@bp.route("/quarantine/<int:item_id>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_SOURCES)
def quarantine_item(item_id: int) -> ResponseReturnValue:
    session = get_session()
    item = quarantine.get_held(session, item_id, actor=signed_in_actor())
    form = ReleaseForm()
    done = submit(
        form,
        lambda: quarantine.release(
            session,
            item.id,
            form.rectangles.data or "",
            actor=signed_in_actor(),
            config=intake_config(),
            remote_addr=remote_addr(),
        ),
        success="Released: the cleaned object is in its institution's inbox.",
    )
    if done.result is not None:
        return redirect(url_for("admin.quarantine_list"))
    geometry = quarantine.held_geometry(
        session, item.id, actor=signed_in_actor(), config=intake_config()
    )
    return render_template(
        "admin/quarantine_item.html", item=item, form=form, geometry=geometry
    ), done.status


@bp.get("/quarantine/<int:item_id>/image")
@permission_required(Permission.MANAGE_SOURCES)
def quarantine_image(item_id: int) -> ResponseReturnValue:
    png = quarantine.held_frame(
        get_session(),
        item_id,
        _frame_arg(),
        actor=signed_in_actor(),
        config=intake_config(),
        thumbnail=request.args.get("size") == "thumb",
    )
    return _png(png)


@bp.get("/quarantine/<int:item_id>/ocr")
@permission_required(Permission.MANAGE_SOURCES)
def quarantine_ocr(item_id: int) -> ResponseReturnValue:
    proposal = quarantine.propose(
        get_session(), item_id, actor=signed_in_actor(), config=intake_config()
    )
    response = jsonify(
        available=proposal.available,
        message=proposal.message,
        frames_total=proposal.frames_total,
        frames_checked=proposal.frames_checked,
        rectangles=[list(r) for r in proposal.rectangles],
        by_frame={str(k): [list(r) for r in v] for k, v in proposal.by_frame.items()},
    )
    response.cache_control.no_store = True
    return response


@bp.get("/quarantine/<int:item_id>/preview")
@permission_required(Permission.MANAGE_SOURCES)
def quarantine_preview(item_id: int) -> ResponseReturnValue:
    """The frame blacked out as release would store it; a GET because nothing changes."""
    png = quarantine.preview(
        get_session(),
        item_id,
        request.args.get("rectangles", "")[:2000],
        _frame_arg(),
        actor=signed_in_actor(),
        config=intake_config(),
    )
    return _png(png)


def _frame_arg() -> int:
    raw = request.args.get("frame", "1")
    if not raw.isdigit() or len(raw) > 6:
        raise Invalid("The frame must be a whole number.")
    return int(raw)


def _png(png: bytes) -> Response:
    response = Response(png, mimetype="image/png")
    response.cache_control.no_store = True  # held pixels may show identifying text
    return response


@bp.post("/quarantine/<int:item_id>/delete")
@permission_required(Permission.MANAGE_SOURCES)
def quarantine_delete(item_id: int) -> ResponseReturnValue:
    session = get_session()
    quarantine.delete(
        session, item_id, actor=signed_in_actor(), config=intake_config(), remote_addr=remote_addr()
    )
    session.commit()
    flash("Deleted the held object.", "success")
    return redirect(url_for("admin.quarantine_list"))
