"""Search of published cases: what is indexed, who sees what, and keeping the index true.

The whoosh index (app/search) is derived data in ``DATA_DIR/index``:

* :func:`case_changed` is called by the cases service on every change of a case (save,
  publish, unpublish, delete). It collects the id on the session; after the commit the
  case is read again and upserted, or deleted from the index if it is no longer
  published (drafts are never in search). A rollback drops the ids.
* :func:`reconcile_index` makes the index match the database (startup, and lazily once
  per web process), so a crash between a commit and its index update loses nothing;
  :func:`rebuild_index` is ``teachfile reindex``.
* :func:`scope_for` turns the reader into the index's permission filter, the same rule
  as :func:`app.services.access.readable_cases`, applied inside the query so that counts,
  facets and pages never reveal a case the reader may not see.

One :class:`~app.search.SearchIndex` per process and database engine (:func:`attach`);
writers wait a bounded time for whoosh's lock, readers never wait.
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from weakref import WeakKeyDictionary

from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker

from app.db import after_commit
from app.markup import plain_text
from app.models import Case, CaseAuthor, CaseStatus, Role, User
from app.search import CaseDocument, IndexBusy, SearchIndex, SearchResult, SearchScope
from app.search import schema as search_schema
from app.search.query import MAX_QUERY_CHARS

log = logging.getLogger(__name__)

INDEX_DIR = "index"
WRITER_TIMEOUT = 5.0  # seconds a writer waits for another process's commit
LAZY_RECONCILE_LIMIT = 500  # a web request repairs at most this many cases itself
LOAD_BATCH = 500

# Query arguments a reader may filter by -> facet field of the index.
FILTERS = {
    "modality": "modality",
    "body_region": "body_region",
    "tag": "tags",
    "difficulty": "difficulty",
    "audience": "audience",
    "certainty": "certainty",
}
MAX_FILTER_VALUES = 10
MAX_FILTER_CHARS = 80

PENDING = "teachfile.search.pending"


# -- one index per process and database -----------------------------------------------


@dataclass
class IndexHolder:
    """The process's index for one data directory, opened on first use."""

    path: Path
    writer_timeout: float = WRITER_TIMEOUT
    reconciled: bool = False
    _index: SearchIndex | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self) -> SearchIndex:
        if self._index is None:
            with self.lock:
                if self._index is None:
                    self._index = SearchIndex(self.path, writer_timeout=self.writer_timeout)
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


_holders: WeakKeyDictionary[Engine, IndexHolder] = WeakKeyDictionary()
_holders_lock = threading.Lock()


def attach(engine: Engine, data_dir: str | Path) -> IndexHolder:
    """Register (once) the index of ``data_dir`` for sessions bound to ``engine``."""
    path = Path(data_dir) / INDEX_DIR
    with _holders_lock:
        holder = _holders.get(engine)
        if holder is None or holder.path != path:
            holder = IndexHolder(path)
            _holders[engine] = holder
        return holder


def _engine(bind: Session | sessionmaker[Session] | Engine) -> Engine:
    if isinstance(bind, Engine):
        return bind
    found = bind.get_bind() if isinstance(bind, Session) else bind.kw["bind"]
    if not isinstance(found, Engine):
        found = found.engine
    return found


def holder_for(bind: Session | sessionmaker[Session] | Engine) -> IndexHolder | None:
    """The index registered for this session's engine, or None (nothing attached)."""
    return _holders.get(_engine(bind))


def index_for(bind: Session | sessionmaker[Session] | Engine) -> SearchIndex:
    holder = holder_for(bind)
    if holder is None:
        raise RuntimeError("no search index attached to this database (call attach)")
    return holder.get()


# -- what is indexed ----------------------------------------------------------------------


def version_of(case: Case) -> int:
    """A fingerprint of what the index depends on beyond the text.

    ``revision`` changes on every save; visibility, institution and the publication
    date may change without a save (publish, unpublish, re-publish), so they are part
    of it too. Reconcile re-indexes every case whose fingerprint differs.
    """
    return _fingerprint(
        case.revision, case.visibility, case.institution_id, case.published_at, case.updated_at
    )


