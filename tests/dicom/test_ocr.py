"""OCR of burned-in text (app/dicom/ocr.py) on generated frames, with the real tesseract."""

from __future__ import annotations

import numpy as np
import pytest

from app.dicom import ocr
from tests import dicomfiles
from tests.dicomfiles import Text

pytestmark = pytest.mark.skipif(
    ocr.tesseract_path() is None, reason="tesseract-ocr is not installed (scripts/test.sh)"
)


def _inside(box: tuple[int, int, int, int], rects: list[tuple[int, int, int, int]]) -> bool:
    x, y, w, h = box
    return any(
        rx <= x and ry <= y and x + w <= rx + rw and y + h <= ry + rh for rx, ry, rw, rh in rects
    )


def test_planted_text_is_flagged_and_covered_on_every_frame_blank_frame_is_not() -> None:
    rng = np.random.default_rng(7)
    frames, planted = [], []
    for index in range(3):
        frame = dicomfiles.speckle_frame(rng, 240, 320)
        if index < 2:
            planted = dicomfiles.draw_text(frame, [Text("SMITH^JOHN 48213377", 8, 6, 16)])
        frames.append(frame)
    report = ocr.find_text(dicomfiles.ultrasound(frames))
    assert report.frames_checked == (1, 2, 3)
    assert [f.frame for f in report.frames] == [1, 2]
    for found in report.frames:
        assert _inside(planted[0], list(found.rectangles))
    assert _inside(planted[0], report.rectangles)


def test_colour_screen_capture_text_dark_on_light() -> None:
    frame = np.full((200, 400, 3), 230, dtype=np.uint8)
    planted = dicomfiles.draw_text(frame, [Text("DOE, JANE 2026-01-02", 20, 150, 18, (20, 20, 90))])
    report = ocr.find_text(dicomfiles.secondary_capture(frame))
    assert report.found and _inside(planted[0], report.rectangles)


def test_speckle_alone_is_not_text() -> None:
    rng = np.random.default_rng(11)
    frames = [dicomfiles.speckle_frame(rng) for _ in range(2)]
    assert not ocr.find_text(dicomfiles.ultrasound(frames)).found


def test_intake_reads_a_few_evenly_spaced_frames_and_stops_at_text() -> None:
    assert ocr.frames_to_check(3, 4) == [1, 2, 3]
    assert ocr.frames_to_check(100, 4) == [1, 34, 67, 100]
    frame = dicomfiles.speckle_frame(np.random.default_rng(3), 240, 320)
    dicomfiles.draw_text(frame, [Text("MRN 48213377", 8, 6, 18)])
    report = ocr.find_text(dicomfiles.ultrasound([frame.copy() for _ in range(10)]),
                           max_frames=4, stop_at_first=True)
    assert report.frames_checked == (1,) and report.found


def test_which_objects_intake_reads() -> None:
    frame = dicomfiles.speckle_frame(np.random.default_rng(1), 64, 64)
    assert ocr.needs_intake_check(dicomfiles.ultrasound([frame]))
    assert not ocr.needs_intake_check(dicomfiles.ultrasound([frame], burned_in=None))
    assert not ocr.needs_intake_check(dicomfiles.ct(BurnedInAnnotation="NO"))


def test_without_tesseract_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    frame = dicomfiles.speckle_frame(np.random.default_rng(1), 64, 64)
    with pytest.raises(ocr.OcrUnavailable, match="tesseract"):
        ocr.find_text(dicomfiles.ultrasound([frame]))


def test_rectangles_merge_into_lines_and_across_frames() -> None:
    assert ocr.merge_words([(10, 10, 40, 12), (56, 11, 30, 12), (10, 80, 20, 12)]) == [
        (10, 10, 76, 13),
        (10, 80, 20, 12),
    ]
    assert ocr.union_rectangles([(0, 0, 10, 10), (5, 5, 10, 10), (50, 50, 5, 5)]) == [
        (0, 0, 15, 15),
        (50, 50, 5, 5),
    ]
