"""Benchmark: render a 512x512 CT frame (read, decode, window, JPEG) — issue 7.

Measured in one run, against a reference measured in the same run:

* reference: the same steps done in-process with plain pydicom + numpy + Pillow
  (``dcmread``, ``pixel_array``, rescale, linear window, ``Image.save`` as JPEG q85);
* adapter: :func:`app.dicom.render.render_frame` in-process on the same file;
* route: the Flask route on loopback (werkzeug ``make_server`` in a thread), cold
  (each URL rendered for the first time) and cached (one URL requested again).

Budgets (issue 7): the route's cold p95 within 1.25x of the reference p95; a
512x512 CT frame at quality 85 at most 26 kB. The route part runs only when the
application has a rendered-frame route; the CT is ingested through
app.services.intake into a published case on a fresh data directory, and a cached
frame is compared with a static file of the same size served by Flask.

Usage::

    .venv/bin/python scripts/bench/render.py [--runs 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import http.client
import io
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import PIL
import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.dicom.render import RenderRequest, render_frame  # noqa: E402

WINDOW = (40.0, 400.0)  # soft tissue, HU
QUALITY = 85
RATIO_BUDGET = 1.25
CACHED_BUDGET = 2.0
BYTES_BUDGET = 26_000


# ---------------------------------------------------------------------------
# The test object: a synthetic 512x512 CT slice with CT-like noise
# ---------------------------------------------------------------------------


def _ellipse(shape: tuple[int, int], cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    y, x = np.ogrid[: shape[0], : shape[1]]
    return ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0


def make_ct(path: Path, seed: int = 7, noise: float = 1.8) -> Path:
    """Write a 512x512 16-bit CT slice: body, fat, lungs, spine, aorta, correlated noise.

    Stored values are HU + 1024 (Rescale Intercept -1024), as most scanners write.
    The noise (``noise`` 1.8: SD about 14 HU in soft tissue, correlated over a few
    pixels, like a standard-dose abdomen) is what makes a real CT frame cost bytes
    in JPEG; a noiseless phantom would flatter the size figure.
    """
    rng = np.random.default_rng(seed)
    shape = (512, 512)
    hu = np.full(shape, -1000.0)
    hu[_ellipse(shape, 256, 256, 190, 240)] = -100.0  # subcutaneous fat
    hu[_ellipse(shape, 256, 256, 175, 225)] = 40.0  # soft tissue
    hu[_ellipse(shape, 240, 160, 110, 70)] = -850.0  # right lung
    hu[_ellipse(shape, 240, 352, 110, 70)] = -850.0  # left lung
    hu[_ellipse(shape, 380, 256, 28, 28)] = 700.0  # vertebral body
    hu[_ellipse(shape, 330, 290, 16, 16)] = 45.0  # aorta
    hu[_ellipse(shape, 200, 256, 50, 60)] = 30.0  # heart
    field = rng.normal(0.0, 20.0, shape)
    kernel = np.ones(3) / 3.0  # separable box blur: correlated noise as after a CT kernel
    field = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, field)
    field = np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="same"), 0, field)
    stored = np.clip(np.rint(hu + field * noise + 1024.0), 0, 4095).astype(np.uint16)

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "CT"
    ds.PatientName = "Bench^Phantom"
    ds.PatientID = "BENCH"
    ds.set_pixel_data(stored, "MONOCHROME2", 12)
    ds.RescaleIntercept = -1024
    ds.RescaleSlope = 1
    ds.WindowCenter = WINDOW[0]
    ds.WindowWidth = WINDOW[1]
    ds.PixelSpacing = [0.7, 0.7]
    ds.save_as(path, enforce_file_format=True)
    return path


# ---------------------------------------------------------------------------
# In-process pipelines
# ---------------------------------------------------------------------------


def reference_render(
    path: Path, window: tuple[float, float] = WINDOW, quality: int = QUALITY
) -> bytes:
    """The plain pipeline: pydicom + numpy + Pillow, no Teachfile code."""
    ds = pydicom.dcmread(path)
    values = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    centre, width = window
    low = centre - 0.5 - (width - 1) / 2  # PS3.3 C.11.2.1.2.1
    grey = np.clip((values - low) * (255.0 / (width - 1)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey, "L").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def adapter_render(path: Path) -> bytes:
    """Teachfile's adapter, in-process."""
    return render_frame(path, RenderRequest(window=WINDOW, quality=QUALITY))


