"""Case folders in and out: import (de-identifying every file), export, the shipped library
and its case sets (``cases/_sets/<slug>.yaml``, issue 15).

The folder format is ``app/casefmt.py`` (documented in ``cases/README.md``).
Import runs every DICOM file through the same intake as a C-STORE, so the UIDs
in the folder are replaced by this instance's keyed ones; references in
``case.md`` (key images), ``quiz.yaml`` (hotspots) and ``annotations.json`` are
mapped the same way, so they still point at the right images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import casefmt
from app.db import utcnow
from app.dicom.deidentify import replace_uid
from app.domain import QuestionKind
from app.errors import Conflict, DicomRejected, Invalid
from app.models import (
    Annotation,
    AnnotationVisibility,
    Case,
    CaseLabel,
    CaseSet,
    CaseSetItem,
    CaseStatus,
    CaseStudy,
    Instance,
    Institution,
    KeyImage,
    Question,
    QuestionOption,
    Series,
    Study,
    User,
    Visibility,
)
from app.models.case import SECTION_FIELDS
from app.services import audit, case_sets, cases, identifier_gate, intake, search
from app.services.access import Permission, require

SAMPLE_INSTITUTION = "Teachfile sample library"
_LABEL_FIELDS = {
    "modality": "modality",
    "body_region": "body_region",
    "tags": "tag",
    "audience": "audience",
    "small_hospital_modality": "small_hospital_modality",
}


def import_case_folder(
    session: Session,
    folder: Path,
    *,
    institution: Institution,
    config: intake.IntakeConfig,
    actor: User | None = None,
) -> Case:
    """Import one case folder; refuses the whole case if any file is refused (nothing stored).

    The folder's text passes the identifier gate like an author's: with findings the
    case is kept as a draft, for an author to check and publish (issue 14, item 5).
    """
    if actor is not None:
        require(actor, Permission.AUTHOR_CASES)
    folder_case = casefmt.read_case_folder(folder)
    if session.scalar(select(Case.id).where(Case.slug == folder_case.slug)) is not None:
        raise Conflict(f"{folder_case.slug}: a case with this name exists already.")
    prepared = []
    for path in folder_case.dicom_files:
        try:
            item = intake.prepare(
                session, path.read_bytes(), institution=institution, config=config
            )
        except DicomRejected as err:
            raise Invalid(f"{folder_case.slug}/{path.name}: {err.message}") from None
        if item.quarantine_reason:
            raise Invalid(f"{folder_case.slug}/{path.name}: {item.quarantine_reason}")
        prepared.append(item)
    study_uids: list[str] = []
    for item in prepared:
        intake.store_prepared(
            session, item, institution=institution, source="import", config=config
        )
        if item.meta.study_instance_uid not in study_uids:
            study_uids.append(item.meta.study_instance_uid)

    def new_uid(uid: str) -> str:
        return replace_uid(config.secret, uid)

    meta = folder_case.meta
    case = Case(
        slug=folder_case.slug,
        title=meta.title,
        diagnosis=meta.diagnosis,
        difficulty=meta.difficulty,
        certainty=meta.certainty or "",
        visibility=Visibility(meta.visibility),
        status=CaseStatus.PUBLISHED,
        published_at=utcnow(),
        institution_id=institution.id,
        created_by_id=actor.id if actor else None,
        synthetic_images=meta.synthetic_images,
        case_of_the_day_eligible=meta.case_of_the_day_eligible is not False,
    )
    for name in SECTION_FIELDS:
        setattr(case, name, folder_case.sections.get(name, ""))
    for attribute, kind in _LABEL_FIELDS.items():
        for value in dict.fromkeys(getattr(meta, attribute)):
            case.labels.append(CaseLabel(kind=kind, value=value))
    for position, uid in enumerate(study_uids):
        study = session.scalars(select(Study).where(Study.study_instance_uid == uid)).one()
        case.studies.append(CaseStudy(study_id=study.id, position=position))
    session.add(case)
    session.flush()
    for position, key in enumerate(meta.key_images):
        instance = _instance(session, new_uid(key.sop_instance_uid), folder_case.slug)
        case.key_images.append(
            KeyImage(instance_id=instance.id, frame=key.frame, position=position)
        )
    for position, question in enumerate(folder_case.questions):
        session.add(_question(case, position, question, new_uid))
    for mark in folder_case.annotations:
        instance = _instance(session, new_uid(mark.sop_instance_uid), folder_case.slug)
        session.add(
            Annotation(
                case_id=case.id,
                user_id=None,
                series_id=instance.series_id,
                instance_id=instance.id,
                frame=mark.frame,
                kind=mark.kind,
                points=[list(p) for p in mark.points],
                text=mark.text or "",
                visibility=AnnotationVisibility.CASE_READERS,
                teaching=True,
            )
        )
    session.flush()
    findings = cases.check_identifiers(session, case)
    if findings:
        case.status = CaseStatus.DRAFT
        case.published_at = None
    audit.record(
        session,
        "case.imported",
        actor=actor,
        actor_label="cli",
        target_type="case",
        target_id=case.id,
        detail={
            "slug": case.slug,
            "files": len(prepared),
            "held_as_draft": bool(findings),
            **identifier_gate.counts(findings, confirmed=False),
        },
    )
    search.case_changed(session, case.id)
    return case


def _instance(session: Session, sop_uid: str, slug: str) -> Instance:
    instance = session.scalar(select(Instance).where(Instance.sop_instance_uid == sop_uid))
    if instance is None:
        raise Invalid(f"{slug}: a key image or annotation points at an image the folder lacks.")
    return instance


def _question(case: Case, position: int, question: casefmt.QuizQuestion, new_uid: Any) -> Question:
    hotspot = None
    if question.type == QuestionKind.HOTSPOT and question.region is not None and question.frames:
        if isinstance(question.region, casefmt.Ellipse):
            region: dict[str, Any] = {
                "shape": "ellipse",
                "cx": question.region.cx,
                "cy": question.region.cy,
                "rx": question.region.rx,
                "ry": question.region.ry,
            }
        else:
            region = {"shape": "polygon", "points": [list(p) for p in question.region.points]}
        hotspot = {
            "series_uid": new_uid(question.series_uid or ""),
            "frames": list(question.frames),
            "region": region,
        }
    row = Question(
        case_id=case.id,
        position=position,
        kind=question.type,
        stem=question.stem,
        reference=question.reference,
        teaching_point=question.teaching_point,
        accepted=list(question.accepted),
        hotspot=hotspot,
    )
    for index, option in enumerate(question.options):
        row.options.append(
            QuestionOption(
                position=index,
                text=option.text,
                correct=option.correct,
                explanation=option.explanation,
                pinned_last=option.pinned_last,
            )
        )
    return row


def export_case(
    session: Session, slug: str, dest_root: Path, *, config: intake.IntakeConfig
) -> Path:
    """Write a case as a folder ``dest_root/<slug>`` (an operator's command: no access check)."""
    case = session.scalar(select(Case).where(Case.slug == slug))
    if case is None:
        raise Invalid(f"No case is called {slug!r}.")
    labels = {kind: case.label_values(kind) for kind in _LABEL_FIELDS.values()}
    meta = casefmt.CaseMeta(
        title=case.title,
        diagnosis=case.diagnosis,
        modality=labels["modality"],
        body_region=labels["body_region"],
        tags=labels["tag"],
        difficulty=case.difficulty,
        audience=labels["audience"],
        certainty=case.certainty or None,
        small_hospital_modality=labels["small_hospital_modality"],
        visibility=case.visibility.value,
        synthetic_images=case.synthetic_images,
        case_of_the_day_eligible=None if case.case_of_the_day_eligible else False,
        key_images=[
            casefmt.KeyImage(
                k.instance.series.series_instance_uid, k.instance.sop_instance_uid, k.frame
            )
            for k in case.key_images
        ],
        authors=[a.user.display_name for a in case.authors],
    )
    sections = {name: getattr(case, name) for name in SECTION_FIELDS if getattr(case, name)}
    questions = [
        _folder_question(q)
        for q in session.scalars(
            select(Question).where(Question.case_id == case.id).order_by(Question.position)
        )
    ]
    annotations = [
        casefmt.Annotation(
            a.series.series_instance_uid,
            a.instance.sop_instance_uid,
            a.frame,
            a.kind,
            tuple((float(x), float(y)) for x, y in a.points),
            a.text or None,
        )
        for a in session.scalars(
            select(Annotation)
            .where(Annotation.case_id == case.id, Annotation.teaching.is_(True))
            .order_by(Annotation.id)
        )
    ]
    instances = session.scalars(
        select(Instance)
        .join(Series)
        .join(CaseStudy, CaseStudy.study_id == Series.study_id)
        .where(CaseStudy.case_id == case.id)
        .order_by(Instance.id)
    ).all()
    folder = casefmt.CaseFolder(
        slug=case.slug, meta=meta, sections=sections, questions=questions, annotations=annotations
    )
    dest = Path(dest_root) / case.slug
    casefmt.write_case_folder(
        folder,
        dest,
        (
            (
                f"{i.series.series_instance_uid}/{i.sop_instance_uid}.dcm",
                config.store.read(i.sha256),
            )
            for i in instances
        ),
    )
    return dest


def _folder_question(question: Question) -> casefmt.QuizQuestion:
    region: casefmt.Region | None = None
    frames = None
    series_uid = None
    if question.hotspot:
        raw = question.hotspot["region"]
        region = (
            casefmt.Ellipse(raw["cx"], raw["cy"], raw["rx"], raw["ry"])
            if raw["shape"] == "ellipse"
            else casefmt.Polygon(tuple((float(x), float(y)) for x, y in raw["points"]))
        )
        first, last = question.hotspot["frames"]
        frames = (int(first), int(last))
        series_uid = question.hotspot["series_uid"]
    return casefmt.QuizQuestion(
        type=question.kind,
        stem=question.stem,
        reference=question.reference,
        teaching_point=question.teaching_point,
        options=[
            casefmt.QuizOption(o.text, o.correct, o.explanation, o.pinned_last)
            for o in question.options
        ],
        accepted=list(question.accepted),
        series_uid=series_uid,
        frames=frames,
        region=region,
    )


def sample_institution(session: Session) -> Institution:
    institution = session.scalar(select(Institution).where(Institution.name == SAMPLE_INSTITUTION))
    if institution is None:
        institution = Institution(name=SAMPLE_INSTITUTION)
        session.add(institution)
        session.flush()
    return institution


def library_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count(Case.id)))


