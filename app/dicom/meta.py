"""What the database keeps about a de-identified object: the columns a teaching file lists."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import UID

from app.errors import DicomRejected

# PS3.4 Annex B.2.3: "Error: Data Set does not match SOP Class".
STATUS_MISMATCH = 0xA900


@dataclass(frozen=True)
class ImageMeta:
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    modality: str
    body_part_examined: str
    study_description: str
    series_description: str
    study_date: str
    patient_age: str
    patient_sex: str
    series_number: int | None
    instance_number: int | None
    position: float | None
    rows: int | None
    columns: int | None
    number_of_frames: int
    pixel_spacing: str | None


def _text(ds: Dataset, keyword: str, limit: int = 64) -> str:
    value = ds.get(keyword)
    if value is None or value == "":
        return ""
    return str(value).strip()[:limit]


def _int(ds: Dataset, keyword: str) -> int | None:
    value = ds.get(keyword)
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _position(ds: Dataset) -> float | None:
    """Distance along the slice normal (PS3.3 C.7.6.2.1.1), for ordering a stack."""
    try:
        ipp = [float(v) for v in ds.ImagePositionPatient]
        iop = [float(v) for v in ds.ImageOrientationPatient]
    except (AttributeError, TypeError, ValueError):
        return None
    if len(ipp) != 3 or len(iop) != 6:
        return None
    row, col = iop[:3], iop[3:]
    normal = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    return round(sum(n * p for n, p in zip(normal, ipp, strict=True)), 4)


def _spacing(ds: Dataset) -> str | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is not None:
            try:
                row, col = (float(v) for v in value)
            except (TypeError, ValueError):
                continue
            return f"{row:g}\\{col:g}"
    return None


def image_meta(ds: Dataset) -> ImageMeta:
    """Read the listing columns; refuse an object missing what every instance must have."""
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        if not _text(ds, keyword):
            raise DicomRejected(
                f"The object has no {keyword}, so it does not match its SOP Class.",
                STATUS_MISMATCH,
            )
    sop_class = UID(_text(ds, "SOPClassUID"))
    has_pixels = "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
    is_image = sop_class.keyword.endswith("ImageStorage")
    if is_image and (not has_pixels or _int(ds, "Rows") is None or _int(ds, "Columns") is None):
        raise DicomRejected(
            "The object declares an image SOP Class but has no pixel data, rows or columns.",
            STATUS_MISMATCH,
        )
    file_meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(file_meta, "TransferSyntaxUID", "") or "")
    return ImageMeta(
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=str(sop_class),
        transfer_syntax_uid=transfer_syntax,
        modality=_text(ds, "Modality", 16),
        body_part_examined=_text(ds, "BodyPartExamined"),
        study_description=_text(ds, "StudyDescription"),
        series_description=_text(ds, "SeriesDescription"),
        study_date=_text(ds, "StudyDate", 8),
        patient_age=_text(ds, "PatientAge", 4),
        patient_sex=_text(ds, "PatientSex", 1),
        series_number=_int(ds, "SeriesNumber"),
        instance_number=_int(ds, "InstanceNumber"),
        position=_position(ds),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        number_of_frames=max(1, _int(ds, "NumberOfFrames") or 1),
        pixel_spacing=_spacing(ds),
    )
