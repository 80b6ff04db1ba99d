"""Safe parsing of untrusted DICOM Part 10 files: a structural check, then pydicom.

pydicom is deliberately lenient: it reads truncated values short, accepts lengths
past the end of the file and recurses once per nested sequence. Before pydicom
sees a file, :func:`check_structure` walks its element headers iteratively (no
recursion, no value decoding) and refuses anything malformed with a one-line
reason that names the problem, never a value from the file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import mmap
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom._dicom_dict import DicomDictionary  # the dictionary itself: a dict lookup per element
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.uid import (
    AllTransferSyntaxes,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

from app.errors import DicomRejected

#: Largest file accepted (bytes); a C-STORE or upload larger than this is refused.
MAX_BYTES = 2 * 1024**3
#: Largest inflated dataset accepted in the Deflated transfer syntax. Deflate is used
#: for structured reports and small objects, not for big images; the bound keeps a
#: deflate bomb (zeros inflate a thousandfold) from taking gigabytes per object.
MAX_INFLATED_BYTES = 256 * 1024**2
_INFLATE_STEP = 16 * 1024**2
#: Deepest sequence nesting accepted. Real objects rarely exceed 6 (enhanced SR);
#: pydicom recurses per level, so a bound keeps a hostile file from exhausting the stack.
MAX_DEPTH = 32
#: Largest decoded image a file may declare (Rows x Columns x Frames x samples x bits).
#: Teachfile renders frame by frame, but a renderer or viewer handed a declared
#: 100 GB image is a denial of service; 8 GiB covers a 1,500-frame 1024x1024 16-bit cine
#: with room to spare.
MAX_DECODED_BYTES = 8 * 1024**3

_STATUS_CANNOT_UNDERSTAND = 0xC000
_STATUS_OUT_OF_RESOURCES = 0xA700

_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR",
                       b"UT", b"SV", b"UV"})
_SHORT_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS",
                        b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                        b"US"})
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_KNOWN_SYNTAXES = frozenset(str(uid) for uid in AllTransferSyntaxes)


def _reject(
    message: str, status: int = _STATUS_CANNOT_UNDERSTAND, code: str = "malformed"
) -> DicomRejected:
    return DicomRejected(message, status, code=code)


class _Frame:
    """One open container while walking: a dataset, sequence, item or pixel fragments."""

    __slots__ = ("end", "implicit", "kind")

    def __init__(self, kind: str, end: int | None, implicit: bool) -> None:
        self.kind = kind
        self.end = end
        self.implicit = implicit


def _image_bytes(image: dict[int, int]) -> int:
    rows = image.get(0x00280010, 0)
    cols = image.get(0x00280011, 0)
    frames = max(image.get(0x00280008, 1), 1)
    samples = max(image.get(0x00280002, 1), 1)
    bits = image.get(0x00280100, 0)
    if image.get(0x00280004) == 1 and samples == 3:
        samples = 2  # native YBR_FULL_422 stores two samples per pixel (PS3.3 C.7.6.3.1.2)
    return (rows * cols * frames * samples * bits + 7) // 8


def check_structure(
    buf: bytes | bytearray | memoryview | mmap.mmap,
    start: int,
    *,
    implicit: bool,
    little: bool,
    max_depth: int = MAX_DEPTH,
    native_pixels: bool = True,
) -> None:
    """Walk the element headers of ``buf[start:]`` and raise :class:`DicomRejected` if malformed.

    Checks, per PS3.5 chapter 7: every tag, VR and length fits in the data; every
    value lies inside its file, sequence and item; explicit VRs are known VRs;
    undefined lengths only on sequences, UN sequences and encapsulated pixel data;
    sequences and items close; nesting stays within ``max_depth``; native pixel data
    is as long as the image its header declares, and that image is not absurdly large.
    """
    end_of_data = len(buf)
    endian = "<" if little else ">"
    u16 = struct.Struct(endian + "H").unpack_from
    u32 = struct.Struct(endian + "I").unpack_from
    tag_pair = struct.Struct(endian + "HH").unpack_from
    stack = [_Frame("dataset", end_of_data, implicit)]
    image: dict[int, int] = {}
    pos = start
    while True:
        frame = stack[-1]
        limit = frame.end if frame.end is not None else end_of_data
        if frame.end is not None and pos >= frame.end:
            if pos > frame.end:
                raise _reject("an element runs past the end of its sequence item",
                              code="impossible-length")
            stack.pop()
            if not stack:
                return
            continue
        if pos + 8 > end_of_data:
            if frame.kind == "dataset" and pos == end_of_data:
                return
            raise _reject("file is truncated inside an element header", code="truncated")
        group, elem = tag_pair(buf, pos)
        tag = (group << 16) | elem
        if frame.kind in ("sequence", "fragments"):
            length = u32(buf, pos + 4)[0]
            if tag == _SEQ_END and frame.end is None:
                stack.pop()
                pos += 8
                continue
            if tag != _ITEM:
                raise _reject("a sequence contains something other than items")
            pos += 8
            if frame.kind == "fragments":
                if length == _UNDEFINED or pos + length > limit:
                    raise _reject("a pixel data fragment runs past the end of the file",
                                  code="truncated")
                pos += length
                continue
            item_end = None if length == _UNDEFINED else pos + length
            if item_end is not None and item_end > limit:
                raise _reject("a sequence item runs past the end of its sequence",
                              code="impossible-length")
            stack.append(_Frame("item", item_end, frame.implicit))
            if len(stack) > 2 * max_depth + 1:
                raise _reject(
                    f"sequences are nested deeper than {max_depth} levels", code="too-deep",
                )
            continue
        if tag == _ITEM_END:
            if frame.kind != "item" or frame.end is not None:
                raise _reject("an item delimiter appears outside an item")
            stack.pop()
            pos += 8
            continue
        if frame.implicit:
            length = u32(buf, pos + 4)[0]
            header = 8
            vr: bytes | None = None
        else:
            vr = bytes(buf[pos + 4 : pos + 6])
            if vr in _LONG_VRS:
                if pos + 12 > end_of_data:
                    raise _reject("file is truncated inside an element header", code="truncated")
                length = u32(buf, pos + 8)[0]
                header = 12
            elif vr in _SHORT_VRS:
                length = u16(buf, pos + 6)[0]
                header = 8
            else:
                raise _reject(
                    f"element ({group:04X},{elem:04X}) has an unknown VR", code="unknown-vr",
                )
            if not group & 1 and vr != b"UN":
                entry = DicomDictionary.get(tag)
                if entry is not None and vr.decode() not in entry[0].split(" or "):
                    raise _reject(f"element ({group:04X},{elem:04X}) has the wrong VR")
        value_at = pos + header
        if length == _UNDEFINED:
            if tag in _PIXEL_TAGS:
                stack.append(_Frame("fragments", None, frame.implicit))
                if native_pixels:
                    raise _reject("encapsulated pixel data in a native transfer syntax")
            elif vr in (b"SQ", None) or vr == b"UN":
                # UN of undefined length is an implicit VR little endian sequence (PS3.5 6.2.2)
                stack.append(_Frame("sequence", None, frame.implicit or vr == b"UN"))
            else:
                raise _reject(f"element ({group:04X},{elem:04X}) has an undefined length")
            pos = value_at
            if len(stack) > 2 * max_depth + 1:
                raise _reject(
                    f"sequences are nested deeper than {max_depth} levels", code="too-deep",
                )
            continue
        if value_at + length > limit:
            raise _reject(
                f"element ({group:04X},{elem:04X}) declares a length past the end of the data",
                # a length no accepted file could hold is a lie; a shorter one, a cut file
                code="impossible-length" if value_at + length > MAX_BYTES else "truncated",
            )
        is_sequence = vr == b"SQ"
        if vr is None and not group & 1:
            try:
                is_sequence = dictionary_VR(tag) == "SQ"
            except KeyError:
                is_sequence = False
        if is_sequence:
            stack.append(_Frame("sequence", value_at + length, frame.implicit))
            pos = value_at
            continue
        if len(stack) == 1 and group == 0x0028:
            _note_image_attribute(image, elem, buf, value_at, length, u16)
        if len(stack) == 1 and tag in _PIXEL_TAGS:
            declared = _image_bytes(image)
            if declared > MAX_DECODED_BYTES:
                raise _reject("the declared image is larger than Teachfile accepts",
                              _STATUS_OUT_OF_RESOURCES, "image-too-large")
            if native_pixels and tag == 0x7FE00010 and length < declared:
                raise _reject(
                    "pixel data is shorter than the image its header declares", code="truncated",
                )
        pos = value_at + length


def _note_image_attribute(
    image: dict[int, int],
    elem: int,
    buf: bytes | bytearray | memoryview | mmap.mmap,
    at: int,
    length: int,
    u16: object,
) -> None:
    """Remember Rows, Columns, Bits Allocated, Samples per Pixel (US) and Number of Frames (IS)."""
    tag = 0x00280000 | elem
    if tag in (0x00280010, 0x00280011, 0x00280100, 0x00280002) and length == 2:
        image[tag] = u16(buf, at)[0]  # type: ignore[operator]
    elif tag == 0x00280008 and 0 < length <= 12:
        text = bytes(buf[at : at + length]).strip(b" \x00")
        if not text.isdigit():
            raise _reject("Number of Frames is not an integer")
        image[tag] = int(text)
    elif tag == 0x00280004:
        image[tag] = int(bytes(buf[at : at + length]).strip(b" \x00") == b"YBR_FULL_422")
    elif tag == 0x00280008 and length > 12:
        raise _reject("Number of Frames is not an integer")


def _read_meta(buf: bytes | memoryview | mmap.mmap) -> tuple[str, int]:
    """Return (transfer syntax UID, dataset offset) after checking group 0002 (PS3.10 7.1)."""
    if len(buf) < 132 or bytes(buf[128:132]) != b"DICM":
        raise _reject("not a DICOM Part 10 file (no DICM prefix)", code="not-dicom")
    pos = 132
    syntax = None
    while pos + 8 <= len(buf):
        group, elem = struct.unpack_from("<HH", buf, pos)
        if group != 0x0002:
            break
        vr = bytes(buf[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            if pos + 12 > len(buf):
                raise _reject(
                    "file is truncated inside the File Meta Information", code="truncated",
                )
            length = struct.unpack_from("<I", buf, pos + 8)[0]
            header = 12
        elif vr in _SHORT_VRS:
            length = struct.unpack_from("<H", buf, pos + 6)[0]
            header = 8
        else:
            raise _reject("the File Meta Information has an unknown VR", code="unknown-vr")
        if pos + header + length > len(buf):
            raise _reject("the File Meta Information runs past the end of the file",
                          code="truncated")
        if elem == 0x0010:
            syntax = bytes(buf[pos + header : pos + header + length]).rstrip(b"\x00 ").decode(
                "ascii", "replace"
            )
        pos += header + length
    if syntax is None:
        raise _reject("the File Meta Information has no Transfer Syntax UID")
    if syntax not in _KNOWN_SYNTAXES:
        raise _reject("unknown transfer syntax", code="unknown-syntax")
    return syntax, pos


def _inflate(data: bytes | memoryview | mmap.mmap, max_bytes: int) -> bytearray:
    """Inflate a deflated dataset, refusing it once it passes ``max_bytes``.

    Two passes: the first inflates in bounded steps and keeps nothing but the count, so
    a deflate bomb (a megabyte that inflates to gigabytes) is refused having held one
    step (16 MiB), not the limit (issue 17: the web server peaked at 456 MB and the
    receiver at 465 MB refusing one); the second fills a buffer of the exact size, where
    growing a bytearray would have copied it and held up to twice as much.
    """
    size = 0
    for chunk in _inflate_steps(data):
        size += len(chunk)
        if size > max_bytes:
            raise _reject("the deflated dataset inflates past the size limit",
                          _STATUS_OUT_OF_RESOURCES, "inflate-limit")
    out = bytearray(size)
    view = memoryview(out)
    at = 0
    for chunk in _inflate_steps(data):
        view[at : at + len(chunk)] = chunk
        at += len(chunk)
    view.release()
    return out


def _inflate_steps(data: bytes | memoryview | mmap.mmap) -> Iterator[bytes]:
    """The inflated bytes of ``data`` in pieces of at most ``_INFLATE_STEP``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    pending: bytes | memoryview | mmap.mmap = data
    try:
        while True:
            chunk = inflater.decompress(pending, _INFLATE_STEP)
            yield chunk
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not chunk):
                break
    except zlib.error:
        raise _reject("the deflated dataset cannot be inflated", code="inflate-failed") from None


