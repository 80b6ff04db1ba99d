"""Find text that looks like a patient identifier: rules plus name and word lists, no database.

Why own rules: the maintained offline detectors (scrubadub, presidio-analyzer's pattern
recognizers, philter-lite) were measured on the labelled set tests/data/phi_corpus.txt
and on Faker-made identifiers (scripts/bench/phi_detectors.py): none found more than
0.7 of the identifiers, and none added to these rules helped; the figures are in
app/services/phi_scan.py. Clinical identifiers have shapes that general PII
tools do not know (ages over 89, "UR 0045123", "Royal Darwin Hospital", "Monday 3rd"),
and teaching prose is full of names that are not people ("Smith fracture", "Austin
Flint murmur", "Sister Mary Joseph nodule"), so the rules below are built around both.

What counts, after PS3.15 Annex E and HIPAA Safe Harbor (45 CFR 164.514(b)(2)): names
(a title and a word, a listed given name and a capitalised word, "Surname, Given",
DICOM "SURNAME^GIVEN"), hospitals and clinics (registered or not), every element of a
date but the year (numeric, written, named holidays, weekdays next to a day number),
ages over 89, record numbers, telephone numbers, e-mail addresses, URLs that point
at a patient, street addresses and postcodes. Eager by design: a false alarm costs the
author a click; a leak cannot be undone.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Hit:
    """One passage that looks like an identifier: what kind, and where (``text[start:end]``)."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class _Words:
    given: frozenset[str]
    given_word_like: frozenset[str]
    surnames: frozenset[str]
    titles: frozenset[str]
    not_after_title: frozenset[str]
    eponyms: frozenset[str]
    eponyms_only: frozenset[str]
    eponym_nouns: frozenset[str]
    not_a_surname: frozenset[str]
    hospital_generic: frozenset[str]
    eponym_phrases: _Phrases
    holidays: _Phrases
    hospital: re.Pattern[str]
    street: re.Pattern[str]
    street_alone: re.Pattern[str]


