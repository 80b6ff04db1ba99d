"""The DICOM receiver: a pynetdicom C-ECHO / C-STORE SCP that hands each object to hooks.

The adapter knows DICOM networking only. Deciding who may send and what happens
to an object is the caller's (``app/services/receiving.py``), through
:class:`ReceiverHooks`, so the same rules run here, in uploads and in the CLI.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationSocket, RequestHandler, ThreadedAssociationServer

from app.dicom.conformance import KEPT_SOP_CLASSES

log = logging.getLogger(__name__)

# The transfer syntaxes the de-identifier reads and copies (issue 4): native,
# deflated, RLE, JPEG baseline/extended/lossless, JPEG-LS and JPEG 2000.
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
]

# PS3.4 Annex B.2.3 statuses.
SUCCESS = 0x0000
WARNING_COERCED = 0xB000
OUT_OF_RESOURCES = 0xA700
MISMATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000

# Large PDUs mean fewer reads per object; 1 MiB is what Orthanc and dcmtk's
# storescp accept by default as a maximum too.
MAX_PDU = 1024 * 1024
# Longest PDU read from a peer. pynetdicom buffers a PDU whole, as long as its header
# says (up to 4 GiB), before looking at it; we advertise MAX_PDU, an A-ASSOCIATE-RQ is
# a few kilobytes, so anything past twice MAX_PDU is hostile or broken.
MAX_PDU_READ = 2 * MAX_PDU

EventHandler = (
    tuple[evt.NotificationEvent | evt.InterventionEvent, Callable[..., Any]]
    | tuple[evt.NotificationEvent | evt.InterventionEvent, Callable[..., Any], list[Any]]
)


@dataclass(frozen=True)
class StoreResult:
    status: int
    outcome: str  # "stored", "duplicate", "quarantined", "refused", "failed"
    comment: str = ""


class ReceiverHooks(Protocol):
    def authorise(self, calling_ae: str, address: str) -> bool: ...

    def store(
        self, calling_ae: str, address: str, data: bytes, sop_class_uid: str
    ) -> StoreResult: ...

    def association_ended(self, calling_ae: str, address: str, counts: Counter[str]) -> None: ...


# No real AE title contains a backslash (PS3.5 6.2), so nobody matches this one.
_NOBODY = "\\"


class _GatedAE(AE):
    """An AE whose calling-AE allow-list is the decision made for this association.

    pynetdicom checks ``require_calling_aet`` during negotiation, in the
    association's own thread, right after ``EVT_REQUESTED``; the handler puts its
    decision (from the database, with the peer's address) in a thread-local, so an
    unknown sender gets a proper A-ASSOCIATE-RJ (calling AE title not recognised).
    """

    gate = threading.local()

    @property  # type: ignore[misc]
    def require_calling_aet(self) -> list[str]:
        allowed: str | None = getattr(self.gate, "allowed", None)
        return [allowed] if allowed else [_NOBODY]


class _Handlers:
    def __init__(self, hooks: ReceiverHooks) -> None:
        self.hooks = hooks
        self.lock = threading.Lock()
        self.counts: dict[int, Counter[str]] = {}

    @staticmethod
    def _peer(event: Any) -> tuple[str, str]:
        requestor = event.assoc.requestor
        return str(requestor.ae_title).strip(), str(requestor.address)

    def handle_requested(self, event: Any) -> None:
        # The requestor's AE title is filled in only after this event, during
        # negotiation; read it from the A-ASSOCIATE-RQ itself.
        calling_ae = str(event.assoc.requestor.primitive.calling_ae_title).strip()
        address = str(event.assoc.requestor.address)
        try:
            allowed = self.hooks.authorise(calling_ae, address)
        except Exception as err:
            log.error("authorising an association failed: %s", type(err).__name__)
            allowed = False
        _GatedAE.gate.allowed = calling_ae if allowed else None

    def handle_echo(self, event: Any) -> int:
        return SUCCESS

    def handle_store(self, event: Any) -> Dataset:
        calling_ae, address = self._peer(event)
        status = Dataset()
        try:
            data = event.encoded_dataset()
            result = self.hooks.store(
                calling_ae, address, data, str(event.request.AffectedSOPClassUID)
            )
        except Exception as err:
            log.error("storing an object failed: %s", type(err).__name__)
            result = StoreResult(CANNOT_UNDERSTAND, "failed", "The receiver could not process it")
        with self.lock:
            self.counts.setdefault(id(event.assoc), Counter())[result.outcome] += 1
        status.Status = result.status
        if result.comment:
            status.ErrorComment = result.comment[:64]  # LO: 64 characters
        return status

    def handle_closed(self, event: Any) -> None:
        with self.lock:
            counts = self.counts.pop(id(event.assoc), None)
        if counts:
            calling_ae, address = self._peer(event)
            try:
                self.hooks.association_ended(calling_ae, address, counts)
            except Exception as err:
                log.error("recording an association failed: %s", type(err).__name__)


def build_ae(ae_title: str, hooks: ReceiverHooks) -> tuple[AE, list[EventHandler]]:
    """The application entity and its event handlers, ready to ``start_server``."""
    ae = _GatedAE(ae_title=ae_title)
    ae.maximum_pdu_size = MAX_PDU
    # After an invalid PDU pynetdicom keeps the association's slot until the ACSE (ARTIM)
    # timer runs out, even when the peer has gone, so garbage connections could lock
    # real senders out (tests/hostile/test_dicom_pdus.py): a short ACSE timeout (an
    # A-ASSOCIATE-RQ follows the TCP connect at once, even on a satellite link) and
    # room for 32 associations bound that.
    ae.maximum_associations = 32
    ae.network_timeout = 60
    ae.acse_timeout = 10
    ae.dimse_timeout = 60
    ae.add_supported_context(Verification)
    # pynetdicom's storage list, plus every class the library keeps that it lacks
    # (Extensible SR): the others are refused per object with a reason (conformance.py)
    offered = {c.abstract_syntax for c in StoragePresentationContexts if c.abstract_syntax}
    for abstract_syntax in sorted(offered | KEPT_SOP_CLASSES):
        ae.add_supported_context(abstract_syntax, TRANSFER_SYNTAXES)
    handlers = _Handlers(hooks)
    return ae, [
        (evt.EVT_REQUESTED, handlers.handle_requested),
        (evt.EVT_C_ECHO, handlers.handle_echo),
        (evt.EVT_C_STORE, handlers.handle_store),
        (evt.EVT_RELEASED, handlers.handle_closed),
        (evt.EVT_ABORTED, handlers.handle_closed),
    ]


class _BoundedSocket(AssociationSocket):
    def recv(self, nr_bytes: int) -> bytearray:
        if nr_bytes > MAX_PDU_READ:
            # The DUL treats OSError as the connection closing (Evt17): it drops the peer.
            log.warning("a peer sent a PDU of %d bytes; dropping the connection", nr_bytes)
            raise OSError("PDU longer than the receiver accepts")
        return super().recv(nr_bytes)


class _RequestHandler(RequestHandler):
    def _create_association(self) -> Any:
        assoc = super()._create_association()
        assoc.dul.socket.__class__ = _BoundedSocket  # the same socket, with a bounded read
        return assoc


class _Server(ThreadedAssociationServer):
    """Replies (C-STORE-RSP) are small: without TCP_NODELAY, Nagle's algorithm and the
    sender's delayed ACK add up to 40 ms per object (measured: dcmtk's own storescp
    stores 22 images/s without it, 900 with it)."""

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address


class _SharedPortServer(_Server):
    """Several receiver processes listen on one port; the kernel spreads associations
    over them (SO_REUSEPORT), so de-identification uses every core."""

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def start(
    host: str,
    port: int,
    ae_title: str,
    hooks: ReceiverHooks,
    *,
    block: bool = False,
    shared_port: bool = False,
) -> ThreadedAssociationServer:
    """Listen for associations. ``block=True`` serves until interrupted; otherwise the
    server runs in a thread and is returned (call ``shutdown()``)."""
    ae, handlers = build_ae(ae_title, hooks)
    server: ThreadedAssociationServer = ae.make_server(
        (host, port),
        evt_handlers=handlers,
        server_class=_SharedPortServer if shared_port else _Server,
        request_handler=_RequestHandler,
    )
    # As AE.start_server does, so that server.shutdown() finds it.
    ae._servers.append(server)
    if block:
        try:
            server.serve_forever()
        finally:
            server.shutdown()
        return server
    threading.Thread(target=server.serve_forever, name="teachfile-receiver", daemon=True).start()
    return server
