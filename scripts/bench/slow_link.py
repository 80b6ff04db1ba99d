"""Benchmark: the viewer on a slow link (issue 7) — 384 kbit/s down, 700 ms latency.

A 200-slice 512x512 synthetic CT is ingested through app.services.intake into a
published public case on a fresh data directory and served on loopback; Debian's
chromium (Playwright) opens the viewer with Chrome's network emulation
(``Network.emulateNetworkConditions`` over CDP) and the script reports:

* time from navigation to the first frame painted (Element Timing of the frame);
* bytes transferred before it (HTML, CSS, JS and images, headers included);
* time to scroll through 50 slices, each shown before the next key press
  (reading), and 50 key presses in a row (a fling: only where the reader stops
  is fetched);
* bytes per frame.

Goals: first frame painted within 3 s, at most 100 kB transferred before it.
Until the case page embeds the viewer, this measures ``/viewer/studies/<uid>``.

Usage::

    .venv/bin/python scripts/bench/slow_link.py [--slices 200] [--save-data]
        [--kbps 384] [--latency 700]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pydicom
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT, ROOT / "scripts" / "bench"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from render import build_site, make_ct, serve  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FIRST_FRAME_BUDGET_S = 3.0
BYTES_BUDGET = 100_000


def make_series(folder: Path, count: int) -> list[Path]:
    """``count`` slices of one synthetic CT series (different noise per slice)."""
    study, series = generate_uid(), generate_uid()
    paths = []
    for index in range(count):
        path = make_ct(folder / f"slice_{index:03d}.dcm", seed=index)
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(index) * 1.25]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SeriesDescription = "Synthetic chest CT"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


class Traffic:
    """Bytes on the wire per request, from the DevTools protocol's Network events."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.urls: dict[str, str] = {}
        self.finished: dict[str, tuple[float, int]] = {}
        self.chunks: list[tuple[str, float, int]] = []

    def attach(self, cdp: Any) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.dataReceived", self._data)
        cdp.on("Network.loadingFinished", self._finished)

    def _sent(self, e: dict[str, Any]) -> None:
        self.started.setdefault(e["requestId"], e["timestamp"])
        self.urls[e["requestId"]] = e["request"]["url"]

    def _data(self, e: dict[str, Any]) -> None:
        self.chunks.append((e["requestId"], e["timestamp"], e.get("encodedDataLength", 0)))

    def _finished(self, e: dict[str, Any]) -> None:
        self.finished[e["requestId"]] = (e["timestamp"], int(e["encodedDataLength"]))

    def document_start(self) -> float:
        return min(self.started.values())

    def bytes_before(self, t: float) -> tuple[int, dict[str, int]]:
        total = 0
        per: dict[str, int] = {}
        for rid, (done, size) in self.finished.items():
            if done <= t:
                total += size
                per[self.urls.get(rid, rid)] = size
        for rid, ts, size in self.chunks:
            if ts <= t and (rid not in self.finished or self.finished[rid][0] > t):
                total += size
                per[self.urls.get(rid, rid)] = per.get(self.urls.get(rid, rid), 0) + size
        return total, per

    def frame_bytes(self) -> list[int]:
        return [
            size
            for rid, (_, size) in self.finished.items()
            if "/rendered" in self.urls.get(rid, "")
        ]


def run(args: argparse.Namespace) -> bool:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        files = make_series(folder, args.slices)
        site = build_site(folder / "data", files)
        print(
            f"{args.slices} slices of 512x512 CT generated and ingested in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        with serve(site.app) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            headers = {"Save-Data": "on"} if args.save_data else {}
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, extra_http_headers=headers
            )
            page = context.new_page()
            page.set_default_timeout(120_000)
            cdp = context.new_cdp_session(page)
            traffic = Traffic()
            traffic.attach(cdp)
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
            rate = args.kbps * 1000 / 8
            cdp.send(
                "Network.emulateNetworkConditions",
                {
                    "offline": False,
                    "latency": args.latency,
                    "downloadThroughput": rate,
                    "uploadThroughput": rate,
                },
            )
            url = f"{base}/viewer/studies/{site.study}"
            wall = time.perf_counter()
            page.goto(url, wait_until="commit")
            render_ms = page.evaluate("""() => new Promise((done) => {
                new PerformanceObserver((list) => {
                  for (const e of list.getEntries()) {
                    if (e.identifier === 'viewer-first-frame') done(e.renderTime || e.loadTime);
                  }
                }).observe({type: 'element', buffered: true});
            })""")
            wall_first = time.perf_counter() - wall
            first_s = render_ms / 1000
            painted_at = traffic.document_start() + first_s
            before, per = traffic.bytes_before(painted_at)
            print(
                f"link: {args.kbps} kbit/s down, {args.latency} ms latency"
                f"{', Save-Data: on' if args.save_data else ''}; page {url.split('?')[0]}"
            )
            print(
                f"first frame painted: {first_s:.2f} s after navigation "
                f"(wall clock {wall_first:.2f} s)"
            )
            print(f"bytes before it: {before:,d}")
            for name, size in sorted(per.items(), key=lambda kv: -kv[1]):
                print(f"    {size:8,d}  {name.replace(base, '')[:110]}")

            viewer = page.locator(".viewer")
            page.wait_for_function(
                "() => document.querySelector('.viewer').dataset.state === 'ready'"
                " && document.querySelector('.viewer-toolbar button')"
            )
            ready_s = time.perf_counter() - wall
            print(f"viewer interactive (script, metadata): {ready_s:.2f} s wall clock")
            viewer.focus()
            start = time.perf_counter()
            index = int(viewer.get_attribute("data-shown-index") or 0)
            for _ in range(50):
                index += 1
                page.keyboard.press("ArrowDown")
                page.wait_for_function(
                    f"() => document.querySelector('.viewer').dataset.shownIndex === '{index}'"
                )
            read_s = time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(50):
                page.keyboard.press("ArrowDown")
            index += 50
            page.wait_for_function(
                f"() => document.querySelector('.viewer').dataset.shownIndex === '{index}'"
            )
            fling_s = time.perf_counter() - start
            frames = traffic.frame_bytes()
            print(
                f"scroll 50 slices, each shown before the next: {read_s:.1f} s "
                f"({read_s / 50 * 1000:.0f} ms a slice)"
            )
            print(
                f"scroll 50 slices in one fling (50 key presses): {fling_s:.1f} s until "
                f"the slice where it stops is shown"
            )
            if frames:
                print(
                    f"frames fetched: {len(frames)}, median {sorted(frames)[len(frames) // 2]:,d}"
                    f" bytes on the wire"
                )
            browser.close()
    ok_time = first_s <= FIRST_FRAME_BUDGET_S
    ok_bytes = before <= BYTES_BUDGET
    print(
        f"goal first frame <= {FIRST_FRAME_BUDGET_S:.0f} s: {'met' if ok_time else 'NOT met'}; "
        f"goal <= {BYTES_BUDGET:,d} bytes before it: {'met' if ok_bytes else 'NOT met'}"
    )
    return ok_time and ok_bytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--kbps", type=int, default=384, help="download rate, kbit/s")
    parser.add_argument("--latency", type=int, default=700, help="added latency, ms")
    parser.add_argument("--save-data", action="store_true", help="send Save-Data: on")
    args = parser.parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
