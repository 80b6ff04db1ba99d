"""Search pages: ``/search`` for people and ``/api/search`` for scripts (issue 8)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, render_template, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from app.db import get_db, get_session
from app.services import search
from app.web.guard import current_actor, page_arg

bp = Blueprint("search", __name__)

PER_PAGE = 20
FACET_LABELS = {
    "modality": "Modality",
    "body_region": "Body region",
    "tag": "Tag",
    "difficulty": "Difficulty",
    "audience": "Audience",
    "certainty": "Certainty",
}


@bp.record_once
def _attach_index(state: BlueprintSetupState) -> None:
    """One index per process and database, kept on the app (app.extensions)."""
    app = state.app
    assert isinstance(app, Flask)
    app.extensions["teachfile.search"] = search.attach(get_db(app).engine, app.config["DATA_DIR"])


def _run() -> search.SearchPage:
    filters = {name: request.args.getlist(name) for name in search.FILTERS}
    return search.search_cases(
        get_session(),
        current_actor(),
        request.args.get("q", ""),
        filters=filters,
        sort=request.args.get("sort", "relevance"),
        page=page_arg(),
        per_page=PER_PAGE,
    )


def _link(found: search.SearchPage, **changes: Any) -> str:
    """The URL of this search with some arguments changed (None removes one)."""
    args: dict[str, Any] = {"q": found.result.query, "sort": found.sort}
    args.update(found.filters)
    args.update(changes)
    pairs = [
        (k, v)
        for k, value in args.items()
        if value not in (None, "", [])
        for v in (value if isinstance(value, list) else [value])
    ]
    return "/search?" + urlencode(pairs) if pairs else "/search"


@bp.get("/search")
def results() -> ResponseReturnValue:
    found = _run()
    result = found.result
    pages = max(1, -(-result.total // result.per_page))
    facets = []
    for arg, field in search.FILTERS.items():
        chosen = found.filters.get(arg, [])
        rows = [
            (
                value,
                count,
                value in chosen,
                _link(found, page=None, **{arg: _toggle(chosen, value)}),
            )
            for value, count in result.facets.get(field, [])[:15]
        ]
        if rows:
            facets.append((FACET_LABELS[arg], rows))
    return render_template(
        "search/results.html",
        found=found,
        result=result,
        facets=facets,
        pages=pages,
        link=lambda **kw: _link(found, **kw),
    )


def _toggle(chosen: list[str], value: str) -> list[str]:
    return [v for v in chosen if v != value] if value in chosen else [*chosen, value]


@bp.get("/api/search")
def api_results() -> ResponseReturnValue:
    found = _run()
    result = found.result
    return {
        "query": result.query,
        "total": result.total,
        "page": result.page,
        "per_page": result.per_page,
        "pages": max(1, -(-result.total // result.per_page)),
        "sort": found.sort,
        "filters": found.filters,
        "suggestion": result.suggestion,
        "expanded_terms": result.expanded_terms,
        "notes": found.notes,
        "facets": {
            arg: [{"value": v, "count": n} for v, n in result.facets.get(field, [])]
            for arg, field in search.FILTERS.items()
        },
        "items": [
            {
                "id": hit.case_id,
                "slug": hit.slug,
                "title": hit.title,
                "url": f"/cases/{hit.slug}",
                "highlights": hit.highlights,
                "modality": hit.modality,
                "body_region": hit.body_region,
                "difficulty": hit.difficulty,
                "published_at": hit.published_at.isoformat(),
                "score": round(hit.score, 4),
            }
            for hit in result.hits
        ],
    }
