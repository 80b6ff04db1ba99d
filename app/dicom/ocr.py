"""Burned-in text: OCR of a DICOM object's frames proposes rectangles to black out.

Why: an ultrasound or a screen capture often shows the patient's name, an ID or a
date in its pixels, and Burned In Annotation (PS3.3 C.7.6.1.1.3) is often absent or
wrong. PS3.15 E.3.1 (Clean Pixel Data) needs someone to find that text; this module
finds what Debian's ``tesseract-ocr`` can read so the reviewer adjusts rectangles
instead of hunting for them, and so intake can hold an object that declares NO
but shows text.

Each frame goes through the display pipeline of :mod:`app.dicom.render` (Modality
LUT, the object's own window or VOI LUT, else min/max), is turned dark-on-light
(tesseract reads that four times faster and more reliably than light-on-dark, the
usual overlay colour), enlarged twice when small, and read with page segmentation
mode 11 (sparse text, no page layout). A word of at least :data:`MIN_ALNUM` letters
or digits read with confidence >= :data:`MIN_CONFIDENCE` anchors a text line (speckle
reads as short, doubtful "words"); the line's other words and its neighbours join
it; lines become rectangles with a margin, in image pixel coordinates (x, y, width,
height; origin top left). The reviewer's proposal also reads the frame's extreme
pixels (``thorough``), which finds text that touches the image; intake does not.

Tesseract is run as a child process with the image on stdin and its TSV on stdout,
so the pixels never reach a file (pytesseract writes a temporary image file), with a
timeout per frame and one OpenMP thread (on the shared 2-core machine one thread
was twice as fast as the default). The words themselves are never returned, logged
or put in a message: they are the identifying text.

Limits: :data:`REVIEW_FRAMES` frames for the reviewer (every frame of anything up to
that; past it, that many evenly spaced frames including the first and the last),
:data:`INTAKE_FRAMES` evenly spaced frames on intake, stopping at the first with
text (overlays of a cine clip are on every frame; the receiver must stay fast),
:data:`FRAME_TIMEOUT_S` per frame and a deadline per object; frames over
:data:`MAX_SIDE` are not read. Failures raise :class:`OcrFailed`, whose message names
the problem; a missing program raises :class:`OcrUnavailable`. Measured on a
generated corpus by ``scripts/bench/ocr.py``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom.dataset import Dataset

from app.dicom.deidentify import _BURNED_IN_CLASS_PREFIXES, BURNED_IN_MODALITIES
from app.dicom.render import frame_8bit, read_geometry
from app.dicom.render import frame_count as dataset_frame_count
from app.errors import DicomRejected

Rectangle = tuple[int, int, int, int]

#: Tesseract word confidence (0..100) an anchoring word needs. Planted text reads at
#: 82-96; speckle of the shipped ultrasound cases as "words" up to 80 when enlarged.
MIN_CONFIDENCE = 82.0
#: Letters or digits an anchoring word needs: speckle read "AN" at 93 % on a shipped
#: ultrasound frame; "&", "-", "|" from a scale bar never count.
MIN_ALNUM = 3
#: A longer word anchors with less confidence: speckle's "words" at 60-80 % were two to
#: four characters long; names and IDs are longer ("SMITH^JOHN" read at 81.5 %).
LONG_WORD = 5
LONG_WORD_CONFIDENCE = 60.0
#: Frames the reviewer's proposal reads at most (see the module docstring).
REVIEW_FRAMES = 64
#: Frames intake reads at most for an object that declares no burned-in text.
INTAKE_FRAMES = 4
#: Seconds one tesseract call may take before it is killed.
FRAME_TIMEOUT_S = 20.0
#: Seconds all frames of one object may take.
REVIEW_DEADLINE_S = 180.0
INTAKE_DEADLINE_S = 40.0
#: Largest frame side read: past it the frame is not OCR'd but reported as failed,
#: since a 10k-pixel whole-slide tile would take minutes.
MAX_SIDE = 4096
#: Frames up to this side are enlarged UPSCALE times first: overlay text of 9-11 pixels
#: is below the x-height tesseract reads well (scripts/bench/ocr.py).
UPSCALE = 2
UPSCALE_UP_TO = 1024
#: Second read: pixels at most this far from the text colour (after making text dark).
EXTREME_LEVEL = 55
_PSM = "11"  # sparse text: find as much text as possible in no particular order
_STATUS_CANNOT_UNDERSTAND = 0xC000


class OcrFailed(DicomRejected):
    """The pixels could not be checked for text; the message says why, never what."""


class OcrUnavailable(OcrFailed):
    """The ``tesseract`` program is not installed (Debian: tesseract-ocr, tesseract-ocr-eng)."""


@dataclass(frozen=True)
class FrameText:
    """Where text was read on one frame (1-based), as merged line rectangles."""

    frame: int
    rectangles: tuple[Rectangle, ...]


@dataclass(frozen=True)
class OcrReport:
    """What OCR found on the frames it read."""

    columns: int
    rows: int
    frames_total: int
    frames_checked: tuple[int, ...]
    #: Frames with text only.
    frames: tuple[FrameText, ...]

    @property
    def found(self) -> bool:
        return bool(self.frames)

    @property
    def rectangles(self) -> list[Rectangle]:
        """Every frame's rectangles, overlapping ones merged: one set for every frame."""
        return union_rectangles(r for f in self.frames for r in f.rectangles)