def import_set_file(
    session: Session, path: Path, *, institution: Institution, actor: User | None = None
) -> CaseSet:
    """Create the published case set a set file describes, on cases already imported.

    Refused with nothing stored: a set of that name exists, a listed case is missing, or
    (credit-bearing) a case is not visible to the set's whole audience.
    """
    if actor is not None:
        require(actor, Permission.AUTHOR_CASES)
    spec = casefmt.read_set_file(path)
    where = f"{casefmt.SETS_DIR}/{spec.slug}.yaml"
    if session.scalar(select(CaseSet.id).where(CaseSet.slug == spec.slug)) is not None:
        raise Conflict(f"{where}: a case set with this name exists already.")
    cases = []
    for slug in spec.cases:
        case = session.scalar(select(Case).where(Case.slug == slug))
        if case is None:
            raise Invalid(f"{where}: the case {slug!r} is not in the library.")
        cases.append(case)
    visibility = Visibility(spec.visibility)
    now = utcnow()
    case_set = CaseSet(
        slug=spec.slug,
        title=spec.title,
        description=spec.description,
        objectives=spec.objectives,
        status=CaseStatus.PUBLISHED,
        visibility=visibility,
        published_at=now,
        institution_id=institution.id,
        created_by_id=actor.id if actor else None,
    )
    credit = spec.credit
    if credit is not None:
        try:
            case_sets.check_credit_audience(cases, visibility, institution.id)
        except Invalid as err:
            raise Invalid(f"{where}: {err.message}") from None
        case_set.credit_hours = credit.hours
        case_set.passing_score = credit.passing_score
        case_set.max_attempts = credit.max_attempts
        case_set.time_limit_minutes = credit.time_limit_minutes
        case_set.faculty, case_set.disclosures = credit.faculty, credit.disclosures
        case_set.credit_provider = credit.provider
        case_set.accreditation_statement = credit.accreditation_statement
        case_set.credit_type = credit.credit_type
        case_set.release_date, case_set.review_date = credit.release_date, credit.review_date
        case_set.expiry_date = credit.expiry_date
        case_set.evaluation = case_sets.parse_evaluation("\n".join(credit.evaluation))
    case_set.items = [CaseSetItem(case_id=c.id, position=i) for i, c in enumerate(cases)]
    session.add(case_set)
    session.flush()
    # The set's text passes the same identifier gate as a case's: findings hold it as a draft.
    findings = identifier_gate.scan(
        session,
        {
            "Title": case_set.title,
            "Description": case_set.description,
            "Learning objectives": case_set.objectives,
            "Faculty": case_set.faculty,
            "Disclosures": case_set.disclosures,
            "Accreditation statement": case_set.accreditation_statement,
        },
    )
    if findings:
        case_set.status, case_set.published_at = CaseStatus.DRAFT, None
    audit.record(
        session,
        "set.imported",
        actor=actor,
        actor_label="cli",
        target_type="case_set",
        target_id=case_set.id,
        detail={
            "slug": case_set.slug,
            "cases": len(cases),
            "held_as_draft": bool(findings),
            **identifier_gate.counts(findings, confirmed=False),
        },
    )
    return case_set


