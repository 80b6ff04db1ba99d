"""The viewer in a real browser: stack scrolling, presets, a length in mm, shared annotations."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import (
    Case,
    CaseAuthor,
    CaseStatus,
    CaseStudy,
    Institution,
    Role,
    Study,
    User,
    Visibility,
)
from app.services import intake
from tests import dicomfiles
from tests.conftest import PASSWORD

# CT_small's Pixel Spacing (0028,0030) is 0.661468 mm in both directions.
SPACING = 0.661468


@pytest.fixture
def stack_case(session: Session, intake_config: Any) -> Callable[..., Case]:
    """A published case on a CT stack whose slices differ (CT_small's pixels, shifted)."""

    def make(author: User, *, slices: int = 6, visibility: str = "institution") -> Case:
        assert author.institution is not None
        outcome = None
        for index, ds in enumerate(dicomfiles.ct_series(slices)):
            pixels = np.roll(ds.pixel_array, index * 12, axis=1)
            ds.PixelData = pixels.astype(ds.pixel_array.dtype).tobytes()
            outcome = intake.ingest(
                session,
                dicomfiles.to_bytes(ds),
                institution=author.institution,
                source="test",
                config=intake_config,
            )
        session.commit()
        assert outcome is not None
        study = session.scalars(
            select(Study).where(Study.study_instance_uid == outcome.study_instance_uid)
        ).one()
        case = Case(
            slug=f"stack-{study.id}",
            title="Stack",
            status=CaseStatus.PUBLISHED,
            visibility=Visibility(visibility),
            institution_id=author.institution_id,
            created_by_id=author.id,
            published_at=utcnow(),
        )
        case.authors.append(CaseAuthor(user_id=author.id))
        case.studies.append(CaseStudy(study_id=study.id))
        session.add(case)
        session.commit()
        return case

    return make


def _login(page: Page, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def _open(page: Page, live_server: str, case: Case) -> None:
    study = case.studies[0].study.study_instance_uid
    page.goto(f"{live_server}/viewer/studies/{study}?case={case.id}")
    expect(page.locator(".viewer")).to_have_attribute("data-state", "ready")
    expect(page.locator(".viewer-toolbar button").first).to_be_visible()


def _shown(page: Page, index: int) -> None:
    viewer = page.locator(".viewer")
    expect(viewer).to_have_attribute("data-shown-index", str(index))
    expect(viewer).to_have_attribute("data-state", "ready")
    page.wait_for_function("() => document.querySelector('.viewer-image').complete")


def _pixels(page: Page) -> str:
    return hashlib.sha256(page.locator(".viewer-stage").screenshot()).hexdigest()


def _stage_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """Page coordinates of image pixel (x, y) of the 128 x 128 frame."""
    box = page.locator(".viewer-layer").bounding_box()
    assert box is not None
    return box["x"] + x / 128 * box["width"], box["y"] + y / 128 * box["height"]


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution()


@pytest.fixture
def educator(hospital: Institution, create_user: Callable[..., User]) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


def test_scrolling_changes_the_frame(
    page: Page, live_server: str, educator: User, stack_case: Callable[..., Case]
) -> None:
    case = stack_case(educator, visibility="public")
    _open(page, live_server, case)
    counter = page.locator(".viewer-counter")
    expect(counter).to_have_text("1 / 6")
    _shown(page, 0)
    first = _pixels(page)
    page.locator(".viewer-stage").hover()
    page.mouse.wheel(0, 120)
    expect(counter).to_have_text("4 / 6")
    _shown(page, 3)
    assert _pixels(page) != first
    page.locator(".viewer").focus()
    page.keyboard.press("ArrowUp")
    expect(counter).to_have_text("3 / 6")
    page.keyboard.press("Home")
    expect(counter).to_have_text("1 / 6")
    _shown(page, 0)
    assert _pixels(page) == first
    # Dragging with the scroll tool moves through the stack too.
    x, y = _stage_point(page, 64, 20)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y + 20, steps=5)
    page.mouse.up()
    expect(counter).to_have_text("3 / 6")


def test_a_preset_changes_the_pixels(
    page: Page, live_server: str, educator: User, stack_case: Callable[..., Case]
) -> None:
    case = stack_case(educator, visibility="public", slices=2)
    _open(page, live_server, case)
    _shown(page, 0)
    before = _pixels(page)
    src = page.locator(".viewer-image").get_attribute("src")
    page.select_option(".viewer-preset", label="Lung (W 1500 L -600)")
    page.wait_for_function(
        "(src) => document.querySelector('.viewer-image').getAttribute('src') !== src", arg=src
    )
    _shown(page, 0)
    assert _pixels(page) != before
    page.select_option(".viewer-preset", index=0)
    _shown(page, 0)
    assert _pixels(page) == before


def test_length_in_millimetres(
    page: Page, live_server: str, educator: User, stack_case: Callable[..., Case]
) -> None:
    case = stack_case(educator, visibility="public", slices=1)
    _open(page, live_server, case)
    _shown(page, 0)
    page.click(".viewer-toolbar button[data-tool=length]")
    x0, y0 = _stage_point(page, 20, 64)
    x1, y1 = _stage_point(page, 120, 64)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    readout = page.locator(".viewer-readout")
    expect(readout).to_contain_text("mm (Pixel Spacing)")
    text = readout.inner_text()
    mm = float(text.split("Length: ")[1].split(" mm")[0])
    # 100 image pixels at 0.661468 mm, within a pixel of the pointer's rounding.
    assert mm == pytest.approx(100 * SPACING, abs=SPACING * 1.5)


def test_shared_annotation_seen_by_a_colleague_private_not(
    browser: Browser,
    live_server: str,
    hospital: Institution,
    educator: User,
    create_user: Callable[..., User],
    stack_case: Callable[..., Case],
) -> None:
    case = stack_case(educator, visibility="institution", slices=2)
    colleague = create_user(Role.LEARNER, institution=hospital)

    author = browser.new_context().new_page()
    author.set_default_timeout(15_000)
    _login(author, live_server, educator.email)
    _open(author, live_server, case)
    _shown(author, 0)

    def draw(tool: str, start: tuple[int, int], end: tuple[int, int]) -> None:
        author.click(f".viewer-toolbar button[data-tool={tool}]")
        author.mouse.move(*_stage_point(author, *start))
        author.mouse.down()
        author.mouse.move(*_stage_point(author, *end), steps=4)
        author.mouse.up()

    author.select_option(".viewer-visibility", "institution")
    draw("arrow", (20, 20), (60, 60))
    expect(author.locator(".viewer-readout")).to_have_text("Arrow saved.")
    author.select_option(".viewer-visibility", "only_me")
    draw("ellipse", (70, 70), (100, 100))
    expect(author.locator(".viewer-readout")).to_have_text("Ellipse saved.")
    notes = author.locator(".viewer-notes li")
    expect(notes).to_have_count(2)
    author.reload()
    _shown(author, 0)
    expect(notes).to_have_count(2)  # persisted on the server
    expect(author.locator(".viewer-overlay .note")).to_have_count(2)

    reader = browser.new_context().new_page()
    reader.set_default_timeout(15_000)
    _login(reader, live_server, colleague.email)
    _open(reader, live_server, case)
    _shown(reader, 0)
    seen = reader.locator(".viewer-notes li")
    expect(seen).to_have_count(1)
    expect(seen).to_contain_text("Arrow")
    expect(seen).to_contain_text("my institution")
    expect(reader.locator(".viewer-overlay .note")).to_have_count(1)
    author.context.close()
    reader.context.close()
