"""The shipped library in cases/: every folder reads, points at real images, and stays small."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from app.casefmt import Ellipse, Polygon, iter_case_folders, read_case_folder

CASES = Path(__file__).resolve().parent.parent / "cases"
FOLDERS = list(iter_case_folders(CASES))


def test_library_has_at_least_ten_cases() -> None:
    assert len(FOLDERS) >= 10


def _headers(folder: Path) -> dict[str, pydicom.Dataset]:
    case = read_case_folder(folder)
    return {
        str(ds.SOPInstanceUID): ds
        for ds in (pydicom.dcmread(p, stop_before_pixels=True) for p in case.dicom_files)
    }


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_case_reads_and_references_its_images(folder: Path) -> None:
    case = read_case_folder(folder)
    assert case.meta.title and case.sections.get("history") and case.dicom_files
    headers = _headers(folder)
    series: dict[str, list[pydicom.Dataset]] = {}
    for ds in headers.values():
        series.setdefault(str(ds.SeriesInstanceUID), []).append(ds)
        # the shipped files are de-identified outputs (PS3.15 E.1)
        assert ds.PatientIdentityRemoved == "YES"
        assert "DeidentificationMethodCodeSequence" in ds
    for k in case.meta.key_images:
        ds = headers[k.sop_instance_uid]
        assert str(ds.SeriesInstanceUID) == k.series_uid
        assert 1 <= k.frame <= int(ds.get("NumberOfFrames", 1) or 1)
    for a in case.annotations:
        ds = headers[a.sop_instance_uid]
        assert str(ds.SeriesInstanceUID) == a.series_uid
        for x, y in a.points:
            assert 0 <= x < ds.Columns and 0 <= y < ds.Rows
    for q in case.questions:
        if q.type != "hotspot":
            continue
        assert q.series_uid in series and q.frames is not None
        members = series[q.series_uid]
        images = sum(int(ds.get("NumberOfFrames", 1) or 1) for ds in members)
        assert q.frames[1] <= images
        assert isinstance(q.region, Ellipse | Polygon)
        x0, y0, x1, y1 = q.region.bounds()
        for ds in members:
            assert x0 >= 0 and y0 >= 0 and x1 < ds.Columns and y1 < ds.Rows


def test_synthetic_cases_say_so() -> None:
    for folder in FOLDERS:
        case = read_case_folder(folder)
        if case.meta.synthetic_images:
            assert "synthetic" in case.sections["history"].lower()


def test_shipped_dicom_is_small() -> None:
    total = sum(p.stat().st_size for p in CASES.glob("*/dicom/**/*") if p.is_file())
    assert total < 30 * 1024 * 1024


def test_shipped_sets_read_and_list_shipped_cases() -> None:
    """Issue 15, item 8: a practice set and a credit-bearing exam set ship with the cases."""
    from app.casefmt import iter_set_files, read_set_file

    sets = [read_set_file(p) for p in iter_set_files(CASES)]
    names = {f.name for f in FOLDERS}
    assert len(sets) >= 2
    for spec in sets:
        assert spec.visibility == "public" and set(spec.cases) <= names
        for slug in spec.cases:  # a public credit set holds public cases only
            assert read_case_folder(CASES / slug).meta.visibility == "public"
        # What a learner reads before the questions names no answer (issue 15, item 2).
        before = f"{spec.title} {spec.description} {spec.objectives}".lower()
        for slug in spec.cases:
            for question in read_case_folder(CASES / slug).questions:
                for answer in question.accepted:
                    assert answer.lower() not in before, (spec.slug, answer)
    credit = [s for s in sets if s.credit is not None]
    assert credit and any(s.credit is None for s in sets)
    for spec in credit:
        assert spec.credit is not None
        assert spec.credit.accreditation_statement and spec.credit.disclosures
