"""Quiz pages and API over HTTP: permissions, CSRF, exam secrecy in HTML and JSON, bad input,
credit, certificates and their public verification, statistics and authoring."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import (
    Answer,
    Case,
    CaseSet,
    CaseSetItem,
    Certificate,
    Institution,
    Question,
    ReviewItem,
    Role,
    User,
)
from tests.conftest import AuthActions, csrf_token
from tests.quizdata import QuizSet, build_quiz_set


@pytest.fixture
def people(
    create_user: Callable[..., User], create_institution: Callable[..., Institution]
) -> dict[str, User]:
    hospital = create_institution()
    return {
        "educator": create_user(Role.EDUCATOR, institution=hospital),
        "learner": create_user(Role.LEARNER, institution=hospital),
        "other": create_user(Role.LEARNER),
    }


@pytest.fixture
def qs(session: Session, create_case: Callable[..., Case], people: dict[str, User]) -> QuizSet:
    return build_quiz_set(session, create_case, people["educator"])


def _api(client: FlaskClient, method: str, path: str, body: Any = None) -> Any:
    token = csrf_token(client, "/")
    return client.open(path, method=method, json=body, headers={"X-CSRFToken": token})


SECRETS = (
    "(correct)",
    "The visceral pleural line",
    "A bulla has a curved wall",
    "Accepted",
    "tension pneumothorax",
    "Teaching point",
    "Radiopaedia",
)


def test_exam_flow_in_html_never_shows_answers_before_the_end(
    client: FlaskClient, auth: AuthActions, qs: QuizSet, people: dict[str, User]
) -> None:
    auth.login(people["learner"].email)
    start = client.get(f"/sets/{qs.case_set.slug}/quiz").get_data(as_text=True)
    for shown in (
        "Credit hours",
        "Passing score",
        "75%",
        "Dr A. Faculty",
        "No relevant",
        "2026-01-01",
        "2026-06-01",
        "2029-12-31",
        "Recognise a tension",
    ):
        assert shown in start
    token = csrf_token(client, f"/sets/{qs.case_set.slug}/quiz")
    response = client.post(
        f"/sets/{qs.case_set.slug}/quiz/start", data={"mode": "exam", "csrf_token": token}
    )
    attempt_url = response.headers["Location"]
    attempt_id = int(attempt_url.rsplit("/", 1)[1])
    right = qs.right_answers()
    for position, question in enumerate([qs.single, qs.multiple, qs.freetext, qs.hotspot], 1):
        page = client.get(f"{attempt_url}?q={position}").get_data(as_text=True)
        for secret in SECRETS:
            assert secret not in page, (position, secret)
        data: dict[str, Any] = {"csrf_token": token, "question_id": str(question.id)}
        answer = right[question.id]
        if "option_ids" in answer:
            data["option"] = [str(i) for i in answer["option_ids"]]
        elif "text" in answer:
            data["text"] = "Tension pneumothorax"
        else:
            data.update({k: str(v) for k, v in answer.items()})
        saved = client.post(f"/quiz/attempts/{attempt_id}/answer", data=data)
        assert saved.status_code == 303
        after = client.get(saved.headers["Location"]).get_data(as_text=True)
        for secret in SECRETS:
            assert secret not in after, (position, secret)
    # The hotspot page embeds the viewer in pick mode on the question's series, opened on
    # the learner's own click (image 2), but never the region, the frame range or the case's
    # annotations (the teaching overlay could show the answer).
    hotspot_page = client.get(f"{attempt_url}?q=4").get_data(as_text=True)
    assert 'data-pick="1"' in hotspot_page and 'data-picked="2,30.0,20.0"' in hotspot_page
    assert f'data-series="{qs.series_uid}"' in hotspot_page and 'data-index="1"' in hotspot_page
    assert "/annotations" not in hotspot_page and "data-case" not in hotspot_page
    assert '"cx"' not in hotspot_page and '"frames"' not in hotspot_page
    done = client.post(f"/quiz/attempts/{attempt_id}/finish", data={"csrf_token": token})
    result = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "100%" in result and "(correct)" in result and "Claim credit" in result


def test_api_flow_csrf_and_exam_secrecy(
    client: FlaskClient,
    auth: AuthActions,
    qs: QuizSet,
    people: dict[str, User],
    session: Session,
) -> None:
    visitor = _api(client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {})
    assert visitor.status_code == 401
    auth.login(people["learner"].email)
    # JSON writes need the CSRF header like every form.
    assert (
        client.post(f"/api/sets/{qs.case_set.slug}/attempts", json={"mode": "exam"}).status_code
        == 400
    )
    started = _api(client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "exam"})
    assert started.status_code == 201
    attempt_id = started.get_json()["id"]
    right = qs.right_answers()
    while True:
        following = client.get(f"/api/attempts/{attempt_id}/next").get_json()
        if following["question"] is None:
            break
        text = str(following)
        assert "correct" not in text and "explanation" not in text and "region" not in text
        qid = following["question"]["id"]
        reply = _api(
            client,
            "POST",
            f"/api/attempts/{attempt_id}/answers",
            {"question_id": qid, **right[qid]},
        )
        assert reply.status_code == 200 and reply.get_json() == {"saved": True, "question_id": qid}
    assert "feedback" not in str(client.get(f"/api/attempts/{attempt_id}/result").get_json())
    finished = _api(client, "POST", f"/api/attempts/{attempt_id}/finish")
    assert finished.get_json()["score"] == 100.0 and finished.get_json()["passed"]
    result = client.get(f"/api/attempts/{attempt_id}/result").get_json()
    assert all(r["feedback"]["correct"] for r in result["review"])
    late = _api(
        client,
        "POST",
        f"/api/attempts/{attempt_id}/answers",
        {"question_id": qs.single.id, **right[qs.single.id]},
    )
    assert late.status_code == 409 and "ended" in late.get_json()["error"]
    # Another learner sees nothing of it.
    auth.logout()
    auth.login(people["other"].email)
    assert client.get(f"/api/attempts/{attempt_id}/result").status_code == 404


def test_api_practice_feedback_and_bad_input(
    client: FlaskClient,
    auth: AuthActions,
    qs: QuizSet,
    people: dict[str, User],
    session: Session,
) -> None:
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "practice"}
    ).get_json()["id"]
    url = f"/api/attempts/{attempt_id}/answers"
    bad = [
        ({"question_id": 999999, "option_ids": [1]}, 400),
        ({"question_id": qs.single.id, "option_ids": [qs.multiple.options[0].id]}, 400),
        (
            {
                "question_id": qs.hotspot.id,
                "series_uid": qs.series_uid,
                "frame": 2,
                "x": 500,
                "y": 3,
            },
            400,
        ),
        (
            {
                "question_id": qs.hotspot.id,
                "series_uid": qs.series_uid,
                "frame": 99,
                "x": 5,
                "y": 3,
            },
            400,
        ),
        ({"question_id": "1"}, 400),
        ([1, 2], 400),
    ]
    for body, status in bad:
        reply = _api(client, "POST", url, body)
        assert reply.status_code == status, body
        assert "error" in reply.get_json()
    assert session.scalar(select(func.count(Answer.id))) == 0
    reply = _api(client, "POST", url, {"question_id": qs.freetext.id, "text": "pnuemothorax"})
    feedback = reply.get_json()["feedback"]
    assert feedback["correct"] and feedback["matched"] == "pneumothorax"


def test_credit_certificate_verification_and_revocation(
    client: FlaskClient,
    auth: AuthActions,
    qs: QuizSet,
    people: dict[str, User],
) -> None:
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "exam"}
    ).get_json()["id"]
    for qid, answer in qs.right_answers().items():
        _api(client, "POST", f"/api/attempts/{attempt_id}/answers", {"question_id": qid, **answer})
    _api(client, "POST", f"/api/attempts/{attempt_id}/finish")
    claim_url = f"/quiz/attempts/{attempt_id}/credit"
    page = client.get(claim_url).get_data(as_text=True)
    assert "Objectives met?" in page and "capped at 2" in page
    token = csrf_token(client, claim_url)
    refused = client.post(
        claim_url, data={"csrf_token": token, "eval_met": "5", "eval_bias": "Yes", "hours": "1"}
    )
    assert refused.status_code == 400 and "Attest" in refused.get_data(as_text=True)
    claimed = client.post(
        claim_url,
        data={
            "csrf_token": token,
            "eval_met": "5",
            "eval_bias": "Yes",
            "hours": "1.5",
            "attest": "yes",
        },
    )
    assert claimed.status_code == 303
    cert_url = claimed.headers["Location"]
    cert_token = cert_url.rsplit("/", 1)[1]
    page = client.get(cert_url).get_data(as_text=True)
    assert "1.5" in page and f"/verify/{cert_token}" in page
    pdf = client.get(f"{cert_url}.pdf")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-1.4")
    csv_text = client.get("/quiz/transcript.csv").get_data(as_text=True)
    assert "Chest emergencies,1.5,100,valid" in csv_text and f"/verify/{cert_token}" in csv_text
    assert "1.5 hours" in client.get("/quiz/progress").get_data(as_text=True)
    # Another learner cannot open the certificate itself, only its public verification.
    auth.logout()
    auth.login(people["other"].email)
    assert client.get(cert_url).status_code == 404
    auth.logout()
    public = client.get(f"/verify/{cert_token}")
    text = public.get_data(as_text=True)
    assert public.status_code == 200 and "Valid certificate" in text and "Test User" in text
    assert "100%" not in text and people["learner"].email not in text
    assert client.get(f"/api/certificates/{cert_token}").get_json()["status"] == "valid"
    for tampered in (cert_token[:-2], cert_token[:-1] + ("x" if cert_token[-1] != "x" else "y")):
        assert client.get(f"/verify/{tampered}").status_code == 404
        assert client.get(f"/api/certificates/{tampered}").status_code == 404
    # The set's educator revokes; the link then says so.
    auth.login(people["educator"].email)
    stats = client.get(f"/sets/{qs.case_set.slug}/quiz/stats").get_data(as_text=True)
    assert "Test User" in stats
    token = csrf_token(client, cert_url)
    client.post(f"{cert_url}/revoke", data={"csrf_token": token, "reason": "Shared answers"})
    auth.logout()
    assert "revoked" in client.get(f"/verify/{cert_token}").get_data(as_text=True)
    assert client.get(f"/api/certificates/{cert_token}").get_json()["valid"] is False


def test_learner_cannot_revoke_or_see_statistics(
    client: FlaskClient,
    auth: AuthActions,
    qs: QuizSet,
    people: dict[str, User],
    session: Session,
) -> None:
    auth.login(people["learner"].email)
    assert client.get(f"/sets/{qs.case_set.slug}/quiz/stats").status_code == 403
    assert client.get(f"/quiz/cases/{qs.case.slug}/questions").status_code == 403
    token = csrf_token(client, "/")
    reply = client.post(
        f"/sets/{qs.case_set.slug}/quiz/questions/{qs.freetext.id}/accepted",
        data={"csrf_token": token, "text": "x"},
    )
    assert reply.status_code == 403
    assert (
        client.post(
            "/certificates/" + "a" * 32 + "/revoke", data={"csrf_token": token, "reason": "x"}
        ).status_code
        == 404
    )
    assert session.scalar(select(func.count(Certificate.id))) == 0


def test_statistics_add_accepted_and_authoring(
    client: FlaskClient,
    auth: AuthActions,
    qs: QuizSet,
    people: dict[str, User],
    session: Session,
) -> None:
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "exam"}
    ).get_json()["id"]
    _api(
        client,
        "POST",
        f"/api/attempts/{attempt_id}/answers",
        {"question_id": qs.freetext.id, "text": "Collapsed lung"},
    )
    _api(client, "POST", f"/api/attempts/{attempt_id}/finish")
    auth.logout()
    auth.login(people["educator"].email)
    stats_url = f"/sets/{qs.case_set.slug}/quiz/stats"
    page = client.get(stats_url).get_data(as_text=True)
    assert "collapsed lung" in page and "Add as accepted" in page
    token = csrf_token(client, stats_url)
    reply = client.post(
        f"/sets/{qs.case_set.slug}/quiz/questions/{qs.freetext.id}/accepted",
        data={"csrf_token": token, "text": "collapsed lung"},
    )
    assert reply.status_code == 303
    page = client.get(stats_url).get_data(as_text=True)
    assert "1 past answers re-scored" in page and "25%" in page
    # Authoring: add a hotspot question through the form.
    url = f"/quiz/cases/{qs.case.slug}/questions"
    assert "Add a question" in client.get(url).get_data(as_text=True)
    reply = client.post(
        url,
        data={
            "csrf_token": token,
            "kind": "hotspot",
            "stem": "Find the line",
            "series_uid": qs.series_uid,
            "first_frame": "1",
            "last_frame": "2",
            "shape": "ellipse",
            "cx": "10",
            "cy": "10",
            "rx": "5",
            "ry": "5",
        },
    )
    assert reply.status_code == 303
    listing = client.get(url).get_data(as_text=True)
    assert "Find the line" in listing
    bad = client.post(
        url,
        data={"csrf_token": token, "kind": "single", "stem": "x", "option_1": "a", "option_2": "b"},
    )
    assert bad.status_code == 400 and "exactly one" in bad.get_data(as_text=True)
    edit = re.search(rf'href="(/quiz/cases/{qs.case.slug}/questions/\d+)"', listing)
    assert edit and client.get(edit.group(1)).status_code == 200


def test_attempt_limit_and_visitor_pages(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    create_case: Callable[..., Case],
    people: dict[str, User],
) -> None:
    qs = build_quiz_set(session, create_case, people["educator"], max_attempts=1)
    page = client.get(f"/sets/{qs.case_set.slug}/quiz").get_data(as_text=True)
    assert "Log in" in page and "Credit hours" in page
    assert client.get("/quiz/progress").status_code == 302
    assert client.get("/sets/no-such-set/quiz").status_code == 404
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "exam"}
    ).get_json()["id"]
    _api(client, "POST", f"/api/attempts/{attempt_id}/finish")
    again = _api(client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "exam"})
    assert again.status_code == 409
    start = client.get(f"/sets/{qs.case_set.slug}/quiz").get_data(as_text=True)
    assert "used all 1 exam attempts" in start and 'value="exam"' not in start
    practice = _api(client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "practice"})
    assert practice.status_code == 201  # practice stays open after the exam attempts run out
    _api(client, "POST", f"/api/attempts/{practice.get_json()['id']}/finish")
    assert client.get("/quiz/review").status_code == 200
    assert client.get(f"/quiz/review/{qs.single.id}").status_code == 200  # missed: in queue
    assert client.get("/quiz/review/999999").status_code == 404


def test_hotspot_pages_embed_the_viewer(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    qs: QuizSet,
    people: dict[str, User],
) -> None:
    """Practice: the viewer picks before the answer, shows the learner's mark (no pick tool)
    with the feedback; the review queue's hotspot page does the same."""
    auth.login(people["learner"].email)
    token = csrf_token(client, f"/sets/{qs.case_set.slug}/quiz")
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "practice"}
    ).get_json()["id"]
    before = client.get(f"/quiz/attempts/{attempt_id}?q=4").get_data(as_text=True)
    assert 'data-pick="1"' in before and "data-picked" not in before
    assert 'data-index="0"' in before and "data-case" not in before
    wrong = {"series_uid": qs.series_uid, "frame": "1", "x": "30", "y": "20"}
    saved = client.post(
        f"/quiz/attempts/{attempt_id}/answer",
        data={"csrf_token": token, "question_id": str(qs.hotspot.id), **wrong},
    )
    assert saved.status_code == 303
    after = client.get(f"/quiz/attempts/{attempt_id}?q=4").get_data(as_text=True)
    assert "Incorrect." in after and "data-pick=" not in after
    assert 'data-picked="1,30.0,20.0"' in after
    _api(client, "POST", f"/api/attempts/{attempt_id}/finish")
    missed = session.scalars(select(ReviewItem).where(ReviewItem.question_id == qs.hotspot.id))
    for item in missed:
        item.due_on = date(2000, 1, 1)  # due now
    session.commit()
    review = client.get(f"/quiz/review/{qs.hotspot.id}").get_data(as_text=True)
    assert 'data-pick="1"' in review and "data-picked" not in review and '"cx"' not in review
    answered = client.post(
        f"/quiz/review/{qs.hotspot.id}",
        data={"csrf_token": token, **wrong, "frame": "2"},
    ).get_data(as_text=True)
    assert "Correct." in answered and "data-pick=" not in answered
    assert 'data-picked="2,30.0,20.0"' in answered


