"""Benchmark: Teachfile's whoosh search against SQLite FTS5 on the same synthetic cases.

    .venv/bin/python scripts/bench/search.py                 # 10,000 and 100,000 cases
    .venv/bin/python scripts/bench/search.py --sizes 10000 --queries 40

Both engines index the same deterministic corpus and answer the same query mix with the
same work per query: the reader's permission filter, the total count, the top 20 by
relevance with a snippet, and facet counts (modality, body region, difficulty) over every
match. FTS5 gets the synonym expansion the query parser produced (an OR of phrases), so
the comparison is of engines, not features. Each query string runs once, measured cold
(no result cache can help); a warm-up of other queries runs first on both engines.

The load average is printed with each size: on a shared machine both engines slow down
together, so the ratio holds better than the absolute figures.

Figures (2 shared cores, 2026-11-23, one run of ``--sizes 10000,100000``; "load" is the
1-minute load average; the build CPU time is the fair figure on a busy machine):

    10,000 cases, load ~6:   build 24 s wall, 10.9 s CPU (was 287 docs/s wall);
                             p95 teachfile 6.1 ms, FTS5 11.9 ms: ratio 0.51 (was 1.19);
                             max query 10 ms
    100,000 cases, load ~7:  build 467 s wall, 220 s CPU (goal < 600 s); index 170 MB
                             (FTS5 245 MB); p95 teachfile 28.9 ms, FTS5 115 ms:
                             ratio 0.25; max query 68 ms (goal < 1 s)

What closed the gap: one pass over posting lists (block-wise BM25, no separate match
and score passes), facet counts over integer codes of value combinations, searchers
pooled across threads with per-generation caches. Build: field lengths read once per
field while writing postings, pre-analysed term lists, no spelling field, an in-memory
posting pool for rebuilds.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from app.search import schema as S
from app.search.index import CaseDocument, SearchIndex, SearchScope
from app.search.query import parse
from app.search.synonyms import load_synonyms

# (diagnosis, abbreviation or "", modality, body region, key findings)
DIAGNOSES = [
    (
        "pneumothorax",
        "PTX",
        "CR",
        "Chest",
        ["visceral pleural line", "absent lung markings", "deep sulcus sign"],
    ),
    (
        "tension pneumothorax",
        "",
        "CR",
        "Chest",
        ["mediastinal shift", "flattened hemidiaphragm", "absent lung markings"],
    ),
    (
        "pulmonary embolism",
        "PE",
        "CT",
        "Chest",
        ["filling defect", "right heart strain", "wedge shaped infarct"],
    ),
    (
        "community acquired pneumonia",
        "CAP",
        "CR",
        "Chest",
        ["lobar consolidation", "air bronchogram", "pleural effusion"],
    ),
    (
        "pleural effusion",
        "",
        "CR",
        "Chest",
        ["blunted costophrenic angle", "meniscus sign", "fluid layering"],
    ),
    (
        "sarcoidosis",
        "",
        "CT",
        "Chest",
        ["perilymphatic nodules", "hilar lymphadenopathy", "fibrosis"],
    ),
    (
        "usual interstitial pneumonia",
        "UIP",
        "CT",
        "Chest",
        ["honeycombing", "traction bronchiectasis", "basal reticulation"],
    ),
    (
        "lung adenocarcinoma",
        "",
        "CT",
        "Chest",
        ["spiculated nodule", "pleural retraction", "ground glass opacity"],
    ),
    (
        "tuberculosis",
        "TB",
        "CR",
        "Chest",
        ["upper lobe cavitation", "tree in bud nodules", "calcified granuloma"],
    ),
    (
        "aortic dissection",
        "",
        "CT",
        "Chest",
        ["intimal flap", "false lumen", "mediastinal haematoma"],
    ),
    (
        "subarachnoid haemorrhage",
        "SAH",
        "CT",
        "Head",
        ["hyperdense blood in basal cisterns", "hydrocephalus", "sulcal blood"],
    ),
    (
        "subdural haematoma",
        "SDH",
        "CT",
        "Head",
        ["crescentic collection", "midline shift", "mass effect"],
    ),
    (
        "extradural haematoma",
        "EDH",
        "CT",
        "Head",
        ["biconvex collection", "skull fracture", "mass effect"],
    ),
    (
        "acute ischaemic stroke",
        "",
        "MR",
        "Head",
        ["restricted diffusion", "loss of grey white differentiation", "hyperdense MCA sign"],
    ),
    (
        "glioblastoma",
        "GBM",
        "MR",
        "Head",
        ["ring enhancing lesion", "vasogenic oedema", "central necrosis"],
    ),
    (
        "cerebral abscess",
        "",
        "MR",
        "Head",
        ["ring enhancing lesion", "restricted diffusion", "smooth enhancing rim"],
    ),
    (
        "multiple sclerosis",
        "MS",
        "MR",
        "Head",
        ["periventricular lesions", "Dawson fingers", "juxtacortical lesions"],
    ),
    ("meningioma", "", "MR", "Head", ["dural tail", "extra-axial mass", "homogeneous enhancement"]),
    (
        "intracerebral haemorrhage",
        "ICH",
        "CT",
        "Head",
        ["hyperdense haematoma", "perihaematomal oedema", "intraventricular extension"],
    ),
    ("arteriovenous malformation", "AVM", "MR", "Head", ["flow voids", "nidus", "draining vein"]),
    (
        "small bowel obstruction",
        "SBO",
        "CT",
        "Abdomen",
        ["dilated small bowel loops", "transition point", "small bowel faeces sign"],
    ),
    (
        "abdominal aortic aneurysm",
        "AAA",
        "CT",
        "Abdomen",
        ["aortic diameter above 3 cm", "mural thrombus", "retroperitoneal haematoma"],
    ),
    (
        "acute appendicitis",
        "",
        "CT",
        "Abdomen",
        ["dilated appendix", "periappendiceal fat stranding", "appendicolith"],
    ),
    (
        "perforated duodenal ulcer",
        "",
        "CT",
        "Abdomen",
        ["free air", "pneumoperitoneum", "free fluid"],
    ),
    (
        "acute cholecystitis",
        "",
        "US",
        "Abdomen",
        ["gallbladder wall thickening", "pericholecystic fluid", "gallstones"],
    ),
    (
        "hepatocellular carcinoma",
        "HCC",
        "CT",
        "Abdomen",
        ["arterial hyperenhancement", "washout", "cirrhotic liver"],
    ),
    (
        "renal cell carcinoma",
        "RCC",
        "CT",
        "Abdomen",
        ["enhancing renal mass", "renal vein invasion", "heterogeneous enhancement"],
    ),
    (
        "acute pancreatitis",
        "",
        "CT",
        "Abdomen",
        ["peripancreatic fat stranding", "necrosis", "fluid collection"],
    ),
    ("intussusception", "", "US", "Abdomen", ["target sign", "pseudokidney sign", "lead point"]),
    (
        "sigmoid volvulus",
        "",
        "CR",
        "Abdomen",
        ["coffee bean sign", "dilated sigmoid colon", "absent rectal gas"],
    ),
    (
        "deep vein thrombosis",
        "DVT",
        "US",
        "Lower limb",
        ["non-compressible vein", "echogenic thrombus", "absent flow"],
    ),
    (
        "scaphoid fracture",
        "",
        "CR",
        "Wrist",
        ["lucent fracture line", "scaphoid waist", "avascular necrosis"],
    ),
    (
        "anterior cruciate ligament tear",
        "ACL",
        "MR",
        "Knee",
        ["discontinuous ligament", "bone bruise", "anterior tibial translation"],
    ),
    (
        "slipped capital femoral epiphysis",
        "SCFE",
        "CR",
        "Hip",
        ["widened physis", "Klein line", "epiphyseal displacement"],
    ),
    (
        "osteosarcoma",
        "",
        "MR",
        "Knee",
        ["sunburst periosteal reaction", "Codman triangle", "soft tissue mass"],
    ),
    ("osteoid osteoma", "", "CT", "Lower limb", ["nidus", "cortical thickening", "sclerosis"]),
    (
        "developmental dysplasia of the hip",
        "DDH",
        "US",
        "Hip",
        ["shallow acetabulum", "femoral head subluxation", "alpha angle"],
    ),
    (
        "necrotising enterocolitis",
        "NEC",
        "CR",
        "Abdomen",
        ["pneumatosis intestinalis", "portal venous gas", "dilated loops"],
    ),
    (
        "ductal carcinoma in situ",
        "DCIS",
        "MG",
        "Breast",
        ["fine pleomorphic calcifications", "segmental distribution", "linear branching"],
    ),
    (
        "thyroid papillary carcinoma",
        "",
        "US",
        "Neck",
        ["microcalcifications", "taller than wide nodule", "hypoechoic nodule"],
    ),
    (
        "hepatic haemangioma",
        "",
        "MR",
        "Abdomen",
        ["peripheral nodular enhancement", "centripetal fill in", "T2 hyperintensity"],
    ),
    (
        "focal nodular hyperplasia",
        "FNH",
        "MR",
        "Abdomen",
        ["central scar", "homogeneous arterial enhancement", "isointense"],
    ),
    (
        "epiploic appendagitis",
        "",
        "CT",
        "Abdomen",
        ["central dot sign", "fat stranding", "oval fat lesion"],
    ),
    (
        "posterior reversible encephalopathy syndrome",
        "PRES",
        "MR",
        "Head",
        ["parieto-occipital oedema", "vasogenic oedema", "symmetric"],
    ),
    (
        "normal pressure hydrocephalus",
        "NPH",
        "MR",
        "Head",
        ["ventriculomegaly", "callosal angle", "aqueductal flow void"],
    ),
]
DESCRIPTORS = [
    "subtle",
    "small",
    "large",
    "extensive",
    "focal",
    "diffuse",
    "bilateral",
    "unilateral",
    "left",
    "right",
    "mild",
    "moderate",
    "severe",
    "acute",
    "chronic",
    "subacute",
    "heterogeneous",
    "homogeneous",
    "ill-defined",
    "well-defined",
    "lobulated",
    "irregular",
    "smooth",
    "peripheral",
    "central",
]
ANATOMY = [
    "upper lobe",
    "lower lobe",
    "middle lobe",
    "lingula",
    "hilum",
    "mediastinum",
    "pleura",
    "diaphragm",
    "liver",
    "spleen",
    "pancreas",
    "kidney",
    "adrenal",
    "bladder",
    "caecum",
    "colon",
    "rectum",
    "duodenum",
    "jejunum",
    "ileum",
    "frontal lobe",
    "parietal lobe",
    "temporal lobe",
    "occipital lobe",
    "basal ganglia",
    "thalamus",
    "cerebellum",
    "brainstem",
    "ventricle",
    "femur",
    "tibia",
    "humerus",
    "radius",
    "ulna",
    "pelvis",
    "acetabulum",
    "lumbar spine",
    "cervical spine",
    "thoracic spine",
    "oesophagus",
    "stomach",
    "gallbladder",
    "aorta",
]
PRESENTATIONS = [
    "sudden onset dyspnoea",
    "pleuritic chest pain",
    "fever and productive cough",
    "worst headache of life",
    "fall from standing height",
    "road traffic collision",
    "abdominal pain and vomiting",
    "right iliac fossa pain",
    "weight loss and night sweats",
    "seizure",
    "progressive weakness",
    "painless haematuria",
    "limp and hip pain",
    "palpable lump",
    "screening examination",
    "haemoptysis",
    "jaundice",
    "confusion and headache",
]
DISCUSSION = [
    "The key to the diagnosis is the {f} which is typical of {d}.",
    "{D} should be considered when {f} is seen on {m}.",
    "Comparison with prior imaging is essential to assess interval change.",
    "Management depends on clinical stability and the extent of the {f}.",
    "The differential diagnosis includes {x}, which usually lacks {f}.",
    "Early recognition of {d} reduces morbidity and mortality.",
    "Follow up imaging is recommended in three to six months.",
    "In rural practice the first examination is often a {m} and the findings may be subtle.",
    "Correlation with laboratory results and clinical examination is advised.",
    "A multidisciplinary discussion guided the final management.",
    "The appearance on {m} reflects the underlying pathophysiology of {d}.",
    "Pitfalls include artefact mimicking {f} and incomplete coverage.",
]
TEACHING = [
    "Look for {f} on every {m} in this setting.",
    "{D} can be subtle: review the {a} carefully.",
    "Always compare with prior examinations.",
    "Report {d} urgently to the referring clinician.",
    "Remember the abbreviation {A} in reports.",
]
BRITISH = {
    "haemorrhage": "hemorrhage",
    "haematoma": "hematoma",
    "oedema": "edema",
    "ischaemic": "ischemic",
    "oesophagus": "esophagus",
    "caecum": "cecum",
    "haemoptysis": "hemoptysis",
    "haematuria": "hematuria",
    "faeces": "feces",
    "haemangioma": "hemangioma",
    "necrotising": "necrotizing",
    "dyspnoea": "dyspnea",
}
TAGS = [
    "trauma",
    "emergency",
    "oncology",
    "paediatric",
    "classic",
    "pitfall",
    "interventional",
    "incidental",
]
AUDIENCE = ["student", "resident", "consultant", "general practitioner", "radiographer"]
CERTAINTY = ["certain", "probable", "pathology proven"]
DIFFICULTY = ["easy", "medium", "hard"]
# A long tail of rarer words (eponyms, drugs, devices), as real reports have.
RARE = [
    f"{a}{b}{c}"
    for a in ("an", "bel", "cor", "dax", "el", "fen", "gor", "hal", "im", "jor", "kel")
    for b in ("tra", "pro", "vi", "mo", "su", "re", "la", "ni", "zo")
    for c in ("lin", "mab", "zole", "cept", "stat", "vir", "dine", "pam", "tide", "xan")
]


def _spell(rng: random.Random, text: str, american: bool) -> str:
    if not american:
        return text
    for gb, us in BRITISH.items():
        text = text.replace(gb, us)
    return text


def generate(n: int, seed: int = 8) -> Iterator[CaseDocument]:
    """``n`` deterministic synthetic cases (about 250 words each)."""
    rng = random.Random(seed)
    start = datetime(2015, 1, 1, tzinfo=UTC)
    for i in range(1, n + 1):
        d, abbr, modality, region, findings = rng.choice(DIAGNOSES)
        american = rng.random() < 0.4
        others = rng.sample(DIAGNOSES, 3)
        age = rng.randint(1, 90)
        sex = rng.choice(["man", "woman", "boy", "girl"])
        name = abbr if abbr and rng.random() < 0.3 else d
        f_sentences = []
        for _ in range(rng.randint(4, 9)):
            f = rng.choice(findings) if rng.random() < 0.6 else rng.choice(rng.choice(DIAGNOSES)[4])
            f_sentences.append(
                f"There is {rng.choice(DESCRIPTORS)} {f} in the {rng.choice(ANATOMY)}"
                f" measuring {rng.randint(2, 90) / 10:.1f} cm."
            )
        if rng.random() < 0.3:
            f_sentences.append(f"Incidental {rng.choice(RARE)} noted, {rng.choice(RARE)} advised.")
        ctx = {
            "d": d,
            "D": d.capitalize(),
            "f": rng.choice(findings),
            "m": modality,
            "x": others[0][0],
            "a": rng.choice(ANATOMY),
            "A": abbr or d.split()[0],
        }
        discussion = " ".join(s.format(**ctx) for s in rng.sample(DISCUSSION, rng.randint(3, 7)))
        teaching = "\n".join(
            "- " + s.format(**ctx) for s in rng.sample(TEACHING, rng.randint(2, 4))
        )
        vis_roll = rng.random()
        visibility = "public" if vis_roll < 0.7 else "institution" if vis_roll < 0.95 else "private"
        inst = rng.randint(1, 40)
        author = rng.randint(1, 400)
        yield CaseDocument(
            case_id=i,
            version=1,
            slug=f"case-{i}",
            title=_spell(rng, f"{name.capitalize()} in a {age}-year-old {sex}", american),
            history=_spell(
                rng, f"{age}-year-old {sex} with {rng.choice(PRESENTATIONS)}.", american
            ),
            findings=_spell(rng, " ".join(f_sentences), american),
            diagnosis=_spell(rng, d.capitalize() + (f" ({abbr})" if abbr else ""), american),
            differential=_spell(rng, ", ".join(o[0] for o in others), american),
            discussion=_spell(rng, discussion, american),
            teaching_points=_spell(rng, teaching, american),
            modality=[modality] + (["CT"] if modality != "CT" and rng.random() < 0.2 else []),
            body_region=[region],
            tags=rng.sample(TAGS, rng.randint(0, 3)),
            difficulty=rng.choice(DIFFICULTY),
            audience=rng.sample(AUDIENCE, rng.randint(1, 2)),
            certainty=rng.choice(CERTAINTY),
            visibility=visibility,
            institution_id=inst,
            institution_name=f"Hospital {inst}",
            author_ids=[author],
            author_names=[f"Author {author}"],
            published_at=start + timedelta(minutes=i * 37),
        )


# ---------------------------------------------------------------------------- queries

SINGLE = [
    "pneumothorax",
    "consolidation",
    "haematoma",
    "nidus",
    "washout",
    "honeycombing",
    "appendicolith",
    "meningioma",
    "effusion",
    "necrosis",
    "fracture",
    "thrombus",
    "calcifications",
    "cavitation",
    "intussusception",
    "sarcoidosis",
    "volvulus",
    "hydrocephalus",
    "dissection",
    "osteosarcoma",
]
AND2 = [
    "ring enhancing",
    "mass effect",
    "fat stranding",
    "lobar consolidation",
    "restricted diffusion",
    "filling defect",
    "target sign",
    "central scar",
    "midline shift",
    "bone bruise",
    "transition point",
    "dural tail",
    "meniscus sign",
    "flow voids",
    "portal gas",
    "cortical thickening",
    "coffee bean",
    "pleural retraction",
    "callosal angle",
    "free fluid",
]
PHRASE = [
    '"' + f + '"'
    for f in [
        "ring enhancing lesion",
        "free air",
        "deep sulcus sign",
        "air bronchogram",
        "tree in bud",
        "central dot sign",
        "sunburst periosteal reaction",
        "visceral pleural line",
        "gallbladder wall thickening",
        "hyperdense blood",
        "target sign",
        "intimal flap",
        "peripheral nodular enhancement",
        "perilymphatic nodules",
        "false lumen",
        "dilated appendix",
        "absent flow",
        "right heart strain",
        "widened physis",
        "codman triangle",
    ]
]
FACET = SINGLE[::-1]
ABBREV = [
    "PTX",
    "PE",
    "SAH",
    "ICH",
    "SBO",
    "AAA",
    "DVT",
    "GGO",
    "SDH",
    "EDH",
    "GBM",
    "HCC",
    "RCC",
    "ACL",
    "SCFE",
    "DDH",
    "NEC",
    "DCIS",
    "FNH",
    "PRES",
]
MISSPELT = [
    "pneumothroax",
    "menigioma",
    "hydrocephlus",
    "intussuseption",
    "sarcoidossis",
    "osteosarcomma",
    "apendicitis",
    "haematma",
    "consolidaton",
    "cavitaton",
    "volvolus",
    "embolsm",
    "effusoin",
    "honeycombng",
    "dissecton",
    "pancreatitis acte",
    "thrombsis",
    "fractre",
    "necrossis",
    "nidos",
]
PREFIX = [
    "pneumo*",
    "haem*",
    "hem*",
    "consol*",
    "calc*",
    "fract*",
    "thromb*",
    "hydro*",
    "oste*",
    "menin*",
    "intra*",
    "perip*",
    "lymph*",
    "cerebr*",
    "necro*",
    "dilat*",
    "enhanc*",
    "vasc*",
    "cortic*",
    "bronch*",
]
CLASSES = {
    "single": SINGLE,
    "and2": AND2,
    "phrase": PHRASE,
    "facet": FACET,
    "abbrev": ABBREV,
    "misspelt": MISSPELT,
    "prefix": PREFIX,
}
WARMUP = ["mass", "nodule", "oedema", "liver", "CT", "lesion", "enhancement", "kidney", "brain"]
SCOPE = SearchScope(institution_ids=frozenset({3}), author_id=17)
FACET_FILTER = {"modality": ["CT"]}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


# ------------------------------------------------------------------------------ FTS5


def fts5_build(path: Path, docs: list[CaseDocument]) -> float:
    con = sqlite3.connect(path)
    con.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE cases(id INTEGER PRIMARY KEY, slug TEXT, title TEXT, published REAL,
            visibility TEXT, institution_id INTEGER, author_ids TEXT, difficulty TEXT);
        CREATE TABLE facets(case_id INTEGER, facet TEXT, value TEXT);
        CREATE INDEX facets_value ON facets(facet, value, case_id);
        CREATE INDEX facets_case ON facets(case_id);
        CREATE TABLE case_authors(case_id INTEGER, author_id INTEGER);
        CREATE INDEX case_authors_author ON case_authors(author_id, case_id);
        CREATE VIRTUAL TABLE cases_fts USING fts5(title, history, findings, diagnosis,
            differential, discussion, teaching_points, tokenize='porter unicode61');
        """
    )
    t0 = time.perf_counter()
    with con:
        for d in docs:
            con.execute(
                "INSERT INTO cases VALUES (?,?,?,?,?,?,?,?)",
                (
                    d.case_id,
                    d.slug,
                    d.title,
                    d.published_at.timestamp(),
                    d.visibility,
                    d.institution_id,
                    ",".join(map(str, d.author_ids)),
                    d.difficulty,
                ),
            )
            con.execute(
                "INSERT INTO cases_fts(rowid, title, history, findings, diagnosis, differential,"
                " discussion, teaching_points) VALUES (?,?,?,?,?,?,?,?)",
                (
                    d.case_id,
                    d.title,
                    d.history,
                    d.findings,
                    d.diagnosis,
                    d.differential,
                    d.discussion,
                    d.teaching_points,
                ),
            )
            rows = (
                [("modality", v) for v in d.modality]
                + [("body_region", v) for v in d.body_region]
                + [("difficulty", d.difficulty)]
            )
            con.executemany(
                "INSERT INTO facets VALUES (?,?,?)", [(d.case_id, f, v) for f, v in rows]
            )
            con.executemany(
                "INSERT INTO case_authors VALUES (?,?)", [(d.case_id, a) for a in d.author_ids]
            )
    con.close()
    return time.perf_counter() - t0


