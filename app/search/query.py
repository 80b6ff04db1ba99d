"""The learners' query grammar: words, "phrases", OR, NOT / -word, and word* prefixes.

Nothing else is syntax: colons, brackets, ranges, ``~`` and ``^`` are separators, and
operators in the wrong place are dropped (or read as words if the query is nothing but
operators), so malformed input never raises. Bounds keep a pathological query cheap:
at most ``MAX_QUERY_CHARS`` characters and ``MAX_CLAUSES`` clauses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from app.search.synonyms import SynonymTable, normalise

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 12
MIN_PREFIX = 3

_TOKEN_RE = re.compile(r'"(?P<phrase>[^"]*)"|(?P<word>-?[\w*][\w.\'*\-]*)|(?P<dash>-)')
_OPERATORS = {"OR": "OR", "|": "OR", "AND": "AND", "&": "AND", "NOT": "NOT"}


@dataclass
class Alternative:
    """One way to satisfy a clause: a word, a phrase (several words) or a prefix."""

    words: list[str]
    prefix: bool = False
    typed: bool = True  # False for a synonym the reader did not type


@dataclass
class Clause:
    """Alternatives OR'ed together; the clauses of a query are AND'ed."""

    alternatives: list[Alternative] = field(default_factory=list)
    negated: bool = False
    source: str = ""  # what the reader typed, for "did you mean"


def clean(text: str) -> str:
    """Drop control characters and cap the length (the cap bounds all later work)."""
    text = text[: MAX_QUERY_CHARS * 2]
    chars = (" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
    return " ".join("".join(chars).split())[:MAX_QUERY_CHARS]


def _lex(text: str) -> list[tuple[str, str]]:
    """(kind, value) tokens: PHRASE, WORD, OP; everything else separates tokens."""
    tokens: list[tuple[str, str]] = []
    # An unbalanced quote is read as a plain separator.
    if text.count('"') % 2:
        head, _, tail = text.rpartition('"')
        text = head + " " + tail
    for m in _TOKEN_RE.finditer(text):
        if m.group("phrase") is not None:
            tokens.append(("PHRASE", m.group("phrase")))
        elif m.group("dash") is not None:
            continue
        else:
            word = m.group("word")
            op = _OPERATORS.get(word)
            tokens.append(("OP", op) if op else ("WORD", word))
    return tokens


def _words(text: str) -> list[str]:
    return normalise(text).split()


def parse(text: str, synonyms: SynonymTable) -> list[Clause]:
    """Parse a reader's query into clauses; never raises."""
    tokens = _lex(clean(text).replace("|", " OR ").replace("&", " AND "))
    if tokens and all(kind == "OP" for kind, _ in tokens):
        tokens = [("WORD", value.lower()) for _, value in tokens]

    clauses: list[Clause] = []
    pending_not = False
    pending_or = False
    for kind, value in tokens:
        if kind == "OP":
            if value == "NOT":
                pending_not = True
            elif value == "OR":
                pending_or = bool(clauses) and not clauses[-1].negated
            continue
        negated = pending_not
        clause = _clause(kind, value)
        if clause is None:
            pending_not = pending_or = False
            continue
        if clause.negated:
            negated = True
        clause.negated = negated
        if pending_or and not negated and clauses:
            last = clauses[-1]
            last.alternatives.extend(clause.alternatives)
            last.source = f"{last.source} OR {clause.source}"
        else:
            clauses.append(clause)
        pending_not = pending_or = False
    clauses = _join_synonym_phrases(clauses, synonyms)[:MAX_CLAUSES]
    for clause in clauses:
        _expand(clause, synonyms)
    return clauses


def _clause(kind: str, value: str) -> Clause | None:
    if kind == "PHRASE":
        words = _words(value)
        if not words:
            return None
        return Clause([Alternative(words)], source=f'"{" ".join(words)}"')
    negated = value.startswith("-")
    raw = value.lstrip("-")
    prefix = raw.endswith("*")
    core = raw.replace("*", "")
    words = _words(core)
    if not words:
        return None
    if prefix and len(words) == 1 and len(words[0]) >= MIN_PREFIX:
        return Clause([Alternative(words, prefix=True)], negated=negated, source=raw)
    # "a*" and "*x*" are read as the plain words: too short to expand safely.
    return Clause([Alternative(words)], negated=negated, source=core)


def _plain_word(clause: Clause) -> str | None:
    if clause.negated or len(clause.alternatives) != 1:
        return None
    alt = clause.alternatives[0]
    if alt.prefix or clause.source.startswith('"'):
        return None
    return " ".join(alt.words)


def _join_synonym_phrases(clauses: list[Clause], synonyms: SynonymTable) -> list[Clause]:
    """Greedily merge runs of plain words that form a table entry ("free air")."""
    out: list[Clause] = []
    i = 0
    while i < len(clauses):
        merged = False
        for n in range(min(synonyms.longest, len(clauses) - i), 1, -1):
            run = [_plain_word(c) for c in clauses[i : i + n]]
            if any(w is None for w in run):
                continue
            key = " ".join(w for w in run if w)
            if key in synonyms.by_term:
                out.append(Clause([Alternative(key.split())], source=key))
                i += n
                merged = True
                break
        if not merged:
            out.append(clauses[i])
            i += 1
    return out


def _expand(clause: Clause, synonyms: SynonymTable) -> None:
    extra: list[Alternative] = []
    seen = {" ".join(a.words) for a in clause.alternatives}
    for alt in clause.alternatives:
        if alt.prefix:
            continue
        for variant in sorted(synonyms.by_term.get(" ".join(alt.words), ())):
            if variant not in seen:
                seen.add(variant)
                extra.append(Alternative(variant.split(), typed=False))
    clause.alternatives.extend(extra)
