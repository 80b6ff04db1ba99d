"""Each class of hostile input over each channel it can arrive by (an upload to the web
server, a C-STORE to the receiver): the answer, the audit entry with the reason's code and
the channel, and the memory of the process that refused it (issue 17, items 4 and 5).

Memory is measured on the real processes: the peak resident set while refusing
(``VmHWM``, reset through ``/proc/PID/clear_refs`` before each send) and the resident set
once the process is idle again (``VmRSS``), against the figures taken when the suite started.
"""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import CTImageStorage, DeflatedExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from tests.hostile.conftest import Site, vm_status
from tests.hostile.test_dicom_store import (
    FAILURES,
    _ct_body,
    _deflate_bomb,
    _element,
    _header,
    _nested,
    _part10,
)
from tests.httpsession import HttpSession

MB = 1024 * 1024
# Issue 17: peak <= 300 MB and back within 50 MB of the start once idle, for the web server
# and for a receiver worker (measured before: web 500 MB peak, 280 MB idle; receiver 465 MB).
PEAK_LIMIT = 300 * MB
IDLE_GROWTH_LIMIT = 50 * MB
FIGURES: list[str] = []


def _idle_rss(pid: int, start: int) -> int:
    """The resident set once the process has settled (freed arenas go back within a moment)."""
    rss = vm_status(pid)["VmRSS"]
    for _ in range(20):
        if rss - start <= IDLE_GROWTH_LIMIT:
            break
        time.sleep(0.25)
        rss = vm_status(pid)["VmRSS"]
    return rss


def _check_memory(site: Site, which: str, label: str, peak: int) -> None:
    pid = (site.web if which == "web" else site.receiver).pid
    start = site.start_memory[which]["VmRSS"]
    idle = _idle_rss(pid, start)
    line = (
        f"{which:8} {label:24} start {start / MB:6.0f} MB  peak {peak / MB:6.0f} MB"
        f"  idle {idle / MB:6.0f} MB"
    )
    FIGURES.append(line)
    sys.stderr.write(line + "\n")
    assert peak <= PEAK_LIMIT, f"{which} peaked at {peak / MB:.0f} MB refusing {label}"
    assert idle - start <= IDLE_GROWTH_LIMIT, (
        f"{which} holds {(idle - start) / MB:.0f} MB more than at the start after {label}"
    )


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    sys.stderr.write("\nhostile refusals, resident memory:\n" + "\n".join(FIGURES) + "\n")


def _audit_after(site: Site, last_id: int, action: str, timeout: float = 10.0) -> dict[str, Any]:
    """The detail of the first ``action`` entry newer than ``last_id`` (the receiver writes
    its entry when the association closes, in its own thread: wait for it)."""
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(site.data_dir / "teachfile.sqlite3", timeout=10) as db:
            row = db.execute(
                "SELECT detail, remote_addr, actor_label FROM audit_events"
                " WHERE id > ? AND action = ? ORDER BY id LIMIT 1",
                (last_id, action),
            ).fetchone()
        if row is not None:
            detail: dict[str, Any] = json.loads(row[0])
            return {**detail, "_remote_addr": row[1], "_actor": row[2]}
        assert time.monotonic() < deadline, f"no {action} audit entry"
        time.sleep(0.1)


def _upload_refusal_audited(site: Site, last_id: int, code: str) -> dict[str, Any]:
    """The upload's audit entry names the refusal's code on the upload channel: either an
    entry for the upload refused whole (``upload.refused``, ``code``) or the upload's
    entry counting it (``upload.received``, ``refused:<code>``), whichever the upload
    route writes for an archive refused whole."""
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(site.data_dir / "teachfile.sqlite3", timeout=10) as db:
            row = db.execute(
                "SELECT detail FROM audit_events WHERE id > ? AND action LIKE 'upload.%'"
                " ORDER BY id LIMIT 1",
                (last_id,),
            ).fetchone()
        if row is not None:
            detail: dict[str, Any] = json.loads(row[0])
            assert detail["channel"] == "upload", detail
            assert detail.get("code") == code or detail.get(f"refused:{code}", 0) >= 1, detail
            return detail
        assert time.monotonic() < deadline, "no upload audit entry"
        time.sleep(0.1)


