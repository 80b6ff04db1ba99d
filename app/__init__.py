"""Teachfile: a radiology teaching file and continuing-education library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from app import config, db

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the application: config -> db -> login -> blueprints -> cli -> errors."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    settings = config.load(test_config)
    config.validate(settings, creating=bool(settings.get("CREATING")))
    config.prepare_data_dir(settings)
    config.check_database(settings)
    app.config.from_mapping(settings)

    db.init_app(app)

    from app.web import init_app as init_web

    init_web(app)
    return app