class _Phrases:
    """Fixed phrases ("Christmas Day", "Sister Mary Joseph"), found word by word.

    One alternation of every phrase tried at every position costs milliseconds per kB;
    looking each word up in a dict and trying only the phrases that start with it costs
    a fraction of that (scripts/bench/phi_scan.py).
    """

    _WORD = re.compile(r"[^\W\d_][\w'\u2019]*")

    def __init__(self, phrases: Iterable[str], *, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        by_first: dict[str, list[str]] = {}
        for phrase in phrases:
            first, *_rest = phrase.split()
            body = r"[\s-]+".join(re.escape(w) for w in phrase.split())
            by_first.setdefault(self._key(first.rstrip(".")), []).append(body)
        flags = re.IGNORECASE if ignore_case else 0
        self.patterns = {
            key: re.compile(
                "(?:" + "|".join(sorted(bodies, key=len, reverse=True)) + r")(?![\w'\u2019])", flags
            )
            for key, bodies in by_first.items()
        }

    def _key(self, word: str) -> str:
        return word.lower() if self.ignore_case else word

    def find(self, text: str) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for word in self._WORD.finditer(text):
            if spans and word.start() < spans[-1][1]:
                continue
            # Keyed by the phrase's first word without a full stop ("St." as "St").
            pattern = self.patterns.get(self._key(word.group()))
            if pattern is not None and (m := pattern.match(text, word.start())):
                spans.append((m.start(), m.end()))
        return spans


# Letters NFKD does not take apart: "Łukasz", "Søren", "Đorđević".
_UNFOLDED = str.maketrans("łŁøØđĐ", "lLoOdD")


def _fold(word: str) -> str:
    """``word`` without its diacritics: "Wiśniewski" -> "Wisniewski"."""
    decomposed = unicodedata.normalize("NFKD", word.translate(_UNFOLDED))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class _NameList(frozenset[str]):
    """A name list that also holds a name typed with diacritics the list spells without.

    The lists come from sources that mostly drop accents ("Wisniewski", "Jahn"), while
    authors and headers keep them ("Wiśniewski", "Jähn"): a name is the same name.
    """

    def __contains__(self, word: object) -> bool:
        if frozenset.__contains__(self, word):
            return True
        return (
            isinstance(word, str)
            and not word.isascii()
            and frozenset.__contains__(self, _fold(word))
        )


def _alternation(items: Iterable[str]) -> str:
    return "|".join(re.escape(i) for i in sorted(set(items), key=len, reverse=True))


@functools.cache
def _words() -> _Words:
    names: dict[str, Any] = json.loads((_DATA / "person_names.json").read_text("utf-8"))
    lists: dict[str, list[str]] = yaml.safe_load((_DATA / "phi_words.yaml").read_text("utf-8"))
    surnames = _NameList(names["surnames"])
    suffixes = _alternation(lists["hospital_suffixes"]).replace(r"\ ", r"\s+")
    street_suffixes = _alternation(lists["street_suffixes"])
    return _Words(
        given=_NameList(names["given"]),
        given_word_like=_NameList(names["given_word_like"]),
        surnames=surnames,
        titles=frozenset(lists["titles"]),
        not_after_title=frozenset(lists["not_after_title"]),
        eponyms=frozenset(lists["eponyms"]),
        eponyms_only=frozenset(lists["eponyms"]) - surnames,
        eponym_nouns=frozenset(w.lower() for w in lists["eponym_nouns"]),
        not_a_surname=frozenset(lists["not_a_surname"]),
        hospital_generic=frozenset(w.lower() for w in lists["hospital_generic_words"]),
        eponym_phrases=_Phrases(lists["eponym_phrases"], ignore_case=True),
        holidays=_Phrases(lists["holidays"], ignore_case=False),
        # Capitalised words (with "of", "and", "for", "the" between them) ending in a suffix.
        hospital=re.compile(
            rf"(?<![\w'\u2019-])((?:(?:{_CAP})\s+(?:(?:and|of|for|the|&|de|la|del)\s+)*)+)"
            # The suffix in any case: "Kasr Aini hospital" as well as "Royal Darwin Hospital".
            rf"(?i:{suffixes})(?![\w'\u2019-])"
        ),
        street=re.compile(
            r"(?<![\w/.-])(?:(?:Unit|Flat|Apt|Apartment|Suite|Shop|Lot|Level)\.?\s+\d+[A-Za-z]?,?\s+)?"
            r"\d{1,5}[A-Za-z]?(?:\s?[/-]\s?\d{1,5}[A-Za-z]?)?,?\s+"
            rf"(?:(?:{_CAP})\s+){{1,3}}(?:{street_suffixes})\b"
        ),
        street_alone=re.compile(
            rf"(?<![\w-])(?:(?:{_CAP})\s+){{1,2}}(?:{_alternation(lists['street_names_alone'])})\b"
        ),
    )


# A capitalised word: "Smith", "O'Brien", "McEwin", "Smith-Jones", "Förster", "St.".
# Latin letters with diacritics count (Latin-1 and Latin Extended-A: "Łukasz", "Jähn").
_Q = "'\u2019"  # apostrophes: typed and typographic
_UP = "A-Z\u00c0-\u00d6\u00d8-\u00de\u0100-\u017f"
_LO = "a-z\u00df-\u00f6\u00f8-\u00ff\u0100-\u017f"
_WORD = rf"[{_UP}](?:[{_LO}]+(?:[{_UP}][{_LO}]+)?|[{_Q}][{_UP}][{_LO}]+)(?:-[{_UP}][{_LO}]+)*"
_CAP = rf"(?:St\.?|{_WORD}(?:[{_Q}]s)?)"
# Lower-case particles that open a surname: "Victoria de Bruin", "Casper van der Meulen".
_PARTICLE = r"(?:van|von|de|den|der|da|di|du|del|della|dos|das|le|la|ter|ten|bin|ibn|al|el|'t)"
# A name token: a capitalised word, perhaps after particles; its last word is looked up.
# A possessive ends the word ("Mr Kowalczyk's fracture"); another apostrophe does not.
_NAME_TOKEN = re.compile(
    rf"(?<![\w{_Q}-])(?:{_PARTICLE}\s+)*{_WORD}(?:(?=[{_Q}]s\b)|(?![\w{_Q}]))"
)
# Words just before an unlisted name that make it one: "Patient: Conradi, Cemal", "her
# son Koen Zwijsen" (not "the patient Developed Fever" in title-cased text).
# Prepositions such as "with" are left out on purpose: in quiz text "consistent with
# Pulmonary Embolism" is a diagnosis, not a person.
_NAME_CUES = frozenset(
    [
        *("patient:", "name:", "named", "pt:"),
        *("son", "daughter", "wife", "husband", "partner", "mother", "father", "brother"),
        *("carer", "guardian"),
    ]
)
# "by" is a cue only after what people do: "seen in clinic by Koen Zwijsen", not
# "caused by Small Bowel Obstruction".
_BY_A_PERSON = re.compile(
    r"\b(?:seen|referred|reported|reviewed|examined|assessed|discussed|dictated|signed|"
    r"verified|authori[sz]ed|performed|requested|interpreted|read|sent|scanned|treated|"
    r"managed|operated|admitted|imaged|found|brought|accompanied|attended|called|booked|"
    r"supervised|drained|biopsied|injected)\b[^.,;:!?]{0,30}\bby\s+$",
    re.IGNORECASE,
)
# Verbs of a person after a sentence-opening pair: "Camilo Burgos presented with pain".
_SUBJECT_VERBS = frozenset(
    [
        "presented",
        "re-presented",
        "attended",
        "returned",
        "complained",
        "noticed",
        "fell",
        "collapsed",
        "denies",
        "denied",
        "underwent",
    ]
)
# Endings of medical words, which an unlisted name must not have ("Pulmonary Embolism",
# "Streptococcus Pneumoniae", "Ulcerative Colitis").
_MEDICAL_ENDING = re.compile(
    r"(?:itis|osis|oma|omas|ism|emia|aemia|pathy|algia|ectomy|otomy|ostomy|plasty|scopy|"
    r"graphy|gram|ary|ous|ive|ular|ity|ion|ment|ence|ance|ia|ae)$"
)
_UPPER_WORD = r"[A-Z]{2,}(?:['\u2019-][A-Z]+)*"

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?"
)
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
_WEEKDAY = (
    r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|"
    r"Mon|Tues|Tue|Wed|Thurs|Thur|Thu|Fri|Sat|Sun)\.?"
)
_AGE = r"(?:9\d|1[0-4]\d)"
_NINETY = (
    r"(?:ninety(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?"
    r"|(?:a |one )?hundred(?: and \w+)?)"
)

