"""The case index: upkeep (upsert, delete, rebuild, reconcile) and search (issue 8).

Several processes (web workers, the DICOM receiver, the CLI) share one index directory.
Writers take whoosh's file lock with a bounded wait and raise :class:`IndexBusy` after it;
readers never wait: each thread keeps a searcher and refreshes it when a commit lands.

Search work is split so that the expensive parts are paid once per index segment rather
than once per query: the ``meta`` column (permission fields, facet values, date, version)
is read once per segment and kept, and the set of documents a scope may see is kept per
index generation. A query then costs one pass over its posting lists to find the
matching set, set intersections for permissions and facet filters, a ``Counter`` over the
matches for facet counts, and a top-k scoring pass restricted to that set.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import html
import itertools
import math
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from whoosh import index as whoosh_index
from whoosh import query as Q
from whoosh import writing
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher
from whoosh.index import LockError
from whoosh.matching.wrappers import FilterMatcher
from whoosh.util.numeric import byte_to_length

from app.errors import TeachfileError
from app.search import schema as S
from app.search.query import MIN_PREFIX, Clause, clean, parse
from app.search.synonyms import SynonymTable, load_synonyms

MAX_PER_PAGE = 100
MAX_PAGE = 500
MAX_PREFIX_TERMS = 40  # expansions of one word* (the most frequent ones win)
PREFIX_SCAN = 400  # lexicon entries looked at for one word*
SNIPPET_CHARS = 220
MAX_POOLED_VIEWS = 8  # searchers kept open between requests
BM25_K1 = 1.2
BM25_B = 0.75
TITLE_BOOST = 0.5  # a term in the title adds half its content score again


class IndexBusy(TeachfileError):
    """Another process held the index writer longer than the writer timeout."""

    status = 503


@dataclass(frozen=True)
class CaseDocument:
    """One published case as the service layer hands it to the index."""

    case_id: int
    version: int
    slug: str
    title: str
    history: str
    findings: str
    diagnosis: str
    differential: str
    discussion: str
    teaching_points: str
    modality: list[str]
    body_region: list[str]
    tags: list[str]
    difficulty: str
    audience: list[str]
    certainty: str
    visibility: str
    institution_id: int | None
    institution_name: str
    author_ids: list[int]
    author_names: list[str]
    published_at: datetime


@dataclass(frozen=True)
class SearchScope:
    """Who is reading; built by the access service (the one permission rule)."""

    public: bool = True
    institution_ids: frozenset[int] = frozenset()
    author_id: int | None = None
    everything: bool = False


@dataclass(frozen=True)
class SearchHit:
    """One row of the result list; ``highlights`` is safe HTML (escaped text, <mark>)."""

    case_id: int
    slug: str
    title: str
    score: float
    highlights: str
    modality: list[str]
    body_region: list[str]
    difficulty: str
    published_at: datetime


@dataclass(frozen=True)
class SearchResult:
    """One page of results with facet counts over every match the reader may see."""

    hits: list[SearchHit]
    total: int
    page: int
    per_page: int
    facets: dict[str, list[tuple[str, int]]]
    suggestion: str | None
    query: str
    expanded_terms: list[str] = field(default_factory=list)


Meta = tuple[Any, ...]


def _facet_values(doc: CaseDocument) -> dict[str, list[str]]:
    inst = [doc.institution_name] if doc.institution_name else []
    values = {
        "modality": doc.modality,
        "body_region": doc.body_region,
        "tags": doc.tags,
        "difficulty": [doc.difficulty] if doc.difficulty else [],
        "audience": doc.audience,
        "certainty": [doc.certainty] if doc.certainty else [],
        "institution": inst,
        "author": doc.author_names,
    }
    # Commas separate KEYWORD values; a value with a comma would split in two.
    return {
        k: list(dict.fromkeys(v.replace(",", " ").strip() for v in vs if v.strip()))
        for k, vs in values.items()
    }


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _fields(doc: CaseDocument) -> dict[str, Any]:
    """The whoosh fields of one case."""
    sections = {name: getattr(doc, name) or "" for name in S.SECTIONS}
    text = "\n".join(sections[name] for name in S.SECTIONS if sections[name])
    facets = _facet_values(doc)
    terms = S.analyse(text)
    meta: Meta = (
        doc.case_id,
        doc.version,
        _aware(doc.published_at).timestamp(),
        doc.visibility,
        doc.institution_id,
        tuple(doc.author_ids),
        tuple(tuple(facets[name]) for name in S.FACETS),
    )
    stored = {
        "slug": doc.slug,
        "title": doc.title,
        "modality": list(doc.modality),
        "body_region": list(doc.body_region),
        "difficulty": doc.difficulty,
        "published": meta[2],
        "text": text,
    }
    out: dict[str, Any] = {
        "case_id": str(doc.case_id),
        "content": terms,
        "pairs": S.pairs(terms),
        "visibility": doc.visibility,
        "institution_id": str(doc.institution_id) if doc.institution_id is not None else "",
        "author_id": ",".join(str(a) for a in doc.author_ids),
        "meta": meta,
        "stored": stored,
    }
    out.update({k: S.analyse(sections[k]) for k in S.FIELDED_SECTIONS if sections[k]})
    out.update({k: ",".join(v) for k, v in facets.items() if v})
    return out


class _Segments:
    """Per-segment data that never changes once a segment is written (keyed by its id)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._meta: dict[str, list[Meta | None]] = {}
        self._spell: dict[str, dict[str, int]] = {}
        self._norms: dict[tuple[str, str], Sequence[float]] = {}
        self._facets: dict[str, list[list[int]]] = {}
        # per facet: code -> tuple of values, and back (grows with distinct combinations)
        self.combos: list[list[tuple[str, ...]]] = [[] for _ in S.FACETS]
        self._codes: list[dict[tuple[str, ...], int]] = [{} for _ in S.FACETS]

    def meta(self, leaf: Any) -> list[Meta | None]:
        key = leaf.segment().segment_id()
        cached = self._meta.get(key)
        if cached is None:
            cached = list(leaf.column_reader("meta"))
            with self._lock:
                self._meta[key] = cached
        return cached

    def spell(self, leaf: Any) -> dict[str, int]:
        key = leaf.segment().segment_id()
        cached = self._spell.get(key)
        if cached is None:
            cached = {}
            for text, info in leaf.iter_field("content"):
                term = text.decode("utf-8")
                if len(term) > 2 and not term.isdigit():
                    cached[term] = info.doc_frequency()
            with self._lock:
                self._spell[key] = cached
        return cached

    def facets(self, leaf: Any) -> list[list[int]]:
        """Per facet, each document's combination of values as a small integer (see
        :attr:`combos`), so that counting is of integers, at C speed."""
        key = leaf.segment().segment_id()
        cached = self._facets.get(key)
        if cached is None:
            rows = [m[6] if m is not None else None for m in self.meta(leaf)]
            with self._lock:
                cached = [
                    [self._code(i, row[i] if row else ()) for row in rows]
                    for i in range(len(S.FACETS))
                ]
                self._facets[key] = cached
        return cached

    def _code(self, facet: int, values: tuple[str, ...]) -> int:
        codes = self._codes[facet]
        code = codes.get(values)
        if code is None:
            code = codes[values] = len(self.combos[facet])
            self.combos[facet].append(values)
        return code

    def norms(self, leaf: Any, fieldname: str) -> Sequence[float]:
        """BM25 length normalisation ``K1 * (1 - B + B * length / average)`` per document."""
        key = leaf.segment().segment_id()
        cached = self._norms.get((key, fieldname))
        if cached is None:
            count = leaf.doc_count_all() or 1
            average = (leaf.field_length(fieldname) / count) or 1.0
            lengths: Sequence[int | None]
            column = f"_{fieldname}_len"
            perdoc = getattr(leaf, "_perdoc", None)
            if perdoc is not None and perdoc.has_column(column):
                table = _FieldLengths._TABLE
                lengths = [table[b] for b in perdoc.column_reader(column, LENGTHS_COLUMN)]
            else:
                lengths = [leaf.doc_field_length(n, fieldname, 0) for n in range(count)]
            cached = [BM25_K1 * (1 - BM25_B + BM25_B * (n or 0) / average) for n in lengths]
            with self._lock:
                self._norms[(key, fieldname)] = cached
        return cached

    def forget(self, live: set[str]) -> None:
        """Drop segments merged away (called after refresh)."""
        with self._lock:
            for norm_key in [k for k in self._norms if k[0] not in live]:
                del self._norms[norm_key]
            for store in (self._meta, self._spell, self._facets):
                for key in [k for k in store if k not in live]:
                    del store[key]


