"""The free-text marker (issue 15 item 4): what a radiologist accepts, and near-misses refused."""

from __future__ import annotations

import pytest

from app.search.synonyms import SynonymTable
from app.services.quizzes.marking import match_free_text
from tests.freetext import FIGURES, FRESH, MEASURED, PARTS, evaluate, labelled, shipped_free_text


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
        # classification names for the disease they classify, eponym and adjective
        ("aortic-dissection-type-a", "Stanford A"),
        ("aortic-dissection-type-a", "DeBakey I"),
        ("aortic-dissection-type-a", "dissection, DeBakey type II"),
        ("ruptured-ectopic-fast", "hepatorenal"),
        ("ruptured-ectopic-fast", "Morison\u2019s pouch"),  # typographic apostrophe
        ("acute-appendicitis-ultrasound", "appendicular faecolith"),
        # harmless words: what a stone is like, certainty, size, consequences, the stem and
        # the case's diagnosis restated
        ("acute-appendicitis-ultrasound", "a calcified appendicolith"),
        ("pulmonary-embolism-ctpa", "probable acute PE"),
        ("pulmonary-embolism-ctpa", "pulmonary emoblus"),  # a typo of "emboli"'s singular
        ("tension-pneumothorax", "small right tension pneumothorax"),
        ("tension-pneumothorax", "right tension pneumothorax, tracheal deviation to the left"),
        ("acute-subdural-haematoma", "acute SDH causing mass effect"),
        ("small-bowel-obstruction", "adhesions after abdominal surgery"),
        ("extradural-haematoma", "active extradural bleeding"),
        ("ruptured-ectopic-fast", "Morison pouch with free fluid"),  # the case title's words
        ("pulmonary-embolism-ctpa", "multiple pulmonary emboli"),
        ("pneumoperitoneum-erect-chest", "?pneumoperitoneum"),
    ],
)
def test_accepts_what_a_radiologist_accepts(slug: str, given: str) -> None:
    accepted, stem, context = shipped_free_text(slug)
    assert match_free_text(given, accepted, stem=stem, context=context) in accepted


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
        # negations and hedges that turn the answer round
        ("pneumoperitoneum-erect-chest", "no evidence of pneumoperitoneum"),
        ("pneumoperitoneum-erect-chest", "pneumoperitoneum excluded"),
        ("tension-pneumothorax", "tension pneumothorax unlikely"),
        ("small-bowel-obstruction", "no evidence of adhesions"),
        # another space, another classification, another side
        ("pneumoperitoneum-erect-chest", "mediastinal free air"),
        ("aortic-dissection-type-a", "DeBakey III aortic dissection"),
        ("aortic-dissection-type-a", "Stanford B"),
        ("tension-pneumothorax", "left tension pneumothorax with mediastinal shift"),
        ("ruptured-ectopic-fast", "left Morison pouch"),  # the pouch is right-sided
        ("acute-subdural-haematoma", "likely SAH"),
        ("acute-subdural-haematoma", "acute extradural haematoma with midline shift"),
        # a stone's qualifiers only for stones; a meaning prefix taken away
        ("pulmonary-embolism-ctpa", "calcified pulmonary embolus"),
        ("extradural-haematoma", "coagulated blood"),
        ("small-bowel-obstruction", "adhesions and hernia"),
    ],
)
def test_refuses_near_misses_that_change_the_meaning(slug: str, given: str) -> None:
    accepted, stem, context = shipped_free_text(slug)
    assert match_free_text(given, accepted, stem=stem, context=context) is None


def test_feedback_names_the_accepted_answer_that_matched() -> None:
    accepted = ["acute subdural haematoma", "SDH"]
    assert match_free_text("acute subdural hematoma", accepted) == "acute subdural haematoma"
    assert match_free_text("subdurral hematoma", accepted) == "SDH"


def test_feedback_prefers_the_accepted_answer_as_written() -> None:
    accepted, stem, context = shipped_free_text("ruptured-ectopic-fast")
    assert match_free_text("hepatorenal space", accepted, stem=stem, context=context) == (
        "hepatorenal space"
    )


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


def test_fresh_sets_are_balanced_and_new() -> None:
    seen = {
        text.casefold()
        for q in labelled().values()
        for part in PARTS
        for label in ("right", "wrong")
        for text in q[part][label]
    }
    for part, path in FRESH.items():
        data = labelled(path)
        assert set(data) == set(labelled())  # every shipped free-text question
        right = [t for q in data.values() for t in q[part]["right"]]
        wrong = [t for q in data.values() for t in q[part]["wrong"]]
        assert len(right) + len(wrong) >= 100
        assert 0.4 <= len(right) / (len(right) + len(wrong)) <= 0.6
        assert not seen.intersection(t.casefold() for t in right + wrong), part
        seen.update(t.casefold() for t in right + wrong)


def test_marker_on_the_labelled_answers(request: pytest.FixtureRequest) -> None:
    """The issue's goal, >= 98 % of right answers accepted and <= 1 % of wrong ones, on the
    answers the lexicon was tuned on (tune and the old holdout, both tuned on since).

    fresh1 (tests/data/freetext_fresh1.yaml) was written before the last round of changes:
    58.9 % / 0 % on the marker before it, 96.7 % / 0 % after. Its first measurement listed
    its misses, so it informed which classes of answer the round covers; no string of it was
    added to the lexicon. It falls short of 98 %, and the assertion says what is true.

    fresh2 (tests/data/freetext_fresh2.yaml) was written after the last change and measured
    once: 56/60 right answers accepted (93.3 %), 0/60 wrong ones. It is the honest figure
    for answers the marker has never seen; asserted as >= 90 % / <= 1 %."""
    figures = {part: evaluate(part) for part in MEASURED}
    request.config.stash[FIGURES] = figures
    for part in PARTS:
        assert figures[part].accepted_right >= 98.0, figures[part].false_rejects
        assert figures[part].accepted_wrong <= 1.0, figures[part].false_accepts
    fresh1 = figures["fresh1"]
    assert fresh1.accepted_right >= 96.0, fresh1.false_rejects
    assert fresh1.accepted_wrong <= 1.0, fresh1.false_accepts
    fresh2 = figures["fresh2"]
    assert fresh2.accepted_right >= 90.0, fresh2.false_rejects
    assert fresh2.accepted_wrong <= 1.0, fresh2.false_accepts
