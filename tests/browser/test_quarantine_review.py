"""An admin drags a blackout rectangle on a held ultrasound, previews it, and releases it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pydicom
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.dicom import ocr
from app.models import Instance, Institution, QuarantinedObject, Role, User
from app.services import intake
from app.storage import ObjectStore
from tests import dicomfiles
from tests.conftest import PASSWORD
from tests.dicomfiles import Text

pytestmark = pytest.mark.skipif(
    ocr.tesseract_path() is None, reason="tesseract-ocr is not installed (scripts/test.sh)"
)

# a bright patch inside the image (no text, so OCR proposes nothing there) to drag over
PATCH = (250, 150, 80, 50)


def _pixel(page: Page, x: int, y: int) -> int:
    """Grey value of the displayed frame's image pixel (x, y), read back through a canvas."""
    return int(page.evaluate(
        """([x, y]) => {
            const img = document.getElementById("redact-frame");
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
            const ctx = canvas.getContext("2d");
            ctx.drawImage(img, 0, 0);
            return ctx.getImageData(x, y, 1, 1).data[0];
        }""",
        [x, y],
    ))


def test_drag_preview_release(
    page: Page,
    live_server: str,
    session: Session,
    intake_config: Any,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> None:
    hospital = create_institution("Outback Base")
    admin = create_user(Role.ADMIN)
    rng = np.random.default_rng(4)
    frames = []
    for _ in range(2):
        frame = dicomfiles.speckle_frame(rng, 300, 400)
        x, y, w, h = PATCH
        frame[y : y + h, x : x + w] = 220
        dicomfiles.draw_text(frame, [Text("DOE^JANE 55120034", 8, 268, 18)])
        frames.append(frame)
    held = dicomfiles.ultrasound(frames, burned_in="YES")
    outcome = intake.ingest(
        session, dicomfiles.to_bytes(held), institution=hospital, source="TEST",
        config=intake_config,
    )
    session.commit()
    assert outcome.status == "quarantined"
    item = session.scalars(select(QuarantinedObject)).one()

    page.goto(f"{live_server}/auth/login")
    page.get_by_label("E-mail").fill(admin.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server}/admin/quarantine/{item.id}")
    expect(page.locator(".redact-strip img")).to_have_count(2)
    expect(page.locator("#ocr-status")).to_contain_text("proposed", timeout=60_000)
    proposed = page.locator("#redact-overlay rect").count()
    assert proposed >= 1
    expect(page.locator("#rectangles")).to_be_hidden()

    box = page.locator("#redact-overlay").bounding_box()
    assert box is not None
    scale = box["width"] / 400
    x, y, w, h = PATCH
    start = (box["x"] + (x - 4) * scale, box["y"] + (y - 4) * scale)
    end = (box["x"] + (x + w + 4) * scale, box["y"] + (y + h + 4) * scale)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()
    expect(page.locator("#redact-overlay rect")).to_have_count(proposed + 1)
    drawn = page.locator("#rectangles").input_value().splitlines()[-1]
    dx, dy, dw, dh = (int(v) for v in drawn.split(","))
    assert abs(dx - (x - 4)) <= 2 and abs(dy - (y - 4)) <= 2 and abs(dw - (w + 8)) <= 2

    # resize by its right edge, then draw a stray one and delete it
    edge_y = box["y"] + (dy + dh / 2) * scale
    page.mouse.move(box["x"] + (dx + dw) * scale, edge_y)
    page.mouse.down()
    page.mouse.move(box["x"] + (dx + dw + 20) * scale, edge_y, steps=5)
    page.mouse.up()
    resized = page.locator("#rectangles").input_value().splitlines()[-1]
    assert abs(int(resized.split(",")[2]) - (dw + 20)) <= 2
    page.mouse.move(box["x"] + 20 * scale, box["y"] + 120 * scale)
    page.mouse.down()
    page.mouse.move(box["x"] + 60 * scale, box["y"] + 160 * scale, steps=5)
    page.mouse.up()
    expect(page.locator("#redact-overlay rect")).to_have_count(proposed + 2)
    page.get_by_role("button", name="Delete selected rectangle").click()
    expect(page.locator("#redact-overlay rect")).to_have_count(proposed + 1)
    lines = page.locator("#rectangles").input_value().splitlines()
    assert len(lines) == proposed + 1 and lines[-1] == resized

    page.locator(".redact-strip a").nth(1).click()
    expect(page.locator("#frame-label")).to_contain_text("Frame 2 of 2")
    page.wait_for_function(
        "() => { const i = document.getElementById('redact-frame');"
        " return i.src.includes('frame=2') && i.complete && i.naturalWidth > 0; }"
    )
    assert _pixel(page, x + w // 2, y + h // 2) > 150
    page.get_by_role("button", name="Preview blackout").click()
    page.wait_for_function(
        "() => { const i = document.getElementById('redact-frame');"
        " return i.src.includes('/preview') && i.src.includes('frame=2')"
        " && i.complete && i.naturalWidth > 0; }"
    )
    assert _pixel(page, x + w // 2, y + h // 2) == 0
    expect(page.locator("#redact-overlay")).to_be_hidden()  # the preview shows pixels only
    assert session.scalars(select(Instance)).first() is None

    page.get_by_role("button", name="Release").click()
    expect(page.get_by_text("Released")).to_be_visible()
    session.expire_all()
    instance = session.scalars(select(Instance)).one()
    store = ObjectStore(intake_config.store.root)
    released = pydicom.dcmread(io.BytesIO(store.read(instance.sha256)))
    assert released.BurnedInAnnotation == "NO"
    assert released.pixel_array[:, y : y + h, x : x + w].max() == 0
