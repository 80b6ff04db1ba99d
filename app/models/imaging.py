"""De-identified imaging: pseudonymous patients, studies, series, instances, quarantine.

Every value here comes from the de-identifier's output; nothing identifies a
patient. UIDs are the de-identified ``2.25.`` ones, so a re-send lands on the
same rows.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.models.user import Institution, User


def _enum(cls: type[enum.Enum], length: int = 20) -> Enum:
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


class DicomSource(Base):
    """A calling AE title allowed to send, optionally only from one address."""

    __tablename__ = "dicom_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    host: Mapped[str | None] = mapped_column(String(64))
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime | None]

    institution: Mapped[Institution] = relationship()


class Patient(Base):
    """A pseudonymous patient of one source institution, with its one date shift."""

    __tablename__ = "patients"
    __table_args__ = (UniqueConstraint("institution_id", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    pseudonym: Mapped[str] = mapped_column(String(64))
    # Days added to every date of this patient (PS3.15 E.3.6, Retain Longitudinal
    # Temporal Information with Modified Dates); kept so later studies agree.
    date_offset_days: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    studies: Mapped[list[Study]] = relationship(back_populates="patient")


class StudyStatus(enum.StrEnum):
    INBOX = "inbox"
    DISCARDED = "discarded"


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    study_date: Mapped[str] = mapped_column(String(8), default="")  # shifted YYYYMMDD
    description: Mapped[str] = mapped_column(String(64), default="")  # cleaned
    patient_age: Mapped[str] = mapped_column(String(4), default="")
    patient_sex: Mapped[str] = mapped_column(String(1), default="")
    source: Mapped[str] = mapped_column(String(40), default="")  # "DICOM <AE>" or "upload"
    status: Mapped[StudyStatus] = mapped_column(
        _enum(StudyStatus), default=StudyStatus.INBOX, index=True
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="studies")
    institution: Mapped[Institution] = relationship()
    series: Mapped[list[Series]] = relationship(
        back_populates="study", order_by="Series.series_number", cascade="all, delete-orphan"
    )


class Series(Base):
    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    body_part_examined: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(String(64), default="")
    series_number: Mapped[int | None]

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list[Instance]] = relationship(
        back_populates="series",
        order_by="(Instance.position, Instance.instance_number, Instance.id)",
        cascade="all, delete-orphan",
    )


class Instance(Base):
    __tablename__ = "dicom_instances"

    id: Mapped[int] = mapped_column(primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"), index=True)
    instance_number: Mapped[int | None]
    # Position along the stack's normal, for ordering slices (PS3.3 C.7.6.2).
    position: Mapped[float | None] = mapped_column(Float)
    rows: Mapped[int | None]
    columns: Mapped[int | None]
    number_of_frames: Mapped[int] = mapped_column(default=1)
    pixel_spacing: Mapped[str | None] = mapped_column(String(64))  # "row\\col" in mm
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int]
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)

    series: Mapped[Series] = relationship(back_populates="instances")


class QuarantineStatus(enum.StrEnum):
    HELD = "held"
    RELEASED = "released"
    DELETED = "deleted"


class QuarantinedObject(Base):
    """A header-de-identified object that may show burned-in text; only admins open it."""

    __tablename__ = "quarantined_objects"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    modality: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[QuarantineStatus] = mapped_column(
        _enum(QuarantineStatus), default=QuarantineStatus.HELD, index=True
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    institution: Mapped[Institution] = relationship()
    resolved_by: Mapped[User | None] = relationship()
