"""Burned-in text review through the HTTP client: OCR holds, proposes, previews, releases."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dicom import ocr
from app.models import (
    Instance,
    Institution,
    QuarantinedObject,
    QuarantineStatus,
    Role,
    Study,
    StudyStatus,
    User,
)
from app.storage import ObjectStore
from tests import dicomfiles
from tests.conftest import AuthActions, csrf_token
from tests.dicomfiles import Text

pytestmark = pytest.mark.skipif(
    ocr.tesseract_path() is None, reason="tesseract-ocr is not installed (scripts/test.sh)"
)

FRAMES = 3
PLANTED = Text("SMITH^JOHN 48213377", 8, 268, 18)  # bottom left, beside the sector


def _held_ultrasound() -> tuple[bytes, tuple[int, int, int, int]]:
    """A 3-frame US declaring no burned-in text, with a name and ID on every frame.

    400x300: under werkzeug's 500 kB in-memory limit for an uploaded file."""
    rng = np.random.default_rng(21)
    frames, box = [], (0, 0, 0, 0)
    for _ in range(FRAMES):
        frame = dicomfiles.speckle_frame(rng, 300, 400)
        box = dicomfiles.draw_text(frame, [PLANTED])[0]
        frames.append(frame)
    return dicomfiles.to_bytes(dicomfiles.ultrasound(frames)), box


def _upload(client: FlaskClient, name: str, data: bytes) -> dict[str, int]:
    token = csrf_token(client, "/intake/upload")
    response = client.post(
        "/intake/upload",
        data={"csrf_token": token, "files": [(io.BytesIO(data), name)]},
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    counts: dict[str, int] = response.json["counts"]  # type: ignore[index]
    return counts


@pytest.fixture
def educator(create_user: Callable[..., User], create_institution: Callable[..., Institution]
             ) -> User:
    return create_user(Role.EDUCATOR, institution=create_institution("Rural General"))


@pytest.fixture
def admin_client(client: FlaskClient, create_user: Callable[..., User]) -> FlaskClient:
    admin = client.application.test_client()
    AuthActions(admin).login(create_user(Role.ADMIN).email)
    return admin


def _inside(box: tuple[int, int, int, int], rects: list[list[int]]) -> bool:
    x, y, w, h = box
    return any(rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh
               for rx, ry, rw, rh in rects)


def test_text_in_a_no_declaring_ultrasound_is_held_reviewed_previewed_and_released(
    client: FlaskClient, auth: AuthActions, educator: User, admin_client: FlaskClient,
    session: Session,
) -> None:
    auth.login(educator.email)
    data, box = _held_ultrasound()
    assert _upload(client, "us.dcm", data)["quarantined"] == 1
    item = session.scalars(select(QuarantinedObject)).one()
    assert "OCR reads text" in item.reason
    assert session.scalar(select(func.count(Instance.id))) == 0

    page = admin_client.get(f"/admin/quarantine/{item.id}").get_data(as_text=True)
    for n in range(1, FRAMES + 1):
        assert f"/admin/quarantine/{item.id}/image?frame={n}" in page
    assert "blacked out on every frame" in page and "js/redact.js" in page
    frame3 = admin_client.get(f"/admin/quarantine/{item.id}/image?frame=3")
    assert frame3.status_code == 200 and frame3.mimetype == "image/png"
    assert admin_client.get(f"/admin/quarantine/{item.id}/image?frame=4").status_code == 400
    thumb = admin_client.get(f"/admin/quarantine/{item.id}/image?frame=3&size=thumb")
    assert Image.open(io.BytesIO(thumb.data)).size == (128, 96)
    assert Image.open(io.BytesIO(frame3.data)).size == (400, 300)

    proposal = admin_client.get(f"/admin/quarantine/{item.id}/ocr").json
    assert proposal is not None and proposal["available"] is True
    assert proposal["frames_checked"] == [1, 2, 3]
    assert _inside(box, proposal["rectangles"])
    assert sorted(proposal["by_frame"]) == ["1", "2", "3"]
    assert "SMITH" not in str(proposal)  # the recognised words are never returned

    rects = ";".join(",".join(str(v) for v in r) for r in proposal["rectangles"])
    store = ObjectStore(client.application.config["DATA_DIR"])
    def stored_files() -> list[str]:
        areas = [store.root / a for a in ("objects", "quarantine", "tmp", "renders")]
        return sorted(str(p) for a in areas for p in a.rglob("*") if p.is_file())

    files_before = stored_files()
    preview = admin_client.get(
        f"/admin/quarantine/{item.id}/preview", query_string={"frame": 2, "rectangles": rects}
    )
    assert preview.status_code == 200 and preview.mimetype == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(preview.data)).convert("L"))
    x, y, w, h = box
    assert pixels[y : y + h, x : x + w].max() == 0
    untouched = np.asarray(Image.open(io.BytesIO(admin_client.get(
        f"/admin/quarantine/{item.id}/image?frame=2").data)).convert("L"))
    assert untouched[y : y + h, x : x + w].max() > 200
    session.expire_all()
    assert stored_files() == files_before
    assert session.get(QuarantinedObject, item.id).status is QuarantineStatus.HELD  # type: ignore[union-attr]
    assert session.scalar(select(func.count(Instance.id))) == 0

    token = csrf_token(admin_client, f"/admin/quarantine/{item.id}")
    done = admin_client.post(
        f"/admin/quarantine/{item.id}",
        data={"csrf_token": token, "rectangles": rects.replace(";", "\n")},
    )
    assert done.status_code == 302
    session.expire_all()
    instance = session.scalars(select(Instance)).one()
    released = pydicom.dcmread(io.BytesIO(store.read(instance.sha256)))
    assert released.BurnedInAnnotation == "NO"
    stack = released.pixel_array
    assert stack.shape[0] == FRAMES
    assert stack[:, y : y + h, x : x + w].max() == 0
    study = session.scalars(select(Study)).one()
    assert study.status is StudyStatus.INBOX
    assert study.institution_id == educator.institution_id


