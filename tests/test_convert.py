"""``convert``: any export or workbook → the standard ledger workbook the spine's reader understands.

Fixtures are written in the tests (a GBK Alipay-style export with its preamble, a ledger with a
title block and a 合计 row); the real samples in ../shared/data are checked against the numbers
the import-profile tests established by hand (Alipay 7 expenses = 145.61, CCB 6 = 703.26).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from tests.libreoffice import convert as lo_convert
from tests.libreoffice import needs_soffice
from xl_expense.batch_cli import convert_command
from xl_expense.convert import (
    LEDGER_TABLE,
    convert_file,
    read_standard_ledger,
)
from xl_expense.errors import LedgerNotFound, UnreadableWorkbook, UnsafeWorkbook
from xl_expense.io.ledger_reader import load_ledger
from xl_expense.io.settings_io import read_settings_sheet

HOSTILE = "=HYPERLINK(\"http://evil.example\",\"点我\")"

# An Alipay 交易明细 export as the app writes it: GBK, a preamble, a dashed banner, padded cells.
ALIPAY_PREAMBLE = [
    "支付宝（中国）网络技术有限公司  电子客户回单",
    "导出信息：",
    "姓名：张三",
    "起始时间：[2025-12-01 00:00:00]    终止时间：[2025-12-31 23:59:59]",
    "共5笔记录",
    "特别提示：",
    "1. 本回单内容可作为交易凭证",
    "------------------------------------------------------------------------------------",
]
ALIPAY_HEADER = "交易时间,交易分类,交易对方,对方账号,商品说明,收/支,金额,收/付款方式,交易状态,交易订单号,商家订单号,备注,"
ALIPAY_ROWS = [
    "2025-12-03 14:06:51,餐饮美食,老王面馆,,牛肉面,支出,28.50,花呗,交易成功,2025120322001\t,,,",
    f"2025-12-05 09:10:00,交通出行,滴滴出行,,\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",支出,56.00,余额宝,交易成功,2025120522002\t,,,",
    "2025-12-06 10:00:00,转账红包,李四,,红包,收入,200.00,余额,交易成功,2025120622003\t,,,",
    "2025-12-08 11:00:00,退款,老王面馆,,退款-牛肉面,不计收支,8.50,花呗,退款成功,2025120822004\t,,,",
    "2025-12-09 12:00:00,投资理财,余额宝,,余额宝-转入,不计收支,500.00,余额,交易成功,2025120922005\t,,,",
]


def write_alipay_gbk(path: Path) -> Path:
    text = "\r\n".join([*ALIPAY_PREAMBLE, ALIPAY_HEADER, *ALIPAY_ROWS]) + "\r\n"
    path.write_bytes(text.encode("gbk"))
    return path


def write_titled_ledger(path: Path) -> Path:
    """A hand-kept ledger: two title rows, the header on row 3, a bad amount, a 合计 row, a Settings sheet."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "三月"
    ws.append(["华信科技 2025年3月 销售维护费"])
    ws.append(["单位：元"])
    ws.append(["日期", "报销人", "部门", "费用类别", "摘要", "供应商", "发票号", "金额（元）"])
    ws.append(["2025-03-03", "张三", "华东销售部", "差旅费", "赴苏州拜访客户", "携程", "10000001", 1200.0])
    ws.append(["2025-03-04", "李四", "华南销售部", "客户招待", HOSTILE, "外婆家", "10000002", "¥860.50"])
    ws.append(["2025-03-05", "王五", "华南销售部", "通讯费", "话费", "中国移动", None, "待定"])
    ws.append(["合计", None, None, None, None, None, None, 2060.5])
    settings = wb.create_sheet("设置")
    settings.append(["参数", "值"])
    settings.append(["审批限额", 8000])
    wb.save(path)
    return path


def sheet_xml(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n).decode("utf-8") for n in zf.namelist() if n.startswith("xl/worksheets/sheet")}


def no_formulas(path: Path) -> None:
    for name, xml in sheet_xml(path).items():
        assert "<f>" not in xml and "<f " not in xml, f"{path.name}:{name} holds a formula"


# ---------------------------------------------------------------------------------------------


