"""Admin pages: accounts, institutions and the audit log."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.db import get_session
from app.errors import TeachfileError
from app.models import Role, User
from app.services import accounts, audit
from app.services.access import Permission
from app.web.guard import current_actor, permission_required, remote_addr

bp = Blueprint("admin", __name__, url_prefix="/admin")


class UserForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role])
    institution_id = SelectField("Institution", coerce=str)
    is_active = BooleanField("Account active")


class InstitutionForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])


def _page_arg() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and len(value) < 7 else 1


@bp.get("/users")
@permission_required(Permission.MANAGE_USERS)
def users() -> ResponseReturnValue:
    page = accounts.list_users(get_session(), actor=_actor(), page=_page_arg())
    return render_template("admin/users.html", page=page)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_USERS)
def user_edit(user_id: int) -> ResponseReturnValue:
    session = get_session()
    user = accounts.get_user(session, user_id, actor=_actor())
    form = UserForm(obj=None if request.method == "POST" else user)
    form.institution_id.choices = [SelectChoice("", "— none —")] + [
        SelectChoice(str(i.id), i.name) for i in accounts.list_institutions(session)
    ]
    if request.method == "GET":
        form.role.data = user.role.value
        form.institution_id.data = str(user.institution_id or "")
    if form.validate_on_submit():
        try:
            accounts.update_user(
                session,
                user.id,
                role=Role(form.role.data),
                institution_id=int(form.institution_id.data) if form.institution_id.data else None,
                is_active=bool(form.is_active.data),
                actor=_actor(),
                remote_addr=remote_addr(),
            )
        except TeachfileError as err:
            session.rollback()
            flash(err.message, "error")
            return render_template("admin/user_edit.html", form=form, user=user), err.status
        session.commit()
        flash(f"Saved {user.email}.", "success")
        return redirect(url_for("admin.users"))
    status = 400 if form.is_submitted() else 200
    return render_template("admin/user_edit.html", form=form, user=user), status


@bp.route("/institutions", methods=["GET", "POST"])
@permission_required(Permission.MANAGE_INSTITUTIONS)
def institutions() -> ResponseReturnValue:
    session = get_session()
    form = InstitutionForm()
    status = 200
    if form.validate_on_submit():
        try:
            institution = accounts.create_institution(
                session, form.name.data or "", actor=_actor(), remote_addr=remote_addr()
            )
        except TeachfileError as err:
            session.rollback()
            flash(err.message, "error")
            status = err.status
        else:
            session.commit()
            flash(f"Added {institution.name}.", "success")
            return redirect(url_for("admin.institutions"))
    elif form.is_submitted():
        status = 400
    items = accounts.list_institutions(session)
    return render_template("admin/institutions.html", form=form, institutions=items), status


@bp.get("/audit")
@permission_required(Permission.VIEW_AUDIT_LOG)
def audit_log() -> ResponseReturnValue:
    action = request.args.get("action", "")[:64]
    page = audit.list_events(get_session(), page=_page_arg(), action=action)
    return render_template("admin/audit.html", page=page, action=action)


def _actor() -> User:
    actor = current_actor()
    assert actor is not None  # permission_required ran first
    return actor
