"""Benchmark: Teachfile's de-identification against dicognito and pydicom's deid.

Builds a mixed corpus (native CT slices, RLE, JPEG 2000, implicit VR, enhanced
multi-frame, SR, pydicom's bundled JPEG / JPEG-LS / deflate / big endian files),
with identifiers planted everywhere (tests/dicom/corpus.py), then runs each tool on
the same files in its own process and prints files/s, peak memory (max RSS) and
what each left behind (files still holding a planted value).

    .venv/bin/python scripts/bench/deid.py [--files 320] [--runs 3] [--skip-deid]

Goal (issues 4 and 14): Teachfile >= 2x dicognito's files/s as the median of three
runs (each run measures every tool once, in turn, on the same files), with nothing
left behind. Teachfile's figures are for the allow-list profile with IOD Types.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# this file is called deid.py: drop its folder from the path so `import deid` finds the package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


def build_corpus(folder: Path, count: int) -> None:
    import numpy as np
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        JPEG2000Lossless,
        RLELossless,
    )

    from tests.dicom import corpus

    folder.mkdir(parents=True, exist_ok=True)
    base = 0
    templates: dict[str, bytes] = {}
    for index in range(count):
        kind = index % 10
        name = folder / f"file{index:05d}.dcm"
        patient = f"PHIMRN{index % 25:06d}"
        study, series, sop = 100 + index // 40, 1000 + index // 20, 10000 + index
        if kind in range(6):  # 60 %: 512 x 512 CT slices, native, explicit and implicit VR
            syntax = ExplicitVRLittleEndian if kind % 2 else ImplicitVRLittleEndian
            ds = corpus.ct_image(patient=patient, study=study, series=series, sop=sop,
                                 syntax=ExplicitVRLittleEndian)
            ds.Rows = ds.Columns = 512
            ds.PixelData = (np.arange(512 * 512, dtype="<u2") % 4096).tobytes()
            ds.file_meta.TransferSyntaxUID = syntax
        elif kind == 6:  # RLE, 256 x 256
            ds = corpus.ct_image(patient=patient, study=study, series=series, sop=sop,
                                 syntax=ExplicitVRLittleEndian)
            ds.Rows = ds.Columns = 256
            ds.PixelData = (np.arange(256 * 256, dtype="<u2") % 2048).tobytes()
            key = "rle"
            if key not in templates:
                ds.compress(RLELossless)
            else:
                ds.PixelData = templates[key]
                ds.file_meta.TransferSyntaxUID = RLELossless
                ds["PixelData"].VR = "OB"
            templates.setdefault(key, ds.PixelData)
        elif kind == 7:
            ds = corpus.ct_image(patient=patient, study=study, series=series, sop=sop,
                                 syntax=JPEG2000Lossless)
        elif kind == 8:
            ds = [corpus.enhanced_ct(study=study, series=series, sop=sop),
                  corpus.sr_document(referenced_sop=sop - 1, study=study),
                  corpus.mr_image(study=study, series=series, sop=sop)][index // 10 % 3]
            ds.SOPInstanceUID = corpus.uid(sop)
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        else:
            bundled = corpus.BUNDLED[base % len(corpus.BUNDLED)]
            base += 1
            ds = corpus.bundled(bundled, sop=sop)
        name.write_bytes(corpus.to_bytes(ds))


def leftovers(folder: Path) -> int:
    from tests.dicom import corpus

    dirty = 0
    for path in folder.rglob("*.dcm"):
        data = path.read_bytes()
        if any(marker in data for marker in corpus.MARKERS):
            dirty += 1
    return dirty


# --- one tool per process, so each gets a clean heap and its own peak RSS ----------------------

def run_teachfile(src: Path, out: Path, workers: int) -> int:
    from app.cli import descriptor_identifiers
    from app.dicom.batch import deidentify_tree

    # as `teachfile deid` runs it: descriptors are cleaned with the identifier scan too
    summary = deidentify_tree(src, out, secret=b"bench-secret", source="bench",
                              quarantine_dir=out / "quarantine", workers=workers, progress=None,
                              find_identifiers=descriptor_identifiers)
    return summary.written + summary.quarantined


def run_dicognito(src: Path, out: Path) -> int:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer()
    done = 0
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        anonymizer.anonymize(ds)
        ds.save_as(out / path.name)
        done += 1
    return done


def run_deid(src: Path, out: Path) -> int:
    import logging

    from deid.dicom import replace_identifiers

    logging.disable(logging.WARNING)
    out.mkdir(parents=True, exist_ok=True)
    files = [str(p) for p in sorted(src.glob("*.dcm"))]
    replace_identifiers(dicom_files=files, save=True, output_folder=str(out), overwrite=True,
                        remove_private=True)
    return len(list(out.glob("*.dcm")))


def child(tool: str, src: Path, out: Path) -> None:
    import warnings

    warnings.simplefilter("ignore")  # the reference tools warn on every file; not our subject
    started = time.perf_counter()
    if tool == "teachfile":
        done = run_teachfile(src, out, os.cpu_count() or 1)
    elif tool == "teachfile-1core":
        done = run_teachfile(src, out, 1)
    elif tool == "dicognito":
        done = run_dicognito(src, out)
    else:
        done = run_deid(src, out)
    seconds = time.perf_counter() - started
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"done": done, "seconds": seconds, "peak_kib": peak}))


def measure(tool: str, src: Path, out: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", tool, str(src), str(out)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tool} failed: {proc.stderr.strip().splitlines()[-1:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    figures["files_s"] = figures["done"] / figures["seconds"]
    figures["left_behind"] = leftovers(out)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=320)
    parser.add_argument("--runs", type=int, default=3, help="the ratio is their median")
    parser.add_argument("--skip-deid", action="store_true", help="deid is slow; leave it out")
    parser.add_argument("--child", nargs=3, metavar=("TOOL", "SRC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="deid-bench-") as tmp:
        src = Path(tmp) / "in"
        build_corpus(src, args.files)
        size = sum(p.stat().st_size for p in src.glob("*.dcm")) / 1e6
        print(f"corpus: {args.files} files, {size:.0f} MB, {os.cpu_count()} cores")
        tools = ["teachfile", "teachfile-1core", "dicognito"] + ([] if args.skip_deid else ["deid"])
        runs: list[dict[str, dict[str, float]]] = []
        for number in range(1, args.runs + 1):
            results = {tool: measure(tool, src, Path(tmp) / f"{tool}-{number}") for tool in tools}
            runs.append(results)
            print(f"-- run {number}")
            for tool, f in results.items():
                print(f"{tool:16s} {f['done']:5.0f} files  {f['seconds']:7.2f} s  "
                      f"{f['files_s']:8.1f} files/s  peak {f['peak_kib'] / 1024:6.0f} MiB  "
                      f"left behind: {f['left_behind']:.0f} files")
            print(f"ratio teachfile / dicognito: "
                  f"{results['teachfile']['files_s'] / results['dicognito']['files_s']:.2f}x")
        median = {tool: statistics.median(r[tool]["files_s"] for r in runs) for tool in tools}
        peak = {tool: max(r[tool]["peak_kib"] for r in runs) / 1024 for tool in tools}
        print(f"-- median of {len(runs)} runs")
        for tool in tools:
            print(f"{tool:16s} {median[tool]:8.1f} files/s  peak {peak[tool]:6.0f} MiB")
        print(f"ratio teachfile / dicognito: {median['teachfile'] / median['dicognito']:.2f}x "
              f"(goal >= 2x; on 1 core: {median['teachfile-1core'] / median['dicognito']:.2f}x)")
        if "deid" in median:
            print(f"ratio teachfile / deid: {median['teachfile'] / median['deid']:.2f}x")
        if any(r["teachfile"]["left_behind"] or r["teachfile-1core"]["left_behind"]
               for r in runs):
            raise SystemExit("teachfile left planted identifiers behind")

if __name__ == "__main__":
    main()
