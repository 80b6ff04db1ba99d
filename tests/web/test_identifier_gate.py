"""The identifier gate through HTTP: published edits wait for confirmation, live text is
refused until confirmed, drafts warn, and every save is audited with counts only (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli import cli
from app.models import AuditEvent, Case, Institution, KeyImage, Role, User
from tests.conftest import AuthActions, csrf_token

# Identifiers today's scanner finds: a name after a title, a date, a record number.
LEAK = "Mr Kowalczyk, born 12/03/1961, MRN 1234567, fell off a ladder."
CLEAN = "A 54-year-old farmer who fell off a ladder."


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution("Bush Hospital")


@pytest.fixture
def educator(create_user: Callable[..., User], hospital: Institution) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


@pytest.fixture
def published(create_case: Callable[..., Any], educator: User) -> Case:
    case: Case = create_case(educator, title="Scaphoid fracture", visibility="institution")
    return case


def _content(history: str, title: str = "Scaphoid fracture") -> dict[str, Any]:
    return {
        "title": title,
        "diagnosis": "Scaphoid waist fracture",
        "difficulty": "beginner",
        "labels": {"modality": ["CR"]},
        "sections": {"history": history, "findings": "Lucent line through the waist."},
    }


def _events(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def _no_text_in_audit(session: Session, *fragments: str) -> None:
    session.expire_all()
    for event in session.scalars(select(AuditEvent)):
        for fragment in fragments:
            assert fragment not in str(event.detail), event.action


def test_published_edit_with_identifiers_waits_for_confirmation(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    hospital: Institution,
    published: Case,
    create_user: Callable[..., User],
    session: Session,
) -> None:
    slug = published.slug
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{slug}/edit")
    saved = client.put(
        f"/api/cases/{slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": 1, "content": _content(LEAK)},
    )
    body = saved.get_json()
    assert saved.status_code == 200 and body["pending"] is True and body["revision"] == 2
    assert {f["kind"] for f in body["findings"]} >= {"name after a title", "date"}

    anonymous = app.test_client()
    colleague = app.test_client()
    AuthActions(colleague).login(create_user(Role.LEARNER, institution=hospital).email)
    for reader in (colleague,):
        page = reader.get(f"/cases/{slug}").get_data(as_text=True)
        assert "Kowalczyk" not in page and "1234567" not in page
        assert "54-year-old farmer" in page  # the last confirmed text
        assert "Kowalczyk" not in reader.get(f"/api/cases/{slug}").get_data(as_text=True)
        assert "Kowalczyk" not in reader.get("/cases/").get_data(as_text=True)
        assert "No cases match" in reader.get("/search?q=Kowalczyk").get_data(as_text=True)
    # a public case for the anonymous reader: same rule
    assert anonymous.get(f"/cases/{slug}").status_code == 404  # institution case: hidden anyway

    # the author sees the pending text, its findings and the confirm button
    editor = client.get(f"/cases/{slug}/edit").get_data(as_text=True)
    assert "Readers still see the last confirmed text" in editor
    assert "Mr Kowalczyk" in editor and "None of these identifies a patient" in editor
    assert _events(session, "case.edited")[-1].detail == {
        "revision": 2,
        "pending": True,
        "identifier_findings": len(body["findings"]),
        "identifiers_confirmed": False,
    }

    confirmed = client.post(
        f"/cases/{slug}/confirm-revision", data={"csrf_token": token, "revision": "2"}
    )
    assert confirmed.status_code == 302
    page = colleague.get(f"/cases/{slug}").get_data(as_text=True)
    assert "Mr Kowalczyk" in page
    assert "Scaphoid fracture" in colleague.get("/search?q=Kowalczyk").get_data(as_text=True)
    session.expire_all()
    case = session.get(Case, published.id)
    assert case is not None and case.pending_revision is None
    assert case.phi_confirmed_by_id == educator.id
    event = _events(session, "case.edit_confirmed")[-1]
    assert event.actor_id == educator.id and event.detail["revision"] == 2
    assert event.detail["identifiers_confirmed"] is True
    _no_text_in_audit(session, "Kowalczyk", "1234567", "12/03/1961")


def test_public_case_pending_edit_hidden_from_anonymous_reader_and_clean_save_replaces_it(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
    session: Session,
) -> None:
    case = create_case(educator, title="Colles fracture", visibility="public")
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{case.slug}/edit")
    client.put(
        f"/api/cases/{case.slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": 1, "content": _content(LEAK, title="Colles fracture")},
    )
    anonymous = app.test_client()
    assert "Kowalczyk" not in anonymous.get(f"/cases/{case.slug}").get_data(as_text=True)
    assert "No cases match" in anonymous.get("/search?q=Kowalczyk").get_data(as_text=True)

    # A later clean save goes live at once and drops the pending revision.
    clean = client.put(
        f"/api/cases/{case.slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": 2, "content": _content(CLEAN + " Wrist.", title="Colles fracture")},
    )
    assert clean.status_code == 200 and clean.get_json()["pending"] is False
    assert clean.get_json()["findings"] == []
    assert "farmer who fell off a ladder. Wrist." in anonymous.get(f"/cases/{case.slug}").get_data(
        as_text=True
    )
    assert "Colles fracture" in anonymous.get("/search?q=ladder").get_data(as_text=True)
    session.expire_all()
    assert session.get(Case, case.id).pending_revision is None  # type: ignore[union-attr]
    event = _events(session, "case.edited")[-1]
    assert event.detail["identifier_findings"] == 0 and event.detail["pending"] is False
    # Nothing waits any more: a stale confirm is refused.
    assert (
        client.post(
            f"/api/cases/{case.slug}/confirm", headers={"X-CSRFToken": token}, json={"revision": 2}
        ).status_code
        == 400
    )


def test_editor_form_save_of_published_case_keeps_it_pending(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
) -> None:
    case = create_case(educator, title="Lunate dislocation", visibility="public")
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{case.slug}/edit")
    form = {
        "csrf_token": token,
        "base_revision": "1",
        "title": "Lunate dislocation",
        "diagnosis": "",
        "difficulty": "beginner",
        "certainty": "",
        "section_history": "Seen by Dr Okonkwo in clinic.",
    }
    response = client.post(f"/cases/{case.slug}/edit", data=form, follow_redirects=True)
    assert "readers still see the last confirmed text" in response.get_data(as_text=True)
    assert "Okonkwo" not in app.test_client().get(f"/cases/{case.slug}").get_data(as_text=True)
    # the editor reopens on the pending text, based on its revision
    editor = client.get(f"/cases/{case.slug}/edit").get_data(as_text=True)
    assert "Seen by Dr Okonkwo in clinic." in editor and 'value="2"' in editor
    confirmed = client.post(
        f"/api/cases/{case.slug}/confirm", headers={"X-CSRFToken": token}, json={"revision": 2}
    )
    assert confirmed.status_code == 200
    assert "Dr Okonkwo" in app.test_client().get(f"/cases/{case.slug}").get_data(as_text=True)


def test_export_of_case_with_pending_revision_writes_the_live_text(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    published: Case,
    runner: FlaskCliRunner,
    tmp_path: Path,
) -> None:
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{published.slug}/edit")
    client.put(
        f"/api/cases/{published.slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": 1, "content": _content(LEAK)},
    )
    result = runner.invoke(cli, ["export-case", published.slug, str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "out" / published.slug / "case.md").read_text()
    assert "54-year-old farmer" in text and "Kowalczyk" not in text and "1234567" not in text


def test_unpublishing_makes_the_pending_revision_the_draft_text(
    client: FlaskClient, auth: AuthActions, educator: User, published: Case, session: Session
) -> None:
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{published.slug}/edit")
    client.put(
        f"/api/cases/{published.slug}/draft",
        headers={"X-CSRFToken": token},
        json={"base_revision": 1, "content": _content(LEAK)},
    )
    client.post(f"/cases/{published.slug}/unpublish", data={"csrf_token": token})
    session.expire_all()
    case = session.get(Case, published.id)
    assert case is not None and case.pending_revision is None and "Kowalczyk" in case.history
    # publishing again checks that text
    publish = client.get(f"/cases/{published.slug}/publish").get_data(as_text=True)
    assert "Mr Kowalczyk" in publish


def test_key_image_caption_with_identifier_refused_on_published_case_unless_confirmed(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    published: Case,
    session: Session,
) -> None:
    instance = published.studies[0].study.series[0].instances[0]
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{published.slug}/edit")
    key = f"{instance.id}:1"
    data = {"csrf_token": token, "key": key, f"caption:{key}": "Film of Mr Kowalczyk"}
    refused = client.post(f"/cases/{published.slug}/key-images", data=data)
    assert refused.status_code == 422
    assert "Mr Kowalczyk" in refused.get_data(as_text=True)  # shown back to its author
    session.expire_all()
    assert session.scalars(select(KeyImage)).all() == []
    assert _events(session, "identifiers.refused")[-1].detail == {
        "save": "case.key_images_saved",
        "identifier_findings": 1,
    }

    accepted = client.post(
        f"/cases/{published.slug}/key-images", data=data | {"confirm_identifiers": "1"}
    )
    assert accepted.status_code == 302
    session.expire_all()
    assert [k.caption for k in session.scalars(select(KeyImage))] == ["Film of Mr Kowalczyk"]
    event = _events(session, "case.key_images_saved")[-1]
    assert event.detail["identifiers_confirmed"] is True and event.detail["key_images"] == 1
    _no_text_in_audit(session, "Kowalczyk")


def test_publish_checks_captions_and_questions_too(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
    session: Session,
) -> None:
    from app.models import Question, QuestionOption

    draft = create_case(educator, status="draft")
    question = Question(case_id=draft.id, kind="single", stem="Which bone?")
    question.options.append(QuestionOption(position=0, text="Scaphoid", correct=True))
    question.options.append(
        QuestionOption(position=1, text="Lunate", explanation="As Mr Kowalczyk said")
    )
    session.add(question)
    session.commit()
    auth.login(educator.email)
    page = client.get(f"/cases/{draft.slug}/publish").get_data(as_text=True)
    assert "Question 1 option B explanation" in page and "Mr Kowalczyk" in page


def _comments(session: Session) -> list[str]:
    from app.models import Comment

    session.expire_all()
    return [c.body for c in session.scalars(select(Comment).order_by(Comment.id))]


def test_comment_with_identifier_is_not_posted_without_confirmation(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    hospital: Institution,
    published: Case,
    create_user: Callable[..., User],
    session: Session,
) -> None:
    learner = create_user(Role.LEARNER, institution=hospital)
    auth.login(learner.email)
    token = csrf_token(client, f"/cases/{published.id}/discussion")
    text = "I reported this for Mr Smith last week."
    form = {"csrf_token": token, "thread": "open", "body": text}
    refused = client.post(f"/cases/{published.id}/comments", data=form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Post anyway: none of these identifies a patient" in page
    assert "Mr Smith" in page  # the writer's text is kept, and the finding shown
    assert _comments(session) == []
    assert _events(session, "identifiers.refused")[-1].detail["save"] == "comment.posted"

    posted = client.post(
        f"/cases/{published.id}/comments", data=form | {"confirm_identifiers": "1"}
    )
    assert posted.status_code == 302
    assert _comments(session) == [text]
    event = _events(session, "comment.posted")[-1]
    assert event.detail["identifiers_confirmed"] is True and event.detail["identifier_findings"]

    # The JSON API: 422 with the findings, then the confirmed post.
    api = client.post(
        f"/api/cases/{published.id}/comments",
        headers={"X-CSRFToken": token},
        json={"body": "Seen on 12/03/2024 by the team."},
    )
    assert api.status_code == 422
    assert api.get_json()["findings"][0]["kind"] == "date"
    assert len(_comments(session)) == 1
    api = client.post(
        f"/api/cases/{published.id}/comments",
        headers={"X-CSRFToken": token},
        json={"body": "Seen on 12/03/2024 by the team.", "confirm_identifiers": True},
    )
    assert api.status_code == 201 and len(_comments(session)) == 2

    # A clean comment goes straight through, and is audited with 0 findings.
    clean = client.post(
        f"/cases/{published.id}/comments", data=form | {"body": "Classic waist fracture."}
    )
    assert clean.status_code == 302
    assert _events(session, "comment.posted")[-1].detail["identifier_findings"] == 0

    # Editing a comment to add an identifier asks again.
    from app.models import Comment

    comment = session.scalars(select(Comment).order_by(Comment.id.desc())).first()
    assert comment is not None
    edit = {"csrf_token": token, "body": "Classic waist fracture, MRN 7654321."}
    assert client.post(f"/comments/{comment.id}/edit", data=edit).status_code == 422
    assert _comments(session)[-1] == "Classic waist fracture."
    done = client.post(f"/comments/{comment.id}/edit", data=edit | {"confirm_identifiers": "1"})
    assert done.status_code == 302 and _comments(session)[-1] == edit["body"]
    _no_text_in_audit(session, "Smith", "7654321", "12/03/2024")


def _annotate(client: FlaskClient, case: Case, **fields: Any) -> Any:
    body = {
        "instance": case.studies[0].study.series[0].instances[0].sop_instance_uid,
        "frame": 1,
        "kind": "text",
        "points": [[10, 10]],
        **fields,
    }
    token = csrf_token(client, "/")
    return client.post(
        f"/api/cases/{case.id}/annotations", json=body, headers={"X-CSRFToken": token}
    )


def test_annotation_label_with_identifier_refused_on_published_overlay_unless_confirmed(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    hospital: Institution,
    published: Case,
    create_user: Callable[..., User],
    create_case: Callable[..., Any],
    session: Session,
) -> None:
    from app.models import Annotation

    def stored() -> list[str]:
        session.expire_all()
        return [a.text for a in session.scalars(select(Annotation).order_by(Annotation.id))]

    auth.login(educator.email)
    label = "Mr Kowalczyk's fracture line"
    refused = _annotate(client, published, teaching=True, text=label)
    assert refused.status_code == 422 and refused.get_json()["findings"]
    assert stored() == []
    assert _events(session, "identifiers.refused")[-1].detail["save"] == "annotation.created"
    accepted = _annotate(client, published, teaching=True, text=label, confirm_identifiers=True)
    assert accepted.status_code == 201 and stored() == [label]
    event = _events(session, "annotation.created")[-1]
    assert event.detail["identifiers_confirmed"] is True and event.detail["teaching"] is True

    # A draft's overlay: a warning only, the save goes through (publishing checks it).
    draft = create_case(educator, status="draft")
    assert _annotate(client, draft, teaching=True, text=label).status_code == 201
    assert "Teaching annotation 1" in client.get(f"/cases/{draft.slug}/publish").get_data(
        as_text=True
    )

    # A reader's own mark: private is fine, sharing it with the text asks first.
    auth.logout()
    auth.login(create_user(Role.LEARNER, institution=hospital).email)
    own = _annotate(client, published, text="MRN 1234567", visibility="only_me")
    assert own.status_code == 201
    token = csrf_token(client, "/")
    share = client.patch(
        f"/api/cases/{published.id}/annotations/{own.get_json()['id']}",
        json={"visibility": "case_readers"},
        headers={"X-CSRFToken": token},
    )
    assert share.status_code == 422
    session.expire_all()
    assert session.scalars(
        select(Annotation.visibility).order_by(Annotation.id.desc())
    ).first() == ("only_me")
    _no_text_in_audit(session, "Kowalczyk", "1234567")


def test_case_set_text_checked_on_publish_and_on_edits_after_publishing(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    published: Case,
    session: Session,
) -> None:
    from app.models import CaseSet, CaseStatus

    auth.login(educator.email)
    token = csrf_token(client, "/sets/new")
    form = {
        "csrf_token": token,
        "title": "Wrist trauma",
        "description": "Cases from the clinic of Dr Nakamura.",
        "objectives": "Recognise a scaphoid fracture.",
        "cases": published.slug,
    }
    created = client.post("/sets/new", data=form)
    assert created.status_code == 302  # a draft: saved, checked again on publishing
    session.expire_all()
    case_set = session.scalars(select(CaseSet)).one()
    assert _events(session, "set.created")[-1].detail["identifier_findings"] == 1

    publish = {"csrf_token": token, "visibility": "institution"}
    refused = client.post(f"/sets/{case_set.slug}/publish", data=publish)
    assert refused.status_code == 422 and "Dr Nakamura" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(CaseSet, case_set.id).status is CaseStatus.DRAFT  # type: ignore[union-attr]
    done = client.post(
        f"/sets/{case_set.slug}/publish", data=publish | {"confirm_identifiers": "1"}
    )
    assert done.status_code == 302
    session.expire_all()
    assert session.get(CaseSet, case_set.id).status is CaseStatus.PUBLISHED  # type: ignore[union-attr]
    assert _events(session, "set.published")[-1].detail["identifiers_confirmed"] is True

    edit = form | {"objectives": "Follow-up on 01/02/2025."}
    refused = client.post(f"/sets/{case_set.slug}/edit", data=edit)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Save anyway" in page and "01/02/2025" in page
    session.expire_all()
    assert session.get(CaseSet, case_set.id).objectives == form["objectives"]  # type: ignore[union-attr]
    saved = client.post(f"/sets/{case_set.slug}/edit", data=edit | {"confirm_identifiers": "1"})
    assert saved.status_code == 302
    session.expire_all()
    assert session.get(CaseSet, case_set.id).objectives == edit["objectives"]  # type: ignore[union-attr]
    _no_text_in_audit(session, "Nakamura", "01/02/2025")


def test_question_option_with_identifier_refused_on_published_case_unless_confirmed(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    published: Case,
    create_case: Callable[..., Any],
    session: Session,
) -> None:
    from app.models import Question

    def stems() -> list[str]:
        session.expire_all()
        return [q.stem for q in session.scalars(select(Question).order_by(Question.id))]

    auth.login(educator.email)
    token = csrf_token(client, "/")
    form = {
        "csrf_token": token,
        "kind": "single",
        "stem": "Which bone is broken?",
        "option_1": "Scaphoid",
        "correct_1": "yes",
        "option_2": "Lunate, as Mr Kowalczyk thought",
        "why_2": "The lunate is intact.",
    }
    url = f"/quiz/cases/{published.slug}/questions"
    refused = client.post(url, data=form)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Question option B" in page and "Save anyway" in page
    assert stems() == []
    assert _events(session, "identifiers.refused")[-1].detail["save"] == "quiz.question_saved"
    accepted = client.post(url, data=form | {"confirm_identifiers": "1"})
    assert accepted.status_code == 303 and stems() == ["Which bone is broken?"]
    event = _events(session, "quiz.question_saved")[-1]
    assert event.detail["identifiers_confirmed"] is True and event.detail["identifier_findings"]

    # On a draft case the same question is saved (publishing checks it).
    draft = create_case(educator, status="draft")
    assert client.post(f"/quiz/cases/{draft.slug}/questions", data=form).status_code == 303
    assert _events(session, "quiz.question_saved")[-1].detail["identifiers_confirmed"] is False
    _no_text_in_audit(session, "Kowalczyk")
