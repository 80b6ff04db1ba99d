"""The HTTP adapter: blueprints, log-in, CSRF, security headers and error pages."""

from __future__ import annotations

from flask import Flask

from app.markup import render_markdown
from app.web import (
    admin,
    api,
    auth,
    cases,
    discussion,
    errors,
    health,
    images,
    intake,
    main,
    quizzes,
    search,
    security,
    sets,
)


def init_app(app: Flask) -> None:
    security.init_app(app)
    auth.init_app(app)
    app.jinja_env.filters["markdown"] = render_markdown
    for module in (main, auth, admin, intake, cases, sets, api, search, images, quizzes):
        app.register_blueprint(module.bp)
    app.register_blueprint(quizzes.api)
    app.register_blueprint(discussion.bp)
    app.register_blueprint(discussion.api)
    app.register_blueprint(health.bp)
    errors.init_app(app)
