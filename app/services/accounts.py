"""Accounts: registration, log-in with throttling, roles and institutions."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound, TooManyRequests
from app.models import Institution, LoginAttempt, Role, User
from app.services import audit
from app.services.access import Permission, require
from app.services.pagination import Page, paginate

# argon2id with the library's defaults (RFC 9106 second recommended option);
# hashes made with older parameters are upgraded at the next log-in.
_hasher = PasswordHasher()
# Verified against when the account does not exist, so both paths cost the same.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s.]{2,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
MAX_NAME = 100
MAX_INSTITUTION_NAME = 200


@dataclass(frozen=True)
class ThrottlePolicy:
    window_seconds: int = 15 * 60
    max_failures_per_account: int = 5
    max_failures_per_address: int = 30


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_email(email: str) -> str:
    email = _normalise_email(email)
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise Invalid("Enter a valid e-mail address.")
    return email


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise Invalid(f"Choose a password of at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise Invalid(f"A password may have at most {MAX_PASSWORD} characters.")


def _check_display_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise Invalid("Enter your name as colleagues know it.")
    if len(name) > MAX_NAME:
        raise Invalid(f"A name may have at most {MAX_NAME} characters.")
    return name


def register(
    session: Session, *, email: str, display_name: str, password: str, remote_addr: str = ""
) -> User:
    """Create a learner account without an institution (an admin assigns one)."""
    user = _new_user(session, email, display_name, password, Role.LEARNER, None)
    audit.record(
        session,
        "user.registered",
        actor=user,
        target_type="user",
        target_id=user.id,
        remote_addr=remote_addr,
    )
    return user


def create_user(
    session: Session,
    *,
    email: str,
    display_name: str,
    password: str,
    role: Role,
    institution_name: str | None = None,
) -> User:
    """Operator path (CLI): any role, optionally in a named institution."""
    institution = None
    if institution_name:
        institution = session.scalar(
            select(Institution).where(Institution.name == institution_name)
        )
        if institution is None:
            raise NotFound(f"No institution is called {institution_name!r}.")
    user = _new_user(session, email, display_name, password, role, institution)
    audit.record(
        session,
        "user.created",
        actor_label="cli",
        target_type="user",
        target_id=user.id,
        detail={"role": role.value, "institution_id": institution.id if institution else None},
    )
    return user


def _new_user(
    session: Session,
    email: str,
    display_name: str,
    password: str,
    role: Role,
    institution: Institution | None,
) -> User:
    email = _check_email(email)
    display_name = _check_display_name(display_name)
    _check_password(password)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict("An account with this e-mail address exists already.")
    user = User(
        email=email,
        display_name=display_name,
        password_hash=hash_password(password),
        role=role,
        institution=institution,
    )
    session.add(user)
    session.flush()
    return user


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    remote_addr: str,
    policy: ThrottlePolicy | None = None,
) -> User:
    """Check a log-in; every try is recorded, and failures throttle account and address.

    The caller commits whether this returns or raises, so failed attempts count
    across processes.
    """
    policy = policy or ThrottlePolicy()
    email = _normalise_email(email)[:254]
    remote_addr = remote_addr[:64]
    since = utcnow() - timedelta(seconds=policy.window_seconds)
    if _failures(
        session, LoginAttempt.email == email, since
    ) >= policy.max_failures_per_account or (
        _failures(session, LoginAttempt.remote_addr == remote_addr, since)
        >= policy.max_failures_per_address
    ):
        audit.record(session, "auth.login_throttled", actor_label=email, remote_addr=remote_addr)
        raise TooManyRequests("Too many failed log-ins. Wait a few minutes, then try again.")
    user = session.scalar(select(User).where(User.email == email))
    ok = _verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
    session.add(LoginAttempt(email=email, remote_addr=remote_addr, succeeded=ok))
    if not ok or user is None or not user.is_active:
        reason = (
            "unknown account"
            if user is None
            else ("wrong password" if not ok else "account disabled")
        )
        audit.record(
            session,
            "auth.login_failed",
            actor=user,
            actor_label=email,
            detail={"reason": reason},
            remote_addr=remote_addr,
        )
        raise Invalid("The e-mail address or password is not right.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    audit.record(session, "auth.login", actor=user, remote_addr=remote_addr)
    return user


def _failures(session: Session, condition: object, since: object) -> int:
    return (
        session.scalar(
            select(func.count(LoginAttempt.id)).where(
                condition,  # type: ignore[arg-type]
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.at >= since,
            )
        )
        or 0
    )


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def record_logout(session: Session, user: User, *, everywhere: bool, remote_addr: str) -> None:
    """Log out; ``everywhere`` invalidates every other session of the account too."""
    if everywhere:
        user.session_version += 1
    audit.record(
        session,
        "auth.logout_everywhere" if everywhere else "auth.logout",
        actor=user,
        remote_addr=remote_addr,
    )


def load_session_user(session: Session, user_id: str) -> User | None:
    """Resolve a session cookie's ``id:version``; stale versions and disabled accounts fail."""
    ident, _, version = user_id.partition(":")
    if not ident.isdigit() or not version.isdigit():
        return None
    user = session.get(User, int(ident))
    if user is None or not user.is_active or user.session_version != int(version):
        return None
    return user