_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "date",
        re.compile(
            # 3 March 2024, 3rd of June, 14 July, 12-Mar-2023
            rf"(?<![\w.])(?:the\s+)?{_DAY}(?:\s+of)?[\s-]+{_MONTH}(?:,?[\s-]+(?:19|20)?\d{{2}})?(?![\w])"
            # March 3, 2024; Sept 14; January 15, 2022
            rf"|\b{_MONTH}\s+{_DAY}(?:,?\s+(?:19|20)\d{{2}})?(?!\w|\s*(?:mg|mm|cm|ml|%))"
            # March 2023
            rf"|\b{_MONTH},?\s+(?:19|20)\d{{2}}\b"
            # 2023-11-02, 2023/11/02
            r"|(?<![\w.])(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:[12]\d|3[01]|0?[1-9])(?![\w])"
        ),
    ),
    (
        "date",
        re.compile(rf"\b{_WEEKDAY},?\s+(?:the\s+)?{_DAY}\b(?!\s*(?:mm|cm|ml|mg|%|days?|weeks?))"),
    ),
    (
        "age over 89",
        re.compile(
            # "93-year-old", "102 years old", "ninety-one years of age" ("100 years ago" is not)
            rf"(?<![\w.])(?:{_AGE}|{_NINETY})\s*-?\s*(?:years?|yrs?|y)[\s-]*(?:old|of\s+age)(?![\w])"
            rf"|(?<![\w.]){_AGE}\s*(?:yo|y/o|y\.o\.?|yrs?|y)(?![\w/])"
            rf"|(?<![\w.]){_AGE}[MF](?![\w])"
            rf"|\b(?:aged?|age:|age\s+of)\s*{_AGE}(?!\s*(?:days?|weeks?|months?|%|\.\d))\b"
            rf"|\b(?:man|woman|lady|gentleman|male|female|patient)\s+of\s+{_AGE}\b",
            re.IGNORECASE,
        ),
    ),
    (
        "record number",
        re.compile(
            r"\b(?:MRN|URN|UR|NHS|SSN|IHI|ID|Medicare|Accession|Acc)\b(?:\s*(?:no\.?|number|num|#))?"
            r"\s*[:#.]?\s*[A-Z]{0,4}-?\d(?:[\dA-Z-]|\s(?=\d)){2,}"
            r"|\b(?i:hospital|patient|record|medical\s+record|accession|chart|unit|case|study|"
            r"encounter|visit)\s+(?i:no\.?|number|num|#|id)\s*[:#.]?\s*[A-Z]{0,4}-?\d[\dA-Z-]{2,}"
            # six digits or more on their own; SSN shape
            r"|(?<![\w.,])\d{6,}(?![\w]|[.,]\d)|\b\d{3}-\d{2}-\d{4}\b"
        ),
    ),
    (
        "phone number",
        re.compile(
            r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?|\d{1,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w]|[.,]\d)"
            r"|\b(?i:phone|telephone|tel|ph|mobile|mob|cell|fax|pager|bleep|ext|extension)\.?:?\s*"
            r"(?:on\s+)?\+?\(?\d[\d\s().-]{2,}\d"
        ),
    ),
    ("e-mail address", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("web address", _URL),
    (
        "street address",
        re.compile(
            r"\b(?:P\.?\s?O\.?|GPO|Post\s+Office)\s*Box\s+\d+|\b(?:Locked|Private)\s+Bag\s+\d+",
            re.IGNORECASE,
        ),
    ),
    (
        "postcode",
        re.compile(
            r"\b(?:NSW|VIC|Vic|QLD|Qld|SA|WA|TAS|Tas|NT|ACT)\s+\d{4}\b"
            r"|\b(?:AL|AK|AZ|AR|CA|CO|DE|FL|GA|HI|IA|ID|IL|IN|KS|KY|LA|MA|MD|ME|MI|MN|MO|MS|MT|NC|ND|"
            r"NE|NH|NJ|NM|NV|NY|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VA|VT|WA|WI|WV|WY|DC)\s+\d{5}(?:-\d{4})?\b"
            r"|\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?)\s\d[ABD-HJLNP-UW-Z]{2}\b"
            r"|\b(?i:post\s?code|zip(?:\s?code)?)\s*:?\s*\d{4,5}\b"
        ),
    ),
    (
        "name",
        re.compile(r"\b[A-Z][A-Za-z'\u2019-]+\^[A-Z][A-Za-z'\u2019-]*(?:\^[A-Za-z'\u2019-]*)*"),
    ),
]

