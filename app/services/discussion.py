"""Case discussion (issue 10): open and hospital threads, replies, edits, reports, moderation.

Every comment belongs to one of two audiences of its case: the open thread (every
logged-in reader of the case) or the hospital thread of the writer's institution
(its members only). :func:`app.services.access.can` decides who sees a comment;
lists and counts use :func:`app.services.access.readable_comments`. Comment text is
Markdown, rendered only through :mod:`app.markup`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from markupsafe import Markup
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.errors import Conflict, Forbidden, Invalid, NotFound, TooManyRequests
from app.markup import check_length, render_markdown
from app.models import (
    Annotation,
    Case,
    CaseStudy,
    Comment,
    CommentReport,
    Consult,
    ConsultMessage,
    Instance,
    Notification,
    NotificationKind,
    Series,
    Thread,
    User,
)
from app.services import audit, identifier_gate, notifications
from app.services.access import Permission, can, require
from app.services.pagination import Page, paginate

#: Longest comment (characters of Markdown); a case's own sections may be longer.
COMMENT_MAX_CHARS = 5_000
#: Most distinct @mentions in one comment: more is a flood, refused.
MAX_MENTIONS = 10
#: Longest moderation or report reason.
MAX_REASON_CHARS = 300
#: Most comments one thread page shows (oldest first).
MAX_THREAD_COMMENTS = 1_000

_MENTION = re.compile(r"(?<![\w@/])@([A-Za-z0-9](?:[\w.\-]{0,62}[A-Za-z0-9_])?)")


@dataclass(frozen=True)
class PostingLimit:
    """At most ``max_posts`` comments and consult messages per user per window.

    Counted from the stored rows, so the limit holds across processes and hosts.
    """

    max_posts: int = 10
    window_seconds: int = 300


@dataclass(frozen=True)
class ImageRef:
    """What a comment points at: a series of the case, a frame, optionally an annotation."""

    series_uid: str
    frame: int = 1
    annotation_id: int | None = None


@dataclass
class CommentView:
    """One comment as a reader sees it."""

    comment: Comment
    state: str  # "shown", "deleted" or "hidden"
    html: Markup
    author_name: str
    can_edit: bool
    can_moderate: bool
    can_report: bool
    viewer_url: str | None
    image_label: str
    replies: list[CommentView] = field(default_factory=list)

    @property
    def id(self) -> int:
        return self.comment.id

    @property
    def anchor(self) -> str:
        return f"comment-{self.comment.id}"


@dataclass
class ThreadView:
    thread: Thread
    title: str
    audience: str  # where a comment posted here is visible, said before posting
    comments: list[CommentView]
    count: int


@dataclass(frozen=True)
class ImageChoice:
    series_uid: str
    label: str
    frames: int


@dataclass
class Discussion:
    """Everything the case page's discussion partial needs."""

    case: Case
    logged_in: bool
    threads: list[ThreadView]
    images: list[ImageChoice]
    max_chars: int = COMMENT_MAX_CHARS


# --- reading -----------------------------------------------------------------------


