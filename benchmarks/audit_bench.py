"""Time `xl-expense audit` on 100k- and 1,048,576-row ledgers against an openpyxl round-trip.

Run by hand (results are quoted in issue notes, not asserted in tests):

    .venv/bin/python benchmarks/audit_bench.py [--sizes 100000,1048573] [--skip-openpyxl-above N]

Each measurement runs in a fresh process, so start-up is included and peak memory (max RSS
of the child) is comparable. Targets (issue 2): 100k rows in ≤ 0.10× the openpyxl
load-and-save of the same file; 1,048,576 rows in ≤ 60 s and ≤ 3 GB peak.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_ledger import write_big_ledger  # noqa: E402

OPENPYXL_ROUND_TRIP = "import openpyxl,sys; wb=openpyxl.load_workbook(sys.argv[1]); wb.save(sys.argv[2])"


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one child process."""
    started = time.perf_counter()
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would report the max over all children).
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr.read().decode()}")
    return seconds, usage.ru_maxrss / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1048573", help="rows per ledger (1,048,573 + title, header, 合计 = Excel's maximum)")
    parser.add_argument("--skip-openpyxl-above", type=int, default=2_000_000,
                        help="skip the (slow) openpyxl round-trip for ledgers larger than this")
    args = parser.parse_args()
    xl_expense = [sys.executable, "-m", "xl_expense"]
    with tempfile.TemporaryDirectory(prefix="xle-bench-") as tmp:
        for rows in (int(s) for s in args.sizes.split(",")):
            src = write_big_ledger(Path(tmp, f"ledger_{rows}.xlsx"), rows)
            mb = src.stat().st_size / 1e6
            audit_s, audit_gb = timed([*xl_expense, "audit", str(src), "-o", str(Path(tmp, f"out_{rows}.xlsx"))])
            print(f"{rows:>9,} rows ({mb:.0f} MB): xl-expense audit {audit_s:6.1f} s, peak {audit_gb:.2f} GB",
                  end="", flush=True)
            if rows <= args.skip_openpyxl_above:
                rt_s, rt_gb = timed([sys.executable, "-c", OPENPYXL_ROUND_TRIP, str(src), str(Path(tmp, "rt.xlsx"))])
                print(f" | openpyxl load+save {rt_s:6.1f} s, peak {rt_gb:.2f} GB | ratio {audit_s / rt_s:.3f}×", end="")
            print(flush=True)


if __name__ == "__main__":
    main()
