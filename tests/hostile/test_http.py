"""Hostile HTTP against the real server process: every answer is a 4xx (or a normal page),
never a 500, and the server answers /healthz and a normal page afterwards."""

from __future__ import annotations

import pytest

from tests.hostile.conftest import Site, fetch
from tests.httpsession import HttpSession


def _ok(status: int) -> bool:
    return 200 <= status < 500 and status != 500


@pytest.mark.parametrize(
    "path",
    [
        "/cases/..%2f..%2fetc%2fpasswd",
        "/cases/../../etc/passwd",
        "/images/studies/../../etc/passwd",
        "/intake/studies/99999999999999999999",
        "/intake/studies/-1",
        "/cases/%00",
        "/cases/a%0d%0aSet-Cookie:%20x=1",
        "/search?q=" + "a" * 60000,
        "/search?q=%ff%fe%00",
        "/api/search?q=%00%01%02&page=99999999999999999999",
        "/api/search?page=-5",
    ],
)
def test_hostile_urls_are_4xx(site: Site, http: HttpSession, path: str) -> None:
    status, _body = http.request("GET", path)
    assert _ok(status), f"{path[:80]}: {status}"
    site.assert_web_alive()


def test_deeply_nested_json_is_a_400(site: Site, http: HttpSession) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    status, _ = fetch(
        site.base + "/api/cases",
        "POST",
        body,
        {"Content-Type": "application/json", "X-CSRFToken": http.csrf},
    )
    assert status in (400, 403, 415), status
    site.assert_web_alive()


def test_oversized_body_is_a_413(site: Site) -> None:
    body = bytes(65 * 1024 * 1024)
    status, _ = fetch(
        site.base + "/auth/login", "POST", body, {"Content-Type": "application/octet-stream"}
    )
    assert status in (400, 413), status
    site.assert_web_alive()


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"\xff\xfe\x00{"),
        ("application/json", b'{"title": "\xed\xa0\x80"}'),
        ("text/plain", b"{}"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\n"),
    ],
)
def test_bad_bodies_on_json_api(
    site: Site, http: HttpSession, content_type: str, body: bytes
) -> None:
    status, _ = fetch(
        site.base + "/api/cases",
        "POST",
        body,
        {"Content-Type": content_type, "X-CSRFToken": http.csrf},
    )
    assert 400 <= status < 500, status
    site.assert_web_alive()
