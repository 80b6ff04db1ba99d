"""Continuing-education credit: the activity evaluation, claiming credit, certificates
(page, PDF, public verification, revocation) and the learner's transcript (issue 9).

A certificate is never deleted: revocation is the only way to withdraw one, and it is
audit-logged. Its verification link carries ``secrets.token_urlsafe(24)`` (192 bits).
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.models import (
    Attempt,
    AttemptMode,
    AttemptStatus,
    CaseSet,
    Certificate,
    EvaluationResponse,
    Role,
    User,
)
from app.services import audit
from app.services.access import Permission, can, require
from app.services.case_sets import check_credit_audience
from app.services.pdf import simple_pdf
from app.services.quizzes.attempts import get_attempt

TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")
EVALUATION_KINDS = ("rating", "choice", "text")
RATING_CHOICES = ("1", "2", "3", "4", "5")

# Used when a credit-bearing set's educator has not written an evaluation of their own:
# the questions accreditors commonly ask of an online activity.
DEFAULT_EVALUATION: list[dict[str, Any]] = [
    {
        "id": "objectives",
        "prompt": "The learning objectives were met (1 = not at all, 5 = fully).",
        "kind": "rating",
    },
    {
        "id": "practice",
        "prompt": "Will you change anything in your practice after this activity?",
        "kind": "choice",
        "choices": ["Yes", "No", "Not sure"],
    },
    {
        "id": "bias",
        "prompt": "Was the activity free of commercial bias?",
        "kind": "choice",
        "choices": ["Yes", "No"],
    },
    {"id": "comments", "prompt": "Comments (optional).", "kind": "text", "required": False},
]


@dataclass(frozen=True)
class EvaluationItem:
    """One question of an activity evaluation, as the set's ``evaluation`` JSON defines it.

    The JSON is a list of ``{"id", "prompt", "kind": "rating"|"choice"|"text",
    "choices": [...] (choice only), "required": bool (default true, text: false)}``.
    """

    id: str
    prompt: str
    kind: str
    choices: tuple[str, ...]
    required: bool


def evaluation_form(case_set: CaseSet) -> list[EvaluationItem]:
    """The set's evaluation questions (entries that do not fit the shape are skipped;
    an empty or unusable evaluation falls back to :data:`DEFAULT_EVALUATION`)."""
    items: list[EvaluationItem] = []
    raw_items = case_set.evaluation if isinstance(case_set.evaluation, list) else []
    for i, raw in enumerate(raw_items[:50]):
        if not isinstance(raw, dict):
            continue
        prompt = raw.get("prompt") or raw.get("question")
        kind = raw.get("kind", "text")
        if not isinstance(prompt, str) or not prompt.strip() or kind not in EVALUATION_KINDS:
            continue
        choices: tuple[str, ...] = ()
        if kind == "rating":
            choices = RATING_CHOICES
        elif kind == "choice":
            raw_choices = raw.get("choices")
            if not isinstance(raw_choices, list):
                continue
            choices = tuple(str(c)[:200] for c in raw_choices[:20] if str(c).strip())
            if len(choices) < 2:
                continue
        item_id = str(raw.get("id") or f"q{i + 1}")[:40]
        required = raw.get("required")
        items.append(
            EvaluationItem(
                id=item_id,
                prompt=prompt.strip()[:1000],
                kind=kind,
                choices=choices,
                required=bool(required) if required is not None else kind != "text",
            )
        )
    if not items and raw_items is not DEFAULT_EVALUATION:
        fallback = CaseSet(evaluation=DEFAULT_EVALUATION)
        return evaluation_form(fallback)
    return items


def _clean_evaluation(form: list[EvaluationItem], given: dict[str, Any]) -> dict[str, str]:
    answers: dict[str, str] = {}
    for item in form:
        value = given.get(item.id, "")
        value = value.strip() if isinstance(value, str) else ""
        if not value:
            if item.required:
                raise Invalid(f"Answer the evaluation question: {item.prompt}")
            continue
        if item.choices and value not in item.choices:
            raise Invalid(f"Choose one of the offered answers for: {item.prompt}")
        if len(value) > 2000:
            raise Invalid("Keep evaluation comments under 2,000 characters.")
        answers[item.id] = value
    return answers


@dataclass(frozen=True)
class Issuer:
    """Who issues the credit, the accreditation statement and the kind of credit.

    A set's own values win; the ``TEACHFILE_CREDIT_PROVIDER``,
    ``TEACHFILE_ACCREDITATION_STATEMENT`` and ``TEACHFILE_CREDIT_TYPE`` settings fill
    what it leaves empty, so no certificate goes out without naming its provider.
    """

    provider: str
    accreditation_statement: str
    credit_type: str


def issuer_for(case_set: CaseSet, defaults: Issuer) -> Issuer:
    """The set's issuer, each empty field taken from ``defaults`` (the settings)."""
    return Issuer(
        provider=case_set.credit_provider.strip() or defaults.provider,
        accreditation_statement=case_set.accreditation_statement.strip()
        or defaults.accreditation_statement,
        credit_type=case_set.credit_type.strip() or defaults.credit_type,
    )


