"""Uploads, the inbox and quarantine through the HTTP client."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable

import numpy as np
import pydicom
import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.dicom.archive import ArchiveLimits
from app.models import (
    AuditEvent,
    Instance,
    Institution,
    QuarantinedObject,
    Role,
    Series,
    Study,
    StudyStatus,
    User,
)
from app.services import uploads
from app.storage import ObjectStore
from tests import dicomfiles
from tests.conftest import AuthActions, csrf_token


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution("Rural General")


@pytest.fixture
def educator(create_user: Callable[..., User], hospital: Institution) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


def _zip(
    entries: dict[str, bytes],
    *,
    symlink: str | None = None,
    encrypted: str | None = None,
    device: str | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name == symlink:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            if name == device:
                info.external_attr = (stat.S_IFCHR | 0o666) << 16
            archive.writestr(info, data)
    raw = bytearray(buffer.getvalue())
    if encrypted:
        # zipfile cannot write encrypted entries; set the "encrypted" flag bit (APPNOTE
        # 4.4.4) in the entry's local header and its central directory record.
        name = encrypted.encode()
        local = raw.find(b"PK\x03\x04")
        while local != -1 and raw[local + 30 : local + 30 + len(name)] != name:
            local = raw.find(b"PK\x03\x04", local + 1)
        central = raw.find(b"PK\x01\x02")
        while central != -1 and raw[central + 46 : central + 46 + len(name)] != name:
            central = raw.find(b"PK\x01\x02", central + 1)
        raw[local + 6] |= 0x1
        raw[central + 8] |= 0x1
    return bytes(raw)


def _upload(client: FlaskClient, files: list[tuple[str, bytes]], *, json: bool = True) -> object:
    token = csrf_token(client, "/intake/upload")
    data = {"csrf_token": token, "files": [(io.BytesIO(b), name) for name, b in files]}
    headers = {"Accept": "application/json"} if json else {}
    return client.post(
        "/intake/upload", data=data, headers=headers, content_type="multipart/form-data"
    )


def _instances(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Instance.id))) or 0


def test_upload_files_then_resend_adds_only_what_is_missing(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    auth.login(educator.email)
    slices = [dicomfiles.to_bytes(ds) for ds in dicomfiles.ct_series(3)]
    first = _upload(client, [("a.dcm", slices[0]), ("b.dcm", slices[1])])
    assert first.status_code == 200  # type: ignore[attr-defined]
    assert first.json["counts"]["stored"] == 2  # type: ignore[attr-defined]
    assert first.json["summary"] == (  # type: ignore[attr-defined]
        "2 stored, 0 refused, 0 already here, 0 held for review, 0 skipped; 1 studies."
    )
    again = _upload(client, [(f"{i}.dcm", s) for i, s in enumerate(slices)])
    assert again.json["counts"] == {  # type: ignore[attr-defined]
        "stored": 1,
        "duplicate": 2,
        "quarantined": 0,
        "refused": 0,
        "skipped": 0,
    }
    assert _instances(session) == 3
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "upload.received")).all()[
        -1
    ]
    assert event.detail["stored"] == 1 and event.actor_id == educator.id


# Entry names that must never be shown back (a name may carry a patient's name).
NAMES = ("SMITH", "EVIL", "ABS", "LINK", "SECRET", "INNER", "TTY", "CTRL", "readme")


def test_zip_with_any_unsafe_entry_is_refused_whole_by_position(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    auth.login(educator.email)
    good = dicomfiles.to_bytes(dicomfiles.ct_series(1)[0])
    archive = _zip(
        {
            "SMITH_JOHN/IM0001": good,
            "../../etc/EVILNAME.dcm": good,
            "/abs/ABSNAME.dcm": good,
            "LINKNAME.dcm": b"/etc/passwd",
            "SECRETNAME.dcm": good,
            "INNERNAME.zip": _zip({"x.dcm": good}),
            "TTYNAME.dcm": b"",
            "CTRL\x07NAME.dcm": good,
            "__MACOSX/study/._IM0001": b"junk",
            ".DS_Store": b"junk",
            "DICOMDIR": b"junk",
            "readme.txt": b"hello",
        },
        symlink="LINKNAME.dcm",
        encrypted="SECRETNAME.dcm",
        device="TTYNAME.dcm",
    )
    expected = {
        "entry 2": "the path leaves the archive (..)",
        "entry 3": "the path is absolute",
        "entry 4": "symbolic links are not followed",
        "entry 5": "encrypted entries cannot be read",
        "entry 6": "archives inside archives are not opened",
        "entry 7": "device files, pipes and sockets are not read",
        "entry 8": "the name has control characters",
    }
    response = _upload(client, [("SMITH_JOHN_CT.zip", archive)])
    assert response.status_code == 422  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["summary"].startswith("0 stored, 7 refused")
    assert {f["item"]: f["reason"] for f in body["files"]} == expected
    assert {f["outcome"] for f in body["files"]} == {"refused"}
    assert "refused whole" in body["notes"][0] and "Nothing in it was stored" in body["notes"][0]
    text = response.get_data(as_text=True)  # type: ignore[attr-defined]
    for name in NAMES:
        assert name not in text
    assert _instances(session) == 0

    page = _upload(client, [("SMITH_JOHN_CT.zip", archive)], json=False)
    html = page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert page.status_code == 422  # type: ignore[attr-defined]
    assert "0 stored, 7 refused" in html and "refused whole" in html
    for item, reason in expected.items():
        assert f"<td>{item}</td><td>refused</td><td>{escape(reason)}</td>" in html
    for name in NAMES:
        assert name not in html
    assert _instances(session) == 0


def test_zip_entries_that_are_not_dicom_are_skipped_by_position(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    auth.login(educator.email)
    good = dicomfiles.to_bytes(dicomfiles.ct_series(1)[0])
    archive = _zip(
        {
            "study/": b"",
            "study/JONES_MARY.dcm": good,
            "__MACOSX/study/._IM0001": b"junk",
            "JONES_MARY_notes.txt": b"hello",
        }
    )
    response = _upload(client, [("study.zip", archive)], json=False)
    html = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "1 stored, 0 refused" in html
    assert "<td>entry 2</td><td>stored</td>" in html
    assert "<td>entry 4</td><td>skipped</td><td>not a DICOM Part 10 file</td>" in html
    assert "JONES" not in html and "__MACOSX" not in html and "entry 3" not in html
    assert _instances(session) == 1


def test_zip_bomb_refuses_the_whole_archive_and_nothing_is_stored(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    auth.login(educator.email)
    good = dicomfiles.to_bytes(dicomfiles.ct_series(1)[0])
    bomb = _zip({"a.dcm": good, "bomb.dcm": b"\0" * (64 * 1024 * 1024)})
    assert len(bomb) < 200_000
    response = _upload(client, [("bomb.zip", bomb)])
    assert response.status_code == 422  # type: ignore[attr-defined]
    files = {f["item"]: f for f in response.json["files"]}  # type: ignore[attr-defined]
    assert "zip bomb" in files["entry 2"]["reason"]
    # the entry read before the bomb was found goes with the archive
    assert files["entry 1"]["outcome"] == "refused"
    assert "refused whole" in files["entry 1"]["reason"]
    assert _instances(session) == 0


def test_a_refused_archive_takes_its_studies_with_it(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    """A study split over a plain file and a zip that turns out to be a bomb: none of it."""
    auth.login(educator.email)
    first, second = (dicomfiles.to_bytes(ds) for ds in dicomfiles.ct_series(2))
    other = dicomfiles.to_bytes(dicomfiles.ct_series(1)[0])
    bomb = _zip({"b.dcm": second, "bomb.dcm": b"\0" * (16 * 1024 * 1024)})
    response = _upload(client, [("a.dcm", first), ("c.zip", bomb), ("other.dcm", other)])
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["summary"].startswith("1 stored, 3 refused")
    items = {f["item"]: f for f in body["files"]}
    assert set(items) == {"file 1", "file 2, entry 1", "file 2, entry 2", "file 3"}
    assert "another file of this study" in items["file 1"]["reason"]
    assert items["file 3"]["outcome"] == "stored"
    assert "The zip file (file 2) was refused whole" in body["notes"][0]
    assert _instances(session) == 1


def test_study_is_all_or_nothing(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    auth.login(educator.email)
    broken_study = dicomfiles.ct_series(3)
    del broken_study[1].PixelData  # does not match its SOP class: refused
    fine_study = dicomfiles.ct_series(2)
    files = [
        (f"s{i}.dcm", dicomfiles.to_bytes(ds)) for i, ds in enumerate(broken_study + fine_study)
    ]
    response = _upload(client, files)
    assert response.status_code == 200  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["summary"].startswith("2 stored, 3 refused")
    counts = body["counts"]
    assert counts["stored"] == 2 and counts["refused"] == 3, body
    assert _instances(session) == 2
    reasons = {f["item"]: f["reason"] for f in body["files"]}
    assert "another file of this study was refused" in reasons["file 1"]
    assert [f["file"] for f in body["files"]] == [1, 2, 3, 4, 5]
    assert "s0.dcm" not in response.get_data(as_text=True)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("files", "status", "error"),
    [
        ([], 422, "No DICOM files found"),
        ([("empty.zip", _zip({}))], 422, "No DICOM files found"),
        (
            [("litter.zip", _zip({"a/": b"", ".DS_Store": b"x", "notes.txt": b"hello"}))],
            422,
            "No DICOM files found",
        ),
        ([("notes.txt", b"hello"), ("photo.jpg", b"\xff\xd8\xff" * 100)], 415, "neither DICOM"),
        ([("broken.zip", b"PK\x03\x04" + b"\0" * 100)], 422, "was refused or skipped"),
    ],
    ids=["no-files", "empty-zip", "zip-without-dicom", "not-dicom-or-zip", "damaged-zip"],
)
def test_an_upload_with_nothing_to_store_says_so_in_its_status(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    session: Session,
    files: list[tuple[str, bytes]],
    status: int,
    error: str,
) -> None:
    auth.login(educator.email)
    response = _upload(client, files)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert error in response.json["error"]  # type: ignore[attr-defined]
    assert response.json["status"] == status  # type: ignore[attr-defined]
    page = _upload(client, files, json=False)
    assert page.status_code == status  # type: ignore[attr-defined]
    assert escape(error) in page.get_data(as_text=True)  # type: ignore[attr-defined]
    assert _instances(session) == 0


def test_damaged_zip_is_reported_as_the_file_itself(
    client: FlaskClient, auth: AuthActions, educator: User
) -> None:
    auth.login(educator.email)
    response = _upload(client, [("PATIENT.zip", b"PK\x03\x04" + b"\0" * 100)])
    assert response.json["files"] == [  # type: ignore[attr-defined]
        {
            "item": "file 1",
            "file": 1,
            "entry": None,
            "outcome": "refused",
            "reason": "the zip file is damaged or not a zip file",
        }
    ]


def test_an_upload_too_large_to_store_answers_413(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    auth.login(educator.email)
    monkeypatch.setattr(
        uploads, "ArchiveLimits", lambda: ArchiveLimits(max_entry_bytes=100_000, max_entries=3)
    )
    big = dicomfiles.to_bytes(dicomfiles.ct_series(1)[0]) + b"\0" * 100_000
    response = _upload(client, [("big.dcm", big)])
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert response.json["files"][0]["reason"] == "the file is larger than an upload may hold"  # type: ignore[attr-defined]
    flood = _zip({f"{i}.dcm": b"" for i in range(4)})
    response = _upload(client, [("flood.zip", flood)], json=False)
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert "more than 3 entries" in response.get_data(as_text=True)  # type: ignore[attr-defined]
    monkeypatch.setattr(
        uploads, "ArchiveLimits", lambda: ArchiveLimits(max_total_bytes=len(big) - 99_000)
    )
    two = _zip(
        {f"{i}.dcm": dicomfiles.to_bytes(ds) for i, ds in enumerate(dicomfiles.ct_series(2))}
    )
    response = _upload(client, [("two.zip", two)])
    assert response.status_code == 413  # type: ignore[attr-defined]
    assert [(f["item"], f["reason"]) for f in response.json["files"]] == [  # type: ignore[attr-defined]
        ("file 1", "the zip file unpacks to more than an upload may hold"),
        ("entry 1", "the zip file it came in was refused whole"),
    ]
    assert _instances(session) == 0
    monkeypatch.setattr(uploads, "ArchiveLimits", lambda: ArchiveLimits(max_entry_bytes=100_000))
    # one file kept among the refusals is a mixed result, not an error
    small = dicomfiles.to_bytes(dicomfiles.ct_series(1)[0])
    response = _upload(client, [("big.dcm", big), ("small.dcm", small)])
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert response.json["summary"].startswith("1 stored, 1 refused")  # type: ignore[attr-defined]
    assert _instances(session) == 1


def test_malformed_dicom_and_polyglot_are_refused_with_reasons(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session
) -> None:
    auth.login(educator.email)
    good = dicomfiles.to_bytes(dicomfiles.ct())
    html_preamble = b"<html><script>alert(1)</script>".ljust(128, b" ") + good[128:]
    truncated = good[: len(good) // 2]
    response = _upload(
        client,
        [
            ("poly.dcm", html_preamble),
            ("cut.dcm", truncated),
            ("x.dcm", b"MZ\x90\x00" + b"\0" * 500),
        ],
    )
    outcomes = [f["outcome"] for f in response.json["files"]]  # type: ignore[attr-defined]
    assert outcomes.count("refused") + outcomes.count("skipped") >= 2
    assert _instances(session) <= 1
    expected = 200 if _instances(session) else 422
    assert response.status_code == expected  # type: ignore[attr-defined]
    # A stored polyglot never keeps its preamble: stored files start with 128 zero bytes.
    for sha in session.scalars(select(Instance.sha256)):
        assert ObjectStore(client.application.config["DATA_DIR"]).read(sha)[:128] == b"\0" * 128


def test_learner_cannot_upload(
    client: FlaskClient,
    auth: AuthActions,
    create_user: Callable[..., User],
    hospital: Institution,
    session: Session,
) -> None:
    auth.login(create_user(Role.LEARNER, institution=hospital).email)
    response = _upload(client, [("a.dcm", dicomfiles.to_bytes(dicomfiles.ct()))])
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert _instances(session) == 0


def test_educator_without_institution_gets_a_clear_message(
    client: FlaskClient, auth: AuthActions, create_user: Callable[..., User]
) -> None:
    auth.login(create_user(Role.EDUCATOR).email)
    response = _upload(client, [("a.dcm", dicomfiles.to_bytes(dicomfiles.ct()))])
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "no institution" in response.json["error"]  # type: ignore[attr-defined]


def test_inbox_shows_own_institution_only_and_discard(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    session: Session,
) -> None:
    auth.login(educator.email)
    _upload(client, [("a.dcm", dicomfiles.to_bytes(dicomfiles.ct(StudyDescription="CT HEAD")))])
    study = session.scalars(select(Study)).one()
    series = session.scalars(select(Series)).one()
    inbox = client.get("/intake/").get_data(as_text=True)
    assert "CT HEAD" in inbox
    thumb = client.get(f"/intake/series/{series.id}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    assert "private" in thumb.headers["Cache-Control"]
    assert "immutable" in thumb.headers["Cache-Control"]
    assert (
        client.get(
            f"/intake/series/{series.id}/thumbnail",
            headers={"If-None-Match": thumb.headers["ETag"]},
        ).status_code
        == 304
    )

    outsider = app.test_client()
    other = create_user(Role.EDUCATOR, institution=create_institution("Elsewhere"))
    AuthActions(outsider).login(other.email)
    assert "CT HEAD" not in outsider.get("/intake/").get_data(as_text=True)
    assert outsider.get(f"/intake/studies/{study.id}").status_code == 404
    assert outsider.get(f"/intake/series/{series.id}/thumbnail").status_code == 404
    token = csrf_token(outsider)
    assert (
        outsider.post(f"/intake/studies/{study.id}/discard", data={"csrf_token": token}).status_code
        == 404
    )

    token = csrf_token(client)
    assert (
        client.post(f"/intake/studies/{study.id}/discard", data={"csrf_token": token}).status_code
        == 302
    )
    session.expire_all()
    assert study.status is StudyStatus.DISCARDED
    assert "CT HEAD" not in client.get("/intake/").get_data(as_text=True)


def test_admin_releases_held_object_with_blackout(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    create_user: Callable[..., User],
    session: Session,
) -> None:
    auth.login(educator.email)
    response = _upload(
        client, [("sc.dcm", dicomfiles.to_bytes(dicomfiles.burned_in_secondary_capture()))]
    )
    assert response.json["counts"]["quarantined"] == 1  # type: ignore[attr-defined]
    item = session.scalars(select(QuarantinedObject)).one()
    assert client.get(f"/admin/quarantine/{item.id}").status_code == 403

    admin_client = client.application.test_client()
    AuthActions(admin_client).login(create_user(Role.ADMIN).email)
    page = admin_client.get(f"/admin/quarantine/{item.id}")
    assert "burned-in" in page.get_data(as_text=True)
    image = admin_client.get(f"/admin/quarantine/{item.id}/image")
    assert image.status_code == 200 and image.mimetype == "image/png"
    token = csrf_token(admin_client, f"/admin/quarantine/{item.id}")
    bad = admin_client.post(
        f"/admin/quarantine/{item.id}", data={"csrf_token": token, "rectangles": "0,0,999,10"}
    )
    assert bad.status_code == 400
    done = admin_client.post(
        f"/admin/quarantine/{item.id}", data={"csrf_token": token, "rectangles": "0,0,128,16"}
    )
    assert done.status_code == 302
    session.expire_all()
    instance = session.scalars(select(Instance)).one()
    store = ObjectStore(client.application.config["DATA_DIR"])
    released = pydicom.dcmread(io.BytesIO(store.read(instance.sha256)))
    assert released.BurnedInAnnotation == "NO"
    pixels = released.pixel_array
    assert np.all(pixels[:16, :] == pixels.min())
    assert not store.exists(item.sha256, "quarantine")
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "quarantine.released")
        )
        == 1
    )


def _part10(body: bytes, transfer_syntax: bytes = b"1.2.840.10008.1.2.1\x00") -> bytes:
    """A Part 10 file with the given dataset bytes (explicit VR little endian elements)."""
    import struct

    def element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
        return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value

    meta = element(0x0002, 0x0010, b"UI", transfer_syntax)
    group_length = element(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta)))
    return b"\0" * 128 + b"DICM" + group_length + meta + body


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        (
            "4gib-length",
            _part10(
                b"\x10\x00\x10\x00PN\x00\x00"
                + b"\x08\x00\x20\x00OB\x00\x00"
                + b"\xff\xff\xff\xfe"
                + b"x" * 64
            ),
        ),
        (
            "deep-nesting",
            _part10(
                b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"
                + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
                + (
                    b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"
                    + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
                )
                * 5000
            ),
        ),
        ("unknown-syntax", _part10(b"\x10\x00\x10\x00PN\x04\x00ANON", b"1.2.3.4.5.6.7\x00")),
        ("elf-polyglot", b"\x7fELF" + b"\0" * 124 + b"DICM" + b"\0" * 64),
    ],
)
def test_hostile_dicom_is_refused_and_the_server_keeps_serving(
    client: FlaskClient,
    auth: AuthActions,
    educator: User,
    session: Session,
    name: str,
    raw: bytes,
) -> None:
    auth.login(educator.email)
    response = _upload(client, [(f"{name}.dcm", raw)])
    assert response.status_code == 422  # type: ignore[attr-defined]
    files = response.json["files"]  # type: ignore[attr-defined]
    assert [f["outcome"] for f in files] == ["refused"], files
    assert response.json["summary"].startswith("0 stored, 1 refused")  # type: ignore[attr-defined]
    assert files[0]["reason"]
    assert _instances(session) == 0
    assert client.get("/intake/").status_code == 200


def test_upload_reports_conformance_reasons_and_stores_only_conforming_studies(
    client: FlaskClient, auth: AuthActions, educator: User, session: Session, app: Flask
) -> None:
    from pydicom import config

    from tests.dicom import corpus

    auth.login(educator.email)
    with config.disable_value_validation():
        bad_uid = dicomfiles.ct_series(1)[0]
        bad_uid.SOPInstanceUID = "1.2.840.99.0123"
        bad_uid_bytes = dicomfiles.to_bytes(bad_uid)
    zero_rows = dicomfiles.ct_series(1)[0]
    zero_rows.Rows = 0
    report = corpus.sr_document(study=77)
    report.ContentSequence.append(report.ContentSequence[1])  # organisation: dummied, kept
    free_text = corpus.sr_document(study=78)
    free_text.ContentSequence[4].ContentSequence[0].ValueType = "TEXT"
    free_text.ContentSequence[4].ContentSequence[0].TextValue = "narrative finding"
    plan = dicomfiles.load("rtplan.dcm")
    good = dicomfiles.ct_series(2)
    files = [
        ("uid.dcm", bad_uid_bytes),
        ("rows.dcm", dicomfiles.to_bytes(zero_rows)),
        ("free-text-sr.dcm", corpus.to_bytes(free_text)),
        ("plan.dcm", dicomfiles.to_bytes(plan)),
        ("coded-sr.dcm", corpus.to_bytes(report)),
        *((f"good{i}.dcm", dicomfiles.to_bytes(ds)) for i, ds in enumerate(good)),
    ]
    response = _upload(client, files)
    assert response.status_code == 200  # type: ignore[attr-defined]
    listed = response.json["files"]  # type: ignore[attr-defined]
    reasons = {f["item"]: f["reason"] for f in listed if f["outcome"] == "refused"}
    assert reasons == {
        "file 1": "SOP Instance UID has a component with a leading zero",
        "file 2": "Rows and Columns must be present and greater than zero",
        "file 3": "structured reports with free-text content are not kept",
        "file 4": "SOP class RT Plan Storage is not one the library keeps",
    }
    assert response.json["counts"]["stored"] == 3  # type: ignore[attr-defined]
    assert _instances(session) == 3
    page = str(response.json)  # type: ignore[attr-defined]
    assert "0123" not in page and "narrative" not in page