def _last_audit_id(site: Site) -> int:
    with sqlite3.connect(site.data_dir / "teachfile.sqlite3", timeout=10) as db:
        return int(db.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()[0])


def _upload(http: HttpSession, name: str, data: bytes) -> tuple[int, Any, int]:
    """Status, JSON body and size of the answer to a multipart upload of one file."""
    boundary = "teachfile-refusal-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{http.csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; "
        f'name="files"; filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    body = head.encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        http.base + "/intake/upload",
        data=body,
        method="POST",
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Accept": "application/json",
            "X-CSRFToken": http.csrf,
        },
    )
    try:
        with http.opener.open(request, timeout=300) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    assert raw.startswith(b"{"), f"{status}: {raw[:200]!r}"
    return status, json.loads(raw), len(raw)


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _dicom_classes(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Hostile Part 10 files and the reason code each must be refused with."""
    ct_body, _uid = _ct_body()
    pixel_at = ct_body.find(b"\xe0\x7f\x10\x00")
    frame_bomb = (
        _header(CTImageStorage, generate_uid())
        + _element(0x0028, 0x0002, b"US", (1).to_bytes(2, "little"))
        + _element(0x0028, 0x0004, b"CS", b"MONOCHROME2 ")
        + _element(0x0028, 0x0008, b"IS", b"100000")
        + _element(0x0028, 0x0010, b"US", (512).to_bytes(2, "little"))
        + _element(0x0028, 0x0011, b"US", (512).to_bytes(2, "little"))
        + _element(0x0028, 0x0100, b"US", (16).to_bytes(2, "little"))
        + _element(0x0028, 0x0101, b"US", (16).to_bytes(2, "little"))
        + _element(0x0028, 0x0102, b"US", (15).to_bytes(2, "little"))
        + _element(0x0028, 0x0103, b"US", (0).to_bytes(2, "little"))
        + _element(0x7FE0, 0x0010, b"OW", bytes(64))
    )
    return {
        "truncated": (_part10(tmp / "truncated.dcm", ct_body[: pixel_at + 40]), "truncated"),
        "impossible-length": (
            _part10(
                tmp / "huge-length.dcm",
                ct_body[:pixel_at] + b"\xe0\x7f\x10\x00OW\0\0\xf0\xff\xff\xff" + bytes(256),
            ),
            "impossible-length",
        ),
        "deep-nesting": (_part10(tmp / "deep.dcm", _nested(5000)), "too-deep"),
        "frame-bomb": (_part10(tmp / "frame-bomb.dcm", frame_bomb), "image-too-large"),
        "deflate-bomb": (
            _part10(
                tmp / "deflate-bomb.dcm",
                _deflate_bomb(1100 * MB),
                syntax=DeflatedExplicitVRLittleEndian,
            ),
            "inflate-limit",
        ),
        "huge-truncated": (
            _part10(
                tmp / "huge-truncated.dcm",
                _header(CTImageStorage, generate_uid())
                + b"\x09\x00\x01\x10OB\0\0"
                + (48 * MB).to_bytes(4, "little")
                + bytes(40 * MB),
            ),
            "truncated",
        ),
        "deflate-garbage": (
            _part10(
                tmp / "deflate-garbage.dcm", b"\xff" * 4096, syntax=DeflatedExplicitVRLittleEndian
            ),
            "inflate-failed",
        ),
    }


@pytest.fixture(scope="module")
def dicom_classes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    return _dicom_classes(tmp_path_factory.mktemp("refusals"))


DICOM_CLASSES = [
    "truncated",
    "impossible-length",
    "deep-nesting",
    "frame-bomb",
    "deflate-bomb",
    "deflate-garbage",
    "huge-truncated",
]


@pytest.mark.parametrize("name", DICOM_CLASSES)
def test_hostile_dicom_upload_is_refused_audited_and_memory_stays_flat(
    site: Site, http: HttpSession, dicom_classes: dict[str, tuple[Path, str]], name: str
) -> None:
    path, code = dicom_classes[name]
    data = path.read_bytes()
    last, objects = _last_audit_id(site), site.objects()
    site.reset_peak("web")
    status, body, size = _upload(http, f"{name}.dcm", data)
    peak = vm_status(site.web.pid)["VmHWM"]
    del data
    # 200 with the per-file table today; 422 once uploads answer by what they stored
    # (issue 17 item 1, another branch): nothing was stored either way.
    assert status in (200, 422), status
    assert [f["outcome"] for f in body["files"]] == ["refused"], body
    assert size < 64 * 1024
    assert site.objects() == objects
    detail = _audit_after(site, last, "upload.received")
    assert detail["channel"] == "upload" and detail["refused"] == 1
    assert detail[f"refused:{code}"] == 1, detail
    _check_memory(site, "web", f"upload {name}", peak)
    site.assert_web_alive()


@pytest.mark.parametrize("name", DICOM_CLASSES)
def test_hostile_dicom_store_is_refused_audited_and_memory_stays_flat(
    site: Site, dicom_classes: dict[str, tuple[Path, str]], name: str
) -> None:
    from pynetdicom import _config

    path, code = dicom_classes[name]
    last, objects = _last_audit_id(site), site.objects()
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        ae = AE(ae_title="HOSTILESCU")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
        ae.add_requested_context(CTImageStorage, DeflatedExplicitVRLittleEndian)
        ae.add_requested_context(CTImageStorage, "1.2.840.10008.1.2.1")
        site.reset_peak("receiver")
        assoc = ae.associate("127.0.0.1", site.dicom_port, ae_title="TEACHFILE")
        assert assoc.is_established
        try:
            status = assoc.send_c_store(path)
        finally:
            assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
    peak = vm_status(site.receiver.pid)["VmHWM"]
    assert status and int(status.Status) in FAILURES, status
    assert site.objects() == objects
    detail = _audit_after(site, last, "dicom.received")
    assert detail["channel"] == "C-STORE" and detail["refused"] == 1
    assert detail[f"refused:{code}"] == 1, detail
    assert detail["_actor"] == "AE HOSTILESCU" and detail["_remote_addr"] == "127.0.0.1"
    _check_memory(site, "receiver", f"C-STORE {name}", peak)
    site.assert_receiver_alive()


def _zip_bomb() -> bytes:
    """One entry of 300 MiB of zeros (about 300 KB deflated): refused by its ratio."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb.dcm", "w", force_zip64=True) as entry,
    ):
        chunk = bytes(16 * MB)
        for _ in range(300 // 16):
            entry.write(chunk)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("label", "make", "outcome", "code"),
    [
        ("zip-bomb", _zip_bomb, "refused", "zip-bomb"),
        ("zip-symlink", None, "refused", "zip-symlink"),
        ("zip-traversal", None, "refused", "zip-bad-name"),
    ],
)
def test_hostile_archive_entries_are_refused_and_audited(
    site: Site, http: HttpSession, label: str, make: Any, outcome: str, code: str
) -> None:
    if label == "zip-symlink":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            info = zipfile.ZipInfo("link.dcm")
            info.external_attr = 0o120777 << 16
            archive.writestr(info, "/etc/passwd")
        data = buffer.getvalue()
    elif label == "zip-traversal":
        data = _zip({"../../escape.dcm": b"\0" * 200})
    else:
        data = make()
    last = _last_audit_id(site)
    site.reset_peak("web")
    status, body, _size = _upload(http, f"{label}.zip", data)
    peak = vm_status(site.web.pid)["VmHWM"]
    del data
    # per-entry refusal today (200); the whole archive refused once archives are
    # all-or-nothing (issue 17 item 3, another branch: 422, or an upload.refused entry).
    assert status in (200, 400, 422), status
    assert "refused" in {f["outcome"] for f in body.get("files", [])} or status >= 400, body
    if status == 200:
        assert [f["outcome"] for f in body["files"]] == [outcome], body
    _upload_refusal_audited(site, last, code)
    _check_memory(site, "web", f"upload {label}", peak)
    site.assert_web_alive()


