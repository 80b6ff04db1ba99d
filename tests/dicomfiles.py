"""Real DICOM for tests: pydicom's bundled files, with planted identifiers where needed."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

PLANTED_NAME = "PLANTED^PATIENT^NAME"
PLANTED_ID = "MRN-PLANTED-9931"


def load(name: str = "CT_small.dcm") -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"{name} is not bundled with pydicom"
    return pydicom.dcmread(path)


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct(**changes: Any) -> Dataset:
    """CT_small with planted identifiers and any attribute changes given."""
    ds = load("CT_small.dcm")
    ds.PatientName = PLANTED_NAME
    ds.PatientID = PLANTED_ID
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return ds


def ct_series(
    count: int, *, study_uid: str | None = None, patient_id: str = PLANTED_ID
) -> list[Dataset]:
    """``count`` slices of one series: CT_small's pixels with fresh instance UIDs."""
    study_uid = study_uid or generate_uid()
    series_uid = generate_uid()
    slices = []
    for index in range(count):
        ds = ct(
            PatientID=patient_id,
            StudyInstanceUID=study_uid,
            SeriesInstanceUID=series_uid,
            SOPInstanceUID=generate_uid(),
            InstanceNumber=index + 1,
            ImagePositionPatient=[0.0, 0.0, float(index * 5)],
        )
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        slices.append(ds)
    return slices


def burned_in_secondary_capture() -> Dataset:
    """A Secondary Capture that declares burned-in text (it must be held, not stored)."""
    ds = ct(SOPClassUID="1.2.840.10008.5.1.4.1.1.7", Modality="OT", BurnedInAnnotation="YES")
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    return ds


# --- burned-in text (issue 14 item 6) ---------------------------------------------------------

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


@dataclass(frozen=True)
class Text:
    """Text to draw on a frame: top-left corner, font size (pixels) and grey level / colour."""

    text: str
    x: int
    y: int
    size: int = 16
    fill: int | tuple[int, int, int] = 255
    font: str = "DejaVuSans.ttf"


def font(size: int, name: str = "DejaVuSans.ttf") -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu where Debian installs it (fonts-dejavu-core), else Pillow's own scalable font."""
    path = _DEJAVU / name
    if path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def draw_text(frame: np.ndarray, texts: list[Text]) -> list[tuple[int, int, int, int]]:
    """Draw ``texts`` on ``frame`` in place; return each text's ink box (x, y, w, h)."""
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    boxes = []
    for t in texts:
        f = font(t.size, t.font)
        fill = t.fill if frame.ndim == 3 or isinstance(t.fill, int) else t.fill[0]
        draw.text((t.x, t.y), t.text, fill=fill, font=f)
        left, top, right, bottom = draw.textbbox((t.x, t.y), t.text, font=f)
        boxes.append((int(left), int(top), int(right - left), int(bottom - top)))
    frame[...] = np.asarray(image)
    return boxes


def speckle_frame(rng: np.random.Generator, rows: int = 480, columns: int = 640) -> np.ndarray:
    """An ultrasound-like frame: Rayleigh speckle in a curvilinear sector, black outside."""
    yy, xx = np.mgrid[0:rows, 0:columns].astype(np.float32)
    apex = -60.0
    radius = np.hypot(yy - apex, xx - columns / 2)
    angle = np.degrees(np.arctan2(xx - columns / 2, yy - apex))
    mask = (np.abs(angle) <= 36) & (radius >= -apex + 2) & (radius <= rows - apex - 8)
    noise = np.hypot(rng.standard_normal((rows, columns)), rng.standard_normal((rows, columns)))
    smooth = np.asarray(
        Image.fromarray((noise * 60).clip(0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(1.2)
        ),
        dtype=np.float32,
    )
    tissue = 0.6 + 0.4 * np.sin(yy / 37.0) * np.cos(xx / 53.0)
    img = smooth * tissue * (1.0 - (radius + apex) / 1400) * 2.2
    img[~mask] = 0
    return img.clip(0, 255).astype(np.uint8)


def ultrasound(
    frames: list[np.ndarray], *, burned_in: str | None = "NO", patient_id: str = PLANTED_ID
) -> Dataset:
    """Ultrasound Multi-frame Image Storage, 8-bit MONOCHROME2, native pixels."""
    return _image(US_MULTIFRAME, "US", np.stack(frames), burned_in, patient_id)


def secondary_capture(
    frame: np.ndarray, *, burned_in: str | None = "NO", patient_id: str = PLANTED_ID
) -> Dataset:
    """Secondary Capture Image Storage of one 8-bit RGB (or greyscale) frame."""
    return _image(SECONDARY_CAPTURE, "OT", frame[np.newaxis], burned_in, patient_id)


def _image(
    sop_class: str, modality: str, stack: np.ndarray, burned_in: str | None, patient_id: str
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyDate = ds.ContentDate = "20260102"
    ds.StudyTime = ds.ContentTime = "101100"
    ds.Modality = modality
    ds.PatientName = PLANTED_NAME
    ds.PatientID = patient_id
    ds.PatientSex = "F"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    frames, rows, columns = stack.shape[:3]
    colour = stack.ndim == 4
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "RGB" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameTime = 66.7
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(stack, dtype=np.uint8).tobytes()
    return ds
