"""Workflows: read → core → write, written once and called by the CLI, the ribbon and batch.

Each workflow takes paths and plain options, does the IO through :mod:`xl_expense.io`,
the thinking through :mod:`xl_expense.core`, and returns a result object the caller can
print, show in a message box or add to a batch summary.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_expense import __version__
from xl_expense.core.audit import RULES, benford_analysis, run_audit, threshold_preview
from xl_expense.core.audit.anomaly import MIN_ROWS as FOREST_MIN_ROWS
from xl_expense.core.audit.anomaly import (
    anomaly_features,
    feature_matrix,
    forest_scorer,
    forest_scores,
    known_features,
)
from xl_expense.core.audit.registry import prepare_ledger
from xl_expense.core.audit.summary import summarize_findings
from xl_expense.core.budget_monitor import RULE_ID as BUDGET_RULE_ID
from xl_expense.core.budget_monitor import budget_overrun_findings, monitor_budget
from xl_expense.core.settings import Settings
from xl_expense.errors import OutputError, XlExpenseError
from xl_expense.io.audit_sheets import build_audit_sheets
from xl_expense.io.budget_book import BudgetBook, read_budget_book
from xl_expense.io.csv_export import write_findings_csv
from xl_expense.io.ledger_reader import Ledger, load_ledger, open_workbook
from xl_expense.io.plain_copy import PACKAGE_SUFFIXES, copy_values_to_xlsx
from xl_expense.io.reviewer_notes import our_sheet_names, read_reviewer_notes
from xl_expense.io.safety import check_package
from xl_expense.io.settings_io import load_settings
from xl_expense.io.xlsx_package import add_sheets

#: Titles of findings that come from outside the rule registry.
EXTRA_RULE_TITLES = {BUDGET_RULE_ID: {"zh": "超出预算", "en": "Over budget"}}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

Progress = Callable[[int, int], None]


@dataclass
class AuditResult:
    """What one audit run produced; the CLI prints it, the ribbon shows it."""

    input: Path
    output: Path
    ledger: Ledger
    findings: pd.DataFrame
    settings: Settings
    run_record: dict[str, Any]
    findings_csv: Path | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def default_output(path: Path, tag: str = "audited") -> Path:
    """``<name>_<tag>.xlsx`` next to the input; ``.xlsm`` stays ``.xlsm`` (its macros survive)."""
    suffix = path.suffix.lower() if path.suffix.lower() in PACKAGE_SUFFIXES else ".xlsx"
    return path.with_name(f"{path.stem}_{tag}{suffix}")


def file_sha256(path: Path) -> str:
    """SHA-256 of the input, recorded so a reviewer can prove which file was audited."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_output(path: Path, output: str | Path | None, in_place: bool, tag: str = "audited") -> Path:
    """Where a workflow writes: the input itself only when asked, else ``output`` or the default.

    Shared by every workflow so that "the input is never modified unless asked" holds in one place.
    """
    if in_place:
        if path.suffix.lower() not in PACKAGE_SUFFIXES:
            raise OutputError(f"--in-place works only for {'/'.join(PACKAGE_SUFFIXES)} files",
                              "drop --in-place; the result is written to a new .xlsx", str(path))
        return path
    out = Path(output) if output else default_output(path, tag)
    if out.exists() and out.resolve() == path.resolve():
        raise OutputError("the output would overwrite the input",
                          "choose another -o, or pass --in-place (keeps a .bak)", str(path))
    if path.suffix.lower() in PACKAGE_SUFFIXES and out.suffix.lower() != path.suffix.lower():
        raise OutputError(f"output must keep the input's type ({path.suffix})",
                          f"name the output …{path.suffix}", str(out))
    return out


