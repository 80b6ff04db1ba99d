"""The request class: every JSON body is parsed with a size and a nesting limit.

Every JSON route reads its body through ``request.get_json`` (and Flask-WTF does for
JSON forms), so bounding it here bounds them all: a body nested 100,000 deep used to
raise ``RecursionError`` inside the parser (a 500, issue 17) and a 60 MiB body was
parsed whole.
"""

from __future__ import annotations

from typing import Any

from flask import Request

from app.errors import Invalid

# The largest legitimate body is a case draft: ten sections of at most 20,000
# characters, which JSON may escape to six bytes each (\uXXXX) in the worst case.
MAX_JSON_BYTES = 2 * 1024 * 1024
# The deepest legitimate body is an annotation's list of points inside an object
# inside a list (four levels); 32 leaves room and stops pathological nesting.
MAX_JSON_DEPTH = 32

TOO_LARGE = f"The JSON body is larger than {MAX_JSON_BYTES // (1024 * 1024)} MiB."
TOO_DEEP = f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects deeper than ``limit`` (iterative: a
    recursive walk would itself hit the recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class BoundedRequest(Request):
    """A Flask request whose JSON parsing refuses oversized or deeply nested bodies
    with a 400 and a plain message, whatever ``silent`` says: ``silent`` is for a body
    that is not JSON, not for one that is hostile."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if not (force or self.is_json):
            return super().get_json(force=force, silent=silent, cache=cache)
        if self.content_length is not None and self.content_length > MAX_JSON_BYTES:
            raise Invalid(TOO_LARGE)
        if len(self.get_data(cache=True)) > MAX_JSON_BYTES:  # chunked: no Content-Length
            raise Invalid(TOO_LARGE)
        try:
            value = super().get_json(force=force, silent=silent, cache=cache)
        except RecursionError:
            raise Invalid(TOO_DEEP) from None
        if _depth_exceeds(value, MAX_JSON_DEPTH):
            raise Invalid(TOO_DEEP)
        return value

