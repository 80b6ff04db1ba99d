"""Conformance checks run on every parsed object before de-identification (issue 14, item 4).

The PHI rule depends on a few things being what the standard says they are: UIDs
(they are hashed into the library's UIDs and become database keys and file names),
the pixel description (the viewer and the burned-in text review read the pixels
with it) and the SOP class (only classes the library can show or keep, and no
structured report that carries free text into the library). :func:`check_conformance`
refuses anything else with :class:`~app.errors.DicomRejected`, whose message names
the rule that failed and never a value from the object (the SOP class *name* from
the PS3.6 registry is not a value of the object and may be shown).

Values are read from the raw element bytes wherever pydicom has not converted them
yet: pydicom's conversion strips padding and spaces and logs a warning that quotes
the value, so it can neither be trusted nor allowed to run first.
"""

from __future__ import annotations

import re
import struct
from typing import Any, Final

from pydicom._dicom_dict import DicomDictionary  # the dictionary itself: a dict lookup per element
from pydicom._uid_dict import UID_dictionary  # PS3.6 Annex A registry
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from app.errors import DicomRejected

__all__ = [
    "KEPT_SOP_CLASSES",
    "OBSERVER_TEXT_CODES",
    "STATUS_FREE_TEXT_SR",
    "STATUS_INVALID_PIXELS",
    "STATUS_INVALID_UID",
    "STATUS_SOP_CLASS_NOT_KEPT",
    "check_conformance",
    "uid_text",
]

#: PS3.4 B.2.3 C-STORE failure statuses. 0xA900 ("data set does not match SOP class")
#: for a class the library does not keep, as the receiver already uses it for
#: DICOMDIRs and documents; 0xCxxx ("cannot understand") with a sub-code per rule so a
#: PACS log tells the operator which rule failed without the ErrorComment.
STATUS_SOP_CLASS_NOT_KEPT: Final = 0xA900
STATUS_INVALID_UID: Final = 0xC010
STATUS_INVALID_PIXELS: Final = 0xC020
STATUS_FREE_TEXT_SR: Final = 0xC030
_STATUS_CANNOT_UNDERSTAND: Final = 0xC000

_IMAGE: Final = "1.2.840.10008.5.1.4.1.1."

