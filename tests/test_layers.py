"""The import rule of STYLE.md: web -> services -> (models, adapters), never upwards."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parent.parent / "app"

ADAPTERS = (
    "app.dicom",
    "app.search",
    "app.storage",
    "app.casefmt",
    "app.markup",
    "app.rendercache",
    "app.charts",
    "app.textscan",
)

# (module prefix, prefixes it must not import)
RULES: list[tuple[str, tuple[str, ...]]] = [
    (
        "app.web",
        ("app.dicom", "app.search", "app.storage", "app.casefmt", "app.rendercache", "app.cli"),
    ),
    ("app.cli", ("app.web",)),
    # The domain's words are shared by every layer, so they may depend on none of them.
    ("app.domain", ("app",)),
    ("app.services", ("flask", "flask_login", "flask_wtf", "app.web", "app.cli")),
    ("app.models", ("app.services", "app.web", "app.cli", "flask", *ADAPTERS)),
    *[
        (
            adapter,
            (
                "flask",
                "flask_login",
                "app.models",
                "app.services",
                "app.web",
                "app.cli",
                "app.db",
                *(a for a in ADAPTERS if a != adapter),
            ),
        )
        for adapter in ADAPTERS
    ],
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


SOURCES = sorted(APP.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_module_respects_layers(path: Path) -> None:
    module = _module_name(path)
    for owner, forbidden in RULES:
        if not _matches(module, owner):
            continue
        bad = [
            name for name in _imports(path) if any(_matches(name, prefix) for prefix in forbidden)
        ]
        assert not bad, f"{module} imports {bad}, which STYLE.md forbids for {owner}"


STDLIB_ONLY = ("app.domain",)


@pytest.mark.parametrize("module", STDLIB_ONLY)
def test_shared_modules_import_only_the_standard_library(module: str) -> None:
    path = APP.parent / (module.replace(".", "/") + ".py")
    outside = [
        name
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and name != "__future__"
    ]
    assert not outside, f"{module} imports {outside}; STYLE.md allows only the standard library"


def test_rule_catches_a_violation(tmp_path: Path) -> None:
    """The walker really sees imports (guards against a test that cannot fail)."""
    sample = tmp_path / "x.py"
    sample.write_text("from app.dicom import render\nimport flask\n")
    assert "app.dicom.render" in _imports(sample) and "flask" in _imports(sample)