# "Case 3 Teaching Point", "Figure 2 Coronal View": a number that labels, not a house.
_NUMBERED_THING = re.compile(
    r"\b(?:case|figure|fig|image|images|series|slice|question|step|table|level|segment|grade|"
    r"type|stage|part|option|day|week|phase|class|zone|station|rib|score|version|chapter|"
    r"page|section|item|no|number)\.?\s*$",
    re.IGNORECASE,
)
_EIGHT_DIGITS = re.compile(r"(?<![\w.])(\d{4})[\s.-](\d{4})(?![\w]|[.,-]\d)")
# 12/03/2024, 4/5/23, 05.11.22; the year has two digits or is 19xx/20xx, so that
# "2.25.8781" (a UID) is not a date.
_NUMERIC_DATE = re.compile(
    r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2((?:19|20)\d{2}|\d{2})(?![\w/]|[.-]\d)"
)
_URL_PATIENT = re.compile(
    r"(?<![a-z])(?:patients?|mrn|accession|study|studies|series|instances?|pid|records?|chart|"
    r"encounters?|visits?|ehr|emr|pacs|wado|viewer|dicomweb|uid)"
    r"|//(?:\d{1,3}\.){3}\d{1,3}|//[^/.]+(?:[:/]|$)|\.(?:local|internal|lan|intranet)\b",
    re.IGNORECASE,
)
# Literature references carry long numbers that identify a paper, not a patient.
_REFERENCE_NUMBER = re.compile(r"(?:PMID|PMCID|PMC|pubmed|doi|ISBN|ISSN)[\s:/.#=]*$", re.IGNORECASE)


