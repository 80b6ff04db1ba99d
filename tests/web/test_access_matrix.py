"""Every route x every role: who gets what. A new route fails here until it is listed."""

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

# Routes that only accept POST, and routes whose objects need a received study or a
# held object, are covered in tests/web/test_intake.py with the same roles.
POST_ONLY = {
    "/auth/logout",
    # Discussion and consults: tests/web/test_discussion.py.
    "/cases/<int:case_id>/comments",
    "/comments/<int:comment_id>/delete",
    "/comments/<int:comment_id>/report",
    "/comments/<int:comment_id>/hide",
    "/comments/<int:comment_id>/unhide",
    "/notifications/read",
    "/admin/comment-reports/<int:report_id>/resolve",
    "/consults/<int:consult_id>/messages",
    "/consults/<int:consult_id>/convert",
    # Quizzes and credit: tests/web/test_quizzes.py.
    "/sets/<slug>/quiz/start",
    "/quiz/attempts/<int:attempt_id>/answer",
    "/quiz/attempts/<int:attempt_id>/finish",
    "/certificates/<token>/revoke",
    "/sets/<slug>/quiz/questions/<int:question_id>/accepted",
    "/quiz/cases/<slug>/questions/<int:question_id>/delete",
    "/api/sets/<slug>/attempts",
    "/api/attempts/<int:attempt_id>/answers",
    "/api/attempts/<int:attempt_id>/finish",
    "/admin/sources/<ae_title>/remove",
    "/admin/quarantine/<int:item_id>/delete",
    "/intake/studies/<int:study_id>/discard",
}
OBJECT_ROUTES = {
    # Discussion and consults: tests/web/test_discussion.py.
    "/cases/<int:case_id>/discussion",
    "/comments/<int:comment_id>",
    "/comments/<int:comment_id>/edit",
    "/api/cases/<int:case_id>/comments",
    "/consults/studies/<int:study_id>/ask",
    "/consults/<int:consult_id>",
    # Quizzes, credit and certificates: tests/web/test_quizzes.py.
    "/sets/<slug>/quiz",
    "/sets/<slug>/quiz/stats",
    "/quiz/attempts/<int:attempt_id>",
    "/quiz/attempts/<int:attempt_id>/result",
    "/quiz/attempts/<int:attempt_id>/credit",
    "/quiz/review/<int:question_id>",
    "/quiz/cases/<slug>/questions",
    "/quiz/cases/<slug>/questions/<int:question_id>",
    "/certificates/<token>",
    "/certificates/<token>.pdf",
    "/verify/<token>",
    "/api/attempts/<int:attempt_id>",
    "/api/attempts/<int:attempt_id>/next",
    "/api/attempts/<int:attempt_id>/result",
    "/api/certificates/<token>",
    # Cases and sets: role x institution x visibility x draft in tests/web/test_case_access.py.
    "/cases/<slug>",
    "/cases/<slug>/preview",
    "/cases/<slug>/edit",
    "/cases/<slug>/revisions",
    "/cases/<slug>/revisions/<int:number>/diff",
    "/cases/<slug>/publish",
    "/cases/<slug>/delete",
    "/cases/<slug>/key-images",
    "/cases/<slug>/unpublish",
    "/cases/<slug>/case-of-the-day",
    "/api/cases/<slug>",
    "/api/cases/<slug>/draft",
    "/api/cases/<slug>/publish",
    "/sets/<slug>",
    "/sets/<slug>/edit",
    "/sets/<slug>/credit",
    "/sets/<slug>/publish",
    "/sets/<slug>/cases/<case_slug>",
    # Images, the viewer and annotations: tests/web/test_images.py, test_annotations.py.
    "/images/studies/<study>/series/<series>/instances/<instance>/frames/<int:frame>/rendered",
    "/images/studies/<study>/series/<series>/thumbnail",
    "/images/studies/<study>/series/<series>/instances/<instance>/thumbnail",
    "/images/studies/<study>/series/<series>/metadata",
    "/api/images/studies/<study>/series/<series>/instances/<instance>/frames/<int:frame>/roi",
    "/viewer/studies/<study>",
    "/api/cases/<int:case_id>/annotations",
    "/api/cases/<int:case_id>/annotations/<int:annotation_id>",
    "/admin/quarantine/<int:item_id>",
    "/admin/quarantine/<int:item_id>/image",
    "/intake/studies/<int:study_id>",
    "/intake/series/<int:series_id>/thumbnail",
}


def _rule_to_template(rule: str) -> str:
    return rule.replace("<int:user_id>", "{other}")


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    routes = {
        _rule_to_template(rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    missing = routes - set(MATRIX) - POST_ONLY - OBJECT_ROUTES
    assert not missing, f"add these routes to the access matrix: {sorted(missing)}"


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
