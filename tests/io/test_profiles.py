"""Import profiles: each shipped profile on its real sample, detection, encodings, preambles.

The expected numbers were read off the files by hand (and cross-checked with a plain pandas
read): where a sample's own preamble states a total (JD's 支出 1648.43, Meituan's 支出 1175.68
and 收入 209.73) the test checks that the profile reproduces it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest

from xl_expense.errors import (
    LedgerNotFound,
    SettingsError,
    UnreadableWorkbook,
    XlExpenseError,
)
from xl_expense.io.ledger_reader import Ledger
from xl_expense.io.profiles import (
    Profile,
    ProfileLedger,
    detect_profile,
    get_profile,
    list_profiles,
    load_profile,
    read_with_profile,
)
from xl_expense.schema import ALL_COLUMNS

SHIPPED = {"alipay", "wechat", "boc_debit", "icbc_debit", "ccb", "citic_credit", "spdb_debit", "jd",
           "meituan", "birmingham_pcard", "toronto_pcard", "zoho_expense", "fxiaoke_expense"}

CN = "messy/chinese_exports/"
# file → (profile, expenses, sum of amounts, excluded rows, totals rows, blank rows, header row)
CHINESE = {
    "alipay_example-alipay-records.csv": ("alipay", 7, 145.61, [29, 30, 31], [], 0, 25),
    "wechat_example-wechat-records.csv": ("wechat", 11, 2904.53,
                                          [19, 22, *range(23, 34), 37, 38, 40], [], 0, 17),
    "wechat_example-wechat-records.xlsx": ("wechat", 11, 2904.53,
                                           [20, 23, *range(24, 35), 38, 39, 41], [], 0, 18),
    "boc_debit_example-boc-records.csv": ("boc_debit", 14, 9344.30, [14, 16, 19], [], 0, 2),
    "icbc_debit-v2_example-icbc-debit-v2-records.csv": ("icbc_debit", 6, 3005.48, [9, 10, 12, 14, 16], [20], 1, 7),
    "ccb_交易明细_xxxx_2025xxxx_2025xxxx.xls": ("ccb", 6, 703.26, [13], [], 0, 6),
    "citic_credit_example-citic-records.xls": ("citic_credit", 12, 1098.60, [12], [], 0, 2),
    "spdb_debit_example-spdb_debit-records.xls": ("spdb_debit", 3, 11.64, [4], [], 0, 2),
    "jd_example-jd-records.csv": ("jd", 16, 1648.43, [25, 28, 29, 32, 34, 35, 36, 38, 43, 44], [], 0, 22),
    "mt_example-mt-records.csv": ("meituan", 28, 965.95, [45], [], 0, 20),
}

TR = "messy/toronto_raw/"
BR = "messy/birmingham_raw/"
# file → (profile, expenses, sum, negative lines, subtotal lines, blank rows, first date, first amount)
PCARD = {
    TR + "2011_PCardExpenses_201112_Final_-_December.csv":
        ("toronto_pcard", 2274, 460066.56, 27, 568, 1, "2011-12-01", 53.82),
    TR + "2012_PCardExpenses_201202_Final_-_PCard_Expenses_02_2012.csv":
        ("toronto_pcard", 2498, 406248.59, 38, 553, 0, "2012-01-31", 110.87),
    TR + "2016_PCardExpenses_201610_-_PCard_Expenses_102016_Final.csv":
        ("toronto_pcard", 4605, 1523261.82, 113, 872, 1, "2016-10-20", 90.00),
    TR + "2021_PCard_Expenses_03_2021_Final.csv":
        ("toronto_pcard", 3424, 1317849.24, 72, 786, 0, "2021-03-02", 75.00),
    BR + "cusersfinainmndesktoppublish-spend-february-2017-all-directorates.xls":
        ("birmingham_pcard", 3836, 741035.41, 94, 0, 0, "2017-02-03", 82.55),
    BR + "cusersfinainmndesktoppublish-spend-sept-2017.xls":
        ("birmingham_pcard", 4598, 1229539.21, 191, 0, 0, "2017-09-15", 50.00),
    BR + "publishspendpurchasecardsfebruary.xls":
        ("birmingham_pcard", 3959, 735975.49, 81, 0, 0, "2015-02-24", 54.75),
    BR + "purchasecardtransactionsapril2014.xls":
        ("birmingham_pcard", 2690, 526760.25, 41, 0, 0, "2014-04-29", 52.32),
}


def _accounted(ledger: Ledger) -> int:
    """Rows the ledger accounts for: every row below the header must be in exactly one place."""
    excluded = len(ledger.excluded) if isinstance(ledger, ProfileLedger) else 0
    return len(ledger.df) + len(ledger.rejected) + excluded + len(ledger.totals_rows) + ledger.blank_rows


def _assert_shape(ledger: Ledger) -> None:
    df = ledger.df
    assert list(df.columns) == list(ALL_COLUMNS)
    assert df["date"].dtype == "datetime64[ns]"
    assert df["amount"].dtype == "float64"
    assert df["row"].dtype == "int64"
    for column in ALL_COLUMNS[2:-1]:
        assert df[column].dtype == object, column
    assert not (df.select_dtypes(object) == "").any().any(), "missing text is None, never ''"
    first, last = ledger.data_rows
    assert _accounted(ledger) == last - first + 1


# ---------------------------------------------------------------------------------------------
# the profiles themselves
# ---------------------------------------------------------------------------------------------

def test_every_shipped_profile_loads() -> None:
    profiles = list_profiles()
    assert {p.name for p in profiles} == SHIPPED
    assert all(isinstance(p, Profile) and p.required for p in profiles)
    assert get_profile("alipay").sign.mode == "direction"


def test_unknown_profile_name_lists_the_shipped_ones() -> None:
    with pytest.raises(SettingsError, match="no import profile named 'paypal'") as info:
        get_profile("paypal")
    assert "alipay" in info.value.fix


@pytest.mark.parametrize("toml, message", [
    ('name = "x"\n[detect]\nheaders = ["a"]\n[columns]\ndate = "a"\n', "maps no amount column"),
    ('name = "x"\n[detect]\nheaders = ["a"]\n[columns]\ncost = "a"\n', "unknown canonical column"),
    ('name = "x"\nfoo = 1\n[detect]\nheaders = ["a"]\n[columns]\namount = "a"\n', "unknown key"),
    ('name = "x"\n[detect]\nheaders = ["a"]\n[columns]\namount = "a"\n[sign]\nmode = "direction"\n',
     "direction mode needs"),
    ('name = "x"\n[detect]\nheaders = ["a"]\n[columns]\namount = "a"\n[clean]\namount_regex = "("\n',
     "amount_regex is invalid"),
    ('name = "x"\n[detect\n', "not valid TOML"),
])
def test_a_bad_profile_file_says_what_is_wrong(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(SettingsError, match=message):
        load_profile(path)


# ---------------------------------------------------------------------------------------------
# real samples
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CHINESE))
def test_chinese_export_reads_with_its_profile(shared_data: Path, name: str) -> None:
    profile, n, total, excluded, totals, blank, header = CHINESE[name]
    ledger = read_with_profile(shared_data / CN / name)
    assert ledger.profile == profile
    assert ledger.header_row == header
    assert len(ledger.df) == n
    assert round(ledger.df["amount"].sum(), 2) == pytest.approx(total)
    assert ledger.rejected.empty
    assert ledger.excluded["row"].tolist() == excluded
    assert ledger.totals_rows == totals
    assert ledger.blank_rows == blank
    _assert_shape(ledger)


@pytest.mark.parametrize("name", sorted(CHINESE))
def test_detection_picks_the_right_profile(shared_data: Path, name: str) -> None:
    assert detect_profile(shared_data / CN / name).name == CHINESE[name][0]


@pytest.mark.parametrize("name", sorted(PCARD))
def test_detection_picks_the_pcard_profile(shared_data: Path, name: str) -> None:
    assert detect_profile(shared_data / name).name == PCARD[name][0]


@pytest.mark.parametrize("name", ["birmingham_pcard_2014_2018.csv.gz", "toronto_pcard_2011_2021.csv.gz"])
def test_detection_reads_gzipped_csv(shared_data: Path, name: str) -> None:
    assert detect_profile(shared_data / name).name == name.split("_")[0] + "_pcard"


def test_alipay_refunds_are_negative_and_transfers_excluded(shared_data: Path) -> None:
    ledger = read_with_profile(shared_data / CN / "alipay_example-alipay-records.csv")
    assert ledger.encoding == "gb18030"  # the real export is GBK
    by_row = ledger.df.set_index("row")
    assert by_row.loc[26, "amount"] == 49.74
    assert by_row.loc[26, "date"] == pd.Timestamp("2023-02-12 21:32:14")
    assert by_row.loc[26, "vendor"] == "xxxxxxxxxxxx"  # padding spaces are gone
    assert by_row.loc[26, "receipt"] == "202302xxxxxx0011000103xxxxxx"  # the trailing tab too
    # Paid 50.00 for 一卡通充值 (closed after the refund) and got 50.00 back: nets to zero.
    assert by_row.loc[33, "amount"] == 50.00 and by_row.loc[32, "amount"] == -50.00
    assert by_row.loc[28, "amount"] == -16.03
    reasons = dict(zip(ledger.excluded["row"], ledger.excluded["reason"]))
    assert "money in" in reasons[30] and "neither income nor expense" in reasons[29]
    assert by_row.loc[34, "card"] is None  # an empty 收/付款方式


def test_jd_partial_refunds_give_the_preamble_total(shared_data: Path) -> None:
    """'131.77(已退款89.84)' spent 41.93; the 16 expenses add up to the 支出 line 1648.43."""
    ledger = read_with_profile(shared_data / CN / "jd_example-jd-records.csv")
    by_row = ledger.df.set_index("row")
    assert by_row.loc[26, "amount"] == pytest.approx(41.93)
    assert by_row.loc[23, "amount"] == 10.20
    assert round(ledger.df["amount"].sum(), 2) == 1648.43


def test_meituan_matches_its_preamble_totals(shared_data: Path) -> None:
    """支出 1175.68 and 收入 (refunds) 209.73 as the preamble states; the 月付 repayment is out."""
    ledger = read_with_profile(shared_data / CN / "mt_example-mt-records.csv")
    amounts = ledger.df["amount"]
    assert round(amounts[amounts > 0].sum(), 2) == 1175.68
    assert round(-amounts[amounts < 0].sum(), 2) == 209.73
    assert (amounts > 0).sum() == 22 and (amounts < 0).sum() == 6
    assert ledger.excluded["reason"].iloc[0].startswith("美团月付还款")
    assert ledger.df.set_index("row").loc[21, "amount"] == 21.17  # 实付金额, not 订单金额 22.30


def test_icbc_padding_total_line_and_blank_line(shared_data: Path) -> None:
    ledger = read_with_profile(shared_data / CN / "icbc_debit-v2_example-icbc-debit-v2-records.csv")
    by_row = ledger.df.set_index("row")
    assert by_row.loc[8, "amount"] == 13.40
    assert by_row.loc[8, "date"] == pd.Timestamp("2023-05-02")
    assert by_row.loc[8, "category"] == "消费"
    assert by_row.loc[18, "amount"] == -1.04  # 退款 into the account: a refund
    assert by_row.loc[13, "amount"] == 500.00
    assert ledger.totals_rows == [20]  # 人民币合计
    assert ledger.columns["amount"].header == "记账金额(支出)"


def test_ccb_xls_footer_and_compact_dates(shared_data: Path) -> None:
    ledger = read_with_profile(shared_data / CN / "ccb_交易明细_xxxx_2025xxxx_2025xxxx.xls")
    first = ledger.df.iloc[0]
    assert (first["date"], first["amount"], first["row"]) == (pd.Timestamp("2025-01-01"), 67.0, 7)
    assert ledger.excluded["reason"].tolist() == ["表尾说明 / footer below the table"]


def test_spdb_date_and_time_with_two_spaces(shared_data: Path) -> None:
    ledger = read_with_profile(shared_data / CN / "spdb_debit_example-spdb_debit-records.xls")
    assert ledger.df["date"].tolist() == [pd.Timestamp("2025-12-03 14:06:51"), pd.Timestamp("2025-12-05 19:03:07"),
                                          pd.Timestamp("2025-12-05 20:37:39")]
    assert ledger.df["amount"].tolist() == [3.88, 3.88, 3.88]


def test_citic_cashback_is_negative_and_repayment_excluded(shared_data: Path) -> None:
    ledger = read_with_profile(shared_data / CN / "citic_credit_example-citic-records.xls")
    by_row = ledger.df.set_index("row")
    assert by_row.loc[4, "amount"] == -0.20
    assert by_row.loc[5, "amount"] == 807.89
    assert by_row.loc[3, "card"] == "6688"  # a number cell read as an ID, without '.0'
    assert ledger.excluded["row"].tolist() == [12]


@pytest.mark.parametrize("name", sorted(PCARD))
def test_purchase_card_file_reads_with_its_profile(shared_data: Path, name: str) -> None:
    profile, n, total, negatives, subtotals, blank, first_date, first_amount = PCARD[name]
    ledger = read_with_profile(shared_data / name)
    assert ledger.profile == profile
    df = ledger.df
    assert len(df) == n
    assert round(df["amount"].sum(), 2) == pytest.approx(total)
    assert int((df["amount"] < 0).sum()) == negatives
    assert len(ledger.totals_rows) == subtotals
    assert ledger.blank_rows == blank
    assert ledger.rejected.empty and ledger.excluded.empty
    assert df["date"].notna().all()
    assert (df.iloc[0]["date"], df.iloc[0]["amount"]) == (pd.Timestamp(first_date), first_amount)
    _assert_shape(ledger)


def test_toronto_column_drift_is_covered_by_aliases(shared_data: Path) -> None:
    headers = {}
    for name in sorted(PCARD):
        if name.startswith(TR):
            ledger = read_with_profile(shared_data / name)
            headers[name[len(TR):len(TR) + 4]] = (ledger.columns["category"].header, ledger.columns["receipt"].header,
                                                  ledger.encoding)
    assert headers == {
        "2011": ("G/L Account Description", "Batch-Transaction ID", "cp1252"),
        "2012": ("Exp Type Desc", "Batch-Transaction ID", "cp1252"),
        "2016": ("Exp Type Desc", "Batch Transaction ID", "cp1252"),
        "2021": ("Exp Type Desc", "Batch-Transaction ID", "cp1252"),
    }


def test_birmingham_consolidated_takes_the_amount_each_month_had(shared_data: Path) -> None:
    """131,679 lines come from months without BILLING GROSS AMT: ORIGINAL GROSS AMT fills in."""
    ledger = read_with_profile(shared_data / "birmingham_pcard_2014_2018.csv.gz")
    df = ledger.df
    assert len(df) == 185_908
    assert ledger.rejected.empty
    assert round(df["amount"].sum(), 2) == pytest.approx(32_025_527.87)
    assert int((df["amount"] < 0).sum()) == 5145
    first = df.iloc[0]
    assert (first["date"], first["amount"], first["vendor"], first["card"]) == (
        pd.Timestamp("2017-01-03"), 72.61, "shell kings 587", "************5770")
    assert first["category"] == "Vehicle Fuel" and first["department"] == "Adult & Communities"


def test_toronto_consolidated_first_60000_rows(shared_data: Path) -> None:
    ledger = read_with_profile(shared_data / "toronto_pcard_2011_2021.csv.gz", max_rows=60_000)
    df = ledger.df
    assert len(df) == 60_000 and ledger.rejected.empty
    assert round(df["amount"].sum(), 2) == pytest.approx(10_983_503.73)
    assert int((df["amount"] < 0).sum()) == 953
    assert (df.iloc[0]["date"], df.iloc[0]["amount"]) == (pd.Timestamp("2011-01-06"), 34.99)  # month first
    assert (df.iloc[-1]["date"], df.iloc[-1]["row"]) == (pd.Timestamp("2012-07-06"), 60_001)
    assert ledger.columns["amount"].header == "Transaction Amount"
    assert any("max_rows" in note for note in ledger.notes)


@pytest.mark.parametrize("name", [CN + "htsec_example-htsec-records.xlsx", "messy/uk_council_raw/leeds_raw_2020-06.csv"])
def test_a_file_no_profile_describes_gives_a_clear_error(shared_data: Path, name: str) -> None:
    with pytest.raises(LedgerNotFound, match="no import profile matches") as info:
        read_with_profile(shared_data / name)
    assert info.value.path == str(shared_data / name)
    assert "--profile" in info.value.fix


def test_profile_override_that_does_not_fit_says_so(shared_data: Path) -> None:
    path = shared_data / CN / "boc_debit_example-boc-records.csv"
    assert read_with_profile(path, "boc_debit").profile == "boc_debit"
    with pytest.raises(LedgerNotFound, match="profile 'alipay': no row with the headers"):
        read_with_profile(path, "alipay")
    with pytest.raises(LedgerNotFound, match="reads xls, xlsx files, not csv"):
        read_with_profile(path, "ccb")


# ---------------------------------------------------------------------------------------------
# generated fixtures: encodings, preambles, Zoho, Fxiaoke, a profile added as one file
# ---------------------------------------------------------------------------------------------

ALIPAY_HEADER = "交易时间,交易分类,交易对方,对方账号,商品说明,收/支,金额,收/付款方式,交易状态,交易订单号,商家订单号,备注,"


def _alipay_csv(path: Path, preamble_lines: int, rows: list[str], encoding: str) -> Path:
    preamble = ["导出信息："] + [f"第{i}行说明，含逗号，不是表头" for i in range(preamble_lines - 2)] + ["-" * 20]
    path.write_bytes("\r\n".join(preamble + [ALIPAY_HEADER] + rows).encode(encoding))
    return path


ROWS = [
    "2024-03-05 12:00:00 ,餐饮美食 ,海底捞 ,/ ,聚餐 ,支出 ,328.00 ,招商银行(1234) ,交易成功 ,20240305001\t,\t, ,",
    "2024-03-06 09:30:00 ,退款 ,海底捞 ,/ ,退款-聚餐 ,不计收支 ,28.00 ,招商银行(1234) ,退款成功 ,20240306001\t,\t, ,",
    "2024-03-07 10:00:00 ,转账红包 ,张三 ,/ ,红包 ,收入 ,66.00 ,余额 ,交易成功 ,20240307001\t,\t, ,",
    "2024-03-08 18:45:10 ,交通出行 ,滴滴出行 ,/ ,快车 ,支出 ,￥45.50 ,余额 ,交易成功 ,20240308001\t,\t, ,",
]


@pytest.mark.parametrize("encoding, expected", [("gbk", "gb18030"), ("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8-sig")])
def test_alipay_like_csv_in_each_encoding(tmp_path: Path, encoding: str, expected: str) -> None:
    path = _alipay_csv(tmp_path / "alipay.csv", 12, ROWS, encoding)
    ledger = read_with_profile(path)
    assert (ledger.profile, ledger.encoding) == ("alipay", expected)
    assert ledger.df["amount"].tolist() == [328.00, -28.00, 45.50]
    assert ledger.df["vendor"].tolist() == ["海底捞", "海底捞", "滴滴出行"]
    assert ledger.df["row"].tolist() == [14, 15, 17]
    assert ledger.excluded["row"].tolist() == [16]


@pytest.mark.parametrize("preamble_lines", [1, 5, 40])
def test_header_is_found_whatever_the_preamble_length(tmp_path: Path, preamble_lines: int) -> None:
    path = _alipay_csv(tmp_path / "alipay.csv", max(preamble_lines, 2), ROWS, "gbk")
    ledger = read_with_profile(path)
    assert ledger.header_row == max(preamble_lines, 2) + 1
    assert len(ledger.df) == 3


def test_unreadable_rows_are_rejected_with_the_row_and_reason(tmp_path: Path) -> None:
    rows = ROWS[:1] + ["2024-03-09 08:00:00 ,餐饮美食 ,面馆 ,/ ,午饭 ,支出 ,十二元 ,余额 ,交易成功 ,1\t,\t, ,",
                       "2024-13-45 08:00:00 ,餐饮美食 ,面馆 ,/ ,午饭 ,支出 ,12.00 ,余额 ,交易成功 ,2\t,\t, ,"]
    ledger = read_with_profile(_alipay_csv(tmp_path / "a.csv", 3, rows, "gbk"))
    assert ledger.df["row"].tolist() == [5]
    assert ledger.rejected["row"].tolist() == [6, 7]
    assert ledger.rejected["reason"].iloc[0] == "金额无法识别 / amount not a number: '十二元'"
    assert ledger.rejected["reason"].iloc[1].startswith("日期无法识别")


def test_undecodable_text_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "toronto.csv"
    path.write_bytes(b"Division,Transaction Date,Merchant Name,Purpose,Transaction Amount\r\n"
                     b"X,2020-01-01,SHOP,PENS,1.00\r\nX,2020-01-02,\x81\x8d\x8f\x90,PENS,2.00\r\n")
    with pytest.raises(UnreadableWorkbook, match="not in any of the encodings utf-8-sig, cp1252"):
        read_with_profile(path, "toronto_pcard")


def test_an_unknown_csv_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("name,colour\nalice,red\n", encoding="utf-8")
    with pytest.raises(LedgerNotFound) as info:
        detect_profile(path)
    assert isinstance(info.value, XlExpenseError)
    assert str(info.value).startswith(f"{path}: no import profile matches this file's headers — name one with --profile")


ZOHO = """Expense Date,Expense Description,Merchant Name,Category Name,Expense Amount,Currency Code,Employee Name,Report Name,Reference#,Customer Name,Project Name,Paid Through,Expense Status
2025-04-01,Client dinner,Din Tai Fung,Meals and Entertainment,"1,280.00",CNY,Li Lei,April,R-001,ACME Ltd,P-7,Corporate Card,Approved
2025-04-02,Taxi to client,Didi,Travel,56.30,CNY,Li Lei,April,R-002,ACME Ltd,P-7,Personal,Approved
2025-04-03,Gift,Starbucks,Gifts,-20.00,CNY,Han Meimei,April,R-003,Beta Co,,Corporate Card,Approved
2025-04-04,Duplicate,Didi,Travel,56.30,CNY,Li Lei,April,R-004,ACME Ltd,P-7,Personal,Rejected
"""


def test_zoho_expense_csv(tmp_path: Path) -> None:
    path = tmp_path / "zoho.csv"
    path.write_text(ZOHO, encoding="utf-8")
    assert detect_profile(path).name == "zoho_expense"
    ledger = read_with_profile(path)
    df = ledger.df
    assert df["amount"].tolist() == [1280.00, 56.30, -20.00]
    assert df["person"].tolist() == ["Li Lei", "Li Lei", "Han Meimei"]
    assert df["customer"].tolist() == ["ACME Ltd", "ACME Ltd", "Beta Co"]
    assert df["project"].tolist() == ["P-7", "P-7", None]
    assert df["receipt"].tolist() == ["R-001", "R-002", "R-003"]
    assert ledger.excluded["row"].tolist() == [5]
    _assert_shape(ledger)


def _fxiaoke_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "费用"
    sheet.append(["费用明细导出 2025-04"])
    sheet.append(["费用编号", "发生日期", "费用类型", "费用金额", "报销人", "所属部门", "客户名称", "商机名称",
                  "费用说明", "生命状态"])
    sheet.append(["FY-001", "2025-04-01", "业务招待费", 1200, "王芳", "华东销售部", "上海某某科技", "二期项目",
                  "客户晚宴", "正常"])
    sheet.append(["FY-002", "2025/04/02", "差旅费", "¥356.50", "王芳", "华东销售部", "上海某某科技", None,
                  "高铁", "正常"])
    sheet.append(["FY-003", "2025-04-03", "礼品费", 800, "李强", "华南销售部", "广州某某贸易", None, "礼品", "作废"])
    sheet.append([None, None, None, 2356.5, None, None, None, None, "合计", None])
    book.save(path)
    return path


def test_fxiaoke_expense_xlsx(tmp_path: Path) -> None:
    path = _fxiaoke_xlsx(tmp_path / "fxiaoke.xlsx")
    assert detect_profile(path).name == "fxiaoke_expense"
    ledger = read_with_profile(path)
    df = ledger.df
    assert df["amount"].tolist() == [1200.0, 356.5]
    assert df["date"].tolist() == [pd.Timestamp("2025-04-01"), pd.Timestamp("2025-04-02")]
    assert df["category"].tolist() == ["业务招待费", "差旅费"]
    assert df["customer"].tolist() == ["上海某某科技", "上海某某科技"]
    assert df["receipt"].tolist() == ["FY-001", "FY-002"]
    assert df["row"].tolist() == [3, 4] and ledger.header_row == 2
    assert ledger.excluded["row"].tolist() == [5]
    assert ledger.totals_rows == [6]
    _assert_shape(ledger)


def test_a_new_format_is_one_toml_file(tmp_path: Path) -> None:
    """A bank with 借方/贷方 columns, described in one file and passed by path."""
    profile = tmp_path / "mybank.toml"
    profile.write_text("""
