"""Unknown cases (issue 15): /unknowns/<token>, a neutral page that reveals a case step by step.

Each step is a POST form (the CSP forbids inline script and none is needed); a signed-in
reader's step is stored, a visitor's lives in the signed session cookie. The reader's notes
on the images come from this blueprint's annotation routes, which leave out the case's
teaching overlay until the diagnosis is revealed.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from app.db import get_session
from app.errors import Invalid
from app.services import annotations as annotation_service
from app.services import cases
from app.services.access import Permission
from app.services.quizzes import unknowns
from app.web.guard import current_actor, permission_required, run, signed_in_actor
from app.web.images import note_json

bp = Blueprint("unknowns", __name__, url_prefix="/unknowns")

_SESSION_KEY = "unknown_steps"


def _visitor_steps() -> dict[str, int]:
    found = session.get(_SESSION_KEY)
    return dict(found) if isinstance(found, dict) else {}


@bp.get("/<token>")
def detail(token: str) -> ResponseReturnValue:
    db = get_session()
    actor = current_actor()
    case = unknowns.get_unknown(db, token, actor=actor)
    shown = unknowns.view(db, case, actor=actor, visitor_steps=_visitor_steps())
    response = Response(
        render_template(
            "cases/unknown.html",
            unknown=shown,
            section_titles=cases.SECTION_TITLES,
        )
    )
    # What the page shows depends on the reader's step: no shared cache keeps it.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<token>/reveal")
def reveal(token: str) -> ResponseReturnValue:
    db = get_session()
    actor = current_actor()
    case = unknowns.get_unknown(db, token, actor=actor)
    raw = request.form.get("step", "")
    step = int(raw) if raw.isdigit() and len(raw) < 3 else -1
    steps = _visitor_steps()
    done = run(lambda: unknowns.reveal(db, case, step, actor=actor, visitor_steps=steps))
    if actor is None and done.result is not None:
        session[_SESSION_KEY] = steps
    return redirect(url_for("unknowns.detail", token=token, _anchor=f"step-{step}")), 303


def _notes_response(items: list[dict[str, Any]]) -> Response:
    response = Response(json.dumps({"items": items}), mimetype="application/json")
    response.cache_control.private = True
    response.cache_control.no_store = True
    return response


@bp.get("/<token>/annotations")
def annotation_list(token: str) -> ResponseReturnValue:
    """The annotations the reader may see, without the teaching overlay until the
    diagnosis is revealed (the overlay circles the lesion)."""
    db = get_session()
    actor = current_actor()
    case = unknowns.get_unknown(db, token, actor=actor)
    shown = unknowns.view(db, case, actor=actor, visitor_steps=_visitor_steps())
    notes = annotation_service.list_annotations(
        db, case.id, actor=actor, series_uid=request.args.get("series")
    )
    return _notes_response(
        [note_json(n) for n in notes if shown.diagnosis_revealed or not n.teaching]
    )


@bp.post("/<token>/annotations")
@permission_required(Permission.AUTHENTICATED)
def annotation_create(token: str) -> ResponseReturnValue:
    """A reader's own note, made while reading the unknown (never the teaching overlay)."""
    db = get_session()
    case = unknowns.get_unknown(db, token, actor=signed_in_actor())
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    body["teaching"] = False
    note = annotation_service.create_annotation(db, case.id, body, actor=signed_in_actor())
    db.commit()
    return note_json(note), 201


@bp.delete("/<token>/annotations/<int:annotation_id>")
@permission_required(Permission.AUTHENTICATED)
def annotation_delete(token: str, annotation_id: int) -> ResponseReturnValue:
    db = get_session()
    case = unknowns.get_unknown(db, token, actor=signed_in_actor())
    annotation_service.delete_annotation(db, case.id, annotation_id, actor=signed_in_actor())
    db.commit()
    return "", 204