def fts5_match(text: str) -> str | None:
    """The FTS5 MATCH expression for the same parse Teachfile makes (synonyms included)."""
    table = load_synonyms()
    parts = []
    for clause in parse(text, table):
        alts = []
        for alt in clause.alternatives:
            words = [w for w in alt.words if w not in S.STOP_WORDS]
            if not words:
                continue
            if alt.prefix:
                alts.append(f'"{words[0]}" *')
            else:
                alts.append('"' + " ".join(words) + '"')
        if alts:
            parts.append(("NOT " if clause.negated else "") + "(" + " OR ".join(alts) + ")")
    return " AND ".join(parts) if parts else None


def fts5_search(con: sqlite3.Connection, text: str, facet: bool) -> int:
    match = fts5_match(text)
    if match is None:
        return 0
    perm = (
        "(c.visibility = 'public' OR (c.visibility = 'institution' AND c.institution_id IN (3))"
        " OR c.id IN (SELECT case_id FROM case_authors WHERE author_id = 17))"
    )
    facet_sql = (
        " AND c.id IN (SELECT case_id FROM facets WHERE facet='modality' AND value='CT')"
        if facet
        else ""
    )
    con.execute("DROP TABLE IF EXISTS temp.hits")
    con.execute(
        "CREATE TEMP TABLE hits AS SELECT f.rowid AS id, f.rank AS rank FROM cases_fts f"
        f" JOIN cases c ON c.id = f.rowid WHERE cases_fts MATCH ? AND {perm}{facet_sql}",
        (match,),
    )
    total = con.execute("SELECT count(*) FROM temp.hits").fetchone()[0]
    top = con.execute(
        "SELECT f.rowid, c.slug, c.title, snippet(cases_fts, -1, '<mark>', '</mark>', '…', 24)"
        " FROM cases_fts f JOIN cases c ON c.id = f.rowid WHERE cases_fts MATCH ?"
        " AND f.rowid IN (SELECT id FROM temp.hits ORDER BY rank LIMIT 20) ORDER BY f.rank",
        (match,),
    ).fetchall()
    con.execute(
        "SELECT facet, value, count(*) FROM facets WHERE case_id IN (SELECT id FROM temp.hits)"
        " GROUP BY facet, value"
    ).fetchall()
    if total < 3:  # the "did you mean" work: words near the misspelling in the vocabulary
        words = [w for w in match.replace('"', " ").split() if w.isalpha() and len(w) > 3]
        for w in words:
            con.execute(
                "SELECT term FROM vocab WHERE term >= ? AND term < ? AND doc > 1",
                (w[:1], w[:1] + "\uffff"),
            ).fetchall()
    return total + len(top)