#: The storage SOP classes the library keeps (PS3.4 B.5). Images: the classes whose
#: pixels app/dicom/render.py shows (grayscale, palette, RGB and YBR, single and
#: multi-frame, every transfer syntax the receiver accepts); structured reports and
#: key object selection, accepted only with coded content (see _check_sr); the
#: softcopy presentation states a teaching overlay may come with.
KEPT_SOP_CLASSES: Final = frozenset(
    {
        # projection radiography
        _IMAGE + "1",  # Computed Radiography Image Storage
        _IMAGE + "1.1",  # Digital X-Ray Image Storage - For Presentation
        _IMAGE + "1.1.1",  # Digital X-Ray Image Storage - For Processing
        _IMAGE + "1.2",  # Digital Mammography X-Ray Image Storage - For Presentation
        _IMAGE + "1.2.1",  # Digital Mammography X-Ray Image Storage - For Processing
        _IMAGE + "1.3",  # Digital Intra-Oral X-Ray Image Storage - For Presentation
        _IMAGE + "1.3.1",  # Digital Intra-Oral X-Ray Image Storage - For Processing
        _IMAGE + "13.1.3",  # Breast Tomosynthesis Image Storage (enhanced multi-frame MG)
        # CT and MR, classic, enhanced and legacy-converted multi-frame
        _IMAGE + "2",  # CT Image Storage
        _IMAGE + "2.1",  # Enhanced CT Image Storage
        _IMAGE + "2.2",  # Legacy Converted Enhanced CT Image Storage
        _IMAGE + "4",  # MR Image Storage
        _IMAGE + "4.1",  # Enhanced MR Image Storage
        _IMAGE + "4.3",  # Enhanced MR Color Image Storage
        _IMAGE + "4.4",  # Legacy Converted Enhanced MR Image Storage
        # ultrasound
        _IMAGE + "3.1",  # Ultrasound Multi-frame Image Storage
        _IMAGE + "6.1",  # Ultrasound Image Storage
        _IMAGE + "6.2",  # Enhanced US Volume Storage
        # angiography and fluoroscopy
        _IMAGE + "12.1",  # X-Ray Angiographic Image Storage
        _IMAGE + "12.1.1",  # Enhanced XA Image Storage
        _IMAGE + "12.2",  # X-Ray Radiofluoroscopic Image Storage
        _IMAGE + "12.2.1",  # Enhanced XRF Image Storage
        # nuclear medicine and PET
        _IMAGE + "20",  # Nuclear Medicine Image Storage
        _IMAGE + "128",  # Positron Emission Tomography Image Storage
        _IMAGE + "128.1",  # Legacy Converted Enhanced PET Image Storage
        _IMAGE + "130",  # Enhanced PET Image Storage
        # RT images and dose grids: grayscale frames the renderer shows (tests/dicom/
        # test_render.py renders rtdose.dcm); RT plans and structure sets have no pixels
        # and name staff and machines in free text, so they are not kept
        _IMAGE + "481.1",  # RT Image Storage
        _IMAGE + "481.2",  # RT Dose Storage
        # secondary capture, single and multi-frame (burned-in text review applies)
        _IMAGE + "7",  # Secondary Capture Image Storage
        _IMAGE + "7.1",  # Multi-frame Single Bit Secondary Capture Image Storage
        _IMAGE + "7.2",  # Multi-frame Grayscale Byte Secondary Capture Image Storage
        _IMAGE + "7.3",  # Multi-frame Grayscale Word Secondary Capture Image Storage
        _IMAGE + "7.4",  # Multi-frame True Color Secondary Capture Image Storage
        # visible light: single frames the renderer decodes as RGB/YBR; whole-slide
        # microscopy (tiled pyramids) and video classes are not rendered, so not kept
        _IMAGE + "77.1.1",  # VL Endoscopic Image Storage
        _IMAGE + "77.1.2",  # VL Microscopic Image Storage
        _IMAGE + "77.1.3",  # VL Slide-Coordinates Microscopic Image Storage
        _IMAGE + "77.1.4",  # VL Photographic Image Storage
        _IMAGE + "77.1.5.1",  # Ophthalmic Photography 8 Bit Image Storage
        _IMAGE + "77.1.5.2",  # Ophthalmic Photography 16 Bit Image Storage
        # softcopy presentation states
        _IMAGE + "11.1",  # Grayscale Softcopy Presentation State Storage
        _IMAGE + "11.2",  # Color Softcopy Presentation State Storage
        _IMAGE + "11.3",  # Pseudo-Color Softcopy Presentation State Storage
        _IMAGE + "11.4",  # Blending Softcopy Presentation State Storage
        # structured reports and key object selection: coded content only (_check_sr)
        _IMAGE + "88.11",  # Basic Text SR Storage
        _IMAGE + "88.22",  # Enhanced SR Storage
        _IMAGE + "88.33",  # Comprehensive SR Storage
        _IMAGE + "88.34",  # Comprehensive 3D SR Storage
        _IMAGE + "88.35",  # Extensible SR Storage
        _IMAGE + "88.50",  # Mammography CAD SR Storage
        _IMAGE + "88.59",  # Key Object Selection Document Storage
        _IMAGE + "88.65",  # Chest CAD SR Storage
        _IMAGE + "88.67",  # X-Ray Radiation Dose SR Storage
    }
)

_SR_PREFIX: Final = _IMAGE + "88."
_DICOMDIR_CLASS: Final = "1.2.840.10008.1.3.10"
_ENCAPSULATED_DOCUMENT_PREFIX: Final = _IMAGE + "104."

#: PS3.5 9.1: components of digits separated by dots, no leading zero except "0" itself.
_UID: Final = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_UID_MAX: Final = 64
_UID_CHARACTERS: Final = frozenset("0123456789.")

