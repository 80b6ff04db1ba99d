"""Weaponised DICOM over a real association to the receiver process.

Each hostile object is sent with pynetdicom from a Part 10 file whose dataset bytes are
sent as they are (``STORE_SEND_CHUNKED_DATASET``: pynetdicom does not decode or
re-encode them). Each gets a failure status, nothing reaches the object store or the
quarantine, and a normal C-STORE on the same association then succeeds.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)
from pynetdicom import AE, _config

from tests import dicomfiles
from tests.hostile.conftest import SENDER, Site

FAILURES = {0xA700, 0xA900, 0xC000}


def _element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if vr in {b"OB", b"OW", b"SQ", b"UN", b"UT"}:
        return (
            struct.pack("<HH", group, elem) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
        )
    return struct.pack("<HH", group, elem) + vr + struct.pack("<H", len(value)) + value


def _ui(value: str) -> bytes:
    raw = value.encode()
    return raw + b"\0" * (len(raw) % 2)


def _header(sop_class: str, sop_instance: str) -> bytes:
    """The first elements of a CT dataset (explicit VR little endian)."""
    return (
        _element(0x0008, 0x0016, b"UI", _ui(sop_class))
        + _element(0x0008, 0x0018, b"UI", _ui(sop_instance))
        + _element(0x0008, 0x0060, b"CS", b"CT")
        + _element(0x0010, 0x0010, b"PN", b"HOSTILE^BODY")
        + _element(0x0010, 0x0020, b"LO", b"MRN-HOSTILE ")
        + _element(0x0020, 0x000D, b"UI", _ui(generate_uid()))
        + _element(0x0020, 0x000E, b"UI", _ui(generate_uid()))
    )


def _part10(
    path: Path,
    body: bytes,
    *,
    syntax: str = ExplicitVRLittleEndian,
    sop_class: str = CTImageStorage,
    sop_instance: str | None = None,
) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance or generate_uid()
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
    buffer = io.BytesIO()
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)  # type: ignore[arg-type]
    path.write_bytes(buffer.getvalue() + body)
    return path


def _ct_body() -> tuple[bytes, str]:
    """A real CT dataset's bytes (explicit VR little endian, no file meta)."""
    ds = dicomfiles.ct(SOPInstanceUID=generate_uid())
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    raw = dicomfiles.to_bytes(ds)
    meta_end = 132 + 12 + struct.unpack_from("<I", raw, 140)[0]
    return raw[meta_end:], str(ds.SOPInstanceUID)


