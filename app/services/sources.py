"""DICOM sources: the calling AE titles allowed to send, each mapped to an institution."""

from __future__ import annotations

import ipaddress
import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import Conflict, Invalid, NotFound
from app.models import DicomSource, Institution, User
from app.services import audit
from app.services.access import Permission, require

# PS3.5 6.2: AE is up to 16 characters of the default repertoire, no backslash or
# control characters; leading and trailing spaces are not significant.
_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


def normalise_ae_title(value: str) -> str:
    title = value.strip()
    if not _AE_TITLE.match(title):
        raise Invalid("An AE title has 1 to 16 printable characters and no backslash.")
    return title


def _check_host(host: str | None) -> str | None:
    if not host:
        return None
    try:
        return str(ipaddress.ip_address(host.strip()))
    except ValueError:
        raise Invalid("Give the sender's host as an IP address, or leave it empty.") from None


def add_source(
    session: Session,
    ae_title: str,
    *,
    institution_name: str | None = None,
    institution_id: int | None = None,
    host: str | None = None,
    actor: User | None,
    remote_addr: str = "",
) -> DicomSource:
    """Allow a calling AE title (optionally from one address) for an institution."""
    if actor is not None:
        require(actor, Permission.MANAGE_SOURCES)
    title = normalise_ae_title(ae_title)
    if institution_id is not None:
        institution = session.get(Institution, institution_id)
    else:
        institution = session.scalar(
            select(Institution).where(
                func.lower(Institution.name) == (institution_name or "").strip().lower()
            )
        )
    if institution is None:
        raise NotFound("No such institution.")
    if session.scalar(select(DicomSource.id).where(DicomSource.ae_title == title)):
        raise Conflict(f"The AE title {title} is allowed already.")
    source = DicomSource(ae_title=title, host=_check_host(host), institution=institution)
    session.add(source)
    session.flush()
    audit.record(
        session,
        "source.added",
        actor=actor,
        actor_label="cli",
        target_type="dicom_source",
        target_id=source.id,
        detail={"ae_title": title, "institution_id": institution.id},
        remote_addr=remote_addr,
    )
    return source


def list_sources(session: Session) -> list[DicomSource]:
    return list(session.scalars(select(DicomSource).order_by(DicomSource.ae_title)))


def remove_source(
    session: Session, ae_title: str, *, actor: User | None, remote_addr: str = ""
) -> None:
    if actor is not None:
        require(actor, Permission.MANAGE_SOURCES)
    title = normalise_ae_title(ae_title)
    source = session.scalar(select(DicomSource).where(DicomSource.ae_title == title))
    if source is None:
        raise NotFound(f"The AE title {title} is not on the allow-list.")
    audit.record(
        session,
        "source.removed",
        actor=actor,
        actor_label="cli",
        target_type="dicom_source",
        target_id=source.id,
        detail={"ae_title": title},
        remote_addr=remote_addr,
    )
    session.delete(source)
    session.flush()


def find_sender(session: Session, ae_title: str, address: str) -> DicomSource | None:
    """The allowed source for this sender, or None; reads only (called per C-STORE)."""
    source = session.scalar(select(DicomSource).where(DicomSource.ae_title == ae_title.strip()))
    if source is not None and (source.host is None or source.host == address):
        return source
    return None


def authorise_sender(session: Session, ae_title: str, address: str) -> DicomSource | None:
    """At association start: the allowed source (marked as seen), or None and an audit
    entry to refuse it."""
    title = ae_title.strip()
    source = find_sender(session, title, address)
    if source is not None:
        source.last_seen_at = utcnow()
        return source
    source = session.scalar(select(DicomSource).where(DicomSource.ae_title == title))
    audit.record(
        session,
        "dicom.association_rejected",
        actor_label=f"AE {title[:16]}",
        detail={
            "channel": "association",
            "code": "unknown-sender" if source is None else "address-not-allowed",
        },
        remote_addr=address,
    )
    return None
