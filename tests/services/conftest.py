"""Service tests run on both databases the project supports."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Closing note: the free-text marker's figures on the labelled answers (issue 15)."""
    from tests.freetext import FIGURES

    figures = terminalreporter.config.stash.get(FIGURES, None)
    if not figures:
        return
    terminalreporter.write_sep("-", "free-text marker on the labelled learner answers")
    for part in figures.values():
        terminalreporter.write_line(part.summary())
        for line in part.false_rejects:
            terminalreporter.write_line(f"  false reject  {line}")
        for line in part.false_accepts:
            terminalreporter.write_line(f"  false accept  {line}")