# What a reader does not see in the text an author types (Markdown and HTML are
# rendered): emphasis marks at a word's edge, inline tags, invisible characters. Other
# tags and every kind of space read as one space; character references as their character.
_MARKUP = re.compile(
    r"(?P<emphasis>(?<!\w)[*_~`]+|[*_~`]+(?!\w))"
    r"|(?P<inline></?(?:b|i|em|strong|u|s|del|ins|mark|span|code|sup|sub|small)\b[^<>]{0,200}>)"
    r"|(?P<tag></?[A-Za-z][^<>]{0,200}>)"
    r"|(?P<reference>&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,30});)"
    r"|(?P<invisible>[\u00ad\u200b-\u200d\u2060\ufeff])"
    r"|(?P<space>[\t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000])",
    re.IGNORECASE,
)


def _as_read(text: str) -> tuple[str, list[int]]:
    """``text`` as a reader reads it, and for each of its characters the offset in ``text``
    (one more entry, for the end), so passages are reported where the author typed them."""
    out: list[str] = []
    origin: list[int] = []
    at = 0
    for m in _MARKUP.finditer(text):
        out.append(text[at : m.start()])
        origin.extend(range(at, m.start()))
        kind = m.lastgroup
        if kind in ("tag", "space"):
            replacement = " "
        elif kind == "reference":
            replacement = html.unescape(m.group())
            replacement = " " if replacement.isspace() else replacement
        else:
            replacement = ""
        out.append(replacement)
        origin.extend([m.start()] * len(replacement))
        at = m.end()
    out.append(text[at:])
    origin.extend(range(at, len(text) + 1))
    return "".join(out), origin


@functools.lru_cache(maxsize=8192)
def spans(text: str, institutions: tuple[str, ...] = ()) -> tuple[tuple[int, int], ...]:
    """:func:`find`'s passages as ``(start, end)``, kept per text: Clean Descriptors asks
    for every object, and a series repeats its descriptors in every one (module level,
    so a batch worker can receive it pickled)."""
    return tuple((hit.start, hit.end) for hit in find(text, institutions))


def find(text: str, institutions: Iterable[str] = ()) -> list[Hit]:
    """Every passage of ``text`` that looks like an identifier, overlapping passages merged.

    ``institutions`` are registered hospital names, matched as whole words (so
    "Hospital B" does not match "hospital by"), in any case from four letters on.
    The text is read as readers see it once rendered ("Mr **Kowalczyk**", "Mr&nbsp;
    Kowalczyk" and a non-breaking space after a title are "Mr Kowalczyk"); passages
    are reported at their place in ``text``.
    """
    if not text:
        return []
    read, origin = _as_read(text)
    if len(read) != len(text) or read != text:
        return [
            Hit(hit.kind, origin[hit.start], max(origin[hit.end - 1] + 1, origin[hit.start] + 1))
            for hit in _find(read, institutions)
        ]
    return _find(text, institutions)


def _find(text: str, institutions: Iterable[str]) -> list[Hit]:
    if not text:
        return []
    words = _words()
    # Eponyms are blanked (same length, so offsets hold) so their names never match.
    masked = text
    for start, end in words.eponym_phrases.find(text):
        masked = masked[:start] + " " * (end - start) + masked[end:]
    hits = list(_pattern_hits(masked, words))
    hits.extend(_institution_hits(text, tuple(institutions)))
    return _merge(hits)