@dataclass(frozen=True)
class Figures:
    name: str
    p50_ms: float
    p95_ms: float
    bytes_per_frame: int
    runs: int


def _percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def _figures(name: str, samples_ns: Sequence[int], size: int) -> Figures:
    ms = [s / 1e6 for s in samples_ns]
    return Figures(name, statistics.median(ms), _percentile(ms, 95), size, len(ms))


def bench_in_process(path: Path, runs: int) -> tuple[Figures, Figures]:
    """Time the reference and the adapter, interleaved so both see the same machine state."""
    pipelines: dict[str, Callable[[Path], bytes]] = {
        "reference (pydicom+numpy+Pillow)": reference_render,
        "adapter (render_frame)": adapter_render,
    }
    samples: dict[str, list[int]] = {name: [] for name in pipelines}
    sizes: dict[str, int] = {}
    for _ in range(10):  # warm imports, the page cache and Pillow's encoder
        for fn in pipelines.values():
            fn(path)
    for i in range(runs):
        order = list(pipelines.items())
        if i % 2:
            order.reverse()
        for name, fn in order:
            start = time.perf_counter_ns()
            body = fn(path)
            samples[name].append(time.perf_counter_ns() - start)
            sizes[name] = len(body)
    ref, ada = (_figures(name, samples[name], sizes[name]) for name in pipelines)
    return ref, ada


# ---------------------------------------------------------------------------
# The route on loopback
# ---------------------------------------------------------------------------


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yield its base URL."""
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _get(
    conn: http.client.HTTPConnection, target: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn.request("GET", target, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def bench_route(
    base_url: str,
    cold_paths: Sequence[str],
    cached_path: str,
    *,
    cached_runs: int = 300,
    headers: dict[str, str] | None = None,
) -> tuple[Figures, Figures]:
    """Time GETs of rendered frames over one keep-alive loopback connection.

    ``cold_paths`` are URLs (path and query) that the server has not rendered
    before: each is requested once and is a cold render (read, decode, window,
    JPEG, plus routing, the permission check and the cache write). ``cached_path``
    is requested once to fill the render cache and then ``cached_runs`` times.
    Any non-200 answer aborts the run: a figure for an error page is no figure.
    """
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    sent = dict(headers or {})
    try:
        cold: list[int] = []
        cold_size = 0
        for target in cold_paths:
            start = time.perf_counter_ns()
            status, body = _get(conn, target, sent)
            cold.append(time.perf_counter_ns() - start)
            if status != 200:
                raise RuntimeError(f"GET {target} answered {status}")
            cold_size = len(body)
        status, body = _get(conn, cached_path, sent)
        if status != 200:
            raise RuntimeError(f"GET {cached_path} answered {status}")
        cached: list[int] = []
        for _ in range(cached_runs):
            start = time.perf_counter_ns()
            status, body = _get(conn, cached_path, sent)
            cached.append(time.perf_counter_ns() - start)
            if status != 200:
                raise RuntimeError(f"GET {cached_path} answered {status}")
    finally:
        conn.close()
    return (_figures("route, cold", cold, cold_size), _figures("route, cached", cached, len(body)))


def find_render_route() -> str | None:
    """Return the URL rule of the application's rendered-frame route, if it has one."""
    try:
        from app import create_app
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"TESTING": True, "DATA_DIR": data_dir, "LOAD_SAMPLE_CASES": False})
        for rule in app.url_map.iter_rules():
            if "/frames/" in rule.rule and rule.rule.endswith("/rendered"):
                return rule.rule
    return None


