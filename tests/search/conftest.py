"""Fixtures for the search adapter: an index in a temporary directory and a case factory."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.search import CaseDocument, SearchIndex

_ids = itertools.count(1)


def make_case(**overrides: Any) -> CaseDocument:
    """A published public case about a pneumothorax unless told otherwise."""
    case_id = overrides.pop("case_id", next(_ids))
    fields: dict[str, Any] = {
        "case_id": case_id,
        "version": 1,
        "slug": f"case-{case_id}",
        "title": "Spontaneous pneumothorax",
        "history": "Tall young man with sudden pleuritic chest pain.",
        "findings": "Visceral pleural line at the right apex, no lung markings beyond it.",
        "diagnosis": "Primary spontaneous pneumothorax",
        "differential": "Skin fold, bulla",
        "discussion": "Look at the apex on every chest radiograph.",
        "teaching_points": "- Skin folds extend beyond the chest wall.",
        "modality": ["CR"],
        "body_region": ["Chest"],
        "tags": ["emergency"],
        "difficulty": "easy",
        "audience": ["student"],
        "certainty": "certain",
        "visibility": "public",
        "institution_id": 1,
        "institution_name": "Hillside Hospital",
        "author_ids": [10],
        "author_names": ["Dr Hill"],
        "published_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    fields.update(overrides)
    return CaseDocument(**fields)


@pytest.fixture
def case() -> Callable[..., CaseDocument]:
    return make_case


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SearchIndex]:
    ix = SearchIndex(tmp_path / "index", writer_timeout=5.0)
    yield ix
    ix.close()
