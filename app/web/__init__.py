"""The HTTP adapter: blueprints, log-in, CSRF, security headers and error pages."""

from __future__ import annotations

from flask import Flask

from app.web import admin, api, auth, errors, intake, main, search, security


def init_app(app: Flask) -> None:
    security.init_app(app)
    auth.init_app(app)
    for module in (main, auth, admin, intake, api, search):
        app.register_blueprint(module.bp)
    errors.init_app(app)
