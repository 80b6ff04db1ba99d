"""Identifiers planted into real vendor objects, where the de-identifier's authors did not plant.

The synthetic corpus (tests/dicom/corpus.py) was written with the de-identifier. Here
every file of pydicom's bundled test data and of the shipped cases gets, at the top
level and in every sequence item at any depth: a hospital's name in every short
free-text attribute it already has (a local code's meaning, a model name, a kernel),
the same name in Institution Name (so the object itself says it identifies), unlisted
attributes (issuers, comments, retired attributes, a person name with an ideographic
group), and a private element of a safe-private creator; at the top level, text in
values kept unread (a number, a time, an age, a sex). The output bytes are searched
for every planted value, case-insensitively and in UTF-16 too.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from app.dicom.deidentify import (
    BurnedInTextSuspected,
    DeidContext,
    DeidResult,
    deidentify,
    read_dataset,
    write_dataset,
)
from app.errors import DicomRejected

ROOT = Path(__file__).resolve().parents[2]
CTX = DeidContext(secret=b"adversarial-secret-0123456789abc", source="test")
HOSPITAL = "Kowalczyk Memorial"
#: Attributes Teachfile's allow-list does not list, planted in every item.
UNLISTED = (
    ("InstitutionName", HOSPITAL),
    ("StationName", "QXZVSTATION"),
    ("OperatorsName", "Qxzvoperator^Anna=\u5c71\u7530^\u592a\u90ce"),
    ("ImageComments", "QXZVCOMMENT seen at the clinic"),
    ("LocalNamespaceEntityID", "QXZVNAMESPACE"),
    ("UniversalEntityID", "QXZVUNIVERSAL"),
    ("InsurancePlanIdentification", "QXZVRETIRED"),  # retired (0010,1050)
    ("PatientComments", "QXZVPATCOMMENT"),
)
MARKERS = ("Kowalczyk", "QXZV", "\u5c71\u7530")
#: Text VRs whose values are replaced by the hospital's name when present.
_FREE_TEXT = frozenset({"SH", "LO", "UC"})
#: Code parts: a hospital name there would be a code, not text (kept as codes).
_CODES = frozenset(
    {"CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodingSchemeRegistry",
     "LongCodeValue", "SpecificCharacterSet"}
)


def _raw(item: Dataset, tag: int, vr: str, value: bytes) -> None:
    """An element as a sender wrote it, bypassing pydicom's checks of the value."""
    item._dict[Tag(tag)] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def plant(item: Dataset, top: bool) -> None:
    for elem in list(item):
        if elem.VR == "SQ":
            for child in elem.value:
                plant(child, False)
        elif elem.VR in _FREE_TEXT and elem.keyword not in _CODES:
            elem.value = HOSPITAL if elem.VM <= 1 else ["ONE", HOSPITAL]
    for keyword, value in UNLISTED:
        setattr(item, keyword, value)
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = "QXZVISSUER"
    item.IssuerOfAccessionNumberSequence = Sequence([issuer])
    item.add_new(0x00190010, "LO", "SIEMENS MR HEADER")
    _raw(item, 0x0019100C, "DS", b"QXZVPRIVATE ")
    if top:
        item.SpecificCharacterSet = "ISO_IR 192"  # so the ideographic name is encoded as such
        _raw(item, 0x00180060, "DS", b"QXZVKVP ")  # KVP, a number by its VR
        _raw(item, 0x00080030, "TM", b"QXZVTIME")  # Study Time
        _raw(item, 0x00101010, "AS", b"QXZVAG")  # Patient's Age
        _raw(item, 0x00100040, "CS", b"QXZVSEX ")  # Patient's Sex: M, F or O


def _inputs() -> Iterator[Path]:
    for name in get_testdata_files("**/*"):
        path = Path(name)
        if path.is_file() and path.suffix.lower() not in (".json", ".txt", ".gz", ".bz2"):
            yield path
    yield from sorted((ROOT / "cases").glob("*/dicom/*/0001.dcm"))


def _planted(path: Path) -> bytes | None:
    try:
        ds = pydicom.dcmread(path)
    except Exception:  # not a DICOM file pydicom reads (some test files are broken on purpose)
        return None
    if "SOPClassUID" not in ds:
        return None
    plant(ds, True)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _deidentify(data: bytes) -> DeidResult | None:
    try:
        return deidentify(read_dataset(data), CTX)
    except BurnedInTextSuspected as held:
        return held.result  # held in quarantine with this header: it must be clean too
    except DicomRejected:
        return None  # refused: nothing is written


def survivors(data: bytes) -> list[str]:
    lower = data.lower()
    found = []
    for marker in MARKERS:
        for codec in ("latin-1", "utf-8", "utf-16-le", "utf-16-be"):
            try:
                needle = marker.lower().encode(codec)
            except UnicodeEncodeError:
                continue
            if needle in lower:
                found.append(f"{marker} ({codec})")
                break
    return found


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the vendors' values
def test_no_planted_value_survives_in_real_vendor_objects() -> None:
    checked, leaks = 0, {}
    for path in _inputs():
        data = _planted(path)
        if data is None:
            continue
        result = _deidentify(data)
        if result is None:
            continue
        checked += 1
        found = survivors(write_dataset(result))
        if found:
            leaks[path.name] = found
    assert checked >= 120, checked
    assert leaks == {}


