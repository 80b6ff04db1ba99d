"""De-identification of DICOM objects: PS3.15 Annex E, Basic Application Confidentiality Profile.

Every object that enters Teachfile passes through :func:`deidentify`, and only its
output is ever written (the PHI rule, DESIGN.md). The profile and its options are
described in :mod:`app.dicom.profile`; this module walks a dataset and applies them:

* the allow-list (:data:`app.dicom.profile.ALLOWED`): an attribute is kept only
  when it is known to be safe for teaching, in every sequence item at any depth;
  anything else is removed, or dummied (Type 1/1C) or emptied (Type 2/2C) where the
  object's IOD requires it at that path (:func:`app.dicom.profile.iod_types`), so the
  output stays valid (proved by dciodvfy in tests/dicom/test_dciodvfy.py);
* Table E.1-1 actions on top of what is kept or required (E.1.1);
* all private elements removed, in items too, also when an implicit VR file
  makes them read as UN (E.3.10, unless ``keep_safe_private``);
* overlays (60xx) and curves (50xx) removed, digital signatures, group lengths
  and the original File Meta Information dropped; the preamble zeroed;
* every UID that is not a class UID (registered in PS3.6 Annex A, or in a class
  UID attribute) replaced by ``2.25.`` + a keyed hash, so re-sends and references
  agree (E.3.9 note on consistent replacement);
* one date offset per pseudonymous patient (E.3.6, Retain Longitudinal Temporal
  Information with Modified Dates), whole days, so times and midnight crossings
  stay consistent;
* the output records what was done (PS3.3 C.7.1.1: Patient Identity Removed,
  De-identification Method Code Sequence with CID 7050 codes, and
  Longitudinal Temporal Information Modified).

The dataset is modified in place (raw element values that need no change are
never decoded, which keeps the walk cheap) and returned in the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pydicom
from pydicom._dicom_dict import DicomDictionary  # the dictionary itself: a dict lookup per element
from pydicom._uid_dict import UID_dictionary  # PS3.6 Annex A registry
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset as write_file_dataset
from pydicom.filewriter import write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from app.dicom.conformance import OBSERVER_TEXT_CODES, check_conformance
from app.dicom.profile import (
    ACTIONS,
    ALLOWED,
    CONDITIONED,
    METHOD_TEXT,
    NESTED_ONLY,
    Action,
    TypeNode,
    iod_types,
)
from app.dicom.safe_read import MAX_BYTES, MAX_DEPTH, read_dataset
from app.errors import DicomRejected

__all__ = [
    "MAX_BYTES",
    "BurnedInTextSuspected",
    "DeidContext",
    "DeidResult",
    "blackout",
    "deidentify",
    "read_dataset",
    "write_dataset",
]

#: Teachfile's Implementation Class UID (PS3.7 D.3.3.2), derived once from its name.
IMPLEMENTATION_CLASS_UID: Final = "2.25.200906405848357385542457264373716052817"
IMPLEMENTATION_VERSION_NAME: Final = "TEACHFILE_1"
DUMMY_TEXT: Final = "ANONYMIZED"

_STATUS_CANNOT_UNDERSTAND = 0xC000
_STATUS_NOT_SOP_CLASS = 0xA900

#: Attributes holding class UIDs (SOP classes, transfer syntaxes, coding schemes,
#: mapping resources): identify no patient, kept as they are.
CLASS_UID_TAGS: Final = frozenset(
    {
        0x00020002,  # Media Storage SOP Class UID
        0x00020010,  # Transfer Syntax UID
        0x00020012,  # Implementation Class UID
        0x00041510,  # Referenced SOP Class UID in File
        0x00041512,  # Referenced Transfer Syntax UID in File
        0x00080016,  # SOP Class UID
        0x0008001A,  # Related General SOP Class UID
        0x0008001B,  # Original Specialized SOP Class UID
        0x00080062,  # SOP Classes in Study
        0x0008010C,  # Coding Scheme UID
        0x00080118,  # Mapping Resource UID
        0x00081150,  # Referenced SOP Class UID
    }
)

#: Options claimed, as CID 7050 codes (PS3.16), written to De-identification Method
#: Code Sequence (0012,0064).
CID_7050: Final = {
    "113100": "Basic Application Confidentiality Profile",
    "113101": "Clean Pixel Data Option",
    "113103": "Clean Graphics Option",
    "113104": "Clean Structured Content Option",
    "113105": "Clean Descriptors Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
    "113111": "Retain Safe Private Option",
}
_CLAIMED = ("113100", "113103", "113104", "113105", "113107", "113108")


#: SR concepts (DCM, TID 1007 Subject Context, Patient) that are the patient's birth date
#: and age in a content tree: the first goes like Patient's Birth Date, the second is
#: capped like Patient's Age.
SUBJECT_BIRTH_DATE: Final = "121031"
SUBJECT_AGE: Final = "121033"
#: UCUM units of a Subject Age (CID 7456), per year.
_AGE_UNITS_PER_YEAR: Final = {"a": 1, "mo": 12, "wk": 52, "d": 365}

#: Modalities where burned-in text is the rule rather than the exception.
BURNED_IN_MODALITIES: Final = frozenset(
    {"US", "IVUS", "ES", "XC", "GM", "SM", "OT", "DOC", "OP", "OPM", "VA", "SC", "BDUS"}
)
#: SOP Class UID prefixes of objects that are images of screens or cameras:
#: secondary capture (PS3.4 B.5, ...7) and visible light (...77).
_BURNED_IN_CLASS_PREFIXES: Final = ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.77.")

#: (creator, group, element offset) of private attributes known to be safe,
#: kept only with ``keep_safe_private`` and only for numeric VRs (PS3.15 E.3.10).
SAFE_PRIVATE: Final = frozenset(
    {
        ("SIEMENS MR HEADER", 0x0019, 0x0C),  # diffusion b-value
        ("GEMS_PARM_01", 0x0043, 0x39),  # diffusion b-value (slop_int_6..9)
        ("PHILIPS IMAGING DD 001", 0x2001, 0x03),  # diffusion b-factor
    }
)
_NUMERIC_VRS: Final = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "DS", "IS", "SV", "UV"})
_TEXT_VRS: Final = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN", "CS", "AE", "UR"})
_LONG_TEXT_VRS: Final = frozenset({"ST", "LT", "UT", "UC"})
#: Allowed text VRs cleaned of the object's identifiers when no rule says otherwise.
_FREE_TEXT_VRS: Final = frozenset({"SH", "LO", "UC"})
#: The parts of a coded concept that name it in its scheme (Code Sequence Macro, PS3.3
#: 8.8): codes such as SNOMED CT's are long numbers, which cleaning would take for ids.
_CODE_PARTS: Final = frozenset(
    {0x00080100, 0x00080102, 0x00080103, 0x00080112, 0x00080119}
)
#: What a value kept unread may consist of (PS3.5 Table 6.2-1; "\\" separates values,
#: ":" is the ACR-NEMA time separator), by VR and, for enumerated values, by tag.
_FORMS: Final[dict[str | int, re.Pattern[str]]] = {
    "DS": re.compile(r"[0-9+\-eE. \\]*"),
    "IS": re.compile(r"[0-9+\- \\]*"),
    "TM": re.compile(r"[0-9.: \\]*"),
    "AS": re.compile(r"(?:[0-9]{3}[DWMY])?"),
    # code strings: capitals, digits, space and underscore, so "Smith^John" or "St
    # Ninian's" cannot hide in one (a capitalised word still can: PS3.5 allows it)
    "CS": re.compile(r"[A-Z0-9 _\\]*"),
    0x00100040: re.compile(r"[MFO]?"),  # Patient's Sex (C.7.1.1)
}
_BYTE_FORMS: Final = {
    form: re.compile(form.pattern.encode("ascii")) for form in _FORMS.values()
}
_MAX_LENGTH: Final = {"SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "CS": 16, "AE": 16, "PN": 64}
_CHARSET_CODECS: Final = {
    "": "ascii",
    "ISO_IR 6": "ascii",
    "ISO_IR 100": "latin_1",
    "ISO_IR 101": "iso8859_2",
    "ISO_IR 109": "iso8859_3",
    "ISO_IR 110": "iso8859_4",
    "ISO_IR 144": "iso8859_5",
    "ISO_IR 127": "iso8859_6",
    "ISO_IR 126": "iso8859_7",
    "ISO_IR 138": "iso8859_8",
    "ISO_IR 148": "iso8859_9",
    "ISO_IR 203": "iso8859_15",
    "ISO_IR 13": "shift_jis",
    "ISO_IR 166": "iso8859_11",
    "ISO_IR 192": "utf_8",
    "GB18030": "gb18030",
    "GBK": "gbk",
}


#: Where a text holds what looks like an identifier: ``(start, end)`` spans.
IdentifierFinder = Callable[[str], Iterable[tuple[int, int]]]


@dataclass(frozen=True)
class DeidContext:
    """Who is de-identifying what: the keys of every pseudonym and replacement UID.

    ``secret`` keys the UID hashes, pseudonyms and default date offsets; ``source``
    (an institution key or AE title) scopes pseudonyms, so the same Patient ID at two
    hospitals gives two patients. ``date_offset_days`` maps a pseudonym to its day
    offset (the ingest service keeps it in the database); without it the offset is
    derived from ``HMAC(secret, pseudonym)`` in -3650..-365 days, which every worker
    process computes alike. ``find_identifiers`` is the library's identifier scan
    (the one the gate on reader-visible text uses): descriptors that are kept, which
    readers see in the viewer, lose what it finds too, so a name or a hospital the
    object does not list elsewhere goes. It is given by the caller because an adapter
    imports no other adapter.
    """

    secret: bytes
    source: str
    date_offset_days: Callable[[str], int] | None = None
    keep_safe_private: bool = False
    find_identifiers: IdentifierFinder | None = None


@dataclass(frozen=True)
class DeidResult:
    """A de-identified dataset with fresh File Meta Information, and what was done to it."""

    dataset: Dataset
    patient_pseudonym: str
    date_offset_days: int
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    actions: dict[str, int] = field(default_factory=dict)


class BurnedInTextSuspected(DicomRejected):
    """The object may show identifying text in its pixels (PS3.15 E.3.1 is not claimed).

    ``result`` holds the object with its header fully de-identified and its pixels
    untouched, so the ingest service may hold it in an admin-only quarantine until
    :func:`blackout` cleans it, instead of refusing it.
    """

    def __init__(self, message: str, result: DeidResult) -> None:
        super().__init__(message, _STATUS_CANNOT_UNDERSTAND)
        self.result = result


# --- keyed replacements ----------------------------------------------------------------------


def _digest(secret: bytes, *parts: str) -> bytes:
    return hmac.new(secret, "\x00".join(parts).encode("utf-8", "surrogateescape"),
                    hashlib.sha256).digest()


def _code(secret: bytes, prefix: str, kind: str, *parts: str, length: int) -> str:
    text = base64.b32encode(_digest(secret, kind, *parts)).decode("ascii")
    return prefix + text[: length - len(prefix)]


@functools.lru_cache(maxsize=1 << 16)
def replace_uid(secret: bytes, uid: str) -> str:
    """Return ``2.25.`` + the first 128 bits of HMAC-SHA256(secret, uid) as a decimal (PS3.5 B.2).

    UIDs registered in PS3.6 Annex A (SOP classes, transfer syntaxes, coding schemes,
    well-known frames of reference) identify nobody and are returned unchanged.
    """
    if not uid or uid in UID_dictionary:
        return uid
    number = int.from_bytes(_digest(secret, "uid", uid)[:16], "big")
    return f"2.25.{number}"


def patient_pseudonym(secret: bytes, source: str, patient_id: str) -> str:
    """The pseudonymous Patient ID for ``(source, patient_id)``: stable, 16 characters."""
    return _code(secret, "TF", "patient", source, patient_id, length=16)


def default_date_offset(secret: bytes, pseudonym: str) -> int:
    """A deterministic offset in -3650..-365 days for a pseudonymous patient."""
    value = int.from_bytes(_digest(secret, "date-offset", pseudonym)[:8], "big")
    return -365 - value % (3650 - 365 + 1)


# --- dates -----------------------------------------------------------------------------------

_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")


def shift_date(value: str, days: int) -> str | None:
    """Shift one DA value (``YYYYMMDD``, or the ACR-NEMA ``YYYY.MM.DD``); None if not a date."""
    text = value.strip().replace(".", "") if len(value.strip()) == 10 else value.strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        return (day + dt.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None


def shift_datetime(value: str, days: int) -> str | None:
    """Shift one DT value by whole days, keeping its precision and UTC offset (PS3.5 6.2)."""
    match = _DT.match(value.strip())
    if match is None:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    try:
        moved = dt.date(int(year), int(month or 1), int(day or 1)) + dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    out = f"{moved.year:04d}"
    if month:
        out += f"{moved.month:02d}"
    if day:
        out += f"{moved.day:02d}"
    return out + "".join(g for g in match.groups()[3:] if g)


def _age(birth: str, on: str) -> str | None:
    try:
        born = dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
        seen = dt.date(int(on[:4]), int(on[4:6]), int(on[6:8]))
    except (ValueError, IndexError):
        return None
    days = (seen - born).days
    if days < 0:
        return None
    years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    if years >= 1:
        return f"{min(years, 999):03d}Y"
    if days >= 31:
        return f"{days // 30:03d}M"
    return f"{days:03d}D"


# --- text cleaning (Clean Descriptors, PS3.15 E.3.5) -----------------------------------------

_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_CLEAN_PATTERNS: Final = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\S+@\S+",  # e-mail addresses
        r"\b\d+(?:\.\d+){2,}\b",  # UIDs and dotted numbers
        r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",  # 2024-01-31
        r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b",  # 31/01/2024
        r"\b\d{1,2}(?:st|nd|rd|th)?[\s-]*" + _MONTHS + r"[\s,-]*\d{2,4}\b",  # 31 Jan 2024
        r"\b" + _MONTHS + r"\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{2,4}\b",  # January 31, 2024
        r"\b\d{1,2}:\d{2}(?::\d{2})?\b",  # times
        r"\+?\d[\d ()-]{7,}\d",  # phone numbers, spaced identifiers
        r"\b\d{5,}\b",  # long numbers: record, accession, study numbers
        r"\b(?=[a-z0-9]*\d{4})(?=[0-9]*[a-z])[a-z0-9]{5,}\b",  # mixed ids with 4+ digits
        r"[\w'-]+\^[\w'^ -]*",  # DICOM person names (FAMILY^GIVEN)
    )
]
_TITLED_NAME: Final = re.compile(
    r"\b(?i:dr|prof|mr|mrs|ms|miss|mx|sir|nurse|tech|rt|md)\b\.?\s*[A-Z][A-Za-z'-]+"
    r"(?:\s+[A-Z][A-Za-z'-]+)?"
)
_SPACES: Final = re.compile(r"\s{2,}")
_EDGE: Final = " -_,;:/()[]#."


def clean_text(text: str, identifiers: re.Pattern[str] | None,
               finder: IdentifierFinder | None = None) -> str:
    """Remove names, dates, times, UIDs and identifier-like numbers from a descriptor.

    ``identifiers`` matches the identifying values found elsewhere in the same object
    (patient name parts, IDs, institution and staff names); ``finder`` gives the spans
    an identifier scan finds (:attr:`DeidContext.find_identifiers`). What is left is
    returned, stripped; an empty result means nothing safe remained.
    """
    if finder is not None:
        for start, end in sorted(finder(text), reverse=True):
            text = text[:start] + " " + text[end:]
    if identifiers is not None:
        text = identifiers.sub(" ", text)
    text = _TITLED_NAME.sub(" ", text)
    for pattern in _CLEAN_PATTERNS:
        text = pattern.sub(" ", text)
    return _SPACES.sub(" ", text).strip(_EDGE)


#: Attributes whose values are collected as identifiers before descriptors are cleaned.
_IDENTIFYING_TAGS: Final = frozenset(
    {
        tag
        for tag, action in ACTIONS.items()
        if action in (Action.REMOVE, Action.EMPTY, Action.DUMMY)
        and tag in DicomDictionary
        and DicomDictionary[tag][0] in ("PN", "LO", "SH")
    }
    | {0x00100010, 0x00100020, 0x00080050, 0x00200010, 0x00101000, 0x00101001}
)


@functools.lru_cache(maxsize=256)
def _identifier_pattern(words: frozenset[str]) -> re.Pattern[str]:
    """One pattern for an object's identifying words; the objects of a series share it."""
    ordered = sorted(words, key=len, reverse=True)
    return re.compile(
        r"(?<!\w)(?:" + "|".join(re.escape(w) for w in ordered) + r")(?!\w)", re.IGNORECASE
    )