def get_case(session: Session, case_id: int, *, actor: User | None) -> Case:
    """The case if ``actor`` may read it, else NotFound (existence is not revealed)."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("No such case.")
    require(actor, Permission.VIEW, case)
    return case


def get_comment(session: Session, comment_id: int, *, actor: User | None) -> Comment:
    comment = session.get(Comment, comment_id)
    if comment is None or not can(actor, Permission.VIEW, comment):
        raise NotFound("No such comment.")
    return comment


def viewer_url(series: Series, frame: int | None, annotation_id: int | None = None) -> str:
    """The viewer page opened at a series and frame (the viewer's URL contract)."""
    query: dict[str, str | int] = {"series": series.series_instance_uid, "frame": frame or 1}
    if annotation_id is not None:
        query["annotation"] = annotation_id
    return f"/viewer/studies/{series.study.study_instance_uid}?{urlencode(query)}"


def thread_for(session: Session, case: Case, actor: User | None) -> Discussion:
    """The open thread and (for a member of an institution) the actor's hospital thread.

    A visitor gets no threads (discussion is for logged-in readers). Raises NotFound
    if ``actor`` may not read the case.
    """
    require(actor, Permission.VIEW, case)
    if actor is None:
        return Discussion(case=case, logged_in=False, threads=[], images=[])
    threads = [
        _thread_view(
            session,
            case,
            actor,
            Thread.OPEN,
            "Open discussion",
            "Visible to everyone who can see this case.",
        )
    ]
    if actor.institution_id is not None and actor.institution is not None:
        name = actor.institution.name
        threads.append(
            _thread_view(
                session,
                case,
                actor,
                Thread.HOSPITAL,
                f"{name} only",
                f"Visible only to members of {name}.",
            )
        )
    return Discussion(
        case=case, logged_in=True, threads=threads, images=image_choices(session, case)
    )


def image_choices(session: Session, case: Case) -> list[ImageChoice]:
    """The series of the case's studies a comment may point at."""
    rows = session.execute(
        select(Series, func.coalesce(func.sum(Instance.number_of_frames), 0))
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .outerjoin(Instance, Instance.series_id == Series.id)
        .where(CaseStudy.case_id == case.id)
        .group_by(Series.id)
        .order_by(Series.study_id, Series.series_number, Series.id)
    ).all()
    choices = []
    for number, (series, frames) in enumerate(rows, start=1):
        label = " ".join(p for p in (series.modality, series.description) if p) or "Series"
        choices.append(ImageChoice(series.series_instance_uid, f"{number}. {label}", int(frames)))
    return choices


def _thread_view(
    session: Session, case: Case, actor: User, thread: Thread, title: str, audience: str
) -> ThreadView:
    query = (
        select(Comment)
        .where(Comment.case_id == case.id, Comment.thread == thread)
        .options(
            selectinload(Comment.author),
            selectinload(Comment.series).selectinload(Series.study),
        )
        .order_by(Comment.created_at, Comment.id)
        .limit(MAX_THREAD_COMMENTS)
    )
    if thread is Thread.HOSPITAL:
        query = query.where(Comment.institution_id == actor.institution_id)
    comments = session.scalars(query).all()
    views: dict[int, CommentView] = {}
    top: list[CommentView] = []
    for comment in comments:
        view = comment_view(actor, comment)
        views[comment.id] = view
        if comment.parent_id is None:
            top.append(view)
        elif comment.parent_id in views:
            views[comment.parent_id].replies.append(view)
    count = sum(1 for c in comments if c.deleted_at is None and c.hidden_at is None)
    return ThreadView(thread, title, audience, top, count)


def comment_view(actor: User | None, comment: Comment) -> CommentView:
    """How ``actor`` sees one comment: removed, hidden (moderators still read it), shown."""
    moderator = can(actor, Permission.MODERATE_COMMENTS, comment)
    if comment.deleted_at is not None:
        state, html = "deleted", Markup("")
    elif comment.hidden_at is not None:
        state = "hidden"
        html = render_markdown(comment.body) if moderator else Markup("")
    else:
        state, html = "shown", render_markdown(comment.body)
    url, label = None, ""
    if comment.series is not None and state == "shown":
        url = viewer_url(comment.series, comment.frame, comment.annotation_id)
        label = (
            " ".join(p for p in (comment.series.modality, comment.series.description) if p)
            or "Series"
        )
        label = f"{label}, image {comment.frame or 1}"
        if comment.annotation_id is not None:
            label += " (with annotation)"
    return CommentView(
        comment=comment,
        state=state,
        html=html,
        author_name=comment.author.display_name if comment.author else "Former member",
        can_edit=state == "shown" and can(actor, Permission.EDIT, comment),
        can_moderate=moderator and state != "deleted",
        can_report=actor is not None and state == "shown" and comment.author_id != actor.id,
        viewer_url=url,
        image_label=label,
    )


# --- writing -----------------------------------------------------------------------


def parse_thread(value: object) -> Thread:
    """``"open"`` or ``"hospital"``; anything else is a clear 400."""
    try:
        return Thread(str(value))
    except ValueError:
        raise Invalid('The thread is "open" or "hospital".') from None


def _check_body(body: object) -> str:
    if not isinstance(body, str):
        raise Invalid("Write the comment as text.")
    text = body.replace("\r\n", "\n").replace("\x00", "").strip()
    if not text:
        raise Invalid("Write something before posting.")
    return check_length(text, "The comment", COMMENT_MAX_CHARS)


def check_posting_rate(session: Session, actor: User, limit: PostingLimit) -> None:
    """Refuse (429) when ``actor`` posted ``limit.max_posts`` times within the window."""
    since = utcnow() - timedelta(seconds=limit.window_seconds)
    posted = sum(
        session.scalar(select(func.count()).where(condition)) or 0
        for condition in (
            (Comment.author_id == actor.id) & (Comment.created_at >= since),
            (ConsultMessage.author_id == actor.id) & (ConsultMessage.created_at >= since),
            (Consult.asker_id == actor.id) & (Consult.created_at >= since),
        )
    )
    if posted >= limit.max_posts:
        minutes = max(1, limit.window_seconds // 60)
        raise TooManyRequests(
            f"You are posting too fast: at most {limit.max_posts} posts in {minutes} "
            "minutes. Wait a little and try again."
        )


def mentioned_users(session: Session, body: str, actor: User) -> list[User]:
    """Members of the actor's institution named with ``@`` (e-mail name or display name
    without spaces); others are plain text. More than MAX_MENTIONS names is refused."""
    handles = {m.group(1).lower() for m in _MENTION.finditer(body)}
    if len(handles) > MAX_MENTIONS:
        raise Invalid(f"A comment may mention at most {MAX_MENTIONS} colleagues.")
    if not handles or actor.institution_id is None:
        return []
    members = session.scalars(
        select(User).where(
            User.institution_id == actor.institution_id,
            User.is_active.is_(True),
            User.id != actor.id,
        )
    ).all()
    return [
        user
        for user in members
        if mention_handle(user) in handles or "".join(user.display_name.split()).lower() in handles
    ]


def mention_handle(user: User) -> str:
    """The name to write after ``@`` for ``user``: the part of their e-mail before the @."""
    return user.email.split("@", 1)[0].lower()


def _resolve_image(
    session: Session, case: Case, actor: User, image: ImageRef | None
) -> tuple[Series | None, int | None, int | None]:
    if image is None:
        return None, None, None
    series = session.scalars(
        select(Series)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == case.id, Series.series_instance_uid == image.series_uid)
    ).first()
    if series is None:
        raise Invalid("The image reference names a series this case does not show.")
    frames = (
        session.scalar(
            select(func.coalesce(func.sum(Instance.number_of_frames), 0)).where(
                Instance.series_id == series.id
            )
        )
        or 0
    )
    if not 1 <= image.frame <= max(1, frames):
        raise Invalid(f"The series has images 1 to {max(1, frames)}.")
    if image.annotation_id is not None:
        annotation = session.get(Annotation, image.annotation_id)
        if (
            annotation is None
            or annotation.user_id != actor.id
            or annotation.case_id != case.id
            or annotation.series_id != series.id
        ):
            raise Invalid("Point at one of your own annotations on that series.")
    return series, image.frame, image.annotation_id


def post_comment(
    session: Session,
    case_id: int,
    *,
    actor: User,
    body: object,
    thread: object = Thread.OPEN,
    parent_id: int | None = None,
    image: ImageRef | None = None,
    limit: PostingLimit | None = None,
    confirm_identifiers: bool = False,
) -> Comment:
    """Post a comment or a reply (replies stay one level deep and in their parent's thread).

    Nothing is stored unless every check passes: the case is readable, the thread is the
    open one or the writer's own hospital's, the parent is a live comment of the same case
    and thread, the text fits, the image reference is the case's, mentions are few, and the
    writer is within the posting rate, and the identifier gate passes (a comment with
    findings is posted only once its writer confirms). Mentioned colleagues and the
    parent's writer get a notification, if they may read the comment.
    """
    require(actor, Permission.AUTHENTICATED)
    case = get_case(session, case_id, actor=actor)
    kind = parse_thread(thread)
    text = _check_body(body)
    parent = None
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is None or parent.case_id != case.id or not can(actor, Permission.VIEW, parent):
            raise NotFound("There is no such comment to reply to.")
        if parent.parent is not None:
            parent = parent.parent  # one level deep: a reply to a reply joins its parent
        if parent.deleted_at is not None or parent.hidden_at is not None:
            raise Invalid("That comment was removed, so it takes no new replies.")
        if parent.thread is not kind:
            raise Invalid("A reply goes in the same thread as the comment it answers.")
    institution_id = None
    if kind is Thread.HOSPITAL:
        if actor.institution_id is None:
            raise Invalid("Your account belongs to no hospital, so it has no hospital thread.")
        if parent is not None and parent.institution_id != actor.institution_id:
            raise NotFound("There is no such comment to reply to.")
        institution_id = actor.institution_id
    series, frame, annotation_id = _resolve_image(session, case, actor, image)
    mentions = mentioned_users(session, text, actor)
    check_posting_rate(session, actor, limit or PostingLimit())
    findings = identifier_gate.check(
        session,
        {"Comment": text},
        enforce=True,
        confirmed=confirm_identifiers,
        action="comment.posted",
        target_type="case",
        target_id=case.id,
    )
    comment = Comment(
        case=case,
        thread=kind,
        institution_id=institution_id,
        author=actor,
        parent=parent,
        body=text,
        series=series,
        frame=frame,
        annotation_id=annotation_id,
    )
    session.add(comment)
    session.flush()
    identifier_gate.record(
        session,
        "comment.posted",
        findings,
        actor=actor,
        target_type="comment",
        target_id=comment.id,
        confirmed=confirm_identifiers,
        detail={"case_id": case.id, "reply": parent is not None},
    )
    notified = {actor.id}
    if parent is not None and parent.author is not None and parent.author_id not in notified:
        notified.add(parent.author.id)
        notifications.notify(session, parent.author, NotificationKind.REPLY, actor, comment=comment)
    for user in mentions:
        if user.id not in notified:
            notified.add(user.id)
            notifications.notify(session, user, NotificationKind.MENTION, actor, comment=comment)
    return comment


def get_comment_for_edit(session: Session, comment_id: int, *, actor: User) -> Comment:
    """The comment if ``actor`` may change it; Forbidden if they only read it, else NotFound."""
    comment = get_comment(session, comment_id, actor=actor)
    if not can(actor, Permission.EDIT, comment):
        raise Forbidden("Only its writer can edit a comment.")
    return comment


def edit_comment(
    session: Session,
    comment_id: int,
    *,
    actor: User,
    body: object,
    confirm_identifiers: bool = False,
) -> Comment:
    """Change one's own comment; it is marked as edited. Newly mentioned colleagues are told.
    The new text passes the identifier gate as a new comment would."""
    comment = get_comment_for_edit(session, comment_id, actor=actor)
    if comment.hidden_at is not None:
        raise Invalid("A moderator hid this comment; it can no longer be edited.")
    text = _check_body(body)
    mentions = mentioned_users(session, text, actor)
    if text == comment.body:
        return comment
    findings = identifier_gate.check(
        session,
        {"Comment": text},
        enforce=True,
        confirmed=confirm_identifiers,
        action="comment.edited",
        target_type="comment",
        target_id=comment.id,
    )
    comment.body = text
    comment.edited_at = utcnow()
    identifier_gate.record(
        session,
        "comment.edited",
        findings,
        actor=actor,
        target_type="comment",
        target_id=comment.id,
        confirmed=confirm_identifiers,
        detail={"case_id": comment.case_id},
    )
    already = set(
        session.scalars(select(Notification.user_id).where(Notification.comment_id == comment.id))
    )
    for user in mentions:
        if user.id not in already:
            notifications.notify(session, user, NotificationKind.MENTION, actor, comment=comment)
    session.flush()
    return comment


def delete_comment(session: Session, comment_id: int, *, actor: User) -> Comment:
    """Delete one's own comment: its text goes, a "comment removed" stays for the replies."""
    comment = get_comment(session, comment_id, actor=actor)
    if not can(actor, Permission.EDIT, comment):
        raise Forbidden("Only its writer can delete a comment.")
    comment.deleted_at = utcnow()
    comment.body = ""
    comment.series_id = comment.frame = comment.annotation_id = None
    session.execute(delete(Notification).where(Notification.comment_id == comment.id))
    session.flush()
    return comment


def _reason(reason: object, what: str, required: bool) -> str:
    text = " ".join(str(reason or "").split())
    if required and not text:
        raise Invalid(f"Give a reason for {what}.")
    return check_length(text, "The reason", MAX_REASON_CHARS)


def hide_comment(
    session: Session, comment_id: int, *, actor: User, reason: object, remote_addr: str = ""
) -> Comment:
    """A moderator (educator, admin) hides a comment with a reason; audit-logged."""
    comment = get_comment(session, comment_id, actor=actor)
    if not can(actor, Permission.MODERATE_COMMENTS, comment):
        raise Forbidden("Only educators and admins hide comments.")
    text = _reason(reason, "hiding the comment", required=True)
    if comment.deleted_at is not None:
        raise Invalid("The comment was already removed by its writer.")
    comment.hidden_at = utcnow()
    comment.hidden_by_id = actor.id
    comment.hidden_reason = text
    for report in session.scalars(
        select(CommentReport).where(
            CommentReport.comment_id == comment.id, CommentReport.resolved_at.is_(None)
        )
    ):
        report.resolved_at = comment.hidden_at
        report.resolved_by_id = actor.id
    audit.record(
        session,
        "comment.hidden",
        actor=actor,
        target_type="comment",
        target_id=comment.id,
        detail={"case_id": comment.case_id, "reason_chars": len(text)},
        remote_addr=remote_addr,
    )
    return comment


def unhide_comment(
    session: Session, comment_id: int, *, actor: User, remote_addr: str = ""
) -> Comment:
    """Show a hidden comment again; audit-logged."""
    comment = get_comment(session, comment_id, actor=actor)
    if not can(actor, Permission.MODERATE_COMMENTS, comment):
        raise Forbidden("Only educators and admins hide comments.")
    comment.hidden_at = None
    comment.hidden_by_id = None
    comment.hidden_reason = ""
    audit.record(
        session,
        "comment.unhidden",
        actor=actor,
        target_type="comment",
        target_id=comment.id,
        detail={"case_id": comment.case_id},
        remote_addr=remote_addr,
    )
    return comment


def report_comment(
    session: Session, comment_id: int, *, actor: User, reason: object, remote_addr: str = ""
) -> CommentReport:
    """Any reader reports a comment for the admins' review (once per reader)."""
    comment = get_comment(session, comment_id, actor=actor)
    text = _reason(reason, "the report", required=False)
    if comment.deleted_at is not None:
        raise Invalid("That comment was removed already.")
    duplicate = session.scalar(
        select(CommentReport.id).where(
            CommentReport.comment_id == comment.id, CommentReport.reporter_id == actor.id
        )
    )
    if duplicate is not None:
        raise Conflict("You reported this comment already; an admin will look at it.")
    report = CommentReport(comment=comment, reporter_id=actor.id, reason=text)
    session.add(report)
    session.flush()
    audit.record(
        session,
        "comment.reported",
        actor=actor,
        target_type="comment",
        target_id=comment.id,
        detail={"report_id": report.id},
        remote_addr=remote_addr,
    )
    return report


def list_reports(
    session: Session, *, actor: User, page: int = 1, resolved: bool = False
) -> Page[CommentReport]:
    """Reports for the admins, open ones by default, oldest first."""
    require(actor, Permission.REVIEW_REPORTS)
    query = (
        select(CommentReport)
        .where(
            CommentReport.resolved_at.is_not(None)
            if resolved
            else CommentReport.resolved_at.is_(None)
        )
        .options(
            selectinload(CommentReport.comment).selectinload(Comment.case),
            selectinload(CommentReport.comment).selectinload(Comment.author),
            selectinload(CommentReport.reporter),
        )
        .order_by(CommentReport.created_at, CommentReport.id)
    )
    return paginate(session, query, page, 50)


def resolve_report(
    session: Session, report_id: int, *, actor: User, remote_addr: str = ""
) -> CommentReport:
    """Close a report without hiding the comment (it was fine)."""
    require(actor, Permission.REVIEW_REPORTS)
    report = session.get(CommentReport, report_id)
    if report is None:
        raise NotFound("No such report.")
    if report.resolved_at is None:
        report.resolved_at = utcnow()
        report.resolved_by_id = actor.id
        audit.record(
            session,
            "comment.report_resolved",
            actor=actor,
            target_type="comment",
            target_id=report.comment_id,
            detail={"report_id": report.id},
            remote_addr=remote_addr,
        )
    return report
