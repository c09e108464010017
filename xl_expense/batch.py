"""The batch engine: a folder of workbooks and exports → standard, classified, audited workbooks.

``xl-expense batch IN_DIR -o OUT_DIR`` runs the steps (convert, classify, audit) over every
file, in parallel processes or on a dask.distributed cluster, and writes ``batch_summary.xlsx``.
The design follows from month end with thousands of files from people we do not control:

* **One file, one task.** :func:`run_file` does every step for one file and never raises: a
  corrupt zip, a password, a bomb, a wrong format becomes a failed row with a one-line
  ``<what> — <how to fix>``; the others go on. The same function runs locally and on dask.
* **Processes, not threads**, started by ``forkserver`` (``spawn`` where there is no fork):
  forking a parent that already runs rich's refresh thread or a BLAS pool can deadlock the
  child. The fork server preloads the workflows, so each worker starts with pandas,
  scikit-learn and the readers already imported.
* **A crashed worker** (python-calamine aborts the process when an allocation fails on a
  crafted file) breaks the pool; the files that were in flight are re-run one by one in a
  fresh pool, so only the culprit is marked failed.
* **Resume.** ``batch_manifest.json`` in OUT_DIR records, per file, the input's SHA-256, the
  settings hash and the steps, rewritten atomically as files finish (at most every
  :data:`MANIFEST_INTERVAL` seconds, and at the end): a re-run skips files whose three are
  unchanged and whose outputs still exist, so a killed batch resumes where it stopped.
  Failed files are always tried again.
* **Atomic outputs.** Every workbook is written to a temp file in its folder and moved over
  the target with ``os.replace``, so a kill leaves either the old file or the new one; stale
  temp files of a killed run are removed when the next run starts.

Outputs per input ``sub/north.csv`` (paths mirror IN_DIR; two inputs with the same stem in a
folder get the format in the name, ``north_csv``): ``sub/north_ledger.xlsx`` (convert),
``sub/north_classified.xlsx`` (classify), ``sub/north_audited.xlsx`` (audit; ``.xlsm`` stays
``.xlsm``). Each step reads the previous step's output; see :mod:`xl_expense.convert` for which
file the steps after convert read. With ``consolidate``: ``consolidated_ledger.xlsx`` (every
file's expenses with a ``source_file`` column) and ``consolidated_audited.xlsx`` (one audit
across all files: the same claim filed by two branches is a duplicate only there).

On a cluster (``executor="dask"``) the workers must see IN_DIR and OUT_DIR at the same paths
(a shared file system) and have xl-expense installed; dask schedules, we only submit.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd

from xl_expense import __version__
from xl_expense.convert import (
    INPUT_SUFFIXES,
    PACKAGE_SUFFIXES,
    convert_file,
    file_sha256,
    info_sheet,
    input_stem,
    ledger_sheet,
    read_any,
    read_standard_ledger,
    write_workbook,
)
from xl_expense.errors import OutputError, XlExpenseError
from xl_expense.io.table_sheet import table_sheet
from xl_expense.schema import LEDGER_COLUMNS, SEVERITIES

STEPS = ("convert", "classify", "audit")
DEFAULT_STEPS = STEPS
EXECUTORS = ("local", "dask")
SUMMARY_NAME = "batch_summary.xlsx"
MANIFEST_NAME = "batch_manifest.json"
CONSOLIDATED_LEDGER = "consolidated_ledger.xlsx"
CONSOLIDATED_AUDIT = "consolidated_audited.xlsx"
#: Seconds between manifest rewrites while files finish (a kill re-runs at most this much work).
MANIFEST_INTERVAL = 0.25
MANIFEST_FORMAT = 1
#: Output tag per step: ``<stem>_<tag>.xlsx``.
STEP_TAGS = {"convert": "ledger", "classify": "classified", "audit": "audited"}
#: Temp files and folders our writers leave behind only when killed mid-write.
_STALE = re.compile(r"^\..+\.(tmp|start\.xlsx|base\.xlsx)$")
_STALE_DIRS = (".xl-expense-", "xle-forest-")

OK, FAILED, SKIPPED = "ok", "failed", "skipped"
STATUS_LABELS = {"zh": {OK: "成功", FAILED: "失败", SKIPPED: "未变更，跳过"},
                 "en": {OK: "ok", FAILED: "failed", SKIPPED: "unchanged, skipped"}}


# ---------------------------------------------------------------------------------------------
# options, tasks, results
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchOptions:
    """What every file of a batch is run with; its hash decides whether a file is redone."""

    steps: tuple[str, ...] = DEFAULT_STEPS
    profile: str | None = None
    lang: str | None = None
    config: str | None = None

    def settings_sha256(self) -> str:
        """Hash of everything besides the input that changes the outputs (tool version included)."""
        record = {"tool": __version__, "profile": self.profile, "lang": self.lang,
                  "config": _content_hash(self.config), "steps": list(self.steps)}
        if self.profile and str(self.profile).endswith(".toml"):
            record["profile_file"] = _content_hash(self.profile)
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _content_hash(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return file_sha256(Path(path))
    except OSError:
        return "missing"


@dataclass(frozen=True)
class FileTask:
    """One file to process: picklable, so it travels to a worker process or a dask worker."""

    input: str          # absolute path
    key: str            # path relative to IN_DIR (posix): the file's name in the summary
    out_stem: str       # output path without tag and suffix, relative to OUT_DIR (posix)
    out_dir: str        # absolute OUT_DIR
    input_sha256: str
    settings_sha256: str
    options: BatchOptions


@dataclass
class FileResult:
    """One row of the batch summary (and one entry of the manifest)."""

    key: str
    status: str
    rows_read: int | None = None
    rows_rejected: int | None = None
    rows_excluded: int | None = None
    errors: int | None = None
    warnings: int | None = None
    infos: int | None = None
    amount_at_risk: float | None = None
    seconds: float = 0.0
    error: str = ""
    profile: str = ""
    #: Step → output path relative to OUT_DIR.
    outputs: dict[str, str] = field(default_factory=dict)
    #: The standard ledger (convert) or the file the steps read, for consolidation (relative or absolute).
    ledger_source: str = ""
    input_sha256: str = ""
    settings_sha256: str = ""
    steps: list[str] = field(default_factory=list)
    #: SHA-256 of the findings (id, rule, severity, sheet, row, amount): equal runs, equal digests.
    findings_sha256: str = ""
    worker: str = ""
    peak_rss_mb: float | None = None
    #: CPU seconds the worker spent on this file: the load-independent cost (benchmarks).
    cpu_seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileResult:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class BatchResult:
    """What a batch run did; ``exit_code`` is 1 when any file failed."""

    in_dir: Path
    out_dir: Path
    results: list[FileResult]
    summary: Path
    seconds: float
    consolidated: dict[str, Path] = field(default_factory=dict)
    consolidate_error: str = ""
    ignored: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.consolidate_error else 0

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (OK, SKIPPED, FAILED)}


# ---------------------------------------------------------------------------------------------
# the per-file task (runs in a worker process or on a dask worker)
# ---------------------------------------------------------------------------------------------

def run_file(task: FileTask) -> FileResult:
    """Run the batch's steps on one file; failures become a failed result, never an exception.

    Every step reads the previous step's output: convert writes the standard ledger, classify
    writes into a copy of the step source, audit into a copy of classify's output.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    options = task.options
    result = FileResult(key=task.key, status=OK, input_sha256=task.input_sha256,
                        settings_sha256=task.settings_sha256, steps=list(options.steps),
                        worker=f"{_hostname()}:{os.getpid()}")
    out_dir = Path(task.out_dir)
    try:
        _run_steps(task, Path(task.input), out_dir, result)
    except XlExpenseError as exc:
        result.status = FAILED
        result.error = _fix_line(exc)
    except MemoryError:
        result.status = FAILED
        result.error = "ran out of memory reading the file — split it, or run with fewer --jobs"
    except Exception as exc:  # noqa: BLE001 — a file we did not foresee must not stop the batch
        result.status = FAILED
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result.error = (f"unexpected {type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
                        " — report this file to the xl-expense maintainers")
    result.seconds = round(time.perf_counter() - started, 3)
    result.cpu_seconds = round(time.process_time() - cpu_started, 3)
    result.peak_rss_mb = _peak_rss_mb()
    return result


