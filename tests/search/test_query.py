"""The restricted grammar: odd input is read as words, never an error."""

from __future__ import annotations

import pytest

from app.search.query import MAX_CLAUSES, clean, parse
from app.search.synonyms import load_synonyms


def _parse(text: str) -> list[tuple[bool, list[str]]]:
    return [
        (c.negated, [" ".join(a.words) + ("*" if a.prefix else "") for a in c.alternatives])
        for c in parse(text, load_synonyms())
    ]


def test_or_not_and_phrases() -> None:
    assert _parse('effusion OR consolidation NOT "skin fold"') == [
        (False, ["effusion", "consolidation"]),
        (True, ["skin fold"]),
    ]
    assert _parse("-bulla apex") == [(True, ["bulla"]), (False, ["apex"])]


def test_abbreviation_expands_both_ways() -> None:
    assert _parse("PTX") == [(False, ["ptx", "pneumothorax"])]
    ((neg, alts),) = _parse("free air")
    assert not neg and alts[0] == "free air" and "pneumoperitoneum" in alts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("*", []),
        ("a*", [(False, ["a"])]),
        ("pneu*", [(False, ["pneu*"])]),
        ("title:pneumothorax", [(False, ["title"]), (False, ["pneumothorax", "ptx"])]),
        ('"unbalanced quote', [(False, ["unbalanced"]), (False, ["quote"])]),
        ("((bracket", [(False, ["bracket"])]),
        ("AND OR", [(False, ["and"]), (False, ["or"])]),
        ("x-ray", [(False, ["x ray", "plain film", "radiograph", "xr", "xray"])]),
        ("[1 TO 5]", [(False, ["1"]), (False, ["to"]), (False, ["5"])]),
    ],
)
def test_malformed_input_reads_as_words(text: str, expected: list[tuple[bool, list[str]]]) -> None:
    assert _parse(text) == expected


def test_bounds() -> None:
    assert len(clean("x " * 10_000)) <= 500
    assert len(parse("word " * 100, load_synonyms())) == MAX_CLAUSES
    assert clean("ptx\x00\x1b[31m\u200b") == "ptx [31m"