def test_free_text_marked_in_any_order_with_typos_and_filler(
    client: FlaskClient, auth: AuthActions, qs: QuizSet, people: dict[str, User]
) -> None:
    """Issue 15 item 4 through the API: word order, filler words and a misspelling are
    accepted, and the feedback names the accepted answer that matched."""
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "practice"}
    ).get_json()["id"]
    reply = _api(
        client,
        "POST",
        f"/api/attempts/{attempt_id}/answers",
        {"question_id": qs.freetext.id, "text": "Pnuemothorax under tension, on the right"},
    )
    feedback = reply.get_json()["feedback"]
    assert feedback["correct"] and feedback["matched"] == "tension pneumothorax"


def test_accepted_answer_with_identifier_needs_confirmation(
    client: FlaskClient, auth: AuthActions, qs: QuizSet, people: dict[str, User], session: Session
) -> None:
    """Learners see accepted answers in feedback: the identifier gate applies (issue 14)."""
    auth.login(people["educator"].email)
    stats_url = f"/sets/{qs.case_set.slug}/quiz/stats"
    token = csrf_token(client, stats_url)
    url = f"/sets/{qs.case_set.slug}/quiz/questions/{qs.freetext.id}/accepted"
    text = "as Mr Kowalczyk had"
    refused = client.post(url, data={"csrf_token": token, "text": text})
    assert refused.status_code == 303
    assert "look like patient identifiers" in client.get(stats_url).get_data(as_text=True)
    session.expire_all()
    assert text not in (session.get(Question, qs.freetext.id).accepted or [])  # type: ignore[union-attr]
    client.post(url, data={"csrf_token": token, "text": text, "confirm_identifiers": "1"})
    session.expire_all()
    assert text in (session.get(Question, qs.freetext.id).accepted or [])  # type: ignore[union-attr]


