"""Discussion, notifications and consults through HTTP: audiences, bad input, moderation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Case, Comment, Consult, Institution, Role, User
from tests.conftest import AuthActions, csrf_token
from tests.test_markup import assert_inert


@pytest.fixture
def people(
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    create_case: Callable[..., Case],
) -> dict[str, Any]:
    a, b = create_institution("Bush Hospital"), create_institution("Coast Hospital")
    p: dict[str, Any] = {
        "a": a,
        "edu": create_user(Role.EDUCATOR, institution=a, email="edu@example.org"),
        "ann": create_user(Role.LEARNER, institution=a, email="ann@example.org"),
        "bob": create_user(Role.LEARNER, institution=a, email="bob@example.org"),
        "cat": create_user(Role.LEARNER, institution=b, email="cat@example.org"),
        "admin": create_user(Role.ADMIN, email="root@example.org"),
    }
    p["case"] = create_case(p["edu"], visibility="public", title="Tension pneumothorax")
    return p


def login(client: FlaskClient, user: User) -> str:
    AuthActions(client).logout()
    AuthActions(client).login(user.email)
    return csrf_token(client, "/notifications")


def post(client: FlaskClient, case: Case, token: str, **data: Any) -> Any:
    form = {"csrf_token": token, "thread": "open", "body": "hello", **data}
    return client.post(f"/cases/{case.id}/comments", data=form)


def comments(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Comment)) or 0


def test_hospital_thread_only_for_its_hospital(
    client: FlaskClient, session: Session, people: dict[str, Any]
) -> None:
    case = people["case"]
    token = login(client, people["ann"])
    page = client.get(f"/cases/{case.id}/discussion").get_data(as_text=True)
    assert "Visible only to members of Bush Hospital." in page
    assert "Visible to everyone who can see this case." in page
    response = post(client, case, token, thread="hospital", body="Between us, @bob: tube?")
    assert response.status_code == 302 and "#comment-" in response.location
    post(client, case, token, body="For everyone: note the deep sulcus.")

    token = login(client, people["bob"])
    page = client.get(f"/cases/{case.id}/discussion").get_data(as_text=True)
    assert "Between us" in page and "deep sulcus" in page
    assert client.get("/api/notifications/count").get_json() == {"unread": 1}
    assert 'class="bell-count">1<' in client.get("/notifications").get_data(as_text=True)

    token = login(client, people["cat"])
    page = client.get(f"/cases/{case.id}/discussion").get_data(as_text=True)
    assert "deep sulcus" in page and "Between us" not in page
    assert "Visible only to members of Coast Hospital." in page
    data = client.get(f"/api/cases/{case.id}/comments").get_json()
    texts = [c["html"] for t in data["threads"] for c in t["comments"]]
    assert len(texts) == 1 and "deep sulcus" in texts[0]
    assert [t["count"] for t in data["threads"]] == [1, 0]
    secret = session.scalars(select(Comment).where(Comment.thread == "hospital")).one()
    assert client.get(f"/comments/{secret.id}").status_code == 404
    assert client.get(f"/comments/{secret.id}/edit").status_code == 404
    assert client.get("/api/notifications/count").get_json() == {"unread": 0}
    # a reply into the other hospital's thread, forged: not found, nothing stored
    before = comments(session)
    response = post(client, case, token, thread="hospital", parent_id=str(secret.id))
    assert response.status_code == 404
    assert "Between us" not in response.get_data(as_text=True)
    assert comments(session) == before


def test_forged_and_bad_input_is_refused(
    client: FlaskClient, session: Session, people: dict[str, Any], create_case: Any
) -> None:
    case = people["case"]
    token = login(client, people["ann"])
    headers = {"X-CSRFToken": token}
    url = f"/api/cases/{case.id}/comments"
    forged = [
        {"body": "hi", "thread": "hospital", "institution_id": 999},
        {"body": "hi", "thread": "everyone"},
        {"body": "hi", "parent_id": "1; drop"},
        {"body": "x" * 5001},
        {"body": " ".join(f"@u{n}" for n in range(20))},
        {"body": "hi", "series_uid": "2.25.9", "frame": 1},
        {"body": ["list"]},
    ]
    for body in forged:
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 400, body
        assert response.get_json()["error"]
    assert client.post(url, data="not json", headers=headers).status_code == 400
    assert comments(session) == 0

    response = post(client, case, token, body="y" * 5001)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "too long" in text and "y" * 5001 in text  # the writer keeps the text
    assert post(client, case, token, thread="nope").status_code == 400
    assert post(client, case, token, parent_id="abc").status_code == 400
    hidden_case = create_case(people["edu"], status="draft")
    assert post(client, hidden_case, token).status_code == 404
    assert client.get(f"/cases/{hidden_case.id}/discussion").status_code == 404
    assert (
        client.post(
            url.replace(str(case.id), str(hidden_case.id)), json={"body": "x"}, headers=headers
        ).status_code
        == 404
    )
    assert post(client, case, "bad-token").status_code == 400
    assert comments(session) == 0

    response = client.post(url, json={"body": "ok", "thread": "open"}, headers=headers)
    assert response.status_code == 201
    assert response.get_json()["thread"] == "open"


def test_hostile_markdown_is_inert(
    client: FlaskClient, session: Session, people: dict[str, Any]
) -> None:
    token = login(client, people["ann"])
    hostile = [
        "<script>alert(1)</script>",
        "[x](javascript:alert(1))",
        '<img src=x onerror="alert(1)">',
        "[a](jav&#x09;ascript:alert(1))",
    ]
    for text in hostile:
        assert post(client, people["case"], token, body=text).status_code == 302
    section = client.get(f"/cases/{people['case'].id}/discussion").get_data(as_text=True)
    section = section.split('id="discussion"', 1)[1]
    assert "<script" not in section and "<img" not in section
    assert 'href="javascript' not in section.lower()
    data = client.get(f"/api/cases/{people['case'].id}/comments").get_json()
    for comment in data["threads"][0]["comments"]:
        assert_inert(comment["html"])


def test_reply_edit_delete_and_permalink(
    client: FlaskClient, session: Session, people: dict[str, Any]
) -> None:
    case = people["case"]
    token = login(client, people["ann"])
    post(client, case, token, body="Original")
    first = session.scalars(select(Comment)).one()
    assert client.get(f"/comments/{first.id}").location.endswith(
        f"/cases/{case.id}/discussion#comment-{first.id}"
    )
    response = client.post(
        f"/comments/{first.id}/edit", data={"csrf_token": token, "body": "Changed"}
    )
    assert response.status_code == 302
    token = login(client, people["bob"])
    post(client, case, token, body="A reply", parent_id=str(first.id))
    assert client.get(f"/comments/{first.id}/edit").status_code == 403  # sees it, not hers
    assert (
        client.post(
            f"/comments/{first.id}/edit", data={"csrf_token": token, "body": "x"}
        ).status_code
        == 403
    )
    assert (
        client.post(f"/comments/{first.id}/delete", data={"csrf_token": token}).status_code == 403
    )
    session.expire_all()
    assert first.deleted_at is None and first.body == "Changed"

    token = login(client, people["ann"])
    assert client.get("/api/notifications/count").get_json() == {"unread": 1}
    page = client.get("/notifications").get_data(as_text=True)
    assert "replied to your comment" in page
    client.post("/notifications/read", data={"csrf_token": token})
    assert client.get("/api/notifications/count").get_json() == {"unread": 0}
    client.post(f"/comments/{first.id}/delete", data={"csrf_token": token})
    page = client.get(f"/cases/{case.id}/discussion").get_data(as_text=True)
    assert "Comment removed." in page and "A reply" in page and "Changed" not in page
    assert "edited" not in page.split("Comment removed.")[0].split('id="discussion"')[1]
    response = post(client, case, token, body="late", parent_id=str(first.id))
    assert response.status_code == 400 and "removed" in response.get_data(as_text=True)


def test_moderation_and_reports(
    client: FlaskClient, session: Session, people: dict[str, Any]
) -> None:
    case = people["case"]
    token = login(client, people["ann"])
    post(client, case, token, body="Something rude")
    comment = session.scalars(select(Comment)).one()
    token = login(client, people["cat"])
    response = client.post(
        f"/comments/{comment.id}/report", data={"csrf_token": token, "reason": "rude"}
    )
    assert response.status_code == 303
    assert (
        client.post(
            f"/comments/{comment.id}/hide", data={"csrf_token": token, "reason": "x"}
        ).status_code
        == 403
    )
    assert client.get("/admin/comment-reports").status_code == 403

    token = login(client, people["admin"])
    page = client.get("/admin/comment-reports").get_data(as_text=True)
    assert "Something rude" in page and "cat@example.org" in page

    token = login(client, people["edu"])
    response = client.post(
        f"/comments/{comment.id}/hide", data={"csrf_token": token, "reason": "Not collegial"}
    )
    assert response.status_code == 303
    session.expire_all()
    assert comment.hidden_reason == "Not collegial"
    action = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "comment.hidden")
    ).one()
    assert action == "comment.hidden"

    token = login(client, people["bob"])
    page = client.get(f"/cases/{case.id}/discussion").get_data(as_text=True)
    assert "Hidden by a moderator: Not collegial" in page and "Something rude" not in page


def test_posting_rate_limit(
    app: Flask, client: FlaskClient, session: Session, people: dict[str, Any]
) -> None:
    app.config["DISCUSSION_MAX_POSTS"] = 2
    token = login(client, people["ann"])
    assert post(client, people["case"], token, body="one").status_code == 302
    assert post(client, people["case"], token, body="two").status_code == 302
    response = post(client, people["case"], token, body="three")
    assert response.status_code == 429 and "too fast" in response.get_data(as_text=True)
    assert comments(session) == 2


def test_visitor_sees_a_log_in_prompt(client: FlaskClient, people: dict[str, Any]) -> None:
    page = client.get(f"/cases/{people['case'].id}/discussion").get_data(as_text=True)
    assert "to read and join the discussion" in page
    assert client.get(f"/api/cases/{people['case'].id}/comments").status_code == 401


def test_consult_flow_and_privacy(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    create_study: Callable[..., Any],
) -> None:
    study = create_study(people["a"])
    token = login(client, people["cat"])
    assert client.get(f"/consults/studies/{study.id}/ask").status_code == 404
    assert study.study_instance_uid not in client.get("/consults/studies").get_data(as_text=True)

    token = login(client, people["ann"])
    assert study.study_instance_uid in client.get("/consults/studies").get_data(as_text=True)
    response = client.post(
        f"/consults/studies/{study.id}/ask", data={"csrf_token": token, "body": ""}
    )
    assert response.status_code == 400
    response = client.post(
        f"/consults/studies/{study.id}/ask",
        data={"csrf_token": token, "body": "Is there a *fracture*?"},
    )
    assert response.status_code == 303
    consult = session.scalars(select(Consult)).one()
    page = client.get(f"/consults/{consult.id}").get_data(as_text=True)
    assert "<em>fracture</em>" in page and f"/viewer/studies/{study.study_instance_uid}" in page
    assert "Turn into a case draft" not in page

    for outsider in (people["bob"], people["cat"]):
        login(client, outsider)
        assert client.get(f"/consults/{consult.id}").status_code == 404
        assert "fracture" not in client.get("/consults/").get_data(as_text=True)

    token = login(client, people["edu"])
    assert client.get("/api/notifications/count").get_json() == {"unread": 1}
    client.post(
        f"/consults/{consult.id}/messages",
        data={"csrf_token": token, "body": "Yes, distal radius."},
    )
    response = client.post(f"/consults/{consult.id}/convert", data={"csrf_token": token})
    assert response.status_code == 303
    session.expire_all()
    case = session.get(Case, consult.case_id)
    assert case is not None and case.status.value == "draft"
    assert response.location.endswith(f"/cases/{case.slug}/edit")
    again = client.post(f"/consults/{consult.id}/convert", data={"csrf_token": token})
    assert again.status_code == 303
    assert session.scalar(select(func.count()).select_from(Case)) == 2

    token = login(client, people["ann"])
    assert (
        client.post(f"/consults/{consult.id}/convert", data={"csrf_token": token}).status_code
        == 403
    )


def test_digest_command_without_smtp_sends_nothing(runner: Any, people: dict[str, Any]) -> None:
    from app.cli import cli

    result = runner.invoke(cli, ["digest"])
    assert result.exit_code == 0, result.output
    assert "nothing sent" in result.output


# who -> (sees the open comment, sees the hospital comment) on a public case of Bush Hospital
THREAD_MATRIX = {
    "visitor": (False, False),
    "ann": (True, True),  # the writer
    "bob": (True, True),  # same hospital
    "edu": (True, True),  # same hospital, educator
    "cat": (True, False),  # another hospital
    "coast_edu": (True, False),  # another hospital's educator
}


@pytest.mark.parametrize("who", sorted(THREAD_MATRIX))
def test_thread_access_matrix(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    create_user: Callable[..., User],
    who: str,
) -> None:
    case = people["case"]
    token = login(client, people["ann"])
    post(client, case, token, body="OPEN-TEXT")
    post(client, case, token, body="HOSPITAL-TEXT @bob @edu", thread="hospital")
    hospital = session.scalars(select(Comment).where(Comment.thread == "hospital")).one()
    AuthActions(client).logout()
    if who == "coast_edu":
        user = create_user(Role.EDUCATOR, institution=people["cat"].institution)
        login(client, user)
    elif who != "visitor":
        login(client, people[who])
    sees_open, sees_hospital = THREAD_MATRIX[who]
    page = client.get(f"/cases/{case.id}/discussion").get_data(as_text=True)
    case_page = client.get(f"/cases/{case.slug}").get_data(as_text=True)
    for html in (page, case_page):
        assert ("OPEN-TEXT" in html) is sees_open
        assert ("HOSPITAL-TEXT" in html) is sees_hospital
    api = client.get(f"/api/cases/{case.id}/comments")
    if who == "visitor":
        assert api.status_code == 401
        return
    blob = str(api.get_json())
    assert ("HOSPITAL-TEXT" in blob) is sees_hospital
    assert client.get(f"/comments/{hospital.id}").status_code == (302 if sees_hospital else 404)
    unread = client.get("/api/notifications/count").get_json()["unread"]
    assert unread == (1 if who in ("bob", "edu") else 0)


@pytest.mark.parametrize(
    ("who", "status"),
    [("ann", 200), ("bob", 404), ("edu", 200), ("cat", 404), ("coast_edu", 404), ("admin", 200)],
)
def test_consult_access_matrix(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    create_study: Callable[..., Any],
    create_user: Callable[..., User],
    who: str,
    status: int,
) -> None:
    study = create_study(people["a"])
    token = login(client, people["ann"])
    client.post(f"/consults/studies/{study.id}/ask", data={"csrf_token": token, "body": "SECRET-Q"})
    consult = session.scalars(select(Consult)).one()
    if who == "coast_edu":
        user = create_user(Role.EDUCATOR, institution=people["cat"].institution)
    else:
        user = people[who]
    login(client, user)
    assert client.get(f"/consults/{consult.id}").status_code == status
    assert ("SECRET-Q" in client.get("/consults/").get_data(as_text=True)) is (status == 200)


def test_consult_question_and_message_with_identifier_need_confirmation(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    create_study: Callable[..., Any],
) -> None:
    """The identifier gate (issue 14): nothing is sent until the writer confirms."""
    study = create_study(people["a"])
    token = login(client, people["ann"])
    ask = {"csrf_token": token, "body": "Mr Kowalczyk fell on 12/03/2024: fracture?"}
    refused = client.post(f"/consults/studies/{study.id}/ask", data=ask)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Post anyway" in page and "Mr Kowalczyk" in page
    assert session.scalars(select(Consult)).all() == []
    sent = client.post(f"/consults/studies/{study.id}/ask", data=ask | {"confirm_identifiers": "1"})
    assert sent.status_code == 303
    consult = session.scalars(select(Consult)).one()
    message = {"csrf_token": token, "body": "His MRN is 1234567."}
    refused = client.post(f"/consults/{consult.id}/messages", data=message)
    assert refused.status_code == 422 and "Post anyway" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(Consult, consult.id).messages == []  # type: ignore[union-attr]
