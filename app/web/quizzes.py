"""Quiz pages and API: taking a set's quiz, results, the review queue, progress,
educators' statistics and question authoring (credit and certificates: app/web/credit.py).

Entry point for the set page: ``url_for("quizzes.start", slug=set.slug)`` (/sets/<slug>/quiz).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from app.db import get_session, utcnow
from app.domain import QuestionKind
from app.errors import IdentifiersFound, Invalid, TeachfileError
from app.models import Attempt, AttemptMode, AttemptStatus, Question
from app.services import credit
from app.services.access import Permission, can
from app.services.quizzes import (
    attempts,
    authoring,
    item_analysis,
    ordering,
    reviews,
    stacks,
    statistics,
)
from app.web.guard import (
    current_actor,
    permission_required,
    refused,
    remote_addr,
    run,
    signed_in_actor,
)

bp = Blueprint("quizzes", __name__)
api = Blueprint("quizzes_api", __name__, url_prefix="/api")


def _today() -> date:
    return utcnow().date()


def _form_response() -> dict[str, Any]:
    """Every answer field the form may carry; the service keeps those of the question's kind."""
    return {
        "option_ids": request.form.getlist("option"),
        "text": request.form.get("text", ""),
        "series_uid": request.form.get("series_uid", ""),
        "frame": request.form.get("frame", ""),
        "x": request.form.get("x", ""),
        "y": request.form.get("y", ""),
    }


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("Send a JSON object.")
    return body


def _view(
    question: Question | None, response: dict[str, Any] | None, *, feedback: bool
) -> stacks.QuestionViewer | None:
    """A question page's viewer: on the learner's click if any, the hotspot's target once
    feedback is shown."""
    if question is None:
        return None
    return stacks.question_viewer(
        get_session(), question, response, actor=current_actor(), with_target=feedback
    )


# --------------------------------------------------------------------------- taking a quiz


@bp.get("/sets/<slug>/quiz")
def start(slug: str) -> ResponseReturnValue:
    """Before starting: the set's credit information (what accredited activities must show),
    the learner's attempts so far, and the start buttons."""
    session = get_session()
    actor = current_actor()
    case_set = attempts.get_set(session, slug, actor=actor)
    mine = attempts.list_attempts(session, case_set, actor=actor) if actor else []
    return render_template(
        "quizzes/start.html",
        case_set=case_set,
        questions=len(attempts.set_questions(session, case_set, actor)),
        attempts=mine,
        open_attempt=next((a for a in mine if a.status is AttemptStatus.OPEN), None),
        left=attempts.attempts_left(session, case_set, actor=actor) if actor else None,
        editor=can(actor, Permission.EDIT, case_set),
    )


@bp.post("/sets/<slug>/quiz/start")
@permission_required(Permission.AUTHENTICATED)
def start_post(slug: str) -> ResponseReturnValue:
    started = run(
        lambda: attempts.start_attempt(
            get_session(), slug, actor=signed_in_actor(), mode=request.form.get("mode", "")
        )
    )
    if started.result is None:
        return redirect(url_for("quizzes.start", slug=slug))
    return redirect(url_for("quizzes.attempt", attempt_id=started.result.id))


