"""Compare offline PII/PHI detectors from PyPI with Teachfile's identifier scan on the labelled set.

Each detector runs on every sentence of tests/data/phi_corpus.txt; a marked identifier
counts as found when a reported span overlaps it, a clean sentence with any span is a
false alarm. "+ rules" rows are the detector's spans added to app/textscan.py's, to see
whether a detector finds anything the rules miss.

The detectors are optional (the ``bench`` extra of pyproject.toml); each one missing or
unable to run offline is reported with the reason and skipped:

- scrubadub 2.0.1: every detector in its catalogue that needs no model download.
- presidio-analyzer: only its pattern recognizers, called directly (its AnalyzerEngine
  downloads a spaCy model on first use, which this machine cannot do).
- philter-lite: the shipped philter_delta.toml filters. Its detect_phi needs NLTK's
  averaged_perceptron_tagger_eng, which NLTK downloads at run time; with ``--stub-pos``
  every word is tagged as a noun instead (an approximation, said so in the output).

With ``--generated N`` it also measures recall on N sentences whose identifiers come
from Faker (names of 10 locales, addresses, phones, dates, ages, hospitals made of
place names) rather than from the person who wrote the rules and the labelled set.

    python scripts/bench/phi_detectors.py [--stub-pos] [--generated 1000]
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "phi_corpus.txt"
REGISTERED = ("Outback District", "Hospital B")
Spans = list[tuple[int, int]]


def _textscan() -> ModuleType:
    """app.textscan without importing the app package (an adapter: no Flask needed)."""
    spec = importlib.util.spec_from_file_location("textscan", ROOT / "app" / "textscan.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["textscan"] = module
    spec.loader.exec_module(module)
    return module


def corpus() -> list[tuple[str, str, str, Spans]]:
    """(part, label, text, identifier spans) for every sentence."""
    out: list[tuple[str, str, str, Spans]] = []
    part = ""
    for line in CORPUS.read_text("utf-8").splitlines():
        if line.startswith("["):
            part = line.strip("[]")
            continue
        if not line or line.startswith("#"):
            continue
        label, marked = line.split("\t")
        plain, spans, at = "", [], 0
        for m in re.finditer(r"\[\[(.+?)\]\]", marked):
            plain += marked[at : m.start()]
            spans.append((len(plain), len(plain) + len(m.group(1))))
            plain += m.group(1)
            at = m.end()
        out.append((part, label, plain + marked[at:], spans))
    return out


def teachfile() -> Callable[[str], Spans]:
    textscan = _textscan()
    return lambda text: [(h.start, h.end) for h in textscan.find(text, REGISTERED)]


def scrubadub_all() -> Callable[[str], Spans]:
    import scrubadub  # type: ignore[import-untyped]
    import scrubadub.detectors  # type: ignore[import-untyped]

    scrubber = scrubadub.Scrubber(locale="en_AU", detector_list=[])
    for name, detector in scrubadub.detectors.catalogue.detector_catalogue.get_all().items():
        if name in {"tagged", "user_supplied"}:
            continue
        try:
            scrubber.add_detector(detector(locale="en_AU"))
            list(scrubber.iter_filth("Seen by John Smith on 3 March 2024."))
        except Exception as exc:  # a detector that needs a model or a download
            scrubber.remove_detector(name)
            print(f"  scrubadub: detector {name} skipped ({type(exc).__name__})")
    return lambda text: [(f.beg, f.end) for f in scrubber.iter_filth(text)]


def presidio_patterns() -> Callable[[str], Spans]:
    # Its URL recognizer asks tldextract for the public suffix list online, fails (no
    # network here) and falls back to the snapshot that tldextract ships: quiet that.
    logging.getLogger("tldextract").setLevel(logging.CRITICAL)
    from presidio_analyzer import EntityRecognizer, PatternRecognizer
    from presidio_analyzer import predefined_recognizers as pr

    recognizers: list[Any] = []
    for name in dir(pr):
        cls = getattr(pr, name)
        if not (isinstance(cls, type) and issubclass(cls, EntityRecognizer)):
            continue
        if not (issubclass(cls, PatternRecognizer) or name == "PhoneRecognizer"):
            continue
        try:
            recognizers.append(cls())
        except Exception as exc:
            print(f"  presidio: {name} skipped ({type(exc).__name__})")

    def run(text: str) -> Spans:
        spans: Spans = []
        for r in recognizers:
            for res in r.analyze(text, r.supported_entities, None):
                if res.score >= 0.3:
                    spans.append((res.start, res.end))
        return spans

    print(f"  presidio: {len(recognizers)} pattern recognizers")
    return run


def philter(stub_pos: bool) -> Callable[[str], Spans]:
    import philter_lite  # type: ignore[import-untyped]
    import philter_lite.philter as engine  # type: ignore[import-untyped]

    config = Path(philter_lite.__file__).parent / "configs" / "philter_delta.toml"
    filters = philter_lite.load_filters(str(config))
    if stub_pos:
        engine._get_pos = lambda text: [(w, "NN") for w in engine._get_clean(text)]

    def run(text: str) -> Spans:
        _include, _exclude, tracker = philter_lite.detect_phi(text, filters)
        return [(p.start, p.stop) for p in tracker.phi]

    run("Seen by John Smith on 3 March 2024.")  # fails here if the NLTK tagger is absent
    return run


NAME_LOCALES = (
    "en_AU",
    "en_GB",
    "en_US",
    "en_IE",
    "de_DE",
    "fr_FR",
    "it_IT",
    "es_ES",
    "nl_NL",
    "pl_PL",
)


def generated(count: int) -> list[tuple[str, str, str, Spans]]:
    """``count`` identifying sentences with values from Faker, seeded (the same every run)."""
    from faker import Faker

    fakers = {locale: Faker(locale) for locale in NAME_LOCALES}
    for number, fake in enumerate(fakers.values()):
        fake.seed_instance(number)
    au = fakers["en_AU"]
    date_formats = ("%d/%m/%Y", "%d %B %Y", "%B %d, %Y", "%Y-%m-%d", "%d-%b-%Y", "%d.%m.%y")
    templates: list[tuple[str, Callable[[Any], str]]] = [
        ("Seen in clinic by {}.", lambda f: f"{f.first_name()} {f.last_name()}"),
        ("Referred by {} with a cough.", lambda f: f"{f.first_name()} {f.last_name()}"),
        ("{} presented with abdominal pain.", lambda f: f"{f.first_name()} {f.last_name()}"),
        ("Discussed with Dr {} today.", lambda f: f.last_name()),
        ("Patient: {}.", lambda f: f"{f.last_name()}, {f.first_name()}"),
        ("He lives at {} with his wife.", lambda f: au.street_address()),
        (
            "Scanned on {} after the fall.",
            lambda f: au.date_object().strftime(f.random_element(date_formats)),
        ),
        ("Call {} with the result.", lambda f: au.phone_number()),
        ("Transferred from {} overnight.", lambda f: f"{au.city()} Hospital"),
        ("Initially seen at {}.", lambda f: f"{f.last_name()} Medical Centre"),
        ("A {}-year-old with a hip fracture.", lambda f: str(f.random_int(90, 105))),
        ("Send the images to {}.", lambda f: f.email()),
        ("Postal address {}.", lambda f: f"{au.city()} {au.state_abbr()} {au.postcode()}"),
    ]
    out: list[tuple[str, str, str, Spans]] = []
    for i in range(count):
        template, value = templates[i % len(templates)]
        fake = fakers[NAME_LOCALES[(i // len(templates)) % len(NAME_LOCALES)]]
        filled = value(fake)
        before = template.index("{}")
        out.append(("generated", "P", template.format(filled), [(before, before + len(filled))]))
    return out


def measure(name: str, detect: Callable[[str], Spans], sentences: list[Any]) -> None:
    for part in sorted({s[0] for s in sentences}):
        found = total = alarms = clean = 0
        started = time.perf_counter()
        rows = [s for s in sentences if s[0] == part]
        for _part, label, text, spans in rows:
            hits = detect(text)
            if label == "P":
                for a, b in spans:
                    total += 1
                    found += any(s < b and e > a for s, e in hits)
            else:
                clean += 1
                alarms += bool(hits)
        ms = (time.perf_counter() - started) * 1000 / len(rows)
        alarm_text = f"false alarms {alarms:3}/{clean} = {alarms / clean:6.1%}" if clean else ""
        print(
            f"{name:34} {part:9} recall {found:4}/{total} = {found / total:.3f}  "
            f"{alarm_text:27}  {ms:6.2f} ms/sentence"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stub-pos", action="store_true", help="philter-lite without NLTK data")
    parser.add_argument("--generated", type=int, default=0, help="sentences made with Faker")
    parser.add_argument("--rules-only", action="store_true", help="skip the other detectors")
    args = parser.parse_args()
    sentences = corpus() + generated(args.generated)
    rules = teachfile()
    measure("teachfile rules", rules, sentences)
    candidates: list[tuple[str, Callable[[], Callable[[str], Spans]]]] = [
        ("scrubadub (all offline detectors)", scrubadub_all),
        ("presidio (pattern recognizers)", presidio_patterns),
        (
            "philter-lite" + (" (stub POS tagger)" if args.stub_pos else ""),
            lambda: philter(args.stub_pos),
        ),
    ]
    for name, make in [] if args.rules_only else candidates:
        try:
            detect = make()
        except Exception as exc:
            reason = " ".join(str(exc).split())[:160]
            print(f"{name:34} cannot run offline: {type(exc).__name__}: {reason}")
            continue
        measure(name, detect, sentences)
        measure("  + rules", lambda t, d=detect: d(t) + rules(t), sentences)


if __name__ == "__main__":
    main()
