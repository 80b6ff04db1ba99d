"""Teaching cases: start from received studies, write, save drafts, publish, read, list.

Drafts are their authors' (and admins'); a published case follows its
visibility. Every save is a revision; a save that started from an older
revision is refused and its text kept as a conflicted revision, so two authors
never silently overwrite each other.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from sqlalchemy import exists, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, selectinload

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.markup import check_length
from app.models import (
    Annotation,
    Case,
    CaseAuthor,
    CaseLabel,
    CaseOfTheDay,
    CaseRevision,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    CaseStudy,
    Instance,
    KeyImage,
    Question,
    Role,
    Series,
    Study,
    User,
    Visibility,
)
from app.models.case import LABEL_KINDS, SECTION_FIELDS
from app.services import audit, identifier_gate, phi_scan, search
from app.services.access import Permission, readable_cases, require
from app.services.pagination import Page, paginate

DIFFICULTIES = ("beginner", "intermediate", "advanced")
CERTAINTIES = ("", "pathology", "surgery", "follow-up", "clinical", "imaging consensus")
MAX_LABELS = 30
MAX_LABEL = 80
SECTION_TITLES = {
    "history": "Clinical history",
    "findings": "Imaging findings",
    "diagnosis_text": "Diagnosis",
    "differential": "Differential diagnosis",
    "discussion": "Discussion",
    "teaching_points": "Teaching points",
    "references": "References",
}


@dataclass
class CaseContent:
    """Everything an author edits; also the shape of a revision."""

    title: str
    diagnosis: str = ""
    difficulty: str = "intermediate"
    certainty: str = ""
    labels: dict[str, list[str]] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "diagnosis": self.diagnosis,
            "difficulty": self.difficulty,
            "certainty": self.certainty,
            "labels": self.labels,
            "sections": self.sections,
        }

    @classmethod
    def from_json(cls, data: Any) -> CaseContent:
        """Parse untrusted JSON (the autosave API); wrong shapes are a clear 400."""
        if not isinstance(data, dict):
            raise Invalid("Send the case as a JSON object.")
        labels = data.get("labels") or {}
        sections = data.get("sections") or {}
        if not isinstance(labels, dict) or not isinstance(sections, dict):
            raise Invalid("labels and sections must be objects.")
        strings = {k: data.get(k, "") for k in ("title", "diagnosis", "difficulty", "certainty")}
        if not all(isinstance(v, str) for v in strings.values()):
            raise Invalid("title, diagnosis, difficulty and certainty must be text.")
        if not all(
            isinstance(v, list) and all(isinstance(i, str) for i in v) for v in labels.values()
        ):
            raise Invalid("Each label kind must be a list of text.")
        if not all(isinstance(v, str) for v in sections.values()):
            raise Invalid("Each section must be text.")
        return cls(
            title=strings["title"],
            diagnosis=strings["diagnosis"],
            difficulty=strings["difficulty"] or "intermediate",
            certainty=strings["certainty"],
            labels={str(k): list(v) for k, v in labels.items()},
            sections={str(k): v for k, v in sections.items()},
        )

    @classmethod
    def of(cls, case: Case) -> CaseContent:
        return cls(
            title=case.title,
            diagnosis=case.diagnosis,
            difficulty=case.difficulty,
            certainty=case.certainty,
            labels={kind: case.label_values(kind) for kind in LABEL_KINDS},
            sections={name: getattr(case, name) for name in SECTION_FIELDS},
        )


def validate(content: CaseContent) -> CaseContent:
    """Normalise and check an author's input; raises Invalid naming the field."""
    title = " ".join(content.title.split())
    if not title:
        raise Invalid("Give the case a title.")
    check_length(title, "The title", 300)
    check_length(content.diagnosis, "The diagnosis", 300)
    if content.difficulty not in DIFFICULTIES:
        raise Invalid(f"Difficulty is one of: {', '.join(DIFFICULTIES)}.")
    if content.certainty not in CERTAINTIES:
        raise Invalid(f"Certainty is one of: {', '.join(c for c in CERTAINTIES if c)}.")
    labels: dict[str, list[str]] = {}
    for kind, values in content.labels.items():
        if kind not in LABEL_KINDS:
            raise Invalid(f"Unknown label kind {kind[:30]!r}.")
        cleaned = []
        for value in values:
            value = " ".join(value.split())
            if value and value not in cleaned:
                if len(value) > MAX_LABEL:
                    raise Invalid(f"A {kind} label may have at most {MAX_LABEL} characters.")
                cleaned.append(value)
        if len(cleaned) > MAX_LABELS:
            raise Invalid(f"At most {MAX_LABELS} {kind} labels.")
        labels[kind] = cleaned
    sections: dict[str, str] = {}
    for name, text in content.sections.items():
        if name not in SECTION_FIELDS:
            raise Invalid(f"Unknown section {name[:30]!r}.")
        sections[name] = check_length(text.replace("\r\n", "\n"), SECTION_TITLES[name])
    return CaseContent(
        title, content.diagnosis.strip(), content.difficulty, content.certainty, labels, sections
    )


