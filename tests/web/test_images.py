"""Image routes: rendered frames, thumbnails, metadata, ROI; cache headers, access, bad input."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image

from app.models import Case, Institution, Role, User
from tests.conftest import AuthActions, csrf_token


def _uids(case: Case) -> tuple[str, str, list[str]]:
    study = case.studies[0].study
    series = study.series[0]
    return (
        study.study_instance_uid,
        series.series_instance_uid,
        [i.sop_instance_uid for i in series.instances],
    )


def _frame_url(case: Case, index: int = 0, frame: int = 1, query: str = "") -> str:
    study, series, instances = _uids(case)
    url = (
        f"/images/studies/{study}/series/{series}/instances/{instances[index]}"
        f"/frames/{frame}/rendered"
    )
    return f"{url}?{query}" if query else url


@pytest.fixture
def educator(
    create_institution: Callable[..., Institution], create_user: Callable[..., User]
) -> User:
    return create_user(Role.EDUCATOR, institution=create_institution())


def test_public_frame_is_public_and_immutable(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator, visibility="public")
    response = client.get(_frame_url(case))
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    cc = response.cache_control
    assert cc.public and not cc.private and cc.max_age == 31536000 and cc.immutable
    assert "Save-Data" in response.headers["Vary"]
    assert response.headers["ETag"]
    image = Image.open(io.BytesIO(response.data))
    assert image.size == (128, 128)


def test_etag_gives_304_and_params_change_it(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator)
    first = client.get(_frame_url(case))
    etag = first.headers["ETag"]
    again = client.get(_frame_url(case), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag and again.cache_control.immutable
    other = client.get(_frame_url(case, query="window=-600,1500"))
    assert other.status_code == 200 and other.headers["ETag"] != etag
    assert other.data != first.data


def test_second_request_is_served_from_the_render_cache(
    client: FlaskClient, app: Any, create_case: Callable[..., Case], educator: User
) -> None:
    from pathlib import Path

    case = create_case(educator)
    url = _frame_url(case, query="window=40,400&quality=80&viewport=64,64")
    body = client.get(url).data
    cached = [p for p in (Path(app.config["DATA_DIR"]) / "renders").rglob("*.jpg")]
    assert len(cached) == 1 and cached[0].read_bytes() == body
    cached[0].write_bytes(b"from the cache")
    assert client.get(url).data == b"from the cache"


def test_private_case_frames_are_private_to_readers(
    client: FlaskClient, auth: AuthActions, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator, visibility="institution")
    assert client.get(_frame_url(case)).status_code == 404  # a visitor
    auth.login(educator.email)
    response = client.get(_frame_url(case))
    assert response.status_code == 200
    assert response.cache_control.private and not response.cache_control.public


def test_other_institutions_case_is_404(
    client: FlaskClient,
    auth: AuthActions,
    create_case: Callable[..., Case],
    educator: User,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    outsider = create_user(Role.EDUCATOR, institution=create_institution())
    private = create_case(educator, visibility="private")
    institution = create_case(educator, visibility="institution")
    draft = create_case(educator, status="draft", visibility="public")
    auth.login(outsider.email)
    for case in (private, institution, draft):
        study, series, instances = _uids(case)
        for url in (
            _frame_url(case),
            f"/images/studies/{study}/series/{series}/thumbnail",
            f"/images/studies/{study}/series/{series}/instances/{instances[0]}/thumbnail",
            f"/images/studies/{study}/series/{series}/metadata",
            f"/viewer/studies/{study}",
        ):
            assert client.get(url).status_code == 404, url


def test_visitor_sees_public_case_images(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator, visibility="public", slices=3)
    study, series, instances = _uids(case)
    assert client.get(f"/images/studies/{study}/series/{series}/thumbnail").status_code == 200
    thumb = client.get(
        f"/images/studies/{study}/series/{series}/instances/{instances[1]}/thumbnail"
    )
    assert thumb.status_code == 200 and thumb.cache_control.public
    page = client.get(f"/viewer/studies/{study}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'class="viewer"' in html and "js/viewer-boot.js" in html and "<script>" not in html


def test_uids_that_do_not_belong_together_are_404(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    one, two = create_case(educator), create_case(educator)
    s1, r1, i1 = _uids(one)
    _, r2, i2 = _uids(two)
    for url in (
        f"/images/studies/{s1}/series/{r2}/instances/{i2[0]}/frames/1/rendered",
        f"/images/studies/{s1}/series/{r1}/instances/{i2[0]}/frames/1/rendered",
        f"/images/studies/1.2.3/series/{r1}/instances/{i1[0]}/frames/1/rendered",
        f"/images/studies/{s1}/series/{r1}/instances/{'9' * 300}/frames/1/rendered",
        f"/images/studies/{s1}/series/{r2}/metadata",
        "/viewer/studies/1.2.3",
    ):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize(
    ("frame", "query", "status"),
    [
        (2, "", 404),
        (0, "", 404),
        (99999999999, "", 404),
        (1, "window=40,0", 400),
        (1, "window=40,-5", 400),
        (1, "window=40", 400),
        (1, "window=abc,400", 400),
        (1, "window=nan,400", 400),
        (1, "window=40,inf", 400),
        (1, "viewport=100000,100000", 400),
        (1, "viewport=0,10", 400),
        (1, "viewport=-5,10", 400),
        (1, "viewport=10", 400),
        (1, "quality=1000", 400),
        (1, "quality=0", 400),
        (1, "quality=99999999999999999999", 400),
        (1, "format=gif", 400),
        (1, "quality=95&viewport=4096,4096&format=png&invert=1&window=40,1", 200),
    ],
)
def test_bad_parameters_are_a_clear_4xx(
    client: FlaskClient,
    create_case: Callable[..., Case],
    educator: User,
    frame: int,
    query: str,
    status: int,
) -> None:
    case = create_case(educator, slices=1)
    response = client.get(_frame_url(case, frame=frame, query=query))
    assert response.status_code == status, response.get_data(as_text=True)[:300]


def test_save_data_gets_a_smaller_frame(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator)
    url = _frame_url(case, query="quality=90&format=png")
    full = client.get(url)
    light = client.get(url, headers={"Save-Data": "on"})
    assert full.mimetype == "image/png" and light.mimetype == "image/jpeg"
    assert len(light.data) < len(full.data)
    assert light.headers["ETag"] != full.headers["ETag"]
    assert "Save-Data" in light.headers["Vary"]


def test_accept_png_without_format(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator)
    response = client.get(_frame_url(case), headers={"Accept": "image/png"})
    assert response.mimetype == "image/png" and "Accept" in response.headers["Vary"]
    browser = client.get(
        _frame_url(case), headers={"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"}
    )
    assert browser.mimetype == "image/jpeg"


def test_metadata_lists_the_stack_with_spacing_and_presets(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator, slices=4)
    study, series, instances = _uids(case)
    response = client.get(f"/images/studies/{study}/series/{series}/metadata")
    assert response.status_code == 200
    assert response.cache_control.no_cache and response.headers["ETag"]
    data = response.get_json()
    assert [i["uid"] for i in data["instances"]] == instances
    d = data["defaults"]
    assert (d["rows"], d["columns"]) == (128, 128)
    assert d["spacing"] == [0.661468, 0.661468] and d["spacing_source"] == "PixelSpacing"
    assert d["units"] == "HU" and data["modality"] == "CT"
    assert {"name": "Lung", "centre": -600, "width": 1500} in data["presets"]
    again = client.get(
        f"/images/studies/{study}/series/{series}/metadata",
        headers={"If-None-Match": response.headers["ETag"]},
    )
    assert again.status_code == 304
    zipped = client.get(
        f"/images/studies/{study}/series/{series}/metadata", headers={"Accept-Encoding": "gzip"}
    )
    assert zipped.headers.get("Content-Encoding") in (None, "gzip")


def test_roi_statistics_from_real_values(
    client: FlaskClient, create_case: Callable[..., Case], educator: User
) -> None:
    case = create_case(educator, slices=1)
    study, series, instances = _uids(case)
    url = f"/api/images/studies/{study}/series/{series}/instances/{instances[0]}/frames/1/roi"
    token = csrf_token(client, "/")
    response = client.post(
        url, json={"cx": 64, "cy": 64, "rx": 10, "ry": 10}, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    stats = response.get_json()
    assert stats["units"] == "HU" and stats["pixel_count"] > 250
    assert stats["area_mm2"] == pytest.approx(3.141592653589793 * 100 * 0.661468**2)
    assert (
        client.post(url, json={"cx": 64, "cy": 64, "rx": 10, "ry": 10}).status_code == 400
    )  # no CSRF
    bad = client.post(
        url, json={"cx": 64, "cy": 64, "rx": 0, "ry": 10}, headers={"X-CSRFToken": token}
    )
    assert bad.status_code == 400 and bad.get_json()["error"]
    assert client.post(url, json=[1, 2], headers={"X-CSRFToken": token}).status_code == 400
    outside = client.post(
        url, json={"cx": 5000, "cy": 64, "rx": 10, "ry": 10}, headers={"X-CSRFToken": token}
    )
    assert outside.status_code == 400


def test_corrupt_stored_object_is_a_4xx_and_the_server_keeps_serving(
    client: FlaskClient, app: Any, create_case: Callable[..., Case], educator: User
) -> None:
    from app.storage import ObjectStore

    case = create_case(educator, slices=2)
    instance = case.studies[0].study.series[0].instances[0]
    path = ObjectStore(app.config["DATA_DIR"]).path(instance.sha256)
    path.chmod(0o600)
    path.write_bytes(path.read_bytes()[:2000])
    response = client.get(_frame_url(case, index=0))
    assert 400 <= response.status_code < 500
    assert client.get(_frame_url(case, index=1)).status_code == 200


def test_render_cache_evicts_least_recently_used(tmp_path: Any) -> None:
    import os

    from app.rendercache import RenderCache

    cache = RenderCache(tmp_path, cap_bytes=16 * 1000)
    sha = "a" * 64
    for n in range(40):
        cache.put(sha, f"k{n}.jpg", bytes(1000))
        os.utime(cache.path(sha, f"k{n}.jpg"), (1000 + n, 1000 + n))
    cache.sweep()
    assert cache.size() <= 16 * 1000
    assert cache.get(sha, "k39.jpg") is not None and cache.get(sha, "k0.jpg") is None
    with pytest.raises(ValueError):
        cache.path(sha, "../../etc")


def test_viewer_page_takes_series_and_case(
    client: FlaskClient,
    create_case: Callable[..., Case],
    educator: User,
) -> None:
    case, other = create_case(educator), create_case(educator)
    study, series, _ = _uids(case)
    page = client.get(f"/viewer/studies/{study}?series={series}&case={case.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-series="{series}"' in html and f'data-case="{case.id}"' in html
    assert client.get(f"/viewer/studies/{study}?case={other.id}").status_code == 404
    assert client.get(f"/viewer/studies/{study}?case=abc").status_code == 404
