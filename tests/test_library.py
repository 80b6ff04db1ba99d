"""The shipped library and the case folder format: load, de-identify, export, import back."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import PROJECT_ROOT, casefmt, create_app
from app.cli import cli
from app.db import get_db
from app.dicom.deidentify import DeidContext, deidentify
from app.dicom.safe_read import read_dataset
from app.models import Annotation, Case, CaseStatus, Instance, KeyImage, Question

CASES = PROJECT_ROOT / "cases"


@pytest.fixture
def library_app(tmp_path: Path) -> Flask:
    """An empty data directory of its own (first run migrates it and loads the library)."""
    return create_app(
        {"TESTING": True, "DATA_DIR": str(tmp_path / "library"), "LOAD_SAMPLE_CASES": True}
    )


def test_first_run_loads_every_shipped_case(library_app: Flask) -> None:
    result = library_app.test_cli_runner().invoke(cli, ["init"])
    assert result.exit_code == 0, result.output
    folders = list(casefmt.iter_case_folders(CASES))
    assert len(folders) >= 10
    assert f"Loaded {len(folders)} sample cases and 2 case sets" in result.output
    with get_db(library_app).sessionmaker() as session:
        loaded = session.scalars(select(Case)).all()
        assert {c.slug for c in loaded} == {f.name for f in folders}
        assert all(c.status is CaseStatus.PUBLISHED for c in loaded)
        assert session.scalar(select(func.count(KeyImage.id))) > 0
        assert session.scalar(select(func.count(Question.id))) > 0
        assert session.scalar(select(func.count(Annotation.id))) > 0
    client = library_app.test_client()
    for folder in folders:
        assert client.get(f"/cases/{folder.name}").status_code == 200
    sets = client.get("/sets/").get_data(as_text=True)
    for path in casefmt.iter_set_files(CASES):
        assert casefmt.read_set_file(path).title.replace("'", "&#39;") in sets
    # A second start loads nothing twice.
    again = library_app.test_cli_runner().invoke(cli, ["init"])
    assert "Loaded" not in again.output


@pytest.mark.parametrize(
    "path",
    sorted(CASES.glob("*/dicom/**/*.dcm"))[::7],
    ids=lambda p: f"{p.parts[-4]}/{p.name[:12]}",
)
def test_shipped_dicom_passes_the_deidentifier_with_pixels_unchanged(path: Path) -> None:
    original = pydicom.dcmread(path)
    result = deidentify(read_dataset(path), DeidContext(secret=b"test", source="test"))
    assert result.dataset.PatientIdentityRemoved == "YES"
    assert result.dataset.PixelData == original.PixelData


def _normalised(folder: Path, uid_map: dict[str, str]) -> dict[str, str]:
    texts = {}
    for name in ("case.md", "quiz.yaml", "annotations.json"):
        if (folder / name).is_file():
            text = (folder / name).read_text()
            for old, new in uid_map.items():
                text = text.replace(old, new)
            texts[name] = text
    return texts


def test_export_import_round_trip(
    library_app: Flask, tmp_path: Path, runner: FlaskCliRunner, app: Flask, session: Session
) -> None:
    """Export a shipped case, import it into an empty data directory, export again: the
    text files are identical once UIDs are mapped, and every image's pixels are equal."""
    library_app.test_cli_runner().invoke(cli, ["init"])
    first = tmp_path / "first"
    out = library_app.test_cli_runner().invoke(
        cli, ["export-case", "acute-subdural-haematoma", str(first)]
    )
    assert out.exit_code == 0, out.output
    assert runner.invoke(cli, ["institutions", "add", "Importing Hospital"]).exit_code == 0
    imported = runner.invoke(
        cli,
        [
            "import-cases",
            str(first / "acute-subdural-haematoma"),
            "--institution",
            "Importing Hospital",
        ],
    )
    assert imported.exit_code == 0, imported.output
    second = tmp_path / "second"
    assert (
        runner.invoke(cli, ["export-case", "acute-subdural-haematoma", str(second)]).exit_code == 0
    )

    a, b = first / "acute-subdural-haematoma", second / "acute-subdural-haematoma"
    files_a = sorted((a / "dicom").rglob("*.dcm"))
    files_b = sorted((b / "dicom").rglob("*.dcm"))
    assert len(files_a) == len(files_b) > 0
    uid_map: dict[str, str] = {}
    pixels_b = {}
    for path in files_b:
        ds = pydicom.dcmread(path)
        pixels_b[(ds.InstanceNumber, ds.SeriesDescription)] = ds.PixelData
    for path in files_a:
        ds = pydicom.dcmread(path)
        assert pixels_b[(ds.InstanceNumber, ds.SeriesDescription)] == ds.PixelData
    from app.dicom.deidentify import replace_uid

    secret = app.config["DEID_SECRET"]
    for path in files_a:
        ds = pydicom.dcmread(io.BytesIO(path.read_bytes()), stop_before_pixels=True)
        for uid in (ds.SOPInstanceUID, ds.SeriesInstanceUID, ds.StudyInstanceUID):
            uid_map[str(uid)] = replace_uid(secret, str(uid))
    assert _normalised(a, uid_map) == _normalised(b, {})
    assert session.scalar(select(func.count(Instance.id))) == len(files_a)


def test_import_refuses_a_malformed_folder_and_stores_nothing(
    tmp_path: Path, runner: FlaskCliRunner, session: Session
) -> None:
    folder = tmp_path / "broken-case"
    (folder / "dicom").mkdir(parents=True)
    (folder / "case.md").write_text("---\ntitle: [unclosed\n---\n## Clinical history\nx\n")
    runner.invoke(cli, ["institutions", "add", "H"])
    result = runner.invoke(cli, ["import-cases", str(folder), "--institution", "H"])
    assert result.exit_code == 1
    assert "case.md" in result.stderr
    assert session.scalar(select(func.count(Case.id))) == 0


