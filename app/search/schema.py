"""The whoosh schema and analysers of the case index (issue 8).

Layout, chosen from the benchmark in scripts/bench/search.py:

* ``content`` holds every text section (title included) in one field (frequencies, no
  positions; phrases use ``pairs``): a query reads one posting list per term, not seven,
  which is what makes whoosh keep pace with SQLite FTS5 at 100,000 cases.
* the short sections ``title`` and ``diagnosis`` are also fields of their own, for fielded
  queries by the service layer. The five long sections (history, findings, differential,
  discussion, teaching points) are searched through ``content`` and kept as stored text
  for highlights: indexing them a second time added ~30% of all postings, and postings
  are what whoosh's build time is made of (1.19 M postings took 17 of 30 s profiled for
  3,000 cases), which would have put the 100,000-case build over the 10-minute goal.
* there is no spelling field: "did you mean" compares stems with the ``content`` lexicon
  and shows a word of the case text with that stem (a field of unstemmed words was a
  quarter of all postings). Field lengths are read once per field while a segment is
  written, and fields take pre-analysed term lists (see ``_index_terms``): together
  the build went from 287 to ~900 docs/s at 10,000 cases.
* ``meta`` is one pickled column per case with everything that permission filtering,
  facet counting, date sorting and reconcile need, read once per index segment and cached.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from whoosh import columns, fields, formats
from whoosh.analysis import Analyzer, SpaceSeparatedTokenizer
from whoosh.lang.porter import stem as _porter_stem
from whoosh.system import pack_uint as _pack_uint

# Whoosh's default stop list drops "us" (ultrasound) and "can"/"may"; ours keeps
# everything with a radiological meaning and drops only glue words.
_GLUE = "a an and are as at be been but by for from had has have if in into is it its of on or"
STOP_WORDS = frozenset(
    (_GLUE + " that the then there these this those to was were which with").split()
)

TOKEN_PATTERN = r"\w+(?:\.\w+)*"  # noqa: S105 (a regex, not a secret)
TOKEN_RE = re.compile(TOKEN_PATTERN, re.UNICODE)

SECTIONS = (
    "title",
    "history",
    "findings",
    "diagnosis",
    "differential",
    "discussion",
    "teaching_points",
)

FIELDED_SECTIONS = ("title", "diagnosis")

# facet name -> index field; the order is the order of SearchResult.facets
FACETS = (
    "modality",
    "body_region",
    "tags",
    "difficulty",
    "audience",
    "certainty",
    "institution",
    "author",
)


def _pre_analysed() -> Analyzer:
    """Whitespace split only: the text was analysed by :func:`analyse` already.

    Running whoosh's filter chain (a generator per filter per token) cost ~60% of build
    time; doing the same work once in :func:`analyse` with a cached stemmer and feeding
    every field the result took the 10,000-case build from 68 s to the figure in the
    benchmark, and guarantees that queries, index and highlights agree.
    """
    tokenizer: Analyzer = SpaceSeparatedTokenizer()
    return tokenizer


def fold(word: str) -> str:
    """Lower-case and strip accents, as the analysers do."""
    lowered = word.lower()
    if lowered.isascii():
        return lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """The index term for one already-folded word (same Porter stemmer as the analyser)."""
    result: str = _porter_stem(word)
    return result


PAIR = "+"  # joins two adjacent terms in the ``pairs`` field; never inside a term


def pairs(terms: list[str]) -> list[str]:
    """Adjacent term pairs: a phrase query becomes an AND of pair terms (no positions)."""
    return [a + PAIR + b for a, b in itertools.pairwise(terms)]


def analyse(text: str) -> list[str]:
    """Index terms of ``text`` in order (stop words dropped), as ``content`` holds them."""
    out = []
    for match in TOKEN_RE.finditer(text):
        word = fold(match.group())
        if word not in STOP_WORDS:
            out.append(stem(word))
    return out


def iter_words(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, index term or "") for each word in ``text``, for highlighting."""
    for match in TOKEN_RE.finditer(text):
        word = fold(match.group())
        yield match.start(), match.end(), "" if word in STOP_WORDS else stem(word)


def _index_terms(field: Any, value: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
    """(term bytes, frequency, weight, encoded value) for a list of index terms.

    Fields get lists of terms made by :func:`analyse`; counting them here instead of in
    whoosh's token pipeline (a Token object and a generator step per word) is what the
    analyser chain cost at build time. A plain string is split on spaces.
    """
    terms = value.split() if isinstance(value, str) else value
    fb = field.format.field_boost
    if isinstance(field.format, formats.Existence):
        for term in set(terms):
            yield term.encode("utf-8"), 1, fb, b""
        return
    for term, freq in Counter(terms).items():
        yield term.encode("utf-8"), freq, freq * fb, _pack_uint(freq)


class _PreText(fields.TEXT):  # type: ignore[misc]
    """A TEXT field (frequencies, no positions) fed with pre-analysed term lists."""

    def index(self, value: Any, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        return _index_terms(self, value)


class _ExistenceText(fields.FieldType):  # type: ignore[misc]
    """A text field that records only which documents contain a word."""

    def index(self, value: Any, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        return _index_terms(self, value)

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.format = formats.Existence(field_boost=1.0)
        self.scorable = False
        self.stored = False
        self.unique = False
        self.vector = None
        self.spelling = False
        self.multitoken_query = "default"


def _facet() -> Any:
    return fields.KEYWORD(commas=True, lowercase=False, scorable=False)


def build_schema() -> fields.Schema:
    """The schema of a Teachfile case index."""
    pre = _pre_analysed()
    section = {name: _PreText(analyzer=pre, phrase=False) for name in FIELDED_SECTIONS}
    return fields.Schema(
        case_id=fields.ID(unique=True, stored=False),
        content=_PreText(analyzer=pre, phrase=False),
        pairs=_PreText(analyzer=pre, phrase=False),
        visibility=fields.ID(),
        institution_id=fields.ID(),
        author_id=fields.KEYWORD(commas=True),
        meta=fields.COLUMN(columns.PickleColumn(columns.VarBytesColumn())),
        stored=fields.STORED(),
        **section,
        **{name: _facet() for name in FACETS},
    )
