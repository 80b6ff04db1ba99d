"""Two colleagues of one hospital talk in its thread; another hospital sees only the open
thread; an educator turns a consult into a case draft."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from app.models import Case, Institution, Role, User
from tests.conftest import PASSWORD


def log_in(page: Page, live_server: str, user: User) -> None:
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("button", name="Log out")
    ).to_be_visible()


def log_out(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("button", name="Log out").click()


def test_hospital_thread_and_consult_to_case(
    page: Page,
    live_server: str,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    create_case: Callable[..., Case],
    create_study: Callable[..., Any],
) -> None:
    bush, coast = create_institution("Bush Hospital"), create_institution("Coast Hospital")
    edu = create_user(Role.EDUCATOR, institution=bush, email="edu@example.org")
    ann = create_user(Role.LEARNER, institution=bush, email="ann@example.org")
    bob = create_user(Role.LEARNER, institution=bush, email="bob@example.org")
    cat = create_user(Role.LEARNER, institution=coast, email="cat@example.org")
    case = create_case(edu, visibility="public", title="Tension pneumothorax")
    create_study(bush)  # a study of Bush Hospital to ask about
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))

    # Ann writes in the hospital thread; the form says who will see it before posting.
    log_in(page, live_server, ann)
    page.goto(f"{live_server}/cases/{case.slug}")
    hospital = page.locator("#thread-hospital")
    expect(hospital.locator(".audience").last).to_have_text(
        "Visible only to members of Bush Hospital."
    )
    hospital.locator("#c-hospital-new-body").fill("@bob would you put in a **chest drain** here?")
    hospital.get_by_role("button", name="Post").click()
    expect(page.locator("#thread-hospital .comment-body strong")).to_have_text("chest drain")
    page.locator("#thread-open #c-open-new-body").fill("Note the deep sulcus sign.")
    page.locator("#thread-open").get_by_role("button", name="Post").last.click()
    expect(page.locator("#thread-open .comment-body").first).to_contain_text("deep sulcus")
    log_out(page)

    # Bob sees the bell, follows the notification and replies in the same thread.
    log_in(page, live_server, bob)
    expect(page.locator("#bell .bell-count")).to_have_text("1")
    page.locator("#bell").click()
    page.get_by_role("link", name="mentioned you").click()
    expect(page.locator("#thread-hospital .comment-body").first).to_contain_text("chest drain")
    thread = page.locator("#thread-hospital")
    thread.locator("details.reply-form summary").first.click()
    thread.locator("details.reply-form textarea").first.fill("Yes, needle first if unstable.")
    thread.get_by_role("button", name="Reply").first.click()
    expect(page.locator("#thread-hospital .replies .comment-body")).to_contain_text("needle first")
    log_out(page)

    # Cat, at another hospital, sees the open thread only.
    log_in(page, live_server, cat)
    page.goto(f"{live_server}/cases/{case.slug}")
    expect(page.locator("#thread-open .comment-body").first).to_contain_text("deep sulcus")
    expect(page.locator("#thread-hospital .audience").last).to_have_text(
        "Visible only to members of Coast Hospital."
    )
    expect(page.locator("#thread-hospital .comment")).to_have_count(0)
    expect(page.get_by_text("chest drain")).to_have_count(0)
    expect(page.get_by_text("needle first")).to_have_count(0)
    expect(page.locator("#bell .bell-count")).to_have_count(0)
    log_out(page)

    # Ann asks about one of her hospital's studies; the educator makes it a case draft.
    log_in(page, live_server, ann)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Consults").click()
    page.get_by_role("link", name="My hospital's studies").click()
    page.get_by_role("link", name="Ask about this study").first.click()
    page.get_by_label("Your question").fill("Is this a small apical pneumothorax?")
    page.get_by_role("button", name="Send question").click()
    expect(page.locator(".consult-messages")).to_contain_text("small apical pneumothorax")
    expect(page.get_by_role("button", name="Turn into a case draft")).to_have_count(0)
    log_out(page)

    log_in(page, live_server, edu)
    expect(page.locator("#bell .bell-count")).to_have_text("1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Consults").click()
    page.locator("ul.consults a").first.click()
    page.get_by_label("Reply").fill("Yes: look at the apex on the lung window.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".consult-messages")).to_contain_text("lung window")
    page.get_by_role("button", name="Turn into a case draft").click()
    expect(page).to_have_url(re.compile(r"/cases/[a-z0-9-]+/edit$"))
    expect(page.get_by_text("private case draft")).to_be_visible()
    assert "small apical pneumothorax" in page.content()  # the question is the history
    expect(page.locator(".private-notes")).to_contain_text("lung window")
    assert not errors, errors
