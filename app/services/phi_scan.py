"""Before a case is published: find text that looks like a patient identifier.

The author must fix or confirm each finding; publishing records who confirmed.
The patterns are deliberately eager (a false alarm costs a click; a leaked name
costs a patient's privacy).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Institution

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "name after a title",
        re.compile(
            r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sister|Nurse)\.?\s+[A-Z][a-z'\u2019-]+(?:\s+[A-Z][a-z'\u2019-]+)?"
        ),
    ),
    (
        "date",
        re.compile(
            r"\b\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b|\b(?:19|20)\d{2}-\d{2}-\d{2}\b|"
            r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)"
            r"[a-z]*\.?,?\s+(?:19|20)\d{2}\b|"
            r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2},?\s+"
            r"(?:19|20)\d{2}\b",
            re.IGNORECASE,
        ),
    ),
    (
        "record number",
        re.compile(
            r"\b(?:MRN|UR|URN|NHS|MR|ID|Hosp(?:ital)?\s*(?:no|number)|patient\s*(?:no|number|id))"
            r"[:#.\s-]*[A-Z0-9-]*\d[A-Z0-9-]{2,}\b|\b\d{6,}\b",
            re.IGNORECASE,
        ),
    ),
    ("phone number", re.compile(r"(?:\+\d{1,3}[\s-]?)?\(?\d{2,4}\)?[\s-]\d{3,4}[\s-]\d{3,4}\b")),
    ("e-mail address", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")),
]


@dataclass(frozen=True)
class Finding:
    field: str
    kind: str
    excerpt: str


def scan(session: Session, fields: dict[str, str]) -> list[Finding]:
    """Every match in ``fields`` (name -> text), with a short excerpt around it."""
    patterns = list(_PATTERNS)
    names = [n for n in session.scalars(select(Institution.name)) if len(n) >= 4]
    if names:
        patterns.append(
            (
                "hospital name",
                re.compile(
                    "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)),
                    re.IGNORECASE,
                ),
            )
        )
    findings: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for field, text in fields.items():
        for kind, pattern in patterns:
            for match in pattern.finditer(text or ""):
                excerpt = _excerpt(text, match.start(), match.end())
                if (field, excerpt) in seen:
                    continue
                seen.add((field, excerpt))
                findings.append(Finding(field, kind, excerpt))
                if len(findings) >= 50:
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
