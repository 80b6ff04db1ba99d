"""Error pages in plain words; JSON under /api/; security headers on every response."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import Role, User
from tests.conftest import AuthActions


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
