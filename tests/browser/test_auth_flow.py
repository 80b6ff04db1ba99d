"""A newcomer registers, logs in, sees the navigation of their role, and logs out."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from app.models import Role, User
from tests.conftest import PASSWORD


def test_register_login_navigation_logout(
    page: Page, live_server: str, create_user: Callable[..., User]
) -> None:
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server}/auth/register")
    page.get_by_label("Your name").fill("Dr Mia Outback")
    page.get_by_label("E-mail").fill("mia@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status").first).to_contain_text("Welcome to Teachfile")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Dr Mia Outback")).to_be_visible()
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)

    nav.get_by_role("button", name="Log out").click()
    expect(nav.get_by_role("link", name="Log in")).to_be_visible()

    admin = create_user(Role.ADMIN, email="boss@example.org")
    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(admin.email)
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(nav.get_by_role("link", name="Audit log")).to_be_visible()
    nav.get_by_role("link", name="Audit log").click()
    expect(page.locator("table")).to_contain_text("auth.login_failed")
    nav.get_by_role("button", name="Log out").click()
    expect(nav.get_by_role("link", name="Register")).to_be_visible()
    # No CSP violation, missing asset or script error on any page visited; the
    # one expected failure is the 400 answer to the wrong password.
    unexpected = [e for e in console_errors if "status of 400" not in e]
    assert unexpected == []
