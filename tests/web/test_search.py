"""Search pages and API: results, facets, suggestions, paging, permissions, hostile input."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import CaseLabel, Institution, Role, User
from app.services import search
from tests.conftest import AuthActions


@pytest.fixture
def hospitals(
    session: Session,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    create_case: Callable[..., Any],
) -> dict[str, Any]:
    north, south = create_institution("North"), create_institution("South")
    n_author = create_user(Role.EDUCATOR, institution=north)
    s_author = create_user(Role.EDUCATOR, institution=south)
    public = create_case(n_author, title="Tension pneumothorax")
    public.findings = 'Deep sulcus sign. <script>alert("x")</script> <b onclick="y">bold</b>'
    public.labels.append(CaseLabel(kind="tag", value="emergency"))
    secret = create_case(s_author, title="South pneumothorax", visibility="institution")
    secret.labels.append(CaseLabel(kind="modality", value="MR"))
    draft = create_case(n_author, title="Draft pneumothorax", status="draft")
    session.commit()
    return {
        "public": public,
        "secret": secret,
        "draft": draft,
        "north learner": create_user(Role.LEARNER, institution=north),
        "south learner": create_user(Role.LEARNER, institution=south),
    }


def test_search_box_on_every_page(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'action="/search"' in page
    assert '<label for="site-search-q"' in page and 'id="site-search-q" name="q"' in page


def test_results_page_shows_hits_facets_and_expansions(
    client: FlaskClient, hospitals: dict[str, Any]
) -> None:
    response = client.get("/search?q=PTX")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Tension pneumothorax" in page
    assert f'href="/cases/{hospitals["public"].slug}"' in page
    assert "Also searched: pneumothorax" in page
    assert "South pneumothorax" not in page and "Draft pneumothorax" not in page
    assert "1 case" in page
    # facet links filter the search
    assert re.search(r'href="/search\?q=PTX&amp;sort=relevance&amp;tag=emergency"', page)
    filtered = client.get("/search?q=PTX&tag=emergency").get_data(as_text=True)
    assert "Tension pneumothorax" in filtered and "Clear filters" in filtered
    assert "No cases match" in client.get("/search?q=PTX&tag=trauma").get_data(as_text=True)


def test_highlights_are_escaped(client: FlaskClient, hospitals: dict[str, Any]) -> None:
    page = client.get("/search?q=sulcus").get_data(as_text=True)
    assert "<mark>sulcus</mark>" in page
    assert "<script>alert" not in page and "<b onclick" not in page
    assert "&lt;script&gt;" in page
    item = client.get("/api/search?q=sulcus").get_json()["items"][0]
    assert "<script" not in item["highlights"] and "&lt;script&gt;" in item["highlights"]


def test_did_you_mean(client: FlaskClient, hospitals: dict[str, Any]) -> None:
    page = client.get("/search?q=pneumothroax").get_data(as_text=True)
    assert "Did you mean" in page and 'href="/search?q=pneumothorax' in page
    body = client.get("/api/search?q=pneumothroax").get_json()
    assert body["suggestion"] == "pneumothorax" and body["total"] == 0


def test_learner_never_sees_another_institutions_case(
    client: FlaskClient, auth: AuthActions, hospitals: dict[str, Any]
) -> None:
    auth.login(hospitals["north learner"].email)
    body = client.get("/api/search?q=pneumothorax").get_json()
    assert [item["title"] for item in body["items"]] == ["Tension pneumothorax"]
    assert body["total"] == 1
    assert [f["value"] for f in body["facets"]["modality"]] == ["CT"]
    assert client.get("/api/search?q=south&modality=MR").get_json()["total"] == 0
    page = client.get("/search?q=pneumothorax").get_data(as_text=True)
    assert "South pneumothorax" not in page and ">MR<" not in page
    auth.logout()
    auth.login(hospitals["south learner"].email)
    body = client.get("/api/search?q=pneumothorax").get_json()
    assert {item["title"] for item in body["items"]} == {
        "Tension pneumothorax",
        "South pneumothorax",
    }
    assert dict((f["value"], f["count"]) for f in body["facets"]["modality"]) == {
        "CT": 2,
        "MR": 1,
    }


def test_paging_and_sort(
    app: Flask,
    client: FlaskClient,
    session: Session,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    from tests.services.test_search import _plain_case

    author = create_user(Role.EDUCATOR, institution=create_institution())
    for n in range(25):
        _plain_case(session, author, title=f"Volvulus number {n}")
    first = client.get("/api/search?q=volvulus&sort=date").get_json()
    assert first["total"] == 25 and first["pages"] == 2 and len(first["items"]) == 20
    assert first["items"][0]["title"] == "Volvulus number 24"  # newest first
    second = client.get("/api/search?q=volvulus&sort=date&page=2").get_json()
    assert len(second["items"]) == 5
    page = client.get("/search?q=volvulus").get_data(as_text=True)
    assert "Page 1 of 2" in page and 'rel="next"' in page


HOSTILE = [
    "AND OR NOT AND OR",
    '"unbalanced quote',
    "((brackets] {",
    "x" * 10_000,
    "pneumothorax " * 2000,
    "*",
    "a*",
    "**",
    "title:pneumothorax",
    "nosuchfield:foo bar:[a TO z]",
    "'; DROP TABLE cases; --",
    "1 OR 1=1",
    "pneumo\x00thorax\x1b[31m\u202e",
    "NOT",
    "-",
    "~^!@#$%&()",
    "pneumothorax~2^5",
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_queries_answer_200(
    client: FlaskClient, hospitals: dict[str, Any], query: str
) -> None:
    for path in ("/search", "/api/search"):
        response = client.get(path, query_string={"q": query, "page": "99999999999"})
        assert response.status_code == 200, (path, query)
    body = client.get("/api/search", query_string={"q": query}).get_json()
    titles = {item["title"] for item in body["items"]}
    assert "South pneumothorax" not in titles and "Draft pneumothorax" not in titles


def test_invalid_utf8_in_the_query(client: FlaskClient, hospitals: dict[str, Any]) -> None:
    for path in ("/search", "/api/search"):
        assert client.get(path + "?q=%ED%A0%80%FF%C3&tag=%FF").status_code == 200


def test_odd_arguments(client: FlaskClient, hospitals: dict[str, Any]) -> None:
    long = client.get("/api/search", query_string={"q": "pneumothorax " + "x" * 600}).get_json()
    assert long["notes"] and "500" in long["notes"][0]
    odd = client.get(
        "/api/search",
        query_string={"q": "", "sort": "bogus", "page": "-3", "modality": ["", "x" * 500]},
    ).get_json()
    assert odd["sort"] == "relevance" and odd["page"] == 1
    assert odd["total"] == 0  # the long modality value is cut, matches nothing
    everything = client.get("/api/search").get_json()
    assert everything["total"] == 1  # an empty query lists what the reader may see


def test_search_finds_a_case_changed_after_the_first_search(
    app: Flask,
    client: FlaskClient,
    session: Session,
    hospitals: dict[str, Any],
) -> None:
    assert client.get("/api/search?q=volvulus").get_json()["total"] == 0
    case = hospitals["public"]
    case.title = "Sigmoid volvulus"
    case.revision += 1
    search.case_changed(session, case.id)
    session.commit()
    assert client.get("/api/search?q=volvulus").get_json()["total"] == 1