@dataclass(frozen=True)
class CreditStatus:
    """Whether an attempt can earn credit now, and why not."""

    credit_bearing: bool
    eligible: bool
    reason: str
    certificate: Certificate | None


def credit_status(session: Session, attempt: Attempt, *, today: date) -> CreditStatus:
    """Claiming needs: a credit-bearing set, a finished and passed exam-mode attempt, the
    activity within its release and expiry dates, and no certificate for this attempt yet.

    Practice gives feedback after every answer, so passing it proves nothing (issue 15):
    only an exam attempt, scored at the end, can claim credit.
    """
    case_set = attempt.case_set
    certificate = session.scalars(
        select(Certificate).where(Certificate.attempt_id == attempt.id)
    ).first()
    if case_set.credit_hours is None:
        return CreditStatus(False, False, "This set does not carry credit.", None)
    if certificate is not None:
        return CreditStatus(True, False, "Credit has been claimed for this attempt.", certificate)
    if attempt.mode is not AttemptMode.EXAM:
        return CreditStatus(
            True,
            False,
            "Credit is earned in exam mode: practice attempts never count towards it.",
            None,
        )
    if attempt.status is not AttemptStatus.FINISHED:
        return CreditStatus(True, False, "Finish the attempt first.", None)
    if not attempt.passed:
        return CreditStatus(
            True,
            False,
            f"Credit needs a score of at least {case_set.passing_score}%.",
            None,
        )
    try:
        check_credit_audience(
            [item.case for item in case_set.items], case_set.visibility, case_set.institution_id
        )
    except Invalid as err:
        # A case was narrowed or unpublished after the set went out: learners no longer all
        # take the same activity, so no certificate until the set's educator fixes it.
        return CreditStatus(True, False, f"Credit is paused for this activity. {err.message}", None)
    if case_set.release_date is not None and today < case_set.release_date:
        return CreditStatus(True, False, "Credit is not available before the release date.", None)
    if case_set.expiry_date is not None and today > case_set.expiry_date:
        return CreditStatus(True, False, "Credit for this activity has expired.", None)
    other = session.scalars(
        select(Certificate).where(
            Certificate.user_id == attempt.user_id,
            Certificate.set_id == case_set.id,
            Certificate.revoked_at.is_(None),
        )
    ).first()
    if other is not None:
        return CreditStatus(True, False, "You already hold a certificate for this set.", other)
    return CreditStatus(True, True, "", None)