def needs_intake_check(ds: Dataset) -> bool:
    """True for an object that declares Burned In Annotation NO although text in the
    pixels is the rule for its kind: the modalities and screen/camera capture classes
    that :mod:`app.dicom.deidentify` holds when they do not declare it (ultrasound,
    secondary capture, visible light, ...). CT, MR, CR and the like are not read on
    intake: their text is in overlays and headers, and OCR costs about half a second
    a frame (scripts/bench/ocr.py), which a receiver taking a 500-slice CT cannot spend.
    """
    if str(ds.get("BurnedInAnnotation", "") or "").strip().upper() != "NO":
        return False
    if not any(tag in ds for tag in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
        return False
    modality = str(ds.get("Modality", "") or "").strip().upper()
    sop_class = str(ds.get("SOPClassUID", "") or "")
    return (modality in BURNED_IN_MODALITIES or sop_class.startswith(_BURNED_IN_CLASS_PREFIXES)
            or 0x00080064 in ds)


def tesseract_path() -> str | None:
    """The tesseract program on PATH, or None."""
    return shutil.which("tesseract")


def frames_to_check(total: int, limit: int) -> list[int]:
    """1-based frames to read: all of them up to ``limit``, else ``limit`` evenly spaced
    ones that include the first and the last."""
    if total <= limit:
        return list(range(1, total + 1))
    if limit == 1:
        return [1]
    step = (total - 1) / (limit - 1)
    return sorted({1 + round(i * step) for i in range(limit)})


def find_text(
    source: Path | Dataset,
    *,
    max_frames: int = REVIEW_FRAMES,
    deadline_s: float = REVIEW_DEADLINE_S,
    stop_at_first: bool = False,
    thorough: bool = True,
) -> OcrReport:
    """OCR the frames of a Part 10 file or an in-memory dataset (see the module docstring).

    ``stop_at_first`` stops at the first frame with text (intake only needs to know
    whether to hold); ``thorough`` is passed to :func:`text_boxes`. Raises
    :class:`OcrUnavailable` or :class:`OcrFailed`; rendering errors of
    :mod:`app.dicom.render` pass through.
    """
    program = tesseract_path()
    if program is None:
        raise OcrUnavailable("OCR is unavailable: the tesseract program is not installed")
    if isinstance(source, Dataset):
        total = dataset_frame_count(source)
        rows, columns = int(source.Rows), int(source.Columns)
    else:
        geometry = read_geometry(source)
        total, rows, columns = geometry.frames, geometry.rows, geometry.columns
    if max(rows, columns) > MAX_SIDE:
        raise OcrFailed(f"the frames are larger than OCR reads ({MAX_SIDE} pixels a side)")
    started = time.monotonic()
    checked: list[int] = []
    found: list[FrameText] = []
    for frame in frames_to_check(total, max_frames):
        remaining = deadline_s - (time.monotonic() - started)
        if remaining <= 0:
            raise OcrFailed("OCR ran out of time before reading every frame")
        boxes = text_boxes(frame_8bit(source, frame), program=program,
                           timeout_s=min(FRAME_TIMEOUT_S, remaining), thorough=thorough)
        checked.append(frame)
        if boxes:
            found.append(FrameText(frame, tuple(boxes)))
            if stop_at_first:
                break
    return OcrReport(columns, rows, total, tuple(checked), tuple(found))


def text_boxes(
    pixels: npt.NDArray[np.uint8],
    *,
    program: str | None = None,
    timeout_s: float = FRAME_TIMEOUT_S,
    min_confidence: float = MIN_CONFIDENCE,
    thorough: bool = True,
) -> list[Rectangle]:
    """Text-line rectangles on one 8-bit frame (greyscale, or RGB converted to grey).

    The frame itself is read (text of any contrast on a plain background); with
    ``thorough`` its extreme pixels are read too (overlay text in the brightest or,
    on a light screen, the darkest colour) and the boxes joined: text that touches
    the image is otherwise taken for part of a picture and skipped. The second read
    doubles the time and reads speckle as text more often (one frame of the shipped
    cases), so intake does without it and the reviewer's proposal uses it.
    """
    program = program or tesseract_path()
    if program is None:
        raise OcrUnavailable("OCR is unavailable: the tesseract program is not installed")
    grey = np.asarray(Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").convert("L"))
    if float(np.median(grey)) < 128:
        # overlays are light on a dark image: give tesseract dark text on light
        grey = np.subtract(255, grey, dtype=np.uint8)
    extreme = np.where(grey <= EXTREME_LEVEL, 0, 255).astype(np.uint8)
    rows, columns = grey.shape
    scale = UPSCALE if max(rows, columns) <= UPSCALE_UP_TO else 1
    started = time.monotonic()
    words: list[Rectangle] = []
    for variant in (grey, extreme) if thorough else (grey,):
        image = Image.fromarray(variant, "L")
        if scale > 1:
            image = image.resize((columns * scale, rows * scale), Image.Resampling.BICUBIC)
        buffer = io.BytesIO()
        image.save(buffer, "PPM")  # PGM: no compression to spend time on
        remaining = timeout_s - (time.monotonic() - started)
        if remaining <= 0:
            raise OcrFailed("OCR of a frame ran out of time")
        words += [
            (x // scale, y // scale, -(-w // scale), -(-h // scale))
            for x, y, w, h in _read_words(program, buffer.getvalue(), remaining, min_confidence)
        ]
    return union_rectangles(_with_margin(r, columns, rows) for r in merge_words(words))


def _read_words(program: str, image: bytes, timeout_s: float,
                min_confidence: float) -> list[Rectangle]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "OMP_THREAD_LIMIT": "1",
           "LANG": "C.UTF-8"}
    try:
        # the program is tesseract found on PATH and every argument is a constant
        done = subprocess.run(  # noqa: S603
            [program, "stdin", "stdout", "--psm", _PSM, "-l", "eng", "tsv"],
            input=image, capture_output=True, timeout=timeout_s, env=env, check=False,
        )
    except subprocess.TimeoutExpired:
        raise OcrFailed("OCR of a frame ran out of time") from None
    except OSError as exc:
        raise OcrFailed(f"the tesseract program could not be run ({type(exc).__name__})"
                        ) from None
    if done.returncode != 0:
        # stderr may name a missing language pack; it never holds recognised text
        if b"eng.traineddata" in done.stderr or b"language" in done.stderr.lower():
            raise OcrUnavailable("OCR is unavailable: tesseract has no English data "
                                 "(Debian package tesseract-ocr-eng)")
        raise OcrFailed(f"tesseract failed on a frame (exit status {done.returncode})",
                        _STATUS_CANNOT_UNDERSTAND)
    return _parse_tsv(done.stdout.decode("utf-8", "replace"), min_confidence)


def _parse_tsv(text: str, min_confidence: float) -> list[Rectangle]:
    """Text boxes from tesseract's TSV: confident words, grown by their neighbours.

    A word of at least :data:`MIN_ALNUM` letters or digits read with ``min_confidence``
    anchors text, as does one of :data:`LONG_WORD` read with
    :data:`LONG_WORD_CONFIDENCE`. Any other word (however doubtful) on the same text
    line (block, paragraph and line of TSV level 5), or beside an anchored box on the
    same band (see :func:`_beside`), joins it, repeatedly: a name read as one
    confident word and one doubtful one must be covered entirely, while speckle
    rarely forms a line around a confident word.
    """
    words: list[tuple[tuple[str, str, str], Rectangle, bool]] = []
    for line in text.splitlines()[1:]:
        cells = line.split("\t")
        if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
            continue
        word = cells[11]
        try:
            confidence = float(cells[10])
            x, y, w, h = (int(c) for c in cells[6:10])
        except ValueError:
            continue
        if w <= 0 or h <= 0:
            continue
        alnum = sum(ch.isalnum() for ch in word)
        anchor = (confidence >= min_confidence and alnum >= MIN_ALNUM) or (
            confidence >= LONG_WORD_CONFIDENCE and alnum >= LONG_WORD)
        words.append(((cells[2], cells[3], cells[4]), (x, y, w, h), anchor))
    anchored_lines = {key for key, _box, anchor in words if anchor}
    kept = [box for key, box, _anchor in words if key in anchored_lines]
    rest = [box for key, box, _anchor in words if key not in anchored_lines]
    grew = True
    while grew and rest:
        grew = False
        for box in list(rest):
            if any(_beside(box, other) for other in kept):
                kept.append(box)
                rest.remove(box)
                grew = True
    return kept


def _beside(a: Rectangle, b: Rectangle) -> bool:
    """Same band (vertical overlap of half the smaller height), horizontal gap under
    the taller height: the next word of the same line of text."""
    top, bottom = max(a[1], b[1]), min(a[1] + a[3], b[1] + b[3])
    gap = max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2])
    return bottom - top >= 0.5 * min(a[3], b[3]) and gap <= max(a[3], b[3])