def _run_steps(task: FileTask, path: Path, out_dir: Path, result: FileResult) -> None:
    options = task.options
    source = path
    ledger = None
    target = out_dir / task.out_stem
    target.parent.mkdir(parents=True, exist_ok=True)
    if "convert" in options.steps:
        converted = convert_file(path, target.parent, profile=options.profile, lang=options.lang,
                                 output=_step_output(target, "convert", ".xlsx"))
        result.outputs["convert"] = _rel(converted.output, out_dir)
        result.profile = converted.profile or ""
        result.rows_excluded = converted.rows_excluded
        result.ledger_source = result.outputs["convert"]
        ledger = converted.ledger
        source = converted.step_source
        # The next step reads the input itself: hand it the ledger convert read from it.
        step_ledger = converted.ledger if source == path else None
    else:
        result.ledger_source = str(path)
        step_ledger = None
    if "classify" in options.steps:
        from xl_expense.classify_workflow import classified_ledger, classify_workbook

        classified = classify_workbook(source, _step_output(target, "classify", _package_suffix(source)),
                                       lang=options.lang, config=options.config, ledger=step_ledger)
        result.outputs["classify"] = _rel(classified.output, out_dir)
        ledger = ledger or classified.ledger
        source = classified.output
        step_ledger = classified_ledger(classified)
    if "audit" in options.steps:
        from xl_expense.workflows import audit_workbook

        audited = audit_workbook(source, _step_output(target, "audit", _package_suffix(source)),
                                 lang=options.lang, config=options.config, ledger=step_ledger)
        result.outputs["audit"] = _rel(audited.output, out_dir)
        ledger = ledger or audited.ledger
        severity = audited.findings["severity"].astype(str)
        result.errors, result.warnings, result.infos = (int((severity == s).sum()) for s in SEVERITIES)
        totals = audited.summary["totals"]
        result.amount_at_risk = round(float(totals["amount_at_risk"].iloc[0]), 2)
        result.findings_sha256 = findings_digest(audited.findings)
    if ledger is not None:
        result.rows_read = len(ledger.df)
        result.rows_rejected = len(ledger.rejected)


