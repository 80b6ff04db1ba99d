"""A logged-in HTTP client for tests and benches that drive real server processes
(standard library only: cookies, the CSRF token, JSON)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class HttpSession:
    def __init__(self, base: str, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.csrf = ""

    def request(
        self, method: str, path: str, body: Any = None, form: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRFToken": self.csrf, "Accept": "application/json"}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=self.timeout) as response:
                status, raw, kind = response.status, response.read(), response.headers
        except urllib.error.HTTPError as err:
            status, raw, kind = err.code, err.read(), err.headers
        if "json" in (kind.get("Content-Type") or ""):
            return status, json.loads(raw or b"null")
        return status, raw.decode("utf-8", "replace")

    def login(self, email: str, password: str) -> None:
        _status, page = self.request("GET", "/auth/login")
        match = _FIELD.search(page) or _META.search(page)
        assert match, "no CSRF token on the log-in page"
        status, _ = self.request(
            "POST",
            "/auth/login",
            form={"csrf_token": match.group(1), "email": email, "password": password},
        )
        if status not in (200, 302):
            raise RuntimeError(f"log-in failed: {status}")
        _status, home = self.request("GET", "/")
        token = _META.search(home)
        assert token, "no csrf-token meta after log-in"
        self.csrf = token.group(1)
