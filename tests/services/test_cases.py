"""Cases: drafts, revisions, conflicts, the identifier check, publishing and who sees what."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, Invalid, NotFound
from app.models import AuditEvent, CaseRevision, CaseStatus, Institution, Role, User, Visibility
from app.services import cases


@pytest.fixture
def hospital(create_institution: Callable[..., Institution]) -> Institution:
    return create_institution("Outback District")


@pytest.fixture
def educator(create_user: Callable[..., User], hospital: Institution) -> User:
    return create_user(Role.EDUCATOR, institution=hospital)


def _content(**sections: str) -> cases.CaseContent:
    return cases.CaseContent(
        title="Tension pneumothorax",
        diagnosis="Tension pneumothorax",
        difficulty="beginner",
        certainty="clinical",
        labels={"modality": ["CR"], "audience": ["must not miss"]},
        sections={"history": "Young man, stab wound.", **sections},
    )


def test_create_from_inbox_study_then_save_revisions(
    session: Session, educator: User, hospital: Institution, create_study: Callable[..., Any]
) -> None:
    study = create_study(hospital, StudyDescription="CHEST AP")
    case = cases.create_case(session, actor=educator, study_ids=[study.id])
    assert case.status is CaseStatus.DRAFT and case.visibility is Visibility.PRIVATE
    assert case.title == "CHEST AP" and case.label_values("modality") == ["CT"]
    result = cases.save_draft(session, case.slug, _content(), base_revision=1, actor=educator)
    assert result.revision == 2
    assert case.history == "Young man, stab wound."
    assert case.label_values("audience") == ["must not miss"]


def test_study_of_another_institution_cannot_start_a_case(
    session: Session,
    educator: User,
    create_institution: Callable[..., Institution],
    create_study: Callable[..., Any],
) -> None:
    foreign = create_study(create_institution("Elsewhere"))
    with pytest.raises(NotFound):
        cases.create_case(session, actor=educator, study_ids=[foreign.id])


def test_stale_save_is_refused_and_both_texts_are_kept(
    session: Session,
    educator: User,
    create_user: Callable[..., User],
    create_case: Callable[..., Any],
    hospital: Institution,
) -> None:
    case = create_case(educator, status="draft")
    first = cases.save_draft(
        session,
        case.slug,
        _content(findings="Theirs."),
        base_revision=case.revision,
        actor=educator,
    )
    with pytest.raises(Conflict, match="Nothing was overwritten"):
        cases.save_draft(
            session,
            case.slug,
            _content(findings="Mine."),
            base_revision=first.revision - 1,
            actor=educator,
        )
    assert case.findings == "Theirs."
    kept = session.scalars(
        select(CaseRevision).where(
            CaseRevision.case_id == case.id, CaseRevision.conflicted.is_(True)
        )
    ).one()
    assert kept.content["sections"]["findings"] == "Mine."


def test_diff_between_revisions(
    session: Session, educator: User, create_case: Callable[..., Any]
) -> None:
    case = create_case(educator, status="draft")
    cases.save_draft(
        session,
        case.slug,
        _content(findings="Line one\nLine two"),
        base_revision=case.revision,
        actor=educator,
    )
    r2 = case.revision
    cases.save_draft(
        session, case.slug, _content(findings="Line one\nLine 2"), base_revision=r2, actor=educator
    )
    _case, diffs = cases.diff_revisions(session, case.slug, r2, case.revision, actor=educator)
    lines = {d.field: d.lines for d in diffs}["Imaging findings"]
    assert ("-", "Line two") in lines and ("+", "Line 2") in lines and (" ", "Line one") in lines


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("history", "Seen by Dr Smith in clinic."),
        ("history", "Scanned on 12/03/2024."),
        ("findings", "MRN 1234567 noted."),
        ("discussion", "Call 0412 345 678."),
        ("history", "Transferred from Outback District at night."),
    ],
)
def test_publish_needs_confirmation_of_identifier_findings(
    session: Session, educator: User, create_case: Callable[..., Any], field: str, text: str
) -> None:
    case = create_case(educator, status="draft")
    cases.save_draft(
        session, case.slug, _content(**{field: text}), base_revision=case.revision, actor=educator
    )
    assert cases.check_identifiers(session, case)
    with pytest.raises(Invalid, match="look like patient identifiers"):
        cases.publish(
            session, case.slug, visibility=Visibility.INSTITUTION, confirmed=False, actor=educator
        )
    assert case.status is CaseStatus.DRAFT
    cases.publish(
        session, case.slug, visibility=Visibility.INSTITUTION, confirmed=True, actor=educator
    )
    assert case.status is CaseStatus.PUBLISHED and case.phi_confirmed_by_id == educator.id
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "case.published")).one()
    assert event.detail["visibility"] == "institution" and text not in str(event.detail)


def test_who_sees_what_in_the_list(
    session: Session,
    create_user: Callable[..., User],
    hospital: Institution,
    create_institution: Callable[..., Institution],
    educator: User,
    create_case: Callable[..., Any],
) -> None:
    away = create_institution("Away")
    titles = {
        "pub": create_case(educator, visibility="public", title="pub"),
        "inst": create_case(educator, visibility="institution", title="inst"),
        "priv": create_case(educator, visibility="private", title="priv"),
        "draft": create_case(educator, status="draft", visibility="public", title="draft"),
    }
    assert len(titles) == 4
    readers = {
        "visitor": None,
        "colleague": create_user(Role.LEARNER, institution=hospital),
        "stranger": create_user(Role.LEARNER, institution=away),
        "author": educator,
        "admin": create_user(Role.ADMIN),
    }
    expected = {
        "visitor": {"pub"},
        "colleague": {"pub", "inst"},
        "stranger": {"pub"},
        "author": {"pub", "inst", "priv"},
        "admin": {"pub", "inst", "priv"},
    }
    for name, reader in readers.items():
        page = cases.list_cases(session, actor=reader, filters=cases.CaseFilters())
        assert {c.title for c in page.items} == expected[name], name
        assert page.total == len(expected[name])
        counts = dict(cases.filter_options(session, actor=reader)["modality"])
        assert counts.get("CT", 0) == len(expected[name]), name


def test_drafts_only_for_authors_and_admins(
    session: Session,
    educator: User,
    hospital: Institution,
    create_user: Callable[..., User],
    create_case: Callable[..., Any],
) -> None:
    draft = create_case(educator, status="draft", visibility="public")
    colleague_educator = create_user(Role.EDUCATOR, institution=hospital)
    for reader in (None, colleague_educator):
        with pytest.raises(NotFound):
            cases.get_case(session, draft.slug, actor=reader)
    assert cases.get_case(session, draft.slug, actor=create_user(Role.ADMIN)) is draft
    with pytest.raises(NotFound):
        cases.save_draft(
            session, draft.slug, _content(), base_revision=draft.revision, actor=colleague_educator
        )


def test_delete_needs_the_slug_and_is_audited(
    session: Session, educator: User, create_case: Callable[..., Any]
) -> None:
    case = create_case(educator)
    with pytest.raises(Invalid):
        cases.delete(session, case.slug, confirm_slug="nope", actor=educator)
    slug = case.slug
    cases.delete(session, slug, confirm_slug=slug, actor=educator)
    with pytest.raises(NotFound):
        cases.get_case(session, slug, actor=educator)
    assert session.scalars(
        select(AuditEvent.action).where(AuditEvent.action == "case.deleted")
    ).one()


def test_case_of_the_day_is_public_and_stable(
    session: Session, educator: User, create_case: Callable[..., Any]
) -> None:
    create_case(educator, visibility="institution")
    public = create_case(educator, visibility="public")
    day = date(2026, 11, 23)
    assert cases.case_of_the_day(session, day) is public
    other = create_case(educator, visibility="public")
    cases.choose_case_of_the_day(session, day, other.slug, actor=educator)
    assert cases.case_of_the_day(session, day) is other


@pytest.mark.parametrize(
    "bad",
    [
        {"title": ""},
        {"difficulty": "impossible"},
        {"certainty": "rumour"},
        {"labels": {"colour": ["red"]}},
        {"sections": {"history": "x" * 20_001}},
        {"sections": {"summary": "x"}},
    ],
)
def test_bad_content_is_refused(
    session: Session, educator: User, create_case: Callable[..., Any], bad: dict[str, Any]
) -> None:
    case = create_case(educator, status="draft")
    content = _content()
    for key, value in bad.items():
        setattr(content, key, value)
    with pytest.raises(Invalid):
        cases.save_draft(session, case.slug, content, base_revision=case.revision, actor=educator)


def test_two_processes_saving_the_same_revision_one_wins_one_conflicts(
    app: Any, educator: User, create_case: Callable[..., Any]
) -> None:
    """Each session has already read the case (as two web processes would) when both save
    from the same revision: the second is refused as stale, not a database error."""
    from app.db import get_db

    case = create_case(educator, status="draft")
    base = case.revision
    maker = get_db(app).sessionmaker
    with maker() as first, maker() as second:
        first_actor, second_actor = first.get(User, educator.id), second.get(User, educator.id)
        assert first_actor is not None and second_actor is not None
        cases.get_case(first, case.slug, actor=first_actor)
        cases.get_case(second, case.slug, actor=second_actor)
        cases.save_draft(
            first, case.slug, _content(findings="First."), base_revision=base, actor=first_actor
        )
        first.commit()
        with pytest.raises(Conflict):
            cases.save_draft(
                second,
                case.slug,
                _content(findings="Second."),
                base_revision=base,
                actor=second_actor,
            )
        second.commit()
    with maker() as check:
        saved = cases.get_case(check, case.slug, actor=check.get(User, educator.id))
        assert saved.findings == "First." and saved.revision == base + 1
        kept = check.scalars(
            select(CaseRevision).where(
                CaseRevision.case_id == case.id, CaseRevision.conflicted.is_(True)
            )
        ).one()
        assert kept.content["sections"]["findings"] == "Second."


def test_published_edit_with_identifiers_is_pending_until_confirmed(
    session: Session, educator: User, create_case: Callable[..., Any]
) -> None:
    """Issue 14: the live columns keep the confirmed text; the revision waits."""
    case = create_case(educator, status="published", visibility="public")
    live = case.history
    leak = _content(history="Mr Kowalczyk, MRN 1234567.")
    saved = cases.save_draft(session, case.slug, leak, base_revision=1, actor=educator)
    session.commit()
    assert saved.pending and saved.findings and case.pending_revision == saved.revision
    assert case.history == live
    assert cases.working_content(session, case).sections["history"].startswith("Mr Kowalczyk")
    with pytest.raises(Conflict):
        cases.confirm_pending(session, case.slug, revision=saved.revision - 1, actor=educator)
    cases.confirm_pending(session, case.slug, revision=saved.revision, actor=educator)
    session.commit()
    assert case.history == "Mr Kowalczyk, MRN 1234567." and case.pending_revision is None
    assert case.phi_confirmed_by_id == educator.id
    clean = cases.save_draft(
        session, case.slug, _content(), base_revision=saved.revision, actor=educator
    )
    assert not clean.pending and clean.findings == [] and case.pending_revision is None