def _step_output(target: Path, step: str, suffix: str) -> Path:
    return target.with_name(f"{target.name}_{STEP_TAGS[step]}{suffix}")


def _package_suffix(source: Path) -> str:
    """``.xlsm`` stays ``.xlsm`` (its macros survive); anything else becomes ``.xlsx``."""
    suffix = source.suffix.lower()
    return suffix if suffix in PACKAGE_SUFFIXES else ".xlsx"


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _fix_line(exc: XlExpenseError) -> str:
    """``<what> — <how to fix>`` without the file name (the summary row names the file)."""
    return f"{exc.what} — {exc.fix}" if exc.fix else exc.what


def findings_digest(findings: pd.DataFrame) -> str:
    """A fingerprint of the findings that ignores run time and order of columns."""
    columns = [c for c in ("finding_id", "rule", "severity", "sheet", "row", "amount") if c in findings.columns]
    frame = findings[columns].astype(str).sort_values(columns, kind="stable")
    return hashlib.sha256(frame.to_csv(index=False).encode("utf-8")).hexdigest()


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far (MB); None where ``resource`` is missing."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


# ---------------------------------------------------------------------------------------------
# discovery and planning
# ---------------------------------------------------------------------------------------------

def discover(in_dir: Path, out_dir: Path | None = None) -> tuple[list[Path], list[Path]]:
    """Input files under ``in_dir`` (sorted) and the files ignored for their type.

    Hidden files and folders, Excel's ``~$`` lock files and ``out_dir`` (when it lies inside
    ``in_dir``) are not inputs.
    """
    inputs, ignored = [], []
    out_resolved = out_dir.resolve() if out_dir else None
    for root, dirs, files in os.walk(in_dir):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (out_resolved is None or (root_path / d).resolve() != out_resolved))
        for name in sorted(files):
            if name.startswith((".", "~$")):
                continue
            path = root_path / name
            (inputs if name.lower().endswith(INPUT_SUFFIXES) else ignored).append(path)
    return sorted(inputs, key=lambda p: p.relative_to(in_dir).as_posix()), ignored


