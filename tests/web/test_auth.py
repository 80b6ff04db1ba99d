"""Register, log in, log out through the HTTP client, with CSRF on."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, User
from tests.conftest import PASSWORD, AuthActions, csrf_token


def _register(client: FlaskClient, **fields: str) -> object:
    data = {
        "display_name": "Dr Ana Rural",
        "email": "ana@example.org",
        "password": PASSWORD,
        "confirm": PASSWORD,
        "csrf_token": csrf_token(client, "/auth/register"),
    }
    data.update(fields)
    return client.post("/auth/register", data=data)


def test_register_logs_in_and_shows_learner_navigation(client: FlaskClient) -> None:
    response = _register(client)
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Dr Ana Rural" in page
    assert "Log out" in page
    assert "Audit log" not in page


def test_register_duplicate_email_is_a_clear_409(client: FlaskClient, session: Session) -> None:
    _register(client)
    client.post("/auth/logout", data={"csrf_token": csrf_token(client)})
    response = _register(client, email="ANA@example.org")
    assert response.status_code == 409
    assert "exists already" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(User.id))) == 1


def test_register_over_long_name_is_refused(client: FlaskClient, session: Session) -> None:
    response = _register(client, display_name="x" * 5000)
    assert response.status_code == 400
    assert session.scalar(select(func.count(User.id))) == 0


def test_post_without_csrf_token_is_refused(client: FlaskClient, session: Session) -> None:
    response = client.post(
        "/auth/register",
        data={
            "display_name": "A",
            "email": "a@example.org",
            "password": PASSWORD,
            "confirm": PASSWORD,
        },
    )
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert session.scalar(select(func.count(User.id))) == 0


def test_login_wrong_password_is_refused_and_audited(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User], session: Session
) -> None:
    user = create_user()
    response = auth.login(user.email, "not the password")
    assert response.status_code == 400
    assert "not right" in response.get_data(as_text=True)
    assert client.get("/api/me").status_code == 401
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "auth.login_failed")
        )
        == 1
    )


def test_login_throttled_after_repeated_failures(
    app: Flask, auth: AuthActions, create_user: Callable[..., User]
) -> None:
    user = create_user()
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]):
        assert auth.login(user.email, "not the password").status_code == 400
    response = auth.login(user.email)
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.get_data(as_text=True)


def test_login_redirects_only_to_same_site(
    client: FlaskClient, create_user: Callable[..., User]
) -> None:
    user = create_user()
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login?next=//evil.example/x",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_session_cookie_flags(client: FlaskClient, create_user: Callable[..., User]) -> None:
    user = create_user()
    token = csrf_token(client, "/auth/login")
    response = client.post(
        "/auth/login", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure_client = client.application.test_client()
    https = secure_client.get("/auth/login", base_url="https://localhost")
    assert "Secure" in https.headers["Set-Cookie"]


def test_logout_everywhere_ends_other_sessions(
    app: Flask, create_user: Callable[..., User]
) -> None:
    user = create_user()
    laptop, phone = app.test_client(), app.test_client()
    AuthActions(laptop).login(user.email)
    AuthActions(phone).login(user.email)
    assert phone.get("/api/me").status_code == 200
    AuthActions(laptop).logout(everywhere=True)
    assert phone.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 401


def test_plain_logout_keeps_other_devices(app: Flask, create_user: Callable[..., User]) -> None:
    user = create_user()
    laptop, phone = app.test_client(), app.test_client()
    AuthActions(laptop).login(user.email)
    AuthActions(phone).login(user.email)
    AuthActions(laptop).logout()
    assert laptop.get("/api/me").status_code == 401
    assert phone.get("/api/me").status_code == 200
