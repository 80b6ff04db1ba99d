"""Pixel rendering: one frame of a stored instance to an 8-bit JPEG or PNG, and measurements.

The pipeline follows the grayscale and colour pipelines of PS3.4 Annex N: stored
values -> Modality LUT (rescale slope/intercept or Modality LUT Sequence, PS3.3
C.11.1) -> VOI LUT (window centre/width with the LINEAR, LINEAR_EXACT or SIGMOID
function of PS3.3 C.11.2.1.2-3, or a VOI LUT Sequence) -> Presentation LUT
(MONOCHROME1 is shown inverted, PS3.3 C.7.6.3.1.2). Palette colour, RGB and YBR
images go through the colour pipeline (palette lookup, YBR -> RGB) and are not
windowed.

Only the requested frame is read and decoded: native pixel data by offset
arithmetic on the open file, encapsulated pixel data by that frame's fragments
(pydicom's decoders with ``index=``; pylibjpeg or python-gdcm do the decoding).
Every refusal is an :class:`~app.errors.Invalid` (the request broke a rule) or a
:class:`~app.errors.DicomRejected` (the object cannot be rendered) whose message
never quotes a value from the file.

Measurements (:func:`roi_stats`, :func:`line_length`) use the Modality LUT output
of the stored values, never the 8-bit render: Hounsfield units for CT.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut
from pydicom.pixels.utils import as_pixel_options, pixel_array
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from app.errors import DicomRejected, Invalid

#: Largest file the renderer opens (bytes); matches the ingest limit.
MAX_FILE_BYTES = 2 * 1024**3
#: Largest decoded frame (Rows x Columns x Samples x bytes per sample). A 4,096 x 5,120
#: 16-bit mammogram is 40 MiB; anything past this is refused before decoding.
MAX_FRAME_BYTES = 64 * 1024**2
#: Largest frame in pixels: the float32 working copy of one is four bytes a pixel.
MAX_FRAME_PIXELS = 32 * 1024**2
#: Largest inflated dataset accepted for the Deflated transfer syntax (which cannot
#: be read frame by frame: the whole dataset is one zlib stream).
MAX_INFLATED_BYTES = 512 * 1024**2
#: Largest viewport side in pixels; the render is never larger than the frame itself.
MAX_VIEWPORT = 4096
#: Accepted JPEG quality range (Pillow advises against values above 95).
QUALITY_RANGE = (1, 95)

_STATUS_OUT_OF_RESOURCES = 0xA700
_STATUS_CANNOT_UNDERSTAND = 0xC000
_PIXEL_TAGS = {0x7FE00010: "PixelData", 0x7FE00009: "DoubleFloatPixelData",
               0x7FE00008: "FloatPixelData"}
_GREYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
_COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
                     "YBR_PARTIAL_420", "YBR_PARTIAL_422"})
_VOI_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})

VoiFunction = Literal["LINEAR", "LINEAR_EXACT", "SIGMOID"]
FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class RenderRequest:
    """What to render: which frame, how to window it and how to encode it.

    ``frame`` is 1-based as in DICOMweb (PS3.18 10.4.1.1.3). ``window`` is
    (centre, width) in the units of the Modality LUT output (HU for CT); ``None``
    uses the object's first window, else its VOI LUT, else the frame's min/max.
    ``voi_function`` overrides the object's VOI LUT Function (default LINEAR).
    ``viewport`` is (width, height): the frame is downscaled to fit, keeping its
    aspect ratio, and never upscaled.
    """

    frame: int = 1
    window: tuple[float, float] | None = None
    format: Literal["jpeg", "png"] = "jpeg"
    quality: int = 85
    viewport: tuple[int, int] | None = None
    invert: bool = False
    voi_function: VoiFunction | None = None


    def cache_key(self) -> str:
        """A canonical file-name-safe key of everything that changes the output bytes.

        For the render cache of the web layer: two requests with the same key give
        the same bytes from the same instance.
        """
        window = "own" if self.window is None else f"{self.window[0]!r}_{self.window[1]!r}"
        viewport = "full" if self.viewport is None else f"{self.viewport[0]}x{self.viewport[1]}"
        encoding = f"q{self.quality}.jpg" if self.format == "jpeg" else "lossless.png"
        return (f"f{self.frame}-w{window}-{self.voi_function or 'own'}-{viewport}-"
                f"{'inv' if self.invert else 'pos'}-{encoding}")


@dataclass(frozen=True)
class ImageGeometry:
    """What the viewer needs to know about an instance before it asks for pixels."""

    rows: int
    columns: int
    frames: int
    #: (row spacing, column spacing) in mm: the vertical then horizontal pixel pitch.
    pixel_spacing: tuple[float, float] | None
    spacing_source: Literal["PixelSpacing", "ImagerPixelSpacing"] | None
    #: One sentence for the viewer: where the spacing is measured, or why there is none.
    spacing_note: str
    #: Units of the Modality LUT output: "HU" for CT, else Rescale Type or "".
    units: str
    default_window: tuple[float, float] | None
    photometric: str
    modality: str

    @property
    def is_greyscale(self) -> bool:
        """True for MONOCHROME1/2: windowing and measurements apply."""
        return self.photometric in _GREYSCALE


@dataclass(frozen=True)
class RoiStats:
    """Statistics of the real pixel values inside an ellipse."""

    mean: float
    sd: float
    min: float
    max: float
    #: Area of the drawn ellipse in mm^2 (pi x rx x ry x spacing), None without spacing.
    area_mm2: float | None
    pixel_count: int
    units: str
    spacing_source: Literal["PixelSpacing", "ImagerPixelSpacing"] | None


@dataclass(frozen=True)
class LengthMeasurement:
    """A distance between two points of a frame."""

    pixels: float
    mm: float | None
    spacing_source: Literal["PixelSpacing", "ImagerPixelSpacing"] | None
    note: str


# ---------------------------------------------------------------------------
# Reading the header and one frame
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Image:
    """The parsed header, the image pixel description and the frame limits."""

    ds: Dataset
    syntax: UID
    rows: int
    columns: int
    frames: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        raise DicomRejected("the file cannot be read", _STATUS_CANNOT_UNDERSTAND) from None
    if size > MAX_FILE_BYTES:
        raise DicomRejected("the file is larger than Teachfile renders", _STATUS_OUT_OF_RESOURCES)


_DEFLATED = str(DeflatedExplicitVRLittleEndian).encode()


def _is_deflated(fh: BinaryIO) -> bool:
    """True if the File Meta Information names the Deflated transfer syntax.

    Checked before pydicom parses the file, because pydicom inflates a deflated
    dataset whole and without a limit, which a small hostile file turns into
    gigabytes. Group 0002 is always explicit VR little endian (PS3.10 7.1).
    """
    fh.seek(128)
    if fh.read(4) != b"DICM":
        fh.seek(0)
        return False
    meta = fh.read(1024)
    pos = 0
    while True:
        if pos + 12 > len(meta) and len(meta) < 65536:
            more = fh.read(4096)
            if more:
                meta += more
                continue
        if pos + 8 > len(meta):
            break
        group, elem = struct.unpack_from("<HH", meta, pos)
        if group != 0x0002:
            break
        if meta[pos + 4 : pos + 6] in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            if pos + 12 > len(meta):
                break
            length, start = struct.unpack_from("<I", meta, pos + 8)[0], pos + 12
        else:
            length, start = struct.unpack_from("<H", meta, pos + 6)[0], pos + 8
        if elem == 0x0010:
            fh.seek(0)
            return meta[start : start + length].rstrip(b"\x00 ") == _DEFLATED
        pos = start + length
    fh.seek(0)
    return False


def _read_header(fh: BinaryIO) -> Dataset:
    """Parse everything before the pixel data; ``fh`` is left at the pixel data tag.

    Values over 1 MiB (an embedded document, a private blob) are left on disk
    (``defer_size``) so a large element before the pixels costs no memory. A
    deflated file is inflated whole, up to :data:`MAX_INFLATED_BYTES`.
    """
    if _is_deflated(fh):
        return _inflate_dataset(fh)
    try:
        return pydicom.dcmread(fh, stop_before_pixels=True, defer_size="1 MB")
    except Exception as exc:  # pydicom raises many types; name only the type
        raise DicomRejected(
            f"the file is not a readable DICOM object ({type(exc).__name__})",
            _STATUS_CANNOT_UNDERSTAND,
        ) from None


def _int(ds: Dataset, keyword: str, default: int | None = None) -> int:
    value = ds.get(keyword, default)
    if value is None or value == "":
        if default is None:
            raise DicomRejected(f"the image has no {keyword}", _STATUS_CANNOT_UNDERSTAND)
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DicomRejected(f"{keyword} is not a number", _STATUS_CANNOT_UNDERSTAND) from None


def _describe(ds: Dataset) -> _Image:
    """Read the Image Pixel module and refuse images that cannot or must not be decoded."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if not syntax:
        raise DicomRejected("the file has no transfer syntax", _STATUS_CANNOT_UNDERSTAND)
    rows = _int(ds, "Rows")
    columns = _int(ds, "Columns")
    samples = _int(ds, "SamplesPerPixel", 1)
    bits_allocated = _int(ds, "BitsAllocated")
    bits_stored = _int(ds, "BitsStored", bits_allocated)
    frames = _int(ds, "NumberOfFrames", 1) or 1
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if rows < 1 or columns < 1 or frames < 1:
        raise DicomRejected("the image has no rows, columns or frames", _STATUS_CANNOT_UNDERSTAND)
    if samples not in (1, 3) or bits_allocated not in (1, 8, 16, 32, 64):
        raise DicomRejected("the image's pixel layout is not supported", _STATUS_CANNOT_UNDERSTAND)
    if not 1 <= bits_stored <= bits_allocated:
        raise DicomRejected("Bits Stored is inconsistent with Bits Allocated",
                            _STATUS_CANNOT_UNDERSTAND)
    if photometric not in _GREYSCALE | _COLOUR | {"PALETTE COLOR"}:
        raise DicomRejected("the photometric interpretation is not supported",
                            _STATUS_CANNOT_UNDERSTAND)
    frame_bytes = rows * columns * samples * max(bits_allocated // 8, 1)
    if frame_bytes > MAX_FRAME_BYTES or rows * columns > MAX_FRAME_PIXELS:
        raise DicomRejected("the declared frame is larger than Teachfile renders",
                            _STATUS_OUT_OF_RESOURCES)
    return _Image(ds, UID(str(syntax)), rows, columns, frames, samples, bits_allocated,
                  bits_stored, _int(ds, "PixelRepresentation", 0) == 1, photometric)


def _check_frame(image: _Image, frame: int) -> int:
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise Invalid("the frame number must be a whole number")
    if not 1 <= frame <= image.frames:
        raise Invalid("the frame number is out of range for this instance")
    return frame - 1


def _codestream_size(frame: bytes) -> tuple[int, int] | None:
    """Return (rows, columns) declared by a JPEG, JPEG-LS or JPEG 2000 codestream, if found.

    Read from the SOFn / SOF55 frame header (ITU T.81 B.2.2, T.87 C.2.2) or the
    SIZ marker segment (ITU T.800 A.5.1), so a frame that would decode to
    something other than the header's image is refused before a decoder
    allocates for it.
    """
    if frame[:2] == b"\xff\xd8":
        pos = 2
        while pos + 4 <= len(frame):
            if frame[pos] != 0xFF:
                return None
            marker = frame[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7):
                pos += 2
                continue
            length = struct.unpack_from(">H", frame, pos + 2)[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB,
                          0xCD, 0xCE, 0xCF, 0xF7):
                if pos + 9 > len(frame):
                    return None
                lines, samples = struct.unpack_from(">HH", frame, pos + 5)
                return (lines, samples) if lines else None
            if marker == 0xDA:
                return None
            pos += 2 + length
        return None
    at = frame.find(b"\xff\x4f\xff\x51", 0, 4096)
    if at >= 0 and at + 4 + 2 + 2 + 16 <= len(frame):
        xsiz, ysiz, xosiz, yosiz = struct.unpack_from(">IIII", frame, at + 8)
        return (ysiz - yosiz, xsiz - xosiz)
    return None


_JPEG_FAMILY = frozenset({
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
})


def _is_jpeg_family(syntax: UID) -> bool:
    """JPEG, JPEG-LS, JPEG 2000 and HTJ2K (PS3.5 A.4.1-A.4.4, A.4.11): all end with FFD9."""
    return str(syntax) in _JPEG_FAMILY


def _decode(fh: BinaryIO, image: _Image, index: int) -> np.ndarray[Any, Any]:
    """Decode frame ``index`` (0-based); ``fh`` is positioned at the pixel data tag."""
    syntax = image.syntax
    little = syntax.is_little_endian
    tag_bytes = fh.read(8)
    if len(tag_bytes) < 8:
        raise DicomRejected("the image has no pixel data", _STATUS_CANNOT_UNDERSTAND)
    group, elem = struct.unpack("<HH" if little else ">HH", tag_bytes[:4])
    keyword = _PIXEL_TAGS.get((group << 16) | elem)
    if keyword is None:
        raise DicomRejected("the image has no pixel data", _STATUS_CANNOT_UNDERSTAND)
    if not syntax.is_implicit_VR:
        fh.read(4)  # explicit VR: OB/OW/OF/OD have a reserved 2 bytes then a 4-byte length
    opts: dict[str, Any] = as_pixel_options(image.ds)
    opts["transfer_syntax_uid"] = syntax
    opts["pixel_keyword"] = keyword
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise DicomRejected("the transfer syntax cannot be decoded",
                            _STATUS_CANNOT_UNDERSTAND) from None
    if not decoder.is_available:
        raise DicomRejected("no installed decoder handles this transfer syntax",
                            _STATUS_CANNOT_UNDERSTAND)
    try:
        if syntax.is_encapsulated:
            start = fh.tell()
            try:
                data = get_frame(fh, index, number_of_frames=image.frames,
                                 extended_offsets=opts.get("extended_offsets"),
                                 endianness="<" if little else ">")
            finally:
                fh.seek(start)
            if _is_jpeg_family(syntax) and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                # Entropy-coded data has no checksum and decoders fill a short frame
                # with whatever they have; a frame without its EOI / EOC marker (T.81
                # B.2.1, T.800 A.4.4) was cut off or overwritten, so refuse it.
                raise DicomRejected("a compressed frame is truncated or corrupt",
                                    _STATUS_CANNOT_UNDERSTAND)
            declared = _codestream_size(data)
            if declared is not None and declared != (image.rows, image.columns):
                raise DicomRejected("a compressed frame does not match the image size",
                                    _STATUS_CANNOT_UNDERSTAND)
            opts["number_of_frames"] = 1
            opts.pop("extended_offsets", None)
            # One frame as the only fragment of an encapsulated value with an empty
            # basic offset table (PS3.5 A.4), so the decoder sees only this frame.
            item = struct.pack("<HHI", 0xFFFE, 0xE000, len(data) + (len(data) & 1))
            single = b"\xfe\xff\x00\xe0\x00\x00\x00\x00" + item + data + b"\x00" * (len(data) & 1)
            arr, _ = decoder.as_array(single, index=0, validate=True, **opts)
        else:
            arr, _ = decoder.as_array(fh, index=index, validate=True, **opts)
    except (DicomRejected, Invalid):
        raise
    except MemoryError:
        raise DicomRejected("the frame is too large to decode", _STATUS_OUT_OF_RESOURCES) from None
    except Exception as exc:  # decoders raise many types; name only the type
        raise DicomRejected(f"the frame cannot be decoded ({type(exc).__name__})",
                            _STATUS_CANNOT_UNDERSTAND) from None
    return arr


def _inflate_dataset(fh: BinaryIO) -> Dataset:
    """Read a Deflated Explicit VR Little Endian file with a cap on the inflated size."""
    # The dataset starts after the File Meta Information: 128 + 4 + the group (PS3.10 7.1).
    fh.seek(132)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"\x02\x00\x00\x00":
        raise DicomRejected("the File Meta Information has no group length",
                            _STATUS_CANNOT_UNDERSTAND)
    group_length = struct.unpack_from("<I", head, 8)[0]
    fh.seek(144 + group_length)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    while chunk := fh.read(64 * 1024):
        try:
            out += inflater.decompress(chunk, MAX_INFLATED_BYTES + 1 - len(out))
        except zlib.error:
            raise DicomRejected("the deflated dataset cannot be inflated",
                                _STATUS_CANNOT_UNDERSTAND) from None
        if len(out) > MAX_INFLATED_BYTES or inflater.unconsumed_tail:
            raise DicomRejected("the deflated dataset inflates past the size limit",
                                _STATUS_OUT_OF_RESOURCES)
    fh.seek(0)
    prefix = fh.read(144 + group_length)
    buffer = io.BytesIO(bytes(prefix))
    try:
        ds = pydicom.filereader.read_dataset(io.BytesIO(bytes(out)), False, True)
        ds.file_meta = pydicom.dcmread(buffer, stop_before_pixels=True).file_meta
    except DicomRejected:
        raise
    except Exception as exc:
        raise DicomRejected(f"the file is not a readable DICOM object ({type(exc).__name__})",
                            _STATUS_CANNOT_UNDERSTAND) from None
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return ds


def _load_frame(path: Path, frame: int) -> tuple[_Image, np.ndarray[Any, Any], int]:
    """Return the image description, the stored values of one frame, and its 0-based index."""
    _check_size(path)
    try:
        with path.open("rb") as fh:
            ds = _read_header(fh)
            image = _describe(ds)
            index = _check_frame(image, frame)
            if "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
                # Only a deflated file is read with its pixels (already inflated, capped).
                try:
                    arr = pixel_array(ds, index=index)
                except Exception as exc:
                    raise DicomRejected(f"the frame cannot be decoded ({type(exc).__name__})",
                                        _STATUS_CANNOT_UNDERSTAND) from None
            else:
                arr = _decode(fh, image, index)
    except OSError:
        raise DicomRejected("the file cannot be read", _STATUS_CANNOT_UNDERSTAND) from None
    expected = (image.rows, image.columns) if image.samples == 1 else (
        image.rows, image.columns, 3)
    if arr.shape != expected:
        raise DicomRejected("the decoded frame does not match the image size",
                            _STATUS_CANNOT_UNDERSTAND)
    return image, arr, index


# ---------------------------------------------------------------------------
# Attributes that may live in the functional groups of an enhanced object
# ---------------------------------------------------------------------------


def _functional(ds: Dataset, index: int, sequence: str) -> Dataset | None:
    """Return the item of a functional group macro for one frame (PS3.3 C.7.6.16)."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = ds.get(groups)
        if not items:
            continue
        item = items[index] if groups.startswith("PerFrame") and index < len(items) else items[0]
        inner = item.get(sequence)
        if inner:
            return inner[0]  # type: ignore[no-any-return]
    return None


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    """First ``count`` finite numbers of a DS/FD value (multi-valued or not), else None."""
    if value is None or value == "":
        return None
    values = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value]
    try:
        numbers = tuple(float(v) for v in values[:count])
    except (TypeError, ValueError):
        return None
    if len(numbers) < count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _rescale(ds: Dataset, index: int) -> tuple[float, float] | None:
    source = _functional(ds, index, "PixelValueTransformationSequence") or ds
    slope = _floats(source.get("RescaleSlope"), 1)
    intercept = _floats(source.get("RescaleIntercept"), 1)
    if slope is None and intercept is None:
        # RT Dose stores dose / Dose Grid Scaling (PS3.3 C.8.8.3.4.6), not a rescale.
        scaling = _floats(ds.get("DoseGridScaling"), 1)
        if str(ds.get("Modality", "")).upper() == "RTDOSE" and scaling is not None:
            return (scaling[0], 0.0)
        return None
    return (slope[0] if slope else 1.0, intercept[0] if intercept else 0.0)


def _window(ds: Dataset, index: int) -> tuple[tuple[float, float] | None, str]:
    """The object's first window (centre, width) and VOI LUT Function for one frame."""
    source = _functional(ds, index, "FrameVOILUTSequence") or ds
    centre = _floats(source.get("WindowCenter"), 1)
    width = _floats(source.get("WindowWidth"), 1)
    function = str(source.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    if function not in _VOI_FUNCTIONS:
        function = "LINEAR"
    if centre is None or width is None or width[0] <= 0 or (
        function == "LINEAR" and width[0] < 1
    ):
        return None, function
    return (centre[0], width[0]), function


def _spacing(ds: Dataset, index: int) -> tuple[
    tuple[float, float] | None, Literal["PixelSpacing", "ImagerPixelSpacing"] | None, str
]:
    measures = _functional(ds, index, "PixelMeasuresSequence")
    for source in (measures, ds):
        if source is None:
            continue
        spacing = _floats(source.get("PixelSpacing"), 2)
        if spacing is not None and spacing[0] > 0 and spacing[1] > 0:
            return (spacing[0], spacing[1]), "PixelSpacing", (
                "Pixel Spacing: distances in the patient")
    spacing = _floats(ds.get("ImagerPixelSpacing"), 2)
    if spacing is not None and spacing[0] > 0 and spacing[1] > 0:
        return (spacing[0], spacing[1]), "ImagerPixelSpacing", (
            "Imager Pixel Spacing: distances at the detector, not corrected for "
            "geometric magnification")
    return None, None, "no pixel spacing: distances are in pixels only"


def _units(ds: Dataset, index: int) -> str:
    modality = str(ds.get("Modality", "")).upper()
    source = _functional(ds, index, "PixelValueTransformationSequence") or ds
    rescale_type = str(source.get("RescaleType", "") or "").strip().upper()
    if modality == "CT" and rescale_type in ("", "HU"):
        return "HU"
    if modality == "PT" and ds.get("Units"):
        return str(ds.Units).strip()
    if modality == "RTDOSE" and ds.get("DoseUnits"):
        units = str(ds.DoseUnits).strip().upper()
        return "Gy" if units == "GY" else units.lower()
    if rescale_type and rescale_type != "US":  # "US": unspecified (PS3.3 C.11.1.1.2)
        return rescale_type
    return ""


def _geometry(image: _Image) -> ImageGeometry:
    ds = image.ds
    spacing, source, note = _spacing(ds, 0)
    window, _ = _window(ds, 0)
    return ImageGeometry(
        rows=image.rows,
        columns=image.columns,
        frames=image.frames,
        pixel_spacing=spacing,
        spacing_source=source,
        spacing_note=note,
        units=_units(ds, 0),
        default_window=window,
        photometric=image.photometric,
        modality=str(ds.get("Modality", "") or ""),
    )


def read_geometry(path: Path) -> ImageGeometry:
    """Describe an instance from its header alone (the pixel data is not read).

    Spacing follows PS3.3 10.7.1.3: Pixel Spacing (or the Pixel Measures functional
    group) is in the patient; Imager Pixel Spacing is at the detector plane.
    """
    _check_size(path)
    try:
        with path.open("rb") as fh:
            ds = _read_header(fh)
    except OSError:
        raise DicomRejected("the file cannot be read", _STATUS_CANNOT_UNDERSTAND) from None
    return _geometry(_describe(ds))


# ---------------------------------------------------------------------------
# Values, windowing and encoding
# ---------------------------------------------------------------------------


def _modality_values(image: _Image, arr: np.ndarray[Any, Any], index: int) -> FloatArray:
    """Apply the Modality LUT (PS3.3 C.11.1) and return float32 values."""
    ds = image.ds
    rescale = _rescale(ds, index)
    if rescale is not None:
        slope, intercept = rescale
        values = arr.astype(np.float32)
        if slope != 1.0:
            values *= np.float32(slope)
        if intercept != 0.0:
            values += np.float32(intercept)
        return values
    if "ModalityLUTSequence" in ds:
        try:
            return np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
        except Exception as exc:
            raise DicomRejected(f"the Modality LUT cannot be applied ({type(exc).__name__})",
                                _STATUS_CANNOT_UNDERSTAND) from None
    return arr.astype(np.float32)


def window_to_8bit(
    values: FloatArray, centre: float, width: float, function: str = "LINEAR"
) -> npt.NDArray[np.uint8]:
    """Map values to 0..255 through a window (PS3.3 C.11.2.1.2.1 and C.11.2.1.3).

    LINEAR: ``((x - (c - 0.5)) / (w - 1) + 0.5) * 255`` clipped; LINEAR_EXACT:
    ``((x - c) / w + 0.5) * 255`` clipped; SIGMOID: ``255 / (1 + exp(-4 (x - c) / w))``.
    The result is rounded to the nearest integer.
    """
    if function == "SIGMOID":
        out = np.subtract(values, np.float32(centre), dtype=np.float32)
        out *= np.float32(-4.0 / width)
        np.clip(out, -80.0, 80.0, out=out)  # exp overflows float32 past ~88
        np.exp(out, out=out)
        out += np.float32(1.0)
        np.divide(np.float32(255.0), out, out=out)
    else:
        if function == "LINEAR_EXACT":
            low, span = centre - width / 2, width
        elif width <= 1:
            # w == 1 is a step at c - 0.5 (x <= c - 0.5 -> 0); the formula divides by zero.
            return np.where(values > centre - 0.5, 255, 0).astype(np.uint8)
        else:
            low, span = centre - 0.5 - (width - 1) / 2, width - 1
        scale = np.float32(255.0 / span)
        out = np.subtract(values, np.float32(low), dtype=np.float32)
        out *= scale
        np.clip(out, 0.0, 255.0, out=out)
    out += np.float32(0.5)
    return out.astype(np.uint8)


def _voi_lut(ds: Dataset, index: int, values: FloatArray) -> npt.NDArray[np.uint8] | None:
    """Apply the first VOI LUT Sequence item (PS3.3 C.11.2.1.1), scaled to 0..255."""
    source = _functional(ds, index, "FrameVOILUTSequence") or ds
    items = source.get("VOILUTSequence") or ds.get("VOILUTSequence")
    if not items:
        return None
    item = items[0]
    descriptor = item.get("LUTDescriptor")
    data = item.get("LUTData")
    if descriptor is None or data is None or len(descriptor) != 3:
        return None
    entries = int(descriptor[0]) or 65536
    first = int(descriptor[1])
    if first >= 32768 and "VOILUTSequence" in ds:
        first -= 65536  # descriptor value 2 is signed when the pixel data is (C.11.2.1.1)
    if isinstance(data, bytes):
        little = ds.file_meta.TransferSyntaxUID.is_little_endian
        lut = np.frombuffer(data, dtype="<u2" if little else ">u2").astype(np.float32)
    else:
        lut = np.asarray(list(data) if isinstance(data, Sequence) else [data], dtype=np.float32)
    if lut.size < entries or entries < 1:
        return None
    lut = lut[:entries]
    top = float(lut.max())
    table = (np.zeros(entries, dtype=np.uint8) if top <= 0
             else np.clip(lut * (255.0 / top) + 0.5, 0, 255).astype(np.uint8))
    positions = np.clip(np.rint(values) - first, 0, entries - 1).astype(np.intp)
    return np.asarray(table[positions], dtype=np.uint8)


def _padding_mask(image: _Image, stored: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    """Pixels that are Pixel Padding Value (up to Pixel Padding Range Limit), PS3.3 C.7.5.1.1.2.

    Padding marks pixels outside the scanned area (a CT's circular field of view);
    they carry no measurement, so statistics and the min/max window leave them out.
    """
    ds = image.ds
    value = ds.get("PixelPaddingValue")
    if not isinstance(value, int) or image.samples != 1:
        return None
    limit = ds.get("PixelPaddingRangeLimit")
    low, high = (value, value) if not isinstance(limit, int) else sorted((value, limit))
    return (stored >= low) & (stored <= high)


def _voi_8bit(image: _Image, values: FloatArray, index: int, request: RenderRequest,
              frame_range: Callable[[], tuple[float, float]]) -> npt.NDArray[np.uint8]:
    """VOI stage: the requested window, the object's window, its VOI LUT, or min/max."""
    own_window, own_function = _window(image.ds, index)
    function = request.voi_function or own_function
    if request.window is not None:
        return window_to_8bit(values, request.window[0], request.window[1], function)
    if own_window is not None:
        return window_to_8bit(values, own_window[0], own_window[1], function)
    voi = _voi_lut(image.ds, index, values)
    if voi is not None:
        return voi
    low, high = frame_range()
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return window_to_8bit(values, (low + high) / 2, high - low, "LINEAR_EXACT")


def _to_8bit_grey(image: _Image, arr: np.ndarray[Any, Any], index: int,
                  request: RenderRequest) -> npt.NDArray[np.uint8]:
    """Grayscale pipeline (PS3.4 N.2) to 0..255, MONOCHROME1 and ``invert`` applied."""
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2:
        # Stored values of 16 bits or fewer: run the pipeline once per possible value
        # (at most 65,536) and look each pixel up, instead of float arithmetic on every
        # pixel. Same function, a third of the time on a 512x512 CT.
        unsigned = np.dtype(f"u{arr.dtype.itemsize}")
        domain = np.arange(2 ** (8 * arr.dtype.itemsize), dtype=unsigned).view(arr.dtype)

        def frame_range() -> tuple[float, float]:
            padding = _padding_mask(image, arr)
            real = arr if padding is None else arr[~padding]
            if real.size == 0:
                return (0.0, 0.0)
            stored = np.arange(int(real.min()), int(real.max()) + 1, dtype=np.int64)
            values = _modality_values(image, stored.astype(arr.dtype), index)
            return float(values.min()), float(values.max())

        table = _voi_8bit(image, _modality_values(image, domain, index), index, request,
                          frame_range)
        if (image.photometric == "MONOCHROME1") != request.invert:
            np.subtract(255, table, out=table)
        return np.take(table, arr.view(unsigned))
    values = _modality_values(image, arr, index)

    def value_range() -> tuple[float, float]:
        padding = _padding_mask(image, arr)
        real = values if padding is None else values[~padding]
        return (float(real.min()), float(real.max())) if real.size else (0.0, 0.0)

    out = _voi_8bit(image, values, index, request, value_range)
    if (image.photometric == "MONOCHROME1") != request.invert:
        np.subtract(255, out, out=out)
    return out


def _to_8bit_colour(image: _Image, arr: np.ndarray[Any, Any],
                    request: RenderRequest) -> npt.NDArray[np.uint8]:
    if image.photometric == "PALETTE COLOR":
        try:
            rgb = apply_color_lut(arr, image.ds)
        except Exception as exc:
            raise DicomRejected(f"the palette cannot be applied ({type(exc).__name__})",
                                _STATUS_CANNOT_UNDERSTAND) from None
        if rgb.dtype.itemsize > 1:
            # 16-bit palette entries (PS3.3 C.7.6.3.1.5): keep the high byte.
            rgb = (rgb >> 8).astype(np.uint8)
        out = np.ascontiguousarray(rgb, dtype=np.uint8)
    elif image.bits_stored > 8:
        shift = image.bits_stored - 8
        out = (arr.astype(np.uint32) >> shift).clip(0, 255).astype(np.uint8)
    else:
        out = np.ascontiguousarray(arr, dtype=np.uint8)
    if request.invert:
        out = 255 - out
    return out


def _check_request(request: RenderRequest) -> None:
    if request.format not in ("jpeg", "png"):
        raise Invalid("the format must be jpeg or png")
    quality = request.quality
    if isinstance(quality, bool) or not isinstance(quality, int) or not (
        QUALITY_RANGE[0] <= quality <= QUALITY_RANGE[1]
    ):
        raise Invalid(f"quality must be a whole number from {QUALITY_RANGE[0]} to "
                      f"{QUALITY_RANGE[1]}")
    if request.window is not None:
        try:
            centre, width = (float(v) for v in request.window)
        except (TypeError, ValueError):
            raise Invalid("the window must be two numbers: centre and width") from None
        if not (math.isfinite(centre) and math.isfinite(width)):
            raise Invalid("the window centre and width must be finite numbers")
        if width <= 0:
            raise Invalid("the window width must be greater than zero")
        if width < 1 and (request.voi_function or "LINEAR") == "LINEAR":
            raise Invalid("a linear window must be at least 1 wide (PS3.3 C.11.2.1.2)")
    if request.voi_function is not None and request.voi_function not in _VOI_FUNCTIONS:
        raise Invalid("the VOI function must be LINEAR, LINEAR_EXACT or SIGMOID")
    if request.viewport is not None:
        try:
            width, height = request.viewport
        except (TypeError, ValueError):
            raise Invalid("the viewport must be a width and a height") from None
        for side in (width, height):
            if isinstance(side, bool) or not isinstance(side, int) or not (
                1 <= side <= MAX_VIEWPORT
            ):
                raise Invalid(f"viewport sides must be whole numbers from 1 to {MAX_VIEWPORT}")


def _encode(pixels: npt.NDArray[np.uint8], request: RenderRequest) -> bytes:
    img = Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")
    if request.viewport is not None:
        # thumbnail() keeps the aspect ratio and never enlarges.
        img.thumbnail(request.viewport, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if request.format == "png":
        img.save(buffer, "PNG", compress_level=6)
    else:
        # No optimize=True: on a 512x512 CT it saves 1.3 % of the bytes for 0.5 ms, a
        # third of the whole in-process render (scripts/bench/render.py, 2026-11-23).
        img.save(buffer, "JPEG", quality=request.quality)
    return buffer.getvalue()


def frame_8bit(source: Path | Dataset, frame: int,
               request: RenderRequest | None = None) -> npt.NDArray[np.uint8]:
    """One frame through the same pipeline as :func:`render_frame`, as 8-bit pixels.

    ``source`` is a Part 10 file (only that frame is read) or a dataset already in
    memory with its pixel data (the intake path, so held pixels never touch disk
    before they are checked). Greyscale gives (rows, columns), colour (rows, columns, 3).
    For analysis such as OCR of burned-in text (:mod:`app.dicom.ocr`), not for display.
    """
    request = request or RenderRequest(format="png")
    _check_request(request)
    if isinstance(source, Dataset):
        image = _describe(source)
        index = _check_frame(image, frame)
        try:
            arr = pixel_array(source, index=index)
        except Exception as exc:  # decoders raise many types; name only the type
            raise DicomRejected(f"the frame cannot be decoded ({type(exc).__name__})",
                                _STATUS_CANNOT_UNDERSTAND) from None
    else:
        image, arr, index = _load_frame(source, frame)
    if image.samples == 1 and image.photometric in _GREYSCALE:
        return _to_8bit_grey(image, arr, index, request)
    return _to_8bit_colour(image, arr, request)


def render_dataset_frame(ds: Dataset, request: RenderRequest) -> bytes:
    """:func:`render_frame` for a dataset in memory (a blackout preview that is never stored)."""
    return _encode(frame_8bit(ds, request.frame, request), request)


def frame_count(ds: Dataset) -> int:
    """Number of frames of an in-memory dataset, after the same checks as rendering."""
    return _describe(ds).frames


def render_frame(path: Path, request: RenderRequest) -> bytes:
    """Render one frame of a Part 10 file to JPEG (default) or PNG bytes.

    Greyscale: Modality LUT, then the requested window, the object's first window,
    its VOI LUT, or the frame's min/max; MONOCHROME1 is inverted (PS3.4 N.2).
    Colour: palette lookup or YBR -> RGB; the window is ignored. Only the requested
    frame is read and decoded. Raises :class:`Invalid` for a bad request and
    :class:`DicomRejected` for an object that cannot be rendered.
    """
    _check_request(request)
    image, arr, index = _load_frame(path, request.frame)
    if image.samples == 1 and image.photometric in _GREYSCALE:
        pixels = _to_8bit_grey(image, arr, index, request)
    else:
        pixels = _to_8bit_colour(image, arr, request)
    return _encode(pixels, request)


def thumbnail(path: Path, size: int = 128) -> bytes:
    """A JPEG of the middle frame, in its own window, fitting a ``size`` square."""
    geometry = read_geometry(path)
    return render_frame(path, RenderRequest(frame=(geometry.frames + 1) // 2,
                                            viewport=(size, size), quality=80))


# ---------------------------------------------------------------------------
# Measurements on the real values
# ---------------------------------------------------------------------------


def frame_values(path: Path, frame: int) -> FloatArray:
    """Return the Modality LUT output of one greyscale frame as float32 (HU for CT)."""
    image, arr, index = _load_frame(path, frame)
    if image.samples != 1 or image.photometric not in _GREYSCALE:
        raise Invalid("measurements need a greyscale image")
    return _modality_values(image, arr, index)


def roi_stats(
    path: Path, frame: int, ellipse: tuple[float, float, float, float]
) -> RoiStats:
    """Mean, SD, min and max of the real pixel values inside an ellipse.

    ``ellipse`` is (cx, cy, rx, ry) in image pixel coordinates, whose origin is the
    top left corner of the top left pixel (PS3.3 C.10.5.1.2): the centre of pixel
    (row r, column c) is (c + 0.5, r + 0.5), and a pixel counts when its centre is
    inside the ellipse. The SD is the sample standard deviation (n - 1).
    """
    try:
        cx, cy, rx, ry = (float(v) for v in ellipse)
    except (TypeError, ValueError):
        raise Invalid("the ellipse must be four numbers: cx, cy, rx, ry") from None
    if not all(math.isfinite(v) for v in (cx, cy, rx, ry)):
        raise Invalid("the ellipse must be finite numbers")
    if rx <= 0 or ry <= 0:
        raise Invalid("the ellipse radii must be greater than zero")
    image, arr, index = _load_frame(path, frame)
    if image.samples != 1 or image.photometric not in _GREYSCALE:
        raise Invalid("measurements need a greyscale image")
    values = _modality_values(image, arr, index)
    rows, columns = values.shape
    top, bottom = max(math.floor(cy - ry), 0), min(math.ceil(cy + ry) + 1, rows)
    left, right = max(math.floor(cx - rx), 0), min(math.ceil(cx + rx) + 1, columns)
    if top >= bottom or left >= right:
        raise Invalid("the ellipse lies outside the image")
    ys = (np.arange(top, bottom, dtype=np.float64) + 0.5 - cy) / ry
    xs = (np.arange(left, right, dtype=np.float64) + 0.5 - cx) / rx
    mask = ys[:, None] ** 2 + xs[None, :] ** 2 <= 1.0
    if not mask.any():
        raise Invalid("the ellipse contains no pixel centre")
    padding = _padding_mask(image, arr[top:bottom, left:right])
    if padding is not None:
        mask &= ~padding
    inside = values[top:bottom, left:right][mask].astype(np.float64)
    if inside.size == 0:
        raise Invalid("the ellipse contains only padding outside the scanned area")
    spacing, source, _ = _spacing(image.ds, index)
    area = math.pi * rx * ry * spacing[0] * spacing[1] if spacing else None
    return RoiStats(
        mean=float(inside.mean()),
        sd=float(inside.std(ddof=1)) if inside.size > 1 else 0.0,
        min=float(inside.min()),
        max=float(inside.max()),
        area_mm2=area,
        pixel_count=int(inside.size),
        units=_units(image.ds, index),
        spacing_source=source,
    )


def line_length(
    geometry: ImageGeometry, start: tuple[float, float], end: tuple[float, float]
) -> LengthMeasurement:
    """Distance between two points (x, y) in image pixel coordinates.

    Pixel Spacing is (row spacing, column spacing) (PS3.3 10.7.1.3), so a step in
    x is scaled by the column spacing and a step in y by the row spacing.
    """
    try:
        x0, y0 = (float(v) for v in start)
        x1, y1 = (float(v) for v in end)
    except (TypeError, ValueError):
        raise Invalid("a point must be two numbers: x and y") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise Invalid("the points must be finite numbers")
    dx, dy = x1 - x0, y1 - y0
    pixels = math.hypot(dx, dy)
    if geometry.pixel_spacing is None:
        return LengthMeasurement(pixels, None, None, geometry.spacing_note)
    row_spacing, column_spacing = geometry.pixel_spacing
    mm = math.hypot(dx * column_spacing, dy * row_spacing)
    return LengthMeasurement(pixels, mm, geometry.spacing_source, geometry.spacing_note)
