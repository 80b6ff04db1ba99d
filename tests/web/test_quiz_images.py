"""Images in questions (issue 15 item 6): every question shows the real viewer on its series,
never the teaching overlay or a series description; a hotspot's target region reaches the
page only with feedback, drawn with the learner's mark on the image they clicked."""

from __future__ import annotations

import html as htmllib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Case, Institution, Role, User
from app.models.case import KeyImage
from tests.conftest import AuthActions, csrf_token
from tests.quizdata import QuizSet, build_quiz_set


@pytest.fixture
def quiz(
    session: Session,
    auth: AuthActions,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> QuizSet:
    hospital = create_institution()
    educator = create_user(Role.EDUCATOR, institution=hospital)
    qs = build_quiz_set(session, create_case, educator)
    series = qs.case.studies[0].study.series[0]
    series.description = "Tension pneumothorax protocol"  # names the answer
    key = series.instances[1]
    qs.case.key_images.append(KeyImage(instance_id=key.id, frame=1, caption="Pleural line"))
    session.commit()
    auth.login(create_user(Role.LEARNER, institution=hospital, email="l@example.org").email)
    return qs


def _start(client: FlaskClient, qs: QuizSet, mode: str) -> str:
    token = csrf_token(client, f"/sets/{qs.case_set.slug}/quiz")
    started = client.post(
        f"/sets/{qs.case_set.slug}/quiz/start", data={"mode": mode, "csrf_token": token}
    )
    return str(started.headers["Location"])


def _viewer(html: str) -> dict[str, str]:
    found = re.search(r'<section class="viewer"([^>]*)>', html)
    assert found, "the question has no viewer"
    return {k: htmllib.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', found.group(1))}


def _answer(client: FlaskClient, url: str, question_id: int, data: dict[str, Any]) -> Any:
    form = {"question_id": question_id, "csrf_token": csrf_token(client, url), **data}
    return client.post(url.split("?")[0] + "/answer", data=form)


def test_every_question_shows_the_viewer_without_overlay_or_descriptions(
    client: FlaskClient, quiz: QuizSet
) -> None:
    attempt = _start(client, quiz, "exam")
    for position, question in enumerate(
        [quiz.single, quiz.multiple, quiz.freetext, quiz.hotspot], 1
    ):
        html = client.get(f"{attempt}?q={position}").get_data(as_text=True)
        attrs = _viewer(html)
        assert attrs["data-series"] == quiz.series_uid
        assert "data-annotations-url" not in attrs and "data-case" not in attrs
        assert "data-target" not in attrs
        assert "Tension pneumothorax" not in html  # neither the title nor the description
        assert "Pleural line" not in html  # nor the key image's caption
        # Non-hotspot questions open on the key image (slice 2); the hotspot on the first.
        assert attrs["data-index"] == ("0" if question is quiz.hotspot else "1")
        assert ("data-pick" in attrs) is (question is quiz.hotspot)
        assert 'class="key-images"' not in html  # the old static 256-pixel image is gone
        # ... and the metadata the viewer fetches leaves the description out too.
        assert attrs["data-neutral"] == "1"
        meta = f"/images/studies/{attrs['data-study']}/series/{quiz.series_uid}/metadata"
        assert "description" not in client.get(f"{meta}?neutral=1").get_json()
        assert client.get(meta).get_json()["description"] == "Tension pneumothorax protocol"


def test_hotspot_feedback_draws_the_target_and_the_click_on_the_clicked_image(
    client: FlaskClient, quiz: QuizSet
) -> None:
    attempt = _start(client, quiz, "practice")
    question_url = f"{attempt}?q=4"
    before = _viewer(client.get(question_url).get_data(as_text=True))
    assert "data-target" not in before and "data-picked" not in before
    click = {"series_uid": quiz.series_uid, "frame": "3", "x": "5", "y": "6"}
    assert _answer(client, question_url, quiz.hotspot.id, click).status_code == 303
    after = client.get(question_url).get_data(as_text=True)
    attrs = _viewer(after)
    assert json.loads(attrs["data-target"]) == {
        "frames": [2, 3],
        "region": {"shape": "ellipse", "cx": 30, "cy": 20, "rx": 10, "ry": 8},
    }
    assert attrs["data-picked"] == "3,5.0,6.0"
    assert attrs["data-index"] == "2"  # opened on the image the learner clicked
    assert "data-pick" not in attrs  # feedback: no more clicking
    assert "Incorrect." in after


def test_exam_keeps_the_target_back_until_the_result(client: FlaskClient, quiz: QuizSet) -> None:
    attempt = _start(client, quiz, "exam")
    click = {"series_uid": quiz.series_uid, "frame": "2", "x": "30", "y": "20"}
    _answer(client, f"{attempt}?q=4", quiz.hotspot.id, click)
    saved = _viewer(client.get(f"{attempt}?q=4").get_data(as_text=True))
    assert "data-target" not in saved and saved["data-picked"] == "2,30.0,20.0"
    token = csrf_token(client, attempt)
    result = client.post(f"{attempt}/finish", data={"csrf_token": token}, follow_redirects=True)
    attrs = _viewer(result.get_data(as_text=True))
    assert json.loads(attrs["data-target"])["frames"] == [2, 3]
    assert attrs["data-picked"] == "2,30.0,20.0" and attrs["data-index"] == "1"