class _View:
    """One searcher plus what is derived from it; replaced when the index changes."""

    def __init__(self, searcher: Any, segments: _Segments) -> None:
        self.searcher = searcher
        self.reader = searcher.reader()
        self.segments = segments
        metas: list[Meta | None] = []
        facets: list[list[int]] = [[] for _ in S.FACETS]
        live: list[int] = []
        ids: set[str] = set()
        for leaf, base in self.reader.leaf_readers():
            if leaf.segment() is None:  # an empty index has no segments
                continue
            ids.add(leaf.segment().segment_id())
            leaf_meta = segments.meta(leaf)
            metas.extend(leaf_meta)
            for column, values in zip(facets, segments.facets(leaf), strict=True):
                column.extend(values)
            if leaf.has_deletions():
                live.extend(base + n for n in leaf.all_doc_ids())
            else:
                live.extend(range(base, base + len(leaf_meta)))
        segments.forget(ids)
        self.metas = metas
        self.facets = facets
        self.live = frozenset(live)
        self._allowed: dict[SearchScope, frozenset[int]] = {}
        self._termsets: OrderedDict[tuple[str, str], frozenset[int]] = OrderedDict()
        self._spell: dict[str, list[tuple[str, int]]] | None = None
        self._scores: OrderedDict[tuple[str, str], dict[int, float]] = OrderedDict()
        self.lock = threading.Lock()

    def allowed(self, scope: SearchScope) -> frozenset[int]:
        """Documents the scope may see (cached per generation: ~15 ms at 100,000 cases)."""
        found = self._allowed.get(scope)
        if found is not None:
            return found
        metas = self.metas
        if scope.everything:
            found = self.live
        else:
            insts = scope.institution_ids
            author = scope.author_id
            keep = []
            for n in self.live:
                m = metas[n]
                if m is None:
                    continue
                vis = m[3]
                if (
                    (vis == "public" and scope.public)
                    or (vis == "institution" and m[4] in insts)
                    or (author is not None and author in m[5])
                ):
                    keep.append(n)
            found = frozenset(keep)
        with self.lock:
            if len(self._allowed) > 256:
                self._allowed.clear()
            self._allowed[scope] = found
        return found

    def termset(self, fieldname: str, text: str) -> frozenset[int]:
        """Live documents holding an exact facet value (a small LRU per generation)."""
        key = (fieldname, text)
        found = self._termsets.get(key)
        if found is None:
            found = frozenset(Q.Term(fieldname, text).docs(self.searcher))
            with self.lock:
                self._termsets[key] = found
                while len(self._termsets) > 512:
                    self._termsets.popitem(last=False)
        return found

    def scores(self, fieldname: str, term: str) -> dict[int, float]:
        """BM25 score of every document holding ``term`` (deleted ones included: every
        match is intersected with :meth:`allowed`, which holds live documents only).

        Reads each posting block once (ids and weights as arrays), so a query costs one
        pass over its posting lists: no separate matching and scoring passes.
        """
        key = (fieldname, term)
        found = self._scores.get(key)
        if found is not None:
            return found
        total = self.reader.doc_count_all() or 1
        df = self.reader.doc_frequency(fieldname, term)
        found = {}
        if df:
            idf = math.log(1 + (total - df + 0.5) / (df + 0.5)) * (BM25_K1 + 1)
            for leaf, base in self.reader.leaf_readers():
                if leaf.segment() is None or (fieldname, term) not in leaf:
                    continue
                norms = self.segments.norms(leaf, fieldname)
                for doc, weight in _postings(leaf, fieldname, term):
                    found[base + doc] = idf * weight / (weight + norms[doc])
        with self.lock:
            self._scores[key] = found
            while len(self._scores) > 256:
                self._scores.popitem(last=False)
        return found

    def spell_vocabulary(self) -> dict[str, list[tuple[str, int]]]:
        """Index terms (stems) by first letter, with document frequency (on demand).

        The vocabulary of "did you mean" is the lexicon of ``content``: a separate field
        of unstemmed words added a quarter of all postings to the build.
        """
        if self._spell is None:
            counts: Counter[str] = Counter()
            for leaf, _base in self.reader.leaf_readers():
                if leaf.segment() is None:
                    continue
                counts.update(self.segments.spell(leaf))
            by_letter: dict[str, list[tuple[str, int]]] = {}
            for word, df in counts.items():
                by_letter.setdefault(word[:1], []).append((word, df))
            self._spell = by_letter
        return self._spell