_PIXEL_DATA: Final = 0x7FE00010
_FLOAT_PIXEL_DATA: Final = 0x7FE00008
_DOUBLE_PIXEL_DATA: Final = 0x7FE00009
_ITEM_TAG: Final = b"\xfe\xff\x00\xe0"  # (FFFE,E000), little endian (PS3.5 A.4)
#: PS3.3 C.7.6.3.1.2 and C.7.6.3.1.1: the photometric interpretations the renderer
#: shows, with the Samples per Pixel each requires.
_SAMPLES: Final = {
    "MONOCHROME1": 1,
    "MONOCHROME2": 1,
    "PALETTE COLOR": 1,
    "RGB": 3,
    "YBR_FULL": 3,
    "YBR_FULL_422": 3,
    "YBR_PARTIAL_420": 3,
    "YBR_PARTIAL_422": 3,
    "YBR_ICT": 3,
    "YBR_RCT": 3,
}
_BITS_ALLOCATED: Final = frozenset({1, 8, 16, 32, 64})
_NATIVE_SYNTAXES: Final = frozenset(
    {
        "1.2.840.10008.1.2",  # Implicit VR Little Endian
        "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
        "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
    }
)
#: MPEG and HEVC video: all frames are one stream over the fragments (PS3.5 8.2.5-8.2.8),
#: so the one-fragment-per-frame bound does not apply.
_VIDEO_SYNTAX_PREFIX: Final = "1.2.840.10008.1.2.4.10"

#: SR concept names (DCM) whose TEXT value names an observer's organisation, a device or
#: a role (TID 1002, TID 1004): the de-identifier replaces it with a dummy, so it carries
#: no report narrative into the library and does not make an SR free text. One list for
#: both, so the two cannot drift apart.
OBSERVER_TEXT_CODES: Final = frozenset(
    {"121009", "121013", "121014", "121015", "121016", "121017", "121010"}
)
_FREE_TEXT_VRS: Final = frozenset({"UT", "LT", "ST"})
_CONTENT_SEQUENCE: Final = 0x0040A730


def _reject(message: str, status: int, code: str | None = None) -> DicomRejected:
    # Without a code the status names the reason (app/errors.py: invalid-pixels, ...).
    return DicomRejected(message, status, code=code or _CODES.get(status))


_CODES: Final = {STATUS_SOP_CLASS_NOT_KEPT: "sop-class-not-kept"}


# --- raw values ------------------------------------------------------------------------------


def _raw(ds: Dataset, tag: int) -> DataElement | RawDataElement | None:
    return ds.get_item(tag)


def _text_values(elem: DataElement | RawDataElement) -> list[str] | None:
    """The element's values as strings: raw bytes split on backslash, trailing NUL padding
    removed (PS3.5 6.2: UI is padded with a single NUL); None when the bytes are not ASCII."""
    value = elem.value
    if value is None:
        return []
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return None
        text = text.rstrip("\x00")
        return text.split("\\") if text else []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    text = str(value)
    return text.split("\\") if text else []


def uid_text(ds: Dataset, tag: int) -> str:
    """A UID element's value as text without pydicom's conversion (which warns, quoting it)."""
    elem = _raw(ds, tag)
    if elem is None:
        return ""
    values = _text_values(elem)
    return "\\".join(values).strip("\x00 ") if values else ""


def _vr(elem: DataElement | RawDataElement, tag: int) -> str | None:
    vr = elem.VR
    if vr is None or vr == "UN":
        entry = DicomDictionary.get(tag)
        return str(entry[0]) if entry is not None else vr
    return str(vr)


def _unsigned(ds: Dataset, tag: int, name: str) -> int | None:
    """One US value read from its two bytes (byte order of the dataset), or None if absent."""
    elem = _raw(ds, tag)
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes | bytearray):
        if len(value) == 0:
            return None
        if len(value) != 2:
            raise _reject(f"{name} is not one unsigned 16-bit value", STATUS_INVALID_PIXELS)
        little = getattr(ds, "original_encoding", (None, True))[1] is not False
        return int(struct.unpack("<H" if little else ">H", bytes(value))[0])
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _reject(f"{name} is not one unsigned 16-bit value", STATUS_INVALID_PIXELS)


