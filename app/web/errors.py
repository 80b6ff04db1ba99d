"""Error pages in plain words, and JSON error bodies under ``/api/``."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from flask import Flask, before_render_template, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from app.errors import IdentifiersFound, TeachfileError
from app.web.guard import refused

log = logging.getLogger(__name__)

MESSAGES = {
    400: "The request could not be understood. Check the form and try again.",
    401: "Log in first.",
    403: "Your account is not allowed to do this.",
    404: "There is no such page, or you may not see it.",
    405: "This page does not accept that kind of request.",
    413: "The upload is larger than this server accepts.",
    429: "Too many requests. Wait a moment, then try again.",
    500: "Something went wrong on the server. The error was logged; try again later.",
}


def init_app(app: Flask) -> None:
    before_render_template.connect(_drop_oversized_input, app)
    app.register_error_handler(IdentifiersFound, _identifiers_found)
    app.register_error_handler(TeachfileError, _domain_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)


# An error page or flash message shows at most this much of any text (issue 17: a
# 16 MiB field came back whole in a 400 page, a 17 MB amplifier).
MAX_MESSAGE_CHARS = 300


def excerpt(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis; Jinja escapes it."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


# The longest text a form field legitimately holds (a case section, casefmt.py).
MAX_FIELD_ECHO = 20_000


def _drop_oversized_input(
    _app: Flask, template: Any = None, context: dict[str, Any] | None = None, **_: Any
) -> None:
    """A form shown again keeps what the user typed (a title one character too long is
    theirs to shorten), except a field longer than any field may legitimately be: that
    comes back empty, with its error, so a 16 MiB field is not sent back whole (issue
    17). One place for every form of every page."""
    for value in (context or {}).values():
        if not isinstance(value, FlaskForm):
            continue
        for field in value:
            if isinstance(field.data, str) and len(field.data) > MAX_FIELD_ECHO:
                field.data = ""
                field.raw_data = []


def _render(
    status: int, message: str, findings: list[dict[str, str]] | None = None
) -> ResponseReturnValue:
    message = excerpt(message)
    extra = {"findings": findings} if findings is not None else {}
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return {"error": message, "status": status, **extra}, status
    return render_template("errors/error.html", status=status, message=message, **extra), status


def _domain_error(err: TeachfileError) -> ResponseReturnValue:
    return _render(err.status, err.message)


def _identifiers_found(err: IdentifiersFound) -> ResponseReturnValue:
    """422 with the findings (the author's own excerpts), after auditing the refusal."""
    refused(err)
    return _render(err.status, err.message, err.findings)


def _csrf_error(_err: CSRFError) -> ResponseReturnValue:
    return _render(
        400,
        "The form had expired or was sent from another site. Reload the page and try again.",
    )


def _http_error(err: HTTPException) -> ResponseReturnValue:
    status = err.code or 500
    return _render(status, MESSAGES.get(status, err.description or MESSAGES[400]))


def _unexpected_error(err: Exception) -> ResponseReturnValue:
    # Log the type and where it was raised, never the message or source lines:
    # either could quote request or DICOM data (the PHI rule).
    frames = " <- ".join(
        f"{frame.filename}:{frame.lineno} {frame.name}"
        for frame in reversed(traceback.extract_tb(err.__traceback__))
    )
    log.error(
        "unhandled %s on %s %s at %s", type(err).__name__, request.method, request.path, frames
    )
    return _http_error(InternalServerError())
