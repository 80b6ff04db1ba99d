"""The HTTP adapter: blueprints, log-in, CSRF, security headers and error pages."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from app.markup import render_markdown
from app.web import (
    admin,
    api,
    auth,
    cases,
    credit,
    discussion,
    errors,
    guard,
    health,
    images,
    intake,
    main,
    quizzes,
    requests,
    search,
    security,
    sets,
    unknowns,
)


class _DatabaseIdConverter(IntegerConverter):
    """``<int:...>`` past a 64-bit integer is a 404, not an overflow in the database driver."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def init_app(app: Flask) -> None:
    app.url_map.converters["int"] = _DatabaseIdConverter
    app.request_class = requests.BoundedRequest
    app.before_request(guard.apply_body_limit)  # before CSRF reads the form
    security.init_app(app)
    auth.init_app(app)
    app.jinja_env.filters["markdown"] = render_markdown
    for module in (main, auth, admin, intake, cases, sets, api, search, images, quizzes, unknowns):
        app.register_blueprint(module.bp)
    app.register_blueprint(quizzes.api)
    app.register_blueprint(credit.bp)
    app.register_blueprint(credit.api)
    app.register_blueprint(discussion.bp)
    app.register_blueprint(discussion.api)
    app.register_blueprint(health.bp)
    errors.init_app(app)
