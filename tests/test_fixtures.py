"""The shared case fixture builds what the access rule expects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.models import Institution, Role, User
from app.services.access import Permission, can


def test_create_case_fixture_respects_visibility(
    create_user: Callable[..., User],
    create_institution: Callable[..., Institution],
    create_case: Callable[..., Any],
) -> None:
    home, away = create_institution(), create_institution()
    author = create_user(Role.EDUCATOR, institution=home)
    colleague = create_user(Role.LEARNER, institution=home)
    stranger = create_user(Role.LEARNER, institution=away)
    shared = create_case(author, visibility="institution")
    draft = create_case(author, status="draft", visibility="public")
    assert can(colleague, Permission.VIEW, shared)
    assert not can(stranger, Permission.VIEW, shared)
    assert not can(None, Permission.VIEW, shared)
    assert not can(colleague, Permission.VIEW, draft)
    assert can(author, Permission.VIEW, draft) and can(author, Permission.EDIT, draft)
    assert not can(colleague, Permission.EDIT, shared)
