"""The ``teachfile`` command: first run, users, institutions, one-line errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cli import cli
from app.models import Role, User


def test_init_creates_admin_once_and_prints_password(
    app: Flask, runner: FlaskCliRunner, session: Session
) -> None:
    first = runner.invoke(cli, ["init"])
    assert first.exit_code == 0, first.output
    match = re.search(r"password: (\S+)", first.output)
    assert match
    second = runner.invoke(cli, ["init"])
    assert "password" not in second.output
    admin = session.scalar(select(User).where(User.role == Role.ADMIN))
    assert admin is not None and match.group(1) not in admin.password_hash


def test_create_user_with_role_and_institution(runner: FlaskCliRunner, session: Session) -> None:
    assert runner.invoke(cli, ["institutions", "add", "Bush Nursing Hospital"]).exit_code == 0
    result = runner.invoke(
        cli,
        [
            "create-user",
            "ed@example.org",
            "--name",
            "Ed",
            "--role",
            "educator",
            "--institution",
            "Bush Nursing Hospital",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Password (shown once):" in result.output
    user = session.scalar(select(User).where(User.email == "ed@example.org"))
    assert user is not None and user.role is Role.EDUCATOR
    assert user.institution is not None and user.institution.name == "Bush Nursing Hospital"


def test_errors_are_one_line_on_stderr_with_nonzero_exit(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        cli, ["create-user", "x@example.org", "--name", "X", "--institution", "Nowhere"]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: No institution is called 'Nowhere'."
    assert result.stdout == ""


def test_unwritable_data_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "init"],
        env={"TEACHFILE_DATA_DIR": str(blocker / "data"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: cannot prepare the data directory")
    assert len(result.stderr.strip().splitlines()) == 1


def test_deid_cleans_descriptors_with_the_identifier_scan(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    """A name the header lists nowhere else, in a descriptor, is found by the scan."""
    import pydicom
    from pydicom.data import get_testdata_file

    src = tmp_path / "in"
    src.mkdir()
    ds = pydicom.dcmread(str(get_testdata_file("CT_small.dcm")))
    ds.SeriesDescription = "CT chest for Aroha Ngata"
    ds.save_as(src / "ct.dcm")
    result = runner.invoke(cli, ["deid", str(src), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "out").rglob("*.dcm")
    assert b"Ngata" not in written.read_bytes()
    assert pydicom.dcmread(written).SeriesDescription == "CT chest for"


def test_deid_summary_counts_duplicates_and_adds_up_to_files_on_disk(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    from pydicom.data import get_testdata_file

    src = tmp_path / "in"
    src.mkdir()
    for name in ("MR_small.dcm", "MR_small_implicit.dcm", "CT_small.dcm"):
        shutil.copy(str(get_testdata_file(name)), src / name)
    shutil.copy(src / "MR_small.dcm", src / "MR_small_copy.dcm")
    (src / "notes.txt").write_text("not dicom")
    result = runner.invoke(cli, ["deid", str(src), str(tmp_path / "out")])
    assert result.exit_code == 1, result.output  # the conflicting duplicate is a refusal
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(
        "5 files in, 2 written, 1 duplicates, 1 refused, 0 quarantined, 1 skipped, 0 failed"
    ), summary
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2
    report = (tmp_path / "out" / "deid-report.txt").read_text()
    assert "duplicate\tMR_small_copy.dcm\t" in report
    assert "refused\tMR_small_implicit.dcm\tconflicting duplicate" in report


def test_import_cases_refuses_a_nonconforming_image_with_its_reason(
    runner: FlaskCliRunner, session: Session, tmp_path: Path
) -> None:
    import pydicom

    from app import PROJECT_ROOT
    from app.models import Case, Instance

    folder = tmp_path / "normal-thoracic-vertebra-ct"
    shutil.copytree(PROJECT_ROOT / "cases" / folder.name, folder)
    image = folder / "dicom" / "s1-axial" / "0001.dcm"
    ds = pydicom.dcmread(image)
    ds.HighBit = ds.BitsStored  # one more than PS3.3 C.7.6.3 allows
    ds.save_as(image)
    assert runner.invoke(cli, ["institutions", "add", "H"]).exit_code == 0
    result = runner.invoke(cli, ["import-cases", str(folder), "--institution", "H"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: normal-thoracic-vertebra-ct/0001.dcm: High Bit must be one less than Bits Stored"
    )
    assert session.scalar(select(Case.id)) is None
    assert session.scalar(select(Instance.id)) is None