def test_ultrasound_without_text_is_stored_and_one_ocr_cannot_check_is_held(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth.login(educator.email)
    rng = np.random.default_rng(5)
    clean = dicomfiles.ultrasound([dicomfiles.speckle_frame(rng, 300, 400) for _ in range(2)])
    assert _upload(client, "clean.dcm", dicomfiles.to_bytes(clean))["stored"] == 1

    monkeypatch.setenv("PATH", "/nonexistent")  # no tesseract: cannot check means hold
    other = dicomfiles.ultrasound([dicomfiles.speckle_frame(rng, 300, 400)], patient_id="OTHER-1")
    assert _upload(client, "other.dcm", dicomfiles.to_bytes(other))["quarantined"] == 1
    item = session.scalars(select(QuarantinedObject)).one()
    assert "could not be checked" in item.reason and "OCR is unavailable" in item.reason


def test_review_page_says_when_ocr_is_unavailable(
    client: FlaskClient, auth: AuthActions, educator: User, admin_client: FlaskClient,
    session: Session, monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth.login(educator.email)
    held = dicomfiles.to_bytes(dicomfiles.burned_in_secondary_capture())
    assert _upload(client, "sc.dcm", held)["quarantined"] == 1
    item = session.scalars(select(QuarantinedObject)).one()
    monkeypatch.setenv("PATH", "/nonexistent")
    proposal = admin_client.get(f"/admin/quarantine/{item.id}/ocr").json
    assert proposal is not None and proposal["available"] is False
    assert "OCR is unavailable" in proposal["message"] and proposal["rectangles"] == []
    assert client.get(f"/admin/quarantine/{item.id}/ocr").status_code == 403
    assert client.get(f"/admin/quarantine/{item.id}/preview").status_code == 403
    bad = admin_client.get(f"/admin/quarantine/{item.id}/preview",
                           query_string={"rectangles": "0,0,9999,5"})
    assert bad.status_code == 400
