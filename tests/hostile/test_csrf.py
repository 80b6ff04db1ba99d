"""Every state-changing route refuses a request without the CSRF token, and changes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Role, User
from tests.conftest import AuthActions

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that must accept a POST without a session's token.
EXEMPT: set[str] = set()


def _fill(rule: str) -> str:
    """A concrete URL for a rule: every converter gets a plausible value."""
    return re.sub(
        r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) in ("int", "float") else "x", rule
    )


def test_every_write_route_needs_the_csrf_token(
    app: Flask, create_user: Callable[..., User], session: Session
) -> None:
    client = app.test_client()
    AuthActions(client).login(create_user(Role.ADMIN).email)
    before = session.scalar(select(func.count(AuditEvent.id)))
    checked = []
    for rule in app.url_map.iter_rules():
        methods = (rule.methods or set()) & WRITES
        if not methods or rule.rule in EXEMPT:
            continue
        url = _fill(rule.rule)
        for method in sorted(methods):
            response = client.open(url, method=method, data={"x": "1"})
            assert response.status_code == 400, (method, rule.rule, response.status_code)
            checked.append((method, rule.rule))
    assert len(checked) > 30  # the sweep really ran over the application's writes
    session.expire_all()
    assert session.scalar(select(func.count(AuditEvent.id))) == before


@pytest.mark.parametrize("header", ["X-CSRFToken", "X-CSRF-Token"])
def test_json_writes_need_the_header_token(
    app: Flask, create_user: Callable[..., User], header: str
) -> None:
    client = app.test_client()
    AuthActions(client).login(create_user(Role.ADMIN).email)
    response = client.post(
        "/api/institutions", json={"name": "Forged"}, headers={header: "not-a-token"}
    )
    assert response.status_code == 400
