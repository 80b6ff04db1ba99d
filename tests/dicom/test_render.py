"""Rendering and measurement tests for app.dicom.render, with pydicom's bundled files.

Expected pixels come from the files' known stored values (for example CT_small.dcm
stores 175 at (0, 0), HU -849) put through the formulas of PS3.3 C.11, or from the
uncompressed original of a losslessly compressed copy.
"""

from __future__ import annotations

import io
import math
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    RLELossless,
    generate_uid,
)

from app.dicom.render import (
    MAX_VIEWPORT,
    ImageGeometry,
    RenderRequest,
    frame_values,
    line_length,
    read_geometry,
    render_frame,
    roi_stats,
    thumbnail,
)
from app.errors import DicomRejected, Invalid

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def bundled(name: str) -> Path:
    """A file shipped inside the pydicom wheel (never downloaded)."""
    path = TEST_FILES / name
    if not path.exists():
        pytest.skip(f"{name} is not bundled with this pydicom")
    return path


def pixels(data: bytes) -> np.ndarray:
    """Decode a rendered PNG (lossless) back to an array."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG"
        return np.asarray(img)


def png(path: Path, **kwargs: Any) -> np.ndarray:
    return pixels(render_frame(path, RenderRequest(format="png", **kwargs)))


def linear(x: float, centre: float, width: float) -> int:
    """PS3.3 C.11.2.1.2.1, output range 0..255, rounded."""
    if x <= centre - 0.5 - (width - 1) / 2:
        return 0
    if x > centre - 0.5 + (width - 1) / 2:
        return 255
    return math.floor(((x - (centre - 0.5)) / (width - 1) + 0.5) * 255 + 0.5)


def write(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def copy_of(name: str, tmp_path: Path, change: Callable[[Dataset], None]) -> Path:
    ds = pydicom.dcmread(bundled(name))
    change(ds)
    return write(ds, tmp_path / f"changed_{name}")


def new_image(arr: np.ndarray, *, photometric: str = "MONOCHROME2", bits: int = 16,
              modality: str = "CT", sop_class: UID = CTImageStorage) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.set_pixel_data(arr, photometric, bits)
    return ds


# ---------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------


def test_geometry_of_ct_reads_header_only() -> None:
    g = read_geometry(bundled("CT_small.dcm"))
    assert (g.rows, g.columns, g.frames) == (128, 128, 1)
    assert g.modality == "CT" and g.units == "HU" and g.photometric == "MONOCHROME2"
    assert g.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert g.spacing_source == "PixelSpacing" and "patient" in g.spacing_note
    assert g.default_window is None
    assert g.is_greyscale


def test_geometry_of_multiframe_and_window() -> None:
    assert read_geometry(bundled("rtdose.dcm")).frames == 15
    assert read_geometry(bundled("examples_ybr_color.dcm")).frames == 30
    mr = read_geometry(bundled("MR_small.dcm"))
    assert mr.default_window == (600.0, 1600.0)
    assert mr.units == ""


def test_imager_pixel_spacing_is_at_the_detector(tmp_path: Path) -> None:
    ds = new_image(np.zeros((8, 8), np.uint16), modality="DX",
                   sop_class=DigitalXRayImageStorageForPresentation)
    ds.ImagerPixelSpacing = [0.2, 0.1]
    g = read_geometry(write(ds, tmp_path / "dx.dcm"))
    assert g.spacing_source == "ImagerPixelSpacing"
    assert g.pixel_spacing == (0.2, 0.1)
    assert "detector" in g.spacing_note


# ---------------------------------------------------------------------------
# Greyscale pipeline
# ---------------------------------------------------------------------------


def test_ct_modality_lut_gives_hounsfield_units() -> None:
    values = frame_values(bundled("CT_small.dcm"), 1)
    assert values.dtype == np.float32
    assert values[0, 0] == 175 - 1024  # stored 175, slope 1, intercept -1024
    stored = pydicom.dcmread(bundled("CT_small.dcm")).pixel_array
    np.testing.assert_array_equal(values, stored.astype(np.float32) - 1024)


def test_ct_window_follows_ps33_linear_formula() -> None:
    path = bundled("CT_small.dcm")
    out = png(path, window=(-849.0, 400.0))
    assert out.shape == (128, 128)
    assert out[0, 0] == linear(-849, -849, 400) == 128
    hu = pydicom.dcmread(path).pixel_array.astype(np.float64) - 1024
    expected = np.vectorize(lambda x: linear(x, -849, 400))(hu)
    assert np.abs(out.astype(int) - expected).max() <= 1  # float32 vs float64 at .5 ties


def test_ct_without_window_uses_min_max_of_frame() -> None:
    out = png(bundled("CT_small.dcm"))
    stored = pydicom.dcmread(bundled("CT_small.dcm")).pixel_array
    assert out[stored == stored.min()].max() == 0
    assert out[stored == stored.max()].min() == 255


def test_mr_uses_its_own_window() -> None:
    out = png(bundled("MR_small.dcm"))
    # stored 905 at (0, 0), window 600/1600
    assert out[0, 0] == linear(905, 600, 1600) == 176


def test_sigmoid_and_linear_exact_functions() -> None:
    path = bundled("MR_small.dcm")
    sigmoid = png(path, window=(600.0, 1600.0), voi_function="SIGMOID")
    assert sigmoid[0, 0] == round(255 / (1 + math.exp(-4 * (905 - 600) / 1600)))  # 174
    exact = png(path, window=(600.0, 1600.0), voi_function="LINEAR_EXACT")
    assert exact[0, 0] == round(((905 - 600) / 1600 + 0.5) * 255)  # 176


def test_sigmoid_from_the_file(tmp_path: Path) -> None:
    def sigmoid(ds: Dataset) -> None:
        ds.VOILUTFunction = "SIGMOID"

    out = png(copy_of("MR_small.dcm", tmp_path, sigmoid))
    assert out[0, 0] == round(255 / (1 + math.exp(-4 * (905 - 600) / 1600)))


def test_monochrome1_is_shown_inverted(tmp_path: Path) -> None:
    def mono1(ds: Dataset) -> None:
        ds.PhotometricInterpretation = "MONOCHROME1"

    normal = png(bundled("MR_small.dcm"))
    inverted = png(copy_of("MR_small.dcm", tmp_path, mono1))
    assert inverted[0, 0] == 255 - 176
    np.testing.assert_array_equal(inverted, 255 - normal)
    # invert=True flips MONOCHROME1 back, and flips MONOCHROME2
    np.testing.assert_array_equal(
        png(copy_of("MR_small.dcm", tmp_path, mono1), invert=True), normal)
    np.testing.assert_array_equal(png(bundled("MR_small.dcm"), invert=True), 255 - normal)


def test_voi_lut_sequence(tmp_path: Path) -> None:
    def voi_lut(ds: Dataset) -> None:
        del ds.WindowCenter
        del ds.WindowWidth
        item = Dataset()
        item.LUTDescriptor = [1024, 500, 16]  # 1024 entries, first maps 500
        item.add_new(0x00283006, "US", [4 * i for i in range(1024)])  # LUT Data: 0..4092
        ds.VOILUTSequence = Sequence([item])

    out = png(copy_of("MR_small.dcm", tmp_path, voi_lut))
    # 905 -> entry 405 -> 1620 of 4092 -> 1620 * 255 / 4092
    assert out[0, 0] == math.floor(1620 * 255 / 4092 + 0.5)


def test_functional_groups_of_an_enhanced_object(tmp_path: Path) -> None:
    arr = np.stack([np.full((4, 6), 100 * (i + 1), np.uint16) for i in range(3)])
    ds = new_image(arr)
    transform = Dataset()
    transform.RescaleSlope = 2
    transform.RescaleIntercept = -50
    transform.RescaleType = "HU"
    measures = Dataset()
    measures.PixelSpacing = [0.5, 0.25]
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    path = write(ds, tmp_path / "enhanced.dcm")
    assert frame_values(path, 2)[0, 0] == 200 * 2 - 50
    g = read_geometry(path)
    assert g.pixel_spacing == (0.5, 0.25) and g.units == "HU" and g.frames == 3


# ---------------------------------------------------------------------------
# Transfer syntaxes: a lossless copy must give the original's pixels
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "MR_small_RLE.dcm",  # RLE
    "MR_small_bigendian.dcm",  # Explicit VR big endian
    "MR_small_implicit.dcm",  # Implicit VR little endian
])
def test_lossless_syntaxes_match_the_uncompressed_original(name: str) -> None:
    original = frame_values(bundled("MR_small.dcm"), 1)
    assert original[0, 0] == 905
    np.testing.assert_array_equal(frame_values(bundled(name), 1), original)
    np.testing.assert_array_equal(png(bundled(name)), png(bundled("MR_small.dcm")))


def test_lossy_jpeg_2000_ct_is_close_to_its_window() -> None:
    path = bundled("693_J2KI.dcm")
    out = pixels(render_frame(path, RenderRequest(format="png")))
    assert out.shape == (512, 512)
    values = frame_values(path, 1)
    # Air around the patient is far below the file's window (40/100): black.
    assert values[0, 0] < -500 and out[0, 0] == 0


def test_deflated_transfer_syntax() -> None:
    path = bundled("image_dfl.dcm")
    expected = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(frame_values(path, 1), expected.astype(np.float32))


def test_deflate_bomb_is_refused_while_inflating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.dicom.render as render

    ds = new_image(np.zeros((8, 8), np.uint16), modality="OT")
    ds.add_new(0x00091000, "LO", "TEACHFILE TEST")
    ds.add_new(0x00091001, "OB", bytes(32 * 1024 * 1024))  # deflates to ~32 KiB
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = write(ds, tmp_path / "bomb.dcm")
    assert path.stat().st_size < 1024 * 1024
    monkeypatch.setattr(render, "MAX_INFLATED_BYTES", 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(DicomRejected, match="size limit") as caught:
            render_frame(path, RenderRequest())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.dicom_status == 0xA700
    assert peak < 4 * 1024 * 1024  # refused at the cap, never inflated to 32 MiB


# ---------------------------------------------------------------------------
# Multi-frame: only the requested frame
# ---------------------------------------------------------------------------

# Known (0, 0) values of the 15 frames of rtdose.dcm (32-bit unsigned, no rescale)
RTDOSE_00 = [1249000, 1248000, 1248000, 1249000, 1250000, 1250000, 1251000, 1253000,
             1254000, 1252000, 1251000, 1250000, 1249000, 1249000, 1249000]


@pytest.mark.parametrize("name", ["rtdose.dcm", "rtdose_rle.dcm"])
@pytest.mark.parametrize("frame", [1, 8, 15])
def test_multiframe_native_and_rle_frames(name: str, frame: int) -> None:
    # Dose Grid Scaling 1e-6, Dose Units RELATIVE
    values = frame_values(bundled(name), frame)
    assert values[0, 0] == pytest.approx(RTDOSE_00[frame - 1] * 1e-6, rel=1e-6)
    assert read_geometry(bundled(name)).units == "relative"


class _CountingPath(type(Path())):  # type: ignore[misc]
    """A path whose open() counts the bytes read through it."""

    read_bytes_total = 0

    def open(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().open(*args, **kwargs)
        outer = self

        class Counting:
            def __getattr__(self, name: str) -> Any:
                return getattr(handle, name)

            def read(self, size: int = -1) -> bytes:
                data: bytes = handle.read(size)
                type(outer).read_bytes_total += len(data)
                return data

            def readinto(self, buffer: Any) -> int:
                count: int = handle.readinto(buffer)
                type(outer).read_bytes_total += count
                return count

            def __enter__(self) -> Counting:
                return self

            def __exit__(self, *exc: object) -> None:
                handle.close()

        return Counting()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, RLELossless])
def test_only_the_requested_frame_is_read(tmp_path: Path, syntax: str) -> None:
    frames, side = 40, 128
    arr = np.stack([np.full((side, side), i, np.uint16) for i in range(frames)])
    ds = new_image(arr)
    if syntax != ExplicitVRLittleEndian:
        ds.compress(syntax)
    path = write(ds, tmp_path / "multi.dcm")
    counting = _CountingPath(path)
    _CountingPath.read_bytes_total = 0
    values = frame_values(counting, 33)
    assert values.shape == (side, side) and (values == 32).all()
    frame_bytes = side * side * 2
    assert path.stat().st_size > 30 * frame_bytes or syntax == RLELossless
    assert _CountingPath.read_bytes_total < 2 * frame_bytes


def test_multiframe_ybr_jpeg_baseline() -> None:
    path = bundled("examples_ybr_color.dcm")
    first = png(path, frame=1)
    last = png(path, frame=30)
    assert first.shape == (240, 320, 3)
    assert np.abs(first[0, 0].astype(int) - [3, 0, 5]).max() <= 2
    assert not np.array_equal(first, last)


# ---------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------

# SC_rgb_*: ten bands of ten rows each
BANDS = [(255, 0, 0), (255, 128, 128), (0, 255, 0), (128, 255, 128), (0, 0, 255),
         (128, 128, 255), (0, 0, 0), (64, 64, 64), (192, 192, 192), (255, 255, 255)]


@pytest.mark.parametrize(("name", "tolerance"), [
    ("SC_rgb_rle.dcm", 0),
    ("SC_rgb_rle_16bit.dcm", 0),
    ("SC_rgb_jpeg_gdcm.dcm", 0),  # JPEG lossless, process 14
    # 8-bit YBR is not exact: pure green comes back as (0, 255, 5)
    ("SC_ybr_full_422_uncompressed.dcm", 6),  # YBR_FULL_422 -> RGB
    ("SC_rgb_dcmtk_+eb+cy+np.dcm", 6),  # JPEG baseline, YBR_FULL_422
    ("SC_rgb_gdcm_KY.dcm", 3),  # JPEG 2000
])
def test_rgb_and_ybr_bands(name: str, tolerance: int) -> None:
    out = png(bundled(name))
    assert out.shape == (100, 100, 3)
    for band, colour in enumerate(BANDS):
        centre = out[band * 10 + 5, 50].astype(int)
        assert np.abs(centre - colour).max() <= tolerance, (band, centre)


def test_second_frame_of_rgb_rle() -> None:
    out = png(bundled("SC_rgb_rle_2frame.dcm"), frame=2)
    # frame 2 is the complement of frame 1
    assert out[5, 50].tolist() == [0, 255, 255]
    assert out[95, 50].tolist() == [0, 0, 0]


def test_rgb_ignores_window_and_honours_invert() -> None:
    path = bundled("SC_rgb_rle.dcm")
    np.testing.assert_array_equal(png(path, window=(10.0, 20.0)), png(path))
    np.testing.assert_array_equal(png(path, invert=True), 255 - png(path))


def test_palette_colour() -> None:
    path = bundled("examples_palette.dcm")
    ds = pydicom.dcmread(path)
    out = png(path)
    assert out.shape == (350, 800, 3)
    index = int(ds.pixel_array[0, 0])
    assert index == 244
    expected = []
    for colour in ("Red", "Green", "Blue"):
        _entries, first, bits = ds[f"{colour}PaletteColorLookupTableDescriptor"].value
        assert bits == 16
        table = np.frombuffer(ds[f"{colour}PaletteColorLookupTableData"].value, "<u2")
        expected.append(int(table[index - first]) >> 8)
    assert out[0, 0].tolist() == expected


def test_cache_key_tells_requests_apart() -> None:
    keys = {
        RenderRequest().cache_key(),
        RenderRequest(frame=2).cache_key(),
        RenderRequest(window=(40.0, 400.0)).cache_key(),
        RenderRequest(window=(40.0, 401.0)).cache_key(),
        RenderRequest(voi_function="SIGMOID").cache_key(),
        RenderRequest(format="png").cache_key(),
        RenderRequest(quality=80).cache_key(),
        RenderRequest(viewport=(256, 256)).cache_key(),
        RenderRequest(invert=True).cache_key(),
    }
    assert len(keys) == 9
    assert all("/" not in key and ".." not in key for key in keys)
    assert RenderRequest().cache_key() == RenderRequest(frame=1, quality=85).cache_key()


def test_jpeg_is_the_default_output() -> None:
    data = render_frame(bundled("CT_small.dcm"), RenderRequest())
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and img.size == (128, 128) and img.mode == "L"


# ---------------------------------------------------------------------------
# Viewport and thumbnail
# ---------------------------------------------------------------------------


def test_viewport_downscales_and_keeps_aspect() -> None:
    assert png(bundled("CT_small.dcm"), viewport=(64, 32)).shape == (32, 32)
    # 256 columns x 1024 rows into 128 x 128
    assert png(bundled("JPEG2000.dcm"), viewport=(128, 128)).shape == (128, 32)


def test_viewport_never_upscales() -> None:
    assert png(bundled("CT_small.dcm"), viewport=(MAX_VIEWPORT, MAX_VIEWPORT)).shape == (128, 128)


def test_thumbnail_is_the_middle_frame_as_jpeg() -> None:
    path = bundled("examples_ybr_color.dcm")
    data = thumbnail(path, 64)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG" and max(img.size) == 64
    assert data == render_frame(path, RenderRequest(frame=15, viewport=(64, 64), quality=80))


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


def test_roi_of_one_pixel_is_its_hu() -> None:
    stats = roi_stats(bundled("CT_small.dcm"), 1, (0.5, 0.5, 0.4, 0.4))
    assert stats.pixel_count == 1
    assert stats.mean == stats.min == stats.max == -849.0
    assert stats.sd == 0.0 and stats.units == "HU"
    assert stats.area_mm2 == pytest.approx(math.pi * 0.4 * 0.4 * 0.661468**2)
    assert stats.spacing_source == "PixelSpacing"


def test_roi_matches_an_independent_mask() -> None:
    path = bundled("CT_small.dcm")
    cx, cy, rx, ry = 64.0, 50.0, 20.0, 10.0
    stats = roi_stats(path, 1, (cx, cy, rx, ry))
    hu = pydicom.dcmread(path).pixel_array.astype(np.float64) - 1024
    rows, cols = np.mgrid[0:128, 0:128]
    mask = ((cols + 0.5 - cx) / rx) ** 2 + ((rows + 0.5 - cy) / ry) ** 2 <= 1
    assert stats.pixel_count == int(mask.sum())
    assert stats.mean == pytest.approx(hu[mask].mean())
    assert stats.sd == pytest.approx(hu[mask].std(ddof=1))
    assert (stats.min, stats.max) == (hu[mask].min(), hu[mask].max())


def test_roi_refuses_bad_ellipses_and_colour() -> None:
    path = bundled("CT_small.dcm")
    for ellipse in [(10, 10, 0, 5), (10, 10, -1, 5), (10, 10, math.nan, 5),
                    (-100, -100, 5, 5), (1.0, 1.0, 0.2, 0.2)]:
        with pytest.raises(Invalid):
            roi_stats(path, 1, ellipse)
    with pytest.raises(Invalid, match="greyscale"):
        roi_stats(bundled("SC_rgb_rle.dcm"), 1, (50, 50, 5, 5))


def test_roi_and_min_max_leave_out_pixel_padding(tmp_path: Path) -> None:
    def pad(ds: Dataset) -> None:
        ds.PixelPaddingValue = 175  # the stored value at (0, 0)

    path = copy_of("CT_small.dcm", tmp_path, pad)
    with pytest.raises(Invalid, match="padding"):
        roi_stats(path, 1, (0.5, 0.5, 0.4, 0.4))
    stored = pydicom.dcmread(bundled("CT_small.dcm")).pixel_array
    rows, cols = np.mgrid[0:128, 0:128]
    mask = ((cols + 0.5 - 10) / 10) ** 2 + ((rows + 0.5 - 10) / 10) ** 2 <= 1
    kept = mask & (stored != 175)
    assert 0 < kept.sum() < mask.sum()
    stats = roi_stats(path, 1, (10, 10, 10, 10))
    assert stats.pixel_count == int(kept.sum())
    assert stats.mean == pytest.approx(stored[kept].mean() - 1024)
    # min/max window: the smallest real value is black, padding is out of the range
    out = png(path)
    real_min = stored[stored != 175].min()
    assert out[stored == real_min].max() == 0


def test_roi_without_spacing_has_no_area(tmp_path: Path) -> None:
    ds = new_image(np.arange(64, dtype=np.uint16).reshape(8, 8), modality="OT")
    stats = roi_stats(write(ds, tmp_path / "ot.dcm"), 1, (4, 4, 2, 2))
    assert stats.area_mm2 is None and stats.units == ""


def test_line_length_uses_row_and_column_spacing() -> None:
    g = ImageGeometry(rows=10, columns=10, frames=1, pixel_spacing=(0.5, 0.25),
                      spacing_source="PixelSpacing", spacing_note="in the patient", units="HU",
                      default_window=None, photometric="MONOCHROME2", modality="CT")
    length = line_length(g, (0, 0), (4, 3))
    assert length.pixels == 5
    assert length.mm == pytest.approx(math.hypot(4 * 0.25, 3 * 0.5))
    assert length.spacing_source == "PixelSpacing"
    none = line_length(
        ImageGeometry(10, 10, 1, None, None, "no pixel spacing", "", None, "RGB", "OT"),
        (0, 0), (4, 3))
    assert none.mm is None and none.pixels == 5


# ---------------------------------------------------------------------------
# Bad input: a clear error, never a value from the file
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("request_", [
    RenderRequest(frame=0),
    RenderRequest(frame=2),
    RenderRequest(frame=-1),
    RenderRequest(window=(40.0, 0.0)),
    RenderRequest(window=(40.0, -400.0)),
    RenderRequest(window=(40.0, 0.5)),
    RenderRequest(window=(math.nan, 400.0)),
    RenderRequest(window=(40.0, math.inf)),
    RenderRequest(viewport=(0, 100)),
    RenderRequest(viewport=(100, MAX_VIEWPORT + 1)),
    RenderRequest(viewport=(10**9, 10**9)),
    RenderRequest(quality=0),
    RenderRequest(quality=96),
    RenderRequest(quality=10**6),
    RenderRequest(format="gif"),  # type: ignore[arg-type]
])
def test_bad_requests_are_invalid(request_: RenderRequest) -> None:
    with pytest.raises(Invalid):
        render_frame(bundled("CT_small.dcm"), request_)


def test_frame_out_of_range_on_multiframe() -> None:
    with pytest.raises(Invalid, match="out of range") as caught:
        render_frame(bundled("rtdose.dcm"), RenderRequest(frame=16))
    assert "15" not in caught.value.message


def test_declared_frame_larger_than_memory_is_refused_before_decoding(tmp_path: Path) -> None:
    def huge(ds: Dataset) -> None:
        ds.Rows = 65535
        ds.Columns = 65535

    path = copy_of("MR_small.dcm", tmp_path, huge)
    with pytest.raises(DicomRejected, match="larger") as caught:
        render_frame(path, RenderRequest())
    assert "65535" not in caught.value.message
    assert caught.value.dicom_status == 0xA700


def test_declared_frames_beyond_the_pixel_data(tmp_path: Path) -> None:
    def many(ds: Dataset) -> None:
        ds.NumberOfFrames = 1_000_000

    path = copy_of("MR_small.dcm", tmp_path, many)
    with pytest.raises(DicomRejected) as caught:
        frame_values(path, 999_999)
    assert "1000000" not in caught.value.message


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "SC_rgb_jpeg_gdcm.dcm"])
@pytest.mark.parametrize("damage", ["overwrite tail", "truncate", "zero after header"])
def test_corrupt_compressed_frame(tmp_path: Path, name: str, damage: str) -> None:
    def corrupt(ds: Dataset) -> None:
        frame = bytearray(pydicom.encaps.get_frame(ds.PixelData, 0))
        if damage == "overwrite tail":
            frame[len(frame) // 3:] = b"\x5a" * (len(frame) - len(frame) // 3)
        elif damage == "truncate":
            del frame[len(frame) // 2:]
        else:
            frame[20:] = bytes(len(frame) - 20)
        ds.PixelData = encapsulate([bytes(frame)])

    path = copy_of(name, tmp_path, corrupt)
    with pytest.raises(DicomRejected, match=r"truncated or corrupt|cannot be decoded"):
        render_frame(path, RenderRequest())


def test_corrupt_rle_frame(tmp_path: Path) -> None:
    def truncate(ds: Dataset) -> None:
        frame = pydicom.encaps.get_frame(ds.PixelData, 0)
        ds.PixelData = encapsulate([frame[: len(frame) // 2]])

    path = copy_of("MR_small_RLE.dcm", tmp_path, truncate)
    with pytest.raises(DicomRejected, match="cannot be decoded"):
        render_frame(path, RenderRequest())


@pytest.mark.parametrize("name", ["MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "SC_rgb_jpeg_gdcm.dcm"])
def test_codestream_larger_than_header_is_refused(tmp_path: Path, name: str) -> None:
    def shrink(ds: Dataset) -> None:
        ds.Rows = 32

    path = copy_of(name, tmp_path, shrink)
    with pytest.raises(DicomRejected, match="does not match"):
        render_frame(path, RenderRequest())


def test_large_element_before_the_pixels_stays_on_disk(tmp_path: Path) -> None:
    ds = new_image(np.zeros((16, 16), np.uint16), modality="OT")
    ds.add_new(0x00091000, "LO", "TEACHFILE TEST")
    ds.add_new(0x00091001, "OB", bytes(16 * 1024 * 1024))
    path = write(ds, tmp_path / "blob.dcm")
    tracemalloc.start()
    try:
        render_frame(path, RenderRequest())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024


def test_not_dicom_and_no_pixels(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 64)
    with pytest.raises(DicomRejected):
        render_frame(junk, RenderRequest())
    with pytest.raises(DicomRejected):
        render_frame(bundled("rtplan.dcm"), RenderRequest())
    with pytest.raises(DicomRejected):
        read_geometry(tmp_path / "missing.dcm")
