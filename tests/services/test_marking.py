"""The free-text marker (issue 15 item 4): what a radiologist accepts, and near-misses refused."""

from __future__ import annotations

import pytest

from app.search.synonyms import SynonymTable
from app.services.quizzes.marking import match_free_text
from tests.freetext import FIGURES, PARTS, evaluate, labelled, shipped_free_text


@pytest.mark.parametrize(
    ("slug", "given"),
    [
        ("pneumoperitoneum-erect-chest", "free air under diaphragm"),
        ("pneumoperitoneum-erect-chest", "free intra-abdominal air"),
        ("pneumoperitoneum-erect-chest", "subdiaphragmatic free gas"),
        ("tension-pneumothorax", "right sided tension pneumothorax"),
        ("tension-pneumothorax", "tension pneumothorax on the right"),
        ("tension-pneumothorax", "pneumothorax tension"),  # word order
        ("acute-subdural-haematoma", "hematoma subdural"),
        ("acute-subdural-haematoma", "subdurral hematoma"),  # a typo where "SDH" is accepted
        ("acute-subdural-haematoma", "Subdural Hématoma"),  # accents, American spelling
        ("small-bowel-obstruction", "post-operative adhesion"),  # plural, hyphen
    ],
)
def test_accepts_what_a_radiologist_accepts(slug: str, given: str) -> None:
    accepted, stem = shipped_free_text(slug)
    assert match_free_text(given, accepted, stem=stem) in accepted


@pytest.mark.parametrize(
    ("slug", "given"),
    [
        ("tension-pneumothorax", "hydropneumothorax"),
        ("tension-pneumothorax", "tension hydropneumothorax"),
        ("tension-pneumothorax", "left tension pneumothorax"),  # laterality the answer states
        ("tension-pneumothorax", "tension pneumothorax on the left"),
        ("tension-pneumothorax", "pneumothorax"),  # the question asks which kind
        ("acute-subdural-haematoma", "extradural haematoma"),
        ("acute-subdural-haematoma", "SAH"),
        ("acute-subdural-haematoma", "chronic subdural haematoma"),
        ("pneumoperitoneum-erect-chest", "pneumomediastinum"),
        ("aortic-dissection-type-a", "type B aortic dissection"),
        ("normal-thoracic-vertebra-ct", "ascending aorta"),
        ("pulmonary-embolism-ctpa", "no pulmonary embolism"),
    ],
)
def test_refuses_near_misses_that_change_the_meaning(slug: str, given: str) -> None:
    accepted, stem = shipped_free_text(slug)
    assert match_free_text(given, accepted, stem=stem) is None


def test_feedback_names_the_accepted_answer_that_matched() -> None:
    accepted = ["acute subdural haematoma", "SDH"]
    assert match_free_text("acute subdural hematoma", accepted) == "acute subdural haematoma"
    assert match_free_text("subdurral hematoma", accepted) == "SDH"


def test_collapsing_to_an_abbreviation_keeps_typo_tolerance() -> None:
    table = SynonymTable.from_groups([["sdh", "subdural haematoma"]])
    assert match_free_text("subdurral haematoma", ["SDH"], table) == "SDH"
    assert match_free_text("SDH", ["subdural haematoma"], table) == "subdural haematoma"
    assert match_free_text("sdx", ["SDH"], table) is None  # short words stay exact


def test_labelled_set_has_enough_answers_and_a_holdout() -> None:
    data = labelled()
    sizes = {
        part: sum(len(q[part][label]) for q in data.values() for label in ("right", "wrong"))
        for part in PARTS
    }
    assert sum(sizes.values()) >= 400
    assert 0.25 <= sizes["holdout"] / sum(sizes.values()) <= 0.35


def test_marker_on_the_labelled_answers(request: pytest.FixtureRequest) -> None:
    """The issue's goal, >= 98 % of right answers accepted and <= 1 % of wrong ones, on the
    answers the lexicon was tuned on; on the holdout no more wrong answers accepted, and at
    least 90 % of right ones (measured 93.3 % when it was written; see the data file)."""
    figures = {part: evaluate(part) for part in PARTS}
    request.config.stash[FIGURES] = figures
    tune, holdout = figures["tune"], figures["holdout"]
    assert tune.accepted_right >= 98.0, tune.false_rejects
    assert tune.accepted_wrong <= 1.0, tune.false_accepts
    assert holdout.accepted_wrong <= 1.0, holdout.false_accepts
    assert holdout.accepted_right >= 90.0, holdout.false_rejects
