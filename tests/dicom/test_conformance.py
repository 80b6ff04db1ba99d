"""Conformance checks before de-identification: one test per rule, then real files and corpora."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import config
from pydicom._uid_dict import UID_dictionary
from pydicom.data import get_testdata_files
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pynetdicom import StoragePresentationContexts

from app import PROJECT_ROOT
from app.dicom.batch import deidentify_tree
from app.dicom.conformance import (
    KEPT_SOP_CLASSES,
    STATUS_FREE_TEXT_SR,
    STATUS_INVALID_PIXELS,
    STATUS_INVALID_UID,
    STATUS_SOP_CLASS_NOT_KEPT,
    check_conformance,
)
from app.dicom.deidentify import DeidContext, deidentify
from app.dicom.safe_read import read_dataset
from app.errors import DicomRejected
from tests import dicomfiles
from tests.dicom import corpus

SECRET = b"conformance-secret"


def _refused(ds: Dataset, status: int, *words: str) -> str:
    """Assert ``ds`` is refused with ``status`` and a reason naming ``words``; return it."""
    with pytest.raises(DicomRejected) as caught:
        check_conformance(ds)
    assert caught.value.dicom_status == status, caught.value.message
    for word in words:
        assert word in caught.value.message
    return caught.value.message


def _raw(ds: Dataset, tag: int, vr: str, value: bytes) -> None:
    """Put ``value`` as undecoded bytes, as pydicom leaves an element it has not read yet."""
    ds[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


def _ct() -> Dataset:
    return dicomfiles.ct()


def test_valid_objects_pass() -> None:
    check_conformance(_ct())
    check_conformance(read_dataset(dicomfiles.to_bytes(_ct())))


# --- UIDs (PS3.5 9.1) --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1.2.840.abc", "characters other than digits and dots"),
        ("1.2.840.10008 ", "characters other than digits and dots"),  # space is not padding
        ("1." + "2" * 63, "longer than 64 characters"),
        ("1.2..840", "empty component"),
        ("1.2.", "empty component"),
        ("1.2.0840", "leading zero"),
    ],
)
def test_malformed_uid_is_refused_without_quoting_it(value: str, problem: str) -> None:
    ds = _ct()
    _raw(ds, 0x0020000D, "UI", value.encode() + b"\x00" * (len(value) % 2))
    message = _refused(ds, STATUS_INVALID_UID, "Study Instance UID", problem)
    assert value.strip() not in message


def test_uid_rules_accept_zero_components_and_nul_padding() -> None:
    ds = _ct()
    _raw(ds, 0x0020000D, "UI", b"1.2.0.30.0\x00")  # "0" is a component; one NUL pads to even
    _raw(ds, 0x0020000E, "UI", b"2.25.1234567890123456789012345678901234567890123456789012345678")
    check_conformance(ds)


def test_more_than_one_value_where_vm_is_one_is_refused() -> None:
    ds = _ct()
    with config.disable_value_validation():
        ds.StudyInstanceUID = ["1.2.3", "1.2.4"]
    _refused(ds, STATUS_INVALID_UID, "Study Instance UID", "more than one value")
    ok = _ct()
    ok.SOPClassesInStudy = ["1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"]  # VM 1-n
    check_conformance(ok)


def test_uid_deep_in_a_sequence_is_checked_and_private_ones_are_not() -> None:
    ds = _ct()
    inner = Dataset()
    _raw(inner, 0x00081155, "UI", b"1.2.03.4")
    outer = Dataset()
    outer.ReferencedSOPSequence = Sequence([inner])
    ds.ReferencedSeriesSequence = Sequence([outer])
    _refused(ds, STATUS_INVALID_UID, "Referenced SOP Instance UID", "leading zero")
    private = _ct()
    private.add_new(0x00090010, "LO", "VENDOR")
    with config.disable_value_validation():  # pydicom converts private raw elements on set
        _raw(private, 0x00091001, "UI", b"not.a.uid")  # removed by the de-identifier anyway
    check_conformance(private)


def test_invalid_uid_is_refused_through_read_and_deidentify() -> None:
    ds = _ct()
    with config.disable_value_validation():
        ds.SeriesInstanceUID = "1.2.03"
    data = dicomfiles.to_bytes(ds)
    with pytest.raises(DicomRejected, match="Series Instance UID has a component"):
        deidentify(read_dataset(data), DeidContext(secret=SECRET, source="test"))


# --- pixel geometry (PS3.3 C.7.6.3) ------------------------------------------------------------


def _with(**changes: object) -> Dataset:
    ds = _ct()
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"Rows": 0}, ("Rows and Columns",)),
        ({"Columns": None}, ("Rows and Columns",)),
        ({"BitsAllocated": 12}, ("Bits Allocated must be 1, 8, 16, 32 or 64",)),
        ({"BitsStored": 17}, ("Bits Stored must be between 1 and Bits Allocated",)),
        ({"BitsStored": 0, "HighBit": 0}, ("Bits Stored must be between",)),
        ({"HighBit": 16}, ("High Bit must be one less than Bits Stored",)),
        ({"SamplesPerPixel": 3}, ("Samples per Pixel does not match",)),
        ({"PhotometricInterpretation": "CMYK"}, ("Photometric Interpretation",)),
        ({"NumberOfFrames": 0}, ("Number of Frames must be a positive integer",)),
    ],
)
def test_impossible_pixel_description_is_refused(
    changes: dict[str, object], words: tuple[str, ...]
) -> None:
    _refused(_with(**changes), STATUS_INVALID_PIXELS, *words)


def test_number_of_frames_must_be_an_integer() -> None:
    ds = _ct()
    _raw(ds, 0x00280008, "IS", b"2.5 ")
    _refused(ds, STATUS_INVALID_PIXELS, "Number of Frames is not one integer")


@pytest.mark.parametrize(
    ("extra", "word"), [(2, "longer"), (-2, "shorter"), (1, "longer")]
)
def test_native_pixel_data_length_must_match_the_description(extra: int, word: str) -> None:
    ds = _ct()
    pixels = bytes(ds.PixelData)
    ds.PixelData = pixels + b"\x00" * extra if extra > 0 else pixels[:extra]
    _refused(ds, STATUS_INVALID_PIXELS, f"pixel data is {word}")


def _eight_bit(rows: int, columns: int, frames: int = 1, bits: int = 8) -> Dataset:
    ds = _ct()
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    if frames > 1:
        ds.NumberOfFrames = frames
    return ds


def test_one_padding_byte_and_single_bit_pixels_are_accepted() -> None:
    odd = _eight_bit(3, 3)
    odd.PixelData = bytes(10)  # 9 bytes of pixels + the padding byte to even length
    check_conformance(odd)
    odd.PixelData = bytes(12)
    _refused(odd, STATUS_INVALID_PIXELS, "longer")
    bits = _eight_bit(5, 5, frames=2, bits=1)
    bits.PixelData = bytes(8)  # 50 bits round up to 7 bytes, padded to 8
    check_conformance(bits)


def test_encapsulated_pixel_data_needs_a_fragment_per_frame() -> None:
    jpeg = dicomfiles.load("JPEG2000.dcm")
    check_conformance(jpeg)
    empty = copy.deepcopy(jpeg)
    empty.PixelData = b"\xfe\xff\x00\xe0\x00\x00\x00\x00"  # an offset table and nothing else
    _refused(empty, STATUS_INVALID_PIXELS, "no fragment after its offset table")
    frames = copy.deepcopy(jpeg)
    frames.NumberOfFrames = 2
    _refused(frames, STATUS_INVALID_PIXELS, "larger than the encapsulated fragments hold")
    two = copy.deepcopy(frames)
    fragment = bytes(jpeg.PixelData)[16:]  # JPEG2000.dcm: empty offset table, one fragment
    two.PixelData = encapsulate([fragment, fragment])
    check_conformance(two)


def test_float_pixel_data_must_be_32_bit() -> None:
    ds = _ct()
    del ds.PixelData, ds.BitsStored, ds.HighBit, ds.PixelRepresentation
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.zeros((128, 128), "<f4").tobytes()
    check_conformance(ds)
    ds.BitsAllocated = 16
    _refused(ds, STATUS_INVALID_PIXELS, "floating point")


# --- SOP classes -------------------------------------------------------------------------------


def test_sop_class_not_kept_is_refused_by_name() -> None:
    plan = dicomfiles.load("rtplan.dcm")
    message = _refused(plan, STATUS_SOP_CLASS_NOT_KEPT)
    assert message == "SOP class RT Plan Storage is not one the library keeps"
    odd = _ct()
    odd.SOPClassUID = "1.2.826.0.1.3680043.2.1143.999"
    message = _refused(odd, STATUS_SOP_CLASS_NOT_KEPT, "an unregistered SOP class")
    assert "1143" not in message
    document = _ct()
    document.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    _refused(document, STATUS_SOP_CLASS_NOT_KEPT, "encapsulated documents")


def test_every_kept_class_is_a_registered_storage_class_the_receiver_offers() -> None:
    from app.dicom import receiver

    ae, _ = receiver.build_ae("TEACHFILE", hooks=None)  # type: ignore[arg-type]
    offered = {str(c.abstract_syntax) for c in ae.supported_contexts}
    for uid in KEPT_SOP_CLASSES:
        name, kind = UID_dictionary[uid][0], UID_dictionary[uid][1]
        assert kind == "SOP Class" and "Storage" in name, uid
        assert uid in offered, name
    assert len(offered) >= len({c.abstract_syntax for c in StoragePresentationContexts})


# --- structured reports ------------------------------------------------------------------------


def _text_item(value: str, code: tuple[str, str, str] = ("121071", "DCM", "Finding")) -> Dataset:
    node = Dataset()
    node.RelationshipType = "CONTAINS"
    node.ValueType = "TEXT"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = code
    node.ConceptNameCodeSequence = Sequence([concept])
    node.TextValue = value
    return node


def test_sr_with_coded_content_only_is_accepted() -> None:
    sr = corpus.sr_document()
    check_conformance(sr)  # its TEXT item names the observer's organisation: dummied later
    container = sr.ContentSequence[4]
    container.ContentSequence.append(_text_item(""))  # an empty TEXT carries nothing
    check_conformance(sr)


def test_sr_with_free_text_at_any_depth_is_refused() -> None:
    sr = corpus.sr_document()
    sr.ContentSequence.append(_text_item("Report dictated by the registrar"))
    _refused(sr, STATUS_FREE_TEXT_SR, "structured reports with free-text content are not kept")
    deep = corpus.sr_document()
    findings = deep.ContentSequence[4].ContentSequence
    findings[1].ContentSequence = Sequence([_text_item("see the prior report")])  # level 3
    _refused(deep, STATUS_FREE_TEXT_SR, "free-text")
    other = corpus.sr_document()
    note = other.ContentSequence[4].ContentSequence[0]
    note[0x00700084] = DataElement(0x00700084, "PN", "")  # not text: fine
    note.add_new(0x00284000, "LT", "narrative in a long-text field")  # Image Presentation Comments
    _refused(other, STATUS_FREE_TEXT_SR, "free-text")


def test_sr_observer_text_outside_dcm_is_not_exempt() -> None:
    sr = corpus.sr_document()
    sr.ContentSequence.append(_text_item("Some Hospital", ("121009", "99LOCAL", "Org")))
    _refused(sr, STATUS_FREE_TEXT_SR)


# --- real files and every corpus ---------------------------------------------------------------

#: pydicom's bundled files that check_conformance refuses, and why. Each is checked
#: against the standard: the rule fires because the file breaks it.
REFUSED_REAL_FILES = {
    # 128 bytes of padding after 64 x 64 x 16-bit pixels (PS3.5 8.1.1 allows one byte)
    "MR_small_padded.dcm": "pixel data is longer",
    # Referenced SOP Instance UID "...9.0123..." has a leading zero (PS3.5 9.1)
    **{name: "has a component with a leading zero" for name in (
        "rtdose.dcm", "rtdose_1frame.dcm", "rtdose_expb.dcm", "rtdose_expb_1frame.dcm",
        "rtdose_rle.dcm", "rtdose_rle_1frame.dcm")},
    # Basic Text / Comprehensive SR with TEXT findings
    "reportsi.dcm": "free-text",
    "reportsi_with_empty_number_tags.dcm": "free-text",
    "test-SR.dcm": "free-text",
    "liver_1frame.dcm": "SOP class Segmentation Storage is not one",
    "liver_expb_1frame.dcm": "SOP class Segmentation Storage is not one",
    "rtplan.dcm": "SOP class RT Plan Storage is not one",
    "waveform_ecg.dcm": "SOP class 12-lead ECG Waveform Storage is not one",
    # not objects at all: no SOP Class UID in the dataset
    **{name: "no SOP Class UID" for name in (
        "UN_sequence.dcm", "empty_charset_LEI.dcm", "nested_priv_SQ.dcm",
        "no_meta_group_length.dcm", "priv_SQ.dcm")},
}


def _real_files() -> list[Path]:
    return sorted(Path(p) for p in get_testdata_files() if Path(p).is_file())


def test_pydicom_real_files_are_refused_only_where_they_break_the_standard() -> None:
    refused: dict[str, str] = {}
    accepted = 0
    files = _real_files()
    for path in files:
        try:
            ds = read_dataset(path)
        except DicomRejected:
            continue  # the structural check refuses it before conformance is asked
        if "DICOMDIR" in path.name:
            with pytest.raises(DicomRejected, match="DICOMDIR"):
                check_conformance(ds)
            continue
        try:
            check_conformance(ds)
            accepted += 1
        except DicomRejected as err:
            refused[path.name] = err.message
    # a newly refused real file must be looked at against the standard and listed
    present = {path.name for path in files}
    assert sorted(refused) == sorted(set(REFUSED_REAL_FILES) & present), refused
    for name, reason in refused.items():
        assert REFUSED_REAL_FILES[name] in reason, (name, reason)
    assert accepted >= 120  # CT, MR, US, CR, SC and RT Dose files of many vendors


def test_synthetic_corpus_and_shipped_cases_pass() -> None:
    for data in corpus.synthetic_corpus().values():
        check_conformance(read_dataset(data))
    shipped = sorted((PROJECT_ROOT / "cases").rglob("*.dcm"))
    assert len(shipped) > 50
    for path in shipped:
        check_conformance(read_dataset(path))


def test_deid_reports_the_reason_and_writes_nothing_for_refused_objects(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    bad: dict[str, Callable[[Dataset], None]] = {
        "bits.dcm": lambda ds: setattr(ds, "BitsStored", 20),
        "class.dcm": lambda ds: setattr(ds, "SOPClassUID", "1.2.840.10008.5.1.4.1.1.481.5"),
    }
    for name, spoil in bad.items():
        ds = dicomfiles.ct(SOPInstanceUID=pydicom.uid.generate_uid())
        spoil(ds)
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        (src / name).write_bytes(dicomfiles.to_bytes(ds))
    (src / "good.dcm").write_bytes(dicomfiles.to_bytes(dicomfiles.ct()))
    summary = deidentify_tree(src, tmp_path / "out", secret=SECRET, source="cli", workers=1)
    assert (summary.written, summary.refused) == (1, 2)
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 1
    report = dict(line.split("\t")[1:] for line in summary.report)
    assert report["bits.dcm"] == "Bits Stored must be between 1 and Bits Allocated"
    assert report["class.dcm"] == "SOP class RT Plan Storage is not one the library keeps"
