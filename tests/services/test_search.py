"""The search service: documents, the reader's scope, and keeping the index true (issue 8)."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import get_db, utcnow
from app.models import (
    Case,
    CaseAuthor,
    CaseLabel,
    CaseStatus,
    Institution,
    Role,
    User,
    Visibility,
)
from app.services import search
from app.services.access import readable_cases

_slugs = itertools.count()


@pytest.fixture
def holder(app: Flask) -> Iterator[search.IndexHolder]:
    found = search.holder_for(get_db(app).engine)
    assert found is not None, "the web layer attaches the index when the app is made"
    yield found
    found.close()


def _reconcile(app: Flask) -> tuple[int, int]:
    return search.reconcile_index(get_db(app).sessionmaker, app.config["DATA_DIR"])


def _ids(session: Session, actor: User | None, text: str = "", **kw: Any) -> set[int]:
    page = search.search_cases(session, actor, text, per_page=100, **kw)
    return {hit.case_id for hit in page.result.hits}


def _sql_ids(session: Session, actor: User | None) -> set[int]:
    return set(session.scalars(select(Case.id).where(readable_cases(actor))))


def _plain_case(
    session: Session, author: User, *, title: str, status: str = "published", **fields: Any
) -> Case:
    """A case row without studies (cheap, for tests that need many)."""
    case = Case(
        slug=f"plain-{next(_slugs)}",
        title=title,
        status=CaseStatus(status),
        visibility=Visibility(fields.pop("visibility", "public")),
        institution_id=author.institution_id,
        created_by_id=author.id,
        published_at=utcnow() if status == "published" else None,
        **fields,
    )
    case.authors.append(CaseAuthor(user_id=author.id))
    session.add(case)
    session.commit()
    return case


def test_abbreviation_and_spelling_variants_find_the_same_case(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    ptx = _plain_case(session, author, title="Chest trauma", findings="Large right **PTX**.")
    sah = _plain_case(
        session, author, title="Thunderclap headache", findings="Subarachnoid haemorrhage."
    )
    edema = _plain_case(session, author, title="Stroke", findings="Vasogenic edema.")
    assert _reconcile(app) == (3, 0)
    for text in ("PTX", "pneumothorax", "Pneumothorax"):
        assert _ids(session, None, text) == {ptx.id}, text
    for text in ("SAH", "subarachnoid hemorrhage", "subarachnoid haemorrhage"):
        assert _ids(session, None, text) == {sah.id}, text
    assert _ids(session, None, "oedema") == _ids(session, None, "edema") == {edema.id}
    found = search.search_cases(session, None, "ptx")
    assert "pneumothorax" in found.result.expanded_terms
    assert "**" not in found.result.hits[0].highlights  # Markdown indexed as plain text
    assert search.search_cases(session, None, "vasogenik").result.suggestion == "vasogenic"


def test_only_published_cases_are_indexed(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    draft = _plain_case(session, author, title="Draft pneumothorax", status="draft")
    published = _plain_case(session, author, title="Published pneumothorax")
    _reconcile(app)
    assert set(holder.get().versions()) == {published.id}
    # the author of a draft does not find it either (drafts are never in search)
    assert _ids(session, author, "pneumothorax") == {published.id}
    draft.status = CaseStatus.PUBLISHED
    draft.published_at = utcnow()
    search.case_changed(session, draft.id)
    published.status = CaseStatus.DRAFT
    search.case_changed(session, published.id)
    session.commit()
    assert set(holder.get().versions()) == {draft.id}


@pytest.fixture
def library(
    session: Session,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> dict[str, Any]:
    """Two hospitals, every visibility, a draft, and one reader of each kind."""
    north, south = create_institution("North"), create_institution("South")
    n_author = create_user(Role.EDUCATOR, institution=north)
    s_author = create_user(Role.EDUCATOR, institution=south)
    cases = {
        "public": _plain_case(session, n_author, title="Public pneumothorax"),
        "north_only": _plain_case(
            session, n_author, title="North pneumothorax", visibility="institution"
        ),
        "south_only": _plain_case(
            session, s_author, title="South pneumothorax", visibility="institution"
        ),
        "private": _plain_case(
            session, n_author, title="Private pneumothorax", visibility="private"
        ),
        "draft": _plain_case(session, s_author, title="Draft pneumothorax", status="draft"),
    }
    # Modalities only the hidden cases have: they must not show up in facet counts.
    for name, modality in (("south_only", "MR"), ("private", "NM"), ("draft", "US")):
        session.add(CaseLabel(case_id=cases[name].id, kind="modality", value=modality))
    session.add(CaseLabel(case_id=cases["public"].id, kind="modality", value="CR"))
    session.commit()
    readers: dict[str, User | None] = {
        "visitor": None,
        "north learner": create_user(Role.LEARNER, institution=north),
        "south learner": create_user(Role.LEARNER, institution=south),
        "learner without hospital": create_user(Role.LEARNER),
        "north author": n_author,
        "south author": s_author,
        "admin": create_user(Role.ADMIN),
    }
    inactive = create_user(Role.LEARNER, institution=north)
    inactive.is_active = False
    session.commit()
    readers["inactive north learner"] = inactive
    return {"cases": cases, "readers": readers}


def test_results_and_facets_agree_with_the_access_rule(
    app: Flask, session: Session, holder: search.IndexHolder, library: dict[str, Any]
) -> None:
    _reconcile(app)
    cases = library["cases"]
    for role, reader in library["readers"].items():
        expected = _sql_ids(session, reader)
        assert cases["draft"].id not in expected
        assert _ids(session, reader) == expected, role
        assert _ids(session, reader, "pneumothorax") == expected, role
        found = search.search_cases(session, reader, "pneumothorax").result
        assert found.total == len(expected), role
        visible_modalities = {
            label.value
            for case in cases.values()
            if case.id in expected
            for label in case.labels
            if label.kind == "modality"
        }
        assert {v for v, _n in found.facets["modality"]} == visible_modalities, role
        assert sum(n for _v, n in found.facets["author"]) == len(expected), role
    north = library["readers"]["north learner"]
    assert cases["south_only"].id not in _ids(session, north, "south")
    assert _ids(session, north, "", filters={"modality": ["MR"]}) == set()


def test_a_commit_updates_the_index_and_a_rollback_does_not(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    case = _plain_case(session, author, title="Meningioma")
    _reconcile(app)
    case.title = "Zebra meningioma"
    case.revision += 1
    search.case_changed(session, case.id)
    session.flush()
    session.rollback()
    assert search.PENDING not in session.info
    assert _ids(session, None, "zebra") == set()
    case = session.get(Case, case.id)  # type: ignore[assignment]
    case.title = "Dural tail meningioma"
    case.revision += 1
    search.case_changed(session, case.id)
    session.commit()
    assert _ids(session, None, "dural") == {case.id}
    session.delete(case)
    search.case_changed(session, case.id)
    session.commit()
    assert holder.get().versions() == {}


def test_a_crash_between_commit_and_indexing_is_repaired_by_reconcile(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    kept = _plain_case(session, author, title="Glioblastoma")
    removed = _plain_case(session, author, title="Meningioma")
    hidden = _plain_case(session, author, title="Abscess")
    _reconcile(app)

    # The process dies after the commit, before the index is touched.
    monkeypatch.setattr(search, "_apply_pending", lambda *_a: None)
    new = _plain_case(session, author, title="Ring enhancing lesion")
    search.case_changed(session, new.id)
    kept.title = "Butterfly glioblastoma"
    kept.revision += 1
    search.case_changed(session, kept.id)
    hidden.visibility = Visibility.PRIVATE  # no new revision: the fingerprint still differs
    search.case_changed(session, hidden.id)
    session.delete(removed)
    search.case_changed(session, removed.id)
    session.commit()
    monkeypatch.undo()
    index = holder.get()
    assert set(index.versions()) == {kept.id, removed.id, hidden.id}

    assert _reconcile(app) == (3, 1)
    with get_db(app).sessionmaker() as fresh:
        assert index.versions() == search.published_versions(fresh)
        assert _ids(fresh, None, "butterfly") == {kept.id}
        assert _ids(fresh, None, "ring enhancing") == {new.id}
        assert _ids(fresh, None, "abscess") == set()
    assert _reconcile(app) == (0, 0)


def test_the_web_process_reconciles_once_by_itself(
    app: Flask,
    session: Session,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    case = _plain_case(session, author, title="Sigmoid volvulus")
    # never indexed (no case_changed): the first search of the process repairs it
    assert _ids(session, None, "volvulus") == {case.id}


def test_rebuild_indexes_every_published_case(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    ids = {_plain_case(session, author, title=f"Case {n}").id for n in range(5)}
    _plain_case(session, author, title="A draft", status="draft")
    holder.get().upsert(search.load_documents(session, ids))
    holder.get().delete(list(ids)[:2])
    count = search.rebuild_index(get_db(app).sessionmaker, app.config["DATA_DIR"])
    assert count == 5
    assert set(holder.get().versions()) == ids


def _edit_cases(data_dir: str, database_url: str, ids: list[int]) -> None:
    """A second process: its own app and index object, editing cases one commit each."""
    from app import create_app

    child = create_app(
        {
            "TESTING": True,
            "DATA_DIR": data_dir,
            "DATABASE_URL": database_url,
            "LOAD_SAMPLE_CASES": False,
        }
    )
    with get_db(child).sessionmaker() as session:
        for case_id in ids:
            case = session.get(Case, case_id)
            assert case is not None
            case.title = f"Edited appendicitis {case_id}"
            case.revision += 1
            search.case_changed(session, case_id)
            session.commit()
    get_db(child).engine.dispose()


def test_two_processes_indexing_at_once_lose_nothing(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    database_url: str,
    tmp_path: Path,
) -> None:
    author = create_user(Role.EDUCATOR, institution=create_institution())
    ids = [_plain_case(session, author, title=f"Case {n}").id for n in range(16)]
    _reconcile(app)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_edit_cases, args=(app.config["DATA_DIR"], database_url, ids[n::2]))
        for n in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    with get_db(app).sessionmaker() as fresh:
        assert holder.get().versions() == search.published_versions(fresh)
        assert _ids(fresh, None, "edited appendicitis") == set(ids)


def test_reindex_command_and_init_reconcile(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
) -> None:
    from app.cli import cli

    runner = app.test_cli_runner()
    author = create_user(Role.EDUCATOR, institution=create_institution())
    first = _plain_case(session, author, title="Intussusception")
    result = runner.invoke(cli, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "Indexed 1 published cases." in result.output
    second = _plain_case(session, author, title="Target sign")
    assert runner.invoke(cli, ["init"]).exit_code == 0  # prepare() reconciles
    assert set(holder.get().versions()) == {first.id, second.id}


def test_a_busy_index_after_commit_is_repaired_by_the_next_search(
    app: Flask,
    session: Session,
    holder: search.IndexHolder,
    create_institution: Callable[..., Institution],
    create_user: Callable[..., User],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.search import IndexBusy

    author = create_user(Role.EDUCATOR, institution=create_institution())
    case = _plain_case(session, author, title="Osteoid osteoma")
    _reconcile(app)

    def busy(*_args: Any) -> None:
        raise IndexBusy("busy")

    monkeypatch.setattr(holder.get(), "update", busy)
    case.title = "Osteoid osteoma with nidus"
    case.revision += 1
    search.case_changed(session, case.id)
    session.commit()  # the commit stands; the index update failed and was logged
    monkeypatch.undo()
    assert not holder.reconciled
    assert _ids(session, None, "nidus") == {case.id}