def _pattern_hits(text: str, words: _Words) -> Iterator[Hit]:
    # A URL that does not point at a patient (a journal, a textbook) is a reference; the
    # numbers inside it are not record numbers or dates.
    references = [
        (m.start(), m.end()) for m in _URL.finditer(text) if not _URL_PATIENT.search(m.group())
    ]
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if any(a <= m.start() < b for a, b in references):
                continue
            if kind == "record number" and _REFERENCE_NUMBER.search(
                text[max(0, m.start() - 12) : m.start()]
            ):
                continue
            yield Hit(kind, m.start(), m.end())
    for m in _NUMERIC_DATE.finditer(text):
        first, second = int(m.group(1)), int(m.group(3))
        if 1 <= first <= 31 and 1 <= second <= 31 and min(first, second) <= 12:
            yield Hit("date", m.start(), m.end())
    for start, end in words.holidays.find(text):
        yield Hit("date", start, end)
    for m in words.hospital.finditer(text):
        found = re.findall(r"[\w'\u2019.-]+", m.group(1))
        # Title-cased prose ("He Was Admitted To Hospital"): a hospital's name starts after
        # the last function word.
        cut = max((i + 1 for i, w in enumerate(found) if w in words.not_a_surname), default=0)
        found = found[cut:]
        if not found:
            continue
        named = [w for w in found if w[0].isupper()]
        if text[m.end(1)].islower():
            # "Kasr Aini hospital": with a lower-case suffix, only plain proper names count,
            # and one word opening a sentence does not ("Contact the clinic", "Marfan clinic").
            if (
                len(named) == len(found)
                and not any(
                    w.lower() in words.hospital_generic or w in words.eponyms for w in named
                )
                and (len(named) >= 2 or not _opens_sentence(text, m.start()))
            ):
                yield Hit("hospital name", m.start(), m.end())
        elif any(w.lower() not in words.hospital_generic for w in named):
            yield Hit("hospital name", m.start(), m.end())
    for m in re.finditer(r"\b(?:St\.?|Saint)\s+[A-Z][a-z]+['\u2019]s\b", text):
        yield Hit("hospital name", m.start(), m.end())
    # "Hospital for Sick Children", "Infirmary of St Cross"
    for m in re.finditer(
        rf"\b(?:Hospital|Infirmary|Clinic)\s+(?:for|of)\s+(?:the\s+)?(?:{_CAP})(?:\s+(?:{_CAP}))*",
        text,
    ):
        yield Hit("hospital name", m.start(), m.end())
    for pattern in (words.street, words.street_alone):
        for m in pattern.finditer(text):
            if not _NUMBERED_THING.search(text[max(0, m.start() - 12) : m.start()]):
                yield Hit("street address", m.start(), m.end())
    # 8 digits in two fours: a local phone number, unless it is a range of years...
    # Nor a page range ("357:1391-1396").
    for m in _EIGHT_DIGITS.finditer(text):
        low, high = int(m.group(1)), int(m.group(2))
        years = all(re.fullmatch(r"(?:19|20)\d\d", part) for part in m.groups())
        pages = text[m.end(1)] == "-" and 0 < high - low < 1000
        if not (years or pages or text[max(0, m.start() - 1) : m.start()] == ":"):
            yield Hit("phone number", m.start(), m.end())
    yield from _name_hits(text, words)


def _name_hits(text: str, words: _Words) -> Iterator[Hit]:
    tokens = list(_NAME_TOKEN.finditer(text))
    for index, (first, second) in enumerate(itertools.pairwise(tokens)):
        gap = text[first.end() : second.start()]
        # Lists hold the word a particle leads to: "van der Meulen" is looked up as "Meulen".
        a, b = first.group().split()[-1], second.group().split()[-1]
        plain_a = " " not in first.group()  # a given name, a title: no particle before it
        if gap.strip(" .") == "" and "\n" not in gap and plain_a and a.rstrip(".") in words.titles:
            if b not in words.not_after_title:
                end = second.end()
                # "Dr Radhiana Hassan": the surname after an unlisted given name belongs to it.
                if index + 2 < len(tokens):
                    third = tokens[index + 2]
                    if (
                        text[end : third.start()] == " "
                        and third.group() not in words.not_a_surname
                    ):
                        end = third.end()
                yield Hit("name after a title", first.start(), end)
            continue
        if gap == ", ":
            if (a in words.surnames and (b in words.given or b in words.given_word_like)) or (
                _cued(text, first.start()) and _unlisted_name(a, b, words)
            ):
                yield Hit("name", first.start(), second.end())
            continue
        if gap != " " or not plain_a:
            continue
        if text[first.start() - 1 : first.start()] == "-" or _eponym_follows(
            text, second.end(), words
        ):
            continue
        # "Von Hippel-Lindau": a hyphenated eponym is no surname; "Morton Neuroma" names a
        # lesion; "In Six Weeks" (title case) opens with a function word.
        if (
            b in words.not_a_surname
            or b.lower() in words.eponym_nouns
            or a in words.not_a_surname
            or any(part in words.eponyms_only for part in b.split("-"))
        ):
            continue
        if (
            a in words.given
            or (a in words.given_word_like and b in words.surnames)
            or (
                _unlisted_name(a, b, words)
                and (
                    _cued(text, first.start())
                    or (
                        _opens_sentence(text, first.start())
                        and _subject_follows(text, second.end())
                    )
                )
            )
        ):
            yield Hit("name", first.start(), second.end())
    # "Margaret is a 76-year-old", "David, a 34-year-old": a given name as the subject.
    for m in re.finditer(
        r"\b([A-Z][a-z]+)(?:,\s+an?|\s+(?:is|was)\s+an?)\s+\d{1,3}[- ](?:year|month)s?[- ]old", text
    ):
        if m.group(1) in words.given or m.group(1) in words.given_word_like:
            yield Hit("name", m.start(1), m.end(1))
    # "SMITH, JOHN" / "SMITH, John": a listed surname in capitals, a comma, a given name.
    for m in re.finditer(rf"\b({_UPPER_WORD}),\s*([A-Z][A-Za-z]+)\b", text):
        if re.search(r"[A-Z][a-z]+\s$", text[max(0, m.start() - 30) : m.start()]):
            continue  # "Miller RE, Nelson SW": initials in a reference, not a surname
        if m.group(1).title() in words.surnames and m.group(2).title() in (
            words.given | words.given_word_like
        ):
            yield Hit("name", m.start(), m.end())