def test_text_in_a_number_a_time_an_age_or_a_sex_is_removed() -> None:
    ds = pydicom.dcmread(get_testdata_files("CT_small.dcm")[0])
    _raw(ds, 0x00180060, "DS", b"DOE^JANE")  # KVP (Type 2 in CT Image): emptied
    _raw(ds, 0x00080030, "TM", b"SMITHJ")  # Study Time
    _raw(ds, 0x00101010, "AS", b"JOHN")
    _raw(ds, 0x00100040, "CS", b"DOE ")
    _raw(ds, 0x00280030, "DS", b"0.66\\SMITH ")  # Pixel Spacing, Type 1
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    result = deidentify(read_dataset(buf.getvalue()), CTX)
    out = write_dataset(result)
    for value in (b"DOE", b"JANE", b"SMITH", b"JOHN"):
        assert value not in out.upper()
    back = pydicom.dcmread(io.BytesIO(out))
    assert back.KVP is None and back.PatientSex == ""
    assert result.actions.get("malformed", 0) >= 5
    # well-formed values of the same attributes are kept as they were
    clean = deidentify(read_dataset(Path(get_testdata_files("CT_small.dcm")[0])), CTX)
    assert float(clean.dataset.KVP) == 120.0 and clean.dataset.PatientSex == "O"
    assert "malformed" not in clean.actions


def test_a_hospital_name_in_a_code_meaning_or_model_name_is_cleaned_out() -> None:
    ds = pydicom.dcmread(get_testdata_files("CT_small.dcm")[0])
    ds.InstitutionName = "St Ninian's Hospital"
    code = Dataset()
    code.CodeValue = "CTHEAD"
    code.CodingSchemeDesignator = "99NINIAN"
    code.CodeMeaning = "CT head St Ninian's Hospital protocol"
    ds.ProcedureCodeSequence = Sequence([code])
    ds.ManufacturerModelName = "St Ninian's Hospital"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    result = deidentify(read_dataset(buf.getvalue()), CTX)
    out = write_dataset(result)
    assert b"ninian's" not in out.lower()
    kept = result.dataset.ProcedureCodeSequence[0]
    assert kept.CodeMeaning == "CT head protocol"  # the teaching part is kept
    assert kept.CodingSchemeDesignator == "99NINIAN"  # codes are codes, not cleaned
    assert "ManufacturerModelName" not in result.dataset  # nothing safe was left


def _subject_context(age: str, birth: str) -> bytes:
    """A coded SR whose content tree says the patient's age and birth date (TID 1007)."""
    from tests.dicom import corpus

    ds = corpus.sr_document()
    years = Dataset()
    years.CodeValue, years.CodingSchemeDesignator, years.CodeMeaning = "a", "UCUM", "year"
    measured = Dataset()
    measured.NumericValue = age
    measured.MeasurementUnitsCodeSequence = Sequence([years])
    subject_age = Dataset()
    subject_age.RelationshipType = "HAS OBS CONTEXT"
    subject_age.ValueType = "NUM"
    subject_age.ConceptNameCodeSequence = Sequence([corpus._code("121033", "DCM", "Subject Age")])
    subject_age.MeasuredValueSequence = Sequence([measured])
    born = Dataset()
    born.RelationshipType = "HAS OBS CONTEXT"
    born.ValueType = "DATE"
    born.ConceptNameCodeSequence = Sequence(
        [corpus._code("121031", "DCM", "Subject Birth Date")]
    )
    born.Date = birth
    ds.ContentSequence.extend([subject_age, born])
    return corpus.to_bytes(ds)


def test_subject_age_and_birth_date_in_an_sr_content_tree_go_as_patient_age_and_birth_date(
) -> None:
    """Patient's Age above 89 is capped and Patient's Birth Date goes; the same facts in
    an SR's subject context (TID 1007) were kept, the birth date only shifted."""
    result = deidentify(read_dataset(_subject_context("97", "19270704")), CTX)
    items = {item.ConceptNameCodeSequence[0].CodeValue: item
             for item in result.dataset.ContentSequence}
    assert float(items["121033"].MeasuredValueSequence[0].NumericValue) == 90
    assert items["121031"].Date == "19000101"
    young = deidentify(read_dataset(_subject_context("45", "19790704")), CTX)
    kept = {item.ConceptNameCodeSequence[0].CodeValue: item
            for item in young.dataset.ContentSequence}
    assert float(kept["121033"].MeasuredValueSequence[0].NumericValue) == 45


def test_a_local_coding_scheme_does_not_name_its_hospital() -> None:
    ds = pydicom.dcmread(get_testdata_files("CT_small.dcm")[0])
    scheme = Dataset()
    scheme.CodingSchemeDesignator = "99LOCAL"
    scheme.CodingSchemeName = "Kowalczyk Memorial Hospital procedure codes"
    scheme.CodingSchemeExternalID = "KOWALCZYK-MEMORIAL-2019"
    ds.CodingSchemeIdentificationSequence = Sequence([scheme])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    result = deidentify(read_dataset(buf.getvalue()), CTX)
    assert b"kowalczyk" not in write_dataset(result).lower()
    assert result.dataset.CodingSchemeIdentificationSequence[0].CodingSchemeDesignator == (
        "99LOCAL")


def test_a_name_in_a_code_string_kept_unread_goes() -> None:
    ds = pydicom.dcmread(get_testdata_files("CT_small.dcm")[0])
    _raw(ds, 0x00180015, "CS", b"St Ninian's")  # Body Part Examined (Type 3 in CT)
    _raw(ds, 0x00185100, "CS", b"DOE^JANE")  # Patient Position
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    result = deidentify(read_dataset(buf.getvalue()), CTX)
    out = write_dataset(result)
    assert b"Ninian" not in out and b"DOE^JANE" not in out
    clean = deidentify(read_dataset(Path(get_testdata_files("CT_small.dcm")[0])), CTX)
    assert clean.dataset.PatientPosition == "FFS" and "malformed" not in clean.actions