def output_stems(in_dir: Path, inputs: Sequence[Path]) -> dict[Path, str]:
    """Output stem per input (relative posix path); same-stem inputs in a folder get their format."""
    stems: dict[Path, str] = {}
    by_stem: dict[str, list[Path]] = {}
    for path in inputs:
        rel = path.relative_to(in_dir)
        by_stem.setdefault((rel.parent / input_stem(path)).as_posix(), []).append(path)
    for stem, paths in by_stem.items():
        for path in paths:
            fmt = path.name[len(input_stem(path)):].lstrip(".").replace(".", "_").lower()
            stems[path] = f"{stem}_{fmt}" if len(paths) > 1 else stem
    return stems


def plan_tasks(in_dir: Path, out_dir: Path, inputs: Sequence[Path], options: BatchOptions) -> list[FileTask]:
    """One task per input, with its content hash (read here, once, to decide on resuming)."""
    settings = options.settings_sha256()
    stems = output_stems(in_dir, inputs)
    return [FileTask(input=str(p.resolve()), key=p.relative_to(in_dir).as_posix(), out_stem=stems[p],
                     out_dir=str(out_dir.resolve()), input_sha256=file_sha256(p), settings_sha256=settings,
                     options=options) for p in inputs]


# ---------------------------------------------------------------------------------------------
# the manifest (resume)
# ---------------------------------------------------------------------------------------------

