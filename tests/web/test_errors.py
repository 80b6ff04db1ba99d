"""Error pages in plain words; JSON under /api/; security headers on every response."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import Role, User
from tests.conftest import AuthActions, csrf_token


@pytest.mark.parametrize("path", ["/", "/auth/login", "/no/such/page", "/api/me", "/api/nope"])
def test_security_headers_everywhere(client: FlaskClient, path: str) -> None:
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert "base-uri 'none'" in csp and "frame-ancestors 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script(client: FlaskClient) -> None:
    for path in ("/", "/auth/login", "/auth/register", "/missing"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page and " on" + "click=" not in page


def test_404_page_in_plain_words(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "no such page" in response.get_data(as_text=True)


def test_api_errors_are_json(client: FlaskClient) -> None:
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.json == {"error": response.json["error"], "status": 404}  # type: ignore[index]


def test_405(client: FlaskClient) -> None:
    assert client.get("/auth/logout").status_code == 405


def test_413_for_oversized_body(app: Flask, client: FlaskClient) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/auth/login", data={"email": "x" * 4096})
    assert response.status_code == 413
    assert "larger than this server accepts" in response.get_data(as_text=True)


def test_500_shows_no_traceback_and_server_keeps_serving(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("Patient DOE^JANE secret detail")

    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "went wrong" in body and "Traceback" not in body and "DOE^JANE" not in body
    assert "DOE^JANE" not in caplog.text
    assert "RuntimeError" in caplog.text
    assert client.get("/").status_code == 200


def test_403_for_role_gate(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User]
) -> None:
    auth.login(create_user(Role.EDUCATOR).email)
    response = client.get("/admin/audit")
    assert response.status_code == 403
    assert client.get("/api/audit").json["status"] == 403  # type: ignore[index]


def _json_routes(case: Any) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/cases"),
        ("PUT", f"/api/cases/{case.slug}/draft"),
        ("POST", f"/api/cases/{case.slug}/publish"),
        ("POST", f"/api/cases/{case.id}/annotations"),
        ("POST", f"/api/cases/{case.id}/comments"),
        ("POST", "/api/institutions"),
    ]


@pytest.fixture
def admin_with_draft(
    client: FlaskClient,
    create_user: Callable[..., User],
    create_institution: Callable[..., Any],
    create_case: Callable[..., Any],
) -> tuple[str, Any]:
    """A logged-in admin (every JSON route is open to them) and a draft case of theirs."""
    admin = create_user(Role.ADMIN, institution=create_institution())
    case = create_case(admin, status="draft", visibility="private")
    AuthActions(client).login(admin.email)
    return csrf_token(client), case


@pytest.mark.parametrize("index", range(6))
def test_deeply_nested_json_is_a_400_on_every_json_route(
    client: FlaskClient, admin_with_draft: tuple[str, Any], index: int
) -> None:
    token, case = admin_with_draft
    method, path = _json_routes(case)[index]
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 40 + b"1" + b"}" * 40):
        response = client.open(
            path,
            method=method,
            data=body,
            headers={"Content-Type": "application/json", "X-CSRFToken": token},
        )
        assert response.status_code == 400, (path, response.status_code)
        assert response.json == {
            "error": "The JSON body is nested deeper than 32 levels.",
            "status": 400,
        }


def test_oversized_json_is_a_400_without_an_echo(
    client: FlaskClient, admin_with_draft: tuple[str, Any]
) -> None:
    token, case = admin_with_draft
    body = json.dumps({"title": "A" * (3 * 1024 * 1024)})
    response = client.put(
        f"/api/cases/{case.slug}/draft",
        data=body,
        headers={"Content-Type": "application/json", "X-CSRFToken": token},
    )
    assert response.status_code == 400
    assert response.json == {"error": "The JSON body is larger than 2 MiB.", "status": 400}


def test_ordinary_json_still_works(
    client: FlaskClient, admin_with_draft: tuple[str, Any]
) -> None:
    token, _case = admin_with_draft
    response = client.post(
        "/api/institutions",
        json={"name": "Bounded General"},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code in (200, 201), response.json
    listed = client.get("/api/institutions").json
    assert listed and "Bounded General" in {i["name"] for i in listed["items"]}


@pytest.mark.parametrize(
    ("path", "field"), [("/auth/login", "email"), ("/admin/institutions", "name")]
)
def test_an_oversized_form_field_is_not_echoed(
    client: FlaskClient, admin_with_draft: tuple[str, Any], path: str, field: str
) -> None:
    token, _case = admin_with_draft
    response = client.post(path, data={"csrf_token": token, field: "Q" * 400_000})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert len(page) < 20_000 and "Q" * 300 not in page
    assert "longer than" in page or "at most" in page  # the field's own error is shown


def test_error_pages_and_flashes_show_a_short_excerpt(app: Flask, client: FlaskClient) -> None:
    from flask import flash, render_template

    from app.errors import Invalid

    @app.get("/long-error")
    def long_error() -> str:
        raise Invalid("<b>" + "Z" * 100_000)

    @app.get("/long-flash")
    def long_flash() -> str:
        flash("<i>" + "Y" * 100_000, "error")
        return render_template("errors/error.html", status=400, message="x")

    page = client.get("/long-error").get_data(as_text=True)
    assert "Z" * 290 in page and "Z" * 300 not in page and "<b>" not in page
    page = client.get("/long-flash").get_data(as_text=True)
    assert "Y" * 290 in page and "Y" * 300 not in page and "<i>" not in page


def test_a_field_a_little_too_long_comes_back_to_be_fixed(
    client: FlaskClient, admin_with_draft: tuple[str, Any]
) -> None:
    token, _case = admin_with_draft
    response = client.post("/admin/institutions", data={"csrf_token": token, "name": "W" * 250})
    assert response.status_code == 400
    assert "W" * 250 in response.get_data(as_text=True)
