"""A synthetic corpus for the de-identification tests, with identifiers planted everywhere.

Every planted value is recorded in :data:`MARKERS` (bytes that must not appear in any
output, anywhere: preamble, file meta, values, private blocks, overlays, pixels are
checked as one byte string). The builders cover the places PS3.15 E.1.1 warns about:
every VR that Table E.1-1 removes, sequences three levels deep, private blocks
(top level and inside standard sequences), File Meta Information, the preamble,
overlays and curves, SR content, enhanced multi-frame functional groups, and every
transfer syntax pydicom can write or its bundled files provide.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pydicom
from pydicom._dicom_dict import DicomDictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"

#: A root used only for planted UIDs, so a surviving original is easy to spot.
UID_ROOT = "1.2.826.0.1.3680043.10.999."
PLANTED_DATES = ("20190317", "19610704", "20190318")
BIRTH_DATE = "19610704"
STUDY_DATE = "20190317"

MARKERS: list[bytes] = [
    b"PHIPREAMBLE",
    b"PHISRCAE",
    b"PHIIMPLNAME",
    b"PHIDOE",
    b"PHIJOHN",
    b"PHIMRN123456",
    b"PHIOTHERID",
    b"PHIADDRESS",
    b"PHIACC777",
    b"PHISTUDYID",
    b"PHIREFDOC",
    b"PHIHOSPITAL",
    b"PHIHOSPADDR",
    b"PHISTATION",
    b"PHIOPERATOR",
    b"PHIPERFDOC",
    b"PHISERIAL",
    b"PHIAETITLE",
    b"PHIDEPT",
    b"PHIPHONE",
    b"PHITELECOM",
    b"PHICAMOWNER",
    b"PHICREATOR",
    b"PHIPRIVATE",
    b"PHINESTED1",
    b"PHINESTED2",
    b"PHINESTED3",
    b"PHIOVLDESC",
    b"PHIOVLBITS",
    b"PHICURVE",
    b"PHIOBSERVER",
    b"PHIORGNAME",
    b"PHIVERIFIER",
    b"PHIVERORG",
    b"PHISMITH",
    b"87654321",
    # inside the sequences that Clean Descriptors / Clean Structured Content keep
    b"PHIKEPT1",
    b"PHIKEPT2",
    b"PHIKEPT3",
    b"PHINAMESPACE",
    b"PHIUNIVERSAL",
    b"PHIINSTCODE",
    b"PHIREQPROC",
    b"PHISPSID",
    b"PHIISSUER",
    b"PHIPLACER",
    b"PHIFILLER",
    b"PHIORDERNS",
    b"PHITREE",
    b"PHIRESPONSIBLE",
    b"PHIOTHERSEQ",
    b"PHIREFID",
    b"PHIMOTHER",
    b"PHIRANK",
    b"PHICOUNTRY",
    b"PHICONSULT",
    b"PHIRECORD",
    b"PHIREADER",
    b"PHIREQUESTER",
    b"PHIPPSID",
    b"PHIPERFSTATION",
    b"PHILOCATION",
    b"PHISPONSOR",
    b"PHISUBJECT",
    b"PHIPROTOCOL",
    b"PHISITE",
    *(d.encode() for d in PLANTED_DATES),
    UID_ROOT.encode(),
]


def _kept_sequences() -> dict[int, str]:
    """Sequences Table E.1-1 keeps (and cleans) under Clean Descriptors, Clean Structured
    Content, Clean Graphics or Retain Patient Characteristics: tag -> keyword, read from
    the table itself so a new revision of the table grows the corpus."""
    table = Path(__file__).resolve().parents[2] / "app" / "data" / "ps3.15-table-e.1-1.json"
    rows = json.loads(table.read_text("utf-8"))
    kept: dict[int, str] = {}
    for row in rows:
        tag_text = row["tag"].strip("()").replace(",", "")
        if "X" in tag_text or "G" in tag_text:
            continue  # repeating groups and private attributes
        tag = int(tag_text, 16)
        if tag in DicomDictionary and DicomDictionary[tag][0] == "SQ" and any(
            row.get(option) in ("C", "K")
            for option in ("cleanDescOpt", "cleanStructContOpt", "rtnPatCharsOpt",
                           "cleanGraphOpt")
        ):
            kept[tag] = DicomDictionary[tag][4]
    return kept


#: tag -> keyword of every sequence the claimed options keep (E.1-1 "C" or "K").
KEPT_SEQUENCES = _kept_sequences()


def uid(n: int) -> str:
    return f"{UID_ROOT}{n}"


def _private_block(ds: Dataset, group: int, label: str) -> None:
    ds.add_new((group << 16) | 0x0010, "LO", "PHICREATOR")
    ds.add_new((group << 16) | 0x1001, "LO", f"PHIPRIVATE {label}")
    ds.add_new((group << 16) | 0x1002, "UI", uid(900))
    ds.add_new((group << 16) | 0x1003, "DA", STUDY_DATE)
    inner = Dataset()
    inner.PatientName = "PHIDOE^PHIPRIVATE"
    ds.add_new((group << 16) | 0x1004, "SQ", Sequence([inner]))


def _nested(level: int) -> Dataset:
    """An item with identifiers, holding the next level (three levels in all)."""
    item = Dataset()
    item.CodeValue = "T-D0050"
    item.CodingSchemeDesignator = "SRT"
    item.CodeMeaning = "Chest"
    item.OperatorsName = f"PHINESTED{level}^X"
    item.InstitutionName = f"PHINESTED{level} HOSPITAL"
    item.ReferencedSOPInstanceUID = uid(800 + level)
    item.AcquisitionDate = STUDY_DATE
    _private_block(item, 0x0011, f"nested {level}")
    if level < 3:
        item.AnatomicRegionModifierSequence = Sequence([_nested(level + 1)])
    return item


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = meaning
    return item


def unlisted(item: Dataset, level: int, label: str) -> Dataset:
    """Plant attributes that no allow-list group names in ``item``, and one level deeper.

    The issuer and namespace attributes of an accession or order (PS3.3 10.17 HL7v2
    Hierarchic Designator Macro) and institution codes are what a hospital's name or
    code hides in; they must not survive inside a kept sequence, at any depth.
    """
    item.InstitutionName = f"PHIKEPT{min(level, 3)} {label}"
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = f"PHINAMESPACE {label}"
    issuer.UniversalEntityID = f"PHIUNIVERSAL {label}"
    issuer.UniversalEntityIDType = "DNS"
    item.IssuerOfAccessionNumberSequence = Sequence([issuer])
    item.InstitutionCodeSequence = Sequence([_code_item("PHIINSTCODE", f"PHIINSTCODE {label}")])
    return item


def _kept_item(keyword: str) -> Dataset:
    """One item for a kept sequence: a coded concept (allowed) with unlisted attributes at
    depths 1, 2 and 3 (the item, a nested code sequence, and an issuer inside that)."""
    item = _code_item("44808001", "Conduction disorder of the heart")
    unlisted(item, 1, keyword)
    inner = unlisted(_code_item("39607008", "Lung structure"), 2, keyword)
    deepest = Dataset()
    deepest.UniversalEntityID = f"PHIKEPT3 {keyword}"
    deepest.LocalNamespaceEntityID = "PHIKEPT3"
    inner.IssuerOfPatientIDQualifiersSequence = Sequence([deepest])
    item.ConceptNameCodeSequence = Sequence([inner])
    if keyword == "RequestAttributesSequence":
        # the identifiers of the order itself (PS3.3 C.7.3.1 Request Attributes Macro)
        item.AccessionNumber = "PHIACC777"
        item.RequestedProcedureID = "PHIREQPROC"
        item.ScheduledProcedureStepID = "PHISPSID"
        item.IssuerOfPatientID = "PHIISSUER"
        item.PlacerOrderNumberImagingServiceRequest = "PHIPLACER"
        item.FillerOrderNumberImagingServiceRequest = "PHIFILLER"
        order = Dataset()
        order.LocalNamespaceEntityID = "PHIORDERNS"
        order.UniversalEntityID = "PHIORDERNS.example.org"
        order.UniversalEntityIDType = "DNS"
        item.OrderPlacerIdentifierSequence = Sequence([order])
        item.OrderFillerIdentifierSequence = Sequence([order])
        item.RequestedProcedureDescription = "CT CHEST PHIDOE"
        item.RequestedProcedureCodeSequence = Sequence(
            [unlisted(_code_item("399208008", "Chest CT"), 2, "requested")])
    return item


def plant_kept_sequences(ds: Dataset) -> None:
    """Give ``ds`` every kept sequence (those it has already are left to its builder)."""
    for tag, keyword in KEPT_SEQUENCES.items():
        if tag not in ds:
            ds.add_new(tag, "SQ", Sequence([_kept_item(keyword)]))


def plant_people_and_conditions(ds: Dataset) -> None:
    """Identifiers of the Patient, Study, Series and Clinical Trial modules that are Type
    1C/2C or condition one (C.7.1.1, C.7.1.3, C.7.2.1, C.7.3.1): the validator tests
    that they go, or stay as required, in pairs."""
    ds.ResponsiblePerson = "PHIRESPONSIBLE^A"
    ds.ResponsiblePersonRole = "PARENT"
    other = Dataset()
    other.PatientID = "PHIOTHERSEQ"
    other.IssuerOfPatientID = "PHIISSUER"
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.IssuerOfPatientID = "PHIISSUER"
    ds.IssuerOfPatientIDQualifiersSequence = Sequence([unlisted(Dataset(), 1, "issuer")])
    person = Dataset()
    person.PersonIdentificationCodeSequence = Sequence([_code_item("PHIREFID", "PHIREFID")])
    person.InstitutionName = "PHIHOSPITAL"
    ds.ReferringPhysicianIdentificationSequence = Sequence([person])
    ds.PatientBirthTime = "101500"
    ds.PatientMotherBirthName = "PHIMOTHER^M"
    ds.MilitaryRank = "PHIRANK"
    ds.CountryOfResidence = "PHICOUNTRY"
    ds.ConsultingPhysicianName = "PHICONSULT^C"
    ds.PhysiciansOfRecord = "PHIRECORD^R"
    ds.NameOfPhysiciansReadingStudy = "PHIREADER^R"
    ds.RequestingPhysician = "PHIREQUESTER^Q"
    ds.PerformedProcedureStepID = "PHIPPSID"
    ds.PerformedProcedureStepStartDate = STUDY_DATE
    ds.PerformedStationName = "PHIPERFSTATION"
    ds.PerformedLocation = "PHILOCATION"
    ds.ClinicalTrialSponsorName = "PHISPONSOR"
    ds.ClinicalTrialProtocolID = "PHIPROTOCOL 1"
    ds.ClinicalTrialProtocolName = "PHIPROTOCOL name"
    ds.ClinicalTrialSiteID = "PHISITE 1"
    ds.ClinicalTrialSiteName = "PHISITE name"
    ds.ClinicalTrialSubjectID = "PHISUBJECT 1"


def plant(ds: Dataset, *, patient: str = "PHIMRN123456", study: int = 1, series: int = 10,
          sop: int = 100) -> Dataset:
    """Put identifiers in every place the profile must clean (on top of ``ds``)."""
    ds.preamble = b"PHIPREAMBLE".ljust(128, b"\x00")
    meta = ds.file_meta if hasattr(ds, "file_meta") else FileMetaDataset()
    meta.SourceApplicationEntityTitle = "PHISRCAE"
    meta.ImplementationVersionName = "PHIIMPLNAME"
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "PHIDOE^PHIJOHN"
    ds.PatientID = patient
    ds.PatientBirthDate = BIRTH_DATE
    ds.OtherPatientIDs = "PHIOTHERID"
    ds.PatientAddress = "1 PHIADDRESS Road"
    ds.PatientSex = "F"
    ds.PatientAge = "057Y"
    ds.PatientSize = "1.68"
    ds.PatientWeight = "61"
    ds.PatientTelephoneNumbers = "PHIPHONE"
    ds.PatientTelecomInformation = "PHITELECOM"
    ds.CameraOwnerName = "PHICAMOWNER"
    ds.StudyDate = STUDY_DATE
    ds.StudyTime = "235930"
    ds.SeriesDate = STUDY_DATE
    ds.AcquisitionDateTime = "20190317235959.5+0100"
    ds.ContentDate = "20190318"
    ds.ContentTime = "000010"
    ds.AccessionNumber = "PHIACC777"
    ds.StudyID = "PHISTUDYID"
    ds.ReferringPhysicianName = "PHIREFDOC^A"
    ds.InstitutionName = "PHIHOSPITAL"
    ds.InstitutionAddress = "PHIHOSPADDR"
    ds.InstitutionalDepartmentName = "PHIDEPT"
    ds.StationName = "PHISTATION"
    ds.StationAETitle = "PHIAETITLE"
    ds.OperatorsName = "PHIOPERATOR"
    ds.PerformingPhysicianName = "PHIPERFDOC^B"
    ds.DeviceSerialNumber = "PHISERIAL"
    ds.StudyDescription = "CT CHEST PHIDOE 2019-03-17 MRN 87654321"
    ds.SeriesDescription = "AXIAL 5MM PHIHOSPITAL"
    ds.ProtocolName = "CHEST Dr Phismith"
    ds.StudyInstanceUID = uid(study)
    ds.SeriesInstanceUID = uid(series)
    ds.SOPInstanceUID = uid(sop)
    ds.FrameOfReferenceUID = uid(study + 5000)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = uid(sop + 1)
    ds.ReferencedImageSequence = Sequence([ref])
    ds.AnatomicRegionSequence = Sequence([_nested(1)])
    _private_block(ds, 0x0009, "top")
    plant_kept_sequences(ds)
    plant_people_and_conditions(ds)
    return ds


def add_overlay_and_curve(ds: Dataset) -> None:
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000022, "LO", "PHIOVLDESC")
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", b"PHIOVLBITS\x00\x00")
    ds.add_new(0x50003000, "OW", b"PHICURVE")


def teaching_values(ds: Dataset) -> None:
    ds.BodyPartExamined = "CHEST"
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = "5"
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-100, -100, 50]
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    ds.KVP = "120"
    ds.ViewPosition = "PA"
    ds.BurnedInAnnotation = "NO"


TEACHING_KEYWORDS = (
    "Modality", "SOPClassUID", "BodyPartExamined", "Rows", "Columns", "PixelSpacing",
    "SliceThickness", "ImageOrientationPatient", "ImagePositionPatient", "WindowCenter",
    "WindowWidth", "KVP", "ViewPosition", "PatientSex", "PatientAge", "PatientSize",
    "PatientWeight",
)


def _image(rows: int, cols: int, frames: int = 1) -> np.ndarray:
    grid = np.add.outer(np.arange(rows), np.arange(cols)).astype(np.uint16) * 7
    return np.stack([grid + f for f in range(frames)]) if frames > 1 else grid


def ct_image(*, patient: str = "PHIMRN123456", study: int = 1, series: int = 10, sop: int = 100,
             syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """A small CT image with every planted identifier, in ``syntax``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(ExplicitVRLittleEndian)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "CT"
    plant(ds, patient=patient, study=study, series=series, sop=sop)
    teaching_values(ds)
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    _pixels(ds, _image(64, 64))
    add_overlay_and_curve(ds)
    return _encode(ds, syntax)


