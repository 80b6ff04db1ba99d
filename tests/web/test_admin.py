"""Admin pages: institutions, roles and the audit log, through the HTTP client."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Institution, Role, User
from tests.conftest import AuthActions, csrf_token


def test_admin_creates_institution_assigns_user_and_sees_audit(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User], session: Session
) -> None:
    admin = create_user(Role.ADMIN)
    learner = create_user()
    auth.login(admin.email)

    token = csrf_token(client, "/admin/institutions")
    response = client.post(
        "/admin/institutions", data={"name": "Outback District Hospital", "csrf_token": token}
    )
    assert response.status_code == 302
    hospital = session.scalar(select(Institution))
    assert hospital is not None and hospital.name == "Outback District Hospital"

    token = csrf_token(client, f"/admin/users/{learner.id}")
    response = client.post(
        f"/admin/users/{learner.id}",
        data={
            "role": "educator",
            "institution_id": str(hospital.id),
            "is_active": "y",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    session.expire_all()
    assert learner.role is Role.EDUCATOR and learner.institution_id == hospital.id

    audit_page = client.get("/admin/audit").get_data(as_text=True)
    for action in (
        "auth.login",
        "institution.created",
        "user.role_changed",
        "user.institution_changed",
    ):
        assert action in audit_page
    assert "from=learner" in audit_page and "to=educator" in audit_page


def test_duplicate_institution_is_a_clear_error(
    client: FlaskClient,
    auth: AuthActions,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> None:
    create_institution("Mercy")
    auth.login(create_user(Role.ADMIN).email)
    token = csrf_token(client, "/admin/institutions")
    response = client.post("/admin/institutions", data={"name": "mercy", "csrf_token": token})
    assert response.status_code == 409
    assert "exists already" in response.get_data(as_text=True)


def test_learner_post_to_admin_page_is_refused_and_changes_nothing(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User], session: Session
) -> None:
    learner = create_user()
    auth.login(learner.email)
    token = csrf_token(client)
    response = client.post(
        f"/admin/users/{learner.id}",
        data={"role": "admin", "institution_id": "", "is_active": "y", "csrf_token": token},
    )
    assert response.status_code == 403
    assert "does not allow this" in response.get_data(as_text=True)
    session.expire_all()
    assert learner.role is Role.LEARNER


def test_unknown_user_id_is_404(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User]
) -> None:
    auth.login(create_user(Role.ADMIN).email)
    assert client.get("/admin/users/999999").status_code == 404


def test_api_create_institution_needs_csrf_header(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User], session: Session
) -> None:
    auth.login(create_user(Role.ADMIN).email)
    refused = client.post("/api/institutions", json={"name": "Coastal Clinic"})
    assert refused.status_code == 400
    assert refused.is_json and "error" in refused.json  # type: ignore[operator]
    token = csrf_token(client)
    created = client.post(
        "/api/institutions", json={"name": "Coastal Clinic"}, headers={"X-CSRFToken": token}
    )
    assert created.status_code == 201
    assert created.json == {"id": created.json["id"], "name": "Coastal Clinic"}  # type: ignore[index]
    bad = client.post("/api/institutions", json=["x"], headers={"X-CSRFToken": token})
    assert bad.status_code == 400
    assert bad.json["error"] == "Send a JSON object."  # type: ignore[index]
    assert len(session.scalars(select(Institution)).all()) == 1