def test_gbk_alipay_export_with_preamble_converts_to_the_standard_ledger(tmp_path):
    src = write_alipay_gbk(tmp_path / "支付宝账单.csv")
    result = convert_file(src, tmp_path / "out")

    assert result.output == tmp_path / "out" / "支付宝账单_ledger.xlsx"
    assert result.profile == "alipay"
    assert result.ledger.encoding == "gb18030"
    # 2 payments (28.50, 56.00) and the refund as −8.50; the red packet and the 余额宝 transfer excluded
    assert (result.rows_read, result.rows_rejected, result.rows_excluded) == (3, 0, 2)
    assert result.step_source == result.output  # a profile-read export: later steps read the converted ledger

    back = load_ledger(result.output)  # the spine's own reader understands the standard workbook
    assert back.table_name == LEDGER_TABLE
    assert back.df["amount"].tolist() == [28.5, 56.0, -8.5]
    assert back.df["vendor"].tolist() == ["老王面馆", "滴滴出行", "老王面馆"]
    assert back.df["date"].iloc[0] == pd.Timestamp("2025-12-03 14:06:51")
    assert back.df["description"].iloc[1] == HOSTILE
    # the header sits on line 9 of the export (8 preamble lines): provenance says so
    standard = read_standard_ledger(result.output)
    assert standard["source_row"].tolist() == [10, 11, 13]

    no_formulas(result.output)
    wb = openpyxl.load_workbook(result.output)
    assert wb.sheetnames == ["费用明细", "未导入行", "导入信息"]
    ws = wb["费用明细"]
    assert [c.value for c in ws[1]][:4] == ["日期", "金额", "费用类别", "摘要"]
    assert ws["B2"].number_format == "#,##0.00"
    assert ws["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["D3"].data_type == "s" and ws["D3"].value == HOSTILE
    rest = [[c.value for c in row] for row in wb["未导入行"].iter_rows(min_row=2)]
    assert [r[1] for r in rest] == [12, 14]
    assert {r[2] for r in rest} == {"非费用（按导入配置排除）"}


def test_ledger_with_title_rows_is_standardised_and_keeps_its_settings(tmp_path):
    src = write_titled_ledger(tmp_path / "三月.xlsx")
    result = convert_file(src, tmp_path / "out", lang="en")

    assert result.profile is None  # no export profile matches: the spine's reader read it
    assert (result.rows_read, result.rows_rejected, result.counts["totals"]) == (2, 1, 1)
    # an .xlsx the spine reads natively: classify/audit write into a copy of the user's own workbook
    assert result.step_source == src
    back = load_ledger(result.output)
    assert back.sheet == "Ledger"
    assert back.df["amount"].tolist() == [1200.0, 860.5]
    assert back.df["receipt"].tolist() == ["10000001", "10000002"]
    standard = read_standard_ledger(result.output)
    assert standard["source_row"].tolist() == [4, 5]
    assert standard["source_sheet"].tolist() == ["三月", "三月"]
    wb = openpyxl.load_workbook(result.output)
    assert wb.sheetnames == ["Ledger", "Rows not imported", "Import info", "设置"]
    rest = [[c.value for c in row] for row in wb["Rows not imported"].iter_rows(min_row=2)]
    assert [(r[1], r[2]) for r in rest] == [(6, "unreadable"), (7, "totals row")]
    values, _ = read_settings_sheet(result.output)
    assert values == {"approval_limit": 8000}
    no_formulas(result.output)


def test_csv_ledger_in_gbk_without_profile(tmp_path):
    src = tmp_path / "华南.csv"
    lines = ["2025年华南区费用明细", "", "日期,报销人,费用类别,摘要,金额", "2025/3/5,张三,差旅费,高铁,553.5",
             "2025/3/6,李四,客户招待,@SUM(A1:A3),\"1,280.00\""]
    src.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    result = convert_file(src, tmp_path)
    assert result.profile is None
    back = load_ledger(result.output)
    assert back.df["amount"].tolist() == [553.5, 1280.0]
    assert back.df["person"].tolist() == ["张三", "李四"]
    assert back.df["description"].tolist() == ["高铁", "@SUM(A1:A3)"]
    no_formulas(result.output)


def test_empty_ledger_still_makes_a_valid_workbook(tmp_path):
    src = tmp_path / "empty.csv"
    src.write_text("日期,金额,摘要\n", encoding="utf-8")
    result = convert_file(src, tmp_path / "out")
    assert result.rows_read == 0
    assert len(read_standard_ledger(result.output)) == 0
    assert len(load_ledger(result.output).df) == 0


@pytest.mark.parametrize("content, error, words", [
    (b"PK\x03\x04 truncated", UnreadableWorkbook, "truncated or not a valid workbook"),
    (b"\x89PNG\r\n\x1a\n not a workbook", UnreadableWorkbook, "not a valid .xlsx file"),
])
def test_unreadable_files_raise_a_fixable_error_naming_the_file(tmp_path, content, error, words):
    src = tmp_path / "bad.xlsx"
    src.write_bytes(content)
    with pytest.raises(error, match=re.escape(words)) as info:
        convert_file(src, tmp_path / "out")
    assert info.value.path == str(src) and info.value.fix
    assert not (tmp_path / "out" / "bad_ledger.xlsx").exists()


def test_zip_bomb_is_refused(tmp_path):
    src = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (8 * 1024 * 1024))
    with pytest.raises(UnsafeWorkbook, match="zip bomb"):
        convert_file(src, tmp_path / "out")