def merge_words(words: Sequence[Rectangle]) -> list[Rectangle]:
    """Join word boxes of one text line: they overlap vertically by half the smaller
    height and the horizontal gap is under twice the taller height."""
    lines = [list(w) for w in sorted(words, key=lambda b: (b[1], b[0]))]
    changed = True
    while changed:
        changed = False
        for i in range(len(lines)):
            for j in range(i + 1, len(lines)):
                a, b = lines[i], lines[j]
                top, bottom = max(a[1], b[1]), min(a[1] + a[3], b[1] + b[3])
                gap = max(a[0], b[0]) - min(a[0] + a[2], b[0] + b[2])
                if bottom - top >= 0.5 * min(a[3], b[3]) and gap <= 2 * max(a[3], b[3]):
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    x1 = max(a[0] + a[2], b[0] + b[2])
                    y1 = max(a[1] + a[3], b[1] + b[3])
                    lines[i] = [x0, y0, x1 - x0, y1 - y0]
                    del lines[j]
                    changed = True
                    break
            if changed:
                break
    return [(x, y, w, h) for x, y, w, h in lines]


def _with_margin(box: Rectangle, columns: int, rows: int) -> Rectangle:
    """Grow a line box by three line heights left and right and a third of one above
    and below (at least 3 pixels), inside the image: tesseract's boxes hug the ink,
    and it often drops the first or last characters of small text, which a wider
    margin still covers (scripts/bench/ocr.py: a date lost its "2026-")."""
    x, y, w, h = box
    side, margin = max(4, 3 * h), max(3, h // 3)
    x0, y0 = max(0, x - side), max(0, y - margin)
    x1, y1 = min(columns, x + w + side), min(rows, y + h + margin)
    return (x0, y0, x1 - x0, y1 - y0)


def union_rectangles(rectangles: Iterable[Rectangle]) -> list[Rectangle]:
    """Merge rectangles that overlap or touch into their bounding box, until none do."""
    boxes = [list(r) for r in rectangles]
    changed = True
    while changed:
        changed = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                if (a[0] <= b[0] + b[2] and b[0] <= a[0] + a[2]
                        and a[1] <= b[1] + b[3] and b[1] <= a[1] + a[3]):
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    x1 = max(a[0] + a[2], b[0] + b[2])
                    y1 = max(a[1] + a[3], b[1] + b[3])
                    boxes[i] = [x0, y0, x1 - x0, y1 - y0]
                    del boxes[j]
                    changed = True
                    break
            if changed:
                break
    return sorted((x, y, w, h) for x, y, w, h in boxes)
