"""A learner opens the case of the day as an unknown from the home page in a real browser and
sees no diagnostic word until each reveal; the viewer opens on the first image with no
teaching overlay until the diagnosis, then on the key image with the overlay drawn. And a
hotspot question's feedback outlines the target on its images beside the learner's click."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.models import Annotation, Case, CaseOfTheDay, Institution, Role, User
from app.models.case import KeyImage
from app.services.quizzes import attempts, unknowns
from tests.conftest import PASSWORD
from tests.quizdata import build_quiz_set

DIAGNOSTIC = ("perforated", "duodenal", "pneumoperitoneum", "ulcer", "subdiaphragmatic")


def _words(page: Page) -> list[str]:
    text = page.locator("main").inner_text().lower()
    return [w for w in DIAGNOSTIC if w in text]


def test_case_of_the_day_as_an_unknown_reveals_step_by_step(
    page: Page,
    live_server: str,
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    educator = create_user(Role.EDUCATOR, institution=create_institution())
    learner = create_user(Role.LEARNER, email="night-shift@example.org")
    case = create_case(educator, title="Free air under the diaphragm: perforated duodenal ulcer")
    case.slug = "perforated-duodenal-ulcer"
    case.history = "A 67-year-old with sudden epigastric pain, now rigid."
    case.findings = "Crescents of gas beneath both hemidiaphragms."
    case.diagnosis = "Perforated duodenal ulcer"
    case.diagnosis_text = "Pneumoperitoneum from a perforated duodenal ulcer."
    case.discussion = "An erect chest film shows as little as one millilitre of free gas."
    second = case.studies[0].study.series[0].instances[1]
    case.key_images.append(KeyImage(instance_id=second.id, frame=1, caption="Subdiaphragmatic gas"))
    session.add(
        Annotation(
            case_id=case.id,
            user_id=educator.id,
            series_id=second.series_id,
            instance_id=second.id,
            frame=1,
            kind="ellipse",
            points=[[10, 10], [40, 30]],
            teaching=True,
        )
    )
    session.add(CaseOfTheDay(day=date.today(), case_id=case.id))
    session.commit()

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(learner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("My progress")

    page.goto(f"{live_server}/")
    assert _words(page) == []
    page.get_by_role("link", name="Try it as an unknown").click()
    label = f"Unknown {unknowns.unknown_number(case.unknown_token)}"
    expect(page.get_by_role("heading", level=1)).to_have_text(label)
    assert "perforated" not in page.url and case.slug not in page.url
    assert "duodenal" not in page.title().lower()
    expect(page.locator("main")).to_contain_text("sudden epigastric pain")
    viewer = page.get_by_role("region", name="Images of study 1")
    expect(viewer).to_have_attribute("data-state", "ready")
    expect(viewer.locator(".viewer-counter")).to_have_text("1 / 3")
    # No overlay on the key image either: scroll there and look.
    viewer.focus()
    page.keyboard.press("ArrowDown")
    expect(viewer.locator(".viewer-counter")).to_have_text("2 / 3")
    expect(viewer.locator(".viewer-overlay .teaching")).to_have_count(0)
    expect(viewer.get_by_label("Teaching overlay")).to_have_count(0)
    assert _words(page) == []

    page.get_by_role("button", name="Reveal the findings").click()
    expect(page.locator("main")).to_contain_text("Crescents of gas")
    assert _words(page) == []

    page.get_by_role("button", name="Reveal the diagnosis").click()
    expect(page.locator("main")).to_contain_text("Pneumoperitoneum from a perforated")
    assert "an erect chest film" not in page.locator("main").inner_text().lower()
    viewer = page.get_by_role("region", name="Images of study 1")
    expect(viewer).to_have_attribute("data-state", "ready")
    expect(viewer.locator(".viewer-counter")).to_have_text("2 / 3")  # the key image
    expect(viewer.locator(".viewer-overlay .teaching")).to_have_count(1)
    expect(viewer.get_by_label("Teaching overlay")).to_be_checked()
    expect(page.locator("main")).to_contain_text("Subdiaphragmatic gas")

    page.get_by_role("button", name="Reveal the discussion and references").click()
    expect(page.locator("main")).to_contain_text("one millilitre of free gas")
    page.get_by_role("link", name="Open the full case page").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("perforated duodenal ulcer")

    # The reveal is remembered: the unknown opens where the learner left it.
    page.go_back()
    expect(page.locator("main")).to_contain_text("one millilitre of free gas")
    assert console_errors == []


def test_hotspot_feedback_outlines_the_target_beside_the_learners_click(
    page: Page,
    live_server: str,
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    hospital = create_institution()
    educator = create_user(Role.EDUCATOR, institution=hospital)
    learner = create_user(Role.LEARNER, institution=hospital, email="hotspot@example.org")
    qs = build_quiz_set(session, create_case, educator)
    attempt = attempts.start_attempt(session, qs.case_set.slug, actor=learner, mode="practice")
    click = {"series_uid": qs.series_uid, "frame": 3, "x": 100, "y": 100}  # a miss, image 3
    attempts.answer_question(session, attempt.id, qs.hotspot.id, click, actor=learner)
    session.commit()

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(learner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("My progress")
    page.goto(f"{live_server}/quiz/attempts/{attempt.id}?q=4")
    expect(page.get_by_role("region", name="Feedback")).to_contain_text("Incorrect.")
    viewer = page.get_by_role("region", name="Images of the question")
    expect(viewer).to_have_attribute("data-state", "ready")
    counter = viewer.locator(".viewer-counter")
    # Opened on the clicked image: the learner's mark and the target (frames 2-3) both there.
    expect(counter).to_have_text("3 / 3")
    expect(viewer.locator(".viewer-overlay .pick")).to_have_count(1)
    target = viewer.locator(".viewer-overlay .target ellipse")
    expect(target).to_have_count(1)
    assert target.get_attribute("cx") == "30" and target.get_attribute("rx") == "10"
    viewer.focus()
    page.keyboard.press("ArrowUp")
    expect(counter).to_have_text("2 / 3")
    expect(viewer.locator(".viewer-overlay .target")).to_have_count(1)
    expect(viewer.locator(".viewer-overlay .pick")).to_have_count(0)
    page.keyboard.press("ArrowUp")
    expect(counter).to_have_text("1 / 3")
    expect(viewer.locator(".viewer-overlay .target")).to_have_count(0)

    # A single-best-answer question of the same attempt has the real viewer too: scroll
    # through the stack and change the window, with no teaching overlay toggle.
    page.goto(f"{live_server}/quiz/attempts/{attempt.id}?q=1")
    viewer = page.get_by_role("region", name="Images of the question")
    expect(viewer).to_have_attribute("data-state", "ready")
    counter = viewer.locator(".viewer-counter")
    expect(counter).to_have_text("1 / 3")
    viewer.focus()
    page.keyboard.press("ArrowDown")
    expect(counter).to_have_text("2 / 3")
    preset = viewer.get_by_label("Window preset")
    expect(preset).to_be_enabled()
    preset.select_option(index=1)
    expect(viewer.locator(".viewer-window")).not_to_be_empty()
    expect(viewer.get_by_label("Teaching overlay")).to_have_count(0)
    expect(page.locator("main")).not_to_contain_text("Tension pneumothorax")