def _fingerprint(
    revision: int,
    visibility: Any,
    institution_id: int | None,
    published_at: datetime | None,
    updated_at: datetime | None,
) -> int:
    def stamp(dt: datetime | None) -> str:
        if dt is None:
            return ""
        return f"{(dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp():.3f}"

    key = f"{revision}|{getattr(visibility, 'value', visibility)}|{institution_id}"
    key += f"|{stamp(published_at)}|{stamp(updated_at)}"
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def document_for(case: Case) -> CaseDocument:
    """The index document of a published case (Markdown sections as plain text)."""
    diagnosis = "\n".join(
        part for part in (case.diagnosis, plain_text(case.diagnosis_text)) if part
    )
    authors = sorted(case.authors, key=lambda a: a.user_id)
    return CaseDocument(
        case_id=case.id,
        version=version_of(case),
        slug=case.slug,
        title=case.title,
        history=plain_text(case.history),
        findings=plain_text(case.findings),
        diagnosis=diagnosis,
        differential=plain_text(case.differential),
        discussion=plain_text(case.discussion),
        teaching_points=plain_text(case.teaching_points),
        modality=case.label_values("modality"),
        body_region=case.label_values("body_region"),
        tags=case.label_values("tag"),
        difficulty=case.difficulty or "",
        audience=case.label_values("audience"),
        certainty=case.certainty or "",
        visibility=case.visibility.value,
        institution_id=case.institution_id,
        institution_name=case.institution.name if case.institution else "",
        author_ids=[a.user_id for a in authors],
        author_names=[a.user.display_name for a in authors if a.user is not None],
        published_at=case.published_at or case.updated_at,
    )


def _published(session: Session, ids: Iterable[int]) -> list[Case]:
    stmt = (
        select(Case)
        .where(Case.id.in_(list(ids)), Case.status == CaseStatus.PUBLISHED)
        .options(
            selectinload(Case.labels),
            selectinload(Case.authors).selectinload(CaseAuthor.user),
            selectinload(Case.institution),
        )
    )
    return list(session.scalars(stmt))


def load_documents(session: Session, ids: Iterable[int]) -> list[CaseDocument]:
    """Documents for those of ``ids`` that are published (others are left out)."""
    wanted = list(dict.fromkeys(ids))
    docs: list[CaseDocument] = []
    for start in range(0, len(wanted), LOAD_BATCH):
        docs.extend(
            document_for(c) for c in _published(session, wanted[start : start + LOAD_BATCH])
        )
    return docs


def published_versions(session: Session) -> dict[int, int]:
    """case id -> fingerprint of every published case (one narrow query)."""
    rows = session.execute(
        select(
            Case.id,
            Case.revision,
            Case.visibility,
            Case.institution_id,
            Case.published_at,
            Case.updated_at,
        ).where(Case.status == CaseStatus.PUBLISHED)
    )
    return {row[0]: _fingerprint(*row[1:]) for row in rows}


# -- upkeep --------------------------------------------------------------------------------


def case_changed(session: Session, case_id: int) -> None:
    """Note that a case changed in this transaction; the index follows after the commit.

    Call it for every save, publish, unpublish, visibility change and delete. Nothing
    happens on rollback; if the process dies after the commit, reconcile repairs it.
    """
    pending: set[int] | None = session.info.get(PENDING)
    if pending is None:
        pending = session.info[PENDING] = set()
        engine = _engine(session)
        after_commit(session, lambda: _apply_pending(session, engine))
    pending.add(int(case_id))


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)


def _apply_pending(session: Session, engine: Engine) -> None:
    ids = session.info.pop(PENDING, None)
    if ids:
        update_cases(engine, ids)


def update_cases(bind: Session | sessionmaker[Session] | Engine, ids: Iterable[int]) -> None:
    """Bring these cases in the index up to date with the database (committed state)."""
    holder = holder_for(bind)
    if holder is None:
        log.warning("search index not attached; reconcile will index the change")
        return
    wanted = set(ids)
    with Session(_engine(bind)) as reader:
        docs = load_documents(reader, wanted)
    gone = wanted - {d.case_id for d in docs}
    try:
        holder.get().update(docs, gone)
    except Exception:
        # The commit stands; this process's next search reconciles (bounded), and so
        # does the next start.
        holder.reconciled = False
        raise


def reconcile_index(
    maker: sessionmaker[Session], data_dir: str | Path, *, limit: int | None = None
) -> tuple[int, int]:
    """Make the index match the database; returns (upserted, deleted).

    With ``limit``, does nothing (and returns (-1, -1)) when more than ``limit`` cases
    differ: a web request should not index a whole library; startup and
    ``teachfile reindex`` do that.
    """
    holder = attach(_engine(maker), data_dir)
    result = _reconcile(maker, holder.get(), limit)
    holder.reconciled = True
    return result