def audit_workbook(
    path: str | Path,
    output: str | Path | None = None,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    config: str | Path | None = None,
    lang: str | None = None,
    dayfirst: bool = False,
    in_place: bool = False,
    findings_csv: str | Path | None = None,
    progress: Progress | None = None,
    now: dt.datetime | None = None,
) -> AuditResult:
    """Audit the expense ledger in a workbook and write the audit sheets into a copy of it.

    The input is never modified unless ``in_place`` (then a ``.bak`` copy is kept). Status
    and Comment a reviewer typed into an earlier audit's findings sheet are carried over to
    the findings that still exist. Raises :class:`~xl_expense.errors.XlExpenseError` with a
    message that says how to fix the problem.
    """
    started = time.perf_counter()
    path = Path(path)
    try:
        if not path.is_file():
            raise XlExpenseError("file not found", "check the path and the file name")
        out = resolve_output(path, output, in_place)
        check_package(path)
        with ExitStack() as stack:
            # One calamine open for settings, ledger, reviewer notes and budget: each open
            # parses the shared strings and styles again.
            book = _open_once(path)
            if book is not None:
                stack.callback(book.close)
            settings, settings_source = load_settings(path, config, {"lang": lang}, book=book)
            worker = None
            if _ForestWorker.wanted(path, settings):
                worker = _ForestWorker.start(stack.enter_context(tempfile.TemporaryDirectory(prefix="xle-forest-")))
                if worker is not None:
                    stack.callback(worker.close)
            ledger = load_ledger(path, sheet=sheet, mapping=dict(mapping or {}), dayfirst=dayfirst,
                                 progress=progress, book=book)
            if worker is not None:
                prepared, features = worker.submit(ledger.df, settings)
                stack.enter_context(forest_scorer(worker.scores))
                stack.enter_context(known_features(prepared, features))
            # A CSV cannot hold an earlier audit's sheets, so it has no reviewer notes to carry over.
            notes = None if path.suffix.lower() == ".csv" else read_reviewer_notes(path, book=book)
            budget = read_budget_book(path, book=book)
            # Benford and the preview do not depend on the forest: computed while the worker scores.
            benford = benford_analysis(ledger.df, settings)
            preview = threshold_preview(ledger.df, settings)
            findings = run_audit(ledger.df, settings)
        findings = _with_budget_findings(path, ledger, findings, settings, now, budget)
        run_record = _run_record(path, ledger, settings, settings_source, now)
        sheets = build_audit_sheets(
            findings,
            ledger=ledger,
            settings=settings,
            summary=summarize_findings(findings, ledger.df),
            benford=benford,
            preview=preview,
            notes=notes,
            run_record=run_record,
            rule_titles={**{rule_id: r.title(settings.lang) for rule_id, r in RULES.items()},
                         **{rule_id: titles[settings.lang] for rule_id, titles in EXTRA_RULE_TITLES.items()}},
        )
        _write(path, out, sheets, in_place)
        csv_path = None
        if findings_csv:
            csv_path = Path(findings_csv)
            write_findings_csv(findings, csv_path, lang=settings.lang, ledger_df=ledger.df)
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    counts = findings["severity"].value_counts().to_dict() if len(findings) else {}
    return AuditResult(
        input=path, output=out, ledger=ledger, findings=findings, settings=settings,
        run_record=run_record, findings_csv=csv_path, seconds=time.perf_counter() - started,
        counts={k: int(v) for k, v in counts.items()},
    )


