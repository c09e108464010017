"""A realistic demo ledger: one year of sales maintenance expenses with a few planted problems.

The demo is what a new user runs first (``xl-expense demo``), so it looks like what finance
staff really receive: a title row merged above the header, Chinese headers, a few amounts
typed as text (``¥1,234.50``) and dates as ``2025年3月5日``, a 合计 row with a SUM formula,
a Settings sheet, a summary sheet with a chart (to show the audit keeps it), two rows
nobody can read, and planted findings for most rules.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

DEPARTMENTS = {
    "华东销售部": ("上海", "杭州", "南京", "苏州"),
    "华南销售部": ("广州", "深圳", "厦门"),
    "华北销售部": ("北京", "天津", "济南"),
    "西南销售部": ("成都", "重庆", "昆明"),
    "大客户部": ("北京", "上海", "深圳"),
}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ("伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "军", "涛", "明", "超", "霞", "平", "刚", "婷")
CUSTOMER_STEMS = ("宏达机电", "华信精密", "天成自动化", "东方电气", "远航物流", "嘉禾医疗", "瑞丰食品", "金桥化工",
                  "恒通钢构", "新元纺织", "博远半导体", "中诚建材", "安泰制药", "鼎盛汽车零部件", "长江水务",
                  "凯瑞光电", "星海船舶", "永安电力", "华康环保", "联创数控")
#: category → (typical amount, spread, vendors, description templates)
CATEGORIES = {
    "售后服务": (1800, 0.7, ("顺丰速运", "本地服务外包商", "德邦物流"), ("{c}设备上门维修服务", "{c}年度巡检", "{c}售后回访")),
    "技术支持": (1500, 0.6, ("远程支持平台", "华为云", "阿里云"), ("{c}现场技术支持", "{c}系统调试", "{c}远程诊断")),
    "备件维修": (3200, 0.8, ("西门子备件中心", "施耐德电气", "ABB备件库", "欧姆龙代理"), ("{c}更换主板备件", "{c}电机维修", "{c}传感器更换")),
    "差旅费": (1200, 0.7, ("中国东方航空", "携程旅行网", "汉庭酒店", "滴滴出行", "12306铁路"), ("赴{city}拜访{c}", "{city}出差住宿", "往返{city}机票")),
    "客户招待": (900, 0.6, ("海底捞", "全聚德", "外婆家", "星巴克", "鼎泰丰"), ("招待{c}采购经理", "{c}项目交流餐", "宴请{c}")),
    "通讯费": (200, 0.3, ("中国移动", "中国联通", "中国电信"), ("{p}手机话费", "流量包", "外勤通讯补贴")),
    "培训费": (2500, 0.5, ("行业协会", "厂家培训中心"), ("{c}操作培训", "售后工程师认证培训", "产品知识培训")),
    "市场活动": (4000, 0.7, ("会展中心", "广告公司", "印刷厂"), ("{city}客户答谢会", "行业展会展位", "宣传资料印制")),
    "物流费": (600, 0.6, ("顺丰速运", "德邦物流", "京东物流"), ("{c}备件寄送", "返修件物流", "样机运输")),
    "办公费": (300, 0.5, ("得力文具", "京东商城", "晨光办公"), ("办公用品", "打印耗材", "资料装订")),
}
CATEGORY_WEIGHTS = (0.14, 0.12, 0.10, 0.20, 0.14, 0.08, 0.04, 0.05, 0.07, 0.06)
HEADERS = ("日期", "报销人", "部门", "地区", "客户", "费用类别", "摘要", "供应商", "发票号", "金额（元）", "项目")
INJECTION_TEXT = '=HYPERLINK("http://example.com/x","点击查看明细")'


def _people(rng: np.random.Generator) -> list[tuple[str, str, str]]:
    """Thirty salespeople, each with a department and a home city."""
    people, seen = [], set()
    depts = list(DEPARTMENTS)
    while len(people) < 30:
        name = rng.choice(list(SURNAMES)) + "".join(rng.choice(GIVEN, size=rng.integers(1, 3)))
        if name in seen:
            continue
        seen.add(name)
        dept = depts[len(people) % len(depts)]
        people.append((name, dept, str(rng.choice(DEPARTMENTS[dept]))))
    return people


def _workdays(year: int) -> pd.DatetimeIndex:
    """Mon–Fri outside China's public holidays: ordinary spending happens on working days."""
    import holidays

    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    off = pd.to_datetime(sorted(holidays.country_holidays("CN", years=year)))
    return days[(days.day_of_week < 5) & ~days.isin(off)]


