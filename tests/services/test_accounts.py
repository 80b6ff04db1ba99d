"""Accounts: registration rules, log-in, throttling across processes, roles, audit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from argon2 import PasswordHasher
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import get_db
from app.errors import Conflict, Invalid, NotFound, TooManyRequests
from app.models import AuditEvent, Institution, Role, User
from app.services import accounts
from tests.conftest import PASSWORD


def _actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_register_creates_learner_with_argon2id_hash(session: Session) -> None:
    user = accounts.register(
        session, email="  Ana@Example.ORG ", display_name="Ana", password=PASSWORD
    )
    session.commit()
    assert user.email == "ana@example.org"
    assert user.role is Role.LEARNER
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("email", "name", "password", "message"),
    [
        ("not-an-email", "Ana", PASSWORD, "valid e-mail"),
        ("ana@example.org", "", PASSWORD, "name"),
        ("ana@example.org", "A" * 101, PASSWORD, "at most 100"),
        ("ana@example.org", "Ana", "short", "at least 10"),
        ("ana@example.org", "Ana", "x" * 257, "at most 256"),
        ("a" * 250 + "@example.org", "Ana", PASSWORD, "valid e-mail"),
    ],
)
def test_register_refuses_bad_input_and_stores_nothing(
    session: Session, email: str, name: str, password: str, message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        accounts.register(session, email=email, display_name=name, password=password)
    session.rollback()
    assert session.scalars(select(User)).all() == []


def test_duplicate_email_is_refused(session: Session) -> None:
    accounts.register(session, email="ana@example.org", display_name="Ana", password=PASSWORD)
    with pytest.raises(Conflict):
        accounts.register(session, email="ANA@example.org", display_name="Other", password=PASSWORD)


def test_failed_logins_are_audited_without_the_password(
    session: Session, create_user: Callable[..., User]
) -> None:
    user = create_user()
    with pytest.raises(Invalid):
        accounts.authenticate(
            session, email=user.email, password="wrong-password-123", remote_addr="10.1.1.1"
        )
    with pytest.raises(Invalid):
        accounts.authenticate(
            session, email="nobody@example.org", password=PASSWORD, remote_addr="10.1.1.1"
        )
    session.commit()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.login_failed")
    ).all()
    assert [e.detail["reason"] for e in events] == ["wrong password", "unknown account"]
    assert all("wrong-password-123" not in str(e.detail) for e in events)


def test_throttling_holds_across_processes(app: Flask, create_user: Callable[..., User]) -> None:
    """Failures committed by one process throttle log-ins in another (separate sessions)."""
    user = create_user()
    policy = accounts.ThrottlePolicy(max_failures_per_account=3)
    for _ in range(3):
        with get_db(app).sessionmaker() as worker:
            with pytest.raises(Invalid):
                accounts.authenticate(
                    worker,
                    email=user.email,
                    password="nope-nope-nope",
                    remote_addr="a",
                    policy=policy,
                )
            worker.commit()
    with get_db(app).sessionmaker() as other_worker, pytest.raises(TooManyRequests):
        accounts.authenticate(
            other_worker,
            email=user.email,
            password=PASSWORD,
            remote_addr="b",
            policy=policy,
        )


def test_throttling_by_address(session: Session, create_user: Callable[..., User]) -> None:
    policy = accounts.ThrottlePolicy(max_failures_per_address=2)
    users = [create_user() for _ in range(3)]
    for user in users[:2]:
        with pytest.raises(Invalid):
            accounts.authenticate(
                session,
                email=user.email,
                password="nope-nope-nope",
                remote_addr="203.0.113.9",
                policy=policy,
            )
    with pytest.raises(TooManyRequests):
        accounts.authenticate(
            session,
            email=users[2].email,
            password=PASSWORD,
            remote_addr="203.0.113.9",
            policy=policy,
        )


def test_login_rehashes_when_parameters_change(
    session: Session, create_user: Callable[..., User]
) -> None:
    user = create_user()
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
    session.commit()
    old_hash = user.password_hash
    accounts.authenticate(session, email=user.email, password=PASSWORD, remote_addr="x")
    assert user.password_hash != old_hash
    assert not PasswordHasher().check_needs_rehash(user.password_hash)


def test_disabled_account_cannot_log_in(session: Session, create_user: Callable[..., User]) -> None:
    admin = create_user(Role.ADMIN)
    user = create_user()
    accounts.update_user(
        session, user.id, role=Role.LEARNER, institution_id=None, is_active=False, actor=admin
    )
    with pytest.raises(Invalid):
        accounts.authenticate(session, email=user.email, password=PASSWORD, remote_addr="x")


def test_role_and_institution_changes_are_audited(
    session: Session,
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
) -> None:
    admin = create_user(Role.ADMIN)
    user = create_user()
    hospital = create_institution("Rural General")
    accounts.update_user(
        session,
        user.id,
        role=Role.EDUCATOR,
        institution_id=hospital.id,
        is_active=True,
        actor=admin,
    )
    session.commit()
    assert user.role is Role.EDUCATOR and user.institution == hospital
    changed = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action.in_(["user.role_changed", "user.institution_changed"])
        )
    ).all()
    assert {(e.action, e.actor_id) for e in changed} == {
        ("user.role_changed", admin.id),
        ("user.institution_changed", admin.id),
    }


def test_last_admin_cannot_demote_themselves(
    session: Session, create_user: Callable[..., User]
) -> None:
    admin = create_user(Role.ADMIN)
    with pytest.raises(Invalid, match="last active admin"):
        accounts.update_user(
            session, admin.id, role=Role.LEARNER, institution_id=None, is_active=True, actor=admin
        )


def test_only_admins_manage_accounts(session: Session, create_user: Callable[..., User]) -> None:
    educator = create_user(Role.EDUCATOR)
    learner = create_user()
    with pytest.raises(NotFound):
        accounts.update_user(
            session,
            learner.id,
            role=Role.ADMIN,
            institution_id=None,
            is_active=True,
            actor=educator,
        )
    assert learner.role is Role.LEARNER


def test_logout_everywhere_invalidates_old_session_ids(
    session: Session, create_user: Callable[..., User]
) -> None:
    user = create_user()
    old_id = user.get_id()
    assert accounts.load_session_user(session, old_id) is user
    accounts.record_logout(session, user, everywhere=True, remote_addr="")
    assert accounts.load_session_user(session, old_id) is None
    assert accounts.load_session_user(session, user.get_id()) is user
    assert accounts.load_session_user(session, "garbage") is None


def test_first_admin_is_created_once_with_a_generated_password(session: Session) -> None:
    first = accounts.ensure_first_admin(session)
    assert first is not None
    email, password = first
    assert len(password) >= 16
    assert accounts.ensure_first_admin(session) is None
    assert accounts.authenticate(session, email=email, password=password, remote_addr="")


def test_institution_names_are_unique_ignoring_case(session: Session) -> None:
    accounts.create_institution(session, "Mercy Hospital", actor=None)
    with pytest.raises(Conflict):
        accounts.create_institution(session, "mercy  hospital", actor=None)
    assert _actions(session) == ["institution.created"]
