"""Issue 15 in a real browser: a learner takes the shipped credit exam (cases/_sets), answers
every question (free text with an accepted answer, the hotspot in the viewer), passes, claims
credit, and verifies the certificate logged out on a 390 x 844 phone without sideways
scrolling; the certificate and the verification page name the provider and accreditation."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app import PROJECT_ROOT, casefmt
from app.cli import intake_config
from app.models import Institution, Question, Role, User
from app.services import library
from app.services.quizzes import attempts, marking, stacks
from tests.conftest import PASSWORD

EXAM = PROJECT_ROOT / "cases" / casefmt.SETS_DIR / "head-injury-ct-exam.yaml"


def _load_shipped_exam(app: Flask, session: Session) -> casefmt.SetFile:
    spec = casefmt.read_set_file(EXAM)
    institution = library.sample_institution(session)
    for slug in spec.cases:
        library.import_case_folder(
            session,
            PROJECT_ROOT / "cases" / slug,
            institution=institution,
            config=intake_config(app),
        )
    library.import_set_file(session, EXAM, institution=institution)
    session.commit()
    return spec


def _columns(session: Session, question: Question) -> int:
    if question.kind != "hotspot" or not question.hotspot:
        return 0
    series = stacks.case_series(session, question.case, question.hotspot["series_uid"])
    assert series is not None
    return int(stacks.series_stack(session, series)[0].instance.columns or 0)


def _reordered(answer: str) -> str:
    words = answer.split()
    assert len(words) > 1, answer
    return " ".join(reversed(words))


def _misspelt(answer: str) -> str:
    word = max(answer.split(), key=len)
    doubled = word[:-3] + word[-3] + word[-3:]  # "subdural" -> "subdurral"
    return answer.replace(word, doubled, 1)


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"


def _answer(page: Page, question: Question, columns: int, typed: str = "") -> None:
    """Answer ``question`` rightly (``columns``: the hotspot image's width in pixels;
    ``typed``: the free-text answer)."""
    if question.kind in ("single", "multiple"):
        options = page.locator("fieldset.options")
        for option in question.options:
            if option.correct:
                options.get_by_label(option.text, exact=True).check()
    elif question.kind == "freetext":
        page.get_by_label("Your diagnosis").fill(typed)
    else:
        assert question.hotspot is not None
        first = int(question.hotspot["frames"][0])
        x0, y0, x1, y1 = marking.region_of(question.hotspot).bounds()
        viewer = page.get_by_role("region", name="Images of the question")
        expect(viewer).to_have_attribute("data-state", "ready")
        counter = viewer.locator(".viewer-counter")
        viewer.focus()
        for _ in range(first - 1):
            page.keyboard.press("ArrowDown")
        expect(counter).to_contain_text(f"{first} / ")
        mark = viewer.get_by_role("button", name="Mark the abnormality")
        if mark.get_attribute("aria-pressed") != "true":
            mark.click()
        box = viewer.locator(".viewer-layer").bounding_box()
        assert box is not None
        scale = box["width"] / columns
        page.mouse.click(box["x"] + (x0 + x1) / 2 * scale, box["y"] + (y0 + y1) / 2 * scale)
        assert page.locator("[data-answer-frame]").input_value() == str(first)
    page.get_by_role("button", name="Save answer").click()


def test_learner_passes_the_shipped_exam_and_verifies_on_a_phone(
    app: Flask,
    page: Page,
    live_server: str,
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> None:
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    spec = _load_shipped_exam(app, session)
    assert spec.credit is not None
    learner = create_user(Role.LEARNER, institution=create_institution(), email="gp@example.org")

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(learner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server}/sets/{spec.slug}/quiz")
    info = page.get_by_role("region", name="Continuing-education credit")
    expect(info).to_contain_text("not accredited by any body")
    expect(info).to_contain_text(f"{spec.credit.time_limit_minutes} minutes")
    page.get_by_label("Exam").check()
    page.get_by_role("button", name="Start the quiz").click()
    expect(page.get_by_role("timer")).to_contain_text("Time left")

    attempt_url = page.url.split("?")[0]
    attempt_id = int(attempt_url.rsplit("/", 1)[1])
    session.expire_all()
    attempt = attempts.get_attempt(session, attempt_id, actor=learner)
    questions = attempts.attempt_questions(session, attempt)
    assert {q.kind for q in questions} >= {"single", "multiple", "freetext", "hotspot"}
    # Free text as learners type it: the first with the words in another order, the next
    # with a misspelling (a doubled letter in its longest word); both must be accepted.
    variants = iter([_reordered, _misspelt, _reordered, _misspelt])
    typed_answers: list[str] = []
    for number, question in enumerate(questions, start=1):
        typed = ""
        if question.kind == "freetext":
            typed = next(variants)(question.accepted[0])
            typed_answers.append(typed)
        page.goto(f"{attempt_url}?q={number}")
        expect(
            page.get_by_role("heading", name=f"Question {number} of {len(questions)}")
        ).to_be_visible()
        _answer(page, question, _columns(session, question), typed)
        expect(page.get_by_role("status").first).to_contain_text("Answer saved")
    expect(page.get_by_text("You have answered every question.")).to_be_visible()
    page.get_by_role("button", name="Finish and see your score").click()
    expect(page.locator("[data-score]")).to_have_text("100%")
    assert len(typed_answers) >= 2, "the shipped exam has two free-text questions"

    page.get_by_role("link", name="Claim credit").click()
    for group in page.get_by_role("group").all():
        five = group.get_by_label("5", exact=True)
        if five.count():
            five.check()
    page.get_by_label("Hours you spent").fill("0.5")
    page.get_by_label("I attest").check()
    page.get_by_role("button", name="Claim credit and get the certificate").click()
    expect(page.get_by_role("heading", name="Certificate of completion")).to_be_visible()
    expect(page.locator("[data-accreditation]")).to_contain_text("not accredited by any body")
    expect(page.locator("[data-credit-type]")).to_contain_text("Continuing-education hours")
    expect(page.locator("[data-provider]")).not_to_be_empty()
    page.set_viewport_size({"width": 390, "height": 844})
    _no_sideways_scroll(page)
    verify_url = page.locator("[data-verify-link]").get_attribute("href")
    assert verify_url and "/verify/" in verify_url

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Log out").click()
    page.goto(verify_url)
    expect(page.get_by_text("Valid certificate.")).to_be_visible()
    main = page.locator("main")
    expect(main).to_contain_text(spec.title)
    expect(main).to_contain_text("not accredited by any body")
    expect(page.locator("[data-provider]")).not_to_be_empty()
    expect(page.locator("[data-credit-type]")).to_contain_text("Continuing-education hours")
    _no_sideways_scroll(page)
    assert console_errors == []
