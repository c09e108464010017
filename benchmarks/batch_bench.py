"""Time `xl-expense batch` on a folder of generated ledgers, --jobs 1 against --jobs N.

Run by hand (numbers go into the issue notes, nothing is asserted):

    .venv/bin/python benchmarks/batch_bench.py [--files 1000] [--rows 1000] [--jobs 1,2]
                                               [--steps convert,classify,audit] [--data DIR] [--profile 20]

Target (issue 6): 1,000 workbooks of ~1,000 rows in ≤ 2 min on 2 cores with --jobs 2. Each
batch runs in a fresh process (start-up, the fork server and its imports included) into an
empty output folder, so no file is skipped by resume. Reported per run: wall time, files/s,
the ratio to the first --jobs value, the peak resident memory of every worker process
(each worker measures its own ``ru_maxrss`` and the batch manifest records it per file), and
the workers' CPU seconds per file: on a machine shared with other work the wall-clock ratio
says little, while CPU ÷ jobs is what the run would take on that many idle cores.

``--profile N`` then times the steps of N files in this process (after a warm-up file, so
imports are counted once, separately): where a file's time goes — read, convert write,
classify, audit — to see what to speed up when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))
from make_ledger import write_big_ledger

BATCH = "from xl_expense.batch_cli import batch_command; batch_command()"


def make_inputs(folder: Path, files: int, rows: int) -> list[Path]:
    """``files`` ledgers of ``rows`` rows (different seeds), reused when already there."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(files):
        path = folder / f"branch_{i:04d}.xlsx"
        if not path.is_file():
            write_big_ledger(path, rows, seed=i)
        paths.append(path)
    return paths


def run_batch(in_dir: Path, out_dir: Path, jobs: int, steps: str) -> tuple[float, dict]:
    """Wall seconds of one batch in a child process, and its manifest."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", BATCH, str(in_dir), "-o", str(out_dir), "--jobs", str(jobs),
                           "--steps", steps], env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"batch failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-2000:]}")
    return seconds, json.loads((out_dir / "batch_manifest.json").read_text(encoding="utf-8"))


def worker_peaks(manifest: dict) -> dict[str, float]:
    """Peak RSS (MB) per worker process, from the per-file records."""
    peaks: dict[str, float] = {}
    for entry in manifest["files"].values():
        if entry.get("peak_rss_mb"):
            peaks[entry["worker"]] = max(peaks.get(entry["worker"], 0.0), entry["peak_rss_mb"])
    return peaks


def profile_files(paths: list[Path], steps: str, work: Path) -> None:
    """Per-step seconds for ``paths`` in this process: import, read, convert write, classify, audit."""
    started = time.perf_counter()
    from xl_expense.classify_workflow import classify_workbook
    from xl_expense.convert import convert_file, read_any
    from xl_expense.workflows import audit_workbook
    imports = time.perf_counter() - started

    timings: dict[str, list[float]] = {"read": [], "convert (read+write)": [], "classify": [], "audit": []}
    for i, path in enumerate(paths):
        sample: dict[str, float] = {}
        t = time.perf_counter()
        read_any(path)
        sample["read"] = time.perf_counter() - t
        source = path
        if "convert" in steps:
            t = time.perf_counter()
            converted = convert_file(path, work)
            sample["convert (read+write)"] = time.perf_counter() - t
            source = converted.step_source
        if "classify" in steps:
            t = time.perf_counter()
            source = classify_workbook(source, work / f"{path.stem}_classified.xlsx").output
            sample["classify"] = time.perf_counter() - t
        if "audit" in steps:
            t = time.perf_counter()
            audit_workbook(source, work / f"{path.stem}_audited.xlsx")
            sample["audit"] = time.perf_counter() - t
        if i == 0:
            continue  # warm-up: first calls fill caches (rule registry, holidays, sklearn)
        for key, value in sample.items():
            timings[key].append(value)
    print(f"\nper-file profile over {len(paths) - 1} files (after one warm-up), this process:")
    print(f"  imports (once per worker)        {imports * 1000:8.0f} ms")
    total = 0.0
    for key, values in timings.items():
        if values:
            mean = statistics.mean(values)
            if key != "read":
                total += mean
            print(f"  {key:<32} {mean * 1000:8.0f} ms  (median {statistics.median(values) * 1000:.0f})")
    print(f"  all steps                        {total * 1000:8.0f} ms per file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values; the first is the baseline")
    parser.add_argument("--steps", default="convert,classify,audit")
    parser.add_argument("--data", type=Path, help="folder for the generated inputs (kept and reused; "
                        "one subfolder per --files/--rows)")
    parser.add_argument("--profile", type=int, default=0, help="also profile the steps on this many files")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="xle-batch-bench-") as tmp:
        # one folder per size: the batch takes every file in its folder
        data = (args.data or Path(tmp)) / f"ledgers_{args.files}x{args.rows}"
        t = time.perf_counter()
        paths = make_inputs(data, args.files, args.rows)
        print(f"{len(paths)} ledgers × {args.rows} rows in {data} (ready in {time.perf_counter() - t:.0f} s), "
              f"steps {args.steps}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        baseline = None
        for jobs in (int(j) for j in args.jobs.split(",")):
            seconds, manifest = run_batch(data, Path(tmp, f"out_j{jobs}"), jobs, args.steps)
            baseline = baseline or seconds
            peaks = worker_peaks(manifest)
            failed = sum(e["status"] != "ok" for e in manifest["files"].values())
            cpu = sum(e.get("cpu_seconds", 0.0) for e in manifest["files"].values())
            print(f"--jobs {jobs}: {seconds:7.1f} s, {len(paths) / seconds:6.2f} files/s, "
                  f"speed-up {baseline / seconds:4.2f}× vs --jobs {args.jobs.split(',')[0]}, "
                  f"{failed} failed; peak RSS per worker (MB): "
                  f"{', '.join(f'{v:.0f}' for v in sorted(peaks.values()))}; "
                  f"worker CPU {cpu / len(paths) * 1000:.0f} ms/file → {cpu / jobs:.0f} s on {jobs} idle core(s), "
                  f"{cpu / len(paths) * 1000 / jobs:.0f} s per 1,000 files", flush=True)
        if args.profile:
            profile_files(paths[: args.profile + 1], args.steps, Path(tmp, "profile"))


if __name__ == "__main__":
    main()