class Manifest:
    """Per-file records of finished work in OUT_DIR, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self._written = 0.0
        self._cost = 0.0
        self._dirty = False
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if data.get("format") == MANIFEST_FORMAT:
                    self.entries = dict(data.get("files", {}))
            except (OSError, ValueError):
                self.entries = {}  # a damaged manifest only costs a full re-run

    def done(self, task: FileTask) -> FileResult | None:
        """The earlier result when ``task`` finished before with the same input, settings and steps."""
        entry = self.entries.get(task.key)
        if not entry or entry.get("status") != OK:
            return None
        if (entry.get("input_sha256"), entry.get("settings_sha256"), entry.get("steps")) != \
                (task.input_sha256, task.settings_sha256, list(task.options.steps)):
            return None
        out_dir = Path(task.out_dir)
        if not all((out_dir / rel).is_file() for rel in entry.get("outputs", {}).values()):
            return None
        return FileResult.from_dict(entry)

    def record(self, result: FileResult) -> None:
        self.entries[result.key] = asdict(result)
        self._dirty = True
        # A thousand-file manifest takes ~10 ms to write: flush at most 1/20 of the time, so
        # the parent does not take CPU from the workers on a machine with as many cores as jobs.
        if time.monotonic() - self._written >= max(MANIFEST_INTERVAL, 20 * self._cost):
            self.flush()

    def flush(self) -> None:
        """Write the manifest to a temp file and move it over the old one (never half a JSON)."""
        if not self._dirty:
            return
        started = time.monotonic()
        data = {"format": MANIFEST_FORMAT, "tool": __version__, "files": self.entries}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(tmp, self.path)
        self._written = time.monotonic()
        self._cost = self._written - started
        self._dirty = False


def remove_stale_temps(out_dir: Path) -> int:
    """Delete temp files and folders a killed run left in OUT_DIR; returns how many."""
    import shutil

    removed = 0
    for root, dirs, files in os.walk(out_dir):
        for name in files:
            if _STALE.match(name):
                Path(root, name).unlink(missing_ok=True)
                removed += 1
        for name in list(dirs):
            if name.startswith(_STALE_DIRS):
                shutil.rmtree(Path(root, name), ignore_errors=True)
                dirs.remove(name)
                removed += 1
    return removed


# ---------------------------------------------------------------------------------------------
# executors
# ---------------------------------------------------------------------------------------------

Report = Callable[[FileResult], None]


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver where available (no fork of a threaded parent), else spawn; preloads the workflows."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # Imported once in the fork server, so every worker starts with them loaded.
        ctx.set_forkserver_preload(["xl_expense.batch", "xl_expense.workflows", "xl_expense.classify_workflow"])
        return ctx
    return multiprocessing.get_context("spawn")


def run_local(tasks: Sequence[FileTask], jobs: int, report: Report, func: Callable[[FileTask], FileResult] = run_file) -> None:
    """Run ``func`` over ``tasks`` in ``jobs`` worker processes, reporting each result as it ends.

    Even ``jobs=1`` uses a worker process: a reader that aborts its process (see the module
    docstring) must not take the batch with it. At most ``2 × jobs`` tasks are queued at once
    so a Ctrl-C does not wait for thousands of queued files. When a worker process dies, the
    tasks in flight are re-run one at a time to find the one that kills it.
    """
    queue = deque(tasks)
    ctx = _mp_context()
    while queue:
        suspects: list[FileTask] = []
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            in_flight: dict[Future, FileTask] = {}
            try:
                while (queue or in_flight) and not suspects:
                    while queue and len(in_flight) < 2 * jobs:
                        task = queue.popleft()
                        in_flight[pool.submit(func, task)] = task
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    # Several may end together: report them in the order they were queued,
                    # not in the set's arbitrary order.
                    for future in [f for f in in_flight if f in done]:
                        task = in_flight.pop(future)
                        try:
                            report(future.result())
                        except BrokenProcessPool:
                            suspects.append(task)
                    if suspects:
                        suspects.extend(in_flight.values())
                        in_flight.clear()
            except BaseException:
                for future in in_flight:
                    future.cancel()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        for task in suspects:
            report(_run_isolated(task, ctx, func))


def _run_isolated(task: FileTask, ctx, func: Callable[[FileTask], FileResult]) -> FileResult:
    """``func(task)`` alone in a fresh worker: a second crash marks this very file failed."""
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        try:
            return pool.submit(func, task).result()
        except BrokenProcessPool:
            return FileResult(key=task.key, status=FAILED, input_sha256=task.input_sha256,
                              settings_sha256=task.settings_sha256, steps=list(task.options.steps),
                              error="the worker process crashed reading this file (a crafted or "
                                    "damaged file, or out of memory) — re-save it from Excel and retry")


def run_dask(tasks: Sequence[FileTask], scheduler: str | Any, report: Report) -> None:
    """Run :func:`run_file` over ``tasks`` on a dask.distributed cluster.

    ``scheduler`` is an address (``tcp://host:8786``) or a ``Client``/``LocalCluster``. dask
    does the scheduling, retries and data placement; a worker lost mid-task is reported as a
    failed file, the others go on.
    """
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise XlExpenseError("the dask executor needs dask.distributed",
                             "pip install 'xl-expense[cluster]'") from None
    own_client = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler) if own_client else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise XlExpenseError(f"cannot reach the dask scheduler at {scheduler} ({exc})",
                             "start it (dask scheduler) or check --scheduler tcp://host:8786") from None
    try:
        # pure=False: the same file after an edit must run again, and names must not collide.
        futures = client.map(run_file, list(tasks), pure=False, key=[f"xl-expense-{t.key}-{t.input_sha256[:12]}"
                                                                    for t in tasks])
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        for future in as_completed(futures):
            task = by_key[future.key]
            try:
                report(future.result())
            except Exception as exc:  # noqa: BLE001 — a lost worker (KilledWorker) fails this file only
                report(FileResult(key=task.key, status=FAILED, input_sha256=task.input_sha256,
                                  settings_sha256=task.settings_sha256, steps=list(task.options.steps),
                                  error=f"the cluster could not run this file ({type(exc).__name__}: {exc}) "
                                        "— check the dask workers' logs and that they see the same paths"))
    finally:
        if own_client:
            client.close()


# ---------------------------------------------------------------------------------------------
# the batch
# ---------------------------------------------------------------------------------------------

def parse_steps(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"convert,audit"`` → ("convert", "audit") in run order; unknown steps are an error."""
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    unknown = [s for s in items if s not in STEPS]
    if unknown or not items:
        raise XlExpenseError(f"unknown step(s): {', '.join(unknown) or '(none given)'}",
                             f"use a comma-separated list of {', '.join(STEPS)}")
    return tuple(s for s in STEPS if s in items)


def run_batch(
    in_dir: str | Path,
    out_dir: str | Path,
    *,
    jobs: int | None = None,
    steps: str | Sequence[str] = DEFAULT_STEPS,
    consolidate: bool = False,
    executor: str = "local",
    scheduler: str | Any | None = None,
    profile: str | None = None,
    lang: str | None = None,
    config: str | Path | None = None,
    progress: Callable[[int, int, FileResult | None], None] | None = None,
) -> BatchResult:
    """Run the steps over every file in ``in_dir`` and write the summary into ``out_dir``.

    ``jobs`` worker processes (default: the CPUs); ``executor="dask"`` with ``scheduler``
    (address or Client) runs the same per-file task on a cluster. Files finished before with
    the same content and settings are skipped (resume). ``progress(done, total, result)`` is
    called once before the first file (result None) and after each. Never stops for a bad file;
    raises :class:`~xl_expense.errors.XlExpenseError` only for a bad folder or option.
    """
    started = time.perf_counter()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    options = _options(steps, profile, lang, config)
    if not in_dir.is_dir():
        raise XlExpenseError("input folder not found", "give the folder that holds the workbooks", str(in_dir))
    if executor not in EXECUTORS:
        raise XlExpenseError(f"unknown executor {executor!r}", "use --executor local or --executor dask")
    if executor == "dask" and scheduler is None:
        raise XlExpenseError("--executor dask needs --scheduler", "give the scheduler, e.g. --scheduler tcp://host:8786")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder ({exc.strerror})", "choose another -o", str(out_dir)) from None
    remove_stale_temps(out_dir)
    inputs, ignored = discover(in_dir, out_dir)
    tasks = plan_tasks(in_dir, out_dir, inputs, options)
    manifest = Manifest(out_dir / MANIFEST_NAME)
    results: dict[str, FileResult] = {}
    todo = []
    for task in tasks:
        earlier = manifest.done(task)
        if earlier is not None:
            earlier.status, earlier.seconds = SKIPPED, 0.0
            results[task.key] = earlier
        else:
            todo.append(task)
    done = len(results)
    if progress:
        progress(done, len(tasks), None)

    def report(result: FileResult) -> None:
        nonlocal done
        results[result.key] = result
        manifest.record(result)
        done += 1
        if progress:
            progress(done, len(tasks), result)

    try:
        if executor == "dask":
            run_dask(todo, scheduler, report)
        else:
            run_local(todo, max(1, jobs or os.cpu_count() or 1), report)
    finally:
        manifest.flush()
    ordered = [results[t.key] for t in tasks]
    batch = BatchResult(in_dir=in_dir, out_dir=out_dir, results=ordered, summary=out_dir / SUMMARY_NAME,
                        seconds=0.0, ignored=[p.relative_to(in_dir).as_posix() for p in ignored])
    if consolidate:
        try:
            batch.consolidated = consolidate_outputs(out_dir, ordered, options)
        except XlExpenseError as exc:
            batch.consolidate_error = exc.one_line()
    batch.seconds = time.perf_counter() - started
    write_summary(batch, options, jobs=jobs, executor=executor)
    return batch


def _options(steps: str | Sequence[str], profile: str | None, lang: str | None,
             config: str | Path | None) -> BatchOptions:
    if lang not in (None, "zh", "en"):
        raise XlExpenseError(f"--lang must be zh or en, not {lang!r}", "use --lang zh or --lang en")
    if config is not None and not Path(config).is_file():
        raise XlExpenseError("config file not found", "check the --config path", str(config))
    if profile:
        from xl_expense.io.profiles import get_profile

        get_profile(profile)  # an unknown name fails now, not once per file
    config_path = str(Path(config).resolve()) if config else None
    profile_arg = str(Path(profile).resolve()) if profile and str(profile).endswith(".toml") else profile
    return BatchOptions(steps=parse_steps(steps), profile=profile_arg, lang=lang, config=config_path)


# ---------------------------------------------------------------------------------------------
# consolidation
# ---------------------------------------------------------------------------------------------

def consolidate_outputs(out_dir: Path, results: Sequence[FileResult], options: BatchOptions) -> dict[str, Path]:
    """One ledger across every good file (with ``source_file``), and its audit when auditing.

    Reads each file's standard ledger (or, without the convert step, the input itself), so
    files skipped on resume are consolidated exactly like fresh ones.
    """
    lang = options.lang or "zh"
    frames = []
    for result in results:
        if result.status == FAILED:
            continue
        frames.append(_consolidation_frame(out_dir, result, options))
    columns = [*LEDGER_COLUMNS, "source_file", "source_sheet", "source_row"]
    frame = (pd.concat(frames, ignore_index=True) if frames else
             pd.DataFrame({c: pd.Series(dtype=object) for c in columns}))[columns]
    frame["date"] = pd.to_datetime(frame["date"], errors="coerce").astype("datetime64[ns]")
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    ledger_path = out_dir / CONSOLIDATED_LEDGER
    info = [("文件数" if lang == "zh" else "Files", len(frames)), ("费用行数" if lang == "zh" else "Expense rows", len(frame)),
            ("工具版本" if lang == "zh" else "Tool version", f"xl-expense {__version__}")]
    write_workbook(ledger_path, [ledger_sheet(frame, lang), info_sheet("导入信息" if lang == "zh" else "Import info", info)])
    out = {"ledger": ledger_path}
    if "audit" in options.steps:
        from xl_expense.workflows import audit_workbook

        audit = audit_workbook(ledger_path, out_dir / CONSOLIDATED_AUDIT, lang=options.lang, config=options.config)
        out["audit"] = audit.output
    return out


def _consolidation_frame(out_dir: Path, result: FileResult, options: BatchOptions) -> pd.DataFrame:
    if "convert" in result.outputs:
        frame = read_standard_ledger(out_dir / result.outputs["convert"])
    else:
        df = read_any(Path(result.ledger_source), options.profile).df
        frame = df[list(LEDGER_COLUMNS)].copy()
        frame["source_sheet"] = df["sheet"].astype(object)
        frame["source_row"] = df["row"].astype("Int64")
    frame["source_file"] = result.key
    return frame


# ---------------------------------------------------------------------------------------------
# the summary workbook
# ---------------------------------------------------------------------------------------------

SUMMARY_COLUMNS = ("file", "status", "rows_read", "rows_rejected", "rows_excluded", "errors", "warnings", "infos",
                   "amount_at_risk", "seconds", "error", "profile", "output")
SUMMARY_HEADERS = {
    "zh": {"file": "文件", "status": "状态", "rows_read": "读取行数", "rows_rejected": "无法读取的行",
           "rows_excluded": "排除的行", "errors": "发现：错误", "warnings": "发现：警告", "infos": "发现：提示",
           "amount_at_risk": "涉及金额", "seconds": "耗时（秒）", "error": "错误说明（原因 — 解决办法）",
           "profile": "导入配置", "output": "输出文件"},
    "en": {"file": "File", "status": "Status", "rows_read": "Rows read", "rows_rejected": "Rows rejected",
           "rows_excluded": "Rows excluded", "errors": "Findings: error", "warnings": "Findings: warning",
           "infos": "Findings: info", "amount_at_risk": "Amount at risk", "seconds": "Seconds",
           "error": "Error (what — how to fix)", "profile": "Import profile", "output": "Output"},
}
SUMMARY_SHEET = {"zh": "批处理摘要", "en": "Batch summary"}
RUN_SHEET = {"zh": "运行信息", "en": "Run info"}


def summary_frame(results: Sequence[FileResult], lang: str) -> pd.DataFrame:
    """One row per file, in input order, as written to ``batch_summary.xlsx``."""
    rows = []
    for r in results:
        output = r.outputs.get("audit") or r.outputs.get("classify") or r.outputs.get("convert") or ""
        rows.append({"file": r.key, "status": STATUS_LABELS[lang][r.status], "rows_read": r.rows_read,
                     "rows_rejected": r.rows_rejected, "rows_excluded": r.rows_excluded, "errors": r.errors,
                     "warnings": r.warnings, "infos": r.infos, "amount_at_risk": r.amount_at_risk,
                     "seconds": r.seconds, "error": r.error or None, "profile": r.profile or None,
                     "output": output or None})
    frame = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    return frame.astype(object).where(frame.notna(), None)


def write_summary(batch: BatchResult, options: BatchOptions, *, jobs: int | None, executor: str) -> Path:
    """``batch_summary.xlsx``: the per-file Table (failures highlighted) and the run's settings."""
    lang = options.lang or "zh"
    frame = summary_frame(batch.results, lang)
    styles = {c: "int" for c in ("rows_read", "rows_rejected", "rows_excluded", "errors", "warnings", "infos")}
    styles.update(amount_at_risk="money", seconds="score", error="wrap")
    failed_label = STATUS_LABELS[lang][FAILED].replace('"', '""')
    sheet = table_sheet(SUMMARY_SHEET[lang], frame, headers={c: SUMMARY_HEADERS[lang][c] for c in SUMMARY_COLUMNS},
                        table_name="XE_BatchSummary", styles=styles,
                        highlights=[("status", f'${{col}}2="{failed_label}"', "error")])
    counts = batch.counts()
    zh = lang == "zh"
    info: list[tuple[str, Any]] = [
        ("输入文件夹" if zh else "Input folder", str(batch.in_dir)),
        ("输出文件夹" if zh else "Output folder", str(batch.out_dir)),
        ("步骤" if zh else "Steps", ",".join(options.steps)),
        ("执行方式" if zh else "Executor", executor),
        ("并行进程" if zh else "Jobs", jobs or os.cpu_count()),
        ("导入配置" if zh else "Profile", options.profile or ("自动识别" if zh else "detected")),
        ("配置文件" if zh else "Config", options.config or ""),
        ("设置哈希" if zh else "Settings hash", options.settings_sha256()),
        ("文件数" if zh else "Files", len(batch.results)),
        ("成功" if zh else "OK", counts[OK]),
        ("跳过（未变更）" if zh else "Skipped (unchanged)", counts[SKIPPED]),
        ("失败" if zh else "Failed", counts[FAILED]),
        ("忽略的文件（类型不支持）" if zh else "Ignored (other types)", len(batch.ignored)),
        ("耗时（秒）" if zh else "Seconds", round(batch.seconds, 1)),
        ("工具版本" if zh else "Tool version", f"xl-expense {__version__}"),
    ]
    for name, path in batch.consolidated.items():
        info.append((f"{'合并' if zh else 'Consolidated'} {name}", path.name))
    if batch.consolidate_error:
        info.append(("合并失败" if zh else "Consolidation failed", batch.consolidate_error))
    write_workbook(batch.summary, [sheet, info_sheet(RUN_SHEET[lang], info)])
    return batch.summary


__all__ = [
    "STEPS",
    "BatchOptions",
    "BatchResult",
    "FileResult",
    "FileTask",
    "consolidate_outputs",
    "discover",
    "parse_steps",
    "plan_tasks",
    "run_batch",
    "run_dask",
    "run_file",
    "run_local",
    "summary_frame",
    "write_summary",
]
