"""The home page: the case of the day and the newest cases the reader may see."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from app.db import get_session
from app.services import cases
from app.web.guard import current_actor

bp = Blueprint("main", __name__)


@bp.get("/")
def index() -> ResponseReturnValue:
    session = get_session()
    actor = current_actor()
    newest = cases.list_cases(session, actor=actor, filters=cases.CaseFilters(), page=1)
    return render_template(
        "main/index.html",
        case_of_the_day=cases.case_of_the_day(session, date.today()),
        newest=newest.items[:8],
        total=newest.total,
    )
