"""The de-identification profile as data: PS3.15 Table E.1-1 resolved for Teachfile's options.

The table (``app/data/ps3.15-table-e.1-1.json``) gives, per attribute, the action of
the Basic Application Level Confidentiality Profile and the action under each
option (PS3.15 E.3). Teachfile claims these options:

* Retain Patient Characteristics (E.3.6)
* Retain Longitudinal Temporal Information with Modified Dates (E.3.6)
* Clean Descriptors (E.3.5)
* Clean Structured Content (E.3.3)
* Clean Graphics (E.3.3): overlays and curves are removed outright, text in
  presentation-state graphic annotations is cleaned
* Retain Safe Private (E.3.10) only when asked for.

Each attribute is resolved once, at import, to one of the final actions below.
Compound actions (X/Z, X/D, Z/D, X/Z/D, PS3.15 E.1-1 note) are resolved with the
curated Type table :data:`ATTRIBUTE_TYPES`; an X on a Type 1 attribute becomes a
D and on a Type 2 attribute a Z so that the output stays valid DICOM.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Final


class Action(Enum):
    """What happens to one attribute."""

    REMOVE = "X"
    EMPTY = "Z"
    DUMMY = "D"
    UID = "U"
    KEEP = "K"
    SHIFT = "shift"  # a date, time or date-time: moved by the patient's offset (E.3.6)
    CLEAN = "clean"  # text: cleaned of identifiers, else removed or emptied (E.3.5)
    RECURSE = "recurse"  # a sequence kept, its items de-identified by the same rules


#: The options claimed, in the order they override the basic action.
OPTIONS: Final = (
    "rtnPatCharsOpt",
    "rtnLongModifDatesOpt",
    "cleanDescOpt",
    "cleanStructContOpt",
    "cleanGraphOpt",
)

#: Type 1 (value required) and Type 2 (present, may be empty) attributes among those
#: that E.1-1 removes, empties or dummies. Curated by hand from the modules of the
#: common IODs (PS3.3 C.7 Patient, General Study, General Series, General Equipment,
#: Enhanced General Equipment C.7.5.2, SR Document General and Content C.17,
#: Presentation State C.10, Contrast/Bolus C.7.6.4). Where an attribute has a
#: different Type in different IODs the most demanding one is used: a dummy value
#: in an IOD that did not need one is harmless, a missing Type 1 value is not.
#: Attributes not listed are treated as Type 3.
ATTRIBUTE_TYPES: Final[dict[int, int]] = {
    0x00100010: 2,  # Patient's Name (Patient module)
    0x00100020: 2,  # Patient ID
    0x00100030: 2,  # Patient's Birth Date
    0x00100040: 2,  # Patient's Sex
    0x00080020: 2,  # Study Date (General Study)
    0x00080030: 2,  # Study Time
    0x00080090: 2,  # Referring Physician's Name
    0x00200010: 2,  # Study ID
    0x00080050: 2,  # Accession Number
    0x00080023: 1,  # Content Date (SR Document General, enhanced images)
    0x00080033: 1,  # Content Time
    0x0008002A: 1,  # Acquisition DateTime (enhanced image modules)
    0x00181000: 1,  # Device Serial Number (Enhanced General Equipment)
    0x00180010: 2,  # Contrast/Bolus Agent (Contrast/Bolus module)
    0x0040A075: 1,  # Verifying Observer Name (SR Document General)
    0x0040A027: 1,  # Verifying Organization
    0x0040A088: 2,  # Verifying Observer Identification Code Sequence
    0x0040A123: 1,  # Person Name (SR content item, value type PNAME)
    0x0040A160: 1,  # Text Value (SR content item, value type TEXT)
    0x00700006: 1,  # Unformatted Text Value (Graphic Annotation text object)
    0x00700084: 2,  # Content Creator's Name (Presentation State, SR)
    0x30060026: 2,  # ROI Name (Structure Set)
    0x300600A6: 2,  # ROI Interpreter
}

#: Rules Table E.1-1 does not give but the claimed options need (E.1.1, E.3.3):
#: free text of SR content items and of graphic annotations is cleaned.
EXTRA_ACTIONS: Final[dict[int, Action]] = {
    0x0040A160: Action.CLEAN,  # Text Value (Clean Structured Content)
    0x00700006: Action.CLEAN,  # Unformatted Text Value (Clean Graphics)
}

#: Attributes Teachfile writes itself after the walk; the table's action is moot.
MANAGED: Final = frozenset(
    {
        0x00100010,  # Patient's Name -> pseudonym
        0x00100020,  # Patient ID -> pseudonym
        0x00080050,  # Accession Number -> keyed pseudonym
        0x00200010,  # Study ID -> keyed pseudonym
        0x00100030,  # Patient's Birth Date -> emptied (age kept, derived if absent)
        0x00120062,  # Patient Identity Removed
        0x00120063,  # De-identification Method
        0x00120064,  # De-identification Method Code Sequence
        0x00280303,  # Longitudinal Temporal Information Modified
    }
)


def _resolve(row: dict[str, str], vr_is_sequence: bool, tag: int) -> Action:
    action = row["basicProfile"]
    source = "basicProfile"
    for option in OPTIONS:
        if row.get(option):
            action, source = row[option], option
    if action == "C":
        if source == "rtnLongModifDatesOpt":
            return Action.SHIFT
        return Action.RECURSE if vr_is_sequence else Action.CLEAN
    if action == "K":
        return Action.RECURSE if vr_is_sequence else Action.KEEP
    if action == "U":
        return Action.UID
    if action == "X/Z/U*":
        # a reference sequence: kept, the UIDs inside are replaced (E.1-1 note)
        return Action.RECURSE
    kind = ATTRIBUTE_TYPES.get(tag, 3)
    choices = action.split("/")
    if kind == 1:
        return Action.RECURSE if vr_is_sequence else Action.DUMMY
    if kind == 2 and ("Z" in choices or "X" in choices):
        return Action.EMPTY
    if "X" in choices:
        return Action.REMOVE
    if "Z" in choices:
        return Action.EMPTY
    return Action.RECURSE if vr_is_sequence else Action.DUMMY


def _load() -> tuple[dict[int, Action], dict[int, str]]:
    from pydicom.datadict import dictionary_VR

    text = (Path(__file__).parent.parent / "data" / "ps3.15-table-e.1-1.json").read_text("utf-8")
    actions: dict[int, Action] = {}
    names: dict[int, str] = {}
    for row in json.loads(text):
        tag_text = row["tag"].strip("()").replace(",", "")
        if "X" in tag_text or "G" in tag_text:
            continue  # repeating groups and private tags have rules of their own
        tag = int(tag_text, 16)
        try:
            is_sq = dictionary_VR(tag) == "SQ"
        except KeyError:
            is_sq = False
        actions[tag] = _resolve(row, is_sq, tag)
        names[tag] = row["name"].split("\n")[0]
    actions.update(EXTRA_ACTIONS)
    return actions, names


#: tag -> final action, for every fixed tag of Table E.1-1.
ACTIONS, NAMES = _load()
