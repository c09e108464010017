"""``batch``: a folder in, standard/audited workbooks and a summary out; bad files recorded, not fatal.

The inputs are written here: small CSV and xlsx ledgers (with a planted duplicate so every file
has findings) and the bad files a month end brings (truncated zip, zip bomb, password-protected
workbook, a picture renamed .xlsx, a CSV without a ledger). The audit runs with the
IsolationForest and Benford off (``--config``) to keep the tests quick; the rules that remain
are deterministic, so serial, parallel, resumed and dask runs must give the very same findings.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
import python_calamine
from click.testing import CliRunner

from xl_expense.batch import (
    CONSOLIDATED_AUDIT,
    CONSOLIDATED_LEDGER,
    MANIFEST_NAME,
    SUMMARY_NAME,
    FileResult,
    FileTask,
    discover,
    output_stems,
    run_batch,
    run_local,
)
from xl_expense.batch_cli import batch_command
from xl_expense.convert import read_standard_ledger
from xl_expense.io.ledger_reader import load_ledger

REPO = Path(__file__).resolve().parents[1]
HOSTILE = "=cmd|' /C calc'!A0"
GOOD = ["north.csv", "south.csv", "sub/east.csv", "sub/west.xlsx"]
BAD = {
    "corrupt.xlsx": "the file is truncated or not a valid workbook",
    "bomb.xlsx": "it looks like a zip bomb and was not opened",
    "locked.xlsx": "the workbook is password-protected",
    "photo.xlsx": "not a valid .xlsx file (it is not a zip package)",
    "notes.csv": "no expense table found",
}
FAST_CONFIG = 'disabled_rules = ["isolation_forest", "benford"]\nas_of = 2026-01-31\n'


def ledger_rows(seed: int, n: int = 40) -> list[list[object]]:
    """``n`` expense rows plus one planted duplicate (the same claim twice) and a hostile description."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        day = 1 + int(rng.integers(0, 28))
        rows.append([f"2025-03-{day:02d}", f"员工{int(rng.integers(0, 6))}", "差旅费",
                     f"出差{i}", f"供应商{int(rng.integers(0, 9))}", float(np.round(rng.uniform(50, 3000), 2))])
    rows.append(["2025-03-10", "张三", "客户招待", HOSTILE, "全聚德", 2680.0])
    rows.append(["2025-03-10", "张三", "客户招待", HOSTILE, "全聚德", 2680.0])
    return rows


HEADER = ["日期", "报销人", "费用类别", "摘要", "供应商", "金额"]


