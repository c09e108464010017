"""Add two audit-like sheets to every workbook in ../shared/corpus and count the outcomes.

For each file: ``ok`` (every other member byte-identical, styles.xml append-only, the new
sheets read back with python-calamine; with ``--openpyxl`` also openpyxl loads the output
whenever it loaded the input), ``refused`` (a clear XlExpenseError: not a package, Strict
OOXML, .xlsb …, grouped by reason) or ``failed`` (anything else: a bug to look at).

With ``--audit`` each file goes through the whole audit workflow instead (read the ledger,
run every rule, write the audit sheets): ``ok`` then means an audited output whose other
members are byte-identical; a workbook without an expense table is ``refused`` with the
reader's "no expense table found" message.

    python benchmarks/corpus_check.py [--corpus DIR] [--audit] [--openpyxl] [--limit N] [--show-failures]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

from xl_expense.errors import XlExpenseError
from xl_expense.testing import audit_probe, probe_workbook

REPO = Path(__file__).resolve().parents[1]


def openpyxl_problem(src: Path, dst: Path) -> str | None:
    """'openpyxl cannot load the output' — only counted when it could load the input."""
    from openpyxl import load_workbook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            load_workbook(src).close()
        except Exception:
            return None
        try:
            load_workbook(dst).close()
        except Exception as exc:
            return f"openpyxl: {type(exc).__name__}: {exc}"
    return None


def reason_key(exc: XlExpenseError) -> str:
    """Group refusals by their message without file-specific details."""
    return re.sub(r"\(.*?\)|part \S+|\d[\d,]*", "…", exc.what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--openpyxl", action="store_true", help="also check openpyxl loads each output")
    parser.add_argument("--audit", action="store_true", help="run the full audit workflow on each file")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--show-failures", action="store_true")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"{args.corpus} absent", file=sys.stderr)
        return 2
    files = sorted(p for p in args.corpus.rglob("*") if p.is_file() and p.suffix.lower() != ".csv"
                   and p.name != "FEATURES.csv")
    if args.limit:
        files = files[:args.limit]
    counts = collections.Counter()
    refused = collections.Counter()
    failures: list[tuple[Path, str]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(files):
            dst = Path(tmp) / f"out{i}{path.suffix if path.suffix.lower() in ('.xlsx', '.xlsm') else '.xlsx'}"
            try:
                problems = audit_probe(path, dst) if args.audit else probe_workbook(path, dst)
                if not problems and args.openpyxl:
                    problem = openpyxl_problem(path, dst)
                    problems = [problem] if problem else []
            except XlExpenseError as exc:
                counts["refused"] += 1
                refused[reason_key(exc)] += 1
                continue
            except Exception as exc:  # a bug: report it, keep going
                problems = [f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"]
            finally:
                dst.unlink(missing_ok=True)
            if problems:
                counts["failed"] += 1
                failures.append((path, problems[0]))
            else:
                counts["ok"] += 1
    elapsed = time.perf_counter() - start
    print(f"{len(files)} files in {elapsed:.1f} s: ok {counts['ok']}, refused {counts['refused']}, failed {counts['failed']}")
    for reason, n in refused.most_common():
        print(f"  refused {n:4d}  {reason}")
    for path, problem in failures[: None if args.show_failures else 20]:
        print(f"  FAILED {path.relative_to(args.corpus)}: {problem.splitlines()[0][:300]}")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
