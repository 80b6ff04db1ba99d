"""The simple GET routes (no object) x every role; the rest: tests/web/test_full_access.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.models import Institution, Role, User
from tests.conftest import AuthActions

ROLES = ["visitor", "learner", "educator", "admin"]

# path template -> expected GET status per role, in ROLES order. "{other}" is
# another account's id. 302 for visitors is the redirect to the log-in page.
MATRIX: dict[str, tuple[int, int, int, int]] = {
    "/": (200, 200, 200, 200),
    "/auth/login": (200, 200, 200, 200),
    "/auth/register": (200, 200, 200, 200),
    "/auth/account": (302, 200, 200, 200),
    "/quiz/progress": (302, 200, 200, 200),
    "/quiz/review": (302, 200, 200, 200),
    "/quiz/transcript": (302, 200, 200, 200),
    "/quiz/transcript.csv": (302, 200, 200, 200),
    "/admin/users": (302, 403, 403, 200),
    "/admin/users/{other}": (302, 403, 403, 200),
    "/admin/institutions": (302, 403, 403, 200),
    "/admin/audit": (302, 403, 403, 200),
    "/admin/sources": (302, 403, 403, 200),
    "/admin/quarantine": (302, 403, 403, 200),
    "/intake/": (302, 403, 200, 200),
    "/intake/upload": (302, 403, 200, 200),
    "/api/me": (401, 200, 200, 200),
    "/api/institutions": (401, 403, 403, 200),
    "/api/audit": (401, 403, 403, 200),
    "/cases/": (200, 200, 200, 200),
    "/cases/mine": (302, 403, 200, 200),
    "/cases/new": (302, 403, 200, 200),
    "/sets/": (200, 200, 200, 200),
    "/sets/new": (302, 403, 200, 200),
    "/api/cases": (200, 200, 200, 200),
    "/search": (200, 200, 200, 200),
    "/api/search": (200, 200, 200, 200),
    # Discussion, notifications and consults (issue 10).
    "/notifications": (302, 200, 200, 200),
    "/api/notifications/count": (401, 200, 200, 200),
    "/consults/": (302, 200, 200, 200),
    "/consults/studies": (302, 200, 200, 200),
    "/admin/comment-reports": (302, 403, 403, 200),
    # Health for the proxy and monitors (issue 11): no log-in.
    "/healthz": (200, 200, 200, 200),
    "/readyz": (200, 200, 200, 200),
}

# Every other rule, and every write, is in TABLE of tests/web/test_full_access.py, whose
# test_every_rule_is_in_the_table is the one "every route is covered" check (it reads
# MATRIX too).


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(
    app: Flask,
    client: FlaskClient,
    role: str,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> None:
    hospital = create_institution()
    other = create_user(Role.LEARNER, institution=hospital)
    if role != "visitor":
        me = create_user(Role(role), institution=hospital)
        AuthActions(client).login(me.email)
    column = ROLES.index(role)
    got = {}
    for template, expected in MATRIX.items():
        path = template.format(other=other.id)
        got[template] = (client.get(path).status_code, expected[column])
    wrong = {path: pair for path, pair in got.items() if pair[0] != pair[1]}
    assert not wrong, f"(got, expected) for {role}: {wrong}"
