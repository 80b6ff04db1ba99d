"""Case discussion threads, reports, notifications, consults and private case notes."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.models.case import Annotation, Case
from app.models.imaging import Series, Study
from app.models.user import Institution, User


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class Thread(enum.StrEnum):
    """The two audiences of a case's discussion (issue 10)."""

    OPEN = "open"  # everyone logged in who may see the case
    HOSPITAL = "hospital"  # members of the comment's institution only


class Comment(Base):
    """One comment in a case thread; a reply has a top-level ``parent`` (one level deep).

    A hospital comment carries the writer's institution at the time of writing; the
    access rule shows it to that institution's members only. A deleted comment keeps
    its row (replies keep their context) with the text cleared.
    """

    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_case_id_thread", "case_id", "thread"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    thread: Mapped[Thread] = mapped_column(_enum(Thread), default=Thread.OPEN)
    # Set for hospital comments; a hospital thread whose institution is removed goes too.
    institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    body: Mapped[str] = mapped_column(Text, default="")
    # Image reference: a series of one of the case's studies, a frame, and optionally
    # one of the writer's own annotations.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("series.id", ondelete="SET NULL"))
    frame: Mapped[int | None]
    annotation_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    hidden_at: Mapped[datetime | None]
    hidden_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    hidden_reason: Mapped[str] = mapped_column(String(300), default="")

    case: Mapped[Case] = relationship()
    institution: Mapped[Institution | None] = relationship()
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    hidden_by: Mapped[User | None] = relationship(foreign_keys=[hidden_by_id])
    parent: Mapped[Comment | None] = relationship(remote_side=[id])
    series: Mapped[Series | None] = relationship()
    annotation: Mapped[Annotation | None] = relationship()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_hidden(self) -> bool:
        return self.hidden_at is not None


class CommentReport(Base):
    """A reader's report of a comment, for the admins' review."""

    __tablename__ = "comment_reports"
    __table_args__ = (UniqueConstraint("comment_id", "reporter_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    comment_id: Mapped[int] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    reporter_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    comment: Mapped[Comment] = relationship()
    reporter: Mapped[User] = relationship(foreign_keys=[reporter_id])


class ConsultStatus(enum.StrEnum):
    OPEN = "open"
    CONVERTED = "converted"  # an educator turned it into a case draft


class Consult(Base):
    """A private question about one of the institution's studies: the asker and the
    institution's educators (and admins) only."""

    __tablename__ = "consults"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institutions.id", ondelete="CASCADE"), index=True
    )
    asker_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[ConsultStatus] = mapped_column(_enum(ConsultStatus), default=ConsultStatus.OPEN)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    study: Mapped[Study] = relationship()
    institution: Mapped[Institution] = relationship()
    asker: Mapped[User | None] = relationship()
    case: Mapped[Case | None] = relationship()
    messages: Mapped[list[ConsultMessage]] = relationship(
        back_populates="consult", cascade="all, delete-orphan", order_by="ConsultMessage.id"
    )


class ConsultMessage(Base):
    __tablename__ = "consult_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    consult_id: Mapped[int] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    consult: Mapped[Consult] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()


class CaseNote(Base):
    """A note on a case for its authors only (a consult's discussion, kept with the draft).

    A table of its own rather than a column of ``cases``, so the case model and its
    migrations stay the cases service's.
    """

    __tablename__ = "case_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    consult_id: Mapped[int | None] = mapped_column(ForeignKey("consults.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User | None] = relationship()


class NotificationKind(enum.StrEnum):
    MENTION = "mention"
    REPLY = "reply"
    CONSULT = "consult"  # a new consult, or a message in one


class Notification(Base):
    """An in-app notice for one user; e-mailed in the daily digest where SMTP is set up."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_read_at", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotificationKind] = mapped_column(_enum(NotificationKind))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    consult_id: Mapped[int | None] = mapped_column(
        ForeignKey("consults.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    read_at: Mapped[datetime | None]
    emailed_at: Mapped[datetime | None] = mapped_column(index=True)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    comment: Mapped[Comment | None] = relationship()
    consult: Mapped[Consult | None] = relationship()
