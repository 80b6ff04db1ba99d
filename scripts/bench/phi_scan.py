"""How long one identifier scan of a 5 kB case takes (it runs on every save; budget ~20 ms).

The case is made of the labelled set's clean sentences (tests/data/phi_corpus.txt)
plus one identifying sentence in twenty, spread over the sections a case has, with 50
registered institutions (few findings, so the scan never stops early at its cap).
Prints the first call (which loads the name lists), then the median and the 95th
percentile of the following calls, in wall-clock and in CPU time (the machine may be
shared), and the same per kB of text.

    .venv/bin/python scripts/bench/phi_scan.py [--kb 5] [--runs 300]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import time
from pathlib import Path

from app.services import phi_scan

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("History", "Findings", "Diagnosis", "Differential", "Discussion", "Teaching points")


def case_text(kilobytes: float) -> dict[str, str]:
    lines = ROOT.joinpath("tests", "data", "phi_corpus.txt").read_text("utf-8").splitlines()
    clean = [line[2:] for line in lines if line.startswith("C\t")]
    marked = [re.sub(r"\[\[|\]\]", "", line[2:]) for line in lines if line.startswith("P\t")]
    sentences = [marked[i // 20] if i % 20 == 19 else s for i, s in enumerate(clean)]
    fields = dict.fromkeys(SECTIONS, "")
    total = 0
    for section, sentence in zip(
        itertools.cycle(SECTIONS), itertools.cycle(sentences), strict=False
    ):
        if total >= kilobytes * 1000:
            break
        fields[section] += sentence + " "
        total += len(sentence) + 1
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    fields = case_text(args.kb)
    size = sum(len(t) for t in fields.values())
    institutions = (*(f"Regional Health Service {i}" for i in range(49)), "Outback District")

    started = time.perf_counter()
    first = phi_scan.scan_texts(fields, institutions)
    cold = (time.perf_counter() - started) * 1000
    wall, cpu = [], []
    for _ in range(args.runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        phi_scan.scan_texts(fields, institutions)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    print(f"text: {size} characters in {len(fields)} fields, {len(first)} findings")
    print(f"first scan (loads the name lists): {cold:.1f} ms")
    # The machine may be shared: CPU time is what one scan costs, wall time what it took.
    for name, times in (("wall", wall), ("cpu", cpu)):
        median = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(
            f"scan {name:4}: median {median:.2f} ms, p95 {p95:.2f} ms over {args.runs} runs "
            f"({median / (size / 1000):.2f} ms per kB); budget ~20 ms"
        )
    print(
        "load average: "
        + " ".join(f"{x:.1f}" for x in os.getloadavg())
        + f" on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