#: clean_text without a finder, for values that repeat from object to object (a model
#: name, a kernel, a code's meaning): pure, so its results can be kept.
_clean_known = functools.lru_cache(maxsize=8192)(clean_text)


# --- the walk --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str | None:
    entry = DicomDictionary.get(tag)
    if entry is None:
        return None
    return str(entry[0]).split(" or ")[0]


def _dummy(vr: str) -> Any:
    if vr in _TEXT_VRS:
        return DUMMY_TEXT
    if vr in ("DS", "IS"):
        return "0"
    if vr in ("US", "SS", "UL", "SL", "SV", "UV", "AT"):
        return 0
    if vr in ("FL", "FD"):
        return 0.0
    if vr == "DA":
        return "19000101"
    if vr == "DT":
        return "19000101000000"
    if vr == "TM":
        return "000000"
    if vr == "AS":
        return "000D"
    if vr == "SQ":
        return []
    return b"\x00\x00"


class _Walker:
    """De-identifies one dataset; holds the per-object keys and counters."""

    def __init__(self, ctx: DeidContext, ds: Dataset, offset: int, pseudonym: str) -> None:
        self.ctx = ctx
        self.secret = ctx.secret
        self.offset = offset
        self.pseudonym = pseudonym
        self.counts: dict[str, int] = {}
        self.root = ds
        # the IOD's Type tree (profile.iod_types); ``node`` is the level being walked
        self.node: TypeNode = iod_types(_str_of(ds, 0x00080016))
        self._identifiers: re.Pattern[str] | None = None
        self._identifiers_ready = False
        self.codec = self._codec(ds)
        # collected before the walk removes them; compiled only if a descriptor needs cleaning
        self._words = self._identifying_words(ds)

    @staticmethod
    def _codec(ds: Dataset) -> str | None:
        elem = ds.get_item(0x00080005)
        if elem is None:
            return "ascii"
        raw = elem.value
        if isinstance(raw, bytes):
            terms = [t.strip() for t in raw.decode("ascii", "replace").split("\\")]
        elif isinstance(raw, str):
            terms = [raw.strip()]
        else:
            terms = [str(t).strip() for t in raw or []]
        if len(terms) != 1:
            return None  # ISO 2022 code extensions: text is removed rather than cleaned
        return _CHARSET_CODECS.get(terms[0])

    def count(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1

    # -- values

    def text(self, elem: DataElement | RawDataElement, codec: str | None = "ascii") -> str | None:
        """The element's value as text: raw bytes decoded without pydicom's validation."""
        value = elem.value
        if value is None:
            return ""
        if isinstance(value, bytes):
            if codec is None:
                return None
            return value.decode(codec, "replace").rstrip("\x00 ")
        if isinstance(value, MultiValue | list | tuple):
            return "\\".join(str(v) for v in value)
        return str(value)

    def _identifying_words(self, ds: Dataset) -> set[str]:
        words: set[str] = set()
        for tag in _IDENTIFYING_TAGS.intersection(ds.keys()):
            text = self.text(ds.get_item(tag), self.codec or "latin_1") or ""
            if text.strip():
                words.add(text.strip())
            words.update(w for w in re.split(r"[\s^\\,=/]+", text) if len(w) >= 3)
        return words

    def identifiers(self) -> re.Pattern[str] | None:
        if not self._identifiers_ready:
            self._identifiers_ready = True
            if self._words:
                self._identifiers = _identifier_pattern(frozenset(self._words))
        return self._identifiers

    # -- actions

    def set(self, ds: Dataset, tag: int, vr: str, value: Any) -> None:
        ds[tag] = DataElement(tag, vr, value)

    def empty_or_remove(self, ds: Dataset, tag: int, vr: str, depth: int = 0) -> None:
        """Remove ``tag``, or keep it as the IOD requires at this path (PS3.3 7.4).

        Type 1/1C: a dummy value (a sequence keeps its items, walked by the same rules);
        Type 2/2C: present and empty; otherwise, and for a conditional attribute whose
        condition goes with the profile (:data:`CONDITIONED`), removed.
        """
        entry = self.node.get(tag)
        kind = entry[0] if entry is not None and tag not in CONDITIONED else 0
        if kind == 1:
            if vr == "SQ":
                self.recurse(ds, tag, depth, entry[1] if entry else None)
                return
            self.dummy(ds, tag, vr, ds.get_item(tag))
        elif kind == 2:
            self.set(ds, tag, vr, [] if vr == "SQ" else None)
            self.count("emptied")
        else:
            del ds[tag]
            self.count("removed")

    def map_uids(self, ds: Dataset, tag: int, elem: DataElement | RawDataElement) -> None:
        text = self.text(elem)
        if not text:
            return
        values = [v.strip("\x00 ") for v in text.split("\\")]
        new = [replace_uid(self.secret, v) for v in values]
        if new != values:
            self.set(ds, tag, "UI", new if len(new) > 1 else new[0])
            self.count("uid")

    def check_form(self, ds: Dataset, tag: int, vr: str,
                   elem: DataElement | RawDataElement) -> None:
        """Remove (or dummy, or empty) a kept value that is not what its VR allows (PS3.5 6.2).

        A value that is kept without being read must be unable to carry text: numbers,
        times and ages are checked character by character, Patient's Sex against its
        enumerated values; anything else in them (a name typed into a number) goes.
        """
        form = _FORMS.get(tag) or _FORMS.get(vr)
        if form is None:
            return
        value = elem.value
        if isinstance(value, bytes):  # as read: checked without decoding (bench/deid.py)
            if _BYTE_FORMS[form].fullmatch(value.strip(b"\x00 ")):
                return
        else:
            text = self.text(elem, "latin_1")
            if text is None or form.fullmatch(text.strip("\x00 ")):
                return
        self.empty_or_remove(ds, tag, vr)
        self.count("malformed")

    def shift(self, ds: Dataset, tag: int, vr: str, elem: DataElement | RawDataElement) -> None:
        if vr not in ("DA", "DT"):
            # TM and others: whole-day offsets leave times as they are, if they are times
            self.check_form(ds, tag, vr, elem)
            return
        text = self.text(elem)
        if not text:
            return
        fn = shift_date if vr == "DA" else shift_datetime
        values = [fn(v, self.offset) for v in text.split("\\")]
        if any(v is None for v in values):
            self.empty_or_remove(ds, tag, vr)  # not a valid date: nothing to shift safely
            return
        self.set(ds, tag, vr, values if len(values) > 1 else values[0])
        self.count("shifted")

    def clean(self, ds: Dataset, tag: int, vr: str, elem: DataElement | RawDataElement) -> None:
        if vr not in _TEXT_VRS or (vr in _LONG_TEXT_VRS and tag != 0x0040A160):
            # free text other than SR text values is removed: regular expressions do not
            # find every name in a paragraph (PS3.15 E.3.5 allows removal)
            self.empty_or_remove(ds, tag, vr)
            return
        text = self.text(elem, self.codec)
        if text is None:
            self.empty_or_remove(ds, tag, vr)
            return
        finder = self.ctx.find_identifiers
        if finder is None:
            cleaned = _clean_known(text, self.identifiers())
        else:
            cleaned = clean_text(text, self.identifiers(), finder)
        if cleaned == text.strip():
            return
        if not cleaned:
            self.empty_or_remove(ds, tag, vr)
            return
        if vr == "CS":
            cleaned = cleaned.upper()
        limit = _MAX_LENGTH.get(vr)
        self.set(ds, tag, vr, cleaned[:limit] if limit else cleaned)
        self.count("cleaned")

    def dummy(self, ds: Dataset, tag: int, vr: str, elem: DataElement | RawDataElement) -> None:
        if vr in ("DA", "DT"):
            text = self.text(elem)
            fn = shift_date if vr == "DA" else shift_datetime
            values = [fn(v, self.offset) for v in (text or "").split("\\")]
            if text and all(values):
                self.set(ds, tag, vr, values if len(values) > 1 else values[0])
                self.count("shifted")
            else:  # no valid date to shift: a dummy date, which dates nothing
                self.set(ds, tag, vr, _dummy(vr))
                self.count("dummy")
            return
        if vr == "UI":
            self.map_uids(ds, tag, elem)
            return
        self.set(ds, tag, vr, _dummy(vr))
        self.count("dummy")

    # -- private elements (PS3.15 E.3.10)

    def safe_private(self, ds: Dataset, keys: Iterable[int]) -> frozenset[int]:
        """The private elements of :data:`SAFE_PRIVATE` in ``ds``, with their creators."""
        kept: set[int] = set()
        for tag in keys:
            group, elem = tag >> 16, tag & 0xFFFF
            if not group & 1 or elem < 0x1000:
                continue
            vr = ds.get_item(tag).VR
            creator_tag = (group << 16) | (elem >> 8)
            creator = ds.get_item(creator_tag)
            if creator is None or vr not in _NUMERIC_VRS:
                continue  # implicit VR private data is opaque: its type cannot be checked
            name = (self.text(creator, "latin_1") or "").strip()
            if (name, group, elem & 0xFF) in SAFE_PRIVATE:
                kept.update((tag, creator_tag))
        return frozenset(kept)

    def walk(self, ds: Dataset, depth: int, concept: str | None = None,
             types: TypeNode | None = None) -> None:
        """Apply the profile to ``ds`` and, recursively, to every sequence item.

        ``types`` is the IOD's Type tree at this item's path (the root's for the object).
        """
        if depth > MAX_DEPTH:
            raise DicomRejected(
                f"sequences are nested deeper than {MAX_DEPTH} levels", code="too-deep",
            )
        outer = self.node
        if types is not None:
            self.node = types
        try:
            self._walk(ds, depth, concept)
        finally:
            self.node = outer

    def _walk(self, ds: Dataset, depth: int, concept: str | None) -> None:
        keys = list(ds.keys())
        private_kept = self.safe_private(ds, keys) if self.ctx.keep_safe_private else ()
        for tag in keys:
            t = int(tag)
            group = t >> 16
            if group & 1:
                if t not in private_kept:
                    del ds[t]
                    self.count("private_removed")
                continue
            elem = ds.get_item(t)
            vr = elem.VR
            if vr is None or vr == "UN":
                # implicit VR, or a sender that did not know the attribute: the dictionary
                # decides, so a date read as UN is still shifted
                vr = _dictionary_vr(t) or vr
            if (
                group <= 0x0002
                or t & 0xFFFF == 0  # group lengths (retired, and stale once values change)
                or group & 0xFF00 in (0x5000, 0x6000)  # curves and overlays (Clean Graphics)
                or group in (0xFFFA, 0xFFFC, 0x0400)  # signatures, padding, MACs, originals
                or (0x7F00 <= group <= 0x7FFF and group != 0x7FE0)
            ):
                del ds[t]
                self.count("overlay_removed" if group & 0xFF00 == 0x6000 else "removed")
                continue
            if vr is None:
                del ds[t]  # a public attribute this dictionary does not know: cannot judge it
                self.count("unknown_removed")
                continue
            if t in _IDENTITY:
                _IDENTITY[t](self, ds, t, vr, elem, depth)
                continue
            if vr != "UI" and (t not in ALLOWED or (not depth and t in NESTED_ONLY)):
                # not known to be safe (PS3.15 E.1.1): removed, or kept as the IOD needs it
                self.empty_or_remove(ds, t, vr, depth)
                continue
            # allowed (every UID is: it is replaced); Table E.1-1 applies on top
            action = ACTIONS.get(t)
            if action is None:
                if vr == "SQ":
                    action = Action.RECURSE
                elif vr == "UI":
                    action = Action.KEEP if t in CLASS_UID_TAGS else Action.UID
                elif vr in ("DA", "DT"):
                    action = Action.SHIFT
                elif vr in _FREE_TEXT_VRS and t not in _CODE_PARTS:
                    # allowed, but typed by someone (a local code's meaning, a model name
                    # a site edited): a name or an identifier of this object is cleaned out
                    action = Action.CLEAN
                else:
                    self.check_form(ds, t, vr, elem)  # kept unchanged if it is what its VR says
                    continue
            if action is Action.KEEP:
                self.check_form(ds, t, vr, elem)
                continue
            if action is Action.REMOVE:
                self.empty_or_remove(ds, t, vr, depth)
            elif action is Action.EMPTY:
                entry = self.node.get(t)
                if entry is not None and entry[0] == 1:
                    self.empty_or_remove(ds, t, vr, depth)  # Type 1: a dummy
                else:
                    self.set(ds, t, vr, [] if vr == "SQ" else None)
                    self.count("emptied")
            elif action is Action.UID:
                if vr == "UI":
                    self.map_uids(ds, t, elem)
                elif vr == "SQ":
                    self.recurse(ds, t, depth)
            elif action is Action.SHIFT and t == 0x0040A121 and concept == SUBJECT_BIRTH_DATE:
                # TID 1007's Subject Birth Date is Patient's Birth Date, which goes (E.1-1)
                self.set(ds, t, vr, _dummy(vr))
                self.count("dummy")
            elif action is Action.SHIFT:
                self.shift(ds, t, vr, elem)
            elif action is Action.CLEAN:
                if t == 0x0040A160 and concept in OBSERVER_TEXT_CODES:
                    self.set(ds, t, vr, DUMMY_TEXT)
                    self.count("dummy")
                else:
                    self.clean(ds, t, vr, elem)
            elif action is Action.RECURSE or vr == "SQ":
                self.recurse(ds, t, depth)
            else:  # DUMMY
                self.dummy(ds, t, vr, elem)

    def recurse(self, ds: Dataset, tag: int, depth: int, types: TypeNode | None = None) -> None:
        try:
            value = ds[tag].value  # parses the items of a defined-length sequence
        except RecursionError:
            raise DicomRejected(
                f"sequences are nested deeper than {MAX_DEPTH} levels", code="too-deep",
            ) from None
        except Exception as exc:  # pydicom's conversion errors; name the type, not the value
            raise DicomRejected(
                f"a sequence cannot be parsed ({type(exc).__name__})"
            ) from None
        if not isinstance(value, Sequence):
            return
        if types is None:
            entry = self.node.get(tag)
            types = entry[1] if entry is not None else _NO_TYPES
        in_content = tag in (0x0040A730, 0x0040A504, 0x0040A370)
        for item in value:
            concept = _concept(item) if in_content else None
            self.walk(item, depth + 1, concept, types)
            if concept == SUBJECT_AGE:
                self.cap_subject_age(item)

    def cap_subject_age(self, item: Dataset) -> None:
        """Subject Age in an SR (TID 1007) above 89 years becomes 90 years, as Patient's Age."""
        try:
            measured = item[0x0040A300].value[0]
            number = float(measured[0x0040A30A].value)
            units = measured[0x004008EA].value[0][0x00080100].value
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            return
        per_year = _AGE_UNITS_PER_YEAR.get(str(units).strip())
        if per_year is not None and number / per_year > 89:
            measured[0x0040A30A] = DataElement(0x0040A30A, "DS", str(90 * per_year))
            self.count("age_capped")


#: The Type tree below an attribute the IOD tables say nothing about.
_NO_TYPES: Final[TypeNode] = {}


def _concept(item: Dataset) -> str | None:
    names = item.get_item(0x0040A043)
    if names is None:
        return None
    try:
        seq = item[0x0040A043].value
        if seq:
            code = seq[0].get_item(0x00080100)
            if code is not None:
                value = code.value
                return (value.decode("ascii", "replace") if isinstance(value, bytes)
                        else str(value)).strip("\x00 ")
    except (RecursionError, AttributeError, KeyError):
        return None
    return None


# -- identity attributes: pseudonyms consistent across instances (issue 4)

_IdentityRule = Callable[[_Walker, Dataset, int, str, Any, int], None]


def _patient_id(w: _Walker, ds: Dataset, tag: int, vr: str, elem: Any, depth: int) -> None:
    if depth == 0:
        w.set(ds, tag, "LO", w.pseudonym)
    else:
        original = (w.text(elem, "latin_1") or "").strip()
        if original:
            w.set(ds, tag, "LO", patient_pseudonym(w.secret, w.ctx.source, original))
        else:
            w.set(ds, tag, "LO", None)
    w.count("pseudonym")


def _patient_name(w: _Walker, ds: Dataset, tag: int, vr: str, elem: Any, depth: int) -> None:
    w.set(ds, tag, "PN", w.pseudonym if depth == 0 else None)
    w.count("pseudonym")


def _keyed(kind: str, prefix: str) -> _IdentityRule:
    def rule(w: _Walker, ds: Dataset, tag: int, vr: str, elem: Any, depth: int) -> None:
        original = (w.text(elem, "latin_1") or "").strip()
        value = None
        if original:
            value = _code(w.secret, prefix, kind, w.ctx.source, original, length=16)
        w.set(ds, tag, "SH", value)
        w.count("pseudonym")

    return rule


def _birth_date(w: _Walker, ds: Dataset, tag: int, vr: str, elem: Any, depth: int) -> None:
    w.set(ds, tag, "DA", None)  # Type 2 in the Patient module: present, empty
    w.count("emptied")


def _method(w: _Walker, ds: Dataset, tag: int, vr: str, elem: Any, depth: int) -> None:
    del ds[tag]  # rewritten from scratch after the walk


_IDENTITY: Final[dict[int, _IdentityRule]] = {
    0x00100020: _patient_id,
    0x00100010: _patient_name,
    0x00080050: _keyed("accession", "A"),
    0x00200010: _keyed("study-id", "S"),
    0x00100030: _birth_date,
    0x00120062: _method,
    0x00120063: _method,
    0x00120064: _method,
    0x00280303: _method,
}


# --- the entry points ------------------------------------------------------------------------


def _uid_of(ds: Dataset, tag: int) -> str:
    elem = ds.get_item(tag)
    if elem is None:
        return ""
    value = elem.value
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip("\x00 ")
    return str(value or "").strip()


def _str_of(ds: Dataset, tag: int) -> str:
    return _uid_of(ds, tag)  # same decoding: ASCII with padding removed


def _transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return str(meta.TransferSyntaxUID)
    encoding = getattr(ds, "original_encoding", (None, None))
    if encoding == (True, True):
        return ImplicitVRLittleEndian
    pixels = ds.get_item(0x7FE00010)
    if pixels is not None and isinstance(pixels.value, bytes) and pixels.value[:4] == (
        b"\xfe\xff\x00\xe0"
    ):
        raise DicomRejected(
            "the transfer syntax of the encapsulated pixel data is unknown", code="unknown-syntax"
        )
    return ExplicitVRLittleEndian


def _burned_in_reason(ds: Dataset) -> str | None:
    """Why the pixels may show identifying text, or None (PS3.3 C.7.6.1.1.3)."""
    if 0x7FE00010 not in ds and 0x7FE00008 not in ds and 0x7FE00009 not in ds:
        return None
    declared = _str_of(ds, 0x00280301).upper()
    if declared == "YES":
        return "the object declares burned-in annotation"
    if declared == "NO":
        return None
    modality = _str_of(ds, 0x00080060).upper()
    if modality in BURNED_IN_MODALITIES:
        return "objects of this modality often carry burned-in text and this one does not " \
               "declare its absence"
    sop_class = _str_of(ds, 0x00080016)
    if sop_class.startswith(_BURNED_IN_CLASS_PREFIXES) or 0x00080064 in ds:
        return "screen and camera captures often carry burned-in text and this one does not " \
               "declare its absence"
    return None


#: Ages above 89 years are one category (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)):
#: a 97-year-old is rare enough to be found; "90 or older" is what the age says.
OLDEST_AGE: Final = "090Y"


def _cap_age(ds: Dataset, walker: _Walker) -> None:
    elem = ds.get_item(0x00101010)
    if elem is None:
        return
    value = elem.value
    text = (value.decode("ascii", "replace") if isinstance(value, bytes)
            else str(value or "")).strip("\x00 ")
    if len(text) == 4 and text[:3].isdigit() and text[3] == "Y" and text > OLDEST_AGE:
        ds[0x00101010] = DataElement(0x00101010, "AS", OLDEST_AGE)
        walker.count("age_capped")


def _method_codes(ds: Dataset, codes: Iterable[str]) -> None:
    items = []
    for value in codes:
        item = Dataset()
        # item[tag] = DataElement is several times cheaper than keyword setattr, per file
        item[0x00080100] = DataElement(0x00080100, "SH", value)
        item[0x00080102] = DataElement(0x00080102, "SH", "DCM")
        item[0x00080104] = DataElement(0x00080104, "LO", CID_7050[value])
        items.append(item)
    ds[0x00120064] = DataElement(0x00120064, "SQ", Sequence(items))
    ds[0x00120063] = DataElement(0x00120063, "LO", list(METHOD_TEXT))


def deidentify(ds: Dataset, ctx: DeidContext) -> DeidResult:
    """De-identify ``ds`` in place (PS3.15 Annex E) and return it with fresh File Meta Information.

    Raises :class:`DicomRejected` when the object cannot be made safe (an encapsulated
    document, a DICOMDIR, missing identifying UIDs, nesting too deep), and
    :class:`BurnedInTextSuspected` when the pixels may carry text: its ``result``
    holds the header-clean object. No message quotes a value from the object.
    """
    # before anything is read or written (issue 14, item 4); it also refuses DICOMDIRs,
    # encapsulated documents and objects without a SOP Class UID
    check_conformance(ds)
    sop_class = _str_of(ds, 0x00080016)
    for tag, name in ((0x00080018, "SOP Instance UID"), (0x0020000D, "Study Instance UID"),
                      (0x0020000E, "Series Instance UID")):
        if not _uid_of(ds, tag):
            raise DicomRejected(f"the object has no {name}", _STATUS_NOT_SOP_CLASS)
    syntax = _transfer_syntax(ds)

    original_pid = _str_of(ds, 0x00100020)
    # an empty Patient ID would merge unrelated patients: key on the study instead
    pseudonym = patient_pseudonym(
        ctx.secret, ctx.source, original_pid or "study:" + _uid_of(ds, 0x0020000D)
    )
    offset = (ctx.date_offset_days(pseudonym) if ctx.date_offset_days is not None
              else default_date_offset(ctx.secret, pseudonym))

    # Retain Patient Characteristics: keep the age; derive it before the birth date goes
    if 0x00101010 not in ds:
        birth = _str_of(ds, 0x00100030)
        seen = _str_of(ds, 0x00080020) or _str_of(ds, 0x00080023)
        age = _age(birth, seen) if birth and seen else None
        if age:
            ds.PatientAge = age

    walker = _Walker(ctx, ds, offset, pseudonym)
    try:
        walker.walk(ds, 0)
    except RecursionError:
        raise DicomRejected(
            f"sequences are nested deeper than {MAX_DEPTH} levels", code="too-deep",
        ) from None
    _cap_age(ds, walker)

    ds[0x00120062] = DataElement(0x00120062, "CS", "YES")  # Patient Identity Removed
    ds[0x00280303] = DataElement(0x00280303, "CS", "MODIFIED")
    codes = list(_CLAIMED)
    if ctx.keep_safe_private:
        codes.append("113111")
    _method_codes(ds, codes)

    sop_uid = str(ds.SOPInstanceUID)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128

    result = DeidResult(
        dataset=ds,
        patient_pseudonym=pseudonym,
        date_offset_days=offset,
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_instance_uid=sop_uid,
        actions=dict(walker.counts),
    )
    reason = _burned_in_reason(ds)
    if reason is not None:
        raise BurnedInTextSuspected(reason, result)
    return result


def write_dataset(result: DeidResult | Dataset) -> bytes:
    """Serialise a de-identified dataset as a Part 10 file (PS3.10 7.1) with a zeroed preamble."""
    ds = result.dataset if isinstance(result, DeidResult) else result
    ds.preamble = b"\x00" * 128
    syntax = ds.file_meta.TransferSyntaxUID
    if syntax == DeflatedExplicitVRLittleEndian:
        buf = io.BytesIO()
        pydicom.dcmwrite(buf, ds, enforce_file_format=True)
        return buf.getvalue()
    # the same steps as dcmwrite without its defensive deep copy of the File Meta
    # Information, which costs more than the rest of the meta group (bench/deid.py)
    out = DicomBytesIO()
    out.write(ds.preamble + b"DICM")
    write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    out.is_little_endian = syntax != ExplicitVRBigEndian
    out.is_implicit_VR = syntax == ImplicitVRLittleEndian
    write_file_dataset(out, ds)
    return out.getvalue()


def blackout(result_or_ds: DeidResult | Dataset, rectangles: list[tuple[int, int, int, int]]
             ) -> Dataset:
    """Clean Pixel Data (PS3.15 E.3.1): paint ``(x, y, w, h)`` rectangles black on every frame.

    Black is the minimum value for MONOCHROME2 and colour images and the maximum for
    MONOCHROME1. Compressed pixel data is decoded and the object re-encoded as
    Explicit VR Little Endian. Sets Burned In Annotation to NO and adds the Clean
    Pixel Data Option code (113101) to De-identification Method Code Sequence.
    """
    ds = result_or_ds.dataset if isinstance(result_or_ds, DeidResult) else result_or_ds
    if 0x7FE00010 not in ds:
        raise DicomRejected("the object has no pixel data to clean")
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.decompress()
    array = np.array(ds.pixel_array)  # a writable copy
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    stack = array if frames > 1 else array[np.newaxis, ...]
    black = stack.max() if ds.PhotometricInterpretation == "MONOCHROME1" else stack.min()
    rows, cols = int(ds.Rows), int(ds.Columns)
    for x, y, w, h in rectangles:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(cols, x + w), min(rows, y + h)
        if x1 > x0 and y1 > y0:
            stack[:, y0:y1, x0:x1, ...] = black
    ds.PixelData = stack.tobytes() if frames > 1 else stack[0].tobytes()
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        # pixel_array is colour-by-pixel and, for YBR, already converted to RGB
        ds.PlanarConfiguration = 0
        if str(ds.PhotometricInterpretation).startswith("YBR"):
            ds.PhotometricInterpretation = "RGB"
    ds.BurnedInAnnotation = "NO"
    existing = [str(item.CodeValue) for item in ds.get("DeidentificationMethodCodeSequence", [])]
    if "113101" not in existing:
        _method_codes(ds, [*existing, "113101"])
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds
