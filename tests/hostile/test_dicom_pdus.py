"""Raw bytes at the DICOM port (plain sockets): an unknown calling AE, a PDU that declares
4 GiB, HTTP, garbage. Each is refused or dropped without the receiver allocating what was
declared, and a real C-ECHO from an allowed sender succeeds after each."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from tests.hostile.conftest import SENDER, Site

TIMEOUT = 20
STREAM_MIB = 96


@pytest.fixture(scope="module", autouse=True)
def _slots_freed(site: Site) -> Iterator[None]:
    """After this module, wait (bounded) until the receiver has let go of every dropped
    connection: pynetdicom keeps an aborted association's slot for the ARTIM timeout."""
    yield
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(os.listdir(f"/proc/{site.receiver.pid}/task")) <= _baseline_threads.get(0, 0):
            return
        time.sleep(0.5)


_baseline_threads: dict[int, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _baseline(site: Site) -> None:
    _baseline_threads[0] = len(os.listdir(f"/proc/{site.receiver.pid}/task"))


def test_sixteen_garbage_connections_do_not_lock_out_senders(site: Site) -> None:
    """pynetdicom holds a slot for the ACSE timeout after an invalid PDU; the receiver's
    32 slots and 10 s timeout keep allowed senders in (app/dicom/receiver.py)."""
    for _ in range(16):
        with _connect(site) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            _read_until_closed(sock)
    try:
        assert site.echo() == 0x0000
    finally:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(
            os.listdir(f"/proc/{site.receiver.pid}/task")
        ) > _baseline_threads.get(0, 0):
            time.sleep(0.5)


def _item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BxH", kind, len(value)) + value


def _associate_rq(calling: str, called: str = "TEACHFILE") -> bytes:
    """An A-ASSOCIATE-RQ proposing Verification in implicit VR little endian (PS3.8 9.3.2)."""
    presentation = _item(
        0x20,
        b"\x01\x00\x00\x00" + _item(0x30, b"1.2.840.10008.1.1") + _item(0x40, b"1.2.840.10008.1.2"),
    )
    body = (
        b"\x00\x01\x00\x00"
        + called.ljust(16).encode()
        + calling.ljust(16).encode()
        + b"\x00" * 32
        + _item(0x10, b"1.2.840.10008.3.1.1.1")
        + presentation
        + _item(0x50, _item(0x51, struct.pack(">I", 16384)))
    )
    return struct.pack(">BxI", 0x01, len(body)) + body


def _connect(site: Site) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", site.dicom_port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    return sock


def _read_until_closed(sock: socket.socket, limit: int = 65536) -> bytes:
    """What the receiver answers before it closes (or the timeout, whichever comes first)."""
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_allowed_sender_is_accepted_by_the_hand_built_request(site: Site) -> None:
    """The hand-built A-ASSOCIATE-RQ is valid: the allowed sender gets an A-ASSOCIATE-AC."""
    with _connect(site) as sock:
        sock.sendall(_associate_rq(SENDER))
        reply = sock.recv(6)
        assert reply[:1] == b"\x02", reply
        sock.sendall(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")  # A-ABORT
    site.assert_receiver_alive()


@pytest.mark.parametrize(
    ("calling", "answers"),
    [
        ("STRANGER", b"\x03"),  # A-ASSOCIATE-RJ
        ("A" * 16, b"\x03"),
        (SENDER.lower(), b"\x03"),
        # Not an AE title at all (PS3.5 6.2): an A-ASSOCIATE-RJ or an A-ABORT.
        ("", b"\x03\x07"),
        ("\\", b"\x03\x07"),
    ],
)
def test_unknown_calling_ae_is_refused(site: Site, calling: str, answers: bytes) -> None:
    with _connect(site) as sock:
        sock.sendall(_associate_rq(calling))
        reply = _read_until_closed(sock)
    assert reply[:1] and reply[:1] in answers, reply[:16]
    site.assert_receiver_alive()


@pytest.mark.parametrize("pdu_type", [0x01, 0x04, 0x07])
@pytest.mark.parametrize("then", ["close", "hang"])
def test_a_pdu_declaring_4_gib_is_not_allocated(site: Site, pdu_type: int, then: str) -> None:
    """A header claiming 0xFFFFFFFF bytes, a little data, then close or stay silent.
    While a hanging connection is open the receiver still serves others."""
    before = site.vm("receiver")
    with _connect(site) as sock:
        sock.sendall(struct.pack(">BxI", pdu_type, 0xFFFFFFFF) + os.urandom(1024))
        if then == "hang":
            site.assert_receiver_alive()
        else:
            # Keep streaming: the receiver must drop us, not buffer what we send.
            chunk = bytes(1024 * 1024)
            try:
                for _ in range(STREAM_MIB):
                    sock.sendall(chunk)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            _read_until_closed(sock)
    site.assert_receiver_alive()
    grown = site.vm("receiver")["VmRSS"] - before["VmRSS"]
    assert grown < STREAM_MIB * 1024 * 1024 // 2, f"the receiver buffered {grown} bytes"


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /api/cases HTTP/1.1\r\nContent-Length: 4294967295\r\n\r\n" + b"x" * 512,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64,  # a TLS ClientHello
        b"",
    ],
    ids=["http-get", "http-post", "tls-hello", "connect-close"],
)
def test_other_protocols_are_dropped(site: Site, payload: bytes) -> None:
    with _connect(site) as sock:
        if payload:
            sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        reply = _read_until_closed(sock)
    # Nothing, or an A-ABORT / A-ASSOCIATE-RJ: never anything HTTP-shaped.
    assert not reply.startswith(b"HTTP"), reply[:64]
    site.assert_receiver_alive()


@pytest.mark.parametrize("seed", range(2))
def test_random_garbage_is_dropped(site: Site, seed: int) -> None:
    garbage = os.urandom(4096 * (seed + 1))
    with _connect(site) as sock:
        try:
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the receiver hung up on the first bad PDU
        _read_until_closed(sock)
    site.assert_receiver_alive()


def test_a_valid_association_then_a_truncated_pdu(site: Site) -> None:
    """Associated, then a P-DATA-TF that stops half way through and closes."""
    with _connect(site) as sock:
        sock.sendall(_associate_rq(SENDER))
        assert sock.recv(1) == b"\x02"
        sock.recv(65536)
        sock.sendall(struct.pack(">BxI", 0x04, 1000) + b"\x00\x00\x00\x50\x01\x03" + b"\0" * 20)
        sock.shutdown(socket.SHUT_WR)
        _read_until_closed(sock)
    site.assert_receiver_alive()