def _unlisted_name(a: str, b: str, words: _Words) -> bool:
    """Whether two capitalised words may be a name that the lists do not hold."""
    return not any(
        w in words.not_a_surname
        or w.lower() in words.hospital_generic
        or w in words.eponyms
        or w.rstrip(".") in words.titles
        or w.lower() in words.eponym_nouns
        or _MEDICAL_ENDING.search(w)
        for w in (a, b)
    )


def _cued(text: str, start: int) -> bool:
    before = text[max(0, start - 50) : start]
    m = re.search(r"(\S+)\s+$", before)
    return m is not None and (m.group(1).lower() in _NAME_CUES or bool(_BY_A_PERSON.search(before)))


def _opens_sentence(text: str, start: int) -> bool:
    return re.search(r"(?:^|[.!?:;]\s+|\n\s*)$", text[max(0, start - 4) : start]) is not None


def _subject_follows(text: str, end: int) -> bool:
    m = re.match(r"\s+([\w-]+)", text[end : end + 20])
    return m is not None and m.group(1).lower() in _SUBJECT_VERBS


def _eponym_follows(text: str, end: int, words: _Words) -> bool:
    """True if the word after ``end`` names a sign, syndrome or the like ("Austin Flint murmur")."""
    m = re.match(
        r"(?:['\u2019]s)?(?:[\s-]+(?:(?i:[ivx]{1,4})|[A-D]|\d))?[\s-]+([A-Za-z]+)",
        text[end : end + 40],
    )
    return m is not None and m.group(1).lower() in words.eponym_nouns


@functools.lru_cache(maxsize=32)
def _institution_pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    """Registered names as whole words: any case from four letters on ("outback district");
    shorter ones ("RDH", "QEH") only as written, so that "RDH" never matches "rdh" in a word."""

    def body(group: list[str]) -> str:
        return "|".join(
            r"\s+".join(re.escape(w) for w in n.split())
            for n in sorted(group, key=len, reverse=True)
        )

    names = tuple(n.strip() for n in names)
    long = [n for n in names if len(n) >= 4]
    short = [n for n in names if 2 <= len(n) < 4]
    parts = [f"(?i:{body(long)})"] if long else []
    parts += [body(short)] if short else []
    if not parts:
        return None
    return re.compile(rf"(?<![\w'\u2019-])(?:{'|'.join(parts)})(?![\w'\u2019-])")


def _institution_hits(text: str, names: tuple[str, ...]) -> Iterator[Hit]:
    pattern = _institution_pattern(tuple(sorted(set(names))))
    if pattern is not None:
        for m in pattern.finditer(text):
            yield Hit("hospital name", m.start(), m.end())


def _merge(hits: list[Hit]) -> list[Hit]:
    merged: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if merged and hit.start < merged[-1].end:
            last = merged[-1]
            if hit.end > last.end:
                merged[-1] = Hit(last.kind, last.start, hit.end)
            continue
        merged.append(hit)
    return merged
