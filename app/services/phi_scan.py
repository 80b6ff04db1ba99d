"""Before text reaches readers: find passages that look like a patient identifier.

The author must fix or confirm each finding; publishing records who confirmed. The
detector is app/textscan.py (rules plus name and word lists under app/data/); this
module adds the registered institutions from the database and turns hits into
findings with a short excerpt for the author.

Measured (``pytest tests/services/test_phi_scan.py`` prints the rules' figures on the
labelled set in its closing note; ``scripts/bench/phi_detectors.py --generated 1300
--stub-pos`` prints every row): recall on identifiers and false alarms on clean
teaching prose, on tests/data/phi_corpus.txt (491 sentences: dev 302; held-out 189,
never used for tuning) and on 1,300 sentences whose identifiers Faker made (10 locales).

    detector                           dev recall / alarms   held-out         generated
    these rules                        1.000 / 0.0 %         0.989 / 0.0 %    0.991
    scrubadub 2.0.1, every detector    0.075 / 0.6 %         0.074 / 2.1 %    0.138
      that runs offline (its name detector needs TextBlob data: skipped)
    presidio-analyzer 2.2, its 91      0.178 / 4.5 %         0.147 / 6.4 %    0.191
      pattern recognizers (AnalyzerEngine downloads a spaCy model: not run)
    philter-lite 0.6, philter_delta    0.685 / 5.1 %         0.611 / 6.4 %    0.631
      (needs NLTK's tagger, a download; run with every word tagged as a noun)

Added to the rules, none found a held-out identifier they missed; philter-lite found
4 more of the 1,300 generated ones, and each added false alarms (0.6 to 6.4 %), so
none is used. The clean sentences title-cased (as titles and captions are) raise no
false alarm either (0/250; measured by the test, after tuning on them). The labelled
set was written by the author of the rules, so the generated figure is the fairer one
for recall, and the held-out false-alarm figure rests on 94 sentences (plus the
shipped sample cases, which raise none).
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