def demo_ledger(rows: int = 5000, year: int = 2025, seed: int = 7) -> pd.DataFrame:
    """The demo's clean rows (before planted problems), one per expense, Chinese headers."""
    rng = np.random.default_rng(seed)
    people = _people(rng)
    customers = [f"{city}{stem}有限公司" for stem, city in zip(CUSTOMER_STEMS, ("上海", "苏州", "杭州", "成都", "广州",
                 "深圳", "北京", "天津", "南京", "重庆", "厦门", "济南", "昆明", "上海", "广州", "北京", "深圳", "杭州", "成都", "天津"))]
    workdays = _workdays(year)
    cats = list(CATEGORIES)
    records = []
    for i in range(rows):
        name, dept, city = people[rng.integers(len(people))]
        cat = cats[rng.choice(len(cats), p=CATEGORY_WEIGHTS)]
        typical, spread, vendors, templates = CATEGORIES[cat]
        customer = customers[rng.integers(len(customers))]
        amount = round(float(typical * rng.lognormal(0, spread)), 2)
        date = workdays[rng.integers(len(workdays))]
        receipt = f"{rng.integers(10_000_000, 99_999_999):08d}" if amount >= 300 or rng.random() < 0.5 else None
        desc = str(rng.choice(templates)).format(c=customer.replace("有限公司", ""), city=city, p=name)
        records.append({
            "日期": date.to_pydatetime(), "报销人": name, "部门": dept, "地区": city, "客户": customer,
            "费用类别": cat, "摘要": desc, "供应商": str(rng.choice(vendors)), "发票号": receipt,
            "金额（元）": amount, "项目": f"MT-{year}-{1 + rng.integers(40):03d}",
        })
    frame = pd.DataFrame.from_records(records).sort_values("日期", kind="stable").reset_index(drop=True)
    return frame


def _plant_problems(frame: pd.DataFrame, year: int) -> pd.DataFrame:
    """Add rows that each trigger one rule, so the demo audit shows what it finds."""
    base = frame.iloc[100].to_dict()
    who = {k: base[k] for k in ("报销人", "部门", "地区", "客户", "项目")}

    def row(date: object, cat: str, desc: str, vendor: str, amount: object, receipt: object = "55501234") -> dict:
        return {**who, "日期": date, "费用类别": cat, "摘要": desc, "供应商": vendor, "发票号": receipt, "金额（元）": amount}

    d = dt.datetime
    planted = [
        # duplicate: the same claim entered twice
        row(d(year, 3, 10), "客户招待", "招待客户采购经理", "全聚德", 2680.0, "31415926"),
        row(d(year, 3, 10), "客户招待", "招待客户采购经理", "全聚德", 2680.0, "31415926"),
        # split purchase: three invoices under the 5,000 approval limit within two days
        row(d(year, 5, 12), "备件维修", "更换主板备件（一）", "西门子备件中心", 4850.0, "27182818"),
        row(d(year, 5, 13), "备件维修", "更换主板备件（二）", "西门子备件中心", 4700.0, "27182819"),
        row(d(year, 5, 14), "备件维修", "更换主板备件（三）", "西门子备件中心", 3900.0, "27182820"),
        # just under the limit
        row(d(year, 6, 18), "市场活动", "客户答谢会场地", "会展中心", 4980.0, "16180339"),
        # National Day holiday and a Sunday
        row(d(year, 10, 1), "客户招待", "国庆节宴请客户", "鼎泰丰", 1880.0, "14142135"),
        row(d(year, 8, 17), "差旅费", "周日出差住宿", "汉庭酒店", 460.0, "17320508"),
        # missing receipt at 3,600
        row(d(year, 7, 8), "技术支持", "现场技术支持", "本地服务外包商", 3600.0, None),
        # hospitality above its policy limit (3,000 in the Settings sheet)
        row(d(year, 9, 9), "客户招待", "宴请客户高层", "外婆家", 8800.0, "22360679"),
        # a refund
        row(d(year, 4, 2), "差旅费", "机票退票退款", "中国东方航空", -320.0, "26457513"),
        # a phone bill 38× the usual
        row(d(year, 11, 5), "通讯费", "手机话费", "中国移动", 7600.0, "30000001"),
        # a typo year: in the future and outside the period
        row(d(2062, 3, 5), "差旅费", "赴成都拜访客户", "携程旅行网", 1350.0, "30000002"),
        # hostile text that must stay text
        row(d(year, 2, 20), "办公费", INJECTION_TEXT, "京东商城", 268.0, "30000003"),
        # messy formats the reader must understand
        row(f"{year}年4月15日", "物流费", "备件寄送", "顺丰速运", "¥1,234.50", "30000004"),
        row(f"{year}/6/3", "差旅费", "往返深圳机票", "携程旅行网", "1,860.00元", "30000005"),
        # unreadable: nobody can tell the amount or the date
        row(d(year, 7, 21), "售后服务", "上门维修服务", "本地服务外包商", "待定", "30000006"),
        row(f"{year}年13月40日", "物流费", "返修件物流", "德邦物流", 420.0, "30000007"),
    ]
    planted[-5]["报销人"] = None  # the injection row also lacks a claimant: missing_field
    return pd.concat([frame, pd.DataFrame(planted)], ignore_index=True)


