"""Discussion, notifications and consults: the rules of issue 10, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from app.models import (
    AuditEvent,
    Case,
    CaseNote,
    CaseStatus,
    Comment,
    CommentReport,
    Consult,
    Institution,
    Notification,
    Role,
    Thread,
    User,
    Visibility,
)
from app.services import consults, discussion, notifications
from app.services.access import Permission, can
from app.services.discussion import ImageRef, PostingLimit
from tests.test_markup import HOSTILE, assert_inert


@pytest.fixture
def world(
    session: Session,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    create_case: Callable[..., Case],
) -> dict[str, Any]:
    """Two hospitals: an educator and two learners at A, a learner and educator at B."""
    a, b = create_institution("Bush Hospital"), create_institution("Coast Hospital")
    w: dict[str, Any] = {
        "a": a,
        "b": b,
        "edu_a": create_user(Role.EDUCATOR, institution=a, email="edu.a@example.org"),
        "ann": create_user(Role.LEARNER, institution=a, email="ann@example.org"),
        "bob": create_user(Role.LEARNER, institution=a, email="bob@example.org"),
        "cat": create_user(Role.LEARNER, institution=b, email="cat@example.org"),
        "edu_b": create_user(Role.EDUCATOR, institution=b, email="edu.b@example.org"),
        "admin": create_user(Role.ADMIN, email="root@example.org"),
    }
    w["case"] = create_case(w["edu_a"], visibility="public")
    return w


def count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_open_comment_and_reply_notify_the_parent_writer(
    session: Session, world: dict[str, Any]
) -> None:
    case = world["case"]
    first = discussion.post_comment(session, case.id, actor=world["ann"], body="Is this *tension*?")
    reply = discussion.post_comment(
        session, case.id, actor=world["cat"], body="Look at the mediastinum.", parent_id=first.id
    )
    session.commit()
    assert reply.parent_id == first.id and reply.thread is Thread.OPEN
    assert notifications.unread_count(session, world["ann"]) == 1
    assert notifications.unread_count(session, world["cat"]) == 0
    # a reply to a reply joins the top-level comment (one level deep)
    again = discussion.post_comment(
        session, case.id, actor=world["bob"], body="Agreed.", parent_id=reply.id
    )
    assert again.parent_id == first.id
    view = discussion.thread_for(session, case, world["ann"])
    open_thread = view.threads[0]
    assert [c.id for c in open_thread.comments] == [first.id]
    assert [r.id for r in open_thread.comments[0].replies] == [reply.id, again.id]
    assert "<em>tension</em>" in str(open_thread.comments[0].html)


def test_hospital_thread_is_invisible_to_another_institution(
    session: Session, world: dict[str, Any]
) -> None:
    case = world["case"]
    secret = discussion.post_comment(
        session, case.id, actor=world["ann"], body="Among us: @bob look.", thread="hospital"
    )
    session.commit()
    assert secret.institution_id == world["a"].id
    assert notifications.unread_count(session, world["bob"]) == 1
    for outsider in (world["cat"], world["edu_b"]):
        assert not can(outsider, Permission.VIEW, secret)
        threads = discussion.thread_for(session, case, outsider).threads
        assert all(c.id != secret.id for t in threads for c in t.comments)
        hospital = [t for t in threads if t.thread is Thread.HOSPITAL]
        assert hospital[0].count == 0 and "Coast Hospital" in hospital[0].audience
        with pytest.raises(NotFound):
            discussion.get_comment(session, secret.id, actor=outsider)
        with pytest.raises(NotFound):
            discussion.post_comment(
                session,
                case.id,
                actor=outsider,
                body="hi",
                thread="hospital",
                parent_id=secret.id,
            )
        with pytest.raises(NotFound):
            discussion.report_comment(session, secret.id, actor=outsider, reason="x")
    # an outsider mentioning a member of A notifies nobody (mentions stay in-house)
    discussion.post_comment(session, case.id, actor=world["cat"], body="@ann what do you think?")
    session.commit()
    assert notifications.unread_count(session, world["ann"]) == 0
    mine = discussion.thread_for(session, case, world["bob"]).threads[1]
    assert mine.count == 1 and "Bush Hospital" in mine.title


def test_moving_hospital_stops_counting_old_hospital_notices(
    session: Session, world: dict[str, Any]
) -> None:
    discussion.post_comment(
        session, world["case"].id, actor=world["ann"], body="@bob see", thread="hospital"
    )
    session.commit()
    assert notifications.unread_count(session, world["bob"]) == 1
    world["bob"].institution_id = world["b"].id
    session.commit()
    assert notifications.unread_count(session, world["bob"]) == 0
    assert notifications.list_notifications(session, actor=world["bob"]).total == 0


def test_comment_on_a_case_the_writer_may_not_see_is_not_found(
    session: Session, world: dict[str, Any], create_case: Callable[..., Case]
) -> None:
    draft = create_case(world["edu_a"], status="draft")
    house = create_case(world["edu_a"], visibility="institution")
    for case in (draft, house):
        with pytest.raises(NotFound):
            discussion.post_comment(session, case.id, actor=world["cat"], body="hello")
    with pytest.raises(NotFound):
        discussion.post_comment(session, 999_999, actor=world["ann"], body="hello")
    session.rollback()
    assert count(session, Comment) == 0


def test_bad_input_is_refused_and_nothing_stored(
    session: Session, world: dict[str, Any], create_case: Callable[..., Case]
) -> None:
    case = world["case"]
    ann = world["ann"]
    other_case = create_case(world["edu_a"])
    foreign = discussion.post_comment(session, other_case.id, actor=ann, body="elsewhere")
    gone = discussion.post_comment(session, case.id, actor=ann, body="to delete")
    discussion.delete_comment(session, gone.id, actor=ann)
    session.commit()
    before = count(session, Comment)
    attempts: list[tuple[type[Exception], dict[str, Any]]] = [
        (Invalid, {"body": ""}),
        (Invalid, {"body": "   \n "}),
        (Invalid, {"body": "x" * (discussion.COMMENT_MAX_CHARS + 1)}),
        (Invalid, {"body": " ".join(f"@user{i}" for i in range(11))}),
        (Invalid, {"body": "hi", "thread": "institution"}),
        (Invalid, {"body": "hi", "thread": "3"}),
        (NotFound, {"body": "hi", "parent_id": foreign.id}),
        (NotFound, {"body": "hi", "parent_id": 987_654}),
        (Invalid, {"body": "hi", "parent_id": gone.id}),
        (Invalid, {"body": "hi", "image": ImageRef("2.25.1", 1)}),
        (Invalid, {"body": "hi", "image": ImageRef(_series_uid(case), 99)}),
        (Invalid, {"body": "hi", "image": ImageRef(_series_uid(case), 0)}),
        (Invalid, {"body": "hi", "image": ImageRef(_series_uid(case), 1, annotation_id=42)}),
        (Invalid, {"body": 12}),
    ]
    for error, kwargs in attempts:
        with pytest.raises(error):
            discussion.post_comment(session, case.id, actor=ann, **kwargs)
        session.rollback()
    # a reply must stay in its parent's thread; a learner without a hospital has none
    top = discussion.post_comment(session, case.id, actor=ann, body="open")
    session.commit()
    with pytest.raises(Invalid):
        discussion.post_comment(
            session, case.id, actor=ann, body="x", thread="hospital", parent_id=top.id
        )
    session.rollback()
    assert count(session, Comment) == before + 1


def _series_uid(case: Case) -> str:
    return case.studies[0].study.series[0].series_instance_uid


def test_hostile_markdown_renders_inert(session: Session, world: dict[str, Any]) -> None:
    case = world["case"]
    limit = PostingLimit(max_posts=len(HOSTILE) + 1)
    for text in HOSTILE:
        if not text.strip() or len(text) > discussion.COMMENT_MAX_CHARS:
            continue
        # Some hostile strings look like identifiers (digits, dates); this test is about
        # rendering, so the writer confirms the identifier check.
        discussion.post_comment(
            session, case.id, actor=world["ann"], body=text, limit=limit, confirm_identifiers=True
        )
    session.commit()
    view = discussion.thread_for(session, case, world["bob"])
    for comment in view.threads[0].comments:
        assert_inert(str(comment.html))


def test_image_reference_links_the_viewer(session: Session, world: dict[str, Any]) -> None:
    case = world["case"]
    uid = _series_uid(case)
    comment = discussion.post_comment(
        session, case.id, actor=world["ann"], body="Here", image=ImageRef(uid, 2)
    )
    session.commit()
    view = discussion.comment_view(world["bob"], comment)
    study_uid = case.studies[0].study.study_instance_uid
    assert view.viewer_url == f"/viewer/studies/{study_uid}?series={uid}&frame=2"


def test_edit_delete_and_permissions(session: Session, world: dict[str, Any]) -> None:
    case = world["case"]
    comment = discussion.post_comment(session, case.id, actor=world["ann"], body="first")
    reply = discussion.post_comment(
        session, case.id, actor=world["bob"], body="reply", parent_id=comment.id
    )
    session.commit()
    with pytest.raises(Forbidden):
        discussion.edit_comment(session, comment.id, actor=world["bob"], body="mine now")
    discussion.edit_comment(session, comment.id, actor=world["ann"], body="second")
    session.commit()
    assert comment.edited_at is not None and comment.body == "second"
    discussion.delete_comment(session, comment.id, actor=world["ann"])
    session.commit()
    assert comment.body == "" and comment.deleted_at is not None
    view = discussion.thread_for(session, case, world["bob"]).threads[0]
    assert view.comments[0].state == "deleted"
    assert [r.id for r in view.comments[0].replies] == [reply.id]
    with pytest.raises(Forbidden):
        discussion.edit_comment(session, comment.id, actor=world["ann"], body="back")


def test_hide_report_and_review(session: Session, world: dict[str, Any]) -> None:
    case = world["case"]
    comment = discussion.post_comment(session, case.id, actor=world["ann"], body="rude words")
    session.commit()
    discussion.report_comment(session, comment.id, actor=world["cat"], reason="rude")
    session.commit()
    with pytest.raises(Conflict):
        discussion.report_comment(session, comment.id, actor=world["cat"], reason="again")
    session.rollback()
    with pytest.raises(Forbidden):
        discussion.list_reports(session, actor=world["edu_a"])
    assert discussion.list_reports(session, actor=world["admin"]).total == 1
    with pytest.raises(Forbidden):
        discussion.hide_comment(session, comment.id, actor=world["bob"], reason="no")
    with pytest.raises(Invalid):
        discussion.hide_comment(session, comment.id, actor=world["edu_b"], reason=" ")
    discussion.hide_comment(session, comment.id, actor=world["edu_b"], reason="Not collegial")
    session.commit()
    assert discussion.list_reports(session, actor=world["admin"]).total == 0
    learner_view = discussion.comment_view(world["bob"], comment)
    assert learner_view.state == "hidden" and str(learner_view.html) == ""
    assert "rude words" in str(discussion.comment_view(world["edu_a"], comment).html)
    actions = session.scalars(select(AuditEvent.action)).all()
    assert "comment.hidden" in actions and "comment.reported" in actions
    with pytest.raises(Invalid):
        discussion.post_comment(
            session, case.id, actor=world["bob"], body="re", parent_id=comment.id
        )


def test_posting_rate_is_limited(session: Session, world: dict[str, Any]) -> None:
    limit = PostingLimit(max_posts=3, window_seconds=600)
    for n in range(3):
        discussion.post_comment(
            session, world["case"].id, actor=world["ann"], body=f"n{n}", limit=limit
        )
    session.commit()
    with pytest.raises(TooManyRequests):
        discussion.post_comment(
            session, world["case"].id, actor=world["ann"], body="x", limit=limit
        )
    session.rollback()
    assert count(session, Comment) == 3


def test_mentions_and_mark_read(session: Session, world: dict[str, Any]) -> None:
    discussion.post_comment(
        session, world["case"].id, actor=world["edu_a"], body="@ann and @bob and @nobody."
    )
    session.commit()
    assert notifications.unread_count(session, world["ann"]) == 1
    page = notifications.list_notifications(session, actor=world["ann"])
    assert "mentioned you" in notifications.describe(page.items[0])
    with pytest.raises(NotFound):
        notifications.mark_read(session, actor=world["bob"], notification_id=page.items[0].id)
    notifications.mark_read(session, actor=world["ann"], notification_id=page.items[0].id)
    session.commit()
    assert notifications.unread_count(session, world["ann"]) == 0
    assert notifications.unread_count(session, world["bob"]) == 1
    notifications.mark_read(session, actor=world["bob"])
    session.commit()
    assert notifications.unread_count(session, world["bob"]) == 0


def test_digest_without_smtp_sends_nothing_and_builds_messages(
    session: Session, world: dict[str, Any]
) -> None:
    discussion.post_comment(session, world["case"].id, actor=world["edu_a"], body="@ann look")
    session.commit()
    assert notifications.smtp_settings({"SMTP_HOST": ""}) is None

    def no_smtp(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("nothing may try to send without SMTP settings")

    assert notifications.send_digests(session, None, base_url="http://t", smtp_factory=no_smtp) == 0
    digests = notifications.build_digests(session, sender="tf@example.org", base_url="http://t/")
    assert [d.user.email for d in digests] == ["ann@example.org"]
    body = digests[0].message.get_content()
    assert "http://t/comments/" in body and "look" not in body

    sent: list[EmailMessage] = []

    class FakeSMTP:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            assert (host, port) == ("mail.example.org", 2525)

        def __enter__(self) -> FakeSMTP:
            return self

        def __exit__(self, *_exc: object) -> None:
            pass

        def send_message(self, message: EmailMessage) -> None:
            sent.append(message)

    settings = notifications.smtp_settings(
        {"SMTP_HOST": "mail.example.org", "SMTP_PORT": 2525, "SMTP_FROM": "tf@example.org"}
    )
    assert (
        notifications.send_digests(session, settings, base_url="http://t", smtp_factory=FakeSMTP)
        == 1
    )
    session.commit()
    assert sent[0]["To"] == "ann@example.org"
    # e-mailed once: the next run has nothing
    assert (
        notifications.send_digests(session, settings, base_url="http://t", smtp_factory=FakeSMTP)
        == 0
    )


def test_consult_is_private_and_converts_to_a_draft(
    session: Session, world: dict[str, Any], create_study: Callable[..., Any]
) -> None:
    study = create_study(world["a"])
    with pytest.raises(NotFound):
        consults.ask(session, study.id, actor=world["cat"], question="Mine?")
    assert [s.id for s in consults.list_hospital_studies(session, actor=world["cat"]).items] == []
    assert study.id in [
        s.id for s in consults.list_hospital_studies(session, actor=world["ann"]).items
    ]
    consult = consults.ask(session, study.id, actor=world["ann"], question="Is this a PE?")
    session.commit()
    assert notifications.unread_count(session, world["edu_a"]) == 1
    assert notifications.unread_count(session, world["edu_b"]) == 0
    for outsider in (world["bob"], world["cat"], world["edu_b"]):
        with pytest.raises(NotFound):
            consults.get_consult(session, consult.id, actor=outsider)
        assert consults.list_consults(session, actor=outsider).total == 0
    consults.add_message(session, consult.id, actor=world["edu_a"], body="Yes, saddle embolus.")
    session.commit()
    assert notifications.unread_count(session, world["ann"]) == 1
    with pytest.raises(Forbidden):
        consults.convert_to_case(session, consult.id, actor=world["ann"])
    case = consults.convert_to_case(session, consult.id, actor=world["edu_a"])
    session.commit()
    assert case.status is CaseStatus.DRAFT and case.visibility is Visibility.PRIVATE
    assert case.history == "Is this a PE?"
    assert case.institution_id == world["a"].id
    assert [a.user_id for a in case.authors] == [world["edu_a"].id]
    assert [s.study_id for s in case.studies] == [study.id]
    notes = consults.case_notes(session, case, actor=world["edu_a"])
    assert "saddle embolus" in notes[0].body and "Is this a PE?" in notes[0].body
    with pytest.raises(NotFound):
        consults.case_notes(session, case, actor=world["ann"])
    with pytest.raises(Conflict):
        consults.convert_to_case(session, consult.id, actor=world["edu_a"])
    session.rollback()
    assert count(session, CaseNote) == 1
    assert count(session, Consult) == 1
    assert count(session, CommentReport) == 0
    assert session.scalar(select(func.count()).select_from(Notification)) == 2
