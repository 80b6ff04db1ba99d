"""Case sets (courses): an educator's ordered list of cases with objectives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Invalid, NotFound
from app.markup import check_length
from app.models import Case, CaseSet, CaseSetItem, CaseStatus, Role, User, Visibility
from app.services import audit, identifier_gate
from app.services.access import Permission, can, require
from app.services.cases import reaches_audience, unique_slug

MAX_CASES_IN_SET = 200


@dataclass
class SetContent:
    title: str
    description: str = ""
    objectives: str = ""
    case_slugs: tuple[str, ...] = ()


def _validate(session: Session, content: SetContent, actor: User) -> tuple[str, list[Case]]:
    title = " ".join(content.title.split())
    if not title:
        raise Invalid("Give the set a title.")
    check_length(title, "The title", 300)
    check_length(content.description, "The description")
    check_length(content.objectives, "The learning objectives")
    slugs = list(dict.fromkeys(s.strip() for s in content.case_slugs if s.strip()))
    if len(slugs) > MAX_CASES_IN_SET:
        raise Invalid(f"A set may hold at most {MAX_CASES_IN_SET} cases.")
    cases = []
    for slug in slugs:
        case = session.scalar(select(Case).where(Case.slug == slug))
        if case is None or not can(actor, Permission.VIEW, case):
            raise Invalid(f"There is no case {slug[:80]!r} you can add.")
        cases.append(case)
    return title, cases


def _reaches_audience(case: Case, visibility: Visibility, institution_id: int | None) -> bool:
    """Whether everyone who may take a set of ``visibility`` may also open ``case``."""
    return reaches_audience(
        case.status, case.visibility, case.institution_id, visibility, institution_id
    )


_AUDIENCE = {
    Visibility.PUBLIC: "everyone",
    Visibility.INSTITUTION: "the whole institution",
    Visibility.PRIVATE: "its authors",
}


def check_credit_audience(
    cases: list[Case], visibility: Visibility, institution_id: int | None
) -> None:
    """A credit-bearing set's every case must be open to the set's whole audience (issue 15).

    Otherwise learners who cannot see a case get fewer questions, and two certificates for
    the same activity would cover different content. Raises Invalid naming the first case.
    """
    for case in cases:
        if not _reaches_audience(case, visibility, institution_id):
            raise Invalid(
                f"The case {case.title[:80]!r} ({case.slug}) is not visible to "
                f"{_AUDIENCE[visibility]} who may take this credit-bearing set: publish it "
                f"to the same audience or take it out of the set."
            )


def _check_if_credit(case_set: CaseSet, cases: list[Case], visibility: Visibility) -> None:
    if case_set.credit_hours is not None and case_set.status is CaseStatus.PUBLISHED:
        check_credit_audience(cases, visibility, case_set.institution_id)


def _set_fields(title: str, description: str, objectives: str) -> dict[str, str]:
    """A set's reader-visible text, for the identifier gate."""
    return {"Title": title, "Description": description, "Learning objectives": objectives}


def create_set(
    session: Session, content: SetContent, *, actor: User, remote_addr: str = ""
) -> CaseSet:
    require(actor, Permission.AUTHOR_CASES)
    title, cases = _validate(session, content, actor)
    # A new set is a draft: findings are a warning, publishing checks them.
    findings = identifier_gate.scan(
        session, _set_fields(title, content.description, content.objectives)
    )
    case_set = CaseSet(
        slug=unique_slug(session, title, CaseSet),
        title=title,
        description=content.description,
        objectives=content.objectives,
        institution_id=actor.institution_id,
        created_by_id=actor.id,
    )
    case_set.items = [CaseSetItem(case_id=c.id, position=i) for i, c in enumerate(cases)]
    session.add(case_set)
    session.flush()
    audit.record(
        session,
        "set.created",
        actor=actor,
        target_type="case_set",
        target_id=case_set.id,
        detail=identifier_gate.counts(findings, confirmed=False),
        remote_addr=remote_addr,
    )
    return case_set


def update_set(
    session: Session,
    slug: str,
    content: SetContent,
    *,
    actor: User,
    confirm_identifiers: bool = False,
    remote_addr: str = "",
) -> CaseSet:
    """Change a set's text and cases; a published set's text passes the identifier gate."""
    case_set = get_set(session, slug, actor=actor)
    require(actor, Permission.EDIT, case_set)
    title, cases = _validate(session, content, actor)
    _check_if_credit(case_set, cases, case_set.visibility)
    findings = identifier_gate.check(
        session,
        _set_fields(title, content.description, content.objectives),
        enforce=case_set.status is CaseStatus.PUBLISHED,
        confirmed=confirm_identifiers,
        action="set.edited",
        target_type="case_set",
        target_id=case_set.id,
    )
    case_set.title, case_set.description = title, content.description
    case_set.objectives = content.objectives
    case_set.items.clear()
    session.flush()
    case_set.items.extend(CaseSetItem(case_id=c.id, position=i) for i, c in enumerate(cases))
    case_set.updated_at = utcnow()
    identifier_gate.record(
        session,
        "set.edited",
        findings,
        actor=actor,
        target_type="case_set",
        target_id=case_set.id,
        confirmed=confirm_identifiers,
        remote_addr=remote_addr,
    )
    session.flush()
    return case_set


