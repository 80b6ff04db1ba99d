"""The synonym table as data, usable on its own (quiz marking reuses it)."""

from __future__ import annotations

from app.search.synonyms import (
    SynonymTable,
    expand,
    load_answer_synonyms,
    load_synonyms,
    normalise,
)


def test_table_has_enough_radiology_groups() -> None:
    assert len(load_synonyms().groups) >= 60


def test_expand_is_symmetric_and_normalised() -> None:
    assert "pneumothorax" in expand("PTX")
    assert "ptx" in expand("Pneumothorax")
    assert "pulmonary embolism" in expand("pe")
    assert "hemorrhage" in expand("Hæmorrhage".replace("æ", "ae"))
    assert "edema" in expand("OEDEMA")
    assert expand("  Ground-Glass   Opacity ") >= {"ggo", "ground glass opacity"}


def test_expand_unknown_term_is_itself() -> None:
    assert expand("Zebra") == {"zebra"}
    assert expand("  ") == set()


def test_normalise_strips_accents_and_punctuation() -> None:
    assert normalise("Oedème, Cérébral!") == "oedeme cerebral"


def test_equivalent_for_quiz_answers() -> None:
    table = SynonymTable.from_groups([["SAH", "subarachnoid haemorrhage"], ["x"]])
    assert table.equivalent("Subarachnoid Haemorrhage", "sah")
    assert not table.equivalent("sah", "sdh")
    assert len(table.groups) == 1  # a group of one is no group


def test_answer_groups_serve_marking_but_not_search() -> None:
    # "gas" for "air" is right in a quiz answer; a search for "gas" should not find "air".
    assert "air" not in expand("gas")
    answers = load_answer_synonyms()
    assert "air" in answers.expand("gas")
    assert "pneumothorax" in answers.expand("ptx")  # the search groups are included
    assert "hydropneumothorax" in answers.terms