def write_demo_workbook(path: str | Path, rows: int = 5000, year: int = 2025, seed: int = 7) -> Path:
    """Write the demo ledger workbook and return its path."""
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.styles import Alignment, Font

    frame = _plant_problems(demo_ledger(rows - 18, year, seed), year)
    wb = Workbook()
    ws = wb.active
    ws.title = "费用明细"
    ws.append([f"华信科技有限公司 {year}年度销售维护费明细账"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append(["单位：元", None, None, None, None, None, None, None, None, None, "制表：财务部"])
    ws.append(list(HEADERS))
    for cell in ws[3]:
        cell.font = Font(bold=True)
    for record in frame.itertuples(index=False):
        values = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in record]
        ws.append([v if v != "" else None for v in values])
    first, last = 4, ws.max_row
    for r in range(first, last + 1):
        ws.cell(r, 1).number_format = "yyyy-mm-dd"
        ws.cell(r, 10).number_format = "#,##0.00"
        # Cell text that looks like a formula is stored as a string (data_type "s"), never evaluated.
        if ws.cell(r, 7).value == INJECTION_TEXT:
            ws.cell(r, 7).data_type = "s"
    ws.append(["合计", None, None, None, None, None, None, None, None, f"=SUM(J{first}:J{last})", None])
    ws.freeze_panes = "A4"
    for col, width in zip("ABCDEFGHIJK", (12, 8, 12, 6, 24, 10, 28, 14, 11, 12, 12)):
        ws.column_dimensions[col].width = width

    _write_monthly_sheet(wb, frame, BarChart, Reference)
    _write_settings_sheet(wb, year)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def _write_monthly_sheet(wb, frame: pd.DataFrame, BarChart, Reference) -> None:
    """A hand-made summary with a chart: the audit must leave both untouched."""
    ws = wb.create_sheet("月度汇总")
    ws.append(["月份", "金额（元）"])
    dates = pd.to_datetime(frame["日期"], errors="coerce")
    amounts = pd.to_numeric(frame["金额（元）"], errors="coerce")
    ok = dates.notna() & amounts.notna() & (dates.dt.year < 2030)
    monthly = amounts[ok].groupby(dates[ok].dt.month).sum()
    for month, total in monthly.items():
        ws.append([f"{month}月", round(float(total), 2)])
    chart = BarChart()
    chart.title = "月度销售维护费"
    chart.add_data(Reference(ws, min_col=2, min_row=1, max_row=ws.max_row), titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=ws.max_row))
    ws.add_chart(chart, "D2")


def _write_settings_sheet(wb, year: int) -> None:
    ws = wb.create_sheet("设置")
    ws.append(["参数", "值", "说明"])
    for key, value, note in (
        ("审批限额", 5000, "单笔超过需上级审批"),
        ("发票阈值", 1000, "达到此金额须有发票号"),
        ("币种", "CNY", ""),
        ("期间开始", f"{year}-01-01", "审计期间"),
        ("期间结束", f"{year}-12-31", ""),
        ("基准日", f"{year + 1}-01-15", "判断未来日期的基准"),
        ("限额:客户招待", 3000, "客户招待单笔上限"),
        ("限额:通讯费", 1000, "通讯费单笔上限"),
    ):
        ws.append([key, value, note])
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["C"].width = 24