def publish_set(
    session: Session,
    slug: str,
    visibility: Visibility,
    *,
    actor: User,
    remote_addr: str = "",
    confirm_identifiers: bool = False,
) -> CaseSet:
    """Publish once the set's own text passes the identifier check (or is confirmed)."""
    case_set = get_set(session, slug, actor=actor)
    require(actor, Permission.EDIT, case_set)
    if not case_set.items:
        raise Invalid("Add at least one case before publishing the set.")
    if case_set.credit_hours is not None:
        check_credit_audience(
            [item.case for item in case_set.items], visibility, case_set.institution_id
        )
    if case_set.published_at is None and identifier_gate.scan(
        session, identifier_gate.slug_field(case_set.slug)
    ):
        # the first title's identifiers live on in the slug: nobody has linked to it yet
        case_set.slug = unique_slug(session, case_set.title, CaseSet)
    findings = identifier_gate.check(
        session,
        _set_fields(case_set.title, case_set.description, case_set.objectives)
        | identifier_gate.slug_field(case_set.slug),
        enforce=True,
        confirmed=confirm_identifiers,
        action="set.published",
        target_type="case_set",
        target_id=case_set.id,
    )
    case_set.status = CaseStatus.PUBLISHED
    case_set.visibility = visibility
    case_set.published_at = case_set.published_at or utcnow()
    audit.record(
        session,
        "set.published",
        actor=actor,
        target_type="case_set",
        target_id=case_set.id,
        detail={
            "visibility": visibility.value,
            **identifier_gate.counts(findings, confirmed=confirm_identifiers),
        },
        remote_addr=remote_addr,
    )
    session.flush()
    return case_set


def get_set(session: Session, slug: str, *, actor: User | None) -> CaseSet:
    case_set = session.scalar(select(CaseSet).where(CaseSet.slug == slug))
    if case_set is None:
        raise NotFound("No such case set.")
    require(actor, Permission.VIEW, case_set)
    return case_set


def get_set_for_edit(session: Session, slug: str, *, actor: User) -> CaseSet:
    """The set if ``actor`` may change it: Forbidden if they only read it, else NotFound."""
    case_set = get_set(session, slug, actor=actor)
    require(actor, Permission.EDIT, case_set)
    return case_set


def readable_items(case_set: CaseSet, actor: User | None) -> list[Case]:
    """The set's cases the reader may open, in order (a set never widens a case's audience)."""
    return [item.case for item in case_set.items if can(actor, Permission.VIEW, item.case)]


def list_sets(session: Session, *, actor: User | None) -> list[CaseSet]:
    """Published sets the reader may see, and the actor's own drafts."""
    query = select(CaseSet).order_by(CaseSet.title)
    if actor is None or actor.role is not Role.ADMIN:
        query = query.where(
            or_(
                CaseSet.status == CaseStatus.PUBLISHED,
                CaseSet.created_by_id == (actor.id if actor else -1),
            )
        )
    return [s for s in session.scalars(query) if can(actor, Permission.VIEW, s)]


def neighbours(cases: list[Case], slug: str) -> tuple[Case | None, Case | None, int]:
    """(previous, next, 1-based position) of a case in a set's readable cases.

    ``slug`` is the case's slug or its 1-based position in the set: the set's own pages link
    by position, because a slug may name the diagnosis (issue 15); a case whose slug is all
    digits is then reached by its position only.
    """
    if slug.isdigit() and len(slug) < 6:
        position = int(slug)
        if not 1 <= position <= len(cases):
            raise NotFound("That case is not in this set.")
        slug = cases[position - 1].slug
    for index, case in enumerate(cases):
        if case.slug == slug:
            previous = cases[index - 1] if index > 0 else None
            following = cases[index + 1] if index + 1 < len(cases) else None
            return previous, following, index + 1
    raise NotFound("That case is not in this set.")


@dataclass
class CreditSettings:
    """What an accredited online activity shows before it starts (issue 9)."""

    credit_hours: float | None = None
    passing_score: int = 70
    max_attempts: int | None = None
    faculty: str = ""
    disclosures: str = ""
    release_date: date | None = None
    review_date: date | None = None
    expiry_date: date | None = None
    evaluation_lines: str = ""  # "rating: prompt" / "text: prompt", one a line
    time_limit_minutes: int | None = None  # exam mode; None: untimed
    credit_provider: str = ""  # empty: the TEACHFILE_CREDIT_* settings
    accreditation_statement: str = ""
    credit_type: str = ""


