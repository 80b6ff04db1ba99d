"""Batch de-identification of a directory tree on two processes (``teachfile deid``)."""

from __future__ import annotations

from pathlib import Path

import pydicom

from app.dicom.batch import REPORT_NAME, deidentify_tree
from tests.dicom import corpus

SECRET = b"batch-secret"


def _tree(root: Path) -> dict[str, bytes]:
    files = corpus.synthetic_corpus()
    (root / "nested" / "deeper").mkdir(parents=True)
    for index, (name, data) in enumerate(files.items()):
        folder = root / ("nested/deeper" if index % 3 == 0 else "nested" if index % 3 else "")
        (folder / f"PHIDOE_{name}").write_bytes(data)
    (root / "notes.txt").write_text("not dicom PHIDOE")
    (root / "PHIDOE_truncated.dcm").write_bytes(files["mr.dcm"][:700])
    (root / "PHIDOE_us.dcm").write_bytes(corpus.to_bytes(corpus.ultrasound()))
    return files


def test_tree_is_deidentified_on_two_processes(tmp_path: Path) -> None:
    files = _tree(tmp_path / "in")
    seen: list[tuple[int, int]] = []
    summary = deidentify_tree(tmp_path / "in", tmp_path / "out", secret=SECRET, source="cli",
                              quarantine_dir=None, workers=2,
                              progress=lambda done, total: seen.append((done, total)))
    total = len(files) + 3
    assert summary.files_in == total
    assert summary.written == len(files)
    assert (summary.refused, summary.skipped, summary.failed) == (2, 1, 0)
    assert not summary.ok
    assert seen[-1] == (total, total)
    written = sorted(p for p in (tmp_path / "out").rglob("*.dcm"))
    assert len(written) == len(files)
    for path in written:
        assert "PHIDOE" not in str(path)
        data = path.read_bytes()
        for marker in corpus.MARKERS:
            assert marker not in data, (marker, path)
        ds = pydicom.dcmread(path)
        assert path.relative_to(tmp_path / "out").parts == (
            ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
    assert not list((tmp_path / "out").rglob(".tmp-*"))
    report = (tmp_path / "out" / REPORT_NAME).read_text().splitlines()
    assert len(report) == 3
    assert any(line.startswith("refused\tPHIDOE_truncated.dcm\t") for line in report)
    assert any(line.startswith("refused\tPHIDOE_us.dcm\t") and "burned" in line
               for line in report)
    assert any(line.startswith("skipped\tnotes.txt\t") for line in report)
    assert "files/s" in summary.line()


def test_rerun_is_idempotent_and_quarantine_holds_burned_in(tmp_path: Path) -> None:
    _tree(tmp_path / "in")
    first = deidentify_tree(tmp_path / "in", tmp_path / "out", secret=SECRET, source="cli",
                            quarantine_dir=tmp_path / "q", workers=1, progress=None)
    names = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.dcm"))
    second = deidentify_tree(tmp_path / "in", tmp_path / "out", secret=SECRET, source="cli",
                             quarantine_dir=tmp_path / "q", workers=2, progress=None)
    again = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("*.dcm"))
    assert names == again
    assert first.quarantined == second.quarantined == 1
    assert first.refused == 1  # the truncated file
    held = list((tmp_path / "q").rglob("*.dcm"))
    assert len(held) == 1
    assert b"PHIDOE" not in held[0].read_bytes()
