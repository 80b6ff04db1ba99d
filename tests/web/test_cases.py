"""Authoring and reading cases through HTTP: editor, autosave API, publishing, hostile text."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Case, CaseStatus, Institution, Role, User
from tests.conftest import AuthActions, csrf_token


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution("Bush Hospital")


@pytest.fixture
def educator(create_user: Callable[..., User], hospital: Institution) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


def _content(**sections: str) -> dict[str, Any]:
    return {
        "title": "Free air",
        "diagnosis": "Pneumoperitoneum",
        "difficulty": "beginner",
        "certainty": "surgery",
        "labels": {"modality": ["CR"]},
        "sections": {"history": "Sudden abdominal pain.", **sections},
    }


def test_from_inbox_to_published_case(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    hospital: Institution,
    create_study: Callable[..., Any],
    create_user: Callable[..., User],
    app: Flask,
    session: Session,
) -> None:
    study = create_study(hospital, StudyDescription="ERECT CHEST")
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/new?study={study.id}")
    response = client.post(
        "/cases/new",
        data={"csrf_token": token, "study": study.id, "title": "Free air under the diaphragm"},
    )
    assert response.status_code == 302
    case = session.scalars(select(Case)).one()
    edit_page = client.get(f"/cases/{case.slug}/edit").get_data(as_text=True)
    assert "Free air under the diaphragm" in edit_page

    saved = client.put(
        f"/api/cases/{case.slug}/draft",
        headers={"X-CSRFToken": token},
        json={
            "base_revision": 1,
            "content": _content(discussion="Seen by Dr Jones on 3 March 2025."),
        },
    )
    # A draft's findings come back as a warning; the save goes through (not pending).
    body = saved.json
    assert saved.status_code == 200 and body is not None
    assert body["revision"] == 2 and body["pending"] is False
    assert {f["field"] for f in body["findings"]} == {"Discussion"}
    stale = client.put(
        f"/api/cases/{case.slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": 1, "content": _content(discussion="Other")},
    )
    assert stale.status_code == 409
    assert "kept as revision 3" in stale.json["error"]  # type: ignore[index]

    preview = client.get(f"/cases/{case.slug}/preview").get_data(as_text=True)
    assert "Sudden abdominal pain." in preview and "exactly what readers will see" in preview

    publish_page = client.get(f"/cases/{case.slug}/publish").get_data(as_text=True)
    assert "Dr Jones" in publish_page and "3 March 2025" in publish_page
    refused = client.post(
        f"/cases/{case.slug}/publish", data={"csrf_token": token, "visibility": "institution"}
    )
    assert refused.status_code == 400
    done = client.post(
        f"/cases/{case.slug}/publish",
        data={"csrf_token": token, "visibility": "institution", "confirm": "y"},
    )
    assert done.status_code == 302
    session.expire_all()
    assert case.status is CaseStatus.PUBLISHED and case.phi_confirmed_by_id == educator.id

    colleague = app.test_client()
    AuthActions(colleague).login(create_user(Role.LEARNER, institution=hospital).email)
    assert colleague.get(f"/cases/{case.slug}").status_code == 200
    # The unknown (issue 15): later steps are absent from the HTML, not folded away.
    unknown = colleague.get(f"/cases/{case.slug}?unknown=1", follow_redirects=True)
    assert unknown.request.path.startswith("/unknowns/")
    html = unknown.get_data(as_text=True)
    assert "<details" not in html and "Reveal the findings" in html

    history = client.get(f"/cases/{case.slug}/revisions").get_data(as_text=True)
    assert "refused as stale" in history
    diff = client.get(f"/cases/{case.slug}/revisions/2/diff?against=1").get_data(as_text=True)
    assert "Dr Jones" in diff


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        source = dict(attrs).get("src") or ""
        if tag == "script" and not source.startswith("/static/js/"):
            self.bad.append(tag)  # only the app's own modules may run
        if tag in ("iframe", "object", "embed", "svg", "style"):
            self.bad.append(tag)
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith(
                ("javascript:", "data:", "vbscript:")
            ):
                self.bad.append(f"{tag}[{name}]")


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[data](data:text/html;base64,PHNjcmlwdD4=)",
        "<svg onload=alert(1)>",
        "<a href='jav&#x09;ascript:alert(1)'>x</a>",
    ],
)
def test_hostile_markdown_renders_safely(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
    payload: str,
) -> None:
    case = create_case(educator, status="published", visibility="public")
    auth.login(educator.email)
    token = csrf_token(client)
    response = client.put(
        f"/api/cases/{case.slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": case.revision, "content": _content(findings=payload)},
    )
    assert response.status_code == 200
    page = client.get(f"/cases/{case.slug}").get_data(as_text=True)
    parser = _Tags()
    parser.feed(page.split("<main>", 1)[1])
    assert parser.bad == [], page[:200]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"base_revision": "1", "content": {}},
        {"base_revision": 1, "content": []},
        {"base_revision": 1, "content": {"title": 5}},
        {"base_revision": 1, "content": {"title": "x", "sections": {"history": "y" * 30000}}},
    ],
)
def test_autosave_api_rejects_bad_bodies(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
    body: Any,
) -> None:
    case = create_case(educator, status="draft")
    auth.login(educator.email)
    token = csrf_token(client)
    response = client.put(
        f"/api/cases/{case.slug}/draft", headers={"X-CSRFToken": token}, json=body
    )
    assert response.status_code == 400 and "error" in response.json  # type: ignore[operator]


def test_unknown_slug_and_csrf(
    client: FlaskClient, auth: AuthActions, educator: User, create_case: Callable[..., Any]
) -> None:
    case = create_case(educator, status="draft")
    auth.login(educator.email)
    assert client.get("/cases/no-such-case").status_code == 404
    assert client.get("/api/cases/no-such-case").json["status"] == 404  # type: ignore[index]
    no_token = client.put(
        f"/api/cases/{case.slug}/draft", json={"base_revision": 1, "content": _content()}
    )
    assert no_token.status_code == 400


def test_case_sets_next_previous(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
    app: Flask,
) -> None:
    first, second = create_case(educator, title="One"), create_case(educator, title="Two")
    auth.login(educator.email)
    token = csrf_token(client, "/sets/new")
    made = client.post(
        "/sets/new",
        data={
            "csrf_token": token,
            "title": "Chest emergencies",
            "cases": f"{first.slug}\n{second.slug}",
        },
    )
    assert made.status_code == 302
    slug = made.headers["Location"].rsplit("/", 1)[1]
    assert app.test_client().get(f"/sets/{slug}").status_code == 404  # draft set
    client.post(f"/sets/{slug}/publish", data={"csrf_token": token, "visibility": "public"})
    visitor = app.test_client()
    step = visitor.get(f"/sets/{slug}/cases/{first.slug}").get_data(as_text=True)
    # Steps link by position: a slug may name the diagnosis (issue 15).
    assert "case 1 of 2" in step and f"/sets/{slug}/cases/2" in step
    bad = client.post(
        "/sets/new", data={"csrf_token": token, "title": "X", "cases": "no-such-case"}
    )
    assert bad.status_code == 400


def test_set_credit_settings(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
) -> None:
    case = create_case(educator)
    auth.login(educator.email)
    token = csrf_token(client, "/sets/new")
    slug = (
        client.post("/sets/new", data={"csrf_token": token, "title": "Trauma", "cases": case.slug})
        .headers["Location"]
        .rsplit("/", 1)[1]
    )
    form = {
        "csrf_token": token,
        "credit_hours": "1.5",
        "passing_score": "80",
        "faculty": "Dr A. Educator, FRANZCR",
        "disclosures": "",
        "release_date": "2026-11-01",
        "expiry_date": "2027-11-01",
        "evaluation": "rating: Relevant to my practice\ntext: What will you change?",
    }
    refused = client.post(f"/sets/{slug}/credit", data=form)
    assert refused.status_code == 400 and "disclosures" in refused.get_data(as_text=True)
    form["disclosures"] = "None"
    assert client.post(f"/sets/{slug}/credit", data=form).status_code == 302
    page = client.get(f"/sets/{slug}").get_data(as_text=True)
    assert "1.5 h continuing-education credit" in page and "pass mark 80" in page
    bad = client.post(f"/sets/{slug}/credit", data={**form, "evaluation": "essay: tell me"})
    assert bad.status_code == 400