EVALUATION_LINE_KINDS = ("rating", "text")


def parse_evaluation(lines: str) -> list[dict[str, str]]:
    """The educator's evaluation form, one ``kind: prompt`` a line (kind rating or text)."""
    items: list[dict[str, str]] = []
    for number, line in enumerate(lines.strip().splitlines(), start=1):
        if not line.strip():
            continue
        kind, sep, prompt = line.partition(":")
        kind = kind.strip().lower()
        if not sep or kind not in EVALUATION_LINE_KINDS or not prompt.strip():
            raise Invalid(
                f"Evaluation line {number}: write 'rating: question' or 'text: question'."
            )
        items.append({"id": f"q{len(items) + 1}", "kind": kind, "prompt": prompt.strip()[:1000]})
    if len(items) > 20:
        raise Invalid("An evaluation may have at most 20 questions.")
    return items


def evaluation_lines(case_set: CaseSet) -> str:
    return "\n".join(
        f"{item.get('kind', 'text')}: {item.get('prompt', '')}"
        for item in case_set.evaluation
        if isinstance(item, dict)
    )


def update_credit(
    session: Session,
    slug: str,
    settings: CreditSettings,
    *,
    actor: User,
    confirm_identifiers: bool = False,
    remote_addr: str = "",
) -> CaseSet:
    """Make a set credit-bearing (hours > 0) or not (no hours); checked and audit-logged.

    Learners read the faculty, the disclosures and the evaluation's questions before
    they start, so on a published set they pass the identifier gate like its text."""
    case_set = get_set(session, slug, actor=actor)
    require(actor, Permission.EDIT, case_set)
    if settings.credit_hours is not None and not 0 < settings.credit_hours <= 100:
        raise Invalid("Credit hours are between 0 and 100.")
    if not 1 <= settings.passing_score <= 100:
        raise Invalid("The passing score is a percentage from 1 to 100.")
    if settings.max_attempts is not None and not 1 <= settings.max_attempts <= 100:
        raise Invalid("Allow from 1 to 100 attempts, or leave it empty for no limit.")
    if settings.time_limit_minutes is not None and not 1 <= settings.time_limit_minutes <= 1440:
        raise Invalid("An exam time limit is from 1 to 1,440 minutes, or empty for none.")
    provider = " ".join(settings.credit_provider.split())
    credit_type = " ".join(settings.credit_type.split())
    check_length(provider, "The provider", 300)
    check_length(credit_type, "The credit type", 200)
    check_length(settings.accreditation_statement, "The accreditation statement", 5000)
    if settings.credit_hours is not None and case_set.status is CaseStatus.PUBLISHED:
        check_credit_audience(
            [item.case for item in case_set.items], case_set.visibility, case_set.institution_id
        )
    if (
        settings.release_date
        and settings.expiry_date
        and settings.expiry_date <= settings.release_date
    ):
        raise Invalid("The expiry date must come after the release date.")
    check_length(settings.faculty, "Faculty")
    check_length(settings.disclosures, "Disclosures")
    if settings.credit_hours and not settings.disclosures.strip():
        raise Invalid(
            "A credit-bearing activity must state the faculty's disclosures "
            "(write 'None' if there are none)."
        )
    evaluation = parse_evaluation(settings.evaluation_lines)
    findings = identifier_gate.check(
        session,
        {
            "Faculty": settings.faculty,
            "Faculty disclosures": settings.disclosures,
            "Evaluation form": "\n".join(item["prompt"] for item in evaluation),
            "Credit provider": provider,
            "Accreditation statement": settings.accreditation_statement,
            "Credit type": credit_type,
        },
        enforce=case_set.status is CaseStatus.PUBLISHED,
        confirmed=confirm_identifiers,
        action="set.credit_changed",
        target_type="case_set",
        target_id=case_set.id,
    )
    case_set.credit_hours = settings.credit_hours
    case_set.passing_score = settings.passing_score
    case_set.max_attempts = settings.max_attempts
    case_set.faculty, case_set.disclosures = settings.faculty, settings.disclosures
    case_set.release_date, case_set.review_date = settings.release_date, settings.review_date
    case_set.expiry_date = settings.expiry_date
    case_set.evaluation = evaluation
    case_set.time_limit_minutes = settings.time_limit_minutes
    case_set.credit_provider, case_set.credit_type = provider, credit_type
    case_set.accreditation_statement = settings.accreditation_statement.strip()
    case_set.updated_at = utcnow()
    identifier_gate.record(
        session,
        "set.credit_changed",
        findings,
        actor=actor,
        target_type="case_set",
        target_id=case_set.id,
        confirmed=confirm_identifiers,
        detail={"credit_hours": settings.credit_hours},
        remote_addr=remote_addr,
    )
    session.flush()
    return case_set
