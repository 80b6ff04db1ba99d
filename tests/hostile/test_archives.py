"""Archive attacks through the upload route: entry floods, overlapping entries, lying sizes.

Each is refused whole with the status that says nothing was stored (413 for size,
422 for a damaged or hostile archive) and the reason listed by position.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Instance, Institution, Role, User
from tests.conftest import AuthActions, csrf_token


@pytest.fixture
def educator_client(
    client: FlaskClient,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> FlaskClient:
    AuthActions(client).login(create_user(Role.EDUCATOR, institution=create_institution()).email)
    return client


def _upload(client: FlaskClient, name: str, data: bytes) -> tuple[int, Any]:
    """Status and JSON body. The multipart body is built here as bytes: the test client
    would otherwise spool a large one to a temporary file it never closes."""
    token = csrf_token(client, "/intake/upload")
    boundary = "teachfile-hostile-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f'{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name="files"; '
        f'filename="{name}"\r\nContent-Type: application/zip\r\n\r\n'
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        "/intake/upload",
        data=body,
        headers={"Accept": "application/json"},
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    return response.status_code, response.json


def _stored(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Instance.id))) or 0


def test_twenty_thousand_entries_are_refused(
    educator_client: FlaskClient, session: Session
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index in range(20_000):
            archive.writestr(f"f{index}.dcm", b"")
    status, body = _upload(educator_client, "flood.zip", buffer.getvalue())
    assert status == 413
    assert body["files"] == [
        {
            "item": "file 1",
            "file": 1,
            "entry": None,
            "outcome": "refused",
            "reason": "the zip file has more than 10000 entries",
        }
    ]
    assert "larger than this server accepts" in body["error"]
    assert _stored(session) == 0


def test_overlapping_entries_are_refused_whole(
    educator_client: FlaskClient, session: Session
) -> None:
    """A non-recursive zip bomb: many central-directory entries share one compressed blob."""
    payload = b"\0" * (8 * 1024 * 1024)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("kernel.dcm", payload)
    raw = buffer.getvalue()
    central = raw.index(b"PK\x01\x02")
    end = raw.index(b"PK\x05\x06")
    record = raw[central:end]
    copies = 200
    records = b"".join(
        record.replace(b"kernel.dcm", f"k{i:08d}.dcm"[:10].encode()) for i in range(copies)
    )
    eocd = bytearray(raw[end:])
    struct.pack_into("<HHI", eocd, 8, copies, copies, len(records))
    struct.pack_into("<I", eocd, 16, central)
    bomb = raw[:central] + records + bytes(eocd)
    assert len(bomb) < 200_000  # 200 x 8 MiB = 1.6 GiB declared
    status, body = _upload(educator_client, "overlap.zip", bomb)
    # the archive is refused whole at its first entry (its local header names another
    # file: damaged), before the shared blob is inflated 200 times
    assert status == 422
    assert body["summary"].startswith("0 stored, 1 refused")
    assert [(f["item"], f["outcome"]) for f in body["files"]] == [("entry 1", "refused")]
    assert body["files"][0]["reason"] == "the entry is damaged or uses an unsupported compression"
    assert "refused whole" in body["notes"][0]
    assert _stored(session) == 0


def test_central_directory_lying_about_sizes(
    educator_client: FlaskClient, session: Session
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("liar.dcm", b"\0" * (4 * 1024 * 1024))
    raw = bytearray(buffer.getvalue())
    central = raw.index(b"PK\x01\x02")
    struct.pack_into("<I", raw, central + 24, 10)  # claims 10 bytes uncompressed
    status, body = _upload(educator_client, "liar.zip", bytes(raw))
    assert status == 422
    assert [(f["item"], f["outcome"]) for f in body["files"]] == [("entry 1", "refused")]
    assert "liar" not in str(body)
    assert _stored(session) == 0
    assert educator_client.get("/intake/").status_code == 200
