"""Batch de-identification of a directory tree on two processes (``teachfile deid``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from app.dicom.batch import REPORT_NAME, _Outcome, _Placer, deidentify_tree
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


#: pydicom's MR_small in six transfer syntaxes: one image, one SOP Instance UID.
MR_SMALL_SYNTAXES = (
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
)


def _files_on_disk(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm"))


@pytest.mark.parametrize("workers", [1, 2])
def test_inputs_sharing_a_sop_instance_uid_are_written_once(tmp_path: Path, workers: int) -> None:
    src = tmp_path / "in"
    (src / "copy").mkdir(parents=True)
    for name in MR_SMALL_SYNTAXES:
        shutil.copy(corpus.TEST_FILES / name, src / name)
    shutil.copy(corpus.TEST_FILES / "MR_small.dcm", src / "copy" / "again.dcm")  # re-export
    shutil.copy(corpus.TEST_FILES / "CT_small.dcm", src / "CT_small.dcm")
    summary = deidentify_tree(src, tmp_path / "out", secret=SECRET, source="cli",
                              quarantine_dir=None, workers=workers)
    on_disk = _files_on_disk(tmp_path / "out")
    assert (summary.files_in, summary.written, summary.duplicates, summary.refused) == (8, 2, 1, 5)
    assert summary.files_in == (summary.written + summary.duplicates + summary.refused
                                + summary.quarantined + summary.skipped + summary.failed)
    assert summary.written == len(on_disk)
    assert not summary.ok  # conflicting duplicates are refusals
    # the first input in path order keeps the path: MR_small.dcm, Explicit VR Little Endian
    mr = [p for p in on_disk if pydicom.dcmread(p).Modality == "MR"]
    assert len(mr) == 1
    assert pydicom.dcmread(mr[0]).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    report = (tmp_path / "out" / REPORT_NAME).read_text().splitlines()
    assert len(report) == 6
    assert any(line.startswith("duplicate\tcopy/again.dcm\tidentical") for line in report)
    conflicts = [line for line in report if "conflicting duplicate" in line]
    assert sorted(line.split("\t")[1] for line in conflicts) == sorted(MR_SMALL_SYNTAXES[1:])
    assert all(line.startswith("refused\t") and "MR_small.dcm" in line for line in conflicts)
    assert "2 written, 1 duplicates, 5 refused" in summary.line()
    assert not list((tmp_path / "out").rglob(".tmp-*"))


def test_first_input_in_path_order_wins_whatever_order_workers_finish(tmp_path: Path) -> None:
    target = tmp_path / "out" / "study" / "series" / "sop.dcm"
    target.parent.mkdir(parents=True)
    staged = {}
    for name, data in (("a.dcm", b"first"), ("b.dcm", b"second"), ("c.dcm", b"first")):
        staged[name] = target.parent / f".tmp-{name}.part"
        staged[name].write_bytes(data)
    placer = _Placer(order={"a.dcm": 0, "b.dcm": 1, "c.dcm": 2})
    for name in ("c.dcm", "b.dcm", "a.dcm"):  # the last input finishes first
        placer.place(_Outcome("written", name, "", target, staged[name]))
    placer.finish()
    assert target.read_bytes() == b"first"
    statuses = {name: outcome.status for name, outcome in placer.outcomes.items()}
    assert statuses == {"a.dcm": "written", "b.dcm": "refused", "c.dcm": "duplicate"}
    assert "a.dcm" in placer.outcomes["b.dcm"].reason
    assert [p.name for p in target.parent.iterdir()] == ["sop.dcm"]