def _integer_string(ds: Dataset, tag: int, name: str) -> int | None:
    """One IS value (PS3.5 6.2), or None if absent."""
    elem = _raw(ds, tag)
    if elem is None:
        return None
    values = _text_values(elem)
    if values is None or len(values) != 1:
        raise _reject(f"{name} is not one integer", STATUS_INVALID_PIXELS)
    text = values[0].strip(" \x00")
    if not re.fullmatch(r"[+-]?[0-9]{1,12}", text):
        raise _reject(f"{name} is not one integer", STATUS_INVALID_PIXELS)
    return int(text)


def _code_string(ds: Dataset, tag: int) -> str:
    elem = _raw(ds, tag)
    if elem is None:
        return ""
    values = _text_values(elem)
    return "\\".join(values).strip(" \x00").upper() if values else ""


# --- SOP class -------------------------------------------------------------------------------


def _check_sop_class(ds: Dataset) -> str:
    sop_class = uid_text(ds, 0x00080016)
    if sop_class == _DICOMDIR_CLASS or ds.get_item(0x00041220) is not None:
        raise _reject("a DICOMDIR is a media index, not an object to store",
                      STATUS_SOP_CLASS_NOT_KEPT)
    if not sop_class:
        raise _reject("the object has no SOP Class UID", STATUS_SOP_CLASS_NOT_KEPT)
    if sop_class.startswith(_ENCAPSULATED_DOCUMENT_PREFIX):
        raise _reject("encapsulated documents cannot be de-identified",
                      STATUS_SOP_CLASS_NOT_KEPT)
    if sop_class not in KEPT_SOP_CLASSES:
        entry = UID_dictionary.get(sop_class)
        # a registered name is the standard's, not the object's; an unregistered UID is
        # a value of the object and is not quoted
        name = f"SOP class {entry[0]}" if entry is not None else "an unregistered SOP class"
        raise _reject(f"{name} is not one the library keeps", STATUS_SOP_CLASS_NOT_KEPT)
    return sop_class


# --- UIDs (PS3.5 9.1) ------------------------------------------------------------------------


def _uid_problem(values: list[str] | None, single: bool) -> str | None:
    if values is None:
        return "has characters other than digits and dots"
    if single and len(values) > 1:
        return "has more than one value"
    for value in values:
        if not value:
            return "has an empty value"
        if len(value) > _UID_MAX:
            return f"is longer than {_UID_MAX} characters"
        if not _UID.fullmatch(value):
            if not set(value) <= _UID_CHARACTERS:
                return "has characters other than digits and dots"
            if "" in value.split("."):
                return "has an empty component"
            return "has a component with a leading zero"
    return None


def _uid_name(tag: int) -> str:
    entry = DicomDictionary.get(tag)
    return str(entry[2]) if entry is not None else f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _check_uids(ds: Dataset) -> None:
    """Every UI element of the dataset, at any depth (iterative: depth is bounded by safe_read).

    Private elements are skipped: the de-identifier removes them (keeping at most a
    few numeric ones), so their values never reach the library. VM comes from the
    dictionary; retired attributes are held to the VM their last edition gave them,
    as is (0004,1510) Referenced SOP Class UID in File (VM 1), which only DICOMDIRs
    carry and those are refused before this check.
    """
    stack = [ds]
    while stack:
        item = stack.pop()
        for elem in list(item.elements()):  # raw elements stay raw (no conversion)
            tag = int(elem.tag)
            if tag >> 16 & 1 or tag >> 16 == 0x0002:
                continue
            vr = _vr(elem, tag)
            if vr == "SQ":
                try:
                    value = item[tag].value
                except Exception as exc:  # pydicom's parse errors: name the type, not a value
                    raise _reject(f"a sequence cannot be parsed ({type(exc).__name__})",
                                  _STATUS_CANNOT_UNDERSTAND) from None
                if isinstance(value, Sequence):
                    stack.extend(value)
                continue
            if vr != "UI":
                continue
            entry = DicomDictionary.get(tag)
            problem = _uid_problem(_text_values(elem), entry is not None and entry[1] == "1")
            if problem is not None:
                raise _reject(f"{_uid_name(tag)} {problem}", STATUS_INVALID_UID)


# --- pixel geometry (PS3.3 C.7.6.3, C.7.6.24) ------------------------------------------------