@dataclass
class _Plan:
    """A parsed query as posting lists to read (see ``SearchIndex._plan``)."""

    positive: list[list[list[tuple[str, str]]]] = field(default_factory=list)
    negative: list[list[list[tuple[str, str]]]] = field(default_factory=list)
    nothing: bool = False
    expanded: list[str] = field(default_factory=list)
    stems: set[str] = field(default_factory=set)
    title_terms: set[str] = field(default_factory=set)


def _postings(leaf: Any, fieldname: str, term: str) -> Iterator[tuple[int, float]]:
    """(document, weight) of one term in one segment, a block at a time where possible."""
    matcher = leaf.postings(fieldname, term)
    if isinstance(matcher, FilterMatcher):
        matcher = matcher.child  # deletions are filtered by the caller
    if isinstance(matcher, W3LeafMatcher):
        while matcher.is_active():
            matcher._read_ids()
            matcher._read_weights()
            yield from zip(matcher._ids, matcher._weights, strict=False)
            if matcher._lastblock:
                return
            matcher._next_block()
        return
    while matcher.is_active():
        yield matcher.id(), matcher.weight()
        matcher.next()


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment edit distance, giving up above ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        best = i
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
            best = min(best, v)
        if best > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


class _FieldLengths:
    """Field lengths of the segment being written, read once per field.

    whoosh asks for a document's field length once per posting while it writes the
    posting lists, through a column reader and, for fields without lengths, a
    file-exists check each time: that was a quarter of the build time.
    """

    _TABLE = (None, *(byte_to_length(b) for b in range(1, 256)))

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._lengths: dict[str, Sequence[int | None]] = {}

    def doc_field_length(self, docnum: int, fieldname: str, default: int = 0) -> int | None:
        lengths = self._lengths.get(fieldname)
        if lengths is None:
            column = f"_{fieldname}_len"
            if self._reader.has_column(column):
                reader = self._reader.column_reader(column, LENGTHS_COLUMN)
                table = self._TABLE
                lengths = [table[b] for b in reader]
            else:
                lengths = ()
            self._lengths[fieldname] = lengths
        return lengths[docnum] if lengths else default

    def close(self) -> None:
        self._reader.close()


