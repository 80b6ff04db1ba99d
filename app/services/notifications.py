"""In-app notifications (mentions, replies, consults) and the optional daily e-mail digest.

A notification is only ever created for someone who may read what it points at, and
it is only counted and listed while they still may (an account that moves to another
hospital stops seeing its old hospital's threads, notices included).

The digest is sent only where the operator configured an SMTP server
(``TEACHFILE_SMTP_HOST`` and ``TEACHFILE_SMTP_FROM``, optionally ``_PORT``, ``_USERNAME``,
``_PASSWORD``, ``_STARTTLS``); without one nothing tries to send. The e-mail names the
case or consult and links to it, never the comment's text.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.errors import NotFound
from app.models import Comment, Consult, Notification, NotificationKind, User
from app.services.access import Permission, can, readable_comments, readable_consults
from app.services.pagination import Page, paginate


def notify(
    session: Session,
    user: User,
    kind: NotificationKind,
    actor: User | None,
    *,
    comment: Comment | None = None,
    consult: Consult | None = None,
) -> Notification | None:
    """Tell ``user`` about a comment or consult, if they may read it; else nothing."""
    target: object = comment if comment is not None else consult
    if target is None or not user.is_active or not can(user, Permission.VIEW, target):
        return None
    notification = Notification(
        user_id=user.id,
        kind=kind,
        actor_id=actor.id if actor else None,
        comment_id=comment.id if comment is not None else None,
        consult_id=consult.id if consult is not None else None,
    )
    session.add(notification)
    return notification


def _visible(user: User) -> ColumnElement[bool]:
    """Notifications whose target ``user`` may still read (the access rule, in SQL)."""
    return and_(
        Notification.user_id == user.id,
        or_(
            Notification.comment_id.is_(None),
            Notification.comment_id.in_(
                select(Comment.id).where(readable_comments(user), Comment.deleted_at.is_(None))
            ),
        ),
        or_(
            Notification.consult_id.is_(None),
            Notification.consult_id.in_(select(Consult.id).where(readable_consults(user))),
        ),
    )


def unread_count(session: Session, user: User | None) -> int:
    """The number on the bell."""
    if user is None:
        return 0
    return (
        session.scalar(
            select(func.count(Notification.id)).where(
                _visible(user), Notification.read_at.is_(None)
            )
        )
        or 0
    )


def list_notifications(session: Session, *, actor: User, page: int = 1) -> Page[Notification]:
    """Newest first, read ones too."""
    query = (
        select(Notification)
        .where(_visible(actor))
        .options(
            selectinload(Notification.actor),
            selectinload(Notification.comment).selectinload(Comment.case),
            selectinload(Notification.consult).selectinload(Consult.study),
        )
        .order_by(Notification.created_at.desc(), Notification.id.desc())
    )
    return paginate(session, query, page, 30)


def mark_read(session: Session, *, actor: User, notification_id: int | None = None) -> int:
    """Mark one notification (or, without an id, all of them) read; returns how many."""
    query = update(Notification).where(
        Notification.user_id == actor.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        owned = session.scalar(
            select(Notification.id).where(
                Notification.id == notification_id, Notification.user_id == actor.id
            )
        )
        if owned is None:
            raise NotFound("No such notification.")
        query = query.where(Notification.id == notification_id)
    result = session.execute(
        query.values(read_at=utcnow()).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def describe(notification: Notification) -> str:
    """One line in plain words, for the page and the digest (no comment text)."""
    who = notification.actor.display_name if notification.actor else "Someone"
    if notification.comment is not None:
        title = notification.comment.case.title
        if notification.kind is NotificationKind.MENTION:
            return f"{who} mentioned you in the discussion of “{title}”."
        return f"{who} replied to your comment on “{title}”."
    if notification.consult is not None:
        return f"{who} wrote in consult #{notification.consult.id}."
    return f"{who} wrote something."


def link(notification: Notification) -> str:
    """The path of what the notification points at (a comment's permalink, a consult)."""
    if notification.comment_id is not None:
        return f"/comments/{notification.comment_id}"
    if notification.consult_id is not None:
        return f"/consults/{notification.consult_id}"
    return "/notifications"


# --- the daily digest ------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    sender: str
    port: int = 25
    username: str = ""
    password: str = ""
    starttls: bool = False


def smtp_settings(config: Mapping[str, Any]) -> SmtpSettings | None:
    """SMTP settings from the app config (``TEACHFILE_SMTP_*``), or None if not configured."""
    host = str(config.get("SMTP_HOST") or "").strip()
    sender = str(config.get("SMTP_FROM") or "").strip()
    if not host or not sender:
        return None
    return SmtpSettings(
        host=host,
        sender=sender,
        port=int(config.get("SMTP_PORT") or 25),
        username=str(config.get("SMTP_USERNAME") or ""),
        password=str(config.get("SMTP_PASSWORD") or ""),
        starttls=bool(config.get("SMTP_STARTTLS")),
    )


@dataclass
class Digest:
    user: User
    notification_ids: list[int]
    message: EmailMessage


def build_digests(session: Session, *, sender: str, base_url: str) -> list[Digest]:
    """One message per active user with unread notifications not e-mailed yet."""
    base = base_url.rstrip("/")
    users = session.scalars(
        select(User)
        .where(
            User.is_active.is_(True),
            User.id.in_(
                select(Notification.user_id).where(
                    Notification.read_at.is_(None), Notification.emailed_at.is_(None)
                )
            ),
        )
        .order_by(User.id)
    ).all()
    digests = []
    for user in users:
        pending: Sequence[Notification] = session.scalars(
            select(Notification)
            .where(
                _visible(user), Notification.read_at.is_(None), Notification.emailed_at.is_(None)
            )
            .order_by(Notification.created_at, Notification.id)
        ).all()
        if not pending:
            continue
        lines = [f"Hello {user.display_name},", "", "New on Teachfile since the last digest:", ""]
        lines += [f"- {describe(n)}\n  {base}{link(n)}" for n in pending]
        lines += ["", f"All notifications: {base}/notifications"]
        message = EmailMessage()
        message["From"] = sender
        message["To"] = user.email
        count = len(pending)
        message["Subject"] = f"Teachfile: {count} new notification{'s' if count != 1 else ''}"
        message.set_content("\n".join(lines) + "\n")
        digests.append(Digest(user, [n.id for n in pending], message))
    return digests


def send_digests(
    session: Session,
    settings: SmtpSettings | None,
    *,
    base_url: str,
    smtp_factory: Callable[..., smtplib.SMTP] = smtplib.SMTP,
    now: datetime | None = None,
) -> int:
    """Send the digests through the configured server; without one, send nothing.

    Each notification is marked e-mailed as its message is accepted; the caller commits
    (a failure part way rolls the marks back, so the next run may repeat a message rather
    than lose one). Returns the number of messages sent.
    """
    if settings is None:
        return 0
    digests = build_digests(session, sender=settings.sender, base_url=base_url)
    if not digests:
        return 0
    sent = 0
    with smtp_factory(settings.host, settings.port, timeout=30) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password)
        for digest in digests:
            smtp.send_message(digest.message)
            session.execute(
                update(Notification)
                .where(Notification.id.in_(digest.notification_ids))
                .values(emailed_at=now or utcnow())
                .execution_options(synchronize_session=False)
            )
            sent += 1
    return sent