def list_users(session: Session, *, actor: User, page: int = 1) -> Page[User]:
    require(actor, Permission.MANAGE_USERS)
    return paginate(session, select(User).order_by(User.email), page, 50)


def get_user(session: Session, user_id: int, *, actor: User) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    require(actor, Permission.MANAGE_USERS, user)
    return user


def update_user(
    session: Session,
    user_id: int,
    *,
    role: Role,
    institution_id: int | None,
    is_active: bool,
    actor: User,
    remote_addr: str = "",
) -> User:
    """Admin change of role, institution and status; each change is audited."""
    user = get_user(session, user_id, actor=actor)
    institution = None
    if institution_id is not None:
        institution = session.get(Institution, institution_id)
        if institution is None:
            raise Invalid("Choose an existing institution.")
    demoting_admin = user.role is Role.ADMIN and (role is not Role.ADMIN or not is_active)
    if demoting_admin and _active_admins(session) <= 1:
        raise Invalid("This is the last active admin; make another admin first.")
    changes: list[tuple[str, dict[str, object]]] = []
    if user.role is not role:
        changes.append(("user.role_changed", {"from": user.role.value, "to": role.value}))
        user.role = role
    if user.institution_id != institution_id:
        changes.append(
            ("user.institution_changed", {"from": user.institution_id, "to": institution_id})
        )
        user.institution = institution
    if user.is_active != is_active:
        changes.append(("user.enabled" if is_active else "user.disabled", {}))
        user.is_active = is_active
        if not is_active:
            user.session_version += 1
    for action, detail in changes:
        audit.record(
            session,
            action,
            actor=actor,
            target_type="user",
            target_id=user.id,
            detail=detail,
            remote_addr=remote_addr,
        )
    session.flush()
    return user


def _active_admins(session: Session) -> int:
    return (
        session.scalar(
            select(func.count(User.id)).where(User.role == Role.ADMIN, User.is_active.is_(True))
        )
        or 0
    )


def ensure_first_admin(session: Session) -> tuple[str, str] | None:
    """On an empty database, create an admin with a generated password.

    Returns ``(email, password)`` once so the operator can be told; never a
    hard-coded default.
    """
    if session.scalar(select(func.count(User.id)).where(User.role == Role.ADMIN)):
        return None
    password = secrets.token_urlsafe(15)
    email = "admin@teachfile.local"
    user = _new_user(session, email, "Administrator", password, Role.ADMIN, None)
    audit.record(
        session,
        "user.created",
        actor_label="first run",
        target_type="user",
        target_id=user.id,
        detail={"role": "admin"},
    )
    return email, password


def get_institution_by_name(session: Session, name: str) -> Institution:
    institution = session.scalar(
        select(Institution).where(func.lower(Institution.name) == name.strip().lower())
    )
    if institution is None:
        raise NotFound(f"No institution is called {name!r}.")
    return institution


def list_institutions(session: Session) -> list[Institution]:
    return list(session.scalars(select(Institution).order_by(Institution.name)))


def create_institution(
    session: Session, name: str, *, actor: User | None, remote_addr: str = ""
) -> Institution:
    """A hospital; names are unique so AE titles and accounts map to one of them."""
    if actor is not None:
        require(actor, Permission.MANAGE_INSTITUTIONS)
    name = " ".join(name.split())
    if not name:
        raise Invalid("Enter the institution's name.")
    if len(name) > MAX_INSTITUTION_NAME:
        raise Invalid(f"An institution name may have at most {MAX_INSTITUTION_NAME} characters.")
    if session.scalar(select(Institution.id).where(func.lower(Institution.name) == name.lower())):
        raise Conflict("An institution of this name exists already.")
    institution = Institution(name=name)
    session.add(institution)
    session.flush()
    audit.record(
        session,
        "institution.created",
        actor=actor,
        actor_label="cli",
        target_type="institution",
        target_id=institution.id,
        remote_addr=remote_addr,
    )
    return institution