class _Writer(writing.SegmentWriter):  # type: ignore[misc]
    """whoosh's segment writer with field lengths read once per field (build time)."""

    def per_document_reader(self) -> Any:
        return _FieldLengths(super().per_document_reader())


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """An fcntl lock with a bounded wait (used to create the index exactly once)."""
    with path.open("a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexBusy("The search index is busy; try again shortly.") from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class SearchIndex:
    """The whoosh index of published cases in one directory, shared by processes."""

    def __init__(
        self,
        path: Path,
        *,
        writer_timeout: float = 10.0,
        synonyms: SynonymTable | None = None,
        limitmb: int = 128,
        rebuild_limitmb: int = 2048,
    ) -> None:
        self.path = Path(path)
        self.writer_timeout = writer_timeout
        self.synonyms = synonyms or load_synonyms()
        self.limitmb = limitmb
        # A full rebuild sorts every posting in memory: a pool that spills to disk
        # (whoosh writes and merges runs item by item) tripled the build time at 10,000
        # cases. The pool grows only as large as the library (~2.5 GB at 100,000).
        self.rebuild_limitmb = rebuild_limitmb
        self.path.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.path / "CREATELOCK", writer_timeout):
            if whoosh_index.exists_in(str(self.path)):
                self._ix = whoosh_index.open_dir(str(self.path))
            else:
                self._ix = whoosh_index.create_in(str(self.path), S.build_schema())
        self._segments = _Segments()
        self._pool: list[_View] = []
        self._pool_lock = threading.Lock()
        self._write_gate = threading.Lock()

    # -- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _writer(self, limitmb: int | None = None, **commit: Any) -> Iterator[Any]:
        if not self._write_gate.acquire(timeout=self.writer_timeout):
            raise IndexBusy("The search index is busy; try again shortly.")
        try:
            try:
                writer = _Writer(
                    self._ix,
                    timeout=self.writer_timeout,
                    delay=0.05,
                    limitmb=limitmb or self.limitmb,
                )
            except LockError:
                raise IndexBusy("The search index is busy; try again shortly.") from None
            try:
                yield writer
            except BaseException:
                writer.cancel()
                raise
            writer.commit(**commit)
        finally:
            self._write_gate.release()

    def upsert(self, docs: Iterable[CaseDocument]) -> None:
        """Add or replace cases (by case_id). Raises IndexBusy after writer_timeout."""
        batch = list(docs)
        if not batch:
            return
        with self._writer() as writer:
            for doc in batch:
                writer.update_document(**_fields(doc))

    def delete(self, case_ids: Iterable[int]) -> None:
        """Remove cases (unpublished, deleted, or now draft) from the index."""
        ids = [str(i) for i in case_ids]
        if not ids:
            return
        with self._writer() as writer:
            for case_id in ids:
                writer.delete_by_term("case_id", case_id)

    def update(self, docs: Iterable[CaseDocument], deleted: Iterable[int]) -> None:
        """Upsert ``docs`` and delete ``deleted`` case ids in one commit."""
        batch = list(docs)
        ids = [str(i) for i in deleted]
        if not batch and not ids:
            return
        with self._writer() as writer:
            for doc in batch:
                writer.update_document(**_fields(doc))
            for case_id in ids:
                writer.delete_by_term("case_id", case_id)

    def rebuild(self, docs: Iterable[CaseDocument]) -> int:
        """Replace the whole index with ``docs`` in one commit; returns how many.

        Readers keep their old searcher until the commit lands, then see the new index.
        """
        count = 0
        with self._writer(limitmb=self.rebuild_limitmb, mergetype=writing.CLEAR) as writer:
            seen: set[int] = set()
            for doc in docs:
                if doc.case_id in seen:
                    writer.update_document(**_fields(doc))
                else:
                    writer.add_document(**_fields(doc))
                seen.add(doc.case_id)
                count += 1
        return count

    def optimize(self) -> None:
        """Merge all segments into one (after a big rebuild, for the fastest reads)."""
        with self._writer(optimize=True):
            pass

    def versions(self) -> dict[int, int]:
        """case_id -> version for every live document (for reconcile)."""
        out: dict[int, int] = {}
        with self._borrow() as view:
            for n in view.live:
                m = view.metas[n]
                if m is not None:
                    out[m[0]] = m[1]
        return out

    def reconcile(
        self,
        expected: dict[int, int],
        load: Callable[[list[int]], Iterable[CaseDocument]],
        *,
        batch: int = 500,
    ) -> tuple[int, int]:
        """Make the index match the database: (upserted, deleted).

        ``expected`` maps each published case id to its version; ``load`` returns the
        documents for a list of ids (the service layer reads them from the database).
        """
        have = self.versions()
        stale = sorted(cid for cid, ver in expected.items() if have.get(cid) != ver)
        gone = sorted(cid for cid in have if cid not in expected)
        upserted = 0
        for start in range(0, len(stale), batch):
            docs = list(load(stale[start : start + batch]))
            self.upsert(docs)
            upserted += len(docs)
        self.delete(gone)
        return upserted, len(gone)

    # -- reading ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _borrow(self) -> Iterator[_View]:
        """A view of the newest commit, lent to one thread at a time (readers never block).

        Views are pooled across threads, so a web server that runs each request on a new
        thread still reuses searchers and their per-generation caches; a view whose
        index changed is closed and replaced.
        """
        with self._pool_lock:
            view = self._pool.pop() if self._pool else None
        if view is not None and not view.searcher.up_to_date():
            # Not searcher.refresh(): in whoosh 2.7.5 it reuses the reader of a segment
            # whose deletions changed (stale deletes, seen in the reconcile test) and
            # fails on an empty index. A new searcher only opens files; what is costly
            # per segment (meta, norms, spelling) is cached by segment id and survives.
            view.searcher.close()
            view = None
        if view is None:
            view = _View(self._ix.searcher(), self._segments)
        try:
            yield view
        finally:
            with self._pool_lock:
                keep = len(self._pool) < MAX_POOLED_VIEWS
                if keep:
                    self._pool.append(view)
            if not keep:
                view.searcher.close()

    def close(self) -> None:
        """Close the pooled searchers (views lent out close when returned)."""
        with self._pool_lock:
            views, self._pool = self._pool, []
        for view in views:
            view.searcher.close()

    def search(
        self,
        text: str,
        scope: SearchScope,
        *,
        filters: dict[str, list[str]] | None = None,
        sort: Literal["relevance", "date"] = "relevance",
        page: int = 1,
        per_page: int = 20,
    ) -> SearchResult:
        """Search the cases ``scope`` may see; never raises on odd input.

        An empty query (or one of only stop words) lists every visible case, newest
        first, so the facets work as a browser.
        """
        with self._borrow() as view:
            return self._search(view, text, scope, filters, sort, page, per_page)

    def _search(
        self,
        view: _View,
        text: str,
        scope: SearchScope,
        filters: dict[str, list[str]] | None,
        sort: Literal["relevance", "date"],
        page: int,
        per_page: int,
    ) -> SearchResult:
        page = min(max(int(page), 1), MAX_PAGE)
        per_page = min(max(int(per_page), 1), MAX_PER_PAGE)
        shown = clean(text)
        clauses = parse(shown, self.synonyms)

        base: Sequence[int] | frozenset[int] = view.allowed(scope)
        for name, values in (filters or {}).items():
            if name not in S.FACETS or not values:
                continue
            union: set[int] = set()
            for value in values[:20]:
                union |= view.termset(name, str(value))
            base = base & union if isinstance(base, frozenset) else frozenset(union)

        plan = self._plan(view, clauses)
        allowed = base if isinstance(base, frozenset) else frozenset(base)
        for alternatives in plan.negative:
            for docs in self._clause(view, alternatives):
                allowed = allowed - docs.keys()
        scores: dict[int, float] | None = None
        if plan.nothing:
            scores = {}
        elif plan.positive:
            scores = self._match(view, plan.positive, allowed)
        matched = allowed if scores is None else frozenset(scores)

        facets = self._facets(view, matched)
        start = (page - 1) * per_page
        ranked: list[tuple[float, int]]
        if scores is None or sort == "date":
            metas = view.metas
            newest = heapq.nlargest(
                start + per_page, matched, key=lambda n: (metas[n] or (0, 0, 0.0))[2]
            )
            ranked = [(scores.get(n, 0.0) if scores else 0.0, n) for n in newest[start:]]
        else:
            for term in plan.title_terms:
                for n, score in view.scores("title", term).items():
                    if n in scores:
                        scores[n] += TITLE_BOOST * score
            best = heapq.nlargest(start + per_page, scores.items(), key=lambda kv: (kv[1], -kv[0]))
            ranked = [(score, n) for n, score in best[start:]]

        hits = [self._hit(view, n, score, plan.stems) for score, n in ranked]
        suggestion = self._suggest(view, clauses, shown) if len(matched) < 3 else None
        return SearchResult(
            hits=hits,
            total=len(matched),
            page=page,
            per_page=per_page,
            facets=facets,
            suggestion=suggestion,
            query=shown,
            expanded_terms=plan.expanded,
        )

    def _plan(self, view: _View, clauses: list[Clause]) -> _Plan:
        """What to read for each clause: alternatives, each an AND of (field, term)."""
        plan = _Plan()
        for clause in clauses:
            alternatives: list[list[tuple[str, str]]] = []
            for alt in clause.alternatives:
                if alt.prefix:
                    terms = self._prefix_terms(view, alt.words[0])
                    alternatives.extend([("content", t)] for t in terms)
                    if not clause.negated:
                        plan.stems.update(terms)
                    continue
                terms = S.analyse(" ".join(alt.words))
                if not terms:
                    continue
                if not alt.typed:
                    plan.expanded.append(" ".join(alt.words))
                if not clause.negated:
                    plan.stems.update(terms)
                    if alt.typed:
                        plan.title_terms.update(terms)
                if len(terms) == 1:
                    alternatives.append([("content", terms[0])])
                else:
                    # A phrase is an AND of adjacent pairs: one posting list per pair and
                    # no positions (Phrase over positions was 4x FTS5's time at 10,000).
                    alternatives.append([("pairs", p) for p in S.pairs(terms)])
            if not alternatives:
                if clause.alternatives and clause.alternatives[0].prefix and not clause.negated:
                    plan.nothing = True  # word* with no expansion matches nothing
                continue
            (plan.negative if clause.negated else plan.positive).append(alternatives)
        plan.expanded = list(dict.fromkeys(plan.expanded))
        return plan

    def _clause(
        self, view: _View, alternatives: list[list[tuple[str, str]]]
    ) -> Iterator[dict[int, float]]:
        """Document scores of each alternative of a clause (an AND of terms)."""
        for conjunction in alternatives:
            lists = sorted((view.scores(f, t) for f, t in conjunction), key=len)
            if len(lists) == 1:
                yield lists[0]
                continue
            first, *rest = lists
            found = {n: sc for n, sc in first.items() if all(n in other for other in rest)}
            for other in rest:
                for n in found:
                    found[n] += other[n]
            yield found

    def _match(
        self, view: _View, positive: list[list[list[tuple[str, str]]]], allowed: frozenset[int]
    ) -> dict[int, float]:
        """Scores of the documents in ``allowed`` that satisfy every clause (one pass)."""
        per_clause: list[dict[int, float]] = []
        for alternatives in positive:
            parts = list(self._clause(view, alternatives))
            if len(parts) == 1:
                per_clause.append(parts[0])
                continue
            merged: dict[int, float] = {}
            for docs in parts:  # OR: a document scores its best alternative
                for n, sc in docs.items():
                    if sc > merged.get(n, 0.0):
                        merged[n] = sc
            per_clause.append(merged)
        per_clause.sort(key=len)
        first, *rest = per_clause
        scores = {n: sc for n, sc in first.items() if n in allowed}
        for other in rest:
            scores = {n: sc + other[n] for n, sc in scores.items() if n in other}
        return scores

    def _prefix_terms(self, view: _View, prefix: str) -> list[str]:
        """The most frequent index terms starting with ``prefix`` (bounded)."""
        prefix = S.fold(prefix)
        if len(prefix) < MIN_PREFIX:
            return []
        found = [
            (info.doc_frequency(), text.decode("utf-8"))
            for text, info in itertools.islice(
                view.reader.iter_prefix("content", prefix), PREFIX_SCAN
            )
        ]
        best = heapq.nlargest(MAX_PREFIX_TERMS, found)
        return [text for _df, text in best]

    def _facets(self, view: _View, matched: frozenset[int]) -> dict[str, list[tuple[str, int]]]:
        """Facet counts over the matches (never over cases the reader cannot see)."""
        out: dict[str, list[tuple[str, int]]] = {}
        for i, (name, column) in enumerate(zip(S.FACETS, view.facets, strict=True)):
            # Count each document's combination code in C, then spread the (few
            # distinct) combinations over their values.
            combos = view.segments.combos[i]
            counts: Counter[str] = Counter()
            for code, n in Counter(map(column.__getitem__, matched)).items():
                for value in combos[code]:
                    counts[value] += n
            out[name] = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].lower()))
        return out

    def _hit(self, view: _View, docnum: int, score: float, stems: set[str]) -> SearchHit:
        stored = view.searcher.stored_fields(docnum)["stored"]
        meta = view.metas[docnum]
        case_id = meta[0] if meta else 0
        return SearchHit(
            case_id=case_id,
            slug=stored["slug"],
            title=stored["title"],
            score=score,
            highlights=highlight(stored["text"], stems),
            modality=list(stored["modality"]),
            body_region=list(stored["body_region"]),
            difficulty=stored["difficulty"],
            published_at=datetime.fromtimestamp(stored["published"], tz=UTC),
        )

    def _suggest(self, view: _View, clauses: list[Clause], shown: str) -> str | None:
        """Did you mean: replace words the index does not know by close known words."""
        replaced = shown
        changed = False
        for clause in clauses:
            if clause.negated or len(clause.alternatives) != 1:
                continue
            alt = clause.alternatives[0]
            if alt.prefix:
                continue
            for word in alt.words:
                if len(word) < 4 or word.isdigit() or word in S.STOP_WORDS:
                    continue
                if view.reader.doc_frequency("content", S.stem(word)) > 0:
                    continue
                better = self._closest(view, word)
                if better and better != word:
                    new = _replace_word(replaced, word, better)
                    changed = changed or new != replaced
                    replaced = new
        return replaced if changed else None

    def _closest(self, view: _View, word: str) -> str | None:
        """The known word nearest to ``word`` (compared as stems), as readers write it."""
        limit = 1 if len(word) < 6 else 2
        target = S.stem(word)
        best: tuple[int, int, str] | None = None
        for cand, df in view.spell_vocabulary().get(target[:1], ()):
            if abs(len(cand) - len(target)) > limit:
                continue
            d = _osa_distance(target, cand, limit)
            if d <= limit and (best is None or (d, -df) < best[:2]):
                best = (d, -df, cand)
        return self._surface(view, best[2]) if best else None

    def _surface(self, view: _View, term: str) -> str:
        """A word of the case text whose index term is ``term`` (stems are not words)."""
        for docnum in itertools.islice(Q.Term("content", term).docs(view.searcher), 3):
            text = view.searcher.stored_fields(docnum)["stored"]["text"]
            for start, end, found in S.iter_words(text):
                if found == term:
                    return S.fold(text[start:end])
        return term


