"""Who is asking, and the decorator that puts every route behind the permission rule."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import request
from flask_login import current_user

from app.models import User
from app.services.access import Permission, require

P = ParamSpec("P")
R = TypeVar("R")


def current_actor() -> User | None:
    """The logged-in user, or None for a visitor."""
    if current_user.is_authenticated:
        user: User = current_user._get_current_object()
        return user
    return None


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
