"""The annotation API: visibility between readers, the teaching overlay, CSRF, bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import Case, Institution, Role, User
from tests.conftest import AuthActions, csrf_token


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution()


@pytest.fixture
def educator(hospital: Institution, create_user: Callable[..., User]) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


def _instance(case: Case) -> str:
    return case.studies[0].study.series[0].instances[0].sop_instance_uid


def _post(client: FlaskClient, case: Case, **fields: Any) -> Any:
    body = {
        "instance": _instance(case),
        "frame": 1,
        "kind": "arrow",
        "points": [[10, 10], [40, 40]],
        "visibility": "only_me",
        **fields,
    }
    token = csrf_token(client, "/")
    return client.post(
        f"/api/cases/{case.id}/annotations", json=body, headers={"X-CSRFToken": token}
    )


def _listed(client: FlaskClient, case: Case) -> list[dict[str, Any]]:
    response = client.get(f"/api/cases/{case.id}/annotations")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.get_json()["items"]
    return items


def test_shared_with_institution_is_seen_by_a_colleague_private_is_not(
    app: Flask,
    hospital: Institution,
    educator: User,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    case = create_case(educator, visibility="public")
    alice = create_user(Role.LEARNER, institution=hospital)
    bob = create_user(Role.LEARNER, institution=hospital)
    carol = create_user(Role.LEARNER, institution=create_institution())
    a = app.test_client()
    AuthActions(a).login(alice.email)
    shared = _post(a, case, visibility="institution", kind="text", points=[[5, 6]], text="Look")
    assert shared.status_code == 201, shared.get_json()
    mine = _post(a, case, visibility="only_me")
    everyone = _post(a, case, visibility="case_readers", kind="ellipse")
    assert mine.status_code == everyone.status_code == 201
    assert {n["id"] for n in _listed(a, case)} == {
        shared.get_json()["id"],
        mine.get_json()["id"],
        everyone.get_json()["id"],
    }

    b = app.test_client()
    AuthActions(b).login(bob.email)
    seen = {n["id"]: n for n in _listed(b, case)}
    assert set(seen) == {shared.get_json()["id"], everyone.get_json()["id"]}
    assert seen[shared.get_json()["id"]]["text"] == "Look"
    assert not seen[shared.get_json()["id"]]["editable"]

    c = app.test_client()
    AuthActions(c).login(carol.email)
    assert {n["id"] for n in _listed(c, case)} == {everyone.get_json()["id"]}
    visitor = app.test_client()
    assert {n["id"] for n in _listed(visitor, case)} == {everyone.get_json()["id"]}

    # Only the author changes or deletes.
    token = csrf_token(b, "/")
    note_id = shared.get_json()["id"]
    url = f"/api/cases/{case.id}/annotations/{note_id}"
    assert b.delete(url, headers={"X-CSRFToken": token}).status_code == 403
    hidden = f"/api/cases/{case.id}/annotations/{mine.get_json()['id']}"
    assert b.patch(hidden, json={"text": "x"}, headers={"X-CSRFToken": token}).status_code == 404
    token = csrf_token(a, "/")
    changed = a.patch(url, json={"visibility": "only_me"}, headers={"X-CSRFToken": token})
    assert changed.status_code == 200 and changed.get_json()["visibility"] == "only_me"
    assert {n["id"] for n in _listed(b, case)} == {everyone.get_json()["id"]}
    assert a.delete(url, headers={"X-CSRFToken": token}).status_code == 204
    assert note_id not in {n["id"] for n in _listed(a, case)}


def test_teaching_overlay_only_by_editors(
    app: Flask,
    hospital: Institution,
    educator: User,
    create_user: Callable[..., User],
    create_case: Callable[..., Case],
) -> None:
    case = create_case(educator, visibility="public")
    reader = create_user(Role.EDUCATOR, institution=hospital)  # an educator, not an author
    r = app.test_client()
    AuthActions(r).login(reader.email)
    assert _post(r, case, teaching=True).status_code == 403
    e = app.test_client()
    AuthActions(e).login(educator.email)
    made = _post(e, case, teaching=True, visibility="only_me")
    assert made.status_code == 201
    assert made.get_json()["teaching"] and made.get_json()["visibility"] == "case_readers"
    listed = _listed(app.test_client(), case)
    assert [n["teaching"] for n in listed] == [True]
    token = csrf_token(r, "/")
    url = f"/api/cases/{case.id}/annotations/{made.get_json()['id']}"
    assert r.delete(url, headers={"X-CSRFToken": token}).status_code == 403


def test_writes_need_csrf_and_login(
    client: FlaskClient, auth: AuthActions, educator: User, create_case: Callable[..., Case]
) -> None:
    case = create_case(educator)
    body = {"instance": _instance(case), "kind": "arrow", "points": [[1, 1], [2, 2]]}
    assert client.post(f"/api/cases/{case.id}/annotations", json=body).status_code in (400, 401)
    token = csrf_token(client, "/")
    visitor = client.post(
        f"/api/cases/{case.id}/annotations", json=body, headers={"X-CSRFToken": token}
    )
    assert visitor.status_code == 401
    auth.login(educator.email)
    no_token = client.post(f"/api/cases/{case.id}/annotations", json=body)
    assert no_token.status_code == 400 and "expired" in no_token.get_json()["error"]


def test_cannot_annotate_a_case_one_cannot_see(
    app: Flask,
    educator: User,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    case = create_case(educator, visibility="institution")
    outsider = create_user(Role.LEARNER, institution=create_institution())
    o = app.test_client()
    AuthActions(o).login(outsider.email)
    assert _post(o, case).status_code == 404
    assert o.get(f"/api/cases/{case.id}/annotations").status_code == 404
    assert o.get("/api/cases/999999/annotations").status_code == 404


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "circle"},
        {"points": [[1, 1]]},
        {"points": [[1, "x"], [2, 2]]},
        {"points": [[1, 1e300], [2, 2]]},
        {"kind": "text", "points": [[1, 1]], "text": ""},
        {"kind": "text", "points": [[1, 1]], "text": "x" * 501},
        {"visibility": "world"},
        {"frame": 7},
        {"instance": "1.2.3"},
        {"teaching": "yes"},
    ],
)
def test_bad_annotations_are_400(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Case],
    fields: dict[str, Any],
) -> None:
    case = create_case(educator, slices=1)
    auth.login(educator.email)
    response = _post(client, case, **fields)
    assert response.status_code == 400 and response.get_json()["error"]
