"""The command line end to end: exit codes, one-line errors, outputs, reviewer notes kept."""

from __future__ import annotations

import csv
import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from xl_expense.cli import cli
from xl_expense.i18n import t


def run(*args: str) -> "subprocess.CompletedProcess[str]":
    """Run the real console entry point in a fresh process (as a user would)."""
    return subprocess.run([sys.executable, "-m", "xl_expense", *args], capture_output=True, text=True, timeout=600)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def ledger(tmp_path: Path, demo_workbook: Path) -> Path:
    copy = tmp_path / "ledger.xlsx"
    shutil.copy(demo_workbook, copy)
    return copy


def sheet_names(path: Path) -> list[str]:
    import python_calamine

    book = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        return list(book.sheet_names)
    finally:
        book.close()


def test_audit_writes_two_sheets_and_leaves_the_input_alone(ledger: Path) -> None:
    before = sha(ledger)
    proc = run("audit", str(ledger))
    assert proc.returncode == 0, proc.stderr
    out = ledger.with_name("ledger_audited.xlsx")
    assert sha(ledger) == before
    assert sheet_names(out) == ["费用明细", "月度汇总", "设置", t("sheet.summary", "zh"), t("sheet.findings", "zh")]
    assert "findings / 审计发现" in proc.stdout and proc.stderr == ""
    # The command ends the process without Python's teardown: its output must be flushed first.
    assert proc.stdout.rstrip().splitlines()[-1].startswith("time:")


def test_english_output_and_findings_csv(ledger: Path, tmp_path: Path) -> None:
    out, findings_csv = tmp_path / "en.xlsx", tmp_path / "f.csv"
    proc = run("audit", str(ledger), "--lang", "en", "-o", str(out), "--findings-csv", str(findings_csv))
    assert proc.returncode == 0, proc.stderr
    assert sheet_names(out)[-2:] == ["Audit Summary", "Audit Findings"]
    raw = findings_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "UTF-8 with BOM so Excel opens it"
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert {"finding_id", "sheet", "row", "rule", "severity", "amount", "score", "message"} <= set(rows[0])
    rules = {r["rule"] for r in rows}
    assert {"duplicate", "split_transaction", "weekend_holiday", "missing_receipt", "over_policy_limit",
            "future_date", "negative_amount"} <= rules
    # The planted duplicate pair sits at the end of the demo ledger; `row` is the Excel row.
    dup_rows = sorted(int(r["row"]) for r in rows if r["rule"] == "duplicate" and r["row"])
    assert dup_rows and all(4 <= r <= 5003 for r in dup_rows)
    # The hostile description is quoted in CSV, never a live formula.
    texts = [v for r in rows for v in r.values() if v and "HYPERLINK" in v]
    assert texts and all(v.startswith("'") for v in texts)


