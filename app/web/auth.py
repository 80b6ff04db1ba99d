"""Registration, log-in, log-out and the account page."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from app.db import get_session
from app.errors import TeachfileError
from app.models import User
from app.services import accounts
from app.services.access import Permission
from app.web.guard import current_actor, permission_required, remote_addr

bp = Blueprint("auth", __name__, url_prefix="/auth")
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Log in to see this page."
login_manager.login_message_category = "info"


def init_app(app: Flask) -> None:
    login_manager.init_app(app)


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    return accounts.load_session_user(get_session(), user_id)


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    if request.path.startswith("/api/"):
        return {"error": "Log in first."}, 401
    flash(login_manager.login_message, "info")
    return redirect(url_for("auth.login", next=request.full_path))


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class RegisterForm(FlaskForm):
    display_name = StringField("Your name", validators=[DataRequired(), Length(max=100)])
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(min=accounts.MIN_PASSWORD, max=256)]
    )
    confirm = PasswordField(
        "Password again", validators=[EqualTo("password", message="The passwords differ.")]
    )


def _safe_next(target: str | None) -> str:
    """Only same-site paths: a log-in link must not bounce the user to another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("main.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 400 if form.is_submitted() else 200
    session = get_session()
    policy = accounts.ThrottlePolicy(
        window_seconds=current_app.config["LOGIN_WINDOW_SECONDS"],
        max_failures_per_account=current_app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
        max_failures_per_address=current_app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
    )
    try:
        user = accounts.authenticate(
            session,
            email=form.email.data or "",
            password=form.password.data or "",
            remote_addr=remote_addr(),
            policy=policy,
        )
    except TeachfileError as err:
        session.commit()  # the failed attempt counts towards throttling
        flash(err.message, "error")
        return render_template("auth/login.html", form=form), err.status
    session.commit()
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    if not current_app.config["ALLOW_REGISTRATION"]:
        flash("Registration is closed here; ask an administrator for an account.", "info")
        return redirect(url_for("auth.login"))
    form = RegisterForm()
    if not form.validate_on_submit():
        status = 400 if form.is_submitted() else 200
        return render_template("auth/register.html", form=form), status
    session = get_session()
    try:
        user = accounts.register(
            session,
            email=form.email.data or "",
            display_name=form.display_name.data or "",
            password=form.password.data or "",
            remote_addr=remote_addr(),
        )
    except TeachfileError as err:
        session.rollback()
        flash(err.message, "error")
        return render_template("auth/register.html", form=form), err.status
    session.commit()
    login_user(user)
    flash("Welcome to Teachfile. An administrator can add you to your hospital.", "success")
    return redirect(url_for("main.index"))


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    actor = current_actor()
    if actor is not None:
        everywhere = request.form.get("everywhere") == "1"
        session = get_session()
        accounts.record_logout(session, actor, everywhere=everywhere, remote_addr=remote_addr())
        session.commit()
        logout_user()
        flash("You are logged out" + (" on every device." if everywhere else "."), "info")
    return redirect(url_for("main.index"))


@bp.get("/account")
@permission_required(Permission.AUTHENTICATED)
def account() -> ResponseReturnValue:
    return render_template("auth/account.html", user=current_actor())
