"""Read and write the ``cases/`` folder format (sample cases, export, import); pure, no database.

One folder per case (the format is documented for authors in ``cases/README.md``)::

    <slug>/
      case.md           YAML front matter between "---" lines, then "## Heading" sections
      quiz.yaml         a list of questions (optional)
      annotations.json  the author's teaching overlay (optional)
      dicom/            de-identified DICOM files, any names, nested folders allowed

Everything read here is outside input, so it is bounded: file sizes are capped,
YAML is read with ``yaml.safe_load`` after a pass that refuses aliases (billion
laughs) and deep nesting, JSON nesting is capped, symlinks anywhere in the folder
are refused (an archive must not point outside itself), and every error is a
:class:`CaseFormatError` whose message names the file and the problem.

Writing is deterministic (fixed key order, fixed YAML and JSON style), so
``write -> read -> write`` gives the same bytes.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Final, TypeAlias

import yaml

from app.domain import CHOICE_KINDS, QuestionKind
from app.errors import Invalid

__all__ = [
    "ANNOTATION_KINDS",
    "CERTAINTIES",
    "DIFFICULTIES",
    "MODALITIES",
    "QUESTION_TYPES",
    "SECTIONS",
    "SMALL_HOSPITAL_MODALITIES",
    "VISIBILITIES",
    "Annotation",
    "CaseFolder",
    "CaseFormatError",
    "CaseMeta",
    "Ellipse",
    "KeyImage",
    "Polygon",
    "QuizOption",
    "QuizQuestion",
    "SetCredit",
    "SetFile",
    "iter_case_folders",
    "iter_set_files",
    "read_case_folder",
    "read_set_file",
    "render_annotations_json",
    "render_case_md",
    "render_quiz_yaml",
    "render_set_yaml",
    "write_case_folder",
    "write_set_file",
]

CASE_MD: Final = "case.md"
QUIZ_YAML: Final = "quiz.yaml"
ANNOTATIONS_JSON: Final = "annotations.json"
DICOM_DIR: Final = "dicom"
#: Case sets (courses) live beside the case folders: ``<root>/_sets/<slug>.yaml``.
SETS_DIR: Final = "_sets"
MAX_SET_YAML: Final = 100_000
MAX_SET_CASES: Final = 200

#: Caps (bytes). A long case.md is ~30 kB; seven sections at the Markdown field cap is 140 kB.
MAX_CASE_MD: Final = 200_000
MAX_QUIZ_YAML: Final = 200_000
MAX_ANNOTATIONS_JSON: Final = 200_000
#: Same figure as app.markup.MAX_FIELD_CHARS (adapters may not import each other).
MAX_SECTION_CHARS: Final = 20_000
MAX_TITLE_CHARS: Final = 300
MAX_QUESTIONS: Final = 100
MAX_ANNOTATIONS: Final = 1_000
MAX_NESTING: Final = 12
MAX_DICOM_FILES: Final = 5_000

SLUG_RE: Final = re.compile(r"[a-z0-9-]{1,80}")

#: Fixed section headings, in page order, and the keys they map to.
SECTIONS: Final[dict[str, str]] = {
    "Clinical history": "history",
    "Imaging findings": "findings",
    "Diagnosis": "diagnosis_text",
    "Differential diagnosis": "differential",
    "Discussion": "discussion",
    "Teaching points": "teaching_points",
    "References": "references",
}
_HEADING_OF: Final = {key: heading for heading, key in SECTIONS.items()}
_SECTION_KEY: Final = {heading.lower(): key for heading, key in SECTIONS.items()}

DIFFICULTIES: Final = ("beginner", "intermediate", "advanced")
CERTAINTIES: Final = ("pathology", "surgery", "follow-up", "clinical", "imaging consensus")
VISIBILITIES: Final = ("private", "institution", "public")
SMALL_HOSPITAL_MODALITIES: Final = ("X-ray", "ultrasound", "CT")
#: Modality defined terms, PS3.3 C.7.3.1.1.1 (the ones a teaching case may carry).
MODALITIES: Final = frozenset({
    "CR", "CT", "DX", "MR", "US", "MG", "NM", "PT", "XA", "RF", "IO", "PX", "OT", "SC",
    "OP", "OPT", "ES", "XC", "SM", "BMD", "IVUS", "DOC", "SR", "KO", "PR", "SEG",
    "RTIMAGE", "RTDOSE", "RTSTRUCT", "RTPLAN", "ECG", "HD", "TG",
})
QUESTION_TYPES: Final = tuple(QuestionKind)
ANNOTATION_KINDS: Final = ("arrow", "line", "ellipse", "text")
#: How many points each annotation kind has (arrow: tail then head; ellipse: two
#: opposite corners of its bounding box; text: its anchor).
_ANNOTATION_POINTS: Final = {"arrow": 2, "line": 2, "ellipse": 2, "text": 1}

_META_FIELDS: Final = (
    "title", "diagnosis", "modality", "body_region", "tags", "difficulty", "audience",
    "certainty", "small_hospital_modality", "visibility", "synthetic_images",
    "case_of_the_day_eligible", "key_images", "authors",
)


class CaseFormatError(Invalid):
    """A case folder breaks the format; the message names the file and the problem."""


# --- the data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyImage:
    """One image the case presents first (and the usual target of a hotspot)."""

    series_uid: str
    sop_instance_uid: str
    frame: int = 1


@dataclass
class CaseMeta:
    """The front matter of case.md."""

    title: str
    diagnosis: str = ""
    modality: list[str] = field(default_factory=list)
    body_region: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    difficulty: str = "intermediate"
    audience: list[str] = field(default_factory=list)
    certainty: str | None = None
    small_hospital_modality: list[str] = field(default_factory=list)
    visibility: str = "private"
    synthetic_images: bool = False
    case_of_the_day_eligible: bool | None = None
    key_images: list[KeyImage] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QuizOption:
    """One option of a single- or multiple-answer question."""

    text: str
    correct: bool
    explanation: str = ""
    #: Stays last when options are shuffled ("None of the above").
    pinned_last: bool = False


@dataclass(frozen=True)
class Ellipse:
    """A hotspot ellipse in pixel coordinates (column, row) of the image."""

    cx: float
    cy: float
    rx: float
    ry: float

    def contains(self, x: float, y: float) -> bool:
        return ((x - self.cx) / self.rx) ** 2 + ((y - self.cy) / self.ry) ** 2 <= 1.0

    def bounds(self) -> tuple[float, float, float, float]:
        """(min x, min y, max x, max y)."""
        return (self.cx - self.rx, self.cy - self.ry, self.cx + self.rx, self.cy + self.ry)


@dataclass(frozen=True)
class Polygon:
    """A hotspot polygon in pixel coordinates (column, row) of the image."""

    points: tuple[tuple[float, float], ...]

    def contains(self, x: float, y: float) -> bool:
        inside = False
        pts = self.points
        for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1], strict=True):
            if (y1 > y) != (y2 > y) and x < (x2 - x1) * (y - y1) / (y2 - y1) + x1:
                inside = not inside
        return inside

    def bounds(self) -> tuple[float, float, float, float]:
        """(min x, min y, max x, max y)."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return (min(xs), min(ys), max(xs), max(ys))