def _slugify(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    return slug or "case"


def unique_slug(session: Session, title: str, model: type[Case] | type[CaseSet] = Case) -> str:
    """A slug made from ``title`` that no other row of ``model`` (cases or case sets) has."""
    base = _slugify(title)
    slug, number = base, 1
    while session.scalar(select(model.id).where(model.slug == slug)) is not None:
        number += 1
        slug = f"{base}-{number}"
    return slug


def _apply(case: Case, content: CaseContent) -> None:
    case.title = content.title
    case.diagnosis = content.diagnosis
    case.difficulty = content.difficulty
    case.certainty = content.certainty
    for name in SECTION_FIELDS:
        setattr(case, name, content.sections.get(name, ""))
    wanted = {(kind, value) for kind, values in content.labels.items() for value in values}
    case.labels = [label for label in case.labels if (label.kind, label.value) in wanted]
    have = {(label.kind, label.value) for label in case.labels}
    for kind in LABEL_KINDS:
        for value in content.labels.get(kind, []):
            if (kind, value) not in have:
                case.labels.append(CaseLabel(kind=kind, value=value))


def _changed(session: Session, case: Case) -> None:
    """Derived data of a case (the search index) follows after the commit."""
    search.case_changed(session, case.id)


def create_case(
    session: Session,
    *,
    actor: User,
    study_ids: list[int],
    title: str = "",
    history: str = "",
    remote_addr: str = "",
) -> Case:
    """A private draft on one or more studies of the actor's inbox (before/after, follow-up);
    ``history`` starts the clinical history (a consult's question)."""
    require(actor, Permission.AUTHOR_CASES)
    if not study_ids:
        raise Invalid("Choose at least one study for the case.")
    if len(study_ids) > 10:
        raise Invalid("A case may show at most 10 studies.")
    studies = []
    for study_id in dict.fromkeys(study_ids):
        study = session.get(Study, study_id)
        if study is None:
            raise NotFound("No such study.")
        require(actor, Permission.RECEIVE_STUDIES, study)
        studies.append(study)
    content = validate(
        CaseContent(
            title=title or (studies[0].description or "Untitled case"),
            sections={"history": history} if history else {},
        )
    )
    case = Case(
        slug=unique_slug(session, content.title),
        title=content.title,
        institution_id=actor.institution_id,
        created_by_id=actor.id,
        status=CaseStatus.DRAFT,
        visibility=Visibility.PRIVATE,
    )
    case.authors.append(CaseAuthor(user_id=actor.id))
    for position, study in enumerate(studies):
        case.studies.append(CaseStudy(study_id=study.id, position=position))
    modalities = sorted({s.modality for study in studies for s in study.series if s.modality})
    regions = sorted(
        {
            s.body_part_examined.lower()
            for study in studies
            for s in study.series
            if s.body_part_examined
        }
    )
    content.labels = {"modality": modalities, "body_region": regions}
    _apply(case, content)
    session.add(case)
    session.flush()
    session.add(
        CaseRevision(case_id=case.id, number=1, saved_by_id=actor.id, content=content.as_json())
    )
    audit.record(
        session,
        "case.created",
        actor=actor,
        target_type="case",
        target_id=case.id,
        detail={"studies": len(studies)},
        remote_addr=remote_addr,
    )
    return case


def get_case(session: Session, slug: str, *, actor: User | None) -> Case:
    """The case if ``actor`` may read it (NotFound otherwise, so existence is not revealed)."""
    case = session.scalar(
        select(Case)
        .where(Case.slug == slug)
        .options(
            selectinload(Case.labels),
            selectinload(Case.authors),
            selectinload(Case.key_images),
            selectinload(Case.studies),
        )
    )
    if case is None:
        raise NotFound("No such case.")
    require(actor, Permission.VIEW, case)
    return case


def get_case_for_edit(session: Session, slug: str, *, actor: User) -> Case:
    case = get_case(session, slug, actor=actor)
    require(actor, Permission.EDIT, case)
    return case


@dataclass(frozen=True)
class SaveResult:
    revision: int
    saved_at: str
    # Identifier findings in the saved text: a warning on a draft; on a published case
    # they keep the revision pending (readers keep the live text) until confirmed.
    findings: list[phi_scan.Finding] = field(default_factory=list)
    pending: bool = False


def content_fields(content: CaseContent) -> dict[str, str]:
    """Every reader-visible text of a case's content, by the label an author knows it by."""
    fields = {"Title": content.title, "Diagnosis": content.diagnosis}
    for kind, values in content.labels.items():
        fields[f"Labels ({kind})"] = ", ".join(values)
    for name in SECTION_FIELDS:
        fields[SECTION_TITLES[name]] = content.sections.get(name, "")
    return fields


def save_draft(
    session: Session,
    slug: str,
    content: CaseContent,
    *,
    base_revision: int,
    actor: User,
    remote_addr: str = "",
) -> SaveResult:
    """Save the author's text as a new revision, unless someone saved since ``base_revision``:
    then keep this text as a conflicted revision and refuse (Conflict) with both kept.

    On a published case the identifier gate decides whether the revision goes live:
    with findings it stays pending (``Case.pending_revision``) and readers, search and
    export keep the last confirmed text until the author confirms (``confirm_pending``),
    exactly as publishing asks; a later clean save replaces it (issue 14, item 5).
    """
    case = get_case_for_edit(session, slug, actor=actor)
    content = validate(content)
    # One save of a case at a time across processes: without the row lock a conflicted
    # save in one process and a winning save in another could pick the same revision
    # number (a unique-key 500 on PostgreSQL in tests/test_multiprocess.py). SQLite has
    # one writer at a time already and ignores FOR UPDATE.
    session.refresh(case, attribute_names=["revision"], with_for_update=True)
    number = _next_revision_number(session, case)
    # Compare-and-set in one statement, so two processes saving the same revision at
    # once cannot both win: PostgreSQL re-checks the row after the first commit, SQLite
    # runs one writer at a time (tests/test_multiprocess.py saves from two processes).
    claimed = (
        base_revision == case.revision
        and cast(
            CursorResult[Any],
            session.execute(
                update(Case)
                .where(Case.id == case.id, Case.revision == base_revision)
                .values(revision=number)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
    )
    if not claimed:
        session.refresh(case, attribute_names=["revision"])
        number = _next_revision_number(session, case)
        session.add(
            CaseRevision(
                case_id=case.id,
                number=number,
                saved_by_id=actor.id,
                content=content.as_json(),
                conflicted=True,
            )
        )
        session.flush()
        raise Conflict(
            f"Someone else saved this case (revision {case.revision}) after you opened it "
            f"(revision {base_revision}). Nothing was overwritten: your text is kept as "
            f"revision {number}. Reload to see theirs, then merge."
        )
    findings = identifier_gate.scan(session, content_fields(content))
    pending = case.status is CaseStatus.PUBLISHED and bool(findings)
    if pending:
        case.pending_revision = number
    else:
        _apply(case, content)
        case.pending_revision = None
        case.updated_at = utcnow()
    case.revision = number
    session.add(
        CaseRevision(
            case_id=case.id, number=case.revision, saved_by_id=actor.id, content=content.as_json()
        )
    )
    identifier_gate.record(
        session,
        "case.edited",
        findings,
        actor=actor,
        target_type="case",
        target_id=case.id,
        confirmed=False,
        detail={"revision": number, "pending": pending},
        remote_addr=remote_addr,
    )
    session.flush()
    if not pending:
        _changed(session, case)
    return SaveResult(
        case.revision,
        utcnow().isoformat() if pending else case.updated_at.isoformat(),
        findings,
        pending,
    )


def working_content(session: Session, case: Case) -> CaseContent:
    """What the editor shows: the pending revision if one waits, else the live text."""
    if case.pending_revision is not None:
        revision = session.scalar(
            select(CaseRevision).where(
                CaseRevision.case_id == case.id, CaseRevision.number == case.pending_revision
            )
        )
        if revision is not None:
            return CaseContent.from_json(revision.content)
    return CaseContent.of(case)


def pending_findings(session: Session, case: Case) -> list[phi_scan.Finding]:
    """The findings that keep the case's pending revision from readers (none if none waits)."""
    if case.pending_revision is None:
        return []
    return identifier_gate.scan(session, content_fields(working_content(session, case)))


def confirm_pending(
    session: Session, slug: str, *, revision: int, actor: User, remote_addr: str = ""
) -> Case:
    """The author confirms that no finding of the pending revision identifies a patient:
    it goes live (readers, search, export), and who confirmed is recorded and audited."""
    case = get_case_for_edit(session, slug, actor=actor)
    if case.pending_revision is None:
        raise Invalid("No revision of this case is waiting for confirmation.")
    if case.pending_revision != revision:
        raise Conflict(
            f"Revision {case.pending_revision} is the one waiting, not {revision}: "
            "reload the editor and check its findings."
        )
    content = working_content(session, case)
    findings = identifier_gate.scan(session, content_fields(content))
    _apply(case, content)
    case.pending_revision = None
    case.updated_at = utcnow()
    case.phi_confirmed_by_id = actor.id
    case.phi_confirmed_at = utcnow()
    identifier_gate.record(
        session,
        "case.edit_confirmed",
        findings,
        actor=actor,
        target_type="case",
        target_id=case.id,
        confirmed=True,
        detail={"revision": revision},
        remote_addr=remote_addr,
    )
    session.flush()
    _changed(session, case)
    return case


def _go_live_as_draft(case: Case, session: Session) -> None:
    """Unpublishing: only authors read a draft, so a pending revision becomes its text."""
    if case.pending_revision is not None:
        _apply(case, working_content(session, case))
        case.pending_revision = None


def _next_revision_number(session: Session, case: Case) -> int:
    highest = session.scalar(
        select(func.max(CaseRevision.number)).where(CaseRevision.case_id == case.id)
    )
    return max(highest or 0, case.revision) + 1


def list_revisions(session: Session, slug: str, *, actor: User) -> tuple[Case, list[CaseRevision]]:
    case = get_case_for_edit(session, slug, actor=actor)
    revisions = session.scalars(
        select(CaseRevision)
        .where(CaseRevision.case_id == case.id)
        .order_by(CaseRevision.number.desc())
    ).all()
    return case, list(revisions)


@dataclass(frozen=True)
class FieldDiff:
    field: str
    lines: list[tuple[str, str]]  # (" " | "+" | "-", text)


def diff_revisions(
    session: Session, slug: str, old: int, new: int, *, actor: User
) -> tuple[Case, list[FieldDiff]]:
    """Line diffs of every field that changed between two revisions."""
    case, revisions = list_revisions(session, slug, actor=actor)
    by_number = {r.number: r for r in revisions}
    if old not in by_number or new not in by_number:
        raise NotFound("No such revision.")
    before, after = _flatten(by_number[old].content), _flatten(by_number[new].content)
    diffs = []
    for name in dict.fromkeys([*before, *after]):
        a, b = before.get(name, "").splitlines(), after.get(name, "").splitlines()
        if a == b:
            continue
        lines = [(line[0], line[2:]) for line in difflib.ndiff(a, b) if not line.startswith("?")]
        diffs.append(FieldDiff(name, lines))
    return case, diffs


def _flatten(content: dict[str, Any]) -> dict[str, str]:
    flat = {k: str(content.get(k, "")) for k in ("title", "diagnosis", "difficulty", "certainty")}
    for kind, values in (content.get("labels") or {}).items():
        flat[kind] = ", ".join(values)
    for name, text in (content.get("sections") or {}).items():
        flat[SECTION_TITLES.get(name, name)] = text
    return flat


def check_identifiers(session: Session, case: Case) -> list[phi_scan.Finding]:
    """Every text of the case a reader will see: its content, key-image captions, the
    teaching overlay's labels, and its questions, options, explanations and answers."""
    fields = content_fields(CaseContent.of(case)) | identifier_gate.slug_field(case.slug)
    for key in case.key_images:
        fields[f"Key image {key.position + 1} caption"] = key.caption
    overlay = session.scalars(
        select(Annotation.text).where(
            Annotation.case_id == case.id, Annotation.teaching.is_(True), Annotation.text != ""
        )
    )
    for number, text in enumerate(overlay, start=1):
        fields[f"Teaching annotation {number}"] = text
    questions = session.scalars(
        select(Question)
        .where(Question.case_id == case.id)
        .options(selectinload(Question.options))
        .order_by(Question.position)
    )
    for number, question in enumerate(questions, start=1):
        texts = identifier_gate.question_fields(
            question.stem,
            question.reference,
            question.teaching_point,
            ((option.text, option.explanation) for option in question.options),
            question.accepted or [],
        )
        fields.update({f"Question {number} {name}": text for name, text in texts.items()})
    return identifier_gate.scan(session, fields)


def reaches_audience(
    status: CaseStatus,
    visibility: Visibility,
    institution_id: int | None,
    audience: Visibility,
    audience_institution_id: int | None,
) -> bool:
    """Whether everyone who may take a set shown to ``audience`` may also open a case that
    has this status and visibility (the credit rule of issue 15, app/services/case_sets.py)."""
    if status is not CaseStatus.PUBLISHED:
        return False
    if audience is Visibility.PUBLIC:
        return visibility is Visibility.PUBLIC
    if audience is Visibility.INSTITUTION:
        return visibility is Visibility.PUBLIC or (
            visibility is Visibility.INSTITUTION and institution_id == audience_institution_id
        )
    return True  # a private set is taken by its own authors only


def _keep_credit_audience(
    session: Session, case: Case, status: CaseStatus, visibility: Visibility
) -> None:
    """Refuse a change (unpublish, narrower visibility, deletion) that would hide the case
    from some learners of a published credit-bearing set holding it: they would be asked
    fewer questions, and two certificates for one activity would cover different content.
    Checked before anything changes."""
    held = session.scalars(
        select(CaseSet)
        .join(CaseSetItem, CaseSetItem.set_id == CaseSet.id)
        .where(
            CaseSetItem.case_id == case.id,
            CaseSet.status == CaseStatus.PUBLISHED,
            CaseSet.credit_hours.is_not(None),
        )
        .order_by(CaseSet.id)
    )
    for case_set in held:
        if not reaches_audience(
            status, visibility, case.institution_id, case_set.visibility, case_set.institution_id
        ):
            raise Invalid(
                f"This case is in the published credit-bearing set '{case_set.slug}': every "
                "learner of that set must keep seeing it. Take it out of the set (or unpublish "
                "the set) first."
            )


def publish(
    session: Session,
    slug: str,
    *,
    visibility: Visibility,
    confirmed: bool,
    actor: User,
    remote_addr: str = "",
) -> Case:
    """Publish with a visibility, once the author has confirmed every identifier finding."""
    case = get_case_for_edit(session, slug, actor=actor)
    if visibility is Visibility.INSTITUTION and case.institution_id is None:
        raise Invalid("This case belongs to no institution; publish it privately or publicly.")
    if case.published_at is None and identifier_gate.scan(
        session, identifier_gate.slug_field(case.slug)
    ):
        # the first title's identifiers live on in the slug: nobody has linked to it yet
        case.slug = unique_slug(session, case.title)
    findings = check_identifiers(session, case)
    if findings and not confirmed:
        raise Invalid(
            f"The text has {len(findings)} passage(s) that look like patient identifiers. "
            "Fix them, or confirm that none identifies a patient."
        )
    _keep_credit_audience(session, case, CaseStatus.PUBLISHED, visibility)
    case.status = CaseStatus.PUBLISHED
    case.visibility = visibility
    case.published_at = case.published_at or utcnow()
    case.updated_at = utcnow()
    case.revision += 1
    if findings:
        case.phi_confirmed_by_id = actor.id
        case.phi_confirmed_at = utcnow()
    audit.record(
        session,
        "case.published",
        actor=actor,
        target_type="case",
        target_id=case.id,
        detail={"visibility": visibility.value, "identifier_findings_confirmed": len(findings)},
        remote_addr=remote_addr,
    )
    session.flush()
    _changed(session, case)
    return case


def unpublish(session: Session, slug: str, *, actor: User, remote_addr: str = "") -> Case:
    case = get_case_for_edit(session, slug, actor=actor)
    _keep_credit_audience(session, case, CaseStatus.DRAFT, case.visibility)
    _go_live_as_draft(case, session)
    case.status = CaseStatus.DRAFT
    case.revision += 1
    case.updated_at = utcnow()
    audit.record(
        session,
        "case.unpublished",
        actor=actor,
        target_type="case",
        target_id=case.id,
        remote_addr=remote_addr,
    )
    session.flush()
    _changed(session, case)
    return case


def delete(
    session: Session, slug: str, *, confirm_slug: str, actor: User, remote_addr: str = ""
) -> str:
    """Delete a case (its studies stay); the author types the slug to confirm. Returns the
    slug of the case that is gone."""
    case = get_case_for_edit(session, slug, actor=actor)
    if confirm_slug.strip() != case.slug:
        raise Invalid("Type the case's short name exactly to confirm the deletion.")
    _keep_credit_audience(session, case, CaseStatus.DRAFT, case.visibility)
    audit.record(
        session,
        "case.deleted",
        actor=actor,
        target_type="case",
        target_id=case.id,
        detail={"slug": case.slug},
        remote_addr=remote_addr,
    )
    case_id = case.id
    session.delete(case)
    session.flush()
    search.case_changed(session, case_id)
    return slug


def set_key_images(
    session: Session,
    slug: str,
    picks: list[tuple[int, int]],
    *,
    actor: User,
    captions: dict[tuple[int, int], str] | None = None,
    confirm_identifiers: bool = False,
    remote_addr: str = "",
) -> Case:
    """Key images as (instance id, frame); each must be a frame of one of the case's studies.

    ``captions`` (by pick) are reader-visible: on a published case a caption with
    identifier findings is refused unless the author confirms (the identifier gate).
    """
    case = get_case_for_edit(session, slug, actor=actor)
    if len(picks) > 20:
        raise Invalid("At most 20 key images.")
    texts = [" ".join((captions or {}).get(pick, "").split()) for pick in picks]
    for text in texts:
        check_length(text, "A key image's caption", 300)
    findings = identifier_gate.check(
        session,
        {f"Key image {n} caption": text for n, text in enumerate(texts, start=1)},
        enforce=case.status is CaseStatus.PUBLISHED,
        confirmed=confirm_identifiers,
        action="case.key_images_saved",
        target_type="case",
        target_id=case.id,
    )
    study_ids = {cs.study_id for cs in case.studies}
    case.key_images.clear()
    session.flush()
    for position, ((instance_id, frame), caption) in enumerate(zip(picks, texts, strict=True)):
        instance = session.get(Instance, instance_id)
        if instance is None or instance.series.study_id not in study_ids:
            raise Invalid("A key image must come from one of the case's studies.")
        if not 1 <= frame <= instance.number_of_frames:
            raise Invalid("That frame does not exist in the image.")
        case.key_images.append(
            KeyImage(instance_id=instance.id, frame=frame, position=position, caption=caption)
        )
    case.updated_at = utcnow()
    identifier_gate.record(
        session,
        "case.key_images_saved",
        findings,
        actor=actor,
        target_type="case",
        target_id=case.id,
        confirmed=confirm_identifiers,
        detail={"key_images": len(picks)},
        remote_addr=remote_addr,
    )
    session.flush()
    return case


@dataclass(frozen=True)
class CaseFilters:
    modality: str = ""
    body_region: str = ""
    difficulty: str = ""
    certainty: str = ""
    tag: str = ""


def list_cases(
    session: Session, *, actor: User | None, filters: CaseFilters, page: int = 1
) -> Page[Case]:
    """Published cases the reader may see, newest first, with the list filters."""
    query = (
        select(Case)
        .where(readable_cases(actor))
        .options(selectinload(Case.labels), selectinload(Case.key_images))
        .order_by(Case.published_at.desc(), Case.id.desc())
    )
    for kind, value in (
        ("modality", filters.modality),
        ("body_region", filters.body_region),
        ("tag", filters.tag),
    ):
        if value:
            query = query.where(
                exists(
                    select(CaseLabel.id).where(
                        CaseLabel.case_id == Case.id,
                        CaseLabel.kind == kind,
                        CaseLabel.value == value,
                    )
                )
            )
    if filters.difficulty:
        query = query.where(Case.difficulty == filters.difficulty)
    if filters.certainty:
        query = query.where(Case.certainty == filters.certainty)
    return paginate(session, query, page, 24)


def filter_options(session: Session, *, actor: User | None) -> dict[str, list[tuple[str, int]]]:
    """Values for the list's filters with counts, over the cases the reader may see only."""
    options: dict[str, list[tuple[str, int]]] = {}
    for kind in ("modality", "body_region", "tag"):
        rows = session.execute(
            select(CaseLabel.value, func.count(CaseLabel.case_id))
            .join(Case, Case.id == CaseLabel.case_id)
            .where(readable_cases(actor), CaseLabel.kind == kind)
            .group_by(CaseLabel.value)
            .order_by(CaseLabel.value)
        ).all()
        options[kind] = [(value, count) for value, count in rows]
    for column, name in ((Case.difficulty, "difficulty"), (Case.certainty, "certainty")):
        rows = session.execute(
            select(column, func.count(Case.id))
            .where(readable_cases(actor), column != "")
            .group_by(column)
            .order_by(column)
        ).all()
        options[name] = [(value, count) for value, count in rows]
    return options


def my_cases(session: Session, *, actor: User) -> list[Case]:
    """The actor's own cases, drafts first."""
    require(actor, Permission.AUTHOR_CASES)
    return list(
        session.scalars(
            select(Case)
            .join(CaseAuthor, CaseAuthor.case_id == Case.id)
            .where(CaseAuthor.user_id == actor.id)
            .order_by(Case.status, Case.updated_at.desc())
        )
    )


def case_series(session: Session, case: Case) -> list[Series]:
    """The series of the case's studies, in study then series order."""
    series: list[Series] = []
    for link in case.studies:
        series.extend(link.study.series)
    return series


def case_of_the_day(session: Session, day: date) -> Case | None:
    """The educator's pick for ``day``, else a public case chosen by the date (same all day)."""
    chosen = session.get(CaseOfTheDay, day)
    if (
        chosen is not None
        and chosen.case.status is CaseStatus.PUBLISHED
        and (chosen.case.visibility is Visibility.PUBLIC)
    ):
        return chosen.case
    candidates = session.scalars(
        select(Case.id)
        .where(
            Case.status == CaseStatus.PUBLISHED,
            Case.visibility == Visibility.PUBLIC,
            Case.case_of_the_day_eligible.is_(True),
        )
        .order_by(Case.id)
    ).all()
    if not candidates:
        return None
    return session.get(Case, candidates[day.toordinal() % len(candidates)])


def choose_case_of_the_day(
    session: Session, day: date, slug: str, *, actor: User, remote_addr: str = ""
) -> None:
    require(actor, Permission.AUTHOR_CASES)
    case = get_case(session, slug, actor=actor)
    if case.status is not CaseStatus.PUBLISHED or case.visibility is not Visibility.PUBLIC:
        raise Invalid("The case of the day must be a published public case.")
    existing = session.get(CaseOfTheDay, day)
    if existing is None:
        session.add(CaseOfTheDay(day=day, case_id=case.id, chosen_by_id=actor.id))
    else:
        existing.case_id, existing.chosen_by_id = case.id, actor.id
    audit.record(
        session,
        "case.case_of_the_day",
        actor=actor,
        target_type="case",
        target_id=case.id,
        detail={"day": day.isoformat()},
        remote_addr=remote_addr,
    )
    session.flush()


def is_editor(actor: User | None, case: Case) -> bool:
    """For templates: show the edit links."""
    return actor is not None and (
        actor.role is Role.ADMIN or (case.is_author(actor) and actor.has_role(Role.EDUCATOR))
    )