def test_a_newcomer_practises_reviews_passes_the_exam_and_verifies(library_app: Flask) -> None:
    """Issue 15, item 8: out of the box there is a practice set and a credit exam to take."""
    from datetime import timedelta

    from app.db import utcnow
    from app.models import CaseSet, Role
    from app.services import accounts, credit
    from app.services.quizzes import attempts, reviews

    assert library_app.test_cli_runner().invoke(cli, ["init"]).exit_code == 0
    with get_db(library_app).sessionmaker() as session:
        shipped = session.scalars(select(CaseSet).order_by(CaseSet.slug)).all()
        assert all(s.status is CaseStatus.PUBLISHED for s in shipped)
        practice = next(s for s in shipped if s.credit_hours is None)
        exam = next(s for s in shipped if s.credit_hours is not None)
        assert exam.time_limit_minutes and exam.accreditation_statement
        learner = accounts.create_user(
            session,
            email="newcomer@example.org",
            display_name="New Comer",
            password="a long enough passphrase",
            role=Role.LEARNER,
        )
        session.flush()

        attempt = attempts.start_attempt(session, practice.slug, actor=learner, mode="practice")
        first = attempts.attempt_questions(session, attempt)[0]
        missed = {"text": "no idea"} if first.kind == "freetext" else _wrong(first)
        assert not attempts.answer_question(
            session, attempt.id, first.id, missed, actor=learner
        ).correct
        tomorrow = (utcnow() + timedelta(days=1)).date()
        assert [
            i.question_id for i in reviews.due_reviews(session, actor=learner, today=tomorrow)
        ] == [first.id]

        attempt = attempts.start_attempt(session, exam.slug, actor=learner, mode="exam")
        for question in attempts.attempt_questions(session, attempt):
            attempts.answer_question(
                session, attempt.id, question.id, _right(session, question), actor=learner
            )
        finished = attempts.finish_attempt(session, attempt.id, actor=learner)
        assert finished.passed and finished.score == 100.0
        cert = credit.claim_credit(
            session,
            attempt.id,
            actor=learner,
            evaluation={item.id: "5" for item in credit.evaluation_form(exam)},
            hours=0.5,
            attested=True,
            issuer=credit.Issuer("Default provider", "Default statement", "hours"),
        )
        session.commit()
        token = cert.token
    page = library_app.test_client().get(f"/verify/{token}").get_data(as_text=True)
    assert "Valid certificate" in page and "New Comer" in page
    assert "not accredited by any body" in page


def _wrong(question: Question) -> dict[str, object]:
    if question.kind == "hotspot":
        assert question.hotspot
        return {"series_uid": question.hotspot["series_uid"], "frame": 1, "x": 0, "y": 0}
    return {"option_ids": [next(o.id for o in question.options if not o.correct)]}


def _right(session: Session, question: Question) -> dict[str, object]:
    from app.services.quizzes import marking

    if question.kind == "freetext":
        return {"text": question.accepted[0]}
    if question.kind == "hotspot":
        assert question.hotspot
        first = int(question.hotspot["frames"][0])
        x0, y0, x1, y1 = marking.region_of(question.hotspot).bounds()
        uid = question.hotspot["series_uid"]
        return {"series_uid": uid, "frame": first, "x": (x0 + x1) / 2, "y": (y0 + y1) / 2}
    return {"option_ids": [o.id for o in question.options if o.correct]}


def test_shipped_sets_export_back_to_the_same_files(library_app: Flask, tmp_path: Path) -> None:
    runner = library_app.test_cli_runner()
    assert runner.invoke(cli, ["init"]).exit_code == 0
    for path in casefmt.iter_set_files(CASES):
        shipped = casefmt.read_set_file(path)
        result = runner.invoke(cli, ["export-set", shipped.slug, str(tmp_path)])
        assert result.exit_code == 0, result.output
        exported = tmp_path / casefmt.SETS_DIR / path.name
        assert casefmt.read_set_file(exported) == shipped
        # deterministic: writing what was read gives the same bytes
        again = casefmt.write_set_file(casefmt.read_set_file(exported), tmp_path / "again")
        assert again.read_bytes() == exported.read_bytes()
    missing = runner.invoke(cli, ["export-set", "no-such-set", str(tmp_path)])
    assert missing.exit_code == 1 and "No case set is called" in missing.output


def test_import_keeps_a_case_with_identifiers_as_a_draft(
    tmp_path: Path, runner: FlaskCliRunner, session: Session
) -> None:
    """The folder's text passes the identifier gate: findings hold the case as a draft."""
    import shutil

    folder = tmp_path / "acute-subdural-haematoma"
    shutil.copytree(CASES / "acute-subdural-haematoma", folder)
    text = (folder / "case.md").read_text()
    (folder / "case.md").write_text(
        text.replace("## Clinical history\n", "## Clinical history\nMr Kowalczyk, MRN 1234567. ", 1)
    )
    runner.invoke(cli, ["institutions", "add", "H"])
    result = runner.invoke(cli, ["import-cases", str(folder), "--institution", "H"])
    assert result.exit_code == 0, result.output
    assert "kept as a draft" in result.stderr and "Kowalczyk" not in result.stderr
    case = session.scalars(select(Case)).one()
    assert case.status is CaseStatus.DRAFT and "Mr Kowalczyk" in case.history
