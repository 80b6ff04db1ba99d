"""Radiology synonyms, abbreviations and spelling variants, loaded from app/data/synonyms.yaml.

Usable on its own (no whoosh): search expands query terms with it, and quiz marking can
reuse :func:`expand` and :func:`normalise` to accept "PTX" for "pneumothorax".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "synonyms.yaml"

_SEPARATORS = re.compile(r"[\s\-_/]+")
_DROP = re.compile(r"[^\w\s]")


def normalise(text: str) -> str:
    """Lower-case, strip accents, turn hyphens and slashes into spaces, collapse spaces.

    "Ground-glass Opacité" and "ground glass opacite" compare equal, so the table need
    not list every punctuation or accent variant.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    lowered = _SEPARATORS.sub(" ", stripped.casefold())
    return " ".join(_DROP.sub("", lowered).split())


@dataclass(frozen=True)
class SynonymTable:
    """Groups of equivalent terms; a term in two groups expands to both (not transitively)."""

    groups: tuple[frozenset[str], ...]
    by_term: Mapping[str, frozenset[str]]
    longest: int  # most words in one member, bounds the phrase look-up in queries
    # Real terms that look like misspellings of others ("ileus", "ileum"): quiz marking
    # never reads one of them as a typo of another word.
    terms: frozenset[str] = frozenset()

    @classmethod
    def from_groups(
        cls, groups: Iterable[Iterable[str]], terms: Iterable[str] = ()
    ) -> SynonymTable:
        """Build the table from raw groups (normalised here; empty members dropped)."""
        cleaned: list[frozenset[str]] = []
        for group in groups:
            members = frozenset(m for m in (normalise(str(t)) for t in group) if m)
            if len(members) > 1:
                cleaned.append(members)
        index: dict[str, set[str]] = {}
        for members in cleaned:
            for term in members:
                index.setdefault(term, set()).update(members)
        longest = max((len(t.split()) for t in index), default=1)
        return cls(
            groups=tuple(cleaned),
            by_term={t: frozenset(m) for t, m in index.items()},
            longest=longest,
            terms=frozenset(w for w in (normalise(str(t)) for t in terms) if w),
        )

    def expand(self, term: str) -> set[str]:
        """The normalised term and every synonym of it (a set with the term alone if none)."""
        key = normalise(term)
        if not key:
            return set()
        return set(self.by_term.get(key, ())) | {key}

    def equivalent(self, a: str, b: str) -> bool:
        """True if the two strings are the same term or synonyms (quiz answer matching)."""
        na, nb = normalise(a), normalise(b)
        return bool(na) and (na == nb or nb in self.by_term.get(na, ()))


def _lists(data: object, key: str) -> list[list[str]]:
    found = data.get(key, []) if isinstance(data, dict) else []
    if not isinstance(found, list):
        return []
    return [[str(t) for t in g] for g in found if isinstance(g, list)]


def _load(path: Path) -> object:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def _read(path: Path) -> SynonymTable:
    return SynonymTable.from_groups(_lists(_load(path), "groups"))


@lru_cache(maxsize=4)
def load_answer_synonyms(path: Path = DATA) -> SynonymTable:
    """The table for marking quiz answers: the search groups plus the ``answers`` groups,
    equivalences a marker accepts but a search should not expand ("free gas" for
    "subdiaphragmatic air"), and the ``terms`` that are never a typo of another word."""
    data = _load(path)
    terms = data.get("terms", []) if isinstance(data, dict) else []
    return SynonymTable.from_groups(
        [*_lists(data, "groups"), *_lists(data, "answers")],
        terms=[str(t) for t in terms] if isinstance(terms, list) else [],
    )


@lru_cache(maxsize=4)
def load_synonyms(path: Path = DATA) -> SynonymTable:
    """The table shipped in app/data/synonyms.yaml (read once per process)."""
    return _read(path)


def expand(term: str) -> set[str]:
    """Synonyms of ``term`` from the shipped table, normalised, including the term itself."""
    return load_synonyms().expand(term)
