"""The identifier scan: what it finds, what prose it leaves alone, measured on a labelled set."""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.models import Institution
from app.services import phi_scan
from tests.conftest import PHI_SCAN_NOTE

CORPUS = Path(__file__).resolve().parent.parent / "data" / "phi_corpus.txt"
REGISTERED = ("Outback District", "Hospital B")


@pytest.fixture
def backend() -> str:
    # The scan reads one column (institution names); the corpus need not run twice.
    return "sqlite"


@pytest.fixture
def registered(create_institution: Callable[..., Institution]) -> None:
    for name in REGISTERED:
        create_institution(name)


@dataclass
class Sentence:
    part: str
    label: str
    text: str
    spans: list[tuple[int, int]]


def _corpus() -> list[Sentence]:
    sentences: list[Sentence] = []
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
        sentences.append(Sentence(part, label, plain + marked[at:], spans))
    return sentences


@dataclass
class Tally:
    found: int = 0
    missed: list[str] = field(default_factory=list)
    clean: int = 0
    alarms: list[str] = field(default_factory=list)
    hits: int = 0
    true_hits: int = 0

    @property
    def recall(self) -> float:
        return self.found / (self.found + len(self.missed))

    @property
    def false_alarm_rate(self) -> float:
        return len(self.alarms) / self.clean

    @property
    def precision(self) -> float:
        return self.true_hits / self.hits

    def line(self, part: str) -> str:
        return (
            f"{part:9} recall {self.found}/{self.found + len(self.missed)} = {self.recall:.3f}, "
            f"false alarms {len(self.alarms)}/{self.clean} = {self.false_alarm_rate:.1%}, "
            f"precision {self.true_hits}/{self.hits} = {self.precision:.3f}"
        )


def _overlaps(finding: phi_scan.Finding, span: tuple[int, int]) -> bool:
    return finding.start < span[1] and finding.end > span[0]


def test_labelled_corpus_recall_and_false_alarms(
    session: Session, registered: None, request: pytest.FixtureRequest
) -> None:
    sentences = _corpus()
    parts = {s.part for s in sentences}
    assert parts == {"dev", "held-out", "review"}
    assert len(sentences) >= 300
    identifying = sum(s.label == "P" for s in sentences)
    assert 0.45 <= identifying / len(sentences) <= 0.55
    assert sum(s.part == "held-out" for s in sentences) / len(sentences) >= 0.29

    tallies = {part: Tally() for part in ("dev", "held-out", "review", "all")}
    for sentence in sentences:
        findings = phi_scan.scan(session, {"Text": sentence.text})
        for tally in (tallies[sentence.part], tallies["all"]):
            tally.hits += len(findings)
            tally.true_hits += sum(any(_overlaps(f, s) for s in sentence.spans) for f in findings)
            if sentence.label == "P":
                for span in sentence.spans:
                    if any(_overlaps(f, span) for f in findings):
                        tally.found += 1
                    else:
                        tally.missed.append(sentence.text[span[0] : span[1]])
            else:
                tally.clean += 1
                if findings:
                    tally.alarms.append(sentence.text)

    # Titles, tags and captions are often title-cased: the clean prose must stay clean so.
    clean = [s.text for s in sentences if s.label == "C"]
    title_alarms = [t for t in map(string.capwords, clean) if phi_scan.scan(session, {"T": t})]

    note = request.config.stash.setdefault(PHI_SCAN_NOTE, [])
    note.extend(tallies[part].line(part) for part in ("dev", "held-out", "review", "all"))
    note.append(
        f"title-cased clean prose: false alarms {len(title_alarms)}/{len(clean)} = "
        f"{len(title_alarms) / len(clean):.1%}"
    )
    for part in ("dev", "held-out"):
        tally = tallies[part]
        assert tally.recall >= 0.98, (part, tally.missed)
        assert tally.false_alarm_rate <= 0.05, (part, tally.alarms)
    # 30 + 30 sentences: one miss is 3.3 %, so the review part is held to what it measured
    review = tallies["review"]
    assert review.recall >= 29 / 30 and review.false_alarm_rate <= 1 / 30, (
        review.missed, review.alarms)
    assert len(title_alarms) / len(clean) <= 0.05, title_alarms