name = "mybank"
title = "My bank"
formats = ["csv"]
[detect]
headers = ["日期", "借方发生额", "贷方发生额", "对方户名"]
[columns]
date = "日期"
vendor = "对方户名"
description = "用途"
[sign]
mode = "debit_credit"
debit = "借方发生额"
credit = "贷方发生额"
income_rows = "refund"
""", encoding="utf-8")
    data = tmp_path / "statement.csv"
    data.write_bytes("账户明细\n日期,借方发生额,贷方发生额,对方户名,用途\n"
                     "2025-05-01,100.00,,文具店,办公用品\n2025-05-02,,30.00,文具店,退货\n"
                     ",,,,\n2025-05-03,abc,,饭店,午餐\n".encode("gb18030"))
    ledger = read_with_profile(data, profile)
    assert ledger.profile == "mybank"
    assert ledger.df["amount"].tolist() == [100.0, -30.0]
    assert ledger.blank_rows == 1
    assert ledger.rejected["row"].tolist() == [6]
    assert get_profile(profile).name == "mybank"


def test_neutral_rows_kept_as_expense_when_a_profile_says_so(tmp_path: Path) -> None:
    profile = load_profile(Path(get_profile("alipay").source))
    kept = Profile(**{**profile.__dict__, "sign": type(profile.sign)(
        **{**profile.sign.__dict__, "income_rows": "refund", "neutral_rows": "expense"})})
    ledger = read_with_profile(_alipay_csv(tmp_path / "a.csv", 3, ROWS, "gbk"), kept)
    assert ledger.df["amount"].tolist() == [328.00, -28.00, -66.00, 45.50]
    assert ledger.excluded.empty
    assert np.isclose(ledger.df["amount"].sum(), 279.5)


def test_a_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    import gzip

    whole = gzip.compress(("Division,Transaction Date,Merchant Name,Purpose,Transaction Amount\n"
                           + "X,2020-01-01,SHOP,PENS,1.00\n" * 5000).encode())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UnreadableWorkbook, match="could not be read") as info:
        read_with_profile(path, "toronto_pcard")
    assert info.value.path == str(path)