def test_review_feedback_names_the_case_only_when_no_other_question_on_it_is_due(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    qs: QuizSet,
    people: dict[str, User],
) -> None:
    """Review round trip (review15): a learner who missed two questions on one case answers
    the first in the review queue; its feedback must not name the case (its title names the
    diagnosis the second, still due, asks for). Once the last due one is answered, it may."""
    auth.login(people["learner"].email)
    attempt_id = _api(
        client, "POST", f"/api/sets/{qs.case_set.slug}/attempts", {"mode": "exam"}
    ).get_json()["id"]
    _api(client, "POST", f"/api/attempts/{attempt_id}/finish")  # all four missed: queued
    items = session.scalars(
        select(ReviewItem).where(ReviewItem.user_id == people["learner"].id)
    ).all()
    assert len(items) == 4
    for item in items:
        item.due_on = date.today()
    session.commit()
    token = csrf_token(client, f"/quiz/review/{qs.single.id}")
    wrong = [str(o.id) for o in qs.single.options if not o.correct][:1]
    first = client.post(
        f"/quiz/review/{qs.single.id}", data={"csrf_token": token, "option": wrong}
    ).get_data(as_text=True)
    assert "Next review" in first  # feedback shown
    assert 'class="case-reveal"' not in first and qs.case.slug not in first
    wrong_multiple = [str(o.id) for o in qs.multiple.options if not o.correct][:1]
    for question, data in (
        (qs.multiple, {"option": wrong_multiple}),
        (qs.freetext, {"text": "no idea"}),
    ):
        page = client.post(
            f"/quiz/review/{question.id}", data={"csrf_token": token, **data}
        ).get_data(as_text=True)
        assert "Next review" in page and 'class="case-reveal"' not in page
    last = client.post(
        f"/quiz/review/{qs.hotspot.id}",
        data={"csrf_token": token, "series_uid": qs.series_uid, "frame": "1", "x": "0", "y": "0"},
    ).get_data(as_text=True)
    assert 'class="case-reveal"' in last and qs.case.slug in last


