"""The receiver's rules: who may send, and what each C-STORE does to the database.

Each call opens its own short transaction (pynetdicom runs every association in
its own thread; a session is never shared), and the success status is sent only
after the de-identified file is on disk and its row is committed.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy.orm import Session, sessionmaker

from app.dicom.receiver import (
    CANNOT_UNDERSTAND,
    OUT_OF_RESOURCES,
    SUCCESS,
    WARNING_COERCED,
    StoreResult,
)
from app.dicom.safe_read import release_memory
from app.errors import DicomRejected, StorageError
from app.models import DicomSource
from app.services import audit, intake, sources

log = logging.getLogger(__name__)


class ReceivingHooks:
    """Implements ``app.dicom.receiver.ReceiverHooks`` with the intake service."""

    def __init__(self, make_session: sessionmaker[Session], config: intake.IntakeConfig) -> None:
        self.make_session = make_session
        self.config = config

    def authorise(self, calling_ae: str, address: str) -> bool:
        """Whether the peer may associate; a refusal is audited (``dicom.association_rejected``,
        channel ``association``, with the AE title and address) by the sources service."""
        with self.make_session.begin() as session:
            return sources.authorise_sender(session, calling_ae, address) is not None

    def store(self, calling_ae: str, address: str, data: bytes, sop_class_uid: str) -> StoreResult:
        refused: StoreResult | None = None
        try:
            with self.make_session.begin() as session:
                source = sources.find_sender(session, calling_ae, address)
                if source is None:  # removed from the allow-list mid-association
                    return StoreResult(
                        CANNOT_UNDERSTAND, "refused", "Sender is not allowed", "unknown-sender"
                    )
                outcome = self._ingest(session, source, data, sop_class_uid)
        except DicomRejected as err:
            log.info("refused an object from %s: %s", calling_ae, err.message)
            refused = StoreResult(err.dicom_status, "refused", err.message, err.code)
        except StorageError as err:
            log.error("storage failed for an object from %s: %s", calling_ae, err.message)
            return StoreResult(
                OUT_OF_RESOURCES, "failed", "Out of resources: not stored", err.code
            )
        if refused is not None:
            # Past the handler, whose traceback held the parser's frames and buffers.
            release_memory()
            return refused
        if outcome.status == "quarantined":
            return StoreResult(WARNING_COERCED, "quarantined", "Held for burned-in text review")
        return StoreResult(SUCCESS, outcome.status)

    def _ingest(
        self, session: Session, source: DicomSource, data: bytes, sop_class_uid: str
    ) -> intake.IngestOutcome:
        prepared = intake.prepare(
            session,
            data,
            institution=source.institution,
            config=self.config,
            expected_sop_class=sop_class_uid,
        )
        return intake.store_prepared(
            session,
            prepared,
            institution=source.institution,
            source=f"DICOM {source.ae_title}",
            config=self.config,
        )

    def association_ended(
        self, calling_ae: str, address: str, counts: Counter[str], *, aborted: bool
    ) -> None:
        """One entry per association: counts per outcome and per refusal reason
        (``refused:truncated``), the channel, the peer's AE title and address."""
        with self.make_session.begin() as session:
            audit.record(
                session,
                "dicom.aborted" if aborted else "dicom.received",
                actor_label=f"AE {calling_ae[:16]}",
                detail={"channel": "C-STORE", **dict(sorted(counts.items()))},
                remote_addr=address,
            )
