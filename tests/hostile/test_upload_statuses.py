"""The upload route's statuses over real HTTP against the server process: a script or a
gateway that only reads the status learns whether anything was stored (issue 17)."""

from __future__ import annotations

import io
import json
import socket
import stat
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import pytest

from tests import dicomfiles
from tests.hostile.conftest import Site
from tests.httpsession import HttpSession

BOUNDARY = "teachfile-status-boundary"


def _zip(entries: dict[str, bytes], symlink: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name == symlink:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _post(
    http: HttpSession, files: list[tuple[str, bytes]], *, accept: str = "application/json"
) -> tuple[int, str, str]:
    """Status, content type and body of a multipart upload sent as the browser would."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{http.csrf}\r\n".encode()
    ]
    for name, data in files:
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{name}"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    request = urllib.request.Request(
        http.base + "/intake/upload",
        data=body,
        method="POST",
        headers={
            "Accept": accept,
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )
    try:
        with http.opener.open(request, timeout=http.timeout) as response:
            status, raw, kind = response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        status, raw, kind = err.code, err.read(), err.headers
    return status, kind.get("Content-Type") or "", raw.decode("utf-8", "replace")


def _dicom() -> bytes:
    return dicomfiles.to_bytes(dicomfiles.ct_series(1)[0])


@pytest.mark.parametrize(
    ("files", "status", "words"),
    [
        (
            [("DOE_JANE.zip", _zip({"DOE_JANE/IM1": _dicom(), "LINK": b"/etc"}, symlink="LINK"))],
            422,
            "refused whole",
        ),
        ([("DOE_JANE.zip", _zip({}))], 422, "No DICOM files found"),
        ([("DOE_JANE.zip", _zip({"DOE_JANE.txt": b"notes"}))], 422, "No DICOM files found"),
        ([("DOE_JANE.txt", b"notes"), ("DOE_JANE.pdf", b"%PDF-1.7")], 415, "neither DICOM"),
        ([("DOE_JANE.zip", b"PK\x03\x04" + b"\xff" * 300)], 422, "was refused or skipped"),
        ([("DOE_JANE.dcm", b"\0" * 128 + b"DICM" + b"\xff" * 300)], 422, "was refused or skipped"),
    ],
    ids=["symlink-zip", "empty-zip", "zip-without-dicom", "not-dicom", "damaged-zip", "bad-dicom"],
)
def test_an_upload_that_stores_nothing_is_not_a_200(
    site: Site, http: HttpSession, files: list[tuple[str, bytes]], status: int, words: str
) -> None:
    before = site.objects()
    got, kind, body = _post(http, files)
    assert got == status, body[:500]
    assert kind.startswith("application/json")
    report = json.loads(body)
    assert report["status"] == status and report["summary"].startswith("0 stored")
    assert words in report["error"] + " ".join(report.get("notes", []))
    assert "DOE" not in body and "LINK" not in body
    page_status, page_kind, page = _post(http, files, accept="text/html")
    assert (page_status, page_kind.split(";")[0]) == (status, "text/html")
    assert "DOE" not in page
    assert site.objects() == before
    site.assert_web_alive()


def test_a_mixed_upload_is_a_200_that_counts_stored_and_refused_first(
    site: Site, http: HttpSession
) -> None:
    before = site.objects()
    bomb = _zip({"DOE_JANE_BOMB.dcm": b"\0" * (8 * 1024 * 1024)})
    status, _kind, body = _post(
        http, [("DOE_JANE.dcm", _dicom()), ("DOE_JANE.zip", bomb), ("DOE_JANE.txt", b"x")]
    )
    assert status == 200, body[:500]
    report = json.loads(body)
    assert report["summary"].startswith("1 stored, 1 refused, 0 already here")
    assert [(f["item"], f["outcome"]) for f in report["files"]] == [
        ("file 1", "stored"),
        ("file 2, entry 1", "refused"),
        ("file 3", "skipped"),
    ]
    assert "DOE" not in body
    assert len(site.objects() - before) == 1
    site.assert_web_alive()


def test_an_upload_over_the_app_wide_body_cap_is_read_for_an_educator(
    site: Site, http: HttpSession
) -> None:
    """A real study is often more than the app-wide 64 MiB: the upload route takes up to
    512 MiB from those who may upload, before CSRF parses the form (it answered 413)."""
    before = site.objects()
    status, kind, body = _post(http, [("DOE_JANE.dcm", bytes(65 * 1024 * 1024))])
    assert status == 415, body[:300]
    assert kind.startswith("application/json") and "DOE" not in body
    assert site.objects() == before
    site.assert_web_alive()


def _cookie_header(http: HttpSession) -> str:
    for handler in http.opener.handlers:
        if isinstance(handler, urllib.request.HTTPCookieProcessor):
            return "; ".join(f"{c.name}={c.value}" for c in handler.cookiejar)
    return ""


def test_an_upload_over_the_route_cap_is_a_413_without_reading_it(
    site: Site, http: HttpSession
) -> None:
    """A body declared larger than 512 MiB is refused from its headers, as JSON when asked."""
    host, port = urllib.parse.urlsplit(http.base).netloc.split(":")
    head = (
        f"POST /intake/upload HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Cookie: {_cookie_header(http)}\r\nAccept: application/json\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {600 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(head.encode() + b"--" + BOUNDARY.encode() + b"\r\n")
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    assert b" 413 " in status_line, status_line
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["status"] == 413
    site.assert_web_alive()


def test_a_visitor_keeps_the_app_wide_body_cap_on_the_upload_route(site: Site) -> None:
    """The larger cap is for those who may upload: a visitor cannot make the server spool
    half a gigabyte."""
    visitor = HttpSession(site.base)
    visitor.csrf = "none"
    status, _kind, _body = _post(visitor, [("x.dcm", bytes(65 * 1024 * 1024))])
    assert status == 413
    site.assert_web_alive()