# ------------------------------------------------------------------------------- run


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run(
    n: int, per_class: int, workdir: Path, reuse: bool = False
) -> dict[str, dict[str, list[float]]]:
    print(f"\n=== {n:,} cases (load average {os.getloadavg()[0]:.1f}) ===", flush=True)
    t0 = time.perf_counter()
    docs = list(generate(n))
    print(f"generated in {time.perf_counter() - t0:.1f} s", flush=True)

    ix_path = workdir / f"whoosh-{n}"
    db_path = workdir / f"fts5-{n}.sqlite3"
    if reuse and ix_path.exists() and db_path.exists():
        # --reuse with --keep: measure queries on indexes a previous run built
        print("reusing the indexes of a previous run (no build figures)")
        ix = SearchIndex(ix_path)
        con = sqlite3.connect(db_path)
        con.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, cases_fts, row)")
        return _queries(ix, con, per_class)
    ix = SearchIndex(ix_path, limitmb=256)
    t0, c0 = time.perf_counter(), time.process_time()
    ix.rebuild(docs)
    build_w = time.perf_counter() - t0
    cpu_w = time.process_time() - c0
    opt_w = 0.0  # rebuild commits one segment: nothing to optimise
    size_w = sum(p.stat().st_size for p in ix_path.iterdir())

    c0 = time.process_time()
    build_f = fts5_build(db_path, docs)
    cpu_f = time.process_time() - c0
    con = sqlite3.connect(db_path)
    con.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, cases_fts, row)")
    con.execute("INSERT INTO cases_fts(cases_fts) VALUES ('optimize')")
    con.commit()
    size_f = db_path.stat().st_size

    print(
        f"whoosh: build {build_w + opt_w:.1f} s, "
        f"{n / (build_w + opt_w):.0f} docs/s, CPU {cpu_w:.1f} s, index {size_w / 1e6:.1f} MB"
    )
    print(
        f"fts5:   build {build_f:.1f} s, {n / build_f:.0f} docs/s, CPU {cpu_f:.1f} s,"
        f" index {size_f / 1e6:.1f} MB"
    )

    return _queries(ix, con, per_class)