def check_part10(buf: bytes | memoryview | mmap.mmap, *, max_bytes: int = MAX_BYTES) -> str:
    """Check a whole Part 10 file and return its transfer syntax UID."""
    if len(buf) > max_bytes:
        raise _reject(
            "file is larger than Teachfile accepts", _STATUS_OUT_OF_RESOURCES, "too-large",
        )
    syntax, start = _read_meta(buf)
    native = syntax in (ImplicitVRLittleEndian, "1.2.840.10008.1.2.1", ExplicitVRBigEndian,
                        DeflatedExplicitVRLittleEndian)
    if syntax == DeflatedExplicitVRLittleEndian:
        inflated = _inflate(memoryview(buf)[start:], min(max_bytes, MAX_INFLATED_BYTES))
        check_structure(inflated, 0, implicit=False, little=True, native_pixels=True)
    else:
        check_structure(
            buf,
            start,
            implicit=syntax == ImplicitVRLittleEndian,
            little=syntax != ExplicitVRBigEndian,
            native_pixels=native,
        )
    return syntax


@contextmanager
def _mapped(path: Path) -> Iterator[mmap.mmap | bytes]:
    with path.open("rb") as fh:
        size = fh.seek(0, io.SEEK_END)
        if size == 0:
            yield b""
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def read_dataset(source: bytes | BinaryIO | Path, *, max_bytes: int = MAX_BYTES) -> Dataset:
    """Parse an untrusted Part 10 file after :func:`check_part10`, or raise :class:`DicomRejected`.

    ``source`` is the file's bytes, an open binary file or a path. A path is checked
    through a read-only memory map, so the structural check costs no copy.
    """
    try:
        if isinstance(source, Path):
            if source.stat().st_size > max_bytes:
                raise _reject(
                    "file is larger than Teachfile accepts", _STATUS_OUT_OF_RESOURCES, "too-large",
                )
            with _mapped(source) as mapped:
                check_part10(mapped, max_bytes=max_bytes)
            return _parse(source)
        if not isinstance(source, bytes | bytearray | memoryview):
            source = source.read(max_bytes + 1)
        data = bytes(source)
        check_part10(data, max_bytes=max_bytes)
        return _parse(io.BytesIO(data))
    except OSError:
        raise _reject("file cannot be read", code="unreadable") from None


def _parse(source: Path | BinaryIO) -> Dataset:
    try:
        ds = pydicom.dcmread(source)
    except RecursionError:
        raise _reject(
            f"sequences are nested deeper than {MAX_DEPTH} levels", code="too-deep",
        ) from None
    except DicomRejected:
        raise
    except Exception as exc:  # pydicom raises many types; the reason names only the type
        raise _reject(
            f"pydicom cannot parse the file ({type(exc).__name__})", code="unparseable",
        ) from None
    return ds


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_memory() -> None:
    """Give the heap that refusing a large object freed back to the operating system.

    glibc keeps freed memory in its arenas for reuse; after a hostile object the process
    would stay tens of megabytes larger for good (issue 17: 280 MB idle after a deflate
    bomb, from 125). ``malloc_trim(0)`` returns what is free; elsewhere than glibc it
    does nothing.
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