def claim_credit(
    session: Session,
    attempt_id: int,
    *,
    actor: User,
    evaluation: dict[str, Any],
    hours: object,
    attested: bool,
    issuer: Issuer,
    now: datetime | None = None,
    remote_addr: str = "",
) -> Certificate:
    """Record the evaluation and the attested time, then issue the certificate.

    Refused with nothing stored: not passed, not credit-bearing, outside the activity's
    dates, already claimed, an incomplete evaluation, no attestation, hours not positive.
    Hours above the set's credit hours are capped at them. The certificate copies the
    set's provider, accreditation statement and credit type (``issuer`` fills the gaps).
    """
    now = now or utcnow()
    attempt = get_attempt(session, attempt_id, actor=actor)
    status = credit_status(session, attempt, today=now.date())
    if not status.eligible:
        raise Conflict(status.reason) if status.certificate else Invalid(status.reason)
    case_set = attempt.case_set
    answers = _clean_evaluation(evaluation_form(case_set), evaluation)
    if not attested:
        raise Invalid("Attest the time you spent on the activity.")
    try:
        spent = float(str(hours)) if not isinstance(hours, bool) else float("nan")
    except ValueError:
        spent = float("nan")
    if not spent > 0 or spent > 1000:
        raise Invalid("Give the hours you spent as a number greater than 0.")
    credited = round(min(spent, float(case_set.credit_hours or 0)), 2)
    named = issuer_for(case_set, issuer)
    session.add(EvaluationResponse(attempt_id=attempt.id, set_id=case_set.id, answers=answers))
    certificate = Certificate(
        token=secrets.token_urlsafe(24),
        user_id=actor.id,
        set_id=case_set.id,
        attempt_id=attempt.id,
        learner_name=actor.display_name,
        activity_title=case_set.title[:300],
        hours=credited,
        score=float(attempt.score or 0.0),
        completed_on=(attempt.finished_at or now).date(),
        provider=named.provider[:300],
        accreditation_statement=named.accreditation_statement[:5000],
        credit_type=named.credit_type[:200],
        issued_at=now,
    )
    session.add(certificate)
    session.flush()
    audit.record(
        session,
        "credit.certificate_issued",
        actor=actor,
        target_type="certificate",
        target_id=certificate.id,
        detail={"set": case_set.id, "attempt": attempt.id, "hours": credited},
        remote_addr=remote_addr,
    )
    return certificate


def _by_token(session: Session, token: str) -> Certificate:
    if not TOKEN_SHAPE.fullmatch(token or ""):
        raise NotFound("No certificate has this link. Check that it was copied whole.")
    certificate = session.scalars(select(Certificate).where(Certificate.token == token)).first()
    if certificate is None:
        raise NotFound("No certificate has this link. Check that it was copied whole.")
    return certificate


def may_manage(actor: User | None, certificate: Certificate) -> bool:
    """The set's educators (who may edit it) and admins may see and revoke its certificates."""
    if actor is None:
        return False
    if actor.role is Role.ADMIN and actor.is_active:
        return True
    return certificate.case_set is not None and can(actor, Permission.EDIT, certificate.case_set)


def get_certificate(session: Session, token: str, *, actor: User | None) -> Certificate:
    """The full certificate: its holder, the set's educators and admins; others NotFound."""
    certificate = _by_token(session, token)
    if actor is not None and (certificate.user_id == actor.id or may_manage(actor, certificate)):
        return certificate
    raise NotFound("No such certificate.")


@dataclass(frozen=True)
class Verification:
    """What the public verification link shows: nothing beyond these."""

    valid: bool
    learner_name: str
    activity_title: str
    completed_on: date
    hours: float
    revoked_on: date | None
    provider: str
    accreditation_statement: str
    credit_type: str

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "valid" if self.valid else "revoked",
            "valid": self.valid,
            "name": self.learner_name,
            "activity": self.activity_title,
            "date": self.completed_on.isoformat(),
            "hours": self.hours,
            "credit_type": self.credit_type,
            "provider": self.provider,
            "accreditation_statement": self.accreditation_statement,
            "revoked_on": self.revoked_on.isoformat() if self.revoked_on else None,
        }