def _queries(
    ix: SearchIndex, con: sqlite3.Connection, per_class: int
) -> dict[str, dict[str, list[float]]]:
    for q in WARMUP:
        ix.search(q, SCOPE)
        fts5_search(con, q, False)

    times: dict[str, dict[str, list[float]]] = {"teachfile": {}, "fts5": {}}
    for cls, queries in CLASSES.items():
        qs = queries[:per_class]
        facet = cls == "facet"
        filters = FACET_FILTER if facet else None
        times["teachfile"][cls] = [
            timed(lambda q=q, f=filters: ix.search(q, SCOPE, filters=f)) for q in qs
        ]
        times["fts5"][cls] = [timed(lambda q=q, f=facet: fts5_search(con, q, f)) for q in qs]
    con.close()

    print(f"{'class':10} {'engine':10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for cls in CLASSES:
        for engine in ("teachfile", "fts5"):
            v = times[engine][cls]
            print(
                f"{cls:10} {engine:10} {_pct(v, 0.5) * 1e3:8.1f} {_pct(v, 0.95) * 1e3:8.1f}"
                f" {max(v) * 1e3:8.1f}"
            )
    all_w = [t for v in times["teachfile"].values() for t in v]
    all_f = [t for v in times["fts5"].values() for t in v]
    p95w, p95f = _pct(all_w, 0.95), _pct(all_f, 0.95)
    print(
        f"{'ALL':10} {'teachfile':10} {_pct(all_w, 0.5) * 1e3:8.1f} {p95w * 1e3:8.1f}"
        f" {max(all_w) * 1e3:8.1f}"
    )
    print(
        f"{'ALL':10} {'fts5':10} {_pct(all_f, 0.5) * 1e3:8.1f} {p95f * 1e3:8.1f}"
        f" {max(all_f) * 1e3:8.1f}"
    )
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(
        f"p95 ratio teachfile/fts5 = {p95w / p95f:.2f}; max query {max(all_w) * 1e3:.0f} ms; "
        f"goal p95 ratio <= 1.0, max < 1000 ms, 100k build < 600 s"
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated case counts")
    parser.add_argument("--queries", type=int, default=20, help="queries per class (max 20)")
    parser.add_argument("--keep", help="keep the indexes in this directory")
    parser.add_argument(
        "--reuse", action="store_true", help="with --keep: query the indexes built before"
    )
    args = parser.parse_args()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tf-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for n in (int(s) for s in args.sizes.split(",")):
            run(n, min(args.queries, 20), workdir, reuse=args.reuse)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
