"""Before text reaches readers: find passages that look like a patient identifier.

The author must fix or confirm each finding; publishing records who confirmed. The
detector is app/textscan.py (rules plus name and word lists under app/data/); this
module adds the registered institutions from the database and turns hits into
findings with a short excerpt for the author.

Measured on tests/data/phi_corpus.txt (431 labelled sentences, 30 % held out from
tuning): the test's closing note prints recall and false alarms for each part.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import textscan
from app.models import Institution

MAX_FINDINGS = 50


@dataclass(frozen=True)
class Finding:
    """One passage to check: the field it is in, what it looks like, and a short excerpt.

    ``start`` and ``end`` locate the passage in the field's text (``text[start:end]``).
    """

    field: str
    kind: str
    excerpt: str
    start: int = 0
    end: int = 0


def scan(session: Session, fields: dict[str, str]) -> list[Finding]:
    """Every passage in ``fields`` (name -> text) that looks like an identifier, at most 50."""
    institutions = tuple(session.scalars(select(Institution.name)))
    return scan_texts(fields, institutions)


def scan_texts(fields: dict[str, str], institutions: tuple[str, ...] = ()) -> list[Finding]:
    """The scan without a database: ``institutions`` are the registered hospital names."""
    findings: list[Finding] = []
    for field, text in fields.items():
        # Hits never overlap (textscan merges them), so each finding is its own passage,
        # even where two short passages share one excerpt.
        for hit in textscan.find(text or "", institutions):
            findings.append(
                Finding(field, hit.kind, _excerpt(text, hit.start, hit.end), hit.start, hit.end)
            )
            if len(findings) >= MAX_FINDINGS:
                return findings
    return findings


def _excerpt(text: str, start: int, end: int) -> str:
    left = max(0, start - 25)
    right = min(len(text), end + 25)
    return (
        ("…" if left else "")
        + text[left:right].replace("\n", " ")
        + ("…" if right < len(text) else "")
    )
