"""Teaching cases, their studies, key images, revisions, labels, sets and annotations."""

from __future__ import annotations

import enum
import secrets
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.models.imaging import Instance, Series, Study
from app.models.user import Institution, User


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class Visibility(enum.StrEnum):
    PRIVATE = "private"  # its authors
    INSTITUTION = "institution"  # members of the case's institution
    PUBLIC = "public"  # everyone, visitors included


class CaseStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


# The Markdown sections of a case, in page order; also the columns of Case.
SECTION_FIELDS = (
    "history",
    "findings",
    "diagnosis_text",
    "differential",
    "discussion",
    "teaching_points",
    "references",
)


def new_unknown_token() -> str:
    """The opaque name of a case read as an unknown (/unknowns/<token>): 96 random bits,
    so the URL says nothing about the slug, the title or the diagnosis (issue 15)."""
    return secrets.token_urlsafe(12)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    diagnosis: Mapped[str] = mapped_column(String(300), default="")
    difficulty: Mapped[str] = mapped_column(String(20), default="intermediate", index=True)
    certainty: Mapped[str] = mapped_column(String(30), default="")
    status: Mapped[CaseStatus] = mapped_column(
        _enum(CaseStatus), default=CaseStatus.DRAFT, index=True
    )
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility), default=Visibility.PRIVATE, index=True
    )
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institutions.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    synthetic_images: Mapped[bool] = mapped_column(default=False)
    case_of_the_day_eligible: Mapped[bool] = mapped_column(default=True)
    # Optimistic concurrency: a save names the revision it started from.
    revision: Mapped[int] = mapped_column(default=1)
    unknown_token: Mapped[str] = mapped_column(String(32), unique=True, default=new_unknown_token)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    # Who confirmed the identifier check before publishing, and when.
    phi_confirmed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    phi_confirmed_at: Mapped[datetime | None]
    # An edit of a published case whose text has identifier findings waits here (a
    # CaseRevision number) until its author confirms it; readers, search and export
    # keep the columns below, which hold the last confirmed (live) text (issue 14).
    pending_revision: Mapped[int | None]

    history: Mapped[str] = mapped_column(Text, default="")
    findings: Mapped[str] = mapped_column(Text, default="")
    diagnosis_text: Mapped[str] = mapped_column(Text, default="")
    differential: Mapped[str] = mapped_column(Text, default="")
    discussion: Mapped[str] = mapped_column(Text, default="")
    teaching_points: Mapped[str] = mapped_column(Text, default="")
    references: Mapped[str] = mapped_column(Text, default="")

    institution: Mapped[Institution | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    authors: Mapped[list[CaseAuthor]] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )
    labels: Mapped[list[CaseLabel]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseLabel.id"
    )
    studies: Mapped[list[CaseStudy]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="CaseStudy.position"
    )
    key_images: Mapped[list[KeyImage]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="KeyImage.position"
    )

    def label_values(self, kind: str) -> list[str]:
        return [label.value for label in self.labels if label.kind == kind]

    def is_author(self, user: User | None) -> bool:
        return user is not None and any(a.user_id == user.id for a in self.authors)


class CaseAuthor(Base):
    __tablename__ = "case_authors"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    case: Mapped[Case] = relationship(back_populates="authors")
    user: Mapped[User] = relationship()


# Kinds of CaseLabel: list-valued metadata the case list filters and search facets use.
LABEL_KINDS = ("modality", "body_region", "tag", "audience", "small_hospital_modality")


class CaseLabel(Base):
    __tablename__ = "case_labels"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "value"),
        Index("ix_case_labels_kind_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    value: Mapped[str] = mapped_column(String(80))

    case: Mapped[Case] = relationship(back_populates="labels")


class CaseStudy(Base):
    """A study shown in a case (a before/after pair, a follow-up: several)."""

    __tablename__ = "case_studies"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    study_id: Mapped[int] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(default=0)

    case: Mapped[Case] = relationship(back_populates="studies")
    study: Mapped[Study] = relationship()


class KeyImage(Base):
    """A frame the author shows first; the first one is the case's thumbnail."""

    __tablename__ = "key_images"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_instances.id", ondelete="CASCADE"), index=True
    )
    frame: Mapped[int] = mapped_column(default=1)
    position: Mapped[int] = mapped_column(default=0)
    caption: Mapped[str] = mapped_column(String(300), default="")

    case: Mapped[Case] = relationship(back_populates="key_images")
    instance: Mapped[Instance] = relationship()


