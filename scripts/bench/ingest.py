"""Benchmark: DICOM ingest over loopback, Teachfile's receiver against dcmtk's storescp.

dcmtk's ``storescu`` sends N uncompressed 512x512 CT images, with 1 and with 4
associations at once, to (a) ``storescp`` writing files to disk and (b)
``teachfile receive`` de-identifying and storing each object (file + rows)
before it answers. Prints images/s, MB/s, receiver CPU ms per image and the
ratio to storescp, all measured in this run.

    .venv/bin/python scripts/bench/ingest.py [--count 1000]

Goal (issue 5): Teachfile at least 0.3x storescp with 1 association, and faster
with 4 associations than with 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

CLK_TCK = os.sysconf("SC_CLK_TCK")
# dcmtk leaves Nagle's algorithm on unless TCP_NODELAY is set; with it on, every
# object waits for a delayed ACK (storescp: 22 images/s instead of ~900 here).
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
TEACHFILE = [sys.executable, "-m", "app.cli"]


def make_corpus(folder: Path, count: int, associations: int) -> int:
    """``count`` CT slices of one study, split into ``associations`` sub-folders."""
    rng = np.random.default_rng(7)
    study, series = generate_uid(), generate_uid()
    yy, xx = np.mgrid[-256:256, -256:256]
    body = ((xx / 200.0) ** 2 + (yy / 150.0) ** 2) <= 1
    total = 0
    for index in range(count):
        pixels = np.where(body, 1040, 24).astype(np.int16)
        pixels += rng.normal(0, 12, pixels.shape).astype(np.int16)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "BENCH^PATIENT", "BENCH-1", "19600101"
        ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20260101", "101010", "ACC1"
        ds.Modality, ds.BodyPartExamined, ds.InstanceNumber = "CT", "CHEST", index + 1
        ds.ImagePositionPatient = [0, 0, index * 1.25]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.25
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.BurnedInAnnotation = "NO"
        ds.PixelData = pixels.tobytes()
        target = folder / f"a{index % associations}" / f"{index:05d}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        total += target.stat().st_size
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (the receiver's worker processes)."""
    total = 0.0
    for task in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in path.read_text().split():
            found.extend([int(child), *_children(int(child))])
    return found


@dataclass
class Run:
    name: str
    associations: int
    seconds: float
    cpu: float
    count: int
    size: int

    def line(self, reference: Run | None) -> str:
        ratio = f"{reference.seconds / self.seconds:5.2f}x" if reference else "  ref"
        return (
            f"{self.name:<22} {self.associations} assoc  {self.count / self.seconds:8.1f} img/s"
            f"  {self.size / self.seconds / 1e6:7.1f} MB/s"
            f"  {1000 * self.cpu / self.count:7.2f} CPU ms/img  {ratio}"
        )


def send(corpus: Path, port: int, associations: int, calling: str) -> float:
    started = time.perf_counter()
    senders = [
        subprocess.Popen(
            ["storescu", "-aet", calling, "-aec", "TEACHFILE", "-xs", "+sd", "127.0.0.1",
             str(port), str(corpus / f"a{i}")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=DCMTK_ENV,
        )
        for i in range(associations)
    ]
    for sender in senders:
        _, err = sender.communicate(timeout=1800)
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - started


def run_storescp(corpus: Path, work: Path, associations: int, count: int, size: int) -> Run:
    out = work / f"storescp-{associations}"
    out.mkdir()
    port = free_port()
    server = subprocess.Popen(
        ["storescp", *(["--fork"] if associations > 1 else []), "-od", str(out), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=DCMTK_ENV,
    )
    try:
        wait_for_port(port)
        before = cpu_seconds(server.pid)
        seconds = send(corpus, port, associations, "BENCH")
        cpu = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = sum(1 for _ in out.rglob("*") if _.is_file())
    assert stored == count, f"storescp stored {stored} of {count}"
    # --fork children's CPU is not in the parent's counters; wall time is what we compare.
    return Run("storescp (dcmtk)", associations, seconds, cpu, count, size)


def run_teachfile(
    corpus: Path, work: Path, associations: int, count: int, size: int, workers: int
) -> Run:
    data = work / f"teachfile-{associations}-{workers}"
    env = {**os.environ, "TEACHFILE_DATA_DIR": str(data), "TEACHFILE_LOAD_SAMPLE_CASES": "false"}
    for command in (["init"], ["institutions", "add", "Bench Hospital"],
                    ["sources", "add", "BENCH", "--institution", "Bench Hospital"]):
        subprocess.run([*TEACHFILE, *command], env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [*TEACHFILE, "receive", "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port)
        before = cpu_seconds(server.pid)
        seconds = send(corpus, port, associations, "BENCH")
        cpu = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(timeout=30)
    stored = sum(1 for p in (data / "objects").rglob("*") if p.is_file())
    assert stored == count, f"teachfile stored {stored} of {count}"
    return Run(f"teachfile, {workers} process(es)", associations, seconds, cpu, count, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    if not shutil.which("storescu"):
        sys.exit("dcmtk is needed: apt-get install dcmtk")
    with tempfile.TemporaryDirectory(prefix="teachfile-bench-") as tmp:
        work = Path(tmp)
        results: list[tuple[Run, Run]] = []
        workers = min(4, os.cpu_count() or 1)
        for associations in (1, 4):
            corpus = work / f"corpus-{associations}"
            size = make_corpus(corpus, args.count, associations)
            reference = run_storescp(corpus, work, associations, args.count, size)
            ours = run_teachfile(corpus, work, associations, args.count, size, workers)
            results.append((reference, ours))
            shutil.rmtree(corpus)
        print(f"{args.count} CT images of 512x512, {size / args.count / 1024:.0f} KiB each;"
              f" teachfile stores durably (fsync file, directory and database) before it answers")
        for reference, ours in results:
            print(reference.line(None))
            print(ours.line(reference))
        one, four = results[0][1], results[1][1]
        ratio_one = results[0][0].seconds / one.seconds
        print(f"goal 1: teachfile/storescp with 1 association = {ratio_one:.2f}x (goal >= 0.30x)"
              f" -> {'met' if ratio_one >= 0.3 else 'NOT met'}")
        speedup = one.seconds / four.seconds
        print(f"goal 2: 4 associations vs 1 = {speedup:.2f}x faster (goal > 1)"
              f" -> {'met' if speedup > 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