Region: TypeAlias = Ellipse | Polygon


@dataclass
class QuizQuestion:
    """One question; which fields are used depends on ``type`` (see cases/README.md).

    ``frames`` of a hotspot are 1-based and inclusive: image numbers in the series'
    stack (instances in order, or frames of a multi-frame object).
    """

    type: str
    stem: str
    reference: str = ""
    teaching_point: str = ""
    options: list[QuizOption] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    series_uid: str | None = None
    frames: tuple[int, int] | None = None
    region: Region | None = None


@dataclass(frozen=True)
class Annotation:
    """One mark of the author's teaching overlay, in pixel coordinates (column, row)."""

    series_uid: str
    sop_instance_uid: str
    frame: int
    kind: str
    points: tuple[tuple[float, float], ...]
    text: str | None = None


@dataclass
class CaseFolder:
    """A whole case as it lies on disk; ``dicom_files`` are paths, read on demand."""

    slug: str
    meta: CaseMeta
    sections: dict[str, str] = field(default_factory=dict)
    questions: list[QuizQuestion] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    dicom_files: list[Path] = field(default_factory=list)


# --- small validators -----------------------------------------------------------------------


class _Checker:
    """Type checks that raise CaseFormatError naming the file and the field."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, where: str, problem: str) -> CaseFormatError:
        prefix = f"{self.file}: {where}: " if where else f"{self.file}: "
        return CaseFormatError(prefix + problem)

    def mapping(self, value: object, where: str, keys: Iterable[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of fields, found {_kind(value)}")
        allowed = tuple(keys)
        unknown = [str(k) for k in value if k not in allowed]
        if unknown:
            raise self.fail(where, f"unknown field {unknown[0]!r} (allowed: {', '.join(allowed)})")
        return value

    def text(self, value: object, where: str, *, required: bool = False,
             limit: int = MAX_SECTION_CHARS) -> str:
        if value is None and not required:
            return ""
        if not isinstance(value, str):
            raise self.fail(where, f"expected text, found {_kind(value)} (quote it)")
        if required and not value.strip():
            raise self.fail(where, "must not be empty")
        if len(value) > limit:
            raise self.fail(where, f"{len(value):,} characters, the limit is {limit:,}")
        return value

    def uid(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"a UID must be quoted text, found {_kind(value)}")
        if not re.fullmatch(r"[0-9]+(\.[0-9]+)*", value) or len(value) > 64:
            raise self.fail(where, "not a valid DICOM UID (digits and dots, at most 64)")
        return value

    def texts(self, value: object, where: str, *, choices: Iterable[str] | None = None
              ) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, found {_kind(value)}")
        out = [self.text(v, f"{where}[{i + 1}]", required=True, limit=200)
               for i, v in enumerate(value)]
        if choices is not None:
            allowed = tuple(choices)
            for v in out:
                if v not in allowed:
                    raise self.fail(where, f"unknown value {v!r} (allowed: {', '.join(allowed)})")
        return out

    def choice(self, value: object, where: str, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(where, f"unknown value {value!r} (allowed: {', '.join(choices)})")
        return str(value)

    def boolean(self, value: object, where: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, found {_kind(value)}")
        return value

    def integer(self, value: object, where: str, *, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected a whole number, found {_kind(value)}")
        if value < minimum:
            raise self.fail(where, f"must be at least {minimum}")
        return value

    def number(self, value: object, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number, found {_kind(value)}")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(where, "expected a finite number")
        return value

    def point(self, value: object, where: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(where, "a point is a list [x, y]")
        return (self.number(value[0], where), self.number(value[1], where))

    def list_of(self, value: object, where: str, limit: int) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, found {_kind(value)}")
        if len(value) > limit:
            raise self.fail(where, f"{len(value)} entries, the limit is {limit}")
        return value


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {bool: "true/false", int: "a number", float: "a number", str: "text",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


# --- reading --------------------------------------------------------------------------------


def _read_text(path: Path, limit: int) -> str:
    name = path.name
    try:
        size = path.stat().st_size
        if size > limit:
            raise CaseFormatError(f"{name}: {size:,} bytes, the limit is {limit:,}")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise CaseFormatError(f"{name}: cannot be read ({exc.strerror})") from None
    if len(data) > limit:
        raise CaseFormatError(f"{name}: larger than the limit of {limit:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaseFormatError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _load_yaml(text: str, file: str) -> Any:
    """``yaml.safe_load`` after a pass refusing aliases and deep nesting (YAML bombs)."""
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise CaseFormatError(f"{file}: YAML aliases (*name) are not allowed "
                                      f"(line {_line(event)})")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    raise CaseFormatError(f"{file}: nested deeper than {MAX_NESTING} levels "
                                          f"(line {_line(event)})")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise CaseFormatError(f"{file}: malformed YAML{where}: {problem}") from None


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return int(mark.line) + 1 if mark is not None else 0


_HEADING_RE: Final = re.compile(r"##[ \t]+(.+?)[ \t#]*")
_FENCE_RE: Final = re.compile(r"[ ]{0,3}(`{3,}|~{3,})")


def _parse_case_md(text: str) -> tuple[CaseMeta, dict[str, str]]:
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise CaseFormatError(f"{CASE_MD}: must start with a '---' line opening the front matter")
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "..."))
    except StopIteration:
        raise CaseFormatError(f"{CASE_MD}: the front matter has no closing '---' line") from None
    front = _load_yaml("\n".join(lines[1:end]), f"{CASE_MD} front matter")
    meta = _parse_meta(front)
    return meta, _parse_sections(lines[end + 1:], end + 2)


def _parse_sections(lines: list[str], first_line: int) -> dict[str, str]:
    check = _Checker(CASE_MD)
    sections: dict[str, list[str]] = {}
    current: str | None = None
    fence: str | None = None
    for offset, line in enumerate(lines):
        fence_match = _FENCE_RE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
        heading = _HEADING_RE.fullmatch(line.rstrip()) if fence is None else None
        if heading:
            title = heading.group(1)
            key = _SECTION_KEY.get(title.lower())
            if key is None:
                raise check.fail(
                    f"line {first_line + offset}",
                    f"unknown section heading '## {title}' "
                    f"(allowed: {', '.join(SECTIONS)})",
                )
            if key in sections:
                raise check.fail(f"line {first_line + offset}",
                                 f"section '## {_HEADING_OF[key]}' appears twice")
            current = key
            sections[key] = []
        elif current is None:
            if line.strip():
                raise check.fail(f"line {first_line + offset}",
                                 "text before the first '## ' section heading")
        else:
            sections[current].append(line)
    out: dict[str, str] = {}
    for key in SECTIONS.values():  # page order, whatever the file's order
        if key not in sections:
            continue
        body = "\n".join(sections[key]).strip("\n").rstrip()
        check.text(body, f"section '{_HEADING_OF[key]}'")
        if body:
            out[key] = body
    return out


def _parse_meta(front: object) -> CaseMeta:
    c = _Checker(f"{CASE_MD} front matter")
    data = c.mapping(front, "", _META_FIELDS)
    if "title" not in data:
        raise c.fail("", "the field 'title' is required")
    key_images = []
    raw_keys = data.get("key_images")
    for i, item in enumerate(c.list_of(raw_keys or [], "key_images", 100)):
        where = f"key_images[{i + 1}]"
        k = c.mapping(item, where, ("series_uid", "sop_instance_uid", "frame"))
        key_images.append(KeyImage(
            series_uid=c.uid(k.get("series_uid"), f"{where}.series_uid"),
            sop_instance_uid=c.uid(k.get("sop_instance_uid"), f"{where}.sop_instance_uid"),
            frame=c.integer(k.get("frame", 1), f"{where}.frame"),
        ))
    modality = [m.upper() for m in c.texts(data.get("modality"), "modality")]
    for m in modality:
        if m not in MODALITIES:
            raise c.fail("modality",
                         f"{m!r} is not a DICOM modality code (e.g. CT, MR, CR, DX, US)")
    cotd = data.get("case_of_the_day_eligible")
    certainty = data.get("certainty")
    return CaseMeta(
        title=c.text(data["title"], "title", required=True, limit=MAX_TITLE_CHARS),
        diagnosis=c.text(data.get("diagnosis"), "diagnosis", limit=MAX_TITLE_CHARS),
        modality=modality,
        body_region=c.texts(data.get("body_region"), "body_region"),
        tags=c.texts(data.get("tags"), "tags"),
        difficulty=c.choice(data.get("difficulty", "intermediate"), "difficulty", DIFFICULTIES),
        audience=c.texts(data.get("audience"), "audience"),
        certainty=None if certainty is None else c.choice(certainty, "certainty", CERTAINTIES),
        small_hospital_modality=c.texts(data.get("small_hospital_modality"),
                                        "small_hospital_modality",
                                        choices=SMALL_HOSPITAL_MODALITIES),
        visibility=c.choice(data.get("visibility", "private"), "visibility", VISIBILITIES),
        synthetic_images=c.boolean(data.get("synthetic_images", False), "synthetic_images"),
        case_of_the_day_eligible=None if cotd is None else c.boolean(cotd,
                                                                     "case_of_the_day_eligible"),
        key_images=key_images,
        authors=c.texts(data.get("authors"), "authors"),
    )


_QUESTION_FIELDS: Final = ("type", "stem", "reference", "teaching_point", "options", "accepted",
                           "series_uid", "frames", "region")


def _parse_quiz(data: object) -> list[QuizQuestion]:
    c = _Checker(QUIZ_YAML)
    if data is None:
        return []
    out = []
    for i, raw in enumerate(c.list_of(data, "the file", MAX_QUESTIONS)):
        where = f"question {i + 1}"
        q = c.mapping(raw, where, _QUESTION_FIELDS)
        kind = c.choice(q.get("type"), f"{where}.type", QUESTION_TYPES)
        question = QuizQuestion(
            type=kind,
            stem=c.text(q.get("stem"), f"{where}.stem", required=True),
            reference=c.text(q.get("reference"), f"{where}.reference"),
            teaching_point=c.text(q.get("teaching_point"), f"{where}.teaching_point"),
        )
        used = {"type", "stem", "reference", "teaching_point"}
        if kind in CHOICE_KINDS:
            used.add("options")
            options = c.list_of(q.get("options"), f"{where}.options", 26)
            for j, raw_opt in enumerate(options):
                ow = f"{where}.options[{j + 1}]"
                o = c.mapping(raw_opt, ow, ("text", "correct", "explanation", "pinned_last"))
                question.options.append(QuizOption(
                    text=c.text(o.get("text"), f"{ow}.text", required=True, limit=2_000),
                    correct=c.boolean(o.get("correct", False), f"{ow}.correct"),
                    explanation=c.text(o.get("explanation"), f"{ow}.explanation"),
                    pinned_last=c.boolean(o.get("pinned_last", False), f"{ow}.pinned_last"),
                ))
            if len(question.options) < 2:
                raise c.fail(f"{where}.options", "a question needs at least two options")
            right = sum(o.correct for o in question.options)
            if kind == QuestionKind.SINGLE and right != 1:
                raise c.fail(f"{where}.options",
                             f"a single-answer question needs exactly one correct option, "
                             f"found {right}")
            if kind == QuestionKind.MULTIPLE and right < 1:
                raise c.fail(f"{where}.options",
                             "a multiple-answer question needs at least one correct option")
        elif kind == QuestionKind.FREE_TEXT:
            used.add("accepted")
            question.accepted = c.texts(c.list_of(q.get("accepted"), f"{where}.accepted", 100),
                                        f"{where}.accepted")
            if not question.accepted:
                raise c.fail(f"{where}.accepted", "list at least one accepted answer")
        else:
            used |= {"series_uid", "frames", "region"}
            question.series_uid = c.uid(q.get("series_uid"), f"{where}.series_uid")
            frames = q.get("frames")
            if not isinstance(frames, list) or len(frames) != 2:
                raise c.fail(f"{where}.frames", "expected [first, last] (1-based, inclusive)")
            first = c.integer(frames[0], f"{where}.frames")
            last = c.integer(frames[1], f"{where}.frames")
            if last < first:
                raise c.fail(f"{where}.frames", "the last frame comes before the first")
            question.frames = (first, last)
            question.region = _parse_region(c, q.get("region"), f"{where}.region")
        extra = sorted(k for k in q if k not in used)
        if extra:
            raise c.fail(where, f"field {extra[0]!r} does not apply to a {kind} question")
        out.append(question)
    return out


def _parse_region(c: _Checker, raw: object, where: str) -> Region:
    r = c.mapping(raw, where, ("shape", "cx", "cy", "rx", "ry", "points"))
    shape = c.choice(r.get("shape"), f"{where}.shape", ("ellipse", "polygon"))
    if shape == "ellipse":
        if "points" in r:
            raise c.fail(where, "an ellipse has cx, cy, rx, ry, not points")
        e = Ellipse(*(c.number(r.get(k), f"{where}.{k}") for k in ("cx", "cy", "rx", "ry")))
        if e.rx <= 0 or e.ry <= 0:
            raise c.fail(where, "rx and ry must be greater than 0")
        return e
    if set(r) - {"shape", "points"}:
        raise c.fail(where, "a polygon has points only")
    pts = c.list_of(r.get("points"), f"{where}.points", 1_000)
    if len(pts) < 3:
        raise c.fail(f"{where}.points", "a polygon needs at least three points")
    return Polygon(tuple(c.point(p, f"{where}.points[{i + 1}]") for i, p in enumerate(pts)))


def _parse_annotations(text: str) -> list[Annotation]:
    c = _Checker(ANNOTATIONS_JSON)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise c.fail("", f"malformed JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise c.fail("", "nested too deeply") from None
    out = []
    for i, raw in enumerate(c.list_of(data, "the file", MAX_ANNOTATIONS)):
        where = f"annotation {i + 1}"
        a = c.mapping(raw, where, ("series_uid", "sop_instance_uid", "frame", "kind", "points",
                                   "text"))
        kind = c.choice(a.get("kind"), f"{where}.kind", ANNOTATION_KINDS)
        pts = c.list_of(a.get("points"), f"{where}.points", 10)
        if len(pts) != _ANNOTATION_POINTS[kind]:
            raise c.fail(f"{where}.points",
                         f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} has "
                         f"{_ANNOTATION_POINTS[kind]} point(s), found {len(pts)}")
        label = a.get("text")
        if kind == "text" and not label:
            raise c.fail(f"{where}.text", "a text annotation needs its text")
        out.append(Annotation(
            series_uid=c.uid(a.get("series_uid"), f"{where}.series_uid"),
            sop_instance_uid=c.uid(a.get("sop_instance_uid"), f"{where}.sop_instance_uid"),
            frame=c.integer(a.get("frame", 1), f"{where}.frame"),
            kind=kind,
            points=tuple(c.point(p, f"{where}.points[{j + 1}]") for j, p in enumerate(pts)),
            text=None if label is None else c.text(label, f"{where}.text", limit=500),
        ))
    return out


def _scan_folder(path: Path) -> list[Path]:
    """Refuse symlinks and unexpected entries; return the DICOM files, sorted."""
    for entry in sorted(path.iterdir()):
        if entry.is_symlink():
            raise CaseFormatError(f"{entry.name}: symbolic links are not allowed in a case folder")
        if entry.name.startswith("."):
            continue
        if entry.name == DICOM_DIR and entry.is_dir():
            continue
        if entry.name in (CASE_MD, QUIZ_YAML, ANNOTATIONS_JSON) and entry.is_file():
            continue
        raise CaseFormatError(
            f"{entry.name}: unexpected entry in the case folder (expected {CASE_MD}, "
            f"{QUIZ_YAML}, {ANNOTATIONS_JSON} and a {DICOM_DIR}/ folder)"
        )
    files: list[Path] = []
    dicom = path / DICOM_DIR
    if not dicom.is_dir():
        return files
    for dirpath, dirnames, filenames in os.walk(dicom, followlinks=False):
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            p = base / name
            rel = p.relative_to(path).as_posix()
            if p.is_symlink():
                raise CaseFormatError(f"{rel}: symbolic links are not allowed in a case folder")
            if name in filenames and not name.startswith(".") and p.is_file():
                files.append(p)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if len(files) > MAX_DICOM_FILES:
            raise CaseFormatError(f"{DICOM_DIR}/: more than {MAX_DICOM_FILES:,} files")
    return sorted(files, key=lambda p: p.relative_to(dicom).as_posix())


def read_case_folder(path: Path) -> CaseFolder:
    """Read and validate one case folder; the slug is the folder's name.

    Raises :class:`CaseFormatError` naming the file and the problem. DICOM files are
    listed (regular files under ``dicom/``, dotfiles skipped), not opened.
    """
    path = Path(path)
    slug = path.name
    if not SLUG_RE.fullmatch(slug):
        raise CaseFormatError(
            f"{slug!r}: a case folder's name must be 1-80 lowercase letters, digits or hyphens"
        )
    if path.is_symlink():
        raise CaseFormatError(f"{slug}: the case folder is a symbolic link")
    if not path.is_dir():
        raise CaseFormatError(f"{slug}: not a folder")
    dicom_files = _scan_folder(path)
    if not (path / CASE_MD).is_file():
        raise CaseFormatError(f"{slug}: {CASE_MD} is missing")
    meta, sections = _parse_case_md(_read_text(path / CASE_MD, MAX_CASE_MD))
    questions: list[QuizQuestion] = []
    if (path / QUIZ_YAML).is_file():
        questions = _parse_quiz(_load_yaml(_read_text(path / QUIZ_YAML, MAX_QUIZ_YAML),
                                           QUIZ_YAML))
    annotations: list[Annotation] = []
    if (path / ANNOTATIONS_JSON).is_file():
        annotations = _parse_annotations(_read_text(path / ANNOTATIONS_JSON,
                                                    MAX_ANNOTATIONS_JSON))
    return CaseFolder(slug=slug, meta=meta, sections=sections, questions=questions,
                      annotations=annotations, dicom_files=dicom_files)


def iter_case_folders(root: Path) -> Iterator[Path]:
    """Every folder directly under ``root`` that holds a case.md, in name order.

    Hidden folders are skipped; anything else is yielded so :func:`read_case_folder`
    can report what is wrong with it (a bad name, a symlink).
    """
    for entry in sorted(Path(root).iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if (entry / CASE_MD).is_file():
            yield entry


# --- case sets ------------------------------------------------------------------------------


@dataclass
class SetCredit:
    """A set's continuing-education settings (``credit:`` in a set file)."""

    hours: float
    passing_score: int = 70
    max_attempts: int | None = None
    time_limit_minutes: int | None = None
    faculty: str = ""
    disclosures: str = ""
    provider: str = ""
    accreditation_statement: str = ""
    credit_type: str = ""
    release_date: _dt.date | None = None
    review_date: _dt.date | None = None
    expiry_date: _dt.date | None = None
    evaluation: list[str] = field(default_factory=list)  # "rating: prompt" / "text: prompt"


