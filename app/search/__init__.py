"""Full-text search of published cases: the whoosh adapter (issue 8).

Only the standard library, whoosh, PyYAML and app.errors are imported here; the service
layer decides what is published and who may see it, and hands this package plain data.
"""

from app.search.index import (
    CaseDocument,
    IndexBusy,
    SearchHit,
    SearchIndex,
    SearchResult,
    SearchScope,
)
from app.search.synonyms import expand, load_synonyms

__all__ = [
    "CaseDocument",
    "IndexBusy",
    "SearchHit",
    "SearchIndex",
    "SearchResult",
    "SearchScope",
    "expand",
    "load_synonyms",
]
