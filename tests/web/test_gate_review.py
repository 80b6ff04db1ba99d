"""Paths around the identifier gate, tried as an author would (review of issue 14).

A slug is reader-visible text: it is in every link, page, search result and export
folder. It is made from the title a case or set is first given, so a first title
with a name and a record number lived on in the address after the title was cleaned
and the case published with no finding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEvent, Case, CaseSet, Institution, Role, User
from tests.conftest import AuthActions, csrf_token

FIRST_TITLE = "Mrs Kowalczyk MRN 1234567 scaphoid"


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution("Bush Hospital")


@pytest.fixture
def educator(create_user: Callable[..., User], hospital: Institution) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


def _leaks(text: str) -> bool:
    return "kowalczyk" in text.lower() or "1234567" in text


def test_a_first_title_with_identifiers_does_not_live_on_in_the_published_address(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    hospital: Institution,
    create_study: Callable[..., Any],
    session: Session,
) -> None:
    study = create_study(hospital)
    auth.login(educator.email)
    token = csrf_token(client, "/cases/mine")
    created = client.post(
        "/api/cases",
        headers={"X-CSRFToken": token},
        json={"study_ids": [study.id], "title": FIRST_TITLE},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    slug = created.get_json()["slug"]
    assert _leaks(slug)  # the draft's address, seen by its author only
    saved = client.put(
        f"/api/cases/{slug}/draft",
        headers={"X-CSRFToken": token},
        json={
            "base_revision": created.get_json()["revision"],
            "content": {
                "title": "Scaphoid waist fracture",
                "sections": {"history": "A 54-year-old farmer who fell on his hand."},
            },
        },
    )
    assert saved.status_code == 200 and saved.get_json()["findings"] == []
    published = client.post(
        f"/api/cases/{slug}/publish", headers={"X-CSRFToken": token},
        json={"visibility": "public"},
    )
    assert published.status_code == 200, published.get_data(as_text=True)
    address = published.get_json()["url"]
    assert not _leaks(address)

    reader = app.test_client()
    assert reader.get(address).status_code == 200
    for page in ("/cases/", "/search?q=scaphoid", "/api/cases"):
        body = reader.get(page).get_data(as_text=True)
        assert "Scaphoid waist fracture" in body and not _leaks(body), page
    session.expire_all()
    case = session.scalars(select(Case).where(Case.title == "Scaphoid waist fracture")).one()
    assert not _leaks(case.slug)


def test_a_published_case_keeps_its_address(
    client: FlaskClient, auth: AuthActions, educator: User, create_case: Callable[..., Any],
    session: Session,
) -> None:
    case = create_case(educator, title="Lunate dislocation")
    slug = case.slug
    auth.login(educator.email)
    token = csrf_token(client, f"/cases/{slug}/edit")
    again = client.post(f"/api/cases/{slug}/publish", headers={"X-CSRFToken": token},
                        json={"visibility": "public"})
    assert again.status_code == 200 and again.get_json()["url"] == f"/cases/{slug}"


def test_a_set_first_titled_with_identifiers_is_published_under_a_clean_address(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_case: Callable[..., Any],
    session: Session,
) -> None:
    case = create_case(educator, title="Scaphoid fracture")
    auth.login(educator.email)
    token = csrf_token(client, "/sets/new")
    made = client.post(
        "/sets/new",
        data={"csrf_token": token, "title": FIRST_TITLE, "description": "",
              "objectives": "", "cases": case.slug},
    )
    assert made.status_code == 302, made.get_data(as_text=True)
    session.expire_all()
    case_set = session.scalars(select(CaseSet)).one()
    assert _leaks(case_set.slug)
    edited = client.post(
        f"/sets/{case_set.slug}/edit",
        data={"csrf_token": token, "title": "Wrist injuries", "description": "",
              "objectives": "", "cases": case.slug},
    )
    assert edited.status_code == 302, edited.get_data(as_text=True)
    published = client.post(
        f"/sets/{case_set.slug}/publish",
        data={"csrf_token": token, "visibility": "public"},
    )
    assert published.status_code == 302 and not _leaks(published.headers["Location"])
    session.expire_all()
    case_set = session.scalars(select(CaseSet)).one()
    assert case_set.title == "Wrist injuries" and not _leaks(case_set.slug)
    listing = app.test_client().get("/sets/").get_data(as_text=True)
    assert "Wrist injuries" in listing and not _leaks(listing)


def test_credit_text_of_a_published_set_passes_the_gate(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    hospital: Institution,
    create_case: Callable[..., Any],
    create_user: Callable[..., User],
    session: Session,
) -> None:
    """Faculty, disclosures and evaluation questions are shown to learners before they
    start; they were saved on a published set with no identifier check and no count."""
    case = create_case(educator, title="Scaphoid fracture")
    auth.login(educator.email)
    token = csrf_token(client, "/sets/new")
    client.post("/sets/new", data={"csrf_token": token, "title": "Wrist injuries",
                                   "description": "", "objectives": "", "cases": case.slug})
    session.expire_all()
    slug = session.scalars(select(CaseSet)).one().slug
    client.post(f"/sets/{slug}/publish", data={"csrf_token": token, "visibility": "public"})
    form = {
        "csrf_token": token, "credit_hours": "1", "passing_score": "70", "faculty": "",
        "disclosures": "None. Thanks to Mrs Kowalczyk (MRN 1234567) for her consent.",
        "evaluation": "rating: The activity was relevant to my practice",
    }
    refused = client.post(f"/sets/{slug}/credit", data=form)
    assert refused.status_code == 422
    assert "none of these identifies a patient" in refused.get_data(as_text=True)
    learner = app.test_client()
    AuthActions(learner).login(create_user(Role.LEARNER, institution=hospital).email)
    assert not _leaks(learner.get(f"/sets/{slug}/quiz").get_data(as_text=True))

    confirmed = client.post(f"/sets/{slug}/credit", data=form | {"confirm_identifiers": "1"})
    assert confirmed.status_code == 302
    assert "Mrs Kowalczyk" in learner.get(f"/sets/{slug}/quiz").get_data(as_text=True)
    session.expire_all()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action.in_(("set.credit_changed",
                                                        "identifiers.refused")))
        .order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["identifiers.refused", "set.credit_changed"]
    assert events[-1].detail["identifiers_confirmed"] is True
    assert not any(_leaks(str(e.detail)) for e in events)


def test_series_and_study_descriptions_readers_see_are_cleaned_by_the_same_scan(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    hospital: Institution,
    create_study: Callable[..., Any],
) -> None:
    """Descriptors come from the hospital's headers and readers see them in the viewer,
    with no author to confirm them: Clean Descriptors removed only what the object
    itself lists, so a name or a hospital it did not list reached every reader."""
    study = create_study(
        hospital,
        SeriesDescription="CT chest for Aroha Ngata",
        StudyDescription="Alice Springs Hospital trauma",
        ProtocolName="Bush Hospital head",
    )
    series = study.series[0]
    assert study.description == "trauma"
    assert series.description == "CT chest for"
    auth.login(educator.email)
    metadata = client.get(
        f"/images/studies/{study.study_instance_uid}/series/{series.series_instance_uid}/metadata"
    )
    assert metadata.status_code == 200
    text = metadata.get_data(as_text=True)
    assert "CT chest for" in text and "Ngata" not in text
