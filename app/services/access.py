"""The one permission rule: who may see or change what.

Every view, API route, list query and search asks here. Role gates
(``can(actor, Permission.X)``) raise ``Forbidden``; object rules raise
``NotFound`` so a forbidden object's existence is not revealed. List queries use
:func:`readable_cases`, the same rule as SQL, so counts and pages agree with it.
"""

from __future__ import annotations

import enum

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from app.errors import Forbidden, NotFound
from app.models import (
    Annotation,
    AnnotationVisibility,
    Case,
    CaseAuthor,
    CaseSet,
    CaseStatus,
    CaseStudy,
    Comment,
    Consult,
    DicomSource,
    Institution,
    QuarantinedObject,
    Role,
    Study,
    Thread,
    User,
    Visibility,
)


class Permission(enum.StrEnum):
    VIEW = "view"  # read an object (cases, sets, images): visitors included
    EDIT = "edit"  # change an object (its authors, admins)
    AUTHENTICATED = "authenticated"
    RECEIVE_STUDIES = "receive_studies"
    AUTHOR_CASES = "author_cases"
    MANAGE_USERS = "manage_users"
    MANAGE_INSTITUTIONS = "manage_institutions"
    MANAGE_SOURCES = "manage_sources"
    VIEW_AUDIT_LOG = "view_audit_log"
    # Discussion (issue 10): hide comments; review reports; ask about one's hospital's studies.
    MODERATE_COMMENTS = "moderate_comments"
    REVIEW_REPORTS = "review_reports"
    CONSULT = "consult"


# The least role that holds each role-gated permission (roles are cumulative).
MINIMUM_ROLE: dict[Permission, Role] = {
    Permission.AUTHENTICATED: Role.LEARNER,
    Permission.RECEIVE_STUDIES: Role.EDUCATOR,
    Permission.AUTHOR_CASES: Role.EDUCATOR,
    Permission.MANAGE_USERS: Role.ADMIN,
    Permission.MANAGE_INSTITUTIONS: Role.ADMIN,
    Permission.MANAGE_SOURCES: Role.ADMIN,
    Permission.VIEW_AUDIT_LOG: Role.ADMIN,
    Permission.MODERATE_COMMENTS: Role.EDUCATOR,
    Permission.REVIEW_REPORTS: Role.ADMIN,
    Permission.CONSULT: Role.LEARNER,
}


def _active(actor: User | None) -> User | None:
    return actor if actor is not None and actor.is_active else None


def can(actor: User | None, permission: Permission, obj: object | None = None) -> bool:
    """Answer whether ``actor`` (None for a visitor) holds ``permission`` on ``obj``."""
    actor = _active(actor)
    if isinstance(obj, Case | CaseSet):
        return _published_rule(actor, permission, obj)
    if isinstance(obj, Annotation):
        return _annotation_rule(actor, permission, obj)
    if isinstance(obj, Comment):
        return _comment_rule(actor, permission, obj)
    if isinstance(obj, Consult):
        return _consult_rule(actor, permission, obj)
    if permission in (Permission.VIEW, Permission.EDIT):
        return actor is not None and actor.role is Role.ADMIN
    if actor is None or not actor.has_role(MINIMUM_ROLE[permission]):
        return False
    if obj is None or actor.role is Role.ADMIN:
        return True
    if isinstance(obj, Study):
        # Received studies (the inbox) belong to the institution that sent them; its
        # members may also ask about them (CONSULT, "my hospital's studies").
        return actor.institution_id is not None and obj.institution_id == actor.institution_id
    # Accounts, institutions, sources and quarantined objects are admins' alone.
    if isinstance(obj, User | Institution | DicomSource | QuarantinedObject):
        return False
    return False


def _published_rule(actor: User | None, permission: Permission, obj: Case | CaseSet) -> bool:
    """Cases and case sets: drafts are their authors' and admins'; published ones follow
    their visibility (DESIGN.md, "Who uses it")."""
    if actor is not None and actor.role is Role.ADMIN:
        return True
    authored = _is_author(actor, obj)
    if permission is Permission.EDIT:
        return authored and actor is not None and actor.has_role(Role.EDUCATOR)
    if permission is not Permission.VIEW:
        return False
    if authored:
        return True
    if obj.status is not CaseStatus.PUBLISHED:
        return False
    if obj.visibility is Visibility.PUBLIC:
        return True
    if obj.visibility is Visibility.INSTITUTION:
        return (
            actor is not None
            and actor.institution_id is not None
            and actor.institution_id == obj.institution_id
        )
    return False


def _annotation_rule(actor: User | None, permission: Permission, note: Annotation) -> bool:
    """Annotations: never more visible than their case. The teaching overlay is seen by
    every reader of the case and changed by its editors; a reader's own marks follow
    their visibility (only me / my institution / everyone who can see the case) and
    are changed by their author alone."""
    if not _published_rule(actor, Permission.VIEW, note.case):
        return False
    if actor is not None and actor.role is Role.ADMIN:
        return True
    if note.teaching:
        if permission is Permission.EDIT:
            return _published_rule(actor, Permission.EDIT, note.case)
        return permission is Permission.VIEW
    own = actor is not None and note.user_id == actor.id
    if permission is Permission.EDIT:
        return own
    if permission is not Permission.VIEW:
        return False
    if own or note.visibility is AnnotationVisibility.CASE_READERS:
        return True
    if note.visibility is AnnotationVisibility.INSTITUTION:
        return (
            actor is not None
            and actor.institution_id is not None
            and actor.institution_id == note.institution_id
        )
    return False