@pytest.mark.parametrize("args, message", [
    (["audit", "missing.xlsx"], "missing.xlsx: file not found — "),
])
def test_missing_file_is_one_line_and_exit_1(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "xl_expense", *args], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: ") and message in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_truncated_file_is_refused_with_one_line(ledger: Path) -> None:
    data = ledger.read_bytes()
    ledger.write_bytes(data[: len(data) // 2])
    proc = run("audit", str(ledger))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: {ledger}: ") and " — " in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            block = b"\0" * (1 << 24)
            for _ in range(160):  # 2.5 GiB of zeros, a few MB on disk
                member.write(block)
    proc = run("audit", str(bomb))
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: {bomb}: ") and "Traceback" not in proc.stderr


def test_no_ledger_found_says_how_to_fix(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = tmp_path / "empty.xlsx"
    wb = Workbook()
    wb.active.append(["hello", "world"])
    wb.save(book)
    proc = run("audit", str(book))
    assert proc.returncode == 1 and "--sheet" in proc.stderr and "--map" in proc.stderr


def test_output_over_input_is_refused(ledger: Path) -> None:
    result = CliRunner().invoke(cli, ["audit", str(ledger), "-o", str(ledger)])
    assert result.exit_code == 1
    assert "overwrite the input" in result.output


def test_in_place_keeps_a_backup(ledger: Path) -> None:
    before = ledger.read_bytes()
    result = CliRunner().invoke(cli, ["audit", str(ledger), "--in-place"])
    assert result.exit_code == 0, result.output
    assert ledger.with_name("ledger.xlsx.bak").read_bytes() == before
    assert sheet_names(ledger)[-1] == "审计明细"


def test_rerun_keeps_reviewer_status_and_comment(ledger: Path, tmp_path: Path) -> None:
    """A reviewer marks findings in Excel; auditing that workbook again keeps their work."""
    from openpyxl import load_workbook

    from xl_expense.io.reviewer_notes import read_reviewer_notes

    first = tmp_path / "first.xlsx"
    assert CliRunner().invoke(cli, ["audit", str(ledger), "-o", str(first)]).exit_code == 0
    wb = load_workbook(first)
    ws = wb["审计明细"]
    header = [c.value for c in ws[1]]
    id_col, status_col, comment_col = (header.index(h) + 1 for h in ("编号", "状态", "备注"))
    marked = {}
    for r, (status, comment) in zip((2, 3, 5), (("已确认", "重复报销，已追回"), ("已解释", "两次独立宴请"),
                                               ("已确认", "=cmd|' /C calc'!A0"))):
        ws.cell(r, status_col).value = status
        ws.cell(r, comment_col).value = comment
        ws.cell(r, comment_col).data_type = "s"  # typed as text, as Excel stores a leading-apostrophe entry
        marked[ws.cell(r, id_col).value] = (status, comment)
    reviewed = tmp_path / "reviewed.xlsx"
    wb.save(reviewed)

    second = tmp_path / "second.xlsx"
    result = CliRunner().invoke(cli, ["audit", str(reviewed), "-o", str(second)])
    assert result.exit_code == 0, result.output
    notes = read_reviewer_notes(second).set_index("finding_id")
    for finding_id, (status, comment) in marked.items():
        assert notes.loc[finding_id, "status"] == status
        assert notes.loc[finding_id, "comment"] == comment
    assert sheet_names(second).count("审计明细") == 1

    # And in English: statuses are translated, comments kept.
    third = tmp_path / "third.xlsx"
    assert CliRunner().invoke(cli, ["audit", str(second), "-o", str(third), "--lang", "en"]).exit_code == 0
    notes_en = read_reviewer_notes(third).set_index("finding_id")
    some_id = next(iter(marked))
    assert notes_en.loc[some_id, "status"] == {"已确认": "Confirmed", "已解释": "Explained"}[marked[some_id][0]]
    assert "审计明细" not in sheet_names(third)


def test_same_input_same_findings(ledger: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for target in (a, b):
        assert CliRunner().invoke(cli, ["audit", str(ledger), "-o", str(tmp_path / "o.xlsx"),
                                        "--findings-csv", str(target)]).exit_code == 0
    assert a.read_bytes() == b.read_bytes()


def test_demo_command_runs(tmp_path: Path) -> None:
    proc = run("demo", str(tmp_path / "demo"), "--rows", "600")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo" / "demo_ledger_2025_audited.xlsx").is_file()
    assert (tmp_path / "demo" / "demo_findings.csv").is_file()


def test_csv_ledger_gets_a_new_workbook_with_the_audit(tmp_path: Path) -> None:
    """A CSV (here GBK, as Chinese Excel saves it) is audited into a new .xlsx holding its values."""
    import python_calamine

    src = tmp_path / "导出.csv"
    lines = ["日期,报销人,供应商,金额,费用类别,摘要",
             "2025/3/2,张三,全聚德,\"¥1,280.00\",客户招待,客户晚餐",
             "2025/3/2,张三,全聚德,\"¥1,280.00\",客户招待,客户晚餐",
             "2025/3/3,李四,滴滴出行,56,差旅费,=1+2",
             "合计,,,\"2,616.00\",,"]
    src.write_bytes("\r\n".join(lines).encode("gb18030"))
    proc = run("audit", str(src))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "导出_audited.xlsx"
    book = python_calamine.CalamineWorkbook.from_path(str(out))
    assert book.sheet_names == ["导出", "审计摘要", "审计明细"]
    values = book.get_sheet_by_name("导出").to_python()
    assert values[3][5] == "=1+2", "ledger text that looks like a formula stays text"
    findings = book.get_sheet_by_name("审计明细").to_python()
    header = findings[0]
    dup = [r for r in findings[1:] if r[header.index("规则")] == "duplicate"]
    assert [r[header.index("行号")] for r in dup] == [3]


_GC_STATE = "import gc; print(gc.get_threshold()[0], gc.get_freeze_count() > 0)"


def test_one_shot_commands_tune_the_collector_only_in_their_own_process(ledger: Path, tmp_path: Path) -> None:
    """A process started for `audit` freezes its imports and collects less often; a caller
    that runs the CLI in its own process (tests, scripts) keeps its collector as it was."""
    import gc

    from xl_expense import cli as cli_module

    before = (gc.get_threshold(), gc.get_freeze_count())
    result = CliRunner().invoke(cli, ["audit", str(ledger), "-o", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 0, result.output
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
    tuned = subprocess.run(
        [sys.executable, "-c", "from xl_expense import cli; cli._PROCESS['owned'] = True; cli._one_shot_gc(); "
         + _GC_STATE], capture_output=True, text=True, check=True)
    assert tuned.stdout.split() == [str(cli_module.ONE_SHOT_GC_THRESHOLD), "True"]
