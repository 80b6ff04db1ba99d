"""app.casefmt: the cases/ folder format round-trips byte for byte and refuses bad input clearly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.casefmt import (
    Annotation,
    CaseFolder,
    CaseFormatError,
    CaseMeta,
    Ellipse,
    KeyImage,
    Polygon,
    QuizOption,
    QuizQuestion,
    iter_case_folders,
    read_case_folder,
    render_quiz_yaml,
    write_case_folder,
)
from app.errors import Invalid

SERIES = "2.25.1234567890"
SOP = "2.25.9876543210"


def sample_case(slug: str = "tension-pneumothorax") -> CaseFolder:
    return CaseFolder(
        slug=slug,
        meta=CaseMeta(
            title="Tension pneumothorax: *deep sulcus*",
            diagnosis="Right tension pneumothorax",
            modality=["CR"],
            body_region=["chest"],
            tags=["pneumothorax", "trauma", "yes"],
            difficulty="beginner",
            audience=["rural generalist", "must not miss"],
            certainty="clinical",
            small_hospital_modality=["X-ray"],
            visibility="public",
            synthetic_images=True,
            case_of_the_day_eligible=True,
            key_images=[KeyImage(SERIES, SOP, 1)],
            authors=["Teachfile educators"],
        ),
        sections={
            "history": "A 24-year-old man, stab wound to the right chest.\nSpO~2~ 84%.",
            "findings": "- Hyperlucent right hemithorax\n- Mediastinal shift to the left\n\n"
                        "```\n## not a heading inside a fence\n```",
            "diagnosis_text": "Right **tension** pneumothorax.",
            "teaching_points": "1. Decompress first.\n2. Image later.",
            "references": "Röntgen W. *Über eine neue Art von Strahlen*. 1895.",
        },
        questions=[
            QuizQuestion(type="single", stem="What next?", reference="ATLS 10th ed.",
                         options=[QuizOption("Needle decompression", True, "Life first."),
                                  QuizOption("CT chest", False)]),
            QuizQuestion(type="multiple", stem="Signs?", teaching_point="Look at the mediastinum.",
                         options=[QuizOption("Shift", True), QuizOption("Deep sulcus", True),
                                  QuizOption("Kerley B lines", False, "Oedema")]),
            QuizQuestion(type="freetext", stem="Diagnosis?",
                         accepted=["tension pneumothorax", "tension PTX"]),
            QuizQuestion(type="hotspot", stem="Click the pleural line.", series_uid=SERIES,
                         frames=(1, 1), region=Ellipse(300, 400.5, 40, 120)),
            QuizQuestion(type="hotspot", stem="Click the shifted trachea.", series_uid=SERIES,
                         frames=(2, 3), region=Polygon(((10, 10), (50, 10.5), (30, 40)))),
        ],
        annotations=[
            Annotation(SERIES, SOP, 1, "arrow", ((100, 100), (150.5, 160))),
            Annotation(SERIES, SOP, 1, "ellipse", ((10, 20), (30, 40))),
            Annotation(SERIES, SOP, 1, "text", ((5, 5),), text="Pleural line — note"),
        ],
    )


def test_round_trip_is_byte_identical(tmp_path: Path) -> None:
    case = sample_case()
    first = tmp_path / "a" / case.slug
    write_case_folder(case, first, [("series1/img1.dcm", b"DICM1"), ("b.dcm", b"DICM2")])
    read = read_case_folder(first)
    assert read.meta == case.meta
    assert read.sections == case.sections
    assert read.questions == case.questions
    assert read.annotations == case.annotations
    assert [p.relative_to(first).as_posix() for p in read.dicom_files] == [
        "dicom/b.dcm", "dicom/series1/img1.dcm"]

    second = tmp_path / "b" / case.slug
    write_case_folder(read, second)
    for name in ("case.md", "quiz.yaml", "annotations.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    again = read_case_folder(second)
    assert (again.meta, again.sections, again.questions, again.annotations) == (
        read.meta, read.sections, read.questions, read.annotations)


def test_written_files_are_readable(tmp_path: Path) -> None:
    dest = tmp_path / "tension-pneumothorax"
    write_case_folder(sample_case(), dest)
    md = (dest / "case.md").read_text()
    assert md.startswith("---\ntitle: ")
    assert "\n## Clinical history\n\nA 24-year-old" in md
    assert md.index("## Imaging findings") < md.index("## Teaching points")
    quiz = (dest / "quiz.yaml").read_text()
    assert "frames: [2, 3]" in quiz
    assert "points: [[10, 10], [50, 10.5], [30, 40]]" in quiz
    ann = (dest / "annotations.json").read_text().splitlines()
    assert ann[0] == "[" and ann[-1] == "]" and len(ann) == 5


def test_minimal_case_and_stale_optional_files(tmp_path: Path) -> None:
    dest = tmp_path / "x"
    write_case_folder(sample_case("x"), dest)
    bare = CaseFolder(slug="x", meta=CaseMeta(title="Only a title"))
    write_case_folder(bare, dest)
    assert not (dest / "quiz.yaml").exists() and not (dest / "annotations.json").exists()
    read = read_case_folder(dest)
    assert read.meta == CaseMeta(title="Only a title")
    assert read.meta.visibility == "private"
    assert read.sections == {} and read.questions == [] and read.annotations == []


def test_iter_case_folders(tmp_path: Path) -> None:
    for slug in ("b-case", "a-case"):
        write_case_folder(CaseFolder(slug=slug, meta=CaseMeta(title=slug)), tmp_path / slug)
    (tmp_path / "no-case-md").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "case.md").write_text("---\ntitle: x\n---\n")
    (tmp_path / "README.md").write_text("docs")
    assert [p.name for p in iter_case_folders(tmp_path)] == ["a-case", "b-case"]


def test_error_is_invalid() -> None:
    assert issubclass(CaseFormatError, Invalid)


def write(folder: Path, name: str, text: str | bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


GOOD_FRONT = "---\ntitle: A case\n---\n"

BAD_CASE_MD = {
    "no front matter": ("## Discussion\n\nx\n", "must start with a '---' line"),
    "unclosed front matter": ("---\ntitle: x\n", "no closing '---'"),
    "malformed yaml": ("---\ntitle: [x\n---\n", "case.md front matter: malformed YAML at line"),
    "front matter not a mapping": ("---\n- a\n---\n", "expected a mapping"),
    "title missing": ("---\ndiagnosis: x\n---\n", "'title' is required"),
    "empty title": ("---\ntitle: '  '\n---\n", "title: must not be empty"),
    "unknown field": ("---\ntitle: x\ndificulty: easy\n---\n", "unknown field 'dificulty'"),
    "unknown difficulty": ("---\ntitle: x\ndifficulty: easy\n---\n",
                           "difficulty: unknown value 'easy' (allowed: beginner"),
    "unknown visibility": ("---\ntitle: x\nvisibility: world\n---\n", "visibility: unknown"),
    "unknown certainty": ("---\ntitle: x\ncertainty: vibes\n---\n", "certainty: unknown"),
    "modality not a list": ("---\ntitle: x\nmodality: CT\n---\n",
                            "modality: expected a list, found text"),
    "unknown modality": ("---\ntitle: x\nmodality: [CAT]\n---\n", "'CAT' is not a DICOM modality"),
    "small hospital modality": ("---\ntitle: x\nsmall_hospital_modality: [MRI]\n---\n",
                                "unknown value 'MRI'"),
    "tag is a number": ("---\ntitle: x\ntags: [2024]\n---\n", "tags[1]: expected text"),
    "synthetic not bool": ("---\ntitle: x\nsynthetic_images: maybe\n---\n",
                           "synthetic_images: expected true or false"),
    "key image uid as float": ("---\ntitle: x\nkey_images:\n- {series_uid: 1.2, "
                               "sop_instance_uid: '1.3'}\n---\n",
                               "key_images[1].series_uid: a UID must be quoted text"),
    "key image bad uid": ("---\ntitle: x\nkey_images:\n- {series_uid: 'a.b', "
                          "sop_instance_uid: '1.3'}\n---\n", "not a valid DICOM UID"),
    "key image frame 0": ("---\ntitle: x\nkey_images:\n- {series_uid: '1.2', "
                          "sop_instance_uid: '1.3', frame: 0}\n---\n", "frame: must be at least 1"),
    "unknown heading": (GOOD_FRONT + "\n## Findings\n\nx\n",
                        "line 5: unknown section heading '## Findings' (allowed: Clinical history"),
    "duplicate heading": (GOOD_FRONT + "## Discussion\nx\n## discussion\ny\n", "appears twice"),
    "text before sections": (GOOD_FRONT + "stray words\n## Discussion\n", "text before the first"),
    "yaml alias": ("---\ntitle: &a x\ndiagnosis: *a\n---\n", "aliases (*name) are not allowed"),
    "deep yaml": ("---\ntitle: x\ntags: " + "[" * 50 + "]" * 50 + "\n---\n", "nested deeper"),
    "not utf-8": (b"---\ntitle: \xff\n---\n", "not UTF-8"),
    "python tag": ("---\ntitle: !!python/object/apply:os.system ['true']\n---\n",
                   "malformed YAML"),
    "long section": (GOOD_FRONT + "## Discussion\n" + "x" * 20_001 + "\n",
                     "section 'Discussion': 20,001 characters"),
}


@pytest.mark.parametrize(("text", "message"), BAD_CASE_MD.values(), ids=BAD_CASE_MD.keys())
def test_bad_case_md(tmp_path: Path, text: str | bytes, message: str) -> None:
    folder = tmp_path / "bad-case"
    write(folder, "case.md", text)
    with pytest.raises(CaseFormatError) as info:
        read_case_folder(folder)
    assert message in info.value.message
    assert info.value.message.startswith("case.md")


def test_heading_inside_fence_and_setext_is_text(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    write(folder, "case.md", GOOD_FRONT + "## Discussion\n\n~~~\n## Not a section\n~~~\n"
          "### A subheading\n## Clinical history   \nHx\n")
    read = read_case_folder(folder)
    assert read.sections == {"history": "Hx", "discussion":
                             "~~~\n## Not a section\n~~~\n### A subheading"}


Q_HEAD = "- type: single\n  stem: S\n"
BAD_QUIZ = {
    "not a list": ("type: single\n", "the file: expected a list"),
    "malformed": ("- type: [\n", "quiz.yaml: malformed YAML at line"),
    "unknown type": ("- type: essay\n  stem: S\n", "question 1.type: unknown value 'essay'"),
    "no stem": ("- type: freetext\n  accepted: [a]\n", "question 1.stem: expected text"),
    "single two correct": (Q_HEAD + "  options:\n  - {text: a, correct: true}\n"
                           "  - {text: b, correct: true}\n",
                           "exactly one correct option, found 2"),
    "single one option": (Q_HEAD + "  options:\n  - {text: a, correct: true}\n",
                          "at least two options"),
    "multiple none correct": ("- type: multiple\n  stem: S\n  options:\n  - {text: a}\n"
                              "  - {text: b}\n", "at least one correct option"),
    "correct not bool": (Q_HEAD + "  options:\n  - {text: a, correct: 'yes'}\n"
                         "  - {text: b}\n", "correct: expected true or false"),
    "freetext no answers": ("- type: freetext\n  stem: S\n  accepted: []\n",
                            "at least one accepted answer"),
    "field for other type": ("- type: freetext\n  stem: S\n  accepted: [a]\n  options: []\n",
                             "field 'options' does not apply to a freetext question"),
    "hotspot frames": ("- type: hotspot\n  stem: S\n  series_uid: '1.2'\n  frames: [3, 1]\n"
                       "  region: {shape: ellipse, cx: 1, cy: 1, rx: 1, ry: 1}\n",
                       "last frame comes before the first"),
    "hotspot frames missing": ("- type: hotspot\n  stem: S\n  series_uid: '1.2'\n"
                               "  region: {shape: ellipse, cx: 1, cy: 1, rx: 1, ry: 1}\n",
                               "frames: expected [first, last]"),
    "hotspot bad shape": ("- type: hotspot\n  stem: S\n  series_uid: '1.2'\n  frames: [1, 1]\n"
                          "  region: {shape: star}\n", "region.shape: unknown value 'star'"),
    "hotspot zero radius": ("- type: hotspot\n  stem: S\n  series_uid: '1.2'\n  frames: [1, 1]\n"
                            "  region: {shape: ellipse, cx: 1, cy: 1, rx: 0, ry: 1}\n",
                            "rx and ry must be greater than 0"),
    "hotspot polygon two points": ("- type: hotspot\n  stem: S\n  series_uid: '1.2'\n"
                                   "  frames: [1, 1]\n  region: {shape: polygon, "
                                   "points: [[0, 0], [1, 1]]}\n", "at least three points"),
    "hotspot point text": ("- type: hotspot\n  stem: S\n  series_uid: '1.2'\n"
                           "  frames: [1, 1]\n  region: {shape: polygon, "
                           "points: [[0, 0], [1, x], [2, 2]]}\n", "expected a number"),
    "billion laughs": ("- &a [x, x, x, x, x]\n- &b [*a, *a, *a, *a, *a]\n- [*b, *b, *b]\n",
                       "aliases (*name) are not allowed (line 2)"),
}


@pytest.mark.parametrize(("text", "message"), BAD_QUIZ.values(), ids=BAD_QUIZ.keys())
def test_bad_quiz(tmp_path: Path, text: str, message: str) -> None:
    folder = tmp_path / "bad-quiz"
    write(folder, "case.md", GOOD_FRONT)
    write(folder, "quiz.yaml", text)
    with pytest.raises(CaseFormatError) as info:
        read_case_folder(folder)
    assert message in info.value.message
    assert info.value.message.startswith("quiz.yaml")


A = '{"series_uid": "1.2", "sop_instance_uid": "1.3", "frame": 1, '
BAD_ANNOTATIONS = {
    "malformed": ("[{", "malformed JSON at line 1"),
    "not a list": ("{}", "expected a list"),
    "unknown kind": ("[" + A + '"kind": "star", "points": [[0, 0]]}]', "unknown value 'star'"),
    "wrong point count": ("[" + A + '"kind": "arrow", "points": [[0, 0]]}]',
                          "an arrow has 2 point(s), found 1"),
    "text without text": ("[" + A + '"kind": "text", "points": [[0, 0]]}]',
                          "a text annotation needs its text"),
    "unknown field": ("[" + A + '"kind": "line", "points": [[0, 0], [1, 1]], "colour": 1}]',
                      "unknown field 'colour'"),
    "deep json": ("[" * 100_000 + "]" * 100_000, "annotations.json"),
    "nan point": ("[" + A + '"kind": "line", "points": [[NaN, 0], [1, 1]]}]', "finite number"),
}


@pytest.mark.parametrize(("text", "message"), BAD_ANNOTATIONS.values(),
                         ids=BAD_ANNOTATIONS.keys())
def test_bad_annotations(tmp_path: Path, text: str, message: str) -> None:
    folder = tmp_path / "bad-ann"
    write(folder, "case.md", GOOD_FRONT)
    write(folder, "annotations.json", text)
    with pytest.raises(CaseFormatError) as info:
        read_case_folder(folder)
    assert message in info.value.message
    assert info.value.message.startswith("annotations.json")


@pytest.mark.parametrize("name", ["case.md", "quiz.yaml", "annotations.json"])
def test_oversized_files_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "big"
    write(folder, "case.md", GOOD_FRONT)
    write(folder, name, GOOD_FRONT + "#" * 200_001)
    with pytest.raises(CaseFormatError, match=rf"^{name}: 200,\d+ bytes, the limit is 200,000"):
        read_case_folder(folder)


@pytest.mark.parametrize("slug", ["Upper", "under_score", "a" * 81, "dot.dot", "sp ace"])
def test_bad_slug(tmp_path: Path, slug: str) -> None:
    write(tmp_path / slug, "case.md", GOOD_FRONT)
    with pytest.raises(CaseFormatError, match="lowercase letters, digits or hyphens"):
        read_case_folder(tmp_path / slug)


def test_symlinks_refused(tmp_path: Path) -> None:
    outside = tmp_path / "secret.dcm"
    outside.write_bytes(b"x")
    folder = tmp_path / "linky"
    write(folder, "case.md", GOOD_FRONT)
    (folder / "dicom" / "sub").mkdir(parents=True)
    os.symlink(outside, folder / "dicom" / "sub" / "a.dcm")
    with pytest.raises(CaseFormatError, match=r"^dicom/sub/a.dcm: symbolic links are not allowed"):
        read_case_folder(folder)
    (folder / "dicom" / "sub" / "a.dcm").unlink()
    os.symlink(outside, folder / "quiz.yaml")
    with pytest.raises(CaseFormatError, match=r"^quiz.yaml: symbolic links"):
        read_case_folder(folder)
    (folder / "quiz.yaml").unlink()
    os.symlink(folder, tmp_path / "alias")
    with pytest.raises(CaseFormatError, match="is a symbolic link"):
        read_case_folder(tmp_path / "alias")


def test_unexpected_entry_and_missing_case_md(tmp_path: Path) -> None:
    folder = tmp_path / "typo"
    write(folder, "case.md", GOOD_FRONT)
    write(folder, "quiz.yml", "[]")
    with pytest.raises(CaseFormatError, match=r"^quiz.yml: unexpected entry"):
        read_case_folder(folder)
    (folder / "quiz.yml").unlink()
    (folder / "case.md").unlink()
    with pytest.raises(CaseFormatError, match=r"case\.md is missing"):
        read_case_folder(folder)


def test_write_refuses_unsafe_dicom_names_and_wrong_folder(tmp_path: Path) -> None:
    case = CaseFolder(slug="safe", meta=CaseMeta(title="t"))
    for name in ("../escape.dcm", "/abs.dcm", "a/../../b.dcm", "sp ace.dcm"):
        with pytest.raises(CaseFormatError, match="not a safe file name"):
            write_case_folder(case, tmp_path / "safe", [(name, b"x")])
    with pytest.raises(CaseFormatError, match="two files with the same name"):
        write_case_folder(case, tmp_path / "safe", [("a.dcm", b"x"), ("a.dcm", b"y")])
    with pytest.raises(CaseFormatError, match="named after its slug"):
        write_case_folder(case, tmp_path / "other", None)
    assert not (tmp_path / "escape.dcm").exists()


def test_hidden_files_in_dicom_are_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "hidden"
    write(folder, "case.md", GOOD_FRONT)
    write(folder / "dicom", ".DS_Store", b"x")
    write(folder / "dicom", "1.dcm", b"x")
    assert [p.name for p in read_case_folder(folder).dicom_files] == ["1.dcm"]


def test_region_geometry() -> None:
    e = Ellipse(10, 10, 5, 2)
    assert e.contains(14, 10) and not e.contains(10, 13)
    assert e.bounds() == (5, 8, 15, 12)
    p = Polygon(((0, 0), (10, 0), (10, 10), (0, 10)))
    assert p.contains(5, 5) and not p.contains(11, 5)
    assert p.bounds() == (0, 0, 10, 10)


def test_pinned_last_round_trips_through_quiz_yaml(tmp_path: Path) -> None:
    """Issue 15: "None of the above" stays last when shuffled, so the flag must survive."""
    question = QuizQuestion(
        type="single",
        stem="Which?",
        options=[QuizOption("A", True), QuizOption("None of the above", False, pinned_last=True)],
    )
    folder = tmp_path / "pinned"
    write(folder, "case.md", GOOD_FRONT)
    write(folder, "quiz.yaml", render_quiz_yaml([question]))
    read = read_case_folder(folder).questions[0]
    assert [o.pinned_last for o in read.options] == [False, True]
    write(folder, "quiz.yaml", Q_HEAD + "  options:\n  - {text: a, correct: true}\n"
          "  - {text: b, pinned_last: 'yes'}\n")
    with pytest.raises(CaseFormatError, match="pinned_last: expected true or false"):
        read_case_folder(folder)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("title: T\ncases: [a]\nmode: exam\n", "unknown field 'mode'"),
        ("title: T\n", "cases: expected a list"),
        ("title: T\ncases: []\n", "list at least one case"),
        ("title: T\ncases: [a, a]\n", "listed twice"),
        ("title: T\ncases: [Bad_Name]\n", "not a case folder name"),
        ("title: T\ncases: [a]\ncredit: {hours: 1}\n", "disclosures: must not be empty"),
        ("title: T\ncases: [a]\ncredit: {hours: 0, disclosures: x}\n", "between 0 and 100"),
        (
            "title: T\ncases: [a]\ncredit: {hours: 1, disclosures: x, expiry_date: soon}\n",
            "YYYY-MM-DD",
        ),
        (
            "title: T\ncases: [a]\ncredit: {hours: 1, disclosures: x, evaluation: [essay]}\n",
            "rating: question",
        ),
    ],
)
def test_set_file_errors_name_the_file_and_field(tmp_path: Path, text: str, problem: str) -> None:
    from app.casefmt import read_set_file

    path = tmp_path / "_sets" / "my-set.yaml"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(CaseFormatError) as err:
        read_set_file(path)
    assert "_sets/my-set.yaml" in err.value.message and problem in err.value.message


def test_set_file_reads_credit_settings(tmp_path: Path) -> None:
    from datetime import date

    from app.casefmt import read_set_file

    path = tmp_path / "exam.yaml"
    path.write_text(
        "title: Exam\ncases: [a, b]\ncredit:\n  hours: 1.5\n  disclosures: None\n"
        "  time_limit_minutes: 20\n  expiry_date: 2030-01-31\n"
        "  evaluation: ['rating: Objectives met']\n"
    )
    spec = read_set_file(path)
    assert spec.slug == "exam" and spec.cases == ["a", "b"] and spec.credit is not None
    assert spec.credit.hours == 1.5 and spec.credit.time_limit_minutes == 20
    assert spec.credit.expiry_date == date(2030, 1, 31) and spec.credit.passing_score == 70