def write_csv(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(HEADER)] + [",".join(f'"{v}"' if isinstance(v, str) else str(v) for v in row)
                                  for row in ledger_rows(seed)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_xlsx(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "费用明细"
    ws.append(["2025年3月费用"])
    ws.append(HEADER)
    for row in ledger_rows(seed):
        ws.append(row)
        if row[3] == HOSTILE:
            ws.cell(ws.max_row, 4).data_type = "s"  # typed as text, the way Excel keeps it
    wb.save(path)


def write_good(folder: Path, names=GOOD) -> None:
    for seed, name in enumerate(names):
        (write_xlsx if name.endswith(".xlsx") else write_csv)(folder / name, seed)


def write_bad(folder: Path) -> None:
    sample = folder / ".sample.xlsx"
    write_xlsx(sample, 99)
    (folder / "corrupt.xlsx").write_bytes(sample.read_bytes()[:1500])
    sample.unlink()
    with zipfile.ZipFile(folder / "bomb.xlsx", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 1024 * 1024))
    # Excel keeps a password-protected .xlsx in an OLE file with an EncryptionInfo stream
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 1016 + "EncryptionInfo".encode("utf-16-le") + b"\0" * 512
    (folder / "locked.xlsx").write_bytes(ole)
    (folder / "photo.xlsx").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    (folder / "notes.csv").write_text("hello,world\n1,2\n", encoding="utf-8")


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "settings.toml"
    path.write_text(FAST_CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("in")
    write_good(folder)
    write_bad(folder)
    (folder / "readme.md").write_text("not an input", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def serial_run(mixed_folder, config, tmp_path_factory):
    """The reference: every file, one worker, consolidated."""
    out = tmp_path_factory.mktemp("serial")
    return run_batch(mixed_folder, out, jobs=1, consolidate=True, config=config)


def by_key(results: list[FileResult]) -> dict[str, FileResult]:
    return {r.key: r for r in results}


def summary_rows(path: Path) -> list[list[object]]:
    book = python_calamine.CalamineWorkbook.from_path(str(path))
    return book.get_sheet_by_name(book.sheet_names[0]).to_python()


def fingerprint(results: list[FileResult]) -> dict[str, tuple]:
    """What must not depend on how the batch ran: per file status, counts, findings."""
    return {r.key: (r.status in ("ok", "skipped"), r.rows_read, r.rows_rejected, r.errors, r.warnings, r.infos,
                    r.amount_at_risk, r.findings_sha256, r.error, sorted(r.outputs.items())) for r in results}


# ---------------------------------------------------------------------------------------------


def test_discovery_skips_hidden_lock_and_output_files(tmp_path):
    write_good(tmp_path, ["a.csv", "a.xlsx", "sub/b.csv"])
    (tmp_path / "~$a.xlsx").write_bytes(b"lock")
    (tmp_path / ".hidden.csv").write_text("x", encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a_ledger.xlsx").write_bytes(b"x")
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    inputs, ignored = discover(tmp_path, tmp_path / "out")
    assert [p.relative_to(tmp_path).as_posix() for p in inputs] == ["a.csv", "a.xlsx", "sub/b.csv"]
    assert [p.name for p in ignored] == ["report.pdf"]
    # two inputs with one stem in a folder get their format in the output name
    assert list(output_stems(tmp_path, inputs).values()) == ["a_csv", "a_xlsx", "sub/b"]


def test_bad_files_are_recorded_and_the_batch_goes_on(serial_run, mixed_folder):
    results = by_key(serial_run.results)
    assert sorted(results) == sorted(GOOD + list(BAD))
    assert serial_run.ignored == ["readme.md"]
    assert serial_run.exit_code == 1
    for name in GOOD:
        r = results[name]
        assert (r.status, r.error, r.rows_read, r.rows_rejected) == ("ok", "", 42, 0), name
        # the planted duplicate: an exact duplicate is an error finding, 2 × 2,680.00 at risk at least
        assert r.errors >= 1 and r.amount_at_risk >= 5360.0
        assert set(r.outputs) == {"convert", "classify", "audit"}
    for name, words in BAD.items():
        r = results[name]
        assert r.status == "failed" and words in r.error, (name, r.error)
        what, fix = r.error.split(" — ", 1)  # one line: <what> — <how to fix>
        assert what and fix and "\n" not in r.error
        assert r.outputs == {}

    out = serial_run.out_dir
    assert (out / "north_ledger.xlsx").is_file() and (out / "sub" / "west_audited.xlsx").is_file()
    # .xlsx inputs the spine reads natively are classified and audited in a copy of themselves
    assert openpyxl.load_workbook(out / "sub" / "west_audited.xlsx").sheetnames[0] == "费用明细"

    rows = summary_rows(out / SUMMARY_NAME)
    assert rows[0][:3] == ["文件", "状态", "读取行数"]
    table = {row[0]: row for row in rows[1:]}
    assert table["north.csv"][1:4] == ["成功", 42.0, 0.0]
    assert table["bomb.xlsx"][1] == "失败"
    assert table["bomb.xlsx"][10].startswith("the package would expand") or "zip bomb" in table["bomb.xlsx"][10]
    assert table["locked.xlsx"][10] == results["locked.xlsx"].error


def test_consolidated_ledger_has_every_good_row_with_its_source_file(serial_run):
    out = serial_run.out_dir
    frame = read_standard_ledger(out / CONSOLIDATED_LEDGER)
    assert len(frame) == 42 * len(GOOD)
    wb = openpyxl.load_workbook(out / CONSOLIDATED_LEDGER, read_only=True)
    header = [c.value for c in next(wb["费用明细"].iter_rows(max_row=1))]
    assert header[-3:] == ["来源文件", "来源工作表", "来源行号"]
    sources = [row[-3] for row in wb["费用明细"].iter_rows(min_row=2, values_only=True)]
    assert sorted(set(sources)) == sorted(GOOD)
    assert load_ledger(out / CONSOLIDATED_LEDGER).df["amount"].sum() == pytest.approx(
        sum(load_ledger(out / f"{Path(k).with_suffix('').as_posix()}_ledger.xlsx").df["amount"].sum() for k in GOOD))
    assert (out / CONSOLIDATED_AUDIT).is_file()
    assert serial_run.consolidated == {"ledger": out / CONSOLIDATED_LEDGER, "audit": out / CONSOLIDATED_AUDIT}


def test_hostile_text_never_becomes_a_formula(serial_run):
    out = serial_run.out_dir
    checked = 0
    for path in sorted(out.rglob("*.xlsx")):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                    formulas = re.findall(r"<f\b[^>]*>([^<]*)</f>", zf.read(name).decode("utf-8"))
                    assert not [f for f in formulas if "cmd" in f], (path.name, name)
                    checked += 1
    assert checked > 20
    ledger = load_ledger(out / "north_ledger.xlsx").df
    assert ledger["description"].tolist().count(HOSTILE) == 2
    audited = load_ledger(out / "north_audited.xlsx").df
    assert audited["description"].tolist().count(HOSTILE) == 2


def test_parallel_results_equal_serial(serial_run, mixed_folder, config, tmp_path):
    parallel = run_batch(mixed_folder, tmp_path / "out", jobs=2, consolidate=True, config=config)
    assert fingerprint(parallel.results) == fingerprint(serial_run.results)
    assert [r.key for r in parallel.results] == [r.key for r in serial_run.results]  # summary order = input order
    assert len({r.worker for r in parallel.results}) >= 1
    assert all(r.peak_rss_mb and r.peak_rss_mb > 10 for r in parallel.results)


def test_rerun_skips_unchanged_files_and_redoes_changed_ones(mixed_folder, config, tmp_path):
    folder = tmp_path / "in"
    write_good(folder, ["a.csv", "b.csv"])
    out = tmp_path / "out"
    first = run_batch(folder, out, jobs=1, steps="convert,audit", config=config)
    assert first.counts() == {"ok": 2, "skipped": 0, "failed": 0}
    write_csv(folder / "b.csv", 7)  # b changes
    second = run_batch(folder, out, jobs=1, steps="convert,audit", config=config)
    assert [r.status for r in second.results] == ["skipped", "ok"]
    assert fingerprint(second.results)["a.csv"] == fingerprint(first.results)["a.csv"]
    third = run_batch(folder, out, jobs=1, steps="convert", config=config)  # other steps: everything again
    assert [r.status for r in third.results] == ["ok", "ok"]
    fourth = run_batch(folder, out, jobs=1, steps="convert", config=config, lang="en")  # other settings
    assert [r.status for r in fourth.results] == ["ok", "ok"]
    assert load_ledger(out / "a_ledger.xlsx").sheet == "Ledger"


def _run_batch_process(in_dir: Path, out_dir: Path, config: Path, *extra: str) -> subprocess.Popen:
    code = "from xl_expense.batch_cli import batch_command; batch_command()"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-c", code, str(in_dir), "-o", str(out_dir), "--config", str(config),
                             "--steps", "convert,audit", *extra], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_killed_batch_resumes_and_ends_like_an_uninterrupted_one(config, tmp_path):
    names = [f"branch{i:02d}.csv" for i in range(10)]
    folder = tmp_path / "in"
    write_good(folder, names)
    out = tmp_path / "out"
    proc = _run_batch_process(folder, out, config, "--jobs", "1")
    manifest = out / MANIFEST_NAME
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if manifest.is_file():
                done = json.loads(manifest.read_text(encoding="utf-8"))["files"]
                if len(done) >= 2:
                    break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the batch and its workers, mid-write
        proc.wait()
    finished = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    assert 2 <= len(finished) < len(names), "the batch was not interrupted midway"
    # whatever the kill hit, no workbook in OUT_DIR is half-written (temp files are hidden, not .xlsx)
    for path in out.rglob("*.xlsx"):
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None, path

    resumed = run_batch(folder, out, jobs=2, steps="convert,audit", config=config)
    statuses = [r.status for r in resumed.results]
    assert statuses.count("skipped") == len(finished) and statuses.count("failed") == 0
    assert not [p for p in out.rglob(".*") if p.name != MANIFEST_NAME]  # stale temp files removed

    fresh = run_batch(folder, tmp_path / "fresh", jobs=1, steps="convert,audit", config=config)
    assert fingerprint(resumed.results) == fingerprint(fresh.results)
    for name in names:
        stem = Path(name).stem
        a = read_standard_ledger(out / f"{stem}_ledger.xlsx")
        b = read_standard_ledger(tmp_path / "fresh" / f"{stem}_ledger.xlsx")
        assert a.equals(b), name


def _crash_on_bomb(task: FileTask) -> FileResult:
    """Stands in for a reader that aborts its process (python-calamine on a failed allocation)."""
    if task.key == "bomb.xlsx":
        os._exit(134)
    return FileResult(key=task.key, status="ok")


def test_a_worker_crash_fails_only_that_file(mixed_folder, tmp_path):
    from xl_expense.batch import BatchOptions, plan_tasks

    inputs, _ = discover(mixed_folder)
    tasks = plan_tasks(mixed_folder, tmp_path, inputs, BatchOptions())
    seen: list[FileResult] = []
    run_local(tasks, 2, seen.append, func=_crash_on_bomb)
    results = by_key(seen)
    assert sorted(results) == sorted(t.key for t in tasks)
    assert results["bomb.xlsx"].status == "failed"
    assert results["bomb.xlsx"].error.startswith("the worker process crashed reading this file")
    assert all(r.status == "ok" for k, r in results.items() if k != "bomb.xlsx")


def test_dask_executor_on_a_local_cluster_gives_the_same_results(serial_run, mixed_folder, config, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        result = run_batch(mixed_folder, tmp_path / "out", executor="dask", scheduler=cluster.scheduler_address,
                           config=config)
    assert fingerprint(result.results) == fingerprint(serial_run.results)
    assert result.exit_code == 1


def test_batch_command_exit_code_and_one_line_errors(tmp_path, config):
    folder = tmp_path / "in"
    write_good(folder, ["a.csv"])
    (folder / "photo.xlsx").write_bytes(b"\x89PNG\r\n\x1a\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(batch_command, [str(folder), "-o", str(out), "--jobs", "1", "--steps", "convert",
                                                "--config", str(config)])
    assert result.exit_code == 1
    assert result.stdout.startswith("2 files: 1 ok, 0 unchanged (skipped), 1 failed in ")
    assert result.stderr.endswith("Error: photo.xlsx: not a valid .xlsx file (it is not a zip package) — the file is "
                                  "damaged or was renamed — re-export it from Excel (File ▸ Save As ▸ Excel Workbook) "
                                  "and try again\n")
    assert "[1/2] a.csv — ok" in result.stderr  # one progress line per file when stderr is not a terminal
    again = CliRunner().invoke(batch_command, [str(folder), "-o", str(out), "--jobs", "1", "--steps", "convert",
                                               "--config", str(config)])
    assert again.stdout.startswith("2 files: 0 ok, 1 unchanged (skipped), 1 failed in ")


def test_batch_command_all_good_exits_0(tmp_path, config):
    folder = tmp_path / "in"
    write_good(folder, ["a.csv"])
    result = CliRunner().invoke(batch_command, [str(folder), "-o", str(tmp_path / "out"), "--steps", "convert",
                                                "--jobs", "1"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["--steps", "convert,publish"],
     "Error: unknown step(s): publish — use a comma-separated list of convert, classify, audit\n"),
    (["--executor", "dask"],
     "Error: --executor dask needs --scheduler — give the scheduler, e.g. --scheduler tcp://host:8786\n"),
    (["--profile", "nope"], "Error: no import profile named 'nope' — use one of: "),
])
def test_batch_command_bad_options_are_one_line(tmp_path, args, message):
    folder = tmp_path / "in"
    folder.mkdir()
    result = CliRunner().invoke(batch_command, [str(folder), "-o", str(tmp_path / "out"), *args])
    assert result.exit_code == 1
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1