def _syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        elem = meta.get_item(0x00020010)
        if elem is not None:
            values = _text_values(elem)
            if values:
                return values[0].strip("\x00 ")
    return ""


def _fragments(data: bytes) -> int:
    """The number of fragments after the Basic Offset Table (PS3.5 A.4), or -1 if malformed."""
    if data[:4] != _ITEM_TAG or len(data) < 8:
        return -1
    pos = 8 + int.from_bytes(data[4:8], "little")
    count = 0
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        length = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if tag == b"\xfe\xff\xdd\xe0":  # sequence delimiter
            break
        if tag != _ITEM_TAG:
            return -1
        count += 1
        pos += 8 + length
    return count


def _check_pixels(ds: Dataset) -> None:
    present = [t for t in (_PIXEL_DATA, _FLOAT_PIXEL_DATA, _DOUBLE_PIXEL_DATA) if t in ds]
    if not present:
        return
    if len(present) > 1:
        raise _reject("the object has more than one kind of pixel data", STATUS_INVALID_PIXELS)
    tag = present[0]
    rows = _unsigned(ds, 0x00280010, "Rows")
    columns = _unsigned(ds, 0x00280011, "Columns")
    if not rows or not columns:
        raise _reject("Rows and Columns must be present and greater than zero",
                      STATUS_INVALID_PIXELS)
    allocated = _unsigned(ds, 0x00280100, "Bits Allocated")
    if allocated not in _BITS_ALLOCATED:
        raise _reject("Bits Allocated must be 1, 8, 16, 32 or 64", STATUS_INVALID_PIXELS)
    samples = _unsigned(ds, 0x00280002, "Samples per Pixel")
    photometric = _code_string(ds, 0x00280004)
    if photometric not in _SAMPLES:
        raise _reject("Photometric Interpretation is not one the viewer shows",
                      STATUS_INVALID_PIXELS)
    if samples != _SAMPLES[photometric]:
        raise _reject("Samples per Pixel does not match the Photometric Interpretation",
                      STATUS_INVALID_PIXELS)
    if tag == _PIXEL_DATA:
        stored = _unsigned(ds, 0x00280101, "Bits Stored")
        high = _unsigned(ds, 0x00280102, "High Bit")
        if stored is None or not 1 <= stored <= allocated:
            raise _reject("Bits Stored must be between 1 and Bits Allocated",
                          STATUS_INVALID_PIXELS)
        # PS3.3 C.7.6.3 (Table C.7-11c): High Bit shall be one less than Bits Stored
        if high != stored - 1:
            raise _reject("High Bit must be one less than Bits Stored", STATUS_INVALID_PIXELS)
    elif allocated != (32 if tag == _FLOAT_PIXEL_DATA else 64):
        # PS3.3 C.7.6.24: Float Pixel Data is 32-bit, Double Float Pixel Data 64-bit
        raise _reject("Bits Allocated does not match the floating point pixel data",
                      STATUS_INVALID_PIXELS)
    frames = _integer_string(ds, 0x00280008, "Number of Frames")
    if frames is not None and frames < 1:
        raise _reject("Number of Frames must be a positive integer", STATUS_INVALID_PIXELS)
    data = ds.get_item(tag).value
    if not isinstance(data, bytes | bytearray):
        raise _reject("pixel data cannot be read", STATUS_INVALID_PIXELS)
    syntax = _syntax(ds)
    # only Pixel Data is ever encapsulated; float pixel data is native in every syntax
    encapsulated = tag == _PIXEL_DATA and (
        syntax not in _NATIVE_SYNTAXES if syntax else bytes(data[:4]) == _ITEM_TAG)
    if encapsulated:
        fragments = _fragments(bytes(data))
        if fragments < 1:
            raise _reject("encapsulated pixel data has no fragment after its offset table",
                          STATUS_INVALID_PIXELS)
        if not syntax.startswith(_VIDEO_SYNTAX_PREFIX) and (frames or 1) > fragments:
            # a fragment holds at most one frame (PS3.5 A.4)
            raise _reject("Number of Frames is larger than the encapsulated fragments hold",
                          STATUS_INVALID_PIXELS)
        return
    per_pixel = samples
    if photometric == "YBR_FULL_422":
        per_pixel = 2  # native YBR_FULL_422 stores two samples per pixel (PS3.3 C.7.6.3.1.2)
    expected = (rows * columns * per_pixel * (frames or 1) * allocated + 7) // 8
    # one trailing byte pads an odd length to even (PS3.5 8.1.1)
    if len(data) != expected and not (expected % 2 and len(data) == expected + 1):
        shorter = len(data) < expected
        # Rows x Columns x Samples x Frames x Bits Allocated; short enough for ErrorComment
        raise _reject(
            f"pixel data is {'shorter' if shorter else 'longer'} than the image its header "
            "declares",
            STATUS_INVALID_PIXELS,
        )