def _replace_word(text: str, word: str, better: str) -> str:
    """Replace ``word`` (compared folded) in the reader's text, keeping the rest."""
    out = []
    done = False
    for token in text.split(" "):
        core = token.strip('"()-*')
        if not done and S.fold(core) == word:
            token = token.replace(core, better)
            done = True
        out.append(token)
    return " ".join(out)


def highlight(text: str, stems: set[str], width: int = SNIPPET_CHARS) -> str:
    """An escaped snippet of ``text`` around the densest run of matching words.

    Only our own <mark> tags are markup; everything from the case is escaped.
    """
    spans = [(s, e) for s, e, term in S.iter_words(text) if term and term in stems]
    if not spans:
        snippet = text[:width]
        cut = snippet.rsplit(" ", 1)[0] if len(text) > width else snippet
        return html.escape(" ".join(cut.split())) + ("…" if len(text) > width else "")
    best_i, best_n = 0, 0
    j = 0
    for i, (s, _e) in enumerate(spans):
        while j < len(spans) and spans[j][1] - s <= width - 40:
            j += 1
        if j - i > best_n:
            best_i, best_n = i, j - i
    first = spans[best_i][0]
    start = max(0, first - 40)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > spans[best_i][1] else end
    pieces: list[str] = ["…"] if start else []
    pos = start
    for s, e in spans[best_i:]:
        if s >= end:
            break
        if s < pos:
            continue
        pieces.append(html.escape(text[pos:s]))
        pieces.append("<mark>" + html.escape(text[s : min(e, end)]) + "</mark>")
        pos = min(e, end)
    pieces.append(html.escape(text[pos:end]))
    if end < len(text):
        pieces.append("…")
    return " ".join("".join(pieces).split())
