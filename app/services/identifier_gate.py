"""The one identifier gate every save of reader-visible text passes (issue 14, item 5).

Why one place: a case section, a set's objectives, a quiz option, an annotation
label, a key-image caption and a comment all reach readers, and a rule kept in
each save path drifts. The rule:

- published text (or text others read at once, such as a comment): a save with
  findings is refused (``IdentifiersFound``, 422) unless the author confirmed that
  none identifies a patient;
- draft text: the findings come back as a warning and the save goes through;
  publishing checks everything again;
- every save is audited with target ids and a findings count, never the text.

The scanner itself is ``phi_scan.scan``; this module only decides what to do
with its findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from string import ascii_uppercase
from typing import Any, Protocol

from sqlalchemy.orm import Session

from app.errors import IdentifiersFound
from app.models import Case, CaseStatus, User
from app.services import audit, phi_scan

Finding = phi_scan.Finding


def findings_json(findings: list[Finding]) -> list[dict[str, str]]:
    """For an API body or a template: the author's own excerpts, nothing more."""
    return [{"field": f.field, "kind": f.kind, "excerpt": f.excerpt} for f in findings]


def scan(session: Session, fields: dict[str, str]) -> list[Finding]:
    """The findings in ``fields`` (label -> text), without deciding anything."""
    return phi_scan.scan(session, {name: text for name, text in fields.items() if text})


def slug_field(slug: str) -> dict[str, str]:
    """A slug as reader-visible text: it is in every link, search result and export folder.

    A slug is made from the title an item was first given; if that title carried an
    identifier, so does the slug, after the title was cleaned. The scanner reads it
    as a title: hyphens as spaces, each word capitalised.
    """
    return {"Address": " ".join(word.capitalize() for word in slug.split("-"))}


def check(
    session: Session,
    fields: dict[str, str],
    *,
    enforce: bool,
    confirmed: bool,
    action: str,
    target_type: str,
    target_id: int | str,
) -> list[Finding]:
    """Scan ``fields`` (label -> text) before a save and refuse it if it must not go through.

    ``enforce``: the text is (or becomes) visible to readers, so findings refuse
    the save (``IdentifiersFound``) unless ``confirmed``. Call this before changing
    anything, so a refusal leaves nothing behind but its audit entry
    (``record_refusal``). Returns the findings: a warning for a draft, the
    confirmed ones for live text. The save then audits them with ``counts``.
    """
    findings = scan(session, fields)
    if findings and enforce and not confirmed:
        raise IdentifiersFound(
            f"The text has {len(findings)} passage(s) that look like patient identifiers. "
            "Fix them, or confirm that none of these identifies a patient.",
            findings_json(findings),
            action=action,
            target_type=target_type,
            target_id=str(target_id),
        )
    return findings


def counts(findings: list[Finding], *, confirmed: bool) -> dict[str, Any]:
    """The audit detail of a checked save: how many findings, and whether they were confirmed."""
    return {
        "identifier_findings": len(findings),
        "identifiers_confirmed": bool(findings) and confirmed,
    }


def record(
    session: Session,
    action: str,
    findings: list[Finding],
    *,
    actor: User | None,
    target_type: str,
    target_id: int | str,
    confirmed: bool,
    detail: dict[str, Any] | None = None,
    remote_addr: str = "",
) -> None:
    """Audit a checked save: ids, the findings count, never the text."""
    audit.record(
        session,
        action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        detail={**(detail or {}), **counts(findings, confirmed=confirmed)},
        remote_addr=remote_addr,
    )


class QuestionText(Protocol):
    """What a question save carries that readers see (``quizzes.authoring.QuestionInput``)."""

    stem: str
    reference: str
    teaching_point: str
    options: list[tuple[str, bool, str]]
    accepted: list[str]


def question_fields(
    stem: str,
    reference: str,
    teaching_point: str,
    options: Iterable[tuple[str, str]],
    accepted: Iterable[str],
) -> dict[str, str]:
    """A question's reader-visible texts: options as (text, explanation), in order."""
    fields = {
        "stem": stem,
        "reference": reference,
        "teaching point": teaching_point,
        "accepted answers": ", ".join(accepted),
    }
    for letter, (text, why) in zip(ascii_uppercase, options, strict=False):
        fields[f"option {letter}"] = text
        fields[f"option {letter} explanation"] = why
    return fields


def check_question(
    session: Session, case: Case, question: QuestionText, *, confirmed: bool
) -> list[Finding]:
    """The gate for a question save: refused on a published case unless confirmed; a
    warning on a draft (publishing the case checks its questions again)."""
    fields = question_fields(
        question.stem,
        question.reference,
        question.teaching_point,
        ((text, why) for text, _correct, why in question.options),
        question.accepted,
    )
    return check(
        session,
        {f"Question {name}": text for name, text in fields.items()},
        enforce=case.status is CaseStatus.PUBLISHED,
        confirmed=confirmed,
        action="quiz.question_saved",
        target_type="case",
        target_id=case.id,
    )


def record_refusal(
    session: Session, err: IdentifiersFound, *, actor: User | None, remote_addr: str = ""
) -> None:
    """Audit a refused save (after the entry point rolled the save back): ids and a count."""
    audit.record(
        session,
        "identifiers.refused",
        actor=actor,
        target_type=err.target_type,
        target_id=err.target_id,
        detail={"save": err.action, "identifier_findings": len(err.findings)},
        remote_addr=remote_addr,
    )


def confirmed_flag(value: object) -> bool:
    """``confirm_identifiers``: JSON ``true`` or a form's ``1``/``on``/``yes``."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() in {"1", "on", "yes", "true"}
