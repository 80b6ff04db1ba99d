"""A learner takes a credit-bearing set in exam mode in a real browser, including a hotspot
question answered by scrolling the stack in the viewer and clicking the abnormality; then the
evaluation, the attestation, the certificate, and its verification link opened logged out."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.models import Case, Institution, Role, User
from tests.conftest import PASSWORD
from tests.quizdata import build_quiz_set


def test_exam_credit_certificate_and_verification(
    page: Page,
    live_server: str,
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Case],
) -> None:
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    hospital = create_institution()
    educator = create_user(Role.EDUCATOR, institution=hospital)
    learner = create_user(Role.LEARNER, institution=hospital, email="rural@example.org")
    qs = build_quiz_set(session, create_case, educator)

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(learner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("My progress")

    page.goto(f"{live_server}/sets/{qs.case_set.slug}/quiz")
    credit = page.get_by_role("region", name="Continuing-education credit")
    expect(credit).to_contain_text("Credit hours")
    expect(credit).to_contain_text("Dr A. Faculty")
    expect(credit).to_contain_text("2029-12-31")
    page.get_by_label("Exam").check()
    page.get_by_role("button", name="Start the quiz").click()

    # 1. single best answer
    expect(page.get_by_role("heading", name="Question 1 of 4")).to_be_visible()
    page.get_by_label("Pneumothorax").check()
    page.get_by_role("button", name="Save answer").click()
    expect(page.get_by_role("status")).to_contain_text("Answer saved")
    expect(page.locator("body")).not_to_contain_text("(correct)")
    # 2. multiple response
    expect(page.get_by_role("heading", name="Question 2 of 4")).to_be_visible()
    page.get_by_label("Mediastinal shift").check()
    page.get_by_label("Flattened hemidiaphragm").check()
    page.get_by_role("button", name="Save answer").click()
    # 3. free text, with a misspelling
    expect(page.get_by_role("heading", name="Question 3 of 4")).to_be_visible()
    page.get_by_label("Your diagnosis").fill("Tension pnuemothorax")
    page.get_by_role("button", name="Save answer").click()
    # 4. hotspot, in the real viewer: scroll to image 2 of the stack (the wheel, then the
    # arrow keys), zoom in, and click the region (30, 20) in image pixels.
    expect(page.get_by_role("heading", name="Question 4 of 4")).to_be_visible()
    viewer = page.get_by_role("region", name="Images of the question")
    stage = viewer.locator(".viewer-stage")
    counter = viewer.locator(".viewer-counter")
    status = page.locator("[data-click-status]")
    expect(viewer).to_have_attribute("data-state", "ready")
    mark = viewer.get_by_role("button", name="Mark the abnormality")
    expect(mark).to_have_attribute("aria-pressed", "true")
    expect(counter).to_have_text("1 / 3")
    stage.hover()
    page.mouse.wheel(0, 40)
    expect(counter).to_have_text("2 / 3")
    viewer.focus()  # the arrow keys step through the focused viewer's stack
    page.keyboard.press("ArrowDown")
    expect(counter).to_have_text("3 / 3")
    page.keyboard.press("ArrowUp")
    expect(counter).to_have_text("2 / 3")
    expect(viewer).to_have_attribute("data-shown-index", "1")
    # A click on the stage beside the image is ignored: no mark, no answer.
    stage_box = stage.bounding_box()
    fitted = viewer.locator(".viewer-layer").bounding_box()
    assert stage_box is not None and fitted is not None
    assert fitted["x"] > stage_box["x"] + 4 or fitted["y"] > stage_box["y"] + 4
    page.mouse.click(stage_box["x"] + 2, stage_box["y"] + 2)
    expect(viewer.locator(".viewer-overlay .pick")).to_have_count(0)
    expect(status).to_contain_text("Scroll to the abnormality")
    # Zoom in (the click is mapped through the viewer's transform), then mark.
    viewer.get_by_role("button", name="Zoom").click()
    cx, cy = stage_box["x"] + stage_box["width"] / 2, stage_box["y"] + stage_box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx, cy - 30, steps=3)
    page.mouse.up()
    mark.click()
    layer = viewer.locator(".viewer-layer").bounding_box()
    assert layer is not None and fitted is not None and layer["width"] > fitted["width"] * 1.1
    scale = layer["width"] / 128  # the frame is 128 x 128 pixels
    x, y = layer["x"] + 30 * scale, layer["y"] + 20 * scale
    assert stage_box["x"] < x < stage_box["x"] + stage_box["width"]
    assert stage_box["y"] < y < stage_box["y"] + stage_box["height"]
    page.mouse.click(x, y)
    expect(status).to_contain_text(re.compile(r"image 2 at \((29|30|31), (19|20|21)\)"))
    expect(viewer.locator(".viewer-overlay .pick")).to_have_count(1)
    assert page.locator("[data-answer-frame]").input_value() == "2"
    assert 29 <= float(page.locator("[data-answer-x]").input_value()) <= 31
    assert 19 <= float(page.locator("[data-answer-y]").input_value()) <= 21
    # The mark is on that image only.
    viewer.focus()
    page.keyboard.press("ArrowDown")
    expect(counter).to_have_text("3 / 3")
    expect(viewer.locator(".viewer-overlay .pick")).to_have_count(0)
    page.keyboard.press("ArrowUp")
    expect(viewer.locator(".viewer-overlay .pick")).to_have_count(1)
    page.get_by_role("button", name="Save answer").click()
    expect(page.get_by_text("You have answered every question.")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("Accepted answers")

    page.get_by_role("button", name="Finish and see your score").click()
    expect(page.locator("[data-score]")).to_have_text("100%")
    expect(page.locator("body")).to_contain_text(
        "Matched the accepted answer: tension pneumothorax"
    )

    page.get_by_role("link", name="Claim credit").click()
    page.get_by_role("group", name="Objectives met?").get_by_label("5").check()
    page.get_by_role("group", name="Free of commercial bias?").get_by_label("Yes").check()
    page.get_by_label("Comments").fill("Useful on night shifts.")
    page.get_by_label("Hours you spent").fill("1.5")
    page.get_by_label("I attest").check()
    page.get_by_role("button", name="Claim credit and get the certificate").click()

    expect(page.get_by_role("heading", name="Certificate of completion")).to_be_visible()
    expect(page.locator("[data-learner]")).to_have_text("Test User")
    expect(page.locator("[data-hours]")).to_have_text("1.5")
    verify_url = page.locator("[data-verify-link]").get_attribute("href")
    assert verify_url and "/verify/" in verify_url
    pdf_path = page.get_by_role("link", name="Download the PDF").get_attribute("href") or ""
    pdf = page.request.get(f"{live_server}{pdf_path}")
    assert pdf.ok and pdf.body().startswith(b"%PDF-1.4")

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Log out").click()
    page.goto(verify_url)
    expect(page.get_by_text("Valid certificate.")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Chest emergencies")
    expect(page.locator("main")).to_contain_text("1.5")
    expect(page.locator("main")).not_to_contain_text("100%")
    assert console_errors == []