@dataclass
class SetFile:
    """One case set as ``_sets/<slug>.yaml`` gives it: cases by slug, in order."""

    slug: str
    title: str
    description: str = ""
    objectives: str = ""
    visibility: str = "public"
    cases: list[str] = field(default_factory=list)
    credit: SetCredit | None = None


_SET_FIELDS: Final = ("title", "description", "objectives", "visibility", "cases", "credit")
_CREDIT_FIELDS: Final = (
    "hours", "passing_score", "max_attempts", "time_limit_minutes", "faculty", "disclosures",
    "provider", "accreditation_statement", "credit_type", "release_date", "review_date",
    "expiry_date", "evaluation",
)


def _date(c: _Checker, value: object, where: str) -> _dt.date | None:
    if value is None:
        return None
    if isinstance(value, _dt.date) and not isinstance(value, _dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise c.fail(where, "expected a date written YYYY-MM-DD")


def _optional_int(c: _Checker, value: object, where: str, top: int) -> int | None:
    if value is None:
        return None
    number = c.integer(value, where)
    if number > top:
        raise c.fail(where, f"must be at most {top}")
    return number


def _parse_credit(c: _Checker, raw: object) -> SetCredit:
    d = c.mapping(raw, "credit", _CREDIT_FIELDS)
    hours = c.number(d.get("hours"), "credit.hours")
    if not 0 < hours <= 100:
        raise c.fail("credit.hours", "credit hours are between 0 and 100")
    evaluation = c.texts(c.list_of(d.get("evaluation") or [], "credit.evaluation", 20),
                         "credit.evaluation")
    for i, line in enumerate(evaluation):
        kind, sep, prompt = line.partition(":")
        if not sep or kind.strip() not in ("rating", "text") or not prompt.strip():
            raise c.fail(f"credit.evaluation[{i + 1}]",
                         "write 'rating: question' or 'text: question'")
    return SetCredit(
        hours=float(hours),
        passing_score=_optional_int(c, d.get("passing_score", 70), "credit.passing_score",
                                    100) or 70,
        max_attempts=_optional_int(c, d.get("max_attempts"), "credit.max_attempts", 100),
        time_limit_minutes=_optional_int(c, d.get("time_limit_minutes"),
                                         "credit.time_limit_minutes", 1440),
        faculty=c.text(d.get("faculty"), "credit.faculty"),
        disclosures=c.text(d.get("disclosures", ""), "credit.disclosures", required=True),
        provider=c.text(d.get("provider"), "credit.provider", limit=300),
        accreditation_statement=c.text(d.get("accreditation_statement"),
                                       "credit.accreditation_statement", limit=5_000),
        credit_type=c.text(d.get("credit_type"), "credit.credit_type", limit=200),
        release_date=_date(c, d.get("release_date"), "credit.release_date"),
        review_date=_date(c, d.get("review_date"), "credit.review_date"),
        expiry_date=_date(c, d.get("expiry_date"), "credit.expiry_date"),
        evaluation=evaluation,
    )


def read_set_file(path: Path) -> SetFile:
    """Read and validate one set file; the slug is the file's name without ``.yaml``.

    Raises :class:`CaseFormatError` naming the file and the problem. The cases are
    slugs of case folders; whether they exist is the importer's question.
    """
    path = Path(path)
    slug = path.name.removesuffix(".yaml")
    name = f"{SETS_DIR}/{path.name}"
    if not SLUG_RE.fullmatch(slug) or not path.name.endswith(".yaml"):
        raise CaseFormatError(
            f"{name}: a set file is named <slug>.yaml, the slug 1-80 lowercase letters, "
            "digits or hyphens"
        )
    if path.is_symlink():
        raise CaseFormatError(f"{name}: symbolic links are not allowed")
    c = _Checker(name)
    data = c.mapping(_load_yaml(_read_text(path, MAX_SET_YAML), name), "", _SET_FIELDS)
    cases = c.texts(c.list_of(data.get("cases"), "cases", MAX_SET_CASES), "cases")
    if not cases:
        raise c.fail("cases", "list at least one case (by its folder name)")
    for i, case_slug in enumerate(cases):
        if not SLUG_RE.fullmatch(case_slug):
            raise c.fail(f"cases[{i + 1}]", f"{case_slug!r} is not a case folder name")
    if len(set(cases)) != len(cases):
        raise c.fail("cases", "a case is listed twice")
    raw_credit = data.get("credit")
    return SetFile(
        slug=slug,
        title=c.text(data.get("title"), "title", required=True, limit=MAX_TITLE_CHARS),
        description=c.text(data.get("description"), "description"),
        objectives=c.text(data.get("objectives"), "objectives"),
        visibility=c.choice(data.get("visibility", "public"), "visibility", VISIBILITIES),
        cases=cases,
        credit=None if raw_credit is None else _parse_credit(c, raw_credit),
    )


def iter_set_files(root: Path) -> Iterator[Path]:
    """Every ``<root>/_sets/*.yaml`` in name order (none if the folder is absent)."""
    folder = Path(root) / SETS_DIR
    if folder.is_symlink():
        raise CaseFormatError(f"{SETS_DIR}/: symbolic links are not allowed")
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.suffix != ".yaml" or not entry.is_file():
            raise CaseFormatError(
                f"{SETS_DIR}/{entry.name}: unexpected entry (set files are <slug>.yaml)"
            )
        yield entry


# --- writing --------------------------------------------------------------------------------


def _dump_yaml(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=100, indent=2)


def _meta_dict(meta: CaseMeta) -> dict[str, Any]:
    out: dict[str, Any] = {
        "title": meta.title,
        "diagnosis": meta.diagnosis,
        "modality": list(meta.modality),
        "body_region": list(meta.body_region),
        "tags": list(meta.tags),
        "difficulty": meta.difficulty,
        "audience": list(meta.audience),
        "certainty": meta.certainty,
        "small_hospital_modality": list(meta.small_hospital_modality),
        "visibility": meta.visibility,
        "synthetic_images": meta.synthetic_images,
        "case_of_the_day_eligible": meta.case_of_the_day_eligible,
        "key_images": [
            {"series_uid": k.series_uid, "sop_instance_uid": k.sop_instance_uid, "frame": k.frame}
            for k in meta.key_images
        ],
        "authors": list(meta.authors),
    }
    return {k: v for k, v in out.items() if v not in (None, [], "")}


def render_case_md(meta: CaseMeta, sections: dict[str, str]) -> str:
    """The text of case.md: front matter, then the sections in page order."""
    unknown = set(sections) - set(SECTIONS.values())
    if unknown:
        raise CaseFormatError(f"{CASE_MD}: unknown section key {sorted(unknown)[0]!r}")
    parts = ["---\n", _dump_yaml(_meta_dict(meta)), "---\n"]
    for heading, key in SECTIONS.items():
        body = sections.get(key, "").strip("\n").rstrip()
        if body:
            parts.append(f"\n## {heading}\n\n{body}\n")
    return "".join(parts)


def _number(v: float) -> float:
    """Whole numbers as ints, so 120.0 and 120 write alike (numpy scalars become plain)."""
    f = float(v)
    return int(f) if f.is_integer() else f


def _question_dict(q: QuizQuestion) -> dict[str, Any]:
    out: dict[str, Any] = {"type": q.type, "stem": q.stem}
    if q.type in CHOICE_KINDS:
        out["options"] = [
            {"text": o.text, "correct": o.correct,
             **({"explanation": o.explanation} if o.explanation else {}),
             **({"pinned_last": True} if o.pinned_last else {})}
            for o in q.options
        ]
    elif q.type == QuestionKind.FREE_TEXT:
        out["accepted"] = list(q.accepted)
    else:
        out["series_uid"] = q.series_uid
        out["frames"] = list(q.frames) if q.frames else None
        r = q.region
        if isinstance(r, Ellipse):
            out["region"] = {"shape": "ellipse", "cx": _number(r.cx), "cy": _number(r.cy),
                             "rx": _number(r.rx), "ry": _number(r.ry)}
        elif isinstance(r, Polygon):
            out["region"] = {"shape": "polygon",
                             "points": [[_number(x), _number(y)] for x, y in r.points]}
    if q.reference:
        out["reference"] = q.reference
    if q.teaching_point:
        out["teaching_point"] = q.teaching_point
    return out


class _FlowListDumper(yaml.SafeDumper):
    """Short lists of numbers (frames, points) in flow style: ``[12, 14]``."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in data)
    flow = numbers or (bool(data) and all(isinstance(v, list) for v in data))
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowListDumper.add_representer(list, _represent_list)


def render_quiz_yaml(questions: list[QuizQuestion]) -> str:
    """The text of quiz.yaml."""
    return yaml.dump([_question_dict(q) for q in questions], Dumper=_FlowListDumper,
                     sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=100, indent=2)


def render_annotations_json(annotations: list[Annotation]) -> str:
    """The text of annotations.json: one annotation per line, keys in a fixed order."""
    rows = []
    for a in annotations:
        row: dict[str, Any] = {
            "series_uid": a.series_uid, "sop_instance_uid": a.sop_instance_uid,
            "frame": a.frame, "kind": a.kind,
            "points": [[_number(x), _number(y)] for x, y in a.points],
        }
        if a.text is not None:
            row["text"] = a.text
        rows.append("  " + json.dumps(row, ensure_ascii=False))
    return "[\n" + ",\n".join(rows) + "\n]\n" if rows else "[]\n"


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _safe_relative(name: str) -> PurePosixPath:
    rel = PurePosixPath(name.replace("\\", "/"))
    if (rel.is_absolute() or not rel.parts
            or any(p in ("", ".", "..") or not re.fullmatch(r"[A-Za-z0-9._-]{1,100}", p)
                   for p in rel.parts)
            or len(rel.parts) > 8):
        raise CaseFormatError(f"{DICOM_DIR}/{name}: not a safe file name inside the case folder")
    return rel


def write_case_folder(case: CaseFolder, dest: Path,
                      dicom_sources: Iterable[tuple[str, bytes]] | None = None) -> None:
    """Write ``case`` into the folder ``dest`` (named ``case.slug``), deterministically.

    case.md is always written; quiz.yaml and annotations.json only when there are
    questions or annotations (a stale one is removed). ``dicom_sources`` are
    ``(relative name, bytes)`` pairs written under ``dicom/``; ``case.dicom_files``
    is not copied (the caller decides where the bytes come from).
    """
    dest = Path(dest)
    if dest.name != case.slug or not SLUG_RE.fullmatch(case.slug):
        raise CaseFormatError(
            f"{dest.name}: write a case into a folder named after its slug ({case.slug!r})"
        )
    if dest.is_symlink():
        raise CaseFormatError(f"{dest.name}: the case folder is a symbolic link")
    dest.mkdir(parents=True, exist_ok=True)
    _atomic_write(dest / CASE_MD, render_case_md(case.meta, case.sections).encode("utf-8"))
    optional = {
        QUIZ_YAML: render_quiz_yaml(case.questions) if case.questions else None,
        ANNOTATIONS_JSON: (render_annotations_json(case.annotations) if case.annotations
                           else None),
    }
    for name, text in optional.items():
        if text is not None:
            _atomic_write(dest / name, text.encode("utf-8"))
        elif (dest / name).is_file():
            (dest / name).unlink()
    if dicom_sources is None:
        return
    seen: set[PurePosixPath] = set()
    for name, data in dicom_sources:
        rel = _safe_relative(name)
        if rel in seen:
            raise CaseFormatError(f"{DICOM_DIR}/{rel}: two files with the same name")
        seen.add(rel)
        target = dest / DICOM_DIR / Path(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(target, data)


def render_set_yaml(spec: SetFile) -> str:
    """A set file's text (fields in documented order, empty ones left out)."""
    data: dict[str, Any] = {"title": spec.title}
    for key in ("description", "objectives"):
        if getattr(spec, key):
            data[key] = getattr(spec, key)
    data["visibility"] = spec.visibility
    data["cases"] = list(spec.cases)
    if spec.credit is not None:
        credit: dict[str, Any] = {}
        for key in _CREDIT_FIELDS:
            value = getattr(spec.credit, key)
            if isinstance(value, _dt.date):
                value = value.isoformat()
            if value not in (None, "", []):
                credit[key] = list(value) if isinstance(value, list) else value
        data["credit"] = credit
    return _dump_yaml(data)


def write_set_file(spec: SetFile, root: Path) -> Path:
    """Write ``root/_sets/<slug>.yaml`` atomically; returns its path."""
    if not SLUG_RE.fullmatch(spec.slug):
        raise CaseFormatError(f"{spec.slug!r}: not a valid set name")
    folder = Path(root) / SETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.slug}.yaml"
    _atomic_write(path, render_set_yaml(spec).encode("utf-8"))
    return path
