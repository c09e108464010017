"""``xl-expense convert`` and ``xl-expense batch``: thin click wrappers over :mod:`xl_expense.convert`
and :mod:`xl_expense.batch`.

Registered on the main group by ``cli.add_command``; they also run on their own
(``python -c "from xl_expense.batch_cli import batch_command; batch_command()"``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import click


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`xl_expense.cli.user_errors`, looked up when the command runs.

    ``cli`` imports this module to register the commands; importing ``cli`` here at import
    time would make the two modules import each other half-initialised.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from xl_expense.cli import user_errors as one_line_errors

        return one_line_errors(func)(*args, **kwargs)

    return wrapper


#: The same help options as the main group, also when this command runs on its own (click
#: caches a command's help option the first time it is built, with or without a parent).
HELP = {"help_option_names": ["-h", "--help"]}


@click.command("convert", context_settings=HELP)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output-dir", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the standard ledger workbooks (<name>_ledger.xlsx).")
@click.option("--profile", help="Import profile name or .toml file (default: detected from the headers).")
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Language of sheet names and headers (default zh).")
@click.option("--keep-format", is_flag=True,
              help="Also convert .xls/.xlsb/.ods to .xlsx with LibreOffice, formatting kept.")
@user_errors
def convert_command(inputs: tuple[Path, ...], out_dir: Path, profile: str | None, lang: str | None,
                    keep_format: bool) -> None:
    """Convert exports and workbooks (xlsx/xlsm/xls/xlsb/ods/csv) into standard ledger workbooks.

    Each INPUT becomes DIR/<name>_ledger.xlsx: the expenses as the Table XE_Ledger, the rows
    not imported with their reason, and the import details. A bad file is reported and the
    others are still converted; the exit code is then 1.

    Example:

        xl-expense convert 支付宝账单.csv 建行流水.xls -o 标准台账/
    """
    from xl_expense.convert import convert_file
    from xl_expense.errors import XlExpenseError

    failed = 0
    for path in inputs:
        try:
            result = convert_file(path, out_dir, profile=profile, lang=lang, keep_format=keep_format)
        except XlExpenseError as exc:
            click.echo(f"Error: {exc.one_line()}", err=True)
            failed += 1
            continue
        how = f"profile {result.profile}" if result.profile else "generic reader"
        encoding = getattr(result.ledger, "encoding", None)
        click.echo(f"{path} → {result.output}: {result.rows_read:,} rows ({how}"
                   f"{', ' + encoding if encoding else ''}), {result.rows_rejected:,} rejected, "
                   f"{result.rows_excluded:,} excluded")
    if failed:
        sys.exit(1)


@click.command("batch", context_settings=HELP)
@click.argument("in_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output-dir", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the outputs, batch_summary.xlsx and the resume manifest.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: the number of CPUs).")
@click.option("--steps", default="convert,classify,audit", show_default=True,
              help="Comma-separated steps to run on every file.")
@click.option("--consolidate", is_flag=True,
              help="Also write one ledger and one audit across all files (with a source_file column).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="local: processes on this machine; dask: a dask.distributed cluster (needs --scheduler).")
@click.option("--scheduler", metavar="ADDR", help="dask scheduler address, e.g. tcp://host:8786.")
@click.option("--profile", help="Import profile for every file (default: detected per file).")
@click.option("--lang", type=click.Choice(["zh", "en"]), help="Language of the outputs (default zh).")
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML settings for files without a 设置/Settings sheet.")
@user_errors
def batch_command(in_dir: Path, out_dir: Path, jobs: int | None, steps: str, consolidate: bool, executor: str,
                  scheduler: str | None, profile: str | None, lang: str | None, config: Path | None) -> None:
    """Convert, classify and audit every workbook and export in IN_DIR, in parallel.

    Writes per file <name>_ledger.xlsx, <name>_classified.xlsx and <name>_audited.xlsx under
    OUT_DIR (mirroring IN_DIR's folders) and batch_summary.xlsx with a row per file. A bad file
    is recorded with the reason and skipped; the exit code is then 1. Re-running skips files
    whose content and settings are unchanged, so an interrupted batch resumes.

    Example:

        xl-expense batch 月结/2025-12 -o 审计结果/2025-12 --jobs 4 --consolidate
    """
    from xl_expense.batch import run_batch

    with _BatchProgress() as progress:
        try:
            result = run_batch(in_dir, out_dir, jobs=jobs, steps=steps, consolidate=consolidate, executor=executor,
                               scheduler=scheduler, profile=profile, lang=lang, config=config, progress=progress)
        except KeyboardInterrupt:
            progress.stop()
            click.echo("Error: interrupted — finished files are recorded; run the same command again to resume",
                       err=True)
            sys.exit(1)
    counts = result.counts()
    click.echo(f"{len(result.results)} files: {counts['ok']} ok, {counts['skipped']} unchanged (skipped), "
               f"{counts['failed']} failed in {result.seconds:.1f} s → {result.summary}")
    for failed in result.failed:
        click.echo(f"Error: {failed.key}: {failed.error}", err=True)
    for name, path in result.consolidated.items():
        click.echo(f"consolidated {name}: {path}")
    if result.consolidate_error:
        click.echo(f"Error: consolidation: {result.consolidate_error}", err=True)
    if result.ignored:
        click.echo(f"ignored {len(result.ignored)} file(s) of other types, e.g. {result.ignored[0]}")
    sys.exit(result.exit_code)


class _BatchProgress:
    """A rich progress bar with ETA on stderr; one line per file when stderr is not a terminal.

    rich refreshes from a thread; that is safe because the workers are started by a fork
    server (or spawned), never forked from this threaded process.
    """

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live = self.console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __call__(self, done: int, total: int, result: Any) -> None:
        if self.live:
            self._update_bar(done, total, result)
        elif result is not None:
            status = result.status if not result.error else f"{result.status}: {result.error}"
            click.echo(f"[{done}/{total}] {result.key} — {status} ({result.seconds:.1f} s)", err=True)

    def _update_bar(self, done: int, total: int, result: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self._progress is None:
            self._progress = Progress(TextColumn("批处理 / batch"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                      TextColumn("{task.fields[last]}"), console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("batch", total=total, completed=done, last="")
        last = "" if result is None else f"{result.key[-40:]} {result.status}"
        self._progress.update(self._task, completed=done, total=total, last=last)


__all__ = ["batch_command", "convert_command"]
