"""Who is asking, and the decorator that puts every route behind the permission rule."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Generic, ParamSpec, TypeVar

from flask import current_app, flash, request
from flask_login import current_user
from flask_wtf import FlaskForm

from app.db import get_session
from app.errors import IdentifiersFound, TeachfileError
from app.models import User
from app.services import identifier_gate
from app.services.access import Permission, can, require

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def current_actor() -> User | None:
    """The logged-in user, or None for a visitor."""
    if current_user.is_authenticated:
        user: User = current_user._get_current_object()
        return user
    return None


def signed_in_actor() -> User:
    """The logged-in user, in a view behind ``permission_required`` (which sent visitors
    to log in first)."""
    actor = current_actor()
    assert actor is not None
    return actor


def remote_addr() -> str:
    return request.remote_addr or ""


def page_arg() -> int:
    """The ``page`` query argument; anything odd is page 1."""
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() and len(value) < 7 else 1


def permission_required(permission: Permission) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Refuse the route unless the actor holds ``permission``; visitors are sent to log in."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            actor = current_actor()
            if actor is None:
                from app.web.auth import login_manager

                response: R = login_manager.unauthorized()
                return response
            require(actor, permission)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def body_limit(limit: int, permission: Permission) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let one view take bodies up to ``limit`` bytes from actors holding ``permission``
    (``MAX_CONTENT_LENGTH`` for everyone else, so a visitor cannot make the server spool
    half a gigabyte). Put it right under the route decorator.

    The limit must be set before anything reads the body, and CSRF protection reads the
    form before the view runs: a limit set inside the view came too late, so an upload
    over the app-wide limit was refused by the form parser with an HTML 413 (issue 17).
    """

    def mark(view: Callable[P, R]) -> Callable[P, R]:
        view.body_limit = (limit, permission)  # type: ignore[attr-defined]
        return view

    return mark


def apply_body_limit() -> None:
    """``before_request``, registered ahead of CSRF: the matched view's ``body_limit``."""
    view = current_app.view_functions.get(request.endpoint or "")
    limit: tuple[int, Permission] | None = getattr(view, "body_limit", None)
    if limit is not None and can(current_actor(), limit[1]):
        request.max_content_length = limit[0]


@dataclass(frozen=True)
class Submitted(Generic[T]):
    """What :func:`submit` did: the service's result (None when nothing happened) and the
    status to render the form again with."""

    result: T | None
    status: int
    # The refusal, when the form should show more than its message (identifier findings).
    error: TeachfileError | None = None

    @property
    def findings(self) -> list[dict[str, str]]:
        return self.error.findings if isinstance(self.error, IdentifiersFound) else []


def refused(err: TeachfileError) -> None:
    """Roll back a refused save; an identifier refusal keeps its audit entry (ids, a count)."""
    session = get_session()
    session.rollback()
    if isinstance(err, IdentifiersFound):
        identifier_gate.record_refusal(
            session, err, actor=current_actor(), remote_addr=remote_addr()
        )
        session.commit()


def submit(
    form: FlaskForm, action: Callable[[], T], *, success: str | Callable[[T], str] = ""
) -> Submitted[T]:
    """The one shape of a form POST: validate, call the service, commit, say so.

    An invalid form answers 400 and a refused action its error's status; both roll
    back and flash the reason, and the caller renders the form again with what was
    typed. A GET is 200 with no result.
    """
    if not form.validate_on_submit():
        return Submitted(None, 400 if form.is_submitted() else 200)
    session = get_session()
    try:
        result = action()
    except TeachfileError as err:
        refused(err)
        flash(err.message, "error")
        return Submitted(None, err.status, err)
    session.commit()
    message = success(result) if callable(success) else success
    if message:
        flash(message, "success")
    return Submitted(result, 200)


def run(action: Callable[[], T], *, success: str = "") -> Submitted[T]:
    """A POST without a form: call the service, commit or roll back, and say so.

    A refusal for lack of access (403, 404) still raises, so it renders as an error
    page; any other refusal is flashed and the caller redirects back.
    """
    session = get_session()
    try:
        result = action()
    except TeachfileError as err:
        refused(err)
        if err.status in (403, 404):
            raise
        flash(err.message, "error")
        return Submitted(None, err.status, err)
    session.commit()
    if success:
        flash(success, "success")
    return Submitted(result, 200)