def _comment_rule(actor: User | None, permission: Permission, comment: Comment) -> bool:
    """Comments: logged-in readers of the case; a hospital comment only to members of its
    institution (and admins, who moderate). EDIT is the writer's; MODERATE educators'."""
    if actor is None or not can(actor, Permission.VIEW, comment.case):
        return False
    own_hospital = (
        actor.institution_id is not None and actor.institution_id == comment.institution_id
    )
    if comment.thread is Thread.HOSPITAL and not (own_hospital or actor.role is Role.ADMIN):
        return False
    if permission is Permission.VIEW:
        return True
    if permission is Permission.EDIT:
        return comment.author_id == actor.id and comment.deleted_at is None
    if permission is Permission.MODERATE_COMMENTS:
        return actor.has_role(Role.EDUCATOR)
    return False


def _consult_rule(actor: User | None, permission: Permission, consult: Consult) -> bool:
    """Consults: the asker and the educators of the study's institution (and admins).
    EDIT (turn into a case draft) is the institution's educators' and admins'."""
    if actor is None:
        return False
    if actor.role is Role.ADMIN:
        return permission in (Permission.VIEW, Permission.EDIT)
    educator = actor.has_role(Role.EDUCATOR) and actor.institution_id == consult.institution_id
    if permission is Permission.VIEW:
        return educator or (consult.asker_id is not None and consult.asker_id == actor.id)
    if permission is Permission.EDIT:
        return educator
    return False


def readable_comments(actor: User | None) -> ColumnElement[bool]:
    """SQL for "comments ``actor`` may read": the comment rule, for lists and counts."""
    actor = _active(actor)
    if actor is None:
        return false()
    on_readable_case = Comment.case_id.in_(
        select(Case.id).where(readable_cases(actor, include_own_drafts=True))
    )
    if actor.role is Role.ADMIN:
        return on_readable_case
    own_hospital = (
        Comment.institution_id == actor.institution_id
        if actor.institution_id is not None
        else false()
    )
    return and_(on_readable_case, or_(Comment.thread == Thread.OPEN, own_hospital))


def readable_consults(actor: User | None) -> ColumnElement[bool]:
    """SQL for "consults ``actor`` may read": the consult rule, for lists and counts."""
    actor = _active(actor)
    if actor is None:
        return false()
    if actor.role is Role.ADMIN:
        return true()
    mine = Consult.asker_id == actor.id
    if actor.has_role(Role.EDUCATOR) and actor.institution_id is not None:
        return or_(mine, Consult.institution_id == actor.institution_id)
    return mine


def _is_author(actor: User | None, obj: Case | CaseSet) -> bool:
    if actor is None:
        return False
    if isinstance(obj, Case):
        return obj.is_author(actor)
    return obj.created_by_id == actor.id


def require(actor: User | None, permission: Permission, obj: object | None = None) -> None:
    """Raise unless ``can``: NotFound for an object the actor may not see, else Forbidden."""
    if can(actor, permission, obj):
        return
    if obj is not None and (permission is Permission.VIEW or not can(actor, Permission.VIEW, obj)):
        raise NotFound("No such page.")
    if obj is not None and not isinstance(obj, Case | CaseSet | Comment | Consult):
        raise NotFound("No such page.")
    raise Forbidden("Your account's role does not allow this.")


def readable_cases(actor: User | None, *, include_own_drafts: bool = False) -> ColumnElement[bool]:
    """SQL for "published cases ``actor`` may read" (what lists, counts and search show)."""
    actor = _active(actor)
    published = Case.status == CaseStatus.PUBLISHED
    if actor is not None and actor.role is Role.ADMIN:
        return published if not include_own_drafts else true()
    authored = exists(
        select(CaseAuthor.case_id).where(
            CaseAuthor.case_id == Case.id, CaseAuthor.user_id == (actor.id if actor else -1)
        )
    )
    visible = or_(
        Case.visibility == Visibility.PUBLIC,
        and_(
            Case.visibility == Visibility.INSTITUTION,
            Case.institution_id == actor.institution_id,
        )
        if actor is not None and actor.institution_id is not None
        else false(),
        authored if actor is not None else false(),
    )
    rule = and_(published, visible)
    if include_own_drafts and actor is not None:
        return or_(rule, authored)
    return rule


def can_view_study_images(session: Session, actor: User | None, study: Study) -> bool:
    """Images of a study: its institution's members (the inbox, consults), admins, or
    anyone who may view a case that shows the study."""
    actor = _active(actor)
    if actor is not None and can(actor, Permission.RECEIVE_STUDIES, study):
        return True
    if actor is not None and can(actor, Permission.CONSULT, study):
        return True  # a member asking about their hospital's study (issue 10)
    cases = session.scalars(
        select(Case)
        .join(CaseStudy, CaseStudy.case_id == Case.id)
        .where(CaseStudy.study_id == study.id)
    )
    return any(can(actor, Permission.VIEW, case) for case in cases)