@bp.get("/quiz/attempts/<int:attempt_id>")
@permission_required(Permission.AUTHENTICATED)
def attempt(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    current = attempts.get_attempt(session, attempt_id, actor=signed_in_actor())
    if _closed_for_time(current):
        return redirect(url_for("quizzes.result", attempt_id=current.id))
    if current.status is AttemptStatus.FINISHED:
        return redirect(url_for("quizzes.result", attempt_id=current.id))
    questions = attempts.attempt_questions(session, current)
    answered = attempts.answers_by_question(current)
    position = request.args.get("q", "")
    index: int | None = None
    if position.isdigit() and 1 <= int(position) <= len(questions):
        index = int(position) - 1
    else:
        following = attempts.next_question(session, current)
        index = questions.index(following) if following is not None else None
    question = questions[index] if index is not None else None
    show_feedback = question is not None and attempts.feedback_allowed(current, question.id)
    given = answered.get(question.id) if question else None
    return render_template(
        "quizzes/attempt.html",
        attempt=current,
        questions=questions,
        answered=answered,
        index=index,
        question=question,
        answer=answered.get(question.id) if question else None,
        options=attempts.shown_options(current, question) if question is not None else [],
        feedback=attempts.question_feedback(current, question, answered.get(question.id))
        if question is not None and show_feedback
        else None,
        case_named=question is not None
        and show_feedback
        and attempts.case_feedback_allowed(session, current, question),
        view=_view(question, given.response if given else None, feedback=show_feedback),
        seconds_left=attempts.seconds_left(current, utcnow()),
    )


def _closed_for_time(current: Attempt) -> bool:
    """Finish (and commit) a timed exam whose deadline has passed; say so once."""
    if not attempts.close_if_overdue(get_session(), current, actor=signed_in_actor(), now=utcnow()):
        return False
    get_session().commit()
    flash("Time is up: the exam is finished and scored on the answers you gave in time.", "error")
    return True


@bp.post("/quiz/attempts/<int:attempt_id>/answer")
@permission_required(Permission.AUTHENTICATED)
def answer(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    raw_id = request.form.get("question_id", "")
    if not raw_id.isdigit() or len(raw_id) > 12:
        raise Invalid("That question is not part of this attempt.")
    question_id = int(raw_id)
    try:
        given = attempts.answer_question(
            session, attempt_id, question_id, _form_response(), actor=signed_in_actor()
        )
    except TeachfileError as err:
        session.rollback()
        if err.status in (403, 404):
            raise
        current = attempts.get_attempt(session, attempt_id, actor=signed_in_actor())
        if isinstance(err, attempts.TimeIsUp):
            attempts.close_if_overdue(session, current, actor=signed_in_actor(), now=utcnow())
            session.commit()
            flash(err.message, "error")
            return redirect(url_for("quizzes.result", attempt_id=attempt_id)), 303
        flash(err.message, "error")
        if question_id not in (current.question_ids or []):
            return redirect(url_for("quizzes.attempt", attempt_id=attempt_id)), 303
        position = current.question_ids.index(question_id) + 1
        return redirect(url_for("quizzes.attempt", attempt_id=attempt_id, q=position)), 303
    session.commit()
    current = given.attempt
    position = current.question_ids.index(question_id) + 1
    if current.mode is AttemptMode.PRACTICE:
        return redirect(url_for("quizzes.attempt", attempt_id=attempt_id, q=position)), 303
    flash("Answer saved.", "success")
    return redirect(url_for("quizzes.attempt", attempt_id=attempt_id)), 303


@bp.post("/quiz/attempts/<int:attempt_id>/finish")
@permission_required(Permission.AUTHENTICATED)
def finish(attempt_id: int) -> ResponseReturnValue:
    run(lambda: attempts.finish_attempt(get_session(), attempt_id, actor=signed_in_actor()))
    return redirect(url_for("quizzes.result", attempt_id=attempt_id)), 303


@bp.get("/quiz/attempts/<int:attempt_id>/result")
@permission_required(Permission.AUTHENTICATED)
def result(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    current = attempts.get_attempt(session, attempt_id, actor=signed_in_actor())
    if current.status is not AttemptStatus.FINISHED:
        return redirect(url_for("quizzes.attempt", attempt_id=current.id))
    answered = attempts.answers_by_question(current)
    review = [
        (q, attempts.question_feedback(current, q, answered.get(q.id)))
        for q in attempts.attempt_questions(session, current)
    ]
    # Hotspot feedback shows the target and the learner's mark in the viewer.
    views = {
        q.id: _view(q, fb["response"], feedback=True)
        for q, fb in review
        if q.kind == QuestionKind.HOTSPOT
    }
    return render_template(
        "quizzes/result.html",
        attempt=current,
        review=review,
        views=views,
        status=credit.credit_status(session, current, today=_today()),
    )


# --------------------------------------------------------------------------- progress and review


@bp.get("/quiz/progress")
@permission_required(Permission.AUTHENTICATED)
def progress() -> ResponseReturnValue:
    session = get_session()
    certificates = credit.transcript(session, actor=signed_in_actor())
    return render_template(
        "quizzes/progress.html",
        progress=statistics.learner_progress(session, actor=signed_in_actor(), today=_today()),
        certificates=certificates,
        total=credit.credit_earned(certificates),
        today=_today(),
    )


@bp.get("/quiz/review")
@permission_required(Permission.AUTHENTICATED)
def review() -> ResponseReturnValue:
    session = get_session()
    due = reviews.due_reviews(session, actor=signed_in_actor(), today=_today())
    if due:
        return redirect(url_for("quizzes.review_question", question_id=due[0].question_id))
    return render_template(
        "quizzes/review_empty.html",
        upcoming=reviews.upcoming_reviews(session, actor=signed_in_actor()),
    )


@bp.route("/quiz/review/<int:question_id>", methods=["GET", "POST"])
@permission_required(Permission.AUTHENTICATED)
def review_question(question_id: int) -> ResponseReturnValue:
    session = get_session()
    item = reviews.get_review_item(session, question_id, actor=signed_in_actor())
    shown: dict[str, Any] | None = None
    status_code = 200
    if request.method == "POST":
        try:
            item, _marked, shown = reviews.answer_review(
                session, question_id, _form_response(), actor=signed_in_actor(), today=_today()
            )
        except TeachfileError as err:
            session.rollback()
            if err.status in (403, 404):
                raise
            flash(err.message, "error")
            status_code = err.status
            item = reviews.get_review_item(session, question_id, actor=signed_in_actor())
        else:
            session.commit()
    return render_template(
        "quizzes/review.html",
        item=item,
        question=item.question,
        options=reviews.review_options(item),
        feedback=shown,
        due=item.due_on <= _today() and not item.retired,
        view=_view(item.question, (shown or {}).get("response"), feedback=shown is not None),
        remaining=len(reviews.due_reviews(session, actor=signed_in_actor(), today=_today())),
    ), status_code


# --------------------------------------------------------------------------- educators


@bp.get("/sets/<slug>/quiz/stats")
@permission_required(Permission.AUTHOR_CASES)
def stats(slug: str) -> ResponseReturnValue:
    session = get_session()
    found = statistics.set_statistics(session, slug, actor=signed_in_actor())
    return render_template(
        "quizzes/stats.html",
        stats=found,
        analysis=item_analysis.analyse_set(session, slug, actor=signed_in_actor()),
        certificates=credit.set_certificates(session, found.case_set, actor=signed_in_actor()),
    )


@bp.post("/sets/<slug>/quiz/questions/<int:question_id>/accepted")
@permission_required(Permission.AUTHOR_CASES)
def add_accepted(slug: str, question_id: int) -> ResponseReturnValue:
    session = get_session()
    attempts.get_set(session, slug, actor=signed_in_actor())
    try:
        changed = authoring.add_accepted_answer(
            session,
            question_id,
            request.form.get("text", ""),
            actor=signed_in_actor(),
            remote_addr=remote_addr(),
            confirm_identifiers=request.form.get("confirm_identifiers") == "1",
        )
    except TeachfileError as err:
        refused(err)
        if err.status in (403, 404):
            raise
        flash(err.message, "error")
    else:
        session.commit()
        flash(f"Accepted; {changed} past answers re-scored as right.", "success")
    return redirect(url_for("quizzes.stats", slug=slug)), 303


def _question_input() -> authoring.QuestionInput:
    form = request.form
    options: list[tuple[str, bool, str]] = []
    pinned: set[int] = set()
    for i in range(1, 9):
        text = form.get(f"option_{i}", "")
        if text.strip():
            if form.get(f"pinned_{i}") == "yes":
                pinned.add(len(options))
            options.append(
                (text[:2000], form.get(f"correct_{i}") == "yes", form.get(f"why_{i}", "")[:5000])
            )
    region: dict[str, Any] = {"shape": form.get("shape", "")}
    if region["shape"] == "polygon":
        points = []
        for pair in form.get("points", "").split(";"):
            parts = [p.strip() for p in pair.split(",")]
            if len(parts) == 2:
                points.append(parts)
        region["points"] = points
    else:
        region.update({k: form.get(k, "") for k in ("cx", "cy", "rx", "ry")})
    first, last = form.get("first_frame", "1"), form.get("last_frame", "1")
    return authoring.QuestionInput(
        kind=form.get("kind", ""),
        stem=form.get("stem", "")[:5000],
        reference=form.get("reference", "")[:5000],
        teaching_point=form.get("teaching_point", "")[:5000],
        options=options,
        pinned_last=frozenset(pinned),
        accepted=[line for line in form.get("accepted", "").splitlines() if line.strip()][:100],
        series_uid=form.get("series_uid", "")[:64],
        frames=(
            int(first) if first.isdigit() and len(first) < 7 else 0,
            int(last) if last.isdigit() and len(last) < 7 else 0,
        ),
        region=region,
    )


@bp.route("/quiz/cases/<slug>/questions", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def questions(slug: str) -> ResponseReturnValue:
    """The questions of a case: list them, and add one."""
    return _edit_question(slug, None)


@bp.route("/quiz/cases/<slug>/questions/<int:question_id>", methods=["GET", "POST"])
@permission_required(Permission.AUTHOR_CASES)
def question_edit(slug: str, question_id: int) -> ResponseReturnValue:
    return _edit_question(slug, question_id)


def _edit_question(slug: str, question_id: int | None) -> ResponseReturnValue:
    session = get_session()
    case = authoring.get_editable_case(session, slug, actor=signed_in_actor())
    existing = authoring.case_questions(session, case)
    editing = next((q for q in existing if q.id == question_id), None)
    if question_id is not None and editing is None:
        raise Invalid("That question is not on this case.")
    status_code = 200
    findings: list[dict[str, str]] = []
    if request.method == "POST":
        try:
            authoring.save_question(
                session,
                slug,
                _question_input(),
                actor=signed_in_actor(),
                question_id=question_id,
                confirm_identifiers=request.form.get("confirm_identifiers") == "1",
            )
        except TeachfileError as err:
            refused(err)
            findings = err.findings if isinstance(err, IdentifiersFound) else []
            if err.status in (403, 404):
                raise
            flash(err.message, "error")
            status_code = err.status
            case = authoring.get_editable_case(session, slug, actor=signed_in_actor())
            existing = authoring.case_questions(session, case)
            editing = next((q for q in existing if q.id == question_id), None)
        else:
            session.commit()
            flash("Question saved.", "success")
            return redirect(url_for("quizzes.questions", slug=slug)), 303
    return render_template(
        "quizzes/questions.html",
        case=case,
        questions=existing,
        editing=editing,
        series=authoring.case_series_choices(session, case),
        position_warnings=ordering.position_warnings(session, case),
        values=request.form if request.method == "POST" else None,
        findings=findings,
    ), status_code


@bp.post("/quiz/cases/<slug>/questions/<int:question_id>/delete")
@permission_required(Permission.AUTHOR_CASES)
def question_delete(slug: str, question_id: int) -> ResponseReturnValue:
    run(
        lambda: authoring.delete_question(
            get_session(), slug, question_id, actor=signed_in_actor()
        ),
        success="Question deleted.",
    )
    return redirect(url_for("quizzes.questions", slug=slug)), 303


# --------------------------------------------------------------------------- JSON API


@api.post("/sets/<slug>/attempts")
@permission_required(Permission.AUTHENTICATED)
def api_start(slug: str) -> ResponseReturnValue:
    session = get_session()
    mode = _json_body().get("mode", "practice")
    started = attempts.start_attempt(session, slug, actor=signed_in_actor(), mode=str(mode)[:20])
    session.commit()
    return attempts.attempt_summary(started), 201


@api.get("/attempts/<int:attempt_id>")
@permission_required(Permission.AUTHENTICATED)
def api_attempt(attempt_id: int) -> ResponseReturnValue:
    found = attempts.get_attempt(get_session(), attempt_id, actor=signed_in_actor())
    return attempts.attempt_summary(found)


@api.get("/attempts/<int:attempt_id>/next")
@permission_required(Permission.AUTHENTICATED)
def api_next(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    found = attempts.get_attempt(session, attempt_id, actor=signed_in_actor())
    following = (
        attempts.next_question(session, found) if found.status is AttemptStatus.OPEN else None
    )
    if following is None:
        return {"attempt": attempts.attempt_summary(found), "question": None}
    data = attempts.question_view(found, following)
    data["images"] = [
        {
            "url": url_for(
                "images.frame",
                study=ref.study_uid,
                series=ref.series_uid,
                instance=ref.sop_uid,
                frame=ref.frame,
            ),
            "columns": ref.columns,
            "rows": ref.rows,
        }
        for ref in stacks.question_images(session, following)
    ]
    return {"attempt": attempts.attempt_summary(found), "question": data}


@api.post("/attempts/<int:attempt_id>/answers")
@permission_required(Permission.AUTHENTICATED)
def api_answer(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    body = _json_body()
    question_id = body.get("question_id")
    if not isinstance(question_id, int) or isinstance(question_id, bool):
        raise Invalid("Give question_id as a number.")
    try:
        given = attempts.answer_question(
            session, attempt_id, question_id, body, actor=signed_in_actor()
        )
    except attempts.TimeIsUp:
        session.rollback()
        current = attempts.get_attempt(session, attempt_id, actor=signed_in_actor())
        attempts.close_if_overdue(session, current, actor=signed_in_actor(), now=utcnow())
        session.commit()
        raise
    session.commit()
    out: dict[str, Any] = {"saved": True, "question_id": question_id}
    if attempts.feedback_allowed(given.attempt, question_id):
        named = attempts.case_feedback_allowed(session, given.attempt, given.question)
        out["feedback"] = attempts.question_feedback(
            given.attempt, given.question, given, with_case=named
        )
    return out


@api.post("/attempts/<int:attempt_id>/finish")
@permission_required(Permission.AUTHENTICATED)
def api_finish(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    finished = attempts.finish_attempt(session, attempt_id, actor=signed_in_actor())
    session.commit()
    return attempts.attempt_summary(finished)


@api.get("/attempts/<int:attempt_id>/result")
@permission_required(Permission.AUTHENTICATED)
def api_result(attempt_id: int) -> ResponseReturnValue:
    return attempts.attempt_result(get_session(), attempt_id, actor=signed_in_actor())