def _reconcile(
    maker: sessionmaker[Session], index: SearchIndex, limit: int | None
) -> tuple[int, int]:
    with maker() as session:
        expected = published_versions(session)
        have = index.versions()
        stale = sorted(cid for cid, ver in expected.items() if have.get(cid) != ver)
        gone = sorted(cid for cid in have if cid not in expected)
        if limit is not None and len(stale) + len(gone) > limit:
            log.warning(
                "search index differs in %d cases: run teachfile reindex", len(stale) + len(gone)
            )
            return -1, -1
        upserted = 0
        for start in range(0, len(stale), LOAD_BATCH):
            docs = load_documents(session, stale[start : start + LOAD_BATCH])
            index.update(docs, [])
            upserted += len(docs)
            session.expunge_all()
        index.update([], gone)
    return upserted, len(gone)


def rebuild_index(maker: sessionmaker[Session], data_dir: str | Path) -> int:
    """Index every published case from scratch (``teachfile reindex``); returns how many."""
    index = attach(_engine(maker), data_dir).get()
    with maker() as session:
        ids = list(
            session.scalars(
                select(Case.id).where(Case.status == CaseStatus.PUBLISHED).order_by(Case.id)
            )
        )

        def documents() -> Iterator[CaseDocument]:
            for start in range(0, len(ids), LOAD_BATCH):
                yield from load_documents(session, ids[start : start + LOAD_BATCH])
                session.expunge_all()

        return index.rebuild(documents())


# -- reading --------------------------------------------------------------------------------


def scope_for(actor: User | None) -> SearchScope:
    """The reader's permission filter: :func:`app.services.access.readable_cases` for the
    index (published cases only are indexed): public cases; institution cases of the
    reader's own institution; cases the reader authored; admins everything."""
    if actor is None or not actor.is_active:
        return SearchScope(public=True)
    if actor.role is Role.ADMIN:
        return SearchScope(everything=True)
    institutions = frozenset({actor.institution_id}) if actor.institution_id else frozenset()
    return SearchScope(public=True, institution_ids=institutions, author_id=actor.id)


@dataclass(frozen=True)
class SearchPage:
    """What the page and the API show: the result plus notes for the reader."""

    result: SearchResult
    filters: dict[str, list[str]]
    sort: str
    notes: list[str]


def clean_filters(args: dict[str, list[str]]) -> dict[str, list[str]]:
    """Only known filters, bounded in number and length, empty values dropped."""
    out: dict[str, list[str]] = {}
    for name in FILTERS:
        values = [v.strip()[:MAX_FILTER_CHARS] for v in args.get(name, [])[:MAX_FILTER_VALUES]]
        values = list(dict.fromkeys(v for v in values if v and v.isprintable()))
        if values:
            out[name] = values
    return out


def search_cases(
    session: Session,
    actor: User | None,
    text: str,
    *,
    filters: dict[str, list[str]] | None = None,
    sort: str = "relevance",
    page: int = 1,
    per_page: int = 20,
) -> SearchPage:
    """Search the cases ``actor`` may read; never raises on odd input."""
    holder = holder_for(session)
    if holder is None:
        raise RuntimeError("no search index attached to this database (call attach)")
    if not holder.reconciled:
        _lazy_reconcile(session, holder)
    notes: list[str] = []
    if len(text) > MAX_QUERY_CHARS:
        notes.append(f"Only the first {MAX_QUERY_CHARS} characters of the query were used.")
    chosen = clean_filters(filters or {})
    order: Literal["relevance", "date"] = "date" if sort == "date" else "relevance"
    result = holder.get().search(
        text,
        scope_for(actor),
        filters={FILTERS[k]: v for k, v in chosen.items()},
        sort=order,
        page=page,
        per_page=per_page,
    )
    if text.strip() and not result.query:
        notes.append("The query had no words to search for; showing every case you may see.")
    return SearchPage(result=result, filters=chosen, sort=order, notes=notes)


def _lazy_reconcile(session: Session, holder: IndexHolder) -> None:
    """Once per process: repair a small difference (a crash after a commit) in-line."""
    with holder.lock:
        if holder.reconciled:
            return
        holder.reconciled = True  # one attempt per process, even if it fails
    try:
        _reconcile(sessionmaker(_engine(session)), holder.get(), LAZY_RECONCILE_LIMIT)
    except IndexBusy:
        log.warning("search index busy; reconcile left to the next start")


FACET_NAMES = {v: k for k, v in FILTERS.items()}
FACETS_SHOWN = tuple(f for f in search_schema.FACETS if f in FACET_NAMES)
