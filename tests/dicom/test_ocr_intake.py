"""Over a real C-STORE association: an ultrasound that declares no burned-in text but
shows some is held (0xB000 with a reason), one without text is stored."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from flask import Flask
from pynetdicom import AE, StoragePresentationContexts
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import get_db
from app.dicom import ocr, receiver
from app.models import Instance, Institution, QuarantinedObject
from app.services import intake, sources
from app.services.receiving import ReceivingHooks
from tests import dicomfiles
from tests.dicomfiles import Text

pytestmark = pytest.mark.skipif(
    ocr.tesseract_path() is None, reason="tesseract-ocr is not installed (scripts/test.sh)"
)
SENDER = "USCART"


@pytest.fixture
def scp(
    app: Flask, session: Session, create_institution: Callable[..., Institution]
) -> Iterator[int]:
    sources.add_source(
        session, SENDER, institution_id=create_institution("Remote Clinic").id, actor=None
    )
    session.commit()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = intake.make_config(app.config["DATA_DIR"], app.config["DEID_SECRET"])
    server = receiver.start(
        "127.0.0.1", port, "TEACHFILE", ReceivingHooks(get_db(app).sessionmaker, config)
    )
    assert server is not None
    yield port
    server.shutdown()


def test_c_store_holds_text_declared_absent_and_stores_a_clean_clip(
    scp: int, session: Session
) -> None:
    rng = np.random.default_rng(8)
    with_text = []
    for _ in range(6):
        frame = dicomfiles.speckle_frame(rng)
        dicomfiles.draw_text(frame, [Text("GARCIA^MARIA 2026-01-02", 8, 6, 16)])
        with_text.append(frame)
    clean = [dicomfiles.speckle_frame(rng) for _ in range(6)]

    ae = AE(ae_title=SENDER)
    for context in StoragePresentationContexts[:100]:
        ae.add_requested_context(context.abstract_syntax)
    assoc = ae.associate("127.0.0.1", scp, ae_title="TEACHFILE")
    assert assoc.is_established
    held = assoc.send_c_store(dicomfiles.ultrasound(with_text))
    stored = assoc.send_c_store(dicomfiles.ultrasound(clean, patient_id="OTHER-2"))
    assoc.release()

    assert held.Status == 0xB000
    assert "burned-in" in held.ErrorComment and "GARCIA" not in held.ErrorComment
    assert stored.Status == 0x0000
    session.expire_all()
    item = session.scalars(select(QuarantinedObject)).one()
    assert "OCR reads text" in item.reason
    assert session.scalar(select(func.count(Instance.id))) == 1
