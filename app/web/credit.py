"""Credit pages next to ``app/services/credit.py``: claiming credit for a passed exam,
certificates (page, PDF, revocation), the public verification page and the transcript.

The URLs are the ones issue 9 published (``/verify/<token>`` is printed on certificates
already issued), only the blueprint moved here out of the quiz pages (issue 15).
"""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from app.db import get_session, utcnow
from app.errors import TeachfileError
from app.models import CaseSet
from app.services import credit
from app.services.access import Permission
from app.services.quizzes import attempts
from app.web.guard import permission_required, remote_addr, run, signed_in_actor

bp = Blueprint("credit", __name__)
api = Blueprint("credit_api", __name__, url_prefix="/api")


def _today() -> date:
    return utcnow().date()


def default_issuer() -> credit.Issuer:
    """The ``TEACHFILE_CREDIT_*`` settings, for sets that name no provider of their own."""
    config = current_app.config
    return credit.Issuer(
        provider=str(config.get("CREDIT_PROVIDER") or ""),
        accreditation_statement=str(config.get("ACCREDITATION_STATEMENT") or ""),
        credit_type=str(config.get("CREDIT_TYPE") or ""),
    )


@bp.app_template_global("credit_issuer")
def credit_issuer(case_set: CaseSet) -> credit.Issuer:
    """For templates: who issues and accredits the set's credit (set, else settings)."""
    return credit.issuer_for(case_set, default_issuer())


@bp.route("/quiz/attempts/<int:attempt_id>/credit", methods=["GET", "POST"])
@permission_required(Permission.AUTHENTICATED)
def claim(attempt_id: int) -> ResponseReturnValue:
    session = get_session()
    current = attempts.get_attempt(session, attempt_id, actor=signed_in_actor())
    form = credit.evaluation_form(current.case_set)
    status_code = 200
    if request.method == "POST":
        try:
            certificate = credit.claim_credit(
                session,
                attempt_id,
                actor=signed_in_actor(),
                evaluation={item.id: request.form.get(f"eval_{item.id}", "") for item in form},
                hours=request.form.get("hours", ""),
                attested=request.form.get("attest") == "yes",
                issuer=default_issuer(),
                remote_addr=remote_addr(),
            )
        except TeachfileError as err:
            session.rollback()
            if err.status in (403, 404):
                raise
            flash(err.message, "error")
            status_code = err.status
        else:
            session.commit()
            flash("Your certificate is ready.", "success")
            return redirect(url_for("credit.certificate", token=certificate.token)), 303
    return render_template(
        "quizzes/credit.html",
        attempt=current,
        form=form,
        status=credit.credit_status(session, current, today=_today()),
        values=request.form,
    ), status_code


def verify_url(token: str) -> str:
    return url_for("credit.verify", token=token, _external=True)


@bp.get("/certificates/<token>")
@permission_required(Permission.AUTHENTICATED)
def certificate(token: str) -> ResponseReturnValue:
    found = credit.get_certificate(get_session(), token, actor=signed_in_actor())
    return render_template(
        "quizzes/certificate.html",
        certificate=found,
        verify_url=verify_url(found.token),
        manager=credit.may_manage(signed_in_actor(), found),
    )


@bp.get("/certificates/<token>.pdf")
@permission_required(Permission.AUTHENTICATED)
def certificate_pdf(token: str) -> ResponseReturnValue:
    found = credit.get_certificate(get_session(), token, actor=signed_in_actor())
    body = credit.certificate_pdf(found, verify_url(found.token))
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = 'inline; filename="certificate.pdf"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/certificates/<token>/revoke")
@permission_required(Permission.AUTHENTICATED)
def revoke(token: str) -> ResponseReturnValue:
    run(
        lambda: credit.revoke_certificate(
            get_session(),
            token,
            actor=signed_in_actor(),
            reason=request.form.get("reason", "")[:300],
            remote_addr=remote_addr(),
        ),
        success="The certificate is revoked; its link now says so.",
    )
    return redirect(url_for("credit.certificate", token=token)), 303


@bp.get("/verify/<token>")
def verify(token: str) -> ResponseReturnValue:
    """Public: valid or revoked, name, activity, date, credit, provider and accreditation."""
    found = credit.verify_certificate(get_session(), token[:64])
    response = Response(render_template("quizzes/verify.html", verification=found))
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


@bp.get("/quiz/transcript")
@permission_required(Permission.AUTHENTICATED)
def transcript() -> ResponseReturnValue:
    certificates = credit.transcript(get_session(), actor=signed_in_actor())
    return render_template(
        "quizzes/transcript.html",
        certificates=certificates,
        total=credit.credit_earned(certificates),
    )


@bp.get("/quiz/transcript.csv")
@permission_required(Permission.AUTHENTICATED)
def transcript_csv() -> ResponseReturnValue:
    certificates = credit.transcript(get_session(), actor=signed_in_actor())
    body = credit.transcript_csv(certificates, {c.token: verify_url(c.token) for c in certificates})
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="transcript.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@api.get("/certificates/<token>")
def api_verify(token: str) -> ResponseReturnValue:
    """Public, like the verification page."""
    return credit.verify_certificate(get_session(), token[:64]).as_json()