@pytest.mark.parametrize(
    ("text", "kind", "passage"),
    [
        ("Seen in clinic by John Smith.", "name", "John Smith"),
        ("Referred by Jane Doe.", "name", "Jane Doe"),
        ("Patient: Smith, John.", "name", "Smith, John"),
        ("Reviewed with Dr Okafor.", "name after a title", "Dr Okafor"),
        # a title makes a person of a name, even before an eponym's noun
        ("Mr Kowalczyk's fracture line.", "name after a title", "Mr Kowalczyk"),
        ("Transferred from St Mary's Hospital.", "hospital name", "St Mary's Hospital"),
        ("Flown to Royal Darwin Hospital.", "hospital name", "Royal Darwin Hospital"),
        ("Seen at Mercy Medical Center.", "hospital name", "Mercy Medical Center"),
        ("A 93-year-old with a fall.", "age over 89", "93-year-old"),
        ("The patient, aged 95, declined.", "age over 89", "aged 95"),
        ("Presented on Christmas Day.", "date", "Christmas Day"),
        ("Seen on Monday 3rd.", "date", "Monday 3rd"),
        ("Scanned on 12/03/2024.", "date", "12/03/2024"),
        ("He lives at 12 Smith Street.", "street address", "12 Smith Street"),
        ("Write to PO Box 123.", "street address", "PO Box 123"),
        ("Lives in Darwin NT 0800.", "postcode", "NT 0800"),
        ("MRN 1234567 on the form.", "record number", "MRN 1234567"),
        ("Call 0412 345 678.", "phone number", "0412 345 678"),
        ("Mail j.smith@hospital.org now.", "e-mail address", "j.smith@hospital.org"),
        (
            "See https://pacs.example.org/viewer?patient=12 now.",
            "web address",
            "https://pacs.example.org/viewer?patient=12",
        ),
        ("Admitted to Hospital B overnight.", "hospital name", "Hospital B"),
        ("Admitted under orthopaedics at outback district.", "hospital name", "outback district"),
        ("Discussed with Dr Förster today.", "name after a title", "Dr Förster"),
        ("Seen in clinic by Casper van der Meulen.", "name", "Casper van der Meulen"),
        ("Referred by Koen Zwijsen.", "name", "Koen Zwijsen"),
        ("Patient: Conradi, Cemal.", "name", "Conradi, Cemal"),
        ("Stéphanie Blot presented with pain.", "name", "Stéphanie Blot"),
        # the lists spell names without diacritics; authors and headers keep them
        ("Chloë Martin has a fractured clavicle.", "name", "Chloë Martin"),
        ("José García has a cough.", "name", "José García"),
        ("Renée Dubois has a lump in her breast.", "name", "Renée Dubois"),
        # read as rendered: Markdown, HTML and invisible characters hide nothing
        ("Seen by Mr **Kowalczyk** in clinic.", "name after a title", "Mr **Kowalczyk"),
        ("**Patient:** Conradi, Cemal", "name", "Conradi, Cemal"),
        ("Mr\u00a0Kowalczyk fell.", "name after a title", "Mr\u00a0Kowalczyk"),
        ("Mr&nbsp;Kowalczyk fell.", "name after a title", "Mr&nbsp;Kowalczyk"),
        ("Dr <em>Okafor</em> reviewed it.", "name after a title", "Dr <em>Okafor"),
        ("Born 12&#47;03&#47;1961.", "date", "12&#47;03&#47;1961"),
        ("MRN 1234\u200b567 on the form.", "record number", "MRN 1234\u200b567"),
        ("He lives at 934 Barker Cruiseway.", "street address", "934 Barker Cruiseway"),
        ("Call 7547-0638 after hours.", "phone number", "7547-0638"),
        ("Radiologist, Kasr Aini hospital, Egypt.", "hospital name", "Kasr Aini hospital"),
        ("Case contribution: Dr Radhiana Hassan.", "name after a title", "Dr Radhiana Hassan"),
    ],
)
def test_issue_examples_are_found_where_they_are(
    session: Session, registered: None, text: str, kind: str, passage: str
) -> None:
    findings = phi_scan.scan(session, {"History": text})
    located = [(f.kind, text[f.start : f.end]) for f in findings]
    assert (kind, passage) in located
    finding = findings[located.index((kind, passage))]
    assert finding.field == "History" and passage in finding.excerpt


