"""Time `xl-expense audit` on 100k- and 1,048,576-row ledgers against an openpyxl round-trip.

Run by hand (results are quoted in issue notes, not asserted in tests):

    .venv/bin/python benchmarks/audit_bench.py [--sizes 100000,1048573] [--skip-openpyxl-above N] [--repeat N]

Each measurement runs in a fresh process, so start-up is included and peak memory (max RSS
of the child) is comparable. Targets (issue 2): 100k rows in ≤ 0.10× the openpyxl
load-and-save of the same file; 1,048,576 rows in ≤ 60 s and ≤ 3 GB peak.

The machine may be shared: ``--repeat N`` alternates audit and round-trip N times on the same
file and reports each pair's ratio and their median; ``cpu`` is the audit's CPU seconds, so a
busy machine shows in ``wall`` > ``cpu``.

Both sides run with compiled bytecode, as installed packages do: pip compiled openpyxl's
when it installed it, and the script compiles xl_expense's first (an editable install only
gets it on its first run, and never where PYTHONDONTWRITEBYTECODE is set, as on this CI
machine; compiling its ~60 modules would then add ~0.25 s to every run).
``--without-bytecode`` removes it and measures every run compiling the modules again.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_ledger import write_big_ledger  # noqa: E402

OPENPYXL_ROUND_TRIP = "import openpyxl,sys; wb=openpyxl.load_workbook(sys.argv[1]); wb.save(sys.argv[2])"


def timed(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (GB) and CPU seconds of one child process (and what it waited for)."""
    started = time.perf_counter()
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would report the max over all children).
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024 / 1024, usage.ru_utime + usage.ru_stime


def _package_folders() -> list[str]:
    spec = importlib.util.find_spec("xl_expense")
    return list(spec.submodule_search_locations or [])


def compile_package() -> None:
    """Write xl_expense's bytecode (``__pycache__``), as pip does for an installed package."""
    for folder in _package_folders():
        compileall.compile_dir(folder, quiet=1)


def remove_bytecode() -> None:
    """Remove xl_expense's bytecode; the children then compile the modules on every run."""
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    for folder in _package_folders():
        for cache in Path(folder).rglob("__pycache__"):
            shutil.rmtree(cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1048573", help="rows per ledger (1,048,573 + title, header, 合计 = Excel's maximum)")
    parser.add_argument("--skip-openpyxl-above", type=int, default=2_000_000,
                        help="skip the (slow) openpyxl round-trip for ledgers larger than this")
    parser.add_argument("--repeat", type=int, default=1, help="audit/round-trip pairs per size (median reported)")
    parser.add_argument("--without-bytecode", action="store_true",
                        help="remove xl_expense's bytecode instead of compiling it (see above)")
    args = parser.parse_args()
    if args.without_bytecode:
        remove_bytecode()
    else:
        compile_package()
    xl_expense = [sys.executable, "-m", "xl_expense"]
    with tempfile.TemporaryDirectory(prefix="xle-bench-") as tmp:
        for rows in (int(s) for s in args.sizes.split(",")):
            src = write_big_ledger(Path(tmp, f"ledger_{rows}.xlsx"), rows)
            mb = src.stat().st_size / 1e6
            ratios = []
            for _ in range(max(args.repeat, 1)):
                audit_s, audit_gb, audit_cpu = timed([*xl_expense, "audit", str(src), "-o", str(Path(tmp, f"out_{rows}.xlsx"))])
                print(f"{rows:>9,} rows ({mb:.0f} MB): xl-expense audit {audit_s:6.1f} s (cpu {audit_cpu:5.1f} s), "
                      f"peak {audit_gb:.2f} GB", end="", flush=True)
                if rows <= args.skip_openpyxl_above:
                    rt_s, rt_gb, rt_cpu = timed([sys.executable, "-c", OPENPYXL_ROUND_TRIP, str(src), str(Path(tmp, "rt.xlsx"))])
                    ratios.append(audit_s / rt_s)
                    print(f" | openpyxl load+save {rt_s:6.1f} s (cpu {rt_cpu:5.1f} s), peak {rt_gb:.2f} GB "
                          f"| ratio {ratios[-1]:.3f}× (cpu {audit_cpu / rt_cpu:.3f}×)", end="")
                print(f" | load {os.getloadavg()[0]:.1f}", flush=True)
            if len(ratios) > 1:
                print(f"{rows:>9,} rows: median ratio {statistics.median(ratios):.3f}× over {len(ratios)} pairs", flush=True)


if __name__ == "__main__":
    main()