@pytest.mark.parametrize(
    ("label", "data", "code"),
    [
        ("zip-damaged", b"PK\x03\x04" + b"\x00" * 4000, "zip-damaged"),
        ("zip-too-many-entries", None, "zip-too-many-entries"),
    ],
)
def test_an_archive_refused_whole_is_audited(
    site: Site, http: HttpSession, label: str, data: bytes | None, code: str
) -> None:
    if data is None:
        data = _zip({f"f{i}.dcm": b"" for i in range(10_001)}, zipfile.ZIP_STORED)
    last = _last_audit_id(site)
    site.reset_peak("web")
    status, body, _size = _upload(http, f"{label}.zip", data)
    peak = vm_status(site.web.pid)["VmHWM"]
    assert 400 <= status < 500, status
    # The reason, in the error or in the report's notes (issue 17 item 3's shape).
    assert "zip" in body["error"] + " ".join(body.get("notes", [])), body
    _upload_refusal_audited(site, last, code)
    _check_memory(site, "web", f"upload {label}", peak)
    site.assert_web_alive()


def test_an_aborted_association_is_audited(site: Site) -> None:
    last = _last_audit_id(site)
    ae = AE(ae_title="HOSTILESCU")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", site.dicom_port, ae_title="TEACHFILE")
    assert assoc.is_established
    assoc.abort()
    detail = _audit_after(site, last, "dicom.aborted")
    assert detail["channel"] == "C-STORE"
    assert detail["_actor"] == "AE HOSTILESCU" and detail["_remote_addr"] == "127.0.0.1"
    site.assert_receiver_alive()


