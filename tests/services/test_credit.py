"""Honest credit (issue 15): only a finished exam attempt earns it, certificates name who
issues and accredits it, and a credit set never holds a case part of its audience cannot see."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.errors import Invalid
from app.models import (
    Attempt,
    Case,
    CaseSet,
    CaseStatus,
    Certificate,
    Institution,
    Role,
    User,
    Visibility,
)
from app.services import case_sets, cases, credit
from app.services.quizzes import attempts
from tests.conftest import AuthActions, csrf_token
from tests.quizdata import QuizSet, build_quiz_set

NOW = datetime(2026, 11, 23, 20, 0, tzinfo=UTC)
EVALUATION = {"met": "5", "bias": "Yes", "comments": ""}
SITE = credit.Issuer("Site default provider", "Site default statement.", "Site credit")


@pytest.fixture
def people(
    create_user: Callable[..., User], create_institution: Callable[..., Institution]
) -> dict[str, User]:
    hospital = create_institution()
    return {
        "educator": create_user(Role.EDUCATOR, institution=hospital),
        "learner": create_user(Role.LEARNER, institution=hospital),
    }


@pytest.fixture
def qs(session: Session, create_case: Callable[..., Case], people: dict[str, User]) -> QuizSet:
    return build_quiz_set(session, create_case, people["educator"])


def _take(session: Session, qs: QuizSet, learner: User, mode: str) -> Attempt:
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode=mode)
    for qid, response in qs.right_answers().items():
        attempts.answer_question(session, attempt.id, qid, response, actor=learner, now=NOW)
    attempts.finish_attempt(session, attempt.id, actor=learner, now=NOW)
    session.commit()
    return attempt


def _claim(session: Session, attempt: Attempt, learner: User) -> Certificate:
    return credit.claim_credit(
        session,
        attempt.id,
        actor=learner,
        evaluation=EVALUATION,
        hours=1,
        attested=True,
        issuer=SITE,
        now=NOW,
    )


def test_a_passed_practice_attempt_cannot_claim_credit(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    practice = _take(session, qs, learner, "practice")
    assert practice.passed and practice.score == 100.0
    status = credit.credit_status(session, practice, today=NOW.date())
    assert not status.eligible and "exam mode" in status.reason
    with pytest.raises(Invalid, match="exam mode"):
        _claim(session, practice, learner)
    session.rollback()
    assert session.scalar(select(func.count(Certificate.id))) == 0
    exam = _take(session, qs, learner, "exam")
    assert credit.credit_status(session, exam, today=NOW.date()).eligible
    assert _claim(session, exam, learner).attempt_id == exam.id


def test_certificate_names_the_sets_provider_else_the_site_defaults(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    qs.case_set.credit_provider = "Outback College of Radiology"
    qs.case_set.credit_type = "AMA PRA Category 1 Credit"
    session.commit()
    cert = _claim(session, _take(session, qs, learner, "exam"), learner)
    session.commit()
    shown = credit.verify_certificate(session, cert.token).as_json()
    assert shown["provider"] == "Outback College of Radiology"
    assert shown["credit_type"] == "AMA PRA Category 1 Credit"
    assert shown["accreditation_statement"] == "Site default statement."  # the set gave none
    pdf = credit.certificate_pdf(cert, "https://example.org/verify/" + cert.token)
    assert b"Outback College of Radiology" in pdf and b"Site default statement." in pdf
    # copied at issue: a later change to the set does not rewrite an issued certificate
    qs.case_set.credit_provider = "Someone else"
    session.commit()
    assert credit.verify_certificate(session, cert.token).provider == (
        "Outback College of Radiology"
    )


def test_a_public_credit_set_refuses_a_case_not_everyone_can_see(
    session: Session, create_case: Callable[..., Case], people: dict[str, User]
) -> None:
    educator = people["educator"]
    qs = build_quiz_set(session, create_case, educator)
    hospital_case = create_case(educator, visibility="institution", title="Hospital only")
    draft = create_case(educator, status="draft", title="Still a draft")
    slugs = (qs.case.slug, hospital_case.slug)

    # Adding the hospital-only case to the published public credit set is refused.
    with pytest.raises(Invalid, match=rf"Hospital only.*\({hospital_case.slug}\).*everyone"):
        case_sets.update_set(
            session,
            qs.case_set.slug,
            case_sets.SetContent(title="Chest emergencies", case_slugs=slugs),
            actor=educator,
        )
    session.rollback()
    assert [i.case_id for i in qs.case_set.items] == [qs.case.id]

    # A draft set may hold it; publishing it to everyone is refused, naming the case ...
    draft_set = case_sets.create_set(
        session, case_sets.SetContent(title="Mixed", case_slugs=slugs), actor=educator
    )
    draft_set.credit_hours = 1.0
    session.commit()
    with pytest.raises(Invalid, match="Hospital only"):
        case_sets.publish_set(session, draft_set.slug, Visibility.PUBLIC, actor=educator)
    session.rollback()
    assert draft_set.status is CaseStatus.DRAFT
    # ... and publishing to the institution, whose members all see both, is allowed.
    case_sets.publish_set(session, draft_set.slug, Visibility.INSTITUTION, actor=educator)
    session.commit()

    # A draft case reaches nobody; a set without credit may still mix audiences.
    with pytest.raises(Invalid, match="Still a draft"):
        case_sets.update_set(
            session,
            draft_set.slug,
            case_sets.SetContent(title="Mixed", case_slugs=(*slugs, draft.slug)),
            actor=educator,
        )
    session.rollback()
    plain = case_sets.create_set(
        session, case_sets.SetContent(title="Plain", case_slugs=slugs), actor=educator
    )
    case_sets.publish_set(session, plain.slug, Visibility.PUBLIC, actor=educator)
    session.commit()
    # Making that published public set credit-bearing is refused for the same reason.
    with pytest.raises(Invalid, match="Hospital only"):
        case_sets.update_credit(
            session,
            plain.slug,
            case_sets.CreditSettings(credit_hours=1.0, disclosures="None"),
            actor=educator,
        )
    session.rollback()
    assert plain.credit_hours is None


def test_credit_settings_keep_time_limit_and_issuer(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    settings = case_sets.CreditSettings(
        credit_hours=1.5,
        disclosures="None",
        time_limit_minutes=30,
        credit_provider="  Outback   College ",
        accreditation_statement="Accredited by the Outback College.",
        credit_type="CPD points",
    )
    saved = case_sets.update_credit(session, qs.case_set.slug, settings, actor=people["educator"])
    assert saved.time_limit_minutes == 30 and saved.credit_provider == "Outback College"
    issuer = credit.issuer_for(saved, SITE)
    assert issuer == credit.Issuer(
        "Outback College", "Accredited by the Outback College.", "CPD points"
    )
    with pytest.raises(Invalid, match="time limit"):
        case_sets.update_credit(
            session,
            qs.case_set.slug,
            case_sets.CreditSettings(credit_hours=1.0, disclosures="None", time_limit_minutes=0),
            actor=people["educator"],
        )


def test_practice_is_unlimited_and_leaves_exam_attempts(
    session: Session, create_case: Callable[..., Case], people: dict[str, User]
) -> None:
    learner = people["learner"]
    qs = build_quiz_set(session, create_case, people["educator"], max_attempts=1)
    for _ in range(3):
        _take(session, qs, learner, "practice")
    assert attempts.attempts_left(session, qs.case_set, actor=learner) == 1
    exam = _take(session, qs, learner, "exam")
    assert exam.number == 4 and attempts.attempts_left(session, qs.case_set, actor=learner) == 0


def test_timed_exam_refuses_late_answers_and_finishes_on_time(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    qs.case_set.time_limit_minutes = 20
    session.commit()
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam", now=NOW)
    assert attempt.deadline_at == NOW + timedelta(minutes=20)
    assert attempts.seconds_left(attempt, NOW + timedelta(minutes=5)) == 15 * 60
    right = qs.right_answers()
    attempts.answer_question(
        session,
        attempt.id,
        qs.single.id,
        right[qs.single.id],
        actor=learner,
        now=NOW + timedelta(minutes=19),
    )
    session.commit()
    late = NOW + timedelta(minutes=20, seconds=1)
    with pytest.raises(attempts.TimeIsUp, match="Time is up"):
        attempts.answer_question(
            session, attempt.id, qs.multiple.id, right[qs.multiple.id], actor=learner, now=late
        )
    session.rollback()
    assert len(attempt.answers) == 1
    assert attempts.close_if_overdue(session, attempt, actor=learner, now=late)
    session.commit()
    # Finished at the deadline, scored on the one answer given in time: 1 of 4.
    assert attempt.finished_at == NOW + timedelta(minutes=20)
    assert attempt.score == 25.0 and not attempt.passed
    # The set's limit changing later does not move a running exam's deadline.
    qs.case_set.time_limit_minutes = 5
    second = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="exam", now=NOW)
    assert second.deadline_at == NOW + timedelta(minutes=5)
    qs.case_set.time_limit_minutes = 60
    session.commit()
    assert second.deadline_at == NOW + timedelta(minutes=5)
    # Practice is never timed.
    attempts.finish_attempt(session, second.id, actor=learner, now=NOW)
    practice = attempts.start_attempt(
        session, qs.case_set.slug, actor=learner, mode="practice", now=NOW
    )
    assert practice.deadline_at is None


def test_timed_exam_pages_show_time_left_and_close_late_answers(
    client: FlaskClient, auth: AuthActions, session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    qs.case_set.time_limit_minutes = 30
    session.commit()
    auth.login(learner.email)
    token = csrf_token(client, f"/sets/{qs.case_set.slug}/quiz")
    started = client.post(
        f"/sets/{qs.case_set.slug}/quiz/start", data={"mode": "exam", "csrf_token": token}
    )
    url = started.headers["Location"]
    page = client.get(url).get_data(as_text=True)
    left = re.search(r'data-seconds-left="(\d+)">(\d+):(\d\d)<', page)
    assert left and 29 * 60 <= int(left.group(1)) <= 30 * 60 and left.group(2) in ("29", "30")
    assert "js/exam-timer.js" in page and "<script>" not in page
    attempt_id = int(url.rsplit("/", 1)[1])
    # Move the deadline into the past (as if the learner had been away for half an hour).
    attempt = session.get(Attempt, attempt_id)
    assert attempt is not None
    attempt.deadline_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    reply = client.post(
        f"{url}/answer",
        data={
            "csrf_token": token,
            "question_id": str(qs.single.id),
            "option": str(qs.single.options[0].id),
        },
    )
    assert reply.status_code == 303 and reply.headers["Location"].endswith("/result")
    result = client.get(reply.headers["Location"]).get_data(as_text=True)
    assert "Time is up" in result and "0%" in result
    session.expire_all()
    finished = session.get(Attempt, attempt_id)
    assert finished is not None and finished.status.value == "finished" and not finished.answers


def test_credit_pauses_when_a_case_is_narrowed_after_publishing(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    exam = _take(session, qs, learner, "exam")
    qs.case.visibility = Visibility.INSTITUTION
    session.commit()
    status = credit.credit_status(session, exam, today=NOW.date())
    assert not status.eligible and "paused" in status.reason and qs.case.slug in status.reason
    qs.case.visibility = Visibility.PUBLIC
    session.commit()
    assert credit.credit_status(session, exam, today=NOW.date()).eligible


def test_publish_page_names_the_case_that_blocks_a_public_credit_set(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    create_case: Callable[..., Case],
    people: dict[str, User],
) -> None:
    educator = people["educator"]
    hidden = create_case(educator, visibility="institution", title="Ward round film")
    draft = case_sets.create_set(
        session,
        case_sets.SetContent(title="Night cover", case_slugs=(hidden.slug,)),
        actor=educator,
    )
    draft.credit_hours, draft.disclosures = 1.0, "None"
    session.commit()
    auth.login(educator.email)
    token = csrf_token(client, f"/sets/{draft.slug}")
    reply = client.post(
        f"/sets/{draft.slug}/publish", data={"csrf_token": token, "visibility": "public"}
    )
    assert reply.status_code == 400
    page = reply.get_data(as_text=True)
    assert "Ward round film" in page and hidden.slug in page and "not visible to everyone" in page
    session.expire_all()
    reloaded = session.get(CaseSet, draft.id)
    assert reloaded is not None and reloaded.status is CaseStatus.DRAFT


def test_verification_names_the_configured_defaults(
    app: Flask, client: FlaskClient, session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    learner = people["learner"]
    app.config["CREDIT_PROVIDER"] = "Outback Health Education Unit"
    with app.test_request_context():
        from app.web.credit import default_issuer

        issuer = default_issuer()
    cert = credit.claim_credit(
        session,
        _take(session, qs, learner, "exam").id,
        actor=learner,
        evaluation=EVALUATION,
        hours=1,
        attested=True,
        issuer=issuer,
        now=NOW,
    )
    session.commit()
    page = client.get(f"/verify/{cert.token}").get_data(as_text=True)
    assert "Outback Health Education Unit" in page
    assert "not accredited" in page  # TEACHFILE_ACCREDITATION_STATEMENT's default
    assert client.get(f"/api/certificates/{cert.token}").get_json()["provider"] == (
        "Outback Health Education Unit"
    )


def test_api_refuses_a_late_answer_with_409_and_finishes_the_exam(
    client: FlaskClient, auth: AuthActions, session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    qs.case_set.time_limit_minutes = 10
    session.commit()
    auth.login(people["learner"].email)
    token = csrf_token(client, f"/sets/{qs.case_set.slug}/quiz")
    headers = {"X-CSRFToken": token}
    started = client.post(
        f"/api/sets/{qs.case_set.slug}/attempts", json={"mode": "exam"}, headers=headers
    )
    assert started.status_code == 201 and started.get_json()["deadline_at"]
    attempt_id = started.get_json()["id"]
    attempt = session.get(Attempt, attempt_id)
    assert attempt is not None
    attempt.deadline_at = datetime.now(UTC) - timedelta(minutes=1)
    session.commit()
    late = client.post(
        f"/api/attempts/{attempt_id}/answers",
        json={"question_id": qs.freetext.id, "text": "tension pneumothorax"},
        headers=headers,
    )
    assert late.status_code == 409 and "Time is up" in late.get_data(as_text=True)
    summary = client.get(f"/api/attempts/{attempt_id}").get_json()
    assert summary["status"] == "finished" and summary["answered"] == 0 and summary["score"] == 0


def test_credit_form_saves_time_limit_and_issuer(
    client: FlaskClient, auth: AuthActions, session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    auth.login(people["educator"].email)
    url = f"/sets/{qs.case_set.slug}/credit"
    form_page = client.get(url).get_data(as_text=True)
    assert "Exam time limit in minutes" in form_page and "Accreditation statement" in form_page
    token = csrf_token(client, url)
    form = {
        "csrf_token": token,
        "credit_hours": "1",
        "passing_score": "70",
        "disclosures": "None",
        "time_limit_minutes": "45",
        "credit_provider": "Outback College of Radiology",
        "accreditation_statement": "Accredited by the Outback Medical Council.",
        "credit_type": "CPD hours",
    }
    assert client.post(url, data=form).status_code == 302
    session.expire_all()
    saved = session.get(CaseSet, qs.case_set.id)
    assert saved is not None and saved.time_limit_minutes == 45
    assert saved.credit_provider == "Outback College of Radiology"
    start = client.get(f"/sets/{qs.case_set.slug}/quiz").get_data(as_text=True)
    for shown in ("45 minutes", "Outback College of Radiology", "Outback Medical Council", "CPD"):
        assert shown in start
    assert "45-minute exam" in client.get(f"/sets/{qs.case_set.slug}").get_data(as_text=True)
    bad = client.post(url, data={**form, "time_limit_minutes": "0"})
    assert bad.status_code == 400


def test_a_set_file_is_imported_published_or_held_by_the_identifier_gate(
    tmp_path: Path, session: Session, create_case: Callable[..., Case], people: dict[str, User]
) -> None:
    from app.services import library

    case = create_case(people["educator"], title="Shipped case")
    hospital = people["educator"].institution
    assert hospital is not None
    folder = tmp_path / "_sets"
    folder.mkdir()
    (folder / "clean.yaml").write_text(f"title: Clean\ncases: [{case.slug}]\n")
    (folder / "named.yaml").write_text(
        f"title: Named\ndescription: Mr Kowalczyk, MRN 1234567.\ncases: [{case.slug}]\n"
    )
    (folder / "missing.yaml").write_text("title: Missing\ncases: [no-such-case]\n")
    clean = library.import_set_file(session, folder / "clean.yaml", institution=hospital)
    named = library.import_set_file(session, folder / "named.yaml", institution=hospital)
    assert clean.status is CaseStatus.PUBLISHED and clean.visibility is Visibility.PUBLIC
    assert named.status is CaseStatus.DRAFT and named.published_at is None
    with pytest.raises(Invalid, match="no-such-case"):
        library.import_set_file(session, folder / "missing.yaml", institution=hospital)


def test_a_case_in_a_published_credit_set_keeps_the_sets_audience(
    session: Session, qs: QuizSet, people: dict[str, User]
) -> None:
    """Review15: the set's publish check ran once; narrowing the case afterwards (publish it
    to the hospital only, unpublish it, delete it) left learners elsewhere with fewer
    questions for the same certificate. Each is refused while the set holds the case."""
    educator, slug = people["educator"], qs.case.slug
    learner = people["learner"]
    before = len(attempts.set_questions(session, qs.case_set, None))
    with pytest.raises(Invalid, match="credit-bearing set 'chest-emergencies'"):
        cases.publish(
            session, slug, visibility=Visibility.INSTITUTION, confirmed=True, actor=educator
        )
    with pytest.raises(Invalid, match="credit-bearing set"):
        cases.unpublish(session, slug, actor=educator)
    with pytest.raises(Invalid, match="credit-bearing set"):
        cases.delete(session, slug, confirm_slug=slug, actor=educator)
    session.rollback()
    assert len(attempts.set_questions(session, qs.case_set, None)) == before == 4
    # Re-publishing to the same (public) audience stays allowed; so does everything once
    # the set no longer carries credit.
    cases.publish(session, slug, visibility=Visibility.PUBLIC, confirmed=True, actor=educator)
    qs.case_set.credit_hours = None
    cases.unpublish(session, slug, actor=educator)
    assert attempts.set_questions(session, qs.case_set, learner) == []