def _with_budget_findings(path: Path, ledger: Ledger, findings: pd.DataFrame, settings: Settings,
                          now: dt.datetime | None, book: BudgetBook | None) -> pd.DataFrame:
    """Add ``budget_overrun`` findings when the workbook is a budget workbook (has ``XE_Budget``).

    Lines whose category is controlled with ``Stop`` and that spent past their limit are
    errors, ``Warn`` lines warnings (ERPNext's budget control); the order stays by severity.
    ``book``: the workbook's budget as :func:`read_budget_book` read it (None: not a budget
    workbook).
    """
    if book is None or book.budget.empty:
        return findings
    as_of = settings.as_of or (now or dt.datetime.now()).date()
    alerts = monitor_budget(book.budget, ledger.df, as_of=as_of, year=book.year, unit_by=book.budget_by,
                            policy=book.policy, lang=settings.lang)
    extra = budget_overrun_findings(alerts, settings.lang, policy=book.policy)
    if extra.empty:
        return findings
    merged = pd.concat([findings, extra], ignore_index=True)
    order = merged["severity"].map(_SEVERITY_ORDER)
    return merged.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def _open_once(path: Path) -> Any:
    """The workbook opened for all of the audit's readers, or None (CSV, or unreadable: then
    the ledger reader opens it itself and says what is wrong, as it always has)."""
    try:
        return open_workbook(path)
    except XlExpenseError:
        return None


def _write(path: Path, out: Path, sheets: list, in_place: bool) -> None:
    """Add the sheets to a copy of the package; non-package inputs get a plain .xlsx base first."""
    replace = our_sheet_names()
    if in_place:
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    if path.suffix.lower() in PACKAGE_SUFFIXES:
        add_sheets(path, out, sheets, replace=replace)
        return
    base = out.with_name(f".{out.stem}.base.xlsx")
    try:
        copy_values_to_xlsx(path, base)
        add_sheets(base, out, sheets, replace=replace)
    finally:
        base.unlink(missing_ok=True)


def _run_record(path: Path, ledger: Ledger, settings: Settings, source: dict[str, Any],
                now: dt.datetime | None) -> dict[str, Any]:
    """Everything needed to reproduce or trust this run, written on the summary sheet."""
    return {
        "tool_version": f"xl-expense {__version__}",
        "input_file": path.name,
        "input_sha256": file_sha256(path),
        "time": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "lang": settings.lang,
        "ledger_sheet": ledger.sheet,
        "header_row": ledger.header_row,
        "table": ledger.table_name or "",
        "rows_read": len(ledger.df),
        "rows_rejected": len(ledger.rejected),
        "settings_source": source["source"],
        "settings_ignored": ", ".join(source.get("ignored", [])),
        "settings": settings.to_dict(),
        "python": platform.python_version(),
        "pandas": pd.__version__,
        "scikit-learn": _sklearn_version(),
    }


# ---------------------------------------------------------------------------------------------
# the IsolationForest in a worker process
# ---------------------------------------------------------------------------------------------

#: Workbooks at least this large get their forest fitted in a worker process (below it the
#: ledger is small and the worker's start-up would cost more than it hides).
FOREST_WORKER_MIN_BYTES = 256 * 1024
#: Set to 0 to fit the forest in this process always (debugging, comparisons).
FOREST_WORKER_ENV = "XL_EXPENSE_FOREST_WORKER"
#: A worker that has not answered by then is abandoned and the forest fitted here.
FOREST_WORKER_TIMEOUT = 900.0

# The worker imports scikit-learn first (≈1 s, mostly scipy.stats) while this process reads
# the workbook, then waits for one request line "<matrix .npy path>\t<random_state>\t<share>"
# and answers with the scores as .npy on stdout. It runs the very same forest_scores, so the
# scores are identical to fitting here.
_FOREST_WORKER_CODE = """\
import sys
sys.path[0] = sys.argv[1]  # this package's root, not the caller's working directory
import numpy as np
import sklearn.ensemble, sklearn.pipeline, sklearn.preprocessing
from xl_expense.core.audit.anomaly import forest_scores
line = sys.stdin.readline()
if line.strip():
    path, random_state, share = line.rstrip("\\n").split("\\t")
    scores = forest_scores(np.load(path), int(random_state), float(share))
    np.save(sys.stdout.buffer, np.ascontiguousarray(scores, dtype="float64"))
    sys.stdout.flush()
"""