def test_a_rejected_association_is_audited(site: Site) -> None:
    last = _last_audit_id(site)
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", site.dicom_port, ae_title="TEACHFILE")
    assert assoc.is_rejected
    detail = _audit_after(site, last, "dicom.association_rejected")
    assert detail == {
        "channel": "association",
        "code": "unknown-sender",
        "_remote_addr": "127.0.0.1",
        "_actor": "AE STRANGER",
    }
    site.assert_receiver_alive()


def test_a_huge_file_that_is_not_dicom_is_not_held_in_memory(
    site: Site, http: HttpSession
) -> None:
    """60 MiB of something else (under the 64 MiB a request may carry before the upload
    route sees it): skipped from its first bytes, never read whole."""
    data = b"MZ" + bytes(60 * MB)
    last = _last_audit_id(site)
    site.reset_peak("web")
    before = vm_status(site.web.pid)["VmRSS"]
    status, body, _size = _upload(http, "huge.dcm", data)
    peak = vm_status(site.web.pid)["VmHWM"]
    del data
    # 200 today; 415 or 422 once uploads answer by what they stored (issue 17 item 1).
    assert status in (200, 415, 422), status
    if status == 200:
        assert [f["outcome"] for f in body["files"]] == ["skipped"], body
    detail = _audit_after(site, last, "upload.received")
    assert detail["channel"] == "upload" and detail["stored"] == 0
    assert peak - before < 30 * MB, f"the web server held {(peak - before) / MB:.0f} MB for it"
    _check_memory(site, "web", "upload huge non-DICOM", peak)
    site.assert_web_alive()
