"""Unknown cases (issue 15 item 1): an opaque URL, a neutral page, and a reveal in steps
where nothing of a later step is in the HTML, the viewer opens on the first image with no
teaching overlay until the diagnosis, and each reader's step is remembered."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import (
    Annotation,
    Case,
    CaseOfTheDay,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    Institution,
    Role,
    UnknownReveal,
    User,
    Visibility,
)
from app.models.case import KeyImage
from app.services.quizzes import unknowns
from tests.conftest import AuthActions, csrf_token
from tests.quizdata import build_quiz_set

TITLE = "Free air under the diaphragm: perforated duodenal ulcer"
FINDINGS = "Crescent of gas beneath the right hemidiaphragm."
DIAGNOSIS = "Pneumoperitoneum from a perforated duodenal ulcer."
DISCUSSION = "Erect films show as little as one millilitre of free gas."
CAPTION = "Subdiaphragmatic crescent"


@pytest.fixture
def unknown_case(
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> Case:
    """A public case whose title, findings and caption all give the diagnosis away, with a
    key image on its second slice and a teaching ellipse round the lesion."""
    educator = create_user(Role.EDUCATOR, institution=create_institution())
    case = create_case(educator, title=TITLE, slices=3)
    case.slug = "perforated-duodenal-ulcer"
    case.findings, case.diagnosis_text = FINDINGS, DIAGNOSIS
    case.diagnosis = "Perforated duodenal ulcer"
    case.discussion, case.references = DISCUSSION, "Radiopaedia: pneumoperitoneum."
    second = case.studies[0].study.series[0].instances[1]
    case.key_images.append(KeyImage(instance_id=second.id, frame=1, caption=CAPTION))
    session.add(
        Annotation(
            case_id=case.id,
            user_id=educator.id,
            series_id=second.series_id,
            instance_id=second.id,
            frame=1,
            kind="ellipse",
            points=[[10, 10], [30, 30]],
            teaching=True,
        )
    )
    session.commit()
    return case


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).lower()


def _reveal(client: FlaskClient, case: Case, step: int) -> Any:
    url = f"/unknowns/{case.unknown_token}"
    return client.post(f"{url}/reveal", data={"step": step, "csrf_token": csrf_token(client, url)})


def _gives_away(html: str) -> list[str]:
    low = html.lower()
    return [
        w
        for w in ("perforated", "duodenal", "pneumoperitoneum", "subdiaphragmatic", "crescent")
        if w in low
    ]


def test_unknown_page_is_neutral_and_reveals_one_step_per_click(
    client: FlaskClient, unknown_case: Case
) -> None:
    url = f"/unknowns/{unknown_case.unknown_token}"
    assert unknown_case.slug not in url and "duodenal" not in url
    page = client.get(url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", html, re.S)
    label = f"Unknown {unknowns.unknown_number(unknown_case.unknown_token)}"
    assert title and label in title.group(1)
    assert f"<h1>{label}</h1>" in html
    # Not the case id, which keys /api/cases/<id>/annotations (the teaching overlay).
    assert f"Unknown {unknown_case.id}<" not in html
    assert "pleuritic chest pain" in html  # the history comes first
    assert _gives_away(html) == [], "the unrevealed page names the diagnosis"
    assert unknown_case.slug not in html
    # The viewer opens on the first image, and never on the case's own annotation API.
    assert 'data-index="0"' in html
    assert f"/api/cases/{unknown_case.id}/annotations" not in html
    assert "Reveal the findings" in html

    assert _reveal(client, unknown_case, 1).status_code == 303
    html = client.get(url).get_data(as_text=True)
    assert "crescent of gas" in html.lower()
    assert DIAGNOSIS.lower() not in html.lower() and "duodenal" not in html.lower()
    assert "Reveal the diagnosis" in html and CAPTION not in html

    _reveal(client, unknown_case, 2)
    html = client.get(url).get_data(as_text=True)
    assert DIAGNOSIS in html and CAPTION in html
    assert DISCUSSION not in html and TITLE not in html
    # Now the viewer opens on the key image (slice 2) with the case's teaching overlay.
    assert 'data-index="1"' in html
    assert f"/api/cases/{unknown_case.id}/annotations" in html
    assert f"/cases/{unknown_case.slug}" not in html

    _reveal(client, unknown_case, 3)
    html = client.get(url).get_data(as_text=True)
    assert DISCUSSION in html and "Radiopaedia" in html and TITLE in html
    assert f'href="/cases/{unknown_case.slug}"' in html  # the full case, only now


def test_a_step_cannot_be_skipped_and_a_repeated_click_changes_nothing(
    client: FlaskClient, unknown_case: Case
) -> None:
    url = f"/unknowns/{unknown_case.unknown_token}"
    assert client.post(f"{url}/reveal", data={"step": 1}).status_code == 400  # no CSRF token
    assert FINDINGS not in client.get(url).get_data(as_text=True)
    _reveal(client, unknown_case, 3)
    html = client.get(url).get_data(as_text=True)
    assert "Reveal the steps in order" in html
    assert FINDINGS not in html and DISCUSSION not in html
    _reveal(client, unknown_case, 1)
    _reveal(client, unknown_case, 1)
    html = client.get(url).get_data(as_text=True)
    assert FINDINGS in html and DIAGNOSIS not in html
    _reveal(client, unknown_case, 9)
    assert DIAGNOSIS not in client.get(url).get_data(as_text=True)


def test_the_unknowns_annotations_leave_out_the_teaching_overlay_until_the_diagnosis(
    client: FlaskClient, unknown_case: Case
) -> None:
    notes = f"/unknowns/{unknown_case.unknown_token}/annotations"
    assert client.get(notes).get_json() == {"items": []}
    _reveal(client, unknown_case, 1)
    assert client.get(notes).get_json() == {"items": []}
    _reveal(client, unknown_case, 2)
    items = client.get(notes).get_json()["items"]
    assert [n["teaching"] for n in items] == [True]


def test_a_readers_step_is_remembered_across_sessions_and_is_their_own(
    app: Any,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    create_user: Callable[..., User],
    unknown_case: Case,
) -> None:
    learner = create_user(Role.LEARNER, email="reader@example.org")
    auth.login(learner.email)
    _reveal(client, unknown_case, 1)
    _reveal(client, unknown_case, 2)
    stored = session.scalars(
        select(UnknownReveal).where(UnknownReveal.user_id == learner.id)
    ).one()
    assert stored.step == 2

    other = app.test_client()  # another device, signed in as the same reader
    AuthActions(other).login(learner.email)
    assert DIAGNOSIS in other.get(f"/unknowns/{unknown_case.unknown_token}").get_data(
        as_text=True
    )
    # A visitor on a fresh browser starts at the history.
    visitor = app.test_client()
    html = visitor.get(f"/unknowns/{unknown_case.unknown_token}").get_data(as_text=True)
    assert FINDINGS not in html and DIAGNOSIS not in html


def test_an_open_exam_on_the_case_keeps_the_findings_and_diagnosis_back(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    hospital = create_institution()
    educator = create_user(Role.EDUCATOR, institution=hospital)
    learner = create_user(Role.LEARNER, institution=hospital, email="exam@example.org")
    qs = build_quiz_set(session, create_case, educator)
    auth.login(learner.email)
    token = csrf_token(client, f"/sets/{qs.case_set.slug}/quiz")
    client.post(
        f"/sets/{qs.case_set.slug}/quiz/start", data={"mode": "exam", "csrf_token": token}
    )
    # The findings can name what a question asks for (review15): refused as well.
    _reveal(client, qs.case, 1)
    html = client.get(f"/unknowns/{qs.case.unknown_token}").get_data(as_text=True)
    assert "finish it before revealing the findings" in html
    assert qs.case.findings.strip()[:30] not in html
    _reveal(client, qs.case, 2)
    html = client.get(f"/unknowns/{qs.case.unknown_token}").get_data(as_text=True)
    assert "Right pneumothorax." not in html


def test_case_of_the_day_set_steps_and_the_old_link_lead_to_the_unknown(
    client: FlaskClient, session: Session, unknown_case: Case
) -> None:
    session.add(CaseOfTheDay(day=date.today(), case_id=unknown_case.id))
    case_set = CaseSet(
        slug="abdomen",
        title="Acute abdomen",
        status=CaseStatus.PUBLISHED,
        visibility=Visibility.PUBLIC,
    )
    case_set.items.append(CaseSetItem(case_id=unknown_case.id, position=0))
    session.add(case_set)
    session.commit()
    url = f"/unknowns/{unknown_case.unknown_token}"

    home = client.get("/").get_data(as_text=True)
    assert f'href="{url}"' in home
    assert TITLE not in home and unknown_case.slug not in home

    step = client.get(f"/sets/abdomen/cases/{unknown_case.slug}").get_data(as_text=True)
    assert f'href="{url}"' in step
    assert "duodenal" not in _text(step.split("</nav>", 2)[-1])

    # The set's page names its cases by position, and links to the steps by position.
    listing = client.get("/sets/abdomen").get_data(as_text=True)
    assert TITLE not in listing and unknown_case.slug not in listing
    assert 'href="/sets/abdomen/cases/1"' in listing
    assert f'href="{url}"' in client.get("/sets/abdomen/cases/1").get_data(as_text=True)
    assert client.get("/sets/abdomen/cases/2").status_code == 404

    old = client.get(f"/cases/{unknown_case.slug}?unknown=1")
    assert old.status_code == 302 and old.headers["Location"].endswith(url)


def test_an_unknown_the_reader_may_not_see_is_not_found(
    client: FlaskClient,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    educator = create_user(Role.EDUCATOR, institution=create_institution())
    private = create_case(educator, visibility="institution")
    assert client.get(f"/unknowns/{private.unknown_token}").status_code == 404
    assert client.get("/unknowns/not-a-token").status_code == 404


def test_a_reader_annotates_the_unknown_without_touching_the_teaching_overlay(
    client: FlaskClient,
    auth: AuthActions,
    create_user: Callable[..., User],
    unknown_case: Case,
) -> None:
    auth.login(create_user(Role.LEARNER, email="marker@example.org").email)
    notes = f"/unknowns/{unknown_case.unknown_token}/annotations"
    instance = unknown_case.studies[0].study.series[0].instances[0]
    token = csrf_token(client, f"/unknowns/{unknown_case.unknown_token}")
    body = {
        "instance": instance.sop_instance_uid,
        "frame": 1,
        "kind": "arrow",
        "points": [[1, 1], [20, 20]],
        "visibility": "only_me",
        "teaching": True,  # ignored: an unknown's reader never adds to the overlay
    }
    made = client.post(notes, json=body, headers={"X-CSRFToken": token})
    assert made.status_code == 201 and made.get_json()["teaching"] is False
    items = client.get(notes).get_json()["items"]
    assert [(n["mine"], n["teaching"]) for n in items] == [(True, False)]
    gone = client.delete(f"{notes}/{made.get_json()['id']}", headers={"X-CSRFToken": token})
    assert gone.status_code == 204
    assert client.get(notes).get_json() == {"items": []}