def _deflate_bomb(inflated_size: int) -> bytes:
    """A deflated dataset: a CT header, then a private OB element of ``inflated_size``
    zeros; the deflated stream is about a thousandth of that."""
    head = _header(CTImageStorage, generate_uid()) + (
        struct.pack("<HH", 0x0009, 0x1001) + b"OB\0\0" + struct.pack("<I", inflated_size)
    )
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [deflater.compress(head)]
    chunk = bytes(16 * 1024 * 1024)
    for _ in range(inflated_size // len(chunk)):
        parts.append(deflater.compress(chunk))
    parts.append(deflater.compress(bytes(inflated_size % len(chunk))))
    parts.append(deflater.flush())
    return b"".join(parts)


def _nested(depth: int) -> bytes:
    opening = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff" + b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    return _header(CTImageStorage, generate_uid()) + opening * depth


@pytest.fixture(scope="module")
def sender() -> Iterator[AE]:
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    ae = AE(ae_title=SENDER)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    for syntax in (ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian):
        ae.add_requested_context(CTImageStorage, syntax)
        ae.add_requested_context(MRImageStorage, syntax)
    yield ae
    _config.STORE_SEND_CHUNKED_DATASET = previous


def _hostile_files(tmp: Path) -> dict[str, Path]:
    ct_body, _uid = _ct_body()
    pixel_at = ct_body.find(b"\xe0\x7f\x10\x00")
    assert pixel_at > 0
    uid = generate_uid()
    frame_bomb = (
        _header(CTImageStorage, uid)
        + _element(0x0028, 0x0002, b"US", struct.pack("<H", 1))
        + _element(0x0028, 0x0004, b"CS", b"MONOCHROME2 ")
        + _element(0x0028, 0x0008, b"IS", b"100000")
        + _element(0x0028, 0x0010, b"US", struct.pack("<H", 512))
        + _element(0x0028, 0x0011, b"US", struct.pack("<H", 512))
        + _element(0x0028, 0x0100, b"US", struct.pack("<H", 16))
        + _element(0x0028, 0x0101, b"US", struct.pack("<H", 16))
        + _element(0x0028, 0x0102, b"US", struct.pack("<H", 15))
        + _element(0x0028, 0x0103, b"US", struct.pack("<H", 0))
        + _element(0x7FE0, 0x0010, b"OW", bytes(64))
    )
    return {
        "truncated": _part10(tmp / "truncated.dcm", ct_body[: pixel_at + 40]),
        "huge-length": _part10(
            tmp / "huge-length.dcm",
            ct_body[:pixel_at] + b"\xe0\x7f\x10\x00OW\0\0\xf0\xff\xff\xff" + bytes(256),
        ),
        "huge-text-length": _part10(
            tmp / "huge-text.dcm",
            _header(CTImageStorage, generate_uid())
            + b"\x40\x00\x60\xa1UT\0\0\xfe\xff\xff\xff"
            + b"A" * 64,
        ),
        "deep-nesting": _part10(tmp / "deep.dcm", _nested(5000)),
        "frame-bomb": _part10(tmp / "frame-bomb.dcm", frame_bomb, sop_instance=uid),
        "deflate-bomb": _part10(
            tmp / "deflate-bomb.dcm",
            _deflate_bomb(1100 * 1024 * 1024),
            syntax=DeflatedExplicitVRLittleEndian,
        ),
        "deflate-garbage": _part10(
            tmp / "deflate-garbage.dcm",
            b"\xff" * 4096,
            syntax=DeflatedExplicitVRLittleEndian,
        ),
        "sop-class-mismatch": _part10(tmp / "mismatch.dcm", ct_body, sop_class=MRImageStorage),
    }


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _hostile_files(tmp_path_factory.mktemp("hostile-dicom"))


CASES = [
    "truncated",
    "huge-length",
    "huge-text-length",
    "deep-nesting",
    "frame-bomb",
    "deflate-bomb",
    "deflate-garbage",
    "sop-class-mismatch",
]


def _quarantined(site: Site) -> set[str]:
    root = site.data_dir / "quarantine"
    return {str(p) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", CASES)
def test_weaponised_dicom_is_refused_and_the_association_survives(
    site: Site, sender: AE, hostile_files: dict[str, Path], name: str, tmp_path: Path
) -> None:
    objects, quarantined = site.objects(), _quarantined(site)
    assoc = sender.associate("127.0.0.1", site.dicom_port, ae_title="TEACHFILE")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(hostile_files[name])
        assert status, f"{name}: no response (the association was aborted)"
        comment = str(status.get("ErrorComment", ""))
        assert int(status.Status) in FAILURES, f"{name}: status 0x{int(status.Status):04X}"
        # A clear reason, not the catch-all for an exception (a MemoryError under the cap).
        assert comment and "could not process" not in comment, f"{name}: {comment!r}"
        assert site.objects() == objects, f"{name}: something was stored"
        assert _quarantined(site) == quarantined, f"{name}: something was quarantined"
        # The same association goes on: a normal object is stored.
        body, _uid = _ct_body()
        normal = assoc.send_c_store(_part10(tmp_path / "normal.dcm", body))
        assert normal and int(normal.Status) == 0x0000, normal
    finally:
        assoc.release()
    site.assert_receiver_alive()


def test_verify_is_clean_after_the_hostile_sends(site: Site) -> None:
    result = site.cli("verify")
    assert result.returncode == 0, result.stdout + result.stderr
