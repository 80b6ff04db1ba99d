"""An educator uploads a folder's files from the browser and sees the per-file result."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from app.models import Institution, Role, User
from tests import dicomfiles
from tests.conftest import PASSWORD


def test_upload_shows_progress_result_and_inbox(
    page: Page,
    live_server: str,
    tmp_path: Path,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> None:
    educator = create_user(Role.EDUCATOR, institution=create_institution("Bush Hospital"))
    files = []
    for index, ds in enumerate(dicomfiles.ct_series(3)):
        ds.StudyDescription = "CT CHEST TRAUMA"
        path = tmp_path / f"IM{index:04d}"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    junk = tmp_path / "notes.txt"
    junk.write_text("not an image")
    files.append(junk)

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(educator.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name="Upload studies").click()
    page.get_by_label("Files or zips").set_input_files([str(f) for f in files])
    page.get_by_role("button", name="Upload").click()

    expect(page.locator("#upload-status")).to_have_text("Done.")
    expect(page.locator("#upload-summary")).to_contain_text("3 stored")
    expect(page.locator("#upload-summary")).to_contain_text("1 skipped")
    expect(page.locator("#upload-result tbody tr")).to_have_count(4)
    expect(page.locator("tr.outcome-skipped")).to_contain_text("file 4")
    expect(page.locator("#upload-result")).not_to_contain_text("notes.txt")

    # nothing to store: the 415 answer's report is shown, not just an error line
    page.get_by_label("Files or zips").set_input_files([str(junk)])
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_have_text(
        "Nothing was stored: the files are neither DICOM nor zip."
    )
    expect(page.locator("#upload-summary")).to_contain_text("0 stored, 0 refused")
    expect(page.locator("#upload-result tbody tr")).to_have_count(1)
    expect(page.locator("tr.outcome-skipped")).to_contain_text("not a DICOM Part 10 file")

    page.get_by_role("link", name="Inbox").click()
    expect(page.get_by_role("heading", name="CT CHEST TRAUMA")).to_be_visible()
    thumbnail = page.locator("ul.thumbs img").first
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.complete && img.naturalWidth > 0")
