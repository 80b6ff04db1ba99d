"""Benchmark: how much planted burned-in text the OCR of app/dicom/ocr.py flags and covers.

Generates its own corpus (nothing is downloaded): ultrasound-like speckle frames,
RGB secondary captures and one multi-frame cine, with text drawn by Pillow (DejaVu)
at several sizes, positions and contrasts, and the same kinds of frame without text.
Every object goes through the real path: a DICOM dataset in memory, the render
pipeline, tesseract. Prints, for the reviewer's proposal (two reads a frame), the
intake check (one read) and a reference (tesseract's defaults on the same displayed
frame), the share of text frames flagged, the share of planted texts whose ink box
lies wholly inside a proposed rectangle, the false flags on frames without text, and
seconds per frame.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench/ocr.py [--frames 40] [--seed 1]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.dicom import ocr  # noqa: E402
from app.dicom.render import frame_8bit  # noqa: E402
from tests import dicomfiles  # noqa: E402
from tests.dicomfiles import Text  # noqa: E402

WORDS = [
    "SMITH^JOHN", "DOE, JANE", "MRN 48213377", "ID: 0042-7781", "2026-01-02 10:11",
    "ST MARY'S HOSPITAL", "DOB 03/04/1951", "GARCIA MARIA", "ACC 9910023", "Dr Okafor",
]
SIZES = [9, 11, 13, 16, 20, 28]
LEVELS = [255, 200, 150, 110]


@dataclass
class Tally:
    text_frames: int = 0
    flagged: int = 0
    planted: int = 0
    covered: int = 0
    blank_frames: int = 0
    false_flags: int = 0
    seconds: float = 0.0
    calls: int = 0

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _inside(box: tuple[int, int, int, int], rects: list[tuple[int, int, int, int]]) -> bool:
    x, y, w, h = box
    return any(rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh
               for rx, ry, rw, rh in rects)


def _texts(rng: np.random.Generator, rows: int, columns: int, inside: bool,
           lines: int = 0) -> list[Text]:
    """``lines`` lines (0: two to four): corners and bars (on black) or inside the image
    (on speckle), each kept wholly inside the frame and apart from the others."""
    texts: list[Text] = []
    slots = [(8, 6, "left"), (columns - 8, 6, "right"), (8, rows - 8, "left"),
             (columns - 8, rows - 8, "right"), (8, rows // 2, "left")]
    if inside:
        slots += [(columns // 2 - 90, rows // 2 + 30, "left"),
                  (columns // 2 - 60, rows // 3, "left")]
    order = rng.permutation(len(slots))[: lines or int(rng.integers(2, 5))]
    for index in order:
        size = int(rng.choice(SIZES))
        words = str(rng.choice(WORDS))
        width = int(dicomfiles.font(size).getlength(words))
        x, y, anchor = slots[index]
        x = x - width if anchor == "right" else x
        y = min(y, rows - size - 8)
        if x + width > columns - 4:
            continue
        texts.append(Text(words, int(x), int(y), size, int(rng.choice(LEVELS))))
    return texts


Rect = tuple[int, int, int, int]


def baseline(pixels: np.ndarray) -> list[Rect]:
    """The reference: tesseract's defaults (page segmentation 3) on the displayed frame,
    every word of two or more letters or digits read with 60 % confidence, the words
    of one tesseract line joined into one box (no margin)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("L").save(buffer, "PPM")
    done = subprocess.run(
        [ocr.tesseract_path() or "tesseract", "stdin", "stdout", "tsv"],
        input=buffer.getvalue(), capture_output=True, timeout=60, check=True,
        env={"PATH": os.environ.get("PATH", ""), "OMP_THREAD_LIMIT": "1"},
    )
    lines: dict[tuple[str, ...], list[list[int]]] = {}
    for line in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cells = line.split("\t")
        if (len(cells) == 12 and cells[0] == "5" and float(cells[10]) >= 60
                and sum(ch.isalnum() for ch in cells[11]) >= 2):
            lines.setdefault(tuple(cells[2:5]), []).append([int(c) for c in cells[6:10]])
    boxes: list[Rect] = []
    for words in lines.values():
        x0, y0 = min(w[0] for w in words), min(w[1] for w in words)
        x1, y1 = max(w[0] + w[2] for w in words), max(w[1] + w[3] for w in words)
        boxes.append((x0, y0, x1 - x0, y1 - y0))
    return boxes


DETECTORS: dict[str, Callable[[np.ndarray], list[Rect]]] = {
    "review proposals (app/dicom/ocr.py, two reads a frame)":
        lambda pixels: ocr.text_boxes(pixels, thorough=True),
    "intake check (app/dicom/ocr.py, one read a frame)":
        lambda pixels: ocr.text_boxes(pixels, thorough=False),
    "reference: tesseract defaults on the displayed frame": baseline,
}
DETECTOR = {"now": DETECTORS["review proposals (app/dicom/ocr.py, two reads a frame)"]}


def _measure(ds: Dataset, truth: list[list[Rect]]) -> Tally:
    """Render every frame of ``ds`` as the viewer does and read it with the detector;
    ``truth`` holds each frame's planted text boxes."""
    tally = Tally()
    for number, boxes in enumerate(truth, start=1):
        pixels = frame_8bit(ds, number)
        started = time.perf_counter()
        rects = DETECTOR["now"](pixels)
        tally.seconds += time.perf_counter() - started
        tally.calls += 1
        if boxes:
            tally.text_frames += 1
            tally.flagged += bool(rects)
            tally.planted += len(boxes)
            tally.covered += sum(_inside(b, rects) for b in boxes)
        else:
            tally.blank_frames += 1
            tally.false_flags += bool(rects)
    return tally