class CaseRevision(Base):
    """Every save of a case's text and metadata, for the history and its diffs."""

    __tablename__ = "case_revisions"
    __table_args__ = (UniqueConstraint("case_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    saved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when a save was refused as stale: the text is kept so nothing is lost.
    conflicted: Mapped[bool] = mapped_column(default=False)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)

    saved_by: Mapped[User | None] = relationship()


class CaseSet(Base):
    """An ordered course of cases, optionally worth continuing-education credit."""

    __tablename__ = "case_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    objectives: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), default=CaseStatus.DRAFT)
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility), default=Visibility.PRIVATE)
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institutions.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]
    # Continuing-education credit (issue 9); credit_hours None means no credit.
    credit_hours: Mapped[float | None]
    passing_score: Mapped[int] = mapped_column(default=70)  # percent
    max_attempts: Mapped[int | None]
    faculty: Mapped[str] = mapped_column(Text, default="")
    disclosures: Mapped[str] = mapped_column(Text, default="")
    release_date: Mapped[date | None]
    review_date: Mapped[date | None]
    expiry_date: Mapped[date | None]
    evaluation: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # Issue 15: an exam's time limit in minutes (None: untimed), enforced by the server.
    time_limit_minutes: Mapped[int | None]
    # Who issues and accredits the credit; empty means the TEACHFILE_CREDIT_* defaults.
    credit_provider: Mapped[str] = mapped_column(String(300), default="")
    accreditation_statement: Mapped[str] = mapped_column(Text, default="")
    credit_type: Mapped[str] = mapped_column(String(200), default="")

    institution: Mapped[Institution | None] = relationship()
    created_by: Mapped[User | None] = relationship()
    items: Mapped[list[CaseSetItem]] = relationship(
        back_populates="case_set", cascade="all, delete-orphan", order_by="CaseSetItem.position"
    )


class CaseSetItem(Base):
    __tablename__ = "case_set_items"

    set_id: Mapped[int] = mapped_column(
        ForeignKey("case_sets.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(default=0)

    case_set: Mapped[CaseSet] = relationship(back_populates="items")
    case: Mapped[Case] = relationship()


class CaseOfTheDay(Base):
    __tablename__ = "case_of_the_day"

    day: Mapped[date] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    chosen_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    case: Mapped[Case] = relationship()


class AnnotationVisibility(enum.StrEnum):
    ONLY_ME = "only_me"
    INSTITUTION = "institution"  # my institution's members who may see the case
    CASE_READERS = "case_readers"  # everyone who may see the case


class Annotation(Base):
    """A mark on one frame: a reader's own, or (``teaching``) the author's overlay."""

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(
        ForeignKey("dicom_instances.id", ondelete="CASCADE"), index=True
    )
    frame: Mapped[int] = mapped_column(default=1)
    kind: Mapped[str] = mapped_column(String(20))  # arrow, line, ellipse, text
    points: Mapped[list[Any]] = mapped_column(JSON)  # [[column, row], ...] in image pixels
    text: Mapped[str] = mapped_column(String(500), default="")
    visibility: Mapped[AnnotationVisibility] = mapped_column(
        _enum(AnnotationVisibility), default=AnnotationVisibility.ONLY_ME
    )
    teaching: Mapped[bool] = mapped_column(default=False)
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institutions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    case: Mapped[Case] = relationship()
    user: Mapped[User | None] = relationship()
    series: Mapped[Series] = relationship()
    instance: Mapped[Instance] = relationship()