def mr_image(**kwargs: int) -> Dataset:
    ds = ct_image(**kwargs)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "MR"
    ds.RepetitionTime = "500"
    ds.EchoTime = "15"
    ds.MagneticFieldStrength = "1.5"
    return ds


def _pixels(ds: Dataset, array: np.ndarray) -> None:
    ds.Rows, ds.Columns = array.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    if array.ndim == 3:
        ds.NumberOfFrames = array.shape[0]
    ds.PixelData = array.astype("<u2").tobytes()


def _encode(ds: Dataset, syntax: str) -> Dataset:
    if syntax in (RLELossless, JPEG2000Lossless):
        ds.compress(syntax)
    else:
        ds.file_meta.TransferSyntaxUID = UID(syntax)
    return ds


def enhanced_ct(*, study: int = 1, series: int = 11, sop: int = 200) -> Dataset:
    """An Enhanced CT with per-frame functional groups carrying planted date-times."""
    ds = ct_image(study=study, series=series, sop=sop)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    del ds.ImagePositionPatient
    _pixels(ds, _image(8, 8, frames=3))
    frames = []
    for index in range(3):
        content = Dataset()
        content.FrameAcquisitionDateTime = f"2019031723595{index}.25"
        content.FrameReferenceDateTime = "20190317235950"
        content.FrameAcquisitionNumber = index + 1
        position = Dataset()
        position.ImagePositionPatient = [0, 0, index * 2.5]
        item = Dataset()
        item.FrameContentSequence = Sequence([content])
        item.PlanePositionSequence = Sequence([position])
        _private_block(item, 0x0021, f"frame {index}")
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.5]
    measures.SliceThickness = "2.5"
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def sr_document(*, referenced_sop: int = 100, study: int = 1) -> Dataset:
    """A Comprehensive SR whose content tree names people, places, dates and identifiers."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(ExplicitVRLittleEndian)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "SR"
    plant(ds, study=study, series=30, sop=300)
    del ds.ReferencedImageSequence
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    verifier = Dataset()
    verifier.VerifyingObserverName = "PHIVERIFIER^C"
    verifier.VerifyingOrganization = "PHIVERORG"
    verifier.VerificationDateTime = "20190318093000"
    ds.VerifyingObserverSequence = Sequence([verifier])

    def item(value_type: str, concept: Dataset, **values: object) -> Dataset:
        node = Dataset()
        node.RelationshipType = "CONTAINS"
        node.ValueType = value_type
        node.ConceptNameCodeSequence = Sequence([concept])
        for keyword, value in values.items():
            setattr(node, keyword, value)
        return node

    observer = item("PNAME", _code("121008", "DCM", "Person Observer Name"),
                    PersonName="PHIOBSERVER^D")
    organisation = item("TEXT", _code("121009", "DCM", "Person Observer's Organization Name"),
                        TextValue="PHIORGNAME")
    # coded content only: an SR with free-text values is refused (issue 14, item 4;
    # tests/dicom/test_conformance.py builds those)
    finding = item("CODE", _code("121071", "DCM", "Finding"),
                   ConceptCodeSequence=Sequence([_code("RID3875", "RADLEX", "Spiculated")]))
    when = item("DATETIME", _code("111526", "DCM", "DateTime Started"),
                DateTime="20190317101500")
    day = item("DATE", _code("111536", "DCM", "Date"), Date=STUDY_DATE)
    reference = item("UIDREF", _code("121232", "DCM", "Source series for image processing"),
                     UID=uid(10))
    image = item("IMAGE", _code("121200", "DCM", "Illustration of ROI"))
    sop = Dataset()
    sop.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    sop.ReferencedSOPInstanceUID = uid(referenced_sop)
    image.ReferencedSOPSequence = Sequence([sop])
    container = item("CONTAINER", _code("121070", "DCM", "Findings"),
                     ContinuityOfContent="SEPARATE")
    container.ContentSequence = Sequence([finding, image, reference])
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    ds.ContinuityOfContent = "SEPARATE"
    ds.ContentSequence = Sequence([observer, organisation, when, day, container])
    _plant_tree(ds.ContentSequence, 1)
    evidence_sop = Dataset()
    evidence_sop.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    evidence_sop.ReferencedSOPInstanceUID = uid(referenced_sop)
    evidence_series = Dataset()
    evidence_series.SeriesInstanceUID = uid(10)
    evidence_series.ReferencedSOPSequence = Sequence([evidence_sop])
    evidence = Dataset()
    evidence.StudyInstanceUID = uid(study)
    evidence.ReferencedSeriesSequence = Sequence([evidence_series])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([evidence])
    return ds


def _plant_tree(items: Sequence, depth: int) -> None:
    """Unlisted attributes in every SR content item, at every depth of the tree."""
    for node in items:
        node.InstitutionName = f"PHITREE depth {depth}"
        node.AccessionNumber = "PHIACC777"
        unlisted(node, depth, f"PHITREE {depth}")
        if "ContentSequence" in node:
            _plant_tree(node.ContentSequence, depth + 1)


def ultrasound(*, declared: str | None = None) -> Dataset:
    """An ultrasound image, which may carry burned-in text."""
    ds = ct_image(study=2, series=40, sop=400)
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Modality = "US"
    del ds.BurnedInAnnotation
    if declared is not None:
        ds.BurnedInAnnotation = declared
    return ds


#: Bundled pydicom files that are valid images of the transfer syntaxes pydicom cannot
#: encode itself (JPEG baseline/extended, JPEG-LS, JPEG 2000, deflate, big endian, RLE).
BUNDLED = (
    "CT_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEG-lossy.dcm",
    "JPGExtended.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "examples_overlay.dcm",
)


def bundled(name: str, *, sop: int) -> Dataset:
    """A bundled pydicom file with identifiers planted in its header; pixels untouched."""
    ds = pydicom.dcmread(TEST_FILES / name)
    if name == "rtdose.dcm":
        # its Referenced SOP Instance UID has a component with a leading zero ("0123"),
        # which PS3.5 9.1 forbids and check_conformance refuses; repaired so the file
        # still brings an RT Dose grid to the corpus
        plan = ds[0x300C0002].value[0]  # Referenced RT Plan Sequence, item 1
        plan[0x00081155] = DataElement(0x00081155, "UI", uid(990))
    plant(ds, study=3, series=50 + sop, sop=sop)
    add_overlay_and_curve(ds)
    ds.BurnedInAnnotation = "NO"
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax == ExplicitVRBigEndian:
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    else:
        ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def synthetic_corpus() -> dict[str, bytes]:
    """File name -> Part 10 bytes: every shape the engine must handle."""
    files: dict[str, bytes] = {}
    syntaxes = {
        "implicit": ImplicitVRLittleEndian,
        "explicit": ExplicitVRLittleEndian,
        "deflated": DeflatedExplicitVRLittleEndian,
        "rle": RLELossless,
        "j2k": JPEG2000Lossless,
    }
    for index, (label, syntax) in enumerate(syntaxes.items()):
        files[f"ct-{label}.dcm"] = to_bytes(ct_image(sop=100 + index, syntax=syntax))
    files["mr.dcm"] = to_bytes(mr_image(sop=150))
    files["enhanced-ct.dcm"] = to_bytes(enhanced_ct())
    files["sr.dcm"] = to_bytes(sr_document(referenced_sop=101))  # ct-explicit
    for index, name in enumerate(BUNDLED):
        files[f"bundled-{name}"] = to_bytes(bundled(name, sop=500 + index))
    return files