def ultrasound_frames(rng: np.random.Generator, count: int) -> dict[str, Tally]:
    text, blank = Tally(), Tally()
    for index in range(count):
        frame = dicomfiles.speckle_frame(rng)
        if index % 2 == 0:
            boxes = dicomfiles.draw_text(frame, _texts(rng, 480, 640, inside=index % 4 == 0))
            text.add(_measure(dicomfiles.ultrasound([frame]), [boxes]))
        else:
            blank.add(_measure(dicomfiles.ultrasound([frame]), [[]]))
    single = Tally()
    for index in range(count // 2):
        # one line only, any size, contrast and place: the flagged share means something
        frame = dicomfiles.speckle_frame(rng)
        texts: list[Text] = []
        while not texts:
            texts = _texts(rng, 480, 640, inside=index % 2 == 0, lines=1)
        boxes = dicomfiles.draw_text(frame, texts)
        single.add(_measure(dicomfiles.ultrasound([frame]), [boxes]))
    return {"ultrasound, text": text, "ultrasound, one line of text": single,
            "ultrasound, no text": blank}


def screen_frames(rng: np.random.Generator, count: int) -> dict[str, Tally]:
    """RGB captures: a dark or light viewer background, an image area, coloured text."""
    text, blank = Tally(), Tally()
    for index in range(count):
        light = index % 3 == 2
        frame = np.full((512, 512, 3), 235 if light else 24, dtype=np.uint8)
        grey = dicomfiles.speckle_frame(rng, 360, 400)
        frame[70:430, 56:456] = grey[..., np.newaxis]
        if index % 2 == 0:
            colours = [(255, 255, 0), (0, 255, 0), (255, 255, 255), (30, 30, 30)]
            texts = [
                Text(t.text, t.x, t.y, t.size,
                     colours[-1] if light else colours[int(rng.integers(0, 3))])
                for t in _texts(rng, 512, 512, inside=False)
            ]
            boxes = dicomfiles.draw_text(frame, texts)
            text.add(_measure(dicomfiles.secondary_capture(frame), [boxes]))
        else:
            blank.add(_measure(dicomfiles.secondary_capture(frame), [[]]))
    return {"screen capture, text": text, "screen capture, no text": blank}


def cine(rng: np.random.Generator, frames: int) -> dict[str, Tally]:
    """One cine loop: the same overlay on the first half of the frames, none after."""
    texts = [Text("SMITH^JOHN  MRN 48213377", 8, 6, 13, 230),
             Text("2026-01-02 10:11:07", 440, 450, 11, 200)]
    stack, truth = [], []
    for index in range(frames):
        frame = dicomfiles.speckle_frame(rng)
        truth.append(dicomfiles.draw_text(frame, texts) if index < frames // 2 else [])
        stack.append(frame)
    tally = _measure(dicomfiles.ultrasound(stack), truth)
    return {f"cine of {frames} frames (half with text)": tally}


def run(seed: int, frames: int) -> None:
    rng = np.random.default_rng(seed)
    results: dict[str, Tally] = {}
    results.update(ultrasound_frames(rng, frames))
    results.update(screen_frames(rng, frames))
    results.update(cine(rng, 16))
    total = Tally()
    print(f"{'corpus':<40} {'frames':>6} {'flagged':>8} {'covered':>8} {'s/frame':>8}")
    for name, tally in results.items():
        total.add(tally)
        count = tally.text_frames + tally.blank_frames
        share = (f"{tally.flagged / tally.text_frames:.2f}" if tally.text_frames
                 else f"{tally.false_flags / tally.blank_frames:.2f}")
        covered = f"{tally.covered / tally.planted:.2f}" if tally.planted else "-"
        print(f"{name:<40} {count:>6} {share:>8} {covered:>8} "
              f"{tally.seconds / max(tally.calls, 1):>8.2f}")
    print(f"frames with text flagged: {total.flagged}/{total.text_frames} "
          f"= {total.flagged / max(total.text_frames, 1):.3f}")
    print(f"planted texts inside a proposed rectangle: {total.covered}/{total.planted} "
          f"= {total.covered / max(total.planted, 1):.3f}")
    print(f"false flags on frames without text: {total.false_flags}/{total.blank_frames} "
          f"= {total.false_flags / max(total.blank_frames, 1):.3f}")
    print(f"seconds per frame: {total.seconds / max(total.calls, 1):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="frames per kind (default 40)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if ocr.tesseract_path() is None:
        sys.exit("tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-eng)")
    print(f"app/dicom/ocr.py: tesseract psm {ocr._PSM}, confidence >= "
          f"{ocr.MIN_CONFIDENCE:.0f}, upscale x{ocr.UPSCALE}, one thread; the same corpus "
          f"(seed {args.seed}) for every detector")
    for title, detector in DETECTORS.items():
        DETECTOR["now"] = detector
        print(f"\n== {title}")
        run(args.seed, args.frames)


if __name__ == "__main__":
    main()