@dataclass(frozen=True)
class BenchSite:
    """An application on a fresh data directory with one published public case."""

    app: Any
    study: str
    series: str
    instances: list[str]
    case_id: int
    paths: list[Path]  # the stored (de-identified) files, in stack order

    def frame_path(self, index: int = 0, frame: int = 1) -> str:
        return (
            f"/images/studies/{self.study}/series/{self.series}/instances/"
            f"{self.instances[index]}/frames/{frame}/rendered"
        )


def build_site(data_dir: Path, files: Sequence[Path], *, visibility: str = "public") -> BenchSite:
    """Ingest ``files`` through app.services.intake (de-identified, stored) into a case."""
    from sqlalchemy import select

    from app import create_app
    from app.db import get_db, upgrade_database, utcnow
    from app.models import Case, CaseAuthor, CaseStatus, CaseStudy, Role, Study, Visibility
    from app.services import accounts, intake
    from app.storage import ObjectStore

    app = create_app({"DATA_DIR": str(data_dir), "LOAD_SAMPLE_CASES": False})
    upgrade_database(get_db(app).engine)
    config = intake.make_config(app.config["DATA_DIR"], app.config["DEID_SECRET"])
    with get_db(app).sessionmaker() as session:
        hospital = accounts.create_institution(session, "Bench Hospital", actor=None)
        author = accounts.create_user(
            session,
            email="bench@example.org",
            display_name="Bench",
            password="bench pass 123",
            role=Role.EDUCATOR,
            institution_name=hospital.name,
        )
        outcome = None
        for path in files:
            outcome = intake.ingest(
                session, path.read_bytes(), institution=hospital, source="bench", config=config
            )
        session.commit()
        assert outcome is not None
        study = session.scalars(
            select(Study).where(Study.study_instance_uid == outcome.study_instance_uid)
        ).one()
        case = Case(
            slug="bench",
            title="Bench",
            status=CaseStatus.PUBLISHED,
            visibility=Visibility(visibility),
            institution_id=hospital.id,
            created_by_id=author.id,
            published_at=utcnow(),
        )
        case.authors.append(CaseAuthor(user_id=author.id))
        case.studies.append(CaseStudy(study_id=study.id))
        session.add(case)
        session.commit()
        series = study.series[0]
        store = ObjectStore(app.config["DATA_DIR"])
        return BenchSite(
            app,
            study.study_instance_uid,
            series.series_instance_uid,
            [i.sop_instance_uid for i in series.instances],
            case.id,
            [store.path(i.sha256) for i in series.instances],
        )


def bench_static(base_url: str, path: str, runs: int) -> Figures:
    """Time GETs of a static file through Flask's send_from_directory (the static route)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    samples: list[int] = []
    body = b""
    try:
        _get(conn, path, {})
        for _ in range(runs):
            start = time.perf_counter_ns()
            status, body = _get(conn, path, {})
            samples.append(time.perf_counter_ns() - start)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
    finally:
        conn.close()
    return _figures("static file, same size", samples, len(body))


def bench_routes(folder: Path, ct: Path, runs: int) -> bool:
    """Cold and cached frames through the route, against in-process and a static file."""
    from flask import send_from_directory

    site = build_site(folder / "data", [ct])
    stored = site.paths[0]
    static_dir = folder / "static"
    static_dir.mkdir(exist_ok=True)
    site.app.add_url_rule(
        "/bench-static/<path:name>",
        "bench_static",
        lambda name: send_from_directory(static_dir, name),
    )
    # The same stored (de-identified) file, in-process, in this run.
    ref, ada = bench_in_process(stored, runs)
    base = site.frame_path()
    # Each cold URL is a distinct render (another window width): nothing cached.
    cold_paths = [f"{base}?window=40,{400 + k}&quality={QUALITY}" for k in range(1, runs + 1)]
    cached_path = f"{base}?window={WINDOW[0]:g},{WINDOW[1]:g}&quality={QUALITY}"
    with serve(site.app) as url:
        cold, cached = bench_route(url, cold_paths, cached_path, cached_runs=runs)
        (static_dir / "frame.jpg").write_bytes(bytes(cached.bytes_per_frame))
        static = bench_static(url, "/bench-static/frame.jpg", runs)
    _print([ref, ada, cold, cached, static])
    cold_ratio = cold.p95_ms / ref.p95_ms
    cached_ratio = cached.p95_ms / static.p95_ms
    ok_cold = cold_ratio <= RATIO_BUDGET
    ok_cached = cached_ratio <= CACHED_BUDGET
    ok_bytes = cached.bytes_per_frame <= BYTES_BUDGET
    print(
        f"route cold / in-process reference p95: {cold_ratio:.2f}x (p50 "
        f"{cold.p50_ms / ref.p50_ms:.2f}x) — goal <= {RATIO_BUDGET}x: "
        f"{'met' if ok_cold else 'NOT met'}"
    )
    print(
        f"route cached / static file p95: {cached_ratio:.2f}x (p50 "
        f"{cached.p50_ms / static.p50_ms:.2f}x) — goal <= {CACHED_BUDGET}x: "
        f"{'met' if ok_cached else 'NOT met'}"
    )
    print(
        f"route bytes per frame at q{QUALITY}: {cached.bytes_per_frame:,d} — goal <= "
        f"{BYTES_BUDGET:,d}: {'met' if ok_bytes else 'NOT met'}"
    )
    return ok_cold and ok_cached and ok_bytes


# ---------------------------------------------------------------------------


def _real_ct_bytes() -> int | None:
    """Size of pydicom's bundled 512x512 CT (a real, lossy JPEG 2000 slice) rendered at q85."""
    folder = Path(pydicom.__file__).parent / "data" / "test_files"
    path = folder / "693_J2KI.dcm"
    if not path.exists():
        return None
    return len(render_frame(path, RenderRequest(window=WINDOW, quality=QUALITY)))