class _ForestWorker:
    """A worker process that fits and scores the audit's IsolationForest in parallel.

    Why: importing scikit-learn and scoring 100k rows take about as long as reading the
    workbook, and the audit has nothing else to do with a second core. The worker is started
    before the workbook is read (it imports scikit-learn meanwhile), gets the feature matrix
    as soon as the ledger is known, and scores it while the other rules run. Any failure
    (no interpreter, a crash, a timeout) falls back to fitting here: same function, same
    scores, only slower.
    """

    def __init__(self, proc: subprocess.Popen, tmp_dir: str):
        self._proc = proc
        self._tmp_dir = tmp_dir
        self._request: tuple[np.ndarray, int, float] | None = None

    @classmethod
    def start(cls, tmp_dir: str) -> _ForestWorker | None:
        """A running worker, or None when no process can be started (then: fit here)."""
        # The worker must import this very package (also from a source tree), whatever the
        # caller's working directory holds.
        package_root = str(Path(__file__).resolve().parent.parent)
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window under Excel
        try:
            proc = subprocess.Popen([sys.executable, "-c", _FOREST_WORKER_CODE, package_root], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, creationflags=flags)
        except (OSError, ValueError):
            return None
        return cls(proc, tmp_dir)

    @staticmethod
    def wanted(path: Path, settings: Settings) -> bool:
        """Worth a worker: a large workbook, the forest rule on, and workers allowed."""
        if os.environ.get(FOREST_WORKER_ENV, "1") == "0" or getattr(sys, "frozen", False) or not sys.executable:
            return False
        if "isolation_forest" in settings.disabled_rules:
            return False
        try:
            return path.stat().st_size >= FOREST_WORKER_MIN_BYTES
        except OSError:
            return False

    def submit(self, ledger_df: pd.DataFrame, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Send the feature matrix of ``ledger_df`` (as the rule will compute it) to the worker.

        Returns the ledger as the rules see it and its features, for the rule to reuse.
        """
        prepared = prepare_ledger(ledger_df)
        features = anomaly_features(prepared)
        if len(features) < FOREST_MIN_ROWS:
            self.close()
            return prepared, features
        X = feature_matrix(features)
        matrix = os.path.join(self._tmp_dir, "forest_features.npy")
        np.save(matrix, X)
        request = f"{matrix}\t{int(settings.random_state)}\t{float(settings.anomaly_contamination)!r}\n"
        try:
            self._proc.stdin.write(request.encode("utf-8"))
            self._proc.stdin.flush()  # one short line: fits the pipe even while the worker imports
        except OSError:  # the worker died already; the scorer falls back
            return prepared, features
        self._request = (X, int(settings.random_state), float(settings.anomaly_contamination))
        return prepared, features

    def scores(self, X: np.ndarray, random_state: int, contamination: float) -> np.ndarray:
        """The worker's scores for ``X`` if it was asked exactly this, else fitted here."""
        answer = self._answer(X, random_state, contamination)
        return answer if answer is not None else forest_scores(X, random_state, contamination)

    def _answer(self, X: np.ndarray, random_state: int, contamination: float) -> np.ndarray | None:
        request, self._request = self._request, None
        if request is None or (random_state, contamination) != request[1:] or not np.array_equal(X, request[0]):
            return None
        try:
            out, _ = self._proc.communicate(timeout=FOREST_WORKER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.close()
            return None
        if self._proc.returncode != 0 or not out:
            return None
        try:
            scores = np.load(io.BytesIO(out), allow_pickle=False)
        except (ValueError, OSError, EOFError):  # a torn answer: fit here
            return None
        return scores if scores.shape == (len(X),) else None

    def close(self) -> None:
        """Stop the worker if it is still running (unused, or abandoned)."""
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.communicate(timeout=30)  # reap it and close its pipes
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass


def _sklearn_version() -> str:
    """scikit-learn's version without importing it (~1 s) when the forest ran in a worker."""
    if "sklearn" in sys.modules:
        return sys.modules["sklearn"].__version__
    from importlib import metadata

    return metadata.version("scikit-learn")