# --- structured reports ----------------------------------------------------------------------


def _concept_code(item: Dataset) -> tuple[str, str]:
    elem = item.get_item(0x0040A043)
    if elem is None:
        return "", ""
    seq = item[0x0040A043].value
    if not seq:
        return "", ""
    return _code_string(seq[0], 0x00080100), _code_string(seq[0], 0x00080102)


def _has_text(elem: DataElement | RawDataElement) -> bool:
    value = elem.value
    if isinstance(value, bytes | bytearray):
        return bool(bytes(value).strip(b" \x00"))
    if isinstance(value, MultiValue | list | tuple):
        return any(str(v).strip() for v in value)
    return bool(str(value or "").strip(" \x00"))


def _check_sr(ds: Dataset) -> None:
    """Refuse an SR whose content tree carries free text (PS3.3 C.17.3): TEXT items with a
    value, or any UT/LT/ST value of a content item itself, at any depth of the tree (the
    attributes of other sequences inside an item, such as an issuer's Universal Entity ID,
    are not narrative; the de-identifier's allow-list removes them). Coded content
    (CODE, NUM, UIDREF, IMAGE, COMPOSITE, WAVEFORM, SCOORD, SCOORD3D, TCOORD, DATE,
    TIME, DATETIME, PNAME, CONTAINER) is kept; the de-identifier cleans it."""
    if _CONTENT_SEQUENCE not in ds:
        return
    stack: list[tuple[Dataset, bool]] = [(item, True) for item in ds[_CONTENT_SEQUENCE].value]
    while stack:
        item, is_content = stack.pop()
        dummied = False
        if is_content:
            code, scheme = _concept_code(item)
            dummied = scheme == "DCM" and code in OBSERVER_TEXT_CODES
        for elem in list(item.elements()):
            tag = int(elem.tag)
            if tag >> 16 & 1:
                continue  # private: removed by the de-identifier
            vr = _vr(elem, tag)
            if vr == "SQ":
                value: Any = item[tag].value
                if isinstance(value, Sequence):
                    stack.extend((child, tag == _CONTENT_SEQUENCE) for child in value)
                continue
            if is_content and vr in _FREE_TEXT_VRS and _has_text(elem):
                if tag == 0x0040A160 and dummied:
                    continue
                raise _reject("structured reports with free-text content are not kept",
                              STATUS_FREE_TEXT_SR)


# --- the entry point -------------------------------------------------------------------------


def check_conformance(ds: Dataset) -> None:
    """Refuse ``ds`` unless it is an object the library keeps, described as the standard says.

    Run on the parsed, not yet de-identified dataset, before anything is written, by
    :func:`app.dicom.deidentify.deidentify` (so every channel: C-STORE, upload,
    ``teachfile import-cases`` and ``teachfile deid``). Checks, in order: the SOP class
    is on :data:`KEPT_SOP_CLASSES` (0xA900 otherwise); every UID at any depth follows
    PS3.5 9.1 and the attribute's VM; the pixel description is possible and matches
    the pixel data (PS3.3 C.7.6.3); a structured report has coded content only.
    Raises :class:`DicomRejected` with a reason that quotes no value of the object.
    """
    sop_class = _check_sop_class(ds)
    _check_uids(ds)
    _check_pixels(ds)
    if sop_class.startswith(_SR_PREFIX):
        _check_sr(ds)