def verify_certificate(session: Session, token: str) -> Verification:
    """Public: valid or revoked, with name, activity, date, hours, credit type, provider
    and accreditation statement. NotFound if tampered."""
    certificate = _by_token(session, token)
    return Verification(
        valid=certificate.valid,
        learner_name=certificate.learner_name,
        activity_title=certificate.activity_title,
        completed_on=certificate.completed_on,
        hours=certificate.hours,
        revoked_on=certificate.revoked_at.date() if certificate.revoked_at else None,
        provider=certificate.provider,
        accreditation_statement=certificate.accreditation_statement,
        credit_type=certificate.credit_type,
    )


def revoke_certificate(
    session: Session, token: str, *, actor: User, reason: str, remote_addr: str = ""
) -> Certificate:
    """Withdraw a certificate (the set's educators, admins); the link then says revoked."""
    certificate = _by_token(session, token)
    if not may_manage(actor, certificate):
        if certificate.user_id == actor.id:
            require(actor, Permission.EDIT, certificate.case_set)
        raise NotFound("No such certificate.")
    if certificate.revoked_at is not None:
        raise Conflict("This certificate is already revoked.")
    reason = " ".join(reason.split())
    if not reason:
        raise Invalid("Give the reason for revoking the certificate.")
    certificate.revoked_at = utcnow()
    certificate.revoked_by_id = actor.id
    certificate.revoke_reason = reason[:300]
    session.flush()
    audit.record(
        session,
        "credit.certificate_revoked",
        actor=actor,
        target_type="certificate",
        target_id=certificate.id,
        detail={"set": certificate.set_id, "user": certificate.user_id},
        remote_addr=remote_addr,
    )
    return certificate


def set_certificates(session: Session, case_set: CaseSet, *, actor: User) -> list[Certificate]:
    """Certificates issued for a set, newest first (its educators and admins)."""
    require(actor, Permission.EDIT, case_set)
    return list(
        session.scalars(
            select(Certificate)
            .where(Certificate.set_id == case_set.id)
            .order_by(Certificate.issued_at.desc(), Certificate.id.desc())
        )
    )


def transcript(session: Session, *, actor: User) -> list[Certificate]:
    """Every certificate issued to the learner, oldest first (revoked ones marked as such)."""
    require(actor, Permission.AUTHENTICATED)
    return list(
        session.scalars(
            select(Certificate)
            .where(Certificate.user_id == actor.id)
            .order_by(Certificate.completed_on, Certificate.id)
        )
    )


def credit_earned(certificates: list[Certificate]) -> float:
    return round(sum(c.hours for c in certificates if c.valid), 2)


def _cell(value: object) -> str:
    text = str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def transcript_csv(certificates: list[Certificate], verify_url: dict[str, str]) -> str:
    """The transcript as CSV: date, activity, hours, score, status, verification link."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["completed_on", "activity", "credit_hours", "score", "status", "verify_url"])
    for c in certificates:
        writer.writerow(
            [
                c.completed_on.isoformat(),
                _cell(c.activity_title),
                f"{c.hours:g}",
                f"{c.score:g}",
                "valid" if c.valid else "revoked",
                verify_url.get(c.token, ""),
            ]
        )
    return out.getvalue()


def certificate_pdf(certificate: Certificate, verify_url: str) -> bytes:
    """A one-page PDF of the certificate (see app/services/pdf.py)."""
    lines = [
        (24, "Certificate of completion"),
        (12, ""),
        (12, "This certifies that"),
        (20, certificate.learner_name),
        (12, "completed the continuing-education activity"),
        (16, certificate.activity_title),
        (12, ""),
        (12, f"Date completed: {certificate.completed_on.isoformat()}"),
        (12, f"Credit: {certificate.hours:g} {certificate.credit_type or 'hours'}"),
        (12, f"Score: {certificate.score:g}%"),
        (12, f"Issued: {certificate.issued_at.date().isoformat()}"),
        (12, f"Provider: {certificate.provider}"),
        (10, " ".join(certificate.accreditation_statement.split())),
        (12, ""),
        (10, "Verify this certificate at:"),
        (10, verify_url),
    ]
    if not certificate.valid:
        lines.insert(0, (16, "REVOKED"))
    return simple_pdf(lines, title=f"Certificate: {certificate.activity_title}")