@pytest.mark.parametrize(
    "text",
    [
        "An 88-year-old with a fall.",
        "Smith fracture and Colles fracture of the distal radius.",
        "Chilaiditi sign, Hampton hump, Kerley B lines, Rigler sign and Murphy sign.",
        "The cyst measures 12 Hounsfield units; Glasgow Coma Scale 15.",
        "Bosniak IIF cyst; follow the Fleischner Society guidelines.",
        "T2 weighted images show a disc bulge at C5/6.",
        "A 3 cm mass; level 2 nodes; day 3 post-op.",
        "The lesion may enlarge and may need a biopsy.",
        "Liver is normal. Spleen is normal. Kidneys are normal.",
        "He was admitted to hospital by ambulance.",
        "Le Fort II fracture and Weber B ankle fracture.",
        "Christmas tree bladder in a neurogenic bladder.",
        "Miller RE, Nelson SW. The roentgenologic demonstration of free air. Radiology.",
        "National Institute for Health and Care Excellence head injury guideline.",
        "Reference: https://pubmed.ncbi.nlm.nih.gov/12345678/ and PMID: 23456789.",
        "Lancet 2001;357:1391-1396. Data from 2019-2020.",
        "Answer: consistent with Pulmonary Embolism, caused by Small Bowel Obstruction.",
        "Retrieved by the Royal Flying Doctor Service; St John Ambulance attended.",
        "Figure 2 Coronal View. Case 3 Teaching Point.",
        "Abdominal Ultrasound was performed, followed by Contrast Enhanced CT.",
        "Contact the clinic for a booking. Seen in the Marfan clinic and the Fracture clinic.",
        "First described 100 years ago; saturation was 92 on air.",
        "Inferior Vena Cava Filter. Von Hippel-Lindau patients. Sunday Morning List.",
    ],
)
def test_teaching_prose_is_left_alone(session: Session, registered: None, text: str) -> None:
    assert phi_scan.scan(session, {"Discussion": text}) == []


def test_registered_institutions_come_from_the_database(
    session: Session, create_institution: Callable[..., Institution]
) -> None:
    text = "Imaged at Karratha Regional before transfer."
    assert phi_scan.scan(session, {"History": text}) == []
    create_institution("Karratha Regional")
    findings = phi_scan.scan(session, {"History": text})
    assert [(f.kind, text[f.start : f.end]) for f in findings] == [
        ("hospital name", "Karratha Regional")
    ]


def test_short_registered_names_match_only_as_written(
    session: Session, create_institution: Callable[..., Institution]
) -> None:
    create_institution("RDH")
    text = "Imaged at RDH; the third rdh sample was not."
    findings = phi_scan.scan(session, {"History": text})
    assert [text[f.start : f.end] for f in findings] == ["RDH"]


def test_findings_are_capped_and_named_by_field(session: Session) -> None:
    fields = {f"Comment {i}": f"Call 0412 345 {i:03d} or Dr Brown." for i in range(40)}
    findings = phi_scan.scan(session, fields)
    assert len(findings) == phi_scan.MAX_FINDINGS
    assert {f.field for f in findings} <= set(fields)
    assert findings[0].field == "Comment 0" and findings[0].kind == "phone number"