def test_file_without_a_ledger(tmp_path):
    src = tmp_path / "notes.csv"
    src.write_text("hello,world\n1,2\n", encoding="utf-8")
    with pytest.raises(LedgerNotFound):
        convert_file(src, tmp_path / "out")


def test_profile_option_forces_a_profile(tmp_path):
    src = write_titled_ledger(tmp_path / "三月.xlsx")
    with pytest.raises(LedgerNotFound, match="profile 'alipay' reads csv files"):
        convert_file(src, tmp_path / "out", profile="alipay")


# -- real samples -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, profile, rows, total", [
    ("alipay_example-alipay-records.csv", "alipay", 7, 145.61),
    ("ccb_交易明细_xxxx_2025xxxx_2025xxxx.xls", "ccb", 6, 703.26),
    ("wechat_example-wechat-records.xlsx", "wechat", 11, 2904.53),
])
def test_real_exports_convert(shared_data, tmp_path, name, profile, rows, total):
    src = shared_data / "messy" / "chinese_exports" / name
    result = convert_file(src, tmp_path)
    assert result.profile == profile
    back = load_ledger(result.output)
    assert len(back.df) == rows
    assert back.df["amount"].sum() == pytest.approx(total, abs=0.005)
    # a profile-read .xlsx export is not the user's ledger: later steps read the converted one
    assert result.step_source == result.output


# -- CLI --------------------------------------------------------------------------------------

def test_convert_command_converts_the_good_files_and_exits_1_for_a_bad_one(tmp_path):
    good = write_alipay_gbk(tmp_path / "alipay.csv")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"PK\x03\x04 truncated")
    out = tmp_path / "out"
    result = CliRunner().invoke(convert_command, [str(bad), str(good), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {bad}: the file is truncated or not a valid workbook")
    assert "re-export it from Excel" in result.stderr
    assert result.stdout == (f"{good} → {out / 'alipay_ledger.xlsx'}: 3 rows (profile alipay, gb18030), "
                             "0 rejected, 2 excluded\n")


def test_convert_command_unknown_profile_is_one_line(tmp_path):
    good = write_alipay_gbk(tmp_path / "alipay.csv")
    result = CliRunner().invoke(convert_command, [str(good), "-o", str(tmp_path), "--profile", "nope"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {good}: no import profile named 'nope' — use one of: alipay")
    assert result.stderr.count("\n") == 1


# -- LibreOffice: formatting of legacy formats -------------------------------------------------

@needs_soffice
@pytest.mark.libreoffice
def test_keep_format_converts_an_ods_with_libreoffice_for_the_later_steps(tmp_path):
    xlsx = write_titled_ledger(tmp_path / "三月.xlsx")
    wb = openpyxl.load_workbook(xlsx)
    wb["三月"]["A3"].font = openpyxl.styles.Font(bold=True)
    wb.save(xlsx)
    (ods,) = lo_convert(xlsx, "ods", tmp_path / "ods")
    result = convert_file(ods, tmp_path / "out", keep_format=True)
    assert result.profile is None and result.rows_read == 2
    assert result.formatted_copy == tmp_path / "out" / "三月_converted.xlsx"
    assert result.step_source == result.formatted_copy
    copy = openpyxl.load_workbook(result.formatted_copy)
    assert copy["三月"]["A3"].font.b is True  # the formatting came along
    assert load_ledger(result.formatted_copy).df["amount"].tolist() == [1200.0, 860.5]
    assert not list((tmp_path / "out").glob(".xl-expense-lo-*"))  # its work folder is gone
