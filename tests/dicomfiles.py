"""Real DICOM for tests: pydicom's bundled files, with planted identifiers where needed."""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

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