def export_set(session: Session, slug: str, dest_root: Path) -> Path:
    """Write a case set as ``dest_root/_sets/<slug>.yaml`` (an operator's command: no access
    check); export its cases with :func:`export_case` beside it to make a loadable folder."""
    case_set = session.scalar(select(CaseSet).where(CaseSet.slug == slug))
    if case_set is None:
        raise Invalid(f"No case set is called {slug!r}.")
    credit = None
    if case_set.credit_hours is not None:
        credit = casefmt.SetCredit(
            hours=case_set.credit_hours,
            passing_score=case_set.passing_score,
            max_attempts=case_set.max_attempts,
            time_limit_minutes=case_set.time_limit_minutes,
            faculty=case_set.faculty,
            disclosures=case_set.disclosures,
            provider=case_set.credit_provider,
            accreditation_statement=case_set.accreditation_statement,
            credit_type=case_set.credit_type,
            release_date=case_set.release_date,
            review_date=case_set.review_date,
            expiry_date=case_set.expiry_date,
            evaluation=case_sets.evaluation_lines(case_set).splitlines(),
        )
    spec = casefmt.SetFile(
        slug=case_set.slug,
        title=case_set.title,
        description=case_set.description,
        objectives=case_set.objectives,
        visibility=case_set.visibility.value,
        cases=[item.case.slug for item in case_set.items],
        credit=credit,
    )
    return casefmt.write_set_file(spec, Path(dest_root))
