"""The DICOM receiver over real loopback associations: pynetdicom and dcmtk as senders."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import get_db
from app.dicom import receiver
from app.errors import StorageError
from app.models import AuditEvent, Instance, Institution, QuarantinedObject
from app.services import intake, sources
from app.services.receiving import ReceivingHooks
from app.storage import ObjectStore
from tests import dicomfiles

SENDER = "RURALPACS"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def scp(
    app: Flask, session: Session, create_institution: Callable[..., Institution]
) -> Iterator[int]:
    """A receiver on a free loopback port, allowing SENDER for one hospital."""
    hospital = create_institution("Rural General")
    sources.add_source(session, SENDER, institution_id=hospital.id, actor=None)
    session.commit()
    config = intake.make_config(app.config["DATA_DIR"], app.config["DEID_SECRET"])
    port = _free_port()
    server = receiver.start(
        "127.0.0.1", port, "TEACHFILE", ReceivingHooks(get_db(app).sessionmaker, config)
    )
    assert server is not None
    yield port
    server.shutdown()


def _associate(port: int, calling: str = SENDER) -> object:
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    for context in StoragePresentationContexts[:100]:
        ae.add_requested_context(context.abstract_syntax)
    return ae.associate("127.0.0.1", port, ae_title="TEACHFILE")


def _instances(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count(Instance.id))) or 0


def test_echo_and_store_over_pynetdicom(scp: int, session: Session) -> None:
    assoc = _associate(scp)
    assert assoc.is_established  # type: ignore[attr-defined]
    assert assoc.send_c_echo().Status == 0x0000  # type: ignore[attr-defined]
    status = assoc.send_c_store(dicomfiles.ct())  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    assert status.Status == 0x0000
    assert _instances(session) == 1


def test_unknown_calling_ae_is_rejected_and_audited(scp: int, session: Session) -> None:
    assoc = _associate(scp, calling="STRANGER")
    assert assoc.is_rejected  # type: ignore[attr-defined]
    assert (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "dicom.association_rejected"
            )
        )
        == 1
    )


def test_failure_statuses_and_the_association_survives(
    scp: int, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    assoc = _associate(scp)
    no_pixels = dicomfiles.ct()
    del no_pixels.PixelData
    assert assoc.send_c_store(no_pixels).Status == 0xA900  # type: ignore[attr-defined]

    held = assoc.send_c_store(dicomfiles.burned_in_secondary_capture())  # type: ignore[attr-defined]
    assert held.Status == 0xB000
    assert "burned-in" in held.ErrorComment

    def disk_full(self: ObjectStore, data: bytes, area: str = "objects") -> None:
        raise StorageError("The data directory is full; the object was not stored.")

    monkeypatch.setattr(ObjectStore, "put", disk_full)
    assert assoc.send_c_store(dicomfiles.ct()).Status == 0xA700  # type: ignore[attr-defined]
    monkeypatch.undo()

    ok = assoc.send_c_store(dicomfiles.ct())  # type: ignore[attr-defined]
    assoc.release()  # type: ignore[attr-defined]
    assert ok.Status == 0x0000
    assert _instances(session) == 1
    assert session.scalar(select(func.count(QuarantinedObject.id))) == 1


def test_several_associations_at_once(scp: int, session: Session) -> None:
    import threading

    series = [dicomfiles.ct_series(5) for _ in range(3)]
    statuses: list[int] = []

    def send(datasets: list[Dataset]) -> None:
        assoc = _associate(scp)
        for ds in datasets:
            statuses.append(assoc.send_c_store(ds).Status)  # type: ignore[attr-defined]
        assoc.release()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=send, args=(s,)) for s in series]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [0] * 15
    assert _instances(session) == 15


dcmtk = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")


@pytest.fixture
def dicom_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "outgoing" / "nested"
    folder.mkdir(parents=True)
    for index, ds in enumerate(dicomfiles.ct_series(4)):
        ds.save_as(folder / f"slice{index}.dcm", enforce_file_format=True)
    (folder.parent / "mr.dcm").write_bytes(dicomfiles.to_bytes(dicomfiles.load("MR_small.dcm")))
    return folder.parent


@dcmtk
def test_dcmtk_echoscu_and_storescu_folder(scp: int, session: Session, dicom_folder: Path) -> None:
    echo = subprocess.run(
        ["echoscu", "-aet", SENDER, "-aec", "TEACHFILE", "127.0.0.1", str(scp)],
        capture_output=True,
        timeout=60,
    )
    assert echo.returncode == 0, echo.stderr
    store = subprocess.run(
        [
            "storescu",
            "-aet",
            SENDER,
            "-aec",
            "TEACHFILE",
            "+sd",
            "+r",
            "127.0.0.1",
            str(scp),
            str(dicom_folder),
        ],
        capture_output=True,
        timeout=120,
    )
    assert store.returncode == 0, store.stderr
    assert _instances(session) == 5
    files = list(Path(session.get_bind().url.database or "").parent.glob("objects/*/*/*"))
    assert len(files) == 5
    for path in files:
        data = path.read_bytes()
        assert dicomfiles.PLANTED_NAME.encode() not in data
        assert dicomfiles.PLANTED_ID.encode() not in data


@dcmtk
def test_dcmtk_unknown_ae_is_refused(scp: int, session: Session, dicom_folder: Path) -> None:
    result = subprocess.run(
        [
            "storescu",
            "-aet",
            "INTRUDER",
            "-aec",
            "TEACHFILE",
            "+sd",
            "127.0.0.1",
            str(scp),
            str(dicom_folder),
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert _instances(session) == 0


def test_nonconforming_objects_are_refused_with_a_reason_and_the_next_is_stored(
    scp: int, app: Flask, session: Session
) -> None:
    from pydicom import config
    from pydicom.uid import generate_uid

    from tests.dicom import corpus

    ae = AE(ae_title=SENDER)
    for uid in ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.481.5",
                "1.2.840.10008.5.1.4.1.1.88.33"):
        ae.add_requested_context(uid)
    assoc = ae.associate("127.0.0.1", scp, ae_title="TEACHFILE")
    assert assoc.is_established
    plan = dicomfiles.load("rtplan.dcm")
    with config.disable_value_validation():
        two_studies = dicomfiles.ct(StudyInstanceUID=["1.2.3", "1.2.4"])
        leading_zero = dicomfiles.ct(SeriesInstanceUID="1.2.0345")
    bits = dicomfiles.ct(BitsStored=20, SOPInstanceUID=generate_uid())
    long_pixels = dicomfiles.ct(SOPInstanceUID=generate_uid())
    long_pixels.PixelData = bytes(long_pixels.PixelData) + b"\x00\x00"
    report = corpus.sr_document()
    report.ContentSequence[4].ContentSequence[0].ValueType = "TEXT"
    report.ContentSequence[4].ContentSequence[0].TextValue = "dictated narrative"
    expected = [
        (plan, 0xA900, "SOP class RT Plan Storage is not one the library keeps"),
        (two_studies, 0xC010, "Study Instance UID has more than one value"),
        (leading_zero, 0xC010, "Series Instance UID has a component with a leading zero"),
        (bits, 0xC020, "Bits Stored must be between 1 and Bits Allocated"),
        (long_pixels, 0xC020, "pixel data is longer than the image its header declares"),
        (report, 0xC030, "structured reports with free-text content are not kept"),
    ]
    for ds, status, comment in expected:
        with config.disable_value_validation():
            reply = assoc.send_c_store(ds)
        assert (reply.Status, reply.ErrorComment) == (status, comment[:64])
        for value in ("1.2.3", "1.2.0345", "dictated"):
            assert value not in reply.ErrorComment
    ok = assoc.send_c_store(dicomfiles.ct())
    assoc.release()
    assert ok.Status == 0x0000
    assert _instances(session) == 1
    objects = Path(app.config["DATA_DIR"]) / "objects"
    assert len([p for p in objects.rglob("*") if p.is_file()]) == 1  # nothing else written
    assert session.scalar(select(func.count(QuarantinedObject.id))) == 0
