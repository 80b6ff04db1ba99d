"""The case index: synonyms, suggestions, safe highlights, permissions, upkeep, bad input."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.search import CaseDocument, IndexBusy, SearchIndex, SearchScope
from tests.search.conftest import make_case

PUBLIC = SearchScope()
Case = Callable[..., CaseDocument]


def _ids(index: SearchIndex, text: str, scope: SearchScope = PUBLIC, **kw: object) -> set[int]:
    return {h.case_id for h in index.search(text, scope, **kw).hits}  # type: ignore[arg-type]


def test_abbreviation_and_spelling_variants_find_the_same_case(
    index: SearchIndex, case: Case
) -> None:
    ptx = case(findings="Large right PTX with mediastinal shift.", title="Chest trauma")
    sah = case(
        title="Thunderclap headache",
        findings="Subarachnoid haemorrhage in the basal cisterns.",
        diagnosis="Aneurysmal bleed",
    )
    oedema = case(title="Stroke", findings="Vasogenic edema around the lesion.")
    index.upsert([ptx, sah, oedema])
    for text in ("PTX", "pneumothorax", "PNEUMOTHORAX", "ptx OR bulla"):
        assert ptx.case_id in _ids(index, text), text
    for text in ("SAH", "subarachnoid hemorrhage", "subarachnoid haemorrhage", '"SAH"'):
        assert _ids(index, text) == {sah.case_id}, text
    assert _ids(index, "oedema") == _ids(index, "edema") == {oedema.case_id}
    result = index.search("ptx", PUBLIC)
    assert "pneumothorax" in result.expanded_terms


def test_misspelling_gets_a_suggestion(index: SearchIndex, case: Case) -> None:
    index.upsert([case(), case(title="Meningioma with dural tail")])
    result = index.search("pneumothroax", PUBLIC)
    assert result.total == 0
    assert result.suggestion == "pneumothorax"
    assert index.search("menigioma dural", PUBLIC).suggestion == "meningioma dural"
    assert index.search("pneumothorax", PUBLIC).suggestion is None


def test_highlights_escape_markup_from_the_case(index: SearchIndex, case: Case) -> None:
    evil = case(findings='<script>alert("x")</script> pneumothorax <b onclick=1>here</b> & more')
    index.upsert([evil])
    (hit,) = index.search("pneumothorax", PUBLIC).hits
    assert "<script" not in hit.highlights and "<b" not in hit.highlights
    assert "&lt;script&gt;" in hit.highlights
    assert "<mark>pneumothorax</mark>" in hit.highlights
    stripped = hit.highlights.replace("<mark>", "").replace("</mark>", "")
    assert "<" not in stripped and ">" not in stripped


@pytest.fixture
def two_hospitals(index: SearchIndex, case: Case) -> dict[str, CaseDocument]:
    cases = {
        "public": case(institution_id=1, institution_name="Hillside"),
        "mine": case(
            visibility="institution",
            institution_id=1,
            institution_name="Hillside",
            modality=["CT"],
            tags=["hillside-only"],
        ),
        "theirs": case(
            visibility="institution",
            institution_id=2,
            institution_name="Secret General",
            modality=["MR"],
            tags=["secret-tag"],
            author_ids=[20],
            author_names=["Dr Secret"],
        ),
        "private": case(
            visibility="private",
            institution_id=2,
            institution_name="Secret General",
            author_ids=[21],
            author_names=["Dr Private"],
            modality=["US"],
        ),
    }
    index.upsert(cases.values())
    return cases


@pytest.mark.parametrize(
    ("scope", "visible"),
    [
        (SearchScope(), {"public"}),
        (SearchScope(institution_ids=frozenset({1})), {"public", "mine"}),
        (SearchScope(institution_ids=frozenset({2})), {"public", "theirs"}),
        (SearchScope(author_id=21), {"public", "private"}),
        (SearchScope(everything=True), {"public", "mine", "theirs", "private"}),
    ],
)
@pytest.mark.parametrize("text", ["pneumothorax", "", "ptx OR apex"])
def test_permission_filter_covers_results_and_facet_counts(
    index: SearchIndex,
    two_hospitals: dict[str, CaseDocument],
    scope: SearchScope,
    visible: set[str],
    text: str,
) -> None:
    result = index.search(text, scope, per_page=100)
    assert {h.case_id for h in result.hits} == {two_hospitals[k].case_id for k in visible}
    assert result.total == len(visible)
    counted = {name: dict(pairs) for name, pairs in result.facets.items()}
    assert sum(counted["body_region"].values()) == len(visible)
    hidden = set(two_hospitals) - visible
    for key in hidden:
        doc = two_hospitals[key]
        for value in doc.tags + doc.author_names:
            if all(
                value not in two_hospitals[k].tags + two_hospitals[k].author_names for k in visible
            ):
                assert value not in counted["tags"] and value not in counted["author"]
    if "theirs" not in visible and "private" not in visible:
        assert "Secret General" not in counted["institution"]
    # a facet filter cannot reach a hidden case either
    assert index.search(text, scope, filters={"tags": ["secret-tag"]}).total == (
        1 if "theirs" in visible else 0
    )


def test_facet_filter_sort_and_paging(index: SearchIndex, case: Case) -> None:
    docs = [
        case(
            modality=["CT"] if i % 2 else ["CR"],
            published_at=datetime(2026, 1, 1 + i, tzinfo=UTC),
        )
        for i in range(7)
    ]
    index.upsert(docs)
    result = index.search("pneumothorax", PUBLIC, filters={"modality": ["CT"]}, per_page=2)
    assert result.total == 3 and len(result.hits) == 2
    assert dict(result.facets["modality"]) == {"CT": 3}
    newest = index.search("pneumothorax", PUBLIC, sort="date", per_page=3, page=2)
    assert [h.case_id for h in newest.hits] == [d.case_id for d in docs[3::-1][:3]]
    beyond = index.search("pneumothorax", PUBLIC, page=99)
    assert beyond.hits == [] and beyond.total == 7


BAD_INPUT = [
    "AND OR NOT AND OR",
    '"unbalanced quote',
    "((( [ { unbalanced",
    "pneumothorax" * 1000,
    "x " * 5000,
    "*",
    "a*",
    "p*",
    "nosuchfield:pneumothorax",
    "title:[a TO z]",
    "'; DROP TABLE cases; --",
    "1' OR '1'='1",
    "\x00\x01\x1b[2J\x7f pneumothorax",
    "NOT",
    "-",
    "pneumothorax~2 apex^3",
    "\u202eRTL \ud83d\ude00 emoji",
    "",
]


@pytest.mark.parametrize("text", BAD_INPUT)
def test_bad_input_never_raises(index: SearchIndex, case: Case, text: str) -> None:
    index.upsert([case(), case(title="Apex bulla")])
    result = index.search(text, PUBLIC)
    assert result.total >= 0
    assert len(result.query) <= 500


def test_prefix_expansion_is_capped(index: SearchIndex, case: Case) -> None:
    index.upsert([case(findings=" ".join(f"pneumo{i:03d}x" for i in range(300)))])
    result = index.search("pneumo*", PUBLIC)
    assert result.total == 1


def test_reconcile_repairs_missing_stale_and_extra_docs(index: SearchIndex, case: Case) -> None:
    a, b, c = case(), case(), case()
    index.upsert([a, b, c])
    # b is missing from the index, c is stale, and x was unpublished in the database.
    index.delete([b.case_id])
    db = {
        a.case_id: a,
        b.case_id: b,
        c.case_id: make_case(case_id=c.case_id, version=2, title="Renamed tension case"),
    }
    extra = case()
    index.upsert([extra])
    upserted, deleted = index.reconcile(
        {k: v.version for k, v in db.items()}, lambda ids: [db[i] for i in ids]
    )
    assert (upserted, deleted) == (2, 1)
    assert index.versions() == {a.case_id: 1, b.case_id: 1, c.case_id: 2}
    assert _ids(index, "renamed tension") == {c.case_id}
    assert index.reconcile({k: v.version for k, v in db.items()}, lambda ids: []) == (0, 0)


def test_rebuild_replaces_everything(index: SearchIndex, case: Case) -> None:
    index.upsert([case(), case()])
    keep = case(title="Only one left")
    assert index.rebuild([keep]) == 1
    assert set(index.versions()) == {keep.case_id}


def test_searcher_sees_another_writers_commit(tmp_path: Path, case: Case) -> None:
    reader = SearchIndex(tmp_path / "ix")
    writer = SearchIndex(tmp_path / "ix")
    assert reader.search("pneumothorax", PUBLIC).total == 0
    writer.upsert([case()])
    assert reader.search("pneumothorax", PUBLIC).total == 1


def _index_batch(path: str, start: int, count: int) -> None:
    ix = SearchIndex(Path(path), writer_timeout=20.0)
    for i in range(start, start + count, 5):
        ix.upsert(make_case(case_id=j, title=f"Case {j}") for j in range(i, i + 5))


def test_two_processes_indexing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared"
    SearchIndex(path)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_index_batch, args=(str(path), start, 40)) for start in (1, 1001)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    got = SearchIndex(path).versions()
    assert set(got) == set(range(1, 41)) | set(range(1001, 1041))


def test_writer_timeout_raises_index_busy(tmp_path: Path, case: Case) -> None:
    ix = SearchIndex(tmp_path / "busy", writer_timeout=0.2)
    lock = ix._ix.lock("WRITELOCK")
    assert lock.acquire()
    try:
        with pytest.raises(IndexBusy):
            ix.upsert([case()])
    finally:
        lock.release()
    ix.upsert([case()])


def test_searchers_are_reused_across_threads_and_refreshed(index: SearchIndex, case: Case) -> None:
    import threading

    index.upsert([case()])
    totals: list[int] = []

    def run() -> None:
        totals.append(index.search("pneumothorax", PUBLIC).total)

    for _ in range(3):  # one thread per request, as the web server does
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    assert totals == [1, 1, 1]
    assert len(index._pool) == 1  # the same view served all three threads
    pooled = index._pool[0]
    index.upsert([case()])
    assert index.search("pneumothorax", PUBLIC).total == 2
    assert index._pool and index._pool[0] is not pooled  # replaced after the commit