def _print(rows: Sequence[Figures]) -> None:
    print(f"{'pipeline':36} {'p50 ms':>8} {'p95 ms':>8} {'bytes/frame':>12} {'runs':>6}")
    for f in rows:
        print(f"{f.name:36} {f.p50_ms:8.2f} {f.p95_ms:8.2f} {f.bytes_per_frame:12,d} {f.runs:6d}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed renders per pipeline")
    parser.add_argument("--keep", type=Path, help="write the CT and the JPEGs to this folder")
    parser.add_argument(
        "--noise",
        type=float,
        default=1.8,
        help="phantom noise factor (1.8: SD about 14 HU in soft tissue)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        ct = make_ct(folder / "ct_512.dcm", noise=args.noise)
        hu = pydicom.dcmread(ct).pixel_array.astype(np.float64) - 1024
        sd = float(hu[230:260, 240:270].std())  # a square of soft tissue between the lungs
        print(
            f"pydicom {pydicom.__version__}, numpy {np.__version__}, "
            f"Pillow {PIL.__version__}; 512x512 16-bit CT phantom (soft-tissue noise SD "
            f"{sd:.1f} HU), window {WINDOW}, q{QUALITY}"
        )
        ref, ada = bench_in_process(ct, args.runs)
        if args.keep:
            (folder / "reference.jpg").write_bytes(reference_render(ct))
            (folder / "adapter.jpg").write_bytes(adapter_render(ct))
        _print([ref, ada])
        print(
            f"adapter / reference p95: {ada.p95_ms / ref.p95_ms:.2f}x "
            f"(p50 {ada.p50_ms / ref.p50_ms:.2f}x)"
        )
        verdict = "within" if ada.bytes_per_frame <= BYTES_BUDGET else "OVER"
        print(
            f"bytes per frame at q{QUALITY}: {ada.bytes_per_frame:,d} "
            f"({verdict} the {BYTES_BUDGET:,d}-byte budget)"
        )

        real = _real_ct_bytes()
        if real is not None:
            print(
                f"bytes per frame at q{QUALITY}, pydicom's 512x512 CT 693_J2KI.dcm "
                f"(window {WINDOW}): {real:,d}"
            )

        rule = find_render_route()
        if rule is None:
            print(
                "route: pending — the application has no "
                "/studies/.../frames/{n}/rendered route yet; no route figures."
            )
            return 0
        print(f"route: {rule} on loopback (werkzeug, threaded), {args.runs} cold URLs")
        bench_routes(folder, ct, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
