"""Disk full and I/O errors on the write paths of derived data: the user's request succeeds.

Rendered frames (renders/) and the search index (index/) are rebuildable. A full disk or
an I/O error while writing them must not fail the request that caused the write: the
frame is served uncached, and a committed case change stands while reconcile indexes it
later. (The object store, uploads and the receiver are covered in tests/services/
test_intake.py and tests/dicom/; certificates are rendered on request, never stored.)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app import rendercache
from app.db import get_db
from app.models import Case, Institution, Role, User
from app.services import search
from tests.conftest import AuthActions, csrf_token
from tests.web.test_images import _frame_url


@pytest.fixture
def educator(
    create_institution: Callable[..., Institution], create_user: Callable[..., User]
) -> User:
    return create_user(Role.EDUCATOR, institution=create_institution())


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EDQUOT])
def test_render_cache_write_fails_and_the_frame_is_served_uncached(
    client: FlaskClient,
    app: Flask,
    create_case: Callable[..., Case],
    educator: User,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
) -> None:
    case = create_case(educator)
    real_write = os.write

    def failing_write(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(Path(app.config["DATA_DIR"]))):
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    monkeypatch.setattr(rendercache.os, "write", failing_write)
    response = client.get(_frame_url(case))
    assert response.status_code == 200
    assert response.data[:2] == b"\xff\xd8"  # a JPEG, rendered on the spot
    again = client.get(_frame_url(case, query="window=40,400"))
    assert again.status_code == 200
    data_dir = Path(app.config["DATA_DIR"])
    assert _files(data_dir / "renders") == []
    assert [p for p in _files(data_dir / "tmp") if p.name.startswith("render.")] == []
    monkeypatch.undo()
    assert client.get(_frame_url(case)).status_code == 200
    assert _files(data_dir / "renders")  # cached again once the disk has room


def test_render_cache_rename_fails_and_leaves_no_staging_file(
    client: FlaskClient,
    app: Flask,
    create_case: Callable[..., Case],
    educator: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = create_case(educator)

    def failing_replace(*_args: Any) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(rendercache.os, "replace", failing_replace)
    assert client.get(_frame_url(case)).status_code == 200
    tmp = Path(app.config["DATA_DIR"]) / "tmp"
    assert [p for p in _files(tmp) if p.name.startswith("render.")] == []


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), "busy"])
def test_index_write_fails_after_commit_and_the_save_stands(
    client: FlaskClient,
    app: Flask,
    auth: AuthActions,
    session: Session,
    create_case: Callable[..., Case],
    educator: User,
    monkeypatch: pytest.MonkeyPatch,
    failure: Any,
) -> None:
    from app.search import IndexBusy

    case = create_case(educator, title="Osteoid osteoma")
    slug, revision = case.slug, case.revision
    holder = search.holder_for(get_db(app).engine)
    assert holder is not None
    search.reconcile_index(get_db(app).sessionmaker, app.config["DATA_DIR"])

    def broken(*_args: Any) -> None:
        raise IndexBusy("busy") if failure == "busy" else failure

    monkeypatch.setattr(holder.get(), "update", broken)
    auth.login(educator.email)
    token = csrf_token(client, "/")
    content = {"title": "Osteoid osteoma with a sclerotic nidus", "sections": {}}
    response = client.put(
        f"/api/cases/{slug}/draft",
        json={"base_revision": revision, "content": content},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 200, response.get_json()
    session.expire_all()
    assert session.get(Case, case.id).title == content["title"]  # type: ignore[union-attr]
    monkeypatch.undo()
    search.reconcile_index(get_db(app).sessionmaker, app.config["DATA_DIR"])
    page = search.search_cases(session, None, "nidus", per_page=10)
    assert {hit.case_id for hit in page.result.hits} == {case.id}