def test_an_open_exam_question_cannot_be_answered_in_review_or_another_sets_practice(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    qs: QuizSet,
    people: dict[str, User],
) -> None:
    """Credit without learning (review15): a learner who failed a first exam attempt has
    its questions in the review queue; during the second attempt the queue (or practice on
    another set holding the same case) would mark the question and show its answer."""
    auth.login(people["learner"].email)
    slug = qs.case_set.slug
    first = _api(client, "POST", f"/api/sets/{slug}/attempts", {"mode": "exam"}).get_json()
    _api(client, "POST", f"/api/attempts/{first['id']}/finish")  # all missed: queued
    for item in session.scalars(select(ReviewItem)):
        item.due_on = date.today()
    other = CaseSet(
        slug="same-case-practice",
        title="Same case, other set",
        status=qs.case_set.status,
        visibility=qs.case_set.visibility,
        created_by_id=people["educator"].id,
    )
    other.items.append(CaseSetItem(case_id=qs.case.id, position=0))
    session.add(other)
    session.commit()
    practice = _api(client, "POST", "/api/sets/same-case-practice/attempts", {"mode": "practice"})
    second = _api(client, "POST", f"/api/sets/{slug}/attempts", {"mode": "exam"}).get_json()

    assert client.get("/quiz/review").status_code == 200  # nothing offered: no redirect
    token = csrf_token(client, "/")
    right = [str(o.id) for o in qs.single.options if o.correct]
    review = client.post(
        f"/quiz/review/{qs.single.id}", data={"csrf_token": token, "option": right}
    )
    page = review.get_data(as_text=True)
    assert review.status_code == 409 and "finish the exam" in page
    assert "(correct)" not in page and "Next review" not in page
    in_practice = _api(
        client,
        "POST",
        f"/api/attempts/{practice.get_json()['id']}/answers",
        {"question_id": qs.single.id, "option_ids": [int(i) for i in right]},
    )
    assert in_practice.status_code == 409 and "feedback" not in in_practice.get_json()

    _api(client, "POST", f"/api/attempts/{second['id']}/finish")  # the exam over: open again
    session.expire_all()
    for item in session.scalars(select(ReviewItem)):
        item.due_on = date.today()
    session.commit()
    assert client.get("/quiz/review").status_code == 302
    again = _api(
        client,
        "POST",
        f"/api/attempts/{practice.get_json()['id']}/answers",
        {"question_id": qs.single.id, "option_ids": [int(i) for i in right]},
    )
    assert again.status_code == 200 and again.get_json()["feedback"]["correct"]
