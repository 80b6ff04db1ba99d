"""Case discussion pages, notifications, comment reports and consults (issue 10).

The case page shows the thread with ``{% include "discussion/_thread.html" %}``: the
partial needs ``case`` in its context and calls ``discussion_thread(case)`` (registered
here) unless the view passed a ready ``thread_view``. ``{% include "discussion/_notes.html" %}``
shows a case's private notes (a consult's transcript) to its editors. The header's bell
calls ``unread_notifications()``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.routing import BuildError
from wtforms import HiddenField, StringField, TextAreaField

from app.db import get_session
from app.errors import (
    Conflict,
    Forbidden,
    IdentifiersFound,
    Invalid,
    TeachfileError,
    TooManyRequests,
)
from app.models import Case, CaseNote, Comment, Consult
from app.services import consults, discussion, identifier_gate, notifications
from app.services.access import Permission, can
from app.services.discussion import ImageRef, PostingLimit
from app.web.guard import (
    current_actor,
    page_arg,
    permission_required,
    refused,
    remote_addr,
    signed_in_actor,
)

bp = Blueprint("discussion", __name__)
api = Blueprint("discussion_api", __name__, url_prefix="/api")

# Errors a form shows next to the text the writer keeps; NotFound becomes the 404 page.
# IdentifiersFound: the form shows the findings and a "post anyway" confirmation.
_FORM_ERRORS = (Invalid, Forbidden, Conflict, TooManyRequests, IdentifiersFound)


class CommentForm(FlaskForm):
    body = TextAreaField("Comment")
    thread = HiddenField()
    parent_id = HiddenField()
    series_uid = StringField("Series")
    frame = StringField("Image")
    annotation_id = StringField("Annotation")
    next = HiddenField()
    confirm_identifiers = HiddenField()


class TextForm(FlaskForm):
    """One text field (an edit, a reason, a question, a message) behind the CSRF check."""

    body = TextAreaField("Text")
    reason = StringField("Reason")
    confirm_identifiers = HiddenField()


def _confirmed(form: FlaskForm) -> bool:
    """The writer ticked "post anyway" after seeing the identifier findings."""
    return identifier_gate.confirmed_flag(request.form.get("confirm_identifiers"))


def _findings(err: TeachfileError) -> list[dict[str, str]]:
    return err.findings if isinstance(err, IdentifiersFound) else []


class ActionForm(FlaskForm):
    """A button behind the CSRF check."""

    next = HiddenField()


def _limit() -> PostingLimit:
    config = current_app.config
    return PostingLimit(
        max_posts=int(config.get("DISCUSSION_MAX_POSTS", 10)),
        window_seconds=int(config.get("DISCUSSION_WINDOW_SECONDS", 300)),
    )


def _int_or_none(value: object, what: str) -> int | None:
    text = str(value or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise Invalid(f"{what} must be a whole number.")
    return int(text)


def _image_ref(series_uid: object, frame: object, annotation_id: object) -> ImageRef | None:
    uid = str(series_uid or "").strip()
    if not uid:
        return None
    if len(uid) > 64:
        raise Invalid("The image reference names a series this case does not show.")
    return ImageRef(
        uid,
        _int_or_none(frame, "The image number") or 1,
        _int_or_none(annotation_id, "The annotation"),
    )


def _safe_next(value: object) -> str | None:
    """A path on this site to return to (never another host)."""
    text = str(value or "")
    if text.startswith("/") and not text.startswith("//") and "\\" not in text and len(text) < 500:
        return text
    return None


def case_page_url(case: Case) -> str:
    """The case page (the lead's ``cases.detail``), or this blueprint's thread page."""
    try:
        return url_for("cases.detail", slug=case.slug)
    except BuildError:  # the cases blueprint is not registered in this app
        return url_for("discussion.case_thread", case_id=case.id)


# --- template helpers -------------------------------------------------------------


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    def discussion_thread(case: Case) -> discussion.Discussion:
        return discussion.thread_for(get_session(), case, current_actor())

    def case_private_notes(case: Case) -> list[CaseNote]:
        actor = current_actor()
        if not can(actor, Permission.EDIT, case):
            return []
        return consults.case_notes(get_session(), case, actor=actor)

    def unread_notifications() -> int:
        return notifications.unread_count(get_session(), current_actor())

    return {
        "discussion_thread": discussion_thread,
        "case_private_notes": case_private_notes,
        "unread_notifications": unread_notifications,
        "mention_handle": discussion.mention_handle,
    }


# --- threads ---------------------------------------------------------------------


@bp.get("/cases/<int:case_id>/discussion")
def case_thread(case_id: int) -> ResponseReturnValue:
    """The thread on a page of its own: the permalink target of every comment."""
    session = get_session()
    case = discussion.get_case(session, case_id, actor=current_actor())
    return render_template(
        "discussion/case.html",
        case=case,
        thread_view=discussion.thread_for(session, case, current_actor()),
        case_url=case_page_url(case),
    )


@bp.get("/comments/<int:comment_id>")
@permission_required(Permission.AUTHENTICATED)
def permalink(comment_id: int) -> ResponseReturnValue:
    comment = discussion.get_comment(get_session(), comment_id, actor=signed_in_actor())
    return redirect(
        url_for("discussion.case_thread", case_id=comment.case_id, _anchor=f"comment-{comment.id}")
    )


@bp.post("/cases/<int:case_id>/comments")
@permission_required(Permission.AUTHENTICATED)
def post(case_id: int) -> ResponseReturnValue:
    session = get_session()
    form = CommentForm()
    if not form.validate():
        raise Invalid("The form had expired. Reload the page and try again.")
    try:
        comment = discussion.post_comment(
            session,
            case_id,
            actor=signed_in_actor(),
            body=form.body.data or "",
            thread=form.thread.data or "open",
            parent_id=_int_or_none(form.parent_id.data, "The comment replied to"),
            image=_image_ref(form.series_uid.data, form.frame.data, form.annotation_id.data),
            limit=_limit(),
            confirm_identifiers=_confirmed(form),
        )
    except _FORM_ERRORS as err:
        refused(err)
        return _thread_with_error(case_id, err, form)
    session.commit()
    back = _safe_next(form.next.data) or url_for("discussion.case_thread", case_id=case_id)
    return redirect(f"{back.split('#', 1)[0]}#comment-{comment.id}")


def _thread_with_error(case_id: int, err: TeachfileError, form: CommentForm) -> ResponseReturnValue:
    """The thread again with the message and the writer's text kept (nothing was stored)."""
    session = get_session()
    case = discussion.get_case(session, case_id, actor=current_actor())
    flash(err.message, "error")
    return render_template(
        "discussion/case.html",
        case=case,
        thread_view=discussion.thread_for(session, case, current_actor()),
        case_url=case_page_url(case),
        draft={
            "thread": form.thread.data or "open",
            "parent_id": form.parent_id.data or "",
            "body": form.body.data or "",
            "findings": _findings(err),
        },
    ), err.status


@bp.route("/comments/<int:comment_id>/edit", methods=["GET", "POST"])
@permission_required(Permission.AUTHENTICATED)
def edit(comment_id: int) -> ResponseReturnValue:
    session = get_session()
    comment = discussion.get_comment_for_edit(session, comment_id, actor=signed_in_actor())
    form = TextForm()
    status = 200
    findings: list[dict[str, str]] = []
    if request.method == "GET":
        form.body.data = comment.body
    elif form.validate():
        try:
            discussion.edit_comment(
                session,
                comment.id,
                actor=signed_in_actor(),
                body=form.body.data or "",
                confirm_identifiers=_confirmed(form),
            )
        except _FORM_ERRORS as err:
            refused(err)
            flash(err.message, "error")
            status = err.status
            findings = _findings(err)
        else:
            session.commit()
            flash("Comment saved.", "success")
            return redirect(_permalink(comment))
    else:
        status = 400
    return render_template(
        "discussion/edit.html", form=form, comment=comment, findings=findings
    ), status


def _permalink(comment: Comment) -> str:
    return url_for(
        "discussion.case_thread", case_id=comment.case_id, _anchor=f"comment-{comment.id}"
    )


def _comment_action(comment_id: int, action: str) -> ResponseReturnValue:
    session = get_session()
    form = TextForm()
    if not form.validate():
        raise Invalid("The form had expired. Reload the page and try again.")
    comment = discussion.get_comment(session, comment_id, actor=signed_in_actor())
    try:
        if action == "delete":
            discussion.delete_comment(session, comment.id, actor=signed_in_actor())
            message = "Comment deleted."
        elif action == "report":
            discussion.report_comment(
                session,
                comment.id,
                actor=signed_in_actor(),
                reason=form.reason.data,
                remote_addr=remote_addr(),
            )
            message = "Thank you: an admin will look at the comment."
        elif action == "hide":
            discussion.hide_comment(
                session,
                comment.id,
                actor=signed_in_actor(),
                reason=form.reason.data,
                remote_addr=remote_addr(),
            )
            message = "Comment hidden."
        else:
            discussion.unhide_comment(
                session, comment.id, actor=signed_in_actor(), remote_addr=remote_addr()
            )
            message = "Comment shown again."
    except _FORM_ERRORS as err:
        session.rollback()
        if isinstance(err, Forbidden):
            raise  # a refusal is a 403, not a redirect that reads like success
        flash(err.message, "error")
        return redirect(_permalink(comment)), 303
    session.commit()
    flash(message, "success")
    return redirect(_permalink(comment)), 303


@bp.post("/comments/<int:comment_id>/delete")
@permission_required(Permission.AUTHENTICATED)
def delete(comment_id: int) -> ResponseReturnValue:
    return _comment_action(comment_id, "delete")


@bp.post("/comments/<int:comment_id>/report")
@permission_required(Permission.AUTHENTICATED)
def report(comment_id: int) -> ResponseReturnValue:
    return _comment_action(comment_id, "report")


@bp.post("/comments/<int:comment_id>/hide")
@permission_required(Permission.MODERATE_COMMENTS)
def hide(comment_id: int) -> ResponseReturnValue:
    return _comment_action(comment_id, "hide")


@bp.post("/comments/<int:comment_id>/unhide")
@permission_required(Permission.MODERATE_COMMENTS)
def unhide(comment_id: int) -> ResponseReturnValue:
    return _comment_action(comment_id, "unhide")


# --- moderation --------------------------------------------------------------------


@bp.get("/admin/comment-reports")
@permission_required(Permission.REVIEW_REPORTS)
def reports() -> ResponseReturnValue:
    resolved = request.args.get("resolved") == "1"
    page = discussion.list_reports(
        get_session(), actor=signed_in_actor(), page=page_arg(), resolved=resolved
    )
    return render_template(
        "discussion/reports.html", page=page, resolved=resolved, form=ActionForm()
    )


@bp.post("/admin/comment-reports/<int:report_id>/resolve")
@permission_required(Permission.REVIEW_REPORTS)
def resolve(report_id: int) -> ResponseReturnValue:
    if not ActionForm().validate():
        raise Invalid("The form had expired. Reload the page and try again.")
    session = get_session()
    discussion.resolve_report(
        session, report_id, actor=signed_in_actor(), remote_addr=remote_addr()
    )
    session.commit()
    flash("Report closed.", "success")
    return redirect(url_for("discussion.reports")), 303


# --- notifications -----------------------------------------------------------------


@bp.get("/notifications")
@permission_required(Permission.AUTHENTICATED)
def notifications_page() -> ResponseReturnValue:
    page = notifications.list_notifications(get_session(), actor=signed_in_actor(), page=page_arg())
    return render_template(
        "discussion/notifications.html",
        page=page,
        describe=notifications.describe,
        link=notifications.link,
        form=ActionForm(),
    )


@bp.post("/notifications/read")
@permission_required(Permission.AUTHENTICATED)
def mark_read() -> ResponseReturnValue:
    if not ActionForm().validate():
        raise Invalid("The form had expired. Reload the page and try again.")
    session = get_session()
    one = _int_or_none(request.form.get("notification_id"), "The notification")
    notifications.mark_read(session, actor=signed_in_actor(), notification_id=one)
    session.commit()
    target = _safe_next(request.form.get("next")) or url_for("discussion.notifications_page")
    return redirect(target), 303


# --- consults ----------------------------------------------------------------------


@bp.get("/consults/")
@permission_required(Permission.AUTHENTICATED)
def consult_list() -> ResponseReturnValue:
    page = consults.list_consults(get_session(), actor=signed_in_actor(), page=page_arg())
    return render_template("discussion/consults.html", page=page)


@bp.get("/consults/studies")
@permission_required(Permission.CONSULT)
def hospital_studies() -> ResponseReturnValue:
    page = consults.list_hospital_studies(get_session(), actor=signed_in_actor(), page=page_arg())
    return render_template("discussion/studies.html", page=page)


@bp.route("/consults/studies/<int:study_id>/ask", methods=["GET", "POST"])
@permission_required(Permission.CONSULT)
def ask(study_id: int) -> ResponseReturnValue:
    session = get_session()
    study = consults.get_hospital_study(session, study_id, actor=signed_in_actor())
    form = TextForm()
    status = 200
    findings: list[dict[str, str]] = []
    if request.method == "POST":
        if not form.validate():
            raise Invalid("The form had expired. Reload the page and try again.")
        try:
            consult = consults.ask(
                session,
                study.id,
                actor=signed_in_actor(),
                question=form.body.data,
                limit=_limit(),
                confirm_identifiers=_confirmed(form),
            )
        except _FORM_ERRORS as err:
            refused(err)
            flash(err.message, "error")
            status = err.status
            findings = _findings(err)
        else:
            session.commit()
            flash("Your question was sent to your hospital's educators.", "success")
            return redirect(url_for("discussion.consult", consult_id=consult.id)), 303
    return render_template(
        "discussion/ask.html", study=study, form=form, findings=findings
    ), status


@bp.get("/consults/<int:consult_id>")
@permission_required(Permission.AUTHENTICATED)
def consult(consult_id: int) -> ResponseReturnValue:
    session = get_session()
    found = consults.get_consult(session, consult_id, actor=signed_in_actor())
    return _consult_page(found, TextForm(), 200)


def _consult_page(
    found: Consult, form: TextForm, status: int, findings: list[dict[str, str]] | None = None
) -> ResponseReturnValue:
    return render_template(
        "discussion/consult.html",
        consult=found,
        form=form,
        findings=findings or [],
        action_form=ActionForm(),
        can_convert=can(signed_in_actor(), Permission.EDIT, found),
        render_case_url=case_page_url,
    ), status


@bp.post("/consults/<int:consult_id>/messages")
@permission_required(Permission.AUTHENTICATED)
def consult_message(consult_id: int) -> ResponseReturnValue:
    session = get_session()
    found = consults.get_consult(session, consult_id, actor=signed_in_actor())
    form = TextForm()
    if not form.validate():
        raise Invalid("The form had expired. Reload the page and try again.")
    try:
        consults.add_message(
            session,
            found.id,
            actor=signed_in_actor(),
            body=form.body.data,
            limit=_limit(),
            confirm_identifiers=_confirmed(form),
        )
    except _FORM_ERRORS as err:
        refused(err)
        flash(err.message, "error")
        return _consult_page(
            consults.get_consult(session, consult_id, actor=signed_in_actor()),
            form,
            err.status,
            _findings(err),
        )
    session.commit()
    return redirect(url_for("discussion.consult", consult_id=found.id, _anchor="end")), 303


@bp.post("/consults/<int:consult_id>/convert")
@permission_required(Permission.AUTHOR_CASES)
def convert(consult_id: int) -> ResponseReturnValue:
    if not ActionForm().validate():
        raise Invalid("The form had expired. Reload the page and try again.")
    session = get_session()
    try:
        case = consults.convert_to_case(
            session, consult_id, actor=signed_in_actor(), remote_addr=remote_addr()
        )
    except (Conflict, Invalid) as err:
        session.rollback()
        flash(err.message, "error")
        return redirect(url_for("discussion.consult", consult_id=consult_id)), 303
    session.commit()
    flash("The consult is now a private case draft. Edit it before publishing.", "success")
    try:
        target = url_for("cases.edit", slug=case.slug)
    except BuildError:  # the cases blueprint is not registered in this app
        target = case_page_url(case)
    return redirect(target), 303


# --- JSON API ----------------------------------------------------------------------


def _comment_json(view: discussion.CommentView) -> dict[str, Any]:
    comment = view.comment
    return {
        "id": comment.id,
        "thread": comment.thread.value,
        "parent_id": comment.parent_id,
        "state": view.state,
        "author": view.author_name if view.state != "deleted" else None,
        "html": str(view.html),
        "created_at": comment.created_at.isoformat(),
        "edited": comment.edited_at is not None,
        "image": {"url": view.viewer_url, "label": view.image_label} if view.viewer_url else None,
        "replies": [_comment_json(reply) for reply in view.replies],
    }


@api.get("/cases/<int:case_id>/comments")
@permission_required(Permission.AUTHENTICATED)
def api_comments(case_id: int) -> ResponseReturnValue:
    session = get_session()
    case = discussion.get_case(session, case_id, actor=signed_in_actor())
    view = discussion.thread_for(session, case, signed_in_actor())
    return {
        "threads": [
            {
                "thread": t.thread.value,
                "title": t.title,
                "audience": t.audience,
                "count": t.count,
                "comments": [_comment_json(c) for c in t.comments],
            }
            for t in view.threads
        ]
    }


_API_FIELDS = {
    "body",
    "thread",
    "parent_id",
    "series_uid",
    "frame",
    "annotation_id",
    "confirm_identifiers",
}


@api.post("/cases/<int:case_id>/comments")
@permission_required(Permission.AUTHENTICATED)
def api_post(case_id: int) -> ResponseReturnValue:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    unknown = sorted(str(k)[:40] for k in body if k not in _API_FIELDS)
    if unknown:
        # e.g. a forged institution_id: the institution is always the writer's own
        raise Invalid(f"Unknown field: {', '.join(unknown)}.")
    parent = body.get("parent_id")
    if parent is not None and (not isinstance(parent, int) or isinstance(parent, bool)):
        raise Invalid("parent_id must be a comment id.")
    session = get_session()
    comment = discussion.post_comment(
        session,
        case_id,
        actor=signed_in_actor(),
        body=body.get("body"),
        thread=body.get("thread", "open"),
        parent_id=parent,
        image=_image_ref(body.get("series_uid"), body.get("frame"), body.get("annotation_id")),
        limit=_limit(),
        confirm_identifiers=body.get("confirm_identifiers") is True,
    )
    session.commit()
    return _comment_json(discussion.comment_view(signed_in_actor(), comment)), 201


@api.get("/notifications/count")
@permission_required(Permission.AUTHENTICATED)
def api_count() -> ResponseReturnValue:
    return {"unread": notifications.unread_count(get_session(), signed_in_actor())}
