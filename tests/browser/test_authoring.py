"""An educator turns an inbox study into a published case; who sees it afterwards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Browser, Page, expect

from app.models import Institution, Role, User
from tests.conftest import PASSWORD


def _login(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/auth/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_inbox_to_published_case(
    page: Page, browser: Browser, live_server: str,
    create_user: Callable[..., User], create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
) -> None:
    home, away = create_institution("Outback District"), create_institution("Coastal Base")
    educator = create_user(Role.EDUCATOR, institution=home)
    colleague = create_user(Role.LEARNER, institution=home)
    stranger = create_user(Role.LEARNER, institution=away)
    create_study(home, StudyDescription="CT ABDOMEN ACUTE")

    _login(page, live_server, educator.email)
    page.get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name="Start a case").click()
    page.get_by_label("Working title").fill("Perforated duodenal ulcer")
    page.get_by_role("button", name="Create draft").click()

    page.get_by_label("Clinical history").fill("58-year-old with sudden epigastric pain.")
    page.get_by_label("Imaging findings").fill("Free gas anterior to the liver.")
    page.get_by_label("Discussion").fill("Reported by Dr Brown to the surgeons.")
    expect(page.locator("#autosave-status")).to_contain_text("Saved (revision", timeout=15_000)

    page.get_by_role("link", name="Preview").click()
    expect(page.get_by_text("exactly what readers will see")).to_be_visible()
    expect(page.get_by_text("Free gas anterior to the liver.")).to_be_visible()
    page.go_back()

    page.get_by_role("link", name="Publish…").click()
    expect(page.get_by_role("heading", name="Check these passages")).to_be_visible()
    expect(page.locator(".findings")).to_contain_text("Dr Brown")
    page.get_by_label("My institution").check()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("alert")).to_contain_text("look like patient identifiers")
    page.get_by_label("I checked every passage").check()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("heading", name="Perforated duodenal ulcer")).to_be_visible()
    case_url = page.url

    for user, visible in ((colleague, True), (stranger, False)):
        context = browser.new_context()
        reader = context.new_page()
        _login(reader, live_server, user.email)
        reader.goto(case_url)
        if visible:
            expect(reader.get_by_role("heading", name="Perforated duodenal ulcer")).to_be_visible()
        else:
            expect(reader.get_by_role("heading", name="404")).to_be_visible()
        reader.goto(f"{live_server}/cases/")
        expect(reader.get_by_text("Perforated duodenal ulcer")).to_have_count(1 if visible else 0)
        context.close()

    # After publishing, an edit with an identifier waits for its author (issue 14).
    page.goto(f"{case_url}/edit")
    page.get_by_label("Clinical history").fill("58-year-old, MRN 1234567, sudden epigastric pain.")
    page.get_by_role("button", name="Save now").click()
    pending = page.get_by_role("heading", name="Readers still see the last confirmed text")
    expect(pending).to_be_visible()
    context = browser.new_context()
    reader = context.new_page()
    _login(reader, live_server, colleague.email)
    reader.goto(case_url)
    expect(reader.get_by_text("58-year-old with sudden epigastric pain.")).to_be_visible()
    expect(reader.get_by_text("1234567")).to_have_count(0)
    page.get_by_role("button", name="None of these identifies a patient").click()
    expect(page.get_by_role("status").first).to_contain_text("readers now see this revision")
    reader.reload()
    expect(reader.get_by_text("MRN 1234567", exact=False)).to_be_visible()
    context.close()
