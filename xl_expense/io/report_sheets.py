"""The report's sheets: 看板/Dashboard, 客户/Customers, 绩效/Scorecards, 对标/Benchmark,
优化建议/Proposals and 评估/Evaluation, described as :class:`~xl_expense.io.sheet_model.NewSheet`.

The numbers come from :mod:`xl_expense.core.analysis` (tidy frames with English columns);
this module only lays them out: zh/en labels, money as ``¥ #,##0.00`` when the ledger is in
CNY (else ``#,##0.00`` with the currency in the header), every list an Excel Table with a
frozen header, native charts next to the numbers they draw, and conditional formatting on
the flags a manager acts on. It also reads back what the report needs from the workbook:
the ``收入/Revenue`` sheet and the evaluation history an earlier report wrote.

Ledger text (customer, vendor, category names) is written as text, never as a formula; the
sheet writer guarantees it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd

from xl_expense.errors import UnreadableWorkbook
from xl_expense.io.report_names import (  # noqa: F401
    SHEET_KEYS,
    SHEET_NAMES,
    report_sheet_names,
    sheet_name,
)
from xl_expense.io.sheet_model import (
    Block,
    ChartSeries,
    ChartSpec,
    CondFormat,
    NewSheet,
    TableSpec,
)
from xl_expense.io.sheet_xml import col_letter
from xl_expense.io.table_sheet import plain_cell
from xl_expense.schema import normalize_header

# --------------------------------------------------------------------------- names and labels

#: The Table on 评估/Evaluation that keeps every run's findings; read back by the next run.
HISTORY_TABLE = "XE_EvalHistory"
HISTORY_COLUMNS = ("run", "finding_id", "rule", "severity", "department", "person", "amount", "sheet", "row",
                   "status")
REVENUE_SHEETS = ("收入", "维护费收入", "Revenue", "Income")


#: Column labels by language. One dictionary for every sheet: a ratio is called the same
#: wherever it appears, so a manager can follow it from the dashboard to the scorecard.
LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "severity": "严重程度", "findings": "发现数", "rows": "涉及行数", "amount_at_risk": "涉及金额",
        "open": "待复核", "explained": "已解释", "confirmed": "已确认",
        "category": "费用类别", "amount": "金额", "share": "占比", "count": "笔数",
        "month": "月份", "mom_change": "环比变化", "mom_pct": "环比", "yoy_change": "同比变化", "yoy_pct": "同比",
        "revenue": "维护费收入", "expense_to_revenue": "费用收入比",
        "group": "分组", "planned_year": "全年预算", "planned_to_date": "按进度应用", "actual_to_date": "已用",
        "variance": "差额（实际−进度）", "pace": "进度使用率", "used_pct": "全年使用率", "remaining": "剩余",
        "forecast_seasonal": "预测全年", "unbudgeted_actual": "无预算支出", "lines_over": "超支行数",
        "rank": "排名", "key": "名称", "cum_share": "累计占比", "in_core": "属于 80% 核心",
        "spend": "费用", "claims": "报销笔数", "customers": "客户数", "cost_per_customer": "单客户成本",
        "cost_per_claim": "单笔成本", "activities": "工单/拜访数", "cost_per_activity": "单次工单/拜访成本",
        "customer": "客户", "vendor": "供应商", "cost": "维护成本", "income": "维护费收入", "margin": "毛利（收入−成本）",
        "cost_to_income": "成本收入比", "cost_exceeds_income": "成本超过收入", "cost_recent": "近期成本",
        "cost_prior": "前期成本", "trend_pct": "成本趋势", "top_category": "主要费用类别",
        "level": "层级", "department": "部门", "person": "销售人员",
        "budget_planned_to_date": "预算（按进度）", "budget_actual_to_date": "预算已用", "budget_pace": "预算进度使用率",
        "budget_points": "预算得分", "peer_group_size": "同组人数", "peer_median_cost_per_customer": "同组单客户成本中位数",
        "peer_index": "相对同组", "peer_spend_points": "同组对比得分",
        "findings_error": "发现：错误", "findings_warning": "发现：警告", "findings_info": "发现：提示",
        "findings_confirmed": "发现：已确认", "findings_open": "发现：待复核", "findings_explained": "发现：已解释",
        "weighted_findings": "加权发现", "findings_rate": "加权发现率", "findings_points": "审计得分",
        "missing_receipts": "缺票笔数", "receipts_rate": "缺票率", "receipts_points": "票据得分",
        "previous_cost_per_customer": "上期单客户成本", "savings": "节约金额", "savings_pct": "节约比例",
        "savings_points": "节约得分", "weights_used": "计分权重合计", "score": "得分", "tier": "档位",
        "reward": "奖惩金额",
        "findings_per_100_claims": "每百笔发现数", "rank_cost_per_customer": "名次：单客户成本",
        "rank_cost_per_claim": "名次：单笔成本", "rank_cost_per_activity": "名次：单次工单/拜访成本",
        "rank_expense_to_revenue": "名次：费用收入比", "rank_findings_per_100_claims": "名次：每百笔发现数",
        "rank_budget_pace": "名次：预算进度", "mean_rank": "平均名次", "overall_rank": "综合排名",
        "is_reference": "标杆", "gap_cost_per_customer": "差距：单客户成本", "gap_cost_per_claim": "差距：单笔成本",
        "gap_cost_per_activity": "差距：单次工单/拜访成本", "gap_expense_to_revenue": "差距：费用收入比",
        "gap_findings_per_100_claims": "差距：每百笔发现数", "gap_budget_pace": "差距：预算进度",
        "from_line": "调出行", "to_line": "调入行", "from_pace": "调出行进度", "to_pace": "调入行进度",
        "explanation": "说明", "command": "执行命令（确认后运行）",
        "line": "预算行", "unit": "单元", "role": "角色", "base": "下期预算", "closed_months": "已结束月数",
        "months_under": "低用月数", "min_change": "最多调减", "max_change": "最多调增", "change": "建议调整",
        "proposed": "建议预算",
        "run": "运行", "opened": "新增", "recurring": "持续", "reopened": "复发", "resolved": "已解决",
        "error": "错误", "warning": "警告", "info": "提示", "current": "本次", "previous": "上次",
        "net_change": "净变化", "finding_id": "编号", "state": "状态变化", "rule": "规则", "sheet": "工作表",
        "row": "行号", "status": "复核状态", "name": "档位", "min_score": "最低得分", "weight": "权重",
        "component": "得分项",
    },
    "en": {
        "severity": "Severity", "findings": "Findings", "rows": "Rows", "amount_at_risk": "Amount at risk",
        "open": "Open", "explained": "Explained", "confirmed": "Confirmed",
        "category": "Category", "amount": "Amount", "share": "Share", "count": "Count",
        "month": "Month", "mom_change": "MoM change", "mom_pct": "MoM %", "yoy_change": "YoY change",
        "yoy_pct": "YoY %", "revenue": "Maintenance income", "expense_to_revenue": "Expense / income",
        "group": "Group", "planned_year": "Annual budget", "planned_to_date": "Plan to date",
        "actual_to_date": "Actual", "variance": "Variance (actual − plan)", "pace": "Pace", "used_pct": "Used %",
        "remaining": "Remaining", "forecast_seasonal": "Forecast (year)", "unbudgeted_actual": "Unbudgeted spend",
        "lines_over": "Lines over", "rank": "Rank", "key": "Name", "cum_share": "Cumulative share",
        "in_core": "In 80% core", "spend": "Spend", "claims": "Claims", "customers": "Customers",
        "cost_per_customer": "Cost per customer", "cost_per_claim": "Cost per claim",
        "activities": "Tickets/visits", "cost_per_activity": "Cost per ticket/visit",
        "customer": "Customer", "vendor": "Vendor", "cost": "Upkeep cost", "income": "Maintenance income",
        "margin": "Margin (income − cost)", "cost_to_income": "Cost / income",
        "cost_exceeds_income": "Cost exceeds income", "cost_recent": "Recent cost", "cost_prior": "Prior cost",
        "trend_pct": "Cost trend", "top_category": "Main category",
        "level": "Level", "department": "Department", "person": "Salesperson",
        "budget_planned_to_date": "Budget to date", "budget_actual_to_date": "Budget used",
        "budget_pace": "Budget pace", "budget_points": "Budget points", "peer_group_size": "Peers",
        "peer_median_cost_per_customer": "Peer median cost/customer", "peer_index": "Vs peers",
        "peer_spend_points": "Peer points", "findings_error": "Findings: error",
        "findings_warning": "Findings: warning", "findings_info": "Findings: info",
        "findings_confirmed": "Findings: confirmed", "findings_open": "Findings: open",
        "findings_explained": "Findings: explained", "weighted_findings": "Weighted findings",
        "findings_rate": "Weighted findings rate", "findings_points": "Audit points",
        "missing_receipts": "Missing receipts", "receipts_rate": "Missing receipt rate",
        "receipts_points": "Receipt points", "previous_cost_per_customer": "Previous cost/customer",
        "savings": "Savings", "savings_pct": "Savings %", "savings_points": "Savings points",
        "weights_used": "Weights used", "score": "Score", "tier": "Tier", "reward": "Reward / penalty",
        "findings_per_100_claims": "Findings per 100 claims", "rank_cost_per_customer": "Rank: cost/customer",
        "rank_cost_per_claim": "Rank: cost/claim", "rank_cost_per_activity": "Rank: cost/ticket",
        "rank_expense_to_revenue": "Rank: expense/income", "rank_findings_per_100_claims": "Rank: findings",
        "rank_budget_pace": "Rank: budget pace", "mean_rank": "Mean rank", "overall_rank": "Overall rank",
        "is_reference": "Reference", "gap_cost_per_customer": "Gap: cost/customer",
        "gap_cost_per_claim": "Gap: cost/claim", "gap_cost_per_activity": "Gap: cost/ticket",
        "gap_expense_to_revenue": "Gap: expense/income", "gap_findings_per_100_claims": "Gap: findings",
        "gap_budget_pace": "Gap: budget pace",
        "from_line": "From line", "to_line": "To line", "from_pace": "From pace", "to_pace": "To pace",
        "explanation": "Explanation", "command": "Command (run after approval)",
        "line": "Budget line", "unit": "Unit", "role": "Role", "base": "Next budget", "closed_months": "Closed months",
        "months_under": "Months under", "min_change": "Most cut", "max_change": "Most raise", "change": "Change",
        "proposed": "Proposed budget",
        "run": "Run", "opened": "Opened", "recurring": "Recurring", "reopened": "Reopened", "resolved": "Resolved",
        "error": "Error", "warning": "Warning", "info": "Info", "current": "This run", "previous": "Previous run",
        "net_change": "Net change", "finding_id": "Finding ID", "state": "Change", "rule": "Rule", "sheet": "Sheet",
        "row": "Row", "status": "Review status", "name": "Tier", "min_score": "Minimum score", "weight": "Weight",
        "component": "Component",
    },
}

#: Block titles, notes and values shown as words.
TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "dashboard.title": "销售维护费看板", "period": "期间", "as_of": "截至", "currency": "币种",
        "generated": "生成于", "kpis": "关键指标", "headline": "审计概览（按严重程度）",
        "shares": "费用类别占比", "trend": "月度趋势（环比、同比）", "budget_category": "预算执行：按费用类别",
        "budget_department": "预算执行：按部门", "vendors": "供应商帕累托（前 {n} 名）",
        "customers_pareto": "客户帕累托（前 {n} 名）", "ratios": "效率指标：按部门",
        "chart.headline": "审计发现数", "chart.shares": "费用类别占比", "chart.trend": "月度费用",
        "chart.budget": "预算进度 vs 实际", "chart.vendors": "供应商费用（前 {n}）",
        "chart.customers": "客户维护成本（前 {n}）", "chart.evaluation": "历次审计：新增 / 已解决 / 持续",
        "kpi.spend": "费用合计", "kpi.claims": "报销笔数", "kpi.customers": "客户数", "kpi.vendors": "供应商数",
        "kpi.cost_per_customer": "单客户成本", "kpi.cost_per_claim": "单笔成本",
        "kpi.cost_per_activity": "单次工单/拜访成本", "kpi.revenue": "维护费收入",
        "kpi.expense_to_revenue": "费用收入比", "kpi.findings": "审计发现", "kpi.amount_at_risk": "涉及金额",
        "kpi.vendor_core": "构成 80% 支出的供应商", "kpi.customer_core": "构成 80% 支出的客户",
        "core_text": "{core} / {keys} 家（{share:.0%}）",
        "other": "其他（{n} 类）", "blank": "（未填）", "total": "合计", "yes": "是", "no": "否",
        "none": "（无）", "all": "全部",
        "customers.title": "客户维护成本与收入", "customers.categories": "客户 × 费用类别（维护成本）",
        "customers.no_revenue": "未找到 收入/Revenue 工作表：收入、毛利、成本收入比为空。"
                                "添加一张 收入 工作表（客户 | 日期 | 金额）后重新运行。",
        "scorecards.title": "绩效评分：销售人员", "scorecards.departments": "绩效评分：部门",
        "scorecards.tiers": "奖惩档位", "scorecards.weights": "得分项权重",
        "scorecards.formula": "得分 = 100 × Σ(权重 × 得分项) ÷ 计分权重合计（只计可衡量的得分项）；每个得分项 0–1，1 = 无需改进。",
        "benchmark.title": "部门对标（越低越好；标杆 = 综合排名第一）", "benchmark.regions": "地区对标",
        "benchmark.reference": "标杆部门：{name}",
        "proposals.title": "下期预算调整建议（未执行）",
        "proposals.note": "建议仅供审批：总额不变，每行调整不超过上下限。确认后用「执行命令」列的 transfer 命令逐条执行。",
        "proposals.none": "本期没有持续低用且可调出的预算行，或没有超支的预算行：无调整建议。",
        "proposals.lines": "预算行与调整上下限",
        "role.donor": "调出", "role.receiver": "调入",
        "evaluation.title": "定期评估：与历次审计对比", "evaluation.trend": "历次运行",
        "evaluation.by": "按规则与部门的变化", "evaluation.changes": "本次与上次相比的发现",
        "evaluation.history": "运行历史（每次运行追加；请勿手工修改）",
        "evaluation.first": "这是第一次记录：下次运行报告时将与本次对比。",
    },
    "en": {
        "dashboard.title": "Sales maintenance expenses: dashboard", "period": "Period", "as_of": "As of",
        "currency": "Currency", "generated": "Generated", "kpis": "Key figures",
        "headline": "Audit headline (by severity)", "shares": "Category shares", "trend": "Monthly trend (MoM, YoY)",
        "budget_category": "Budget vs actual by category", "budget_department": "Budget vs actual by department",
        "vendors": "Vendor Pareto (top {n})", "customers_pareto": "Customer Pareto (top {n})",
        "ratios": "Efficiency by department",
        "chart.headline": "Audit findings", "chart.shares": "Category shares", "chart.trend": "Monthly spend",
        "chart.budget": "Plan to date vs actual", "chart.vendors": "Spend by vendor (top {n})",
        "chart.customers": "Upkeep cost by customer (top {n})",
        "chart.evaluation": "Audit runs: opened / resolved / recurring",
        "kpi.spend": "Total spend", "kpi.claims": "Claims", "kpi.customers": "Customers", "kpi.vendors": "Vendors",
        "kpi.cost_per_customer": "Cost per customer", "kpi.cost_per_claim": "Cost per claim",
        "kpi.cost_per_activity": "Cost per ticket/visit", "kpi.revenue": "Maintenance income",
        "kpi.expense_to_revenue": "Expense / income", "kpi.findings": "Audit findings",
        "kpi.amount_at_risk": "Amount at risk", "kpi.vendor_core": "Vendors making 80% of spend",
        "kpi.customer_core": "Customers making 80% of spend", "core_text": "{core} of {keys} ({share:.0%})",
        "other": "Other ({n} categories)", "blank": "(blank)", "total": "Total", "yes": "Yes", "no": "No",
        "none": "(none)", "all": "All",
        "customers.title": "Customer upkeep cost and income",
        "customers.categories": "Customer × category (upkeep cost)",
        "customers.no_revenue": "No 收入/Revenue sheet found: income, margin and cost/income are empty. "
                                "Add a Revenue sheet (Customer | Date | Amount) and run the report again.",
        "scorecards.title": "Scorecards: salespeople", "scorecards.departments": "Scorecards: departments",
        "scorecards.tiers": "Reward / penalty tiers", "scorecards.weights": "Component weights",
        "scorecards.formula": "Score = 100 × Σ(weight × points) ÷ weights used (only components that could be "
                              "measured); points run 0–1, 1 = nothing to improve.",
        "benchmark.title": "Department benchmark (lower is better; reference = overall rank 1)",
        "benchmark.regions": "Region benchmark", "benchmark.reference": "Reference department: {name}",
        "proposals.title": "Budget reallocation proposal for the next period (not applied)",
        "proposals.note": "For approval only: the total is unchanged and every line stays within its bounds. "
                          "Apply a move with the transfer command in the Command column.",
        "proposals.none": "No line is persistently under-used with budget to give, or none overruns: "
                          "no moves proposed.",
        "proposals.lines": "Budget lines and their bounds",
        "role.donor": "Gives", "role.receiver": "Receives",
        "evaluation.title": "Periodic evaluation: this run against earlier runs", "evaluation.trend": "Runs",
        "evaluation.by": "Changes by rule and department", "evaluation.changes": "Findings against the previous run",
        "evaluation.history": "Run history (appended on every run; do not edit)",
        "evaluation.first": "First recorded run: the next report will compare with this one.",
    },
}

SEVERITY_WORDS = {"zh": {"error": "错误", "warning": "警告", "info": "提示", "total": "合计"},
                  "en": {"error": "Error", "warning": "Warning", "info": "Info", "total": "Total"}}
STATE_WORDS = {"zh": {"opened": "新增", "recurring": "持续", "reopened": "复发", "resolved": "已解决"},
               "en": {"opened": "Opened", "recurring": "Recurring", "reopened": "Reopened", "resolved": "Resolved"}}

#: Columns shown with the money format, as percentages, as plain counts or as points.
MONEY = {"amount", "amount_at_risk", "revenue", "planned_year", "planned_to_date", "actual_to_date", "variance",
         "remaining", "forecast_seasonal", "unbudgeted_actual", "spend", "cost_per_customer", "cost_per_claim",
         "cost_per_activity", "cost", "income", "margin", "cost_recent", "cost_prior", "budget_planned_to_date",
         "budget_actual_to_date", "peer_median_cost_per_customer", "previous_cost_per_customer", "savings",
         "reward", "mom_change", "yoy_change", "gap_cost_per_customer", "gap_cost_per_claim",
         "gap_cost_per_activity", "base", "min_change", "max_change", "change", "proposed"}
PERCENT = {"share", "cum_share", "mom_pct", "yoy_pct", "expense_to_revenue", "pace", "used_pct",
           "cost_to_income", "trend_pct", "budget_pace", "peer_index", "findings_rate", "receipts_rate",
           "savings_pct", "from_pace", "to_pace", "gap_expense_to_revenue", "gap_budget_pace", "share_of_customer"}
SCORE = {"budget_points", "peer_spend_points", "findings_points", "receipts_points", "savings_points", "mean_rank",
         "weighted_findings", "findings_per_100_claims", "gap_findings_per_100_claims"}
TEXT = {"month", "key", "vendor", "group", "category", "customer", "department", "person", "top_category", "tier",
        "line", "unit", "role", "explanation", "command", "from_line", "to_line", "run", "finding_id", "state",
        "rule", "severity", "sheet", "status", "in_core", "cost_exceeds_income", "is_reference", "level", "name",
        "component"}

#: Where the dashboard's charts sit: right of the widest table (9 columns, A–I) and a gap (J).
CHART_COL = 11
CHART_WIDTH = 8
CHART_HEIGHT = 15
TOP_N = 15
MAX_SLICES = 10


# --------------------------------------------------------------------------- the data to show

@dataclass
class ReportData:
    """Everything the report sheets show, computed by the workflow from the core.

    Optional frames are ``None`` when their input is missing (no budget, no revenue, no
    region column); the sheets then leave that block out or say why it is empty.
    """

    lang: str
    currency: str
    period_start: dt.date | None
    period_end: dt.date | None
    as_of: dt.date
    generated: str
    headline: pd.DataFrame
    shares: pd.DataFrame
    trend: pd.DataFrame
    ratios: pd.DataFrame
    ratios_by_department: pd.DataFrame
    vendors: pd.DataFrame
    customers_pareto: pd.DataFrame
    pareto_summary: pd.DataFrame
    customers: pd.DataFrame
    customer_categories: pd.DataFrame
    scorecards_person: pd.DataFrame
    scorecards_department: pd.DataFrame
    tiers: Sequence[Any]
    weights: Mapping[str, float]
    benchmark_department: pd.DataFrame
    history: pd.DataFrame
    evaluation_trend: pd.DataFrame
    evaluation_by: pd.DataFrame
    changes: pd.DataFrame
    has_revenue: bool = False
    budget_by_category: pd.DataFrame | None = None
    budget_by_department: pd.DataFrame | None = None
    benchmark_region: pd.DataFrame | None = None
    proposal_moves: pd.DataFrame | None = None
    proposal_lines: pd.DataFrame | None = None
    budget_book_name: str = "BOOK.xlsx"
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- cell helpers

def _plain(value: Any) -> Any:
    """A value the sheet writer takes: NaN/NaT/NA → empty, numpy scalars → Python, Timestamps → datetime."""
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    return plain_cell(value)


def _column_values(series: pd.Series) -> list[Any]:
    """A column as cell values, vectorised (:func:`_plain` per cell is slow on 10k-finding runs).

    Object dtype turns numpy numbers into Python ones; missing values become ``None``;
    Timestamps stay (they are datetimes to the writer).
    """
    return series.astype(object).where(series.notna(), None).tolist()


class _Words:
    """Labels and texts of one language, with the money style of the ledger's currency."""

    def __init__(self, lang: str, currency: str = "CNY"):
        self.lang = lang if lang in LABELS else "en"
        self.currency = currency
        # ¥ belongs in the cells only when the money is yuan; other currencies go in the header.
        self.money_style = "yuan" if currency.upper() in ("CNY", "RMB") else "money"

    def label(self, column: str) -> str:
        text = LABELS[self.lang].get(column) or LABELS["en"].get(column, column)
        if column in MONEY and self.money_style == "money":
            text = f"{text} ({self.currency})"
        return text

    def text(self, key: str, **kw: Any) -> str:
        template = TEXTS[self.lang].get(key) or TEXTS["en"][key]
        return template.format(**kw) if kw else template

    def style(self, column: str) -> str | None:
        if column in MONEY:
            return self.money_style
        if column in PERCENT:
            return "percent"
        if column in SCORE:
            return "score"
        if column in TEXT:
            return "text"
        return "int"

    def yes_no(self, value: Any) -> Any:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        return self.text("yes") if bool(value) else self.text("no")

    def key(self, value: Any) -> Any:
        """A group key for display: blank → （未填）/(blank)."""
        value = _plain(value)
        return self.text("blank") if value is None or value == "" else value


def _headers_unique(labels: list[str]) -> list[str]:
    """Excel Table headers must be unique (case-insensitive); repeat labels get a number."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        key = label.casefold()
        seen[key] = seen.get(key, 0) + 1
        out.append(label if seen[key] == 1 else f"{label} {seen[key]}")
    return out


class _Layout:
    """Places titles, key/value lines and Tables down a sheet, row by row.

    Every list is an Excel Table (filterable, stripes, a header that stays a header when
    sorted); ``table`` returns the first and last data row so charts and conditional formats
    can point at the cells.
    """

    def __init__(self, name: str, words: _Words):
        self.sheet = NewSheet(name)
        self.words = words
        self.row = 1

    def title(self, text: str, style: str = "title") -> int:
        row = self.row
        self.sheet.blocks.append(Block(row, 1, [[text]], row_style=style))
        self.row += 1
        return row

    def note(self, text: str) -> None:
        self.sheet.blocks.append(Block(self.row, 1, [[text]], styles=["text"]))
        self.row += 1

    def pairs(self, items: Sequence[tuple[str, Any, str | None]]) -> None:
        """Label | value lines (the dashboard's key figures)."""
        for label, value, style in items:
            self.sheet.blocks.append(Block(self.row, 1, [[label, _plain(value)]], styles=["label", style]))
            self.row += 1

    def gap(self, rows: int = 1) -> None:
        self.row += rows

    def table(self, name: str, frame: pd.DataFrame, columns: Sequence[str], *,
              labels: Mapping[str, str] | None = None, styles: Mapping[str, str] | None = None,
              col: int = 1) -> tuple[int, int]:
        """``frame[columns]`` as the Table ``name`` at the current row; returns (first, last) data row."""
        labels = labels or {}
        styles = styles or {}
        header = _headers_unique([labels.get(c) or self.words.label(c) for c in columns])
        rows = [list(r) for r in zip(*(_column_values(frame[c]) for c in columns))]
        if not rows:  # a Table needs a data row; an empty one says "nothing here"
            rows = [[self.words.text("none")] + [None] * (len(columns) - 1)]
        top = self.row
        self.sheet.blocks.append(Block(top, col, [header], row_style="header"))
        self.sheet.blocks.append(Block(top + 1, col, rows,
                                       styles=[styles.get(c) or self.words.style(c) for c in columns]))
        last = top + len(rows)
        ref = f"{col_letter(col)}{top}:{col_letter(col + len(columns) - 1)}{last}"
        self.sheet.tables.append(TableSpec(name, ref, style="TableStyleMedium2"))
        self.row = last + 1
        return top + 1, last

    def highlight(self, first: int, last: int, ncols: int, formula: str, key: str, col: int = 1) -> None:
        """Colour whole Table rows where ``formula`` (written for row ``first``) holds."""
        ref = f"{col_letter(col)}{first}:{col_letter(col + ncols - 1)}{last}"
        self.sheet.cond_formats.append(CondFormat(ref, formula, key))


def _col_of(columns: Sequence[str], column: str, col: int = 1) -> str:
    return col_letter(col + list(columns).index(column))


def _display(frame: pd.DataFrame, words: _Words, keys: Sequence[str] = (), flags: Sequence[str] = ()
             ) -> pd.DataFrame:
    """A copy with blank keys shown as （未填）and boolean flags as 是/否."""
    out = frame.copy()
    for column in keys:
        if column in out:
            out[column] = out[column].astype(object).map(words.key)
    for column in flags:
        if column in out:
            out[column] = out[column].astype(object).map(words.yes_no)
    return out


def _measured(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns that hold at least one number (a ratio nobody could measure is left off)."""
    return [c for c in columns if c in frame and frame[c].notna().any()]


# --------------------------------------------------------------------------- dashboard

def _period_text(data: ReportData, words: _Words) -> str:
    start = data.period_start.isoformat() if data.period_start else "…"
    end = data.period_end.isoformat() if data.period_end else "…"
    sep = "，" if words.lang == "zh" else " · "
    return sep.join([f"{words.text('period')} {start} – {end}", f"{words.text('as_of')} {data.as_of.isoformat()}",
                     f"{words.text('currency')} {data.currency}", f"{words.text('generated')} {data.generated}"])


def _kpis(data: ReportData, words: _Words) -> list[tuple[str, Any, str | None]]:
    """The key figures: spend, counts, unit costs, income, findings and the 80 % cores."""
    overall = data.ratios.iloc[0] if len(data.ratios) else pd.Series(dtype=object)
    total = data.headline.loc[data.headline["severity"] == "total"]
    money = words.money_style
    items: list[tuple[str, Any, str | None]] = [
        (words.text("kpi.spend"), overall.get("spend"), money),
        (words.text("kpi.claims"), overall.get("claims"), "int"),
        (words.text("kpi.customers"), overall.get("customers"), "int"),
        (words.text("kpi.vendors"), _pareto_keys(data, "vendor"), "int"),
        (words.text("kpi.cost_per_customer"), overall.get("cost_per_customer"), money),
        (words.text("kpi.cost_per_claim"), overall.get("cost_per_claim"), money),
    ]
    if pd.notna(overall.get("cost_per_activity", np.nan)):
        items.append((words.text("kpi.cost_per_activity"), overall.get("cost_per_activity"), money))
    if data.has_revenue:
        items.append((words.text("kpi.revenue"), overall.get("revenue"), money))
        items.append((words.text("kpi.expense_to_revenue"), overall.get("expense_to_revenue"), "percent"))
    if len(total):
        items.append((words.text("kpi.findings"), total["findings"].iloc[0], "int"))
        items.append((words.text("kpi.amount_at_risk"), total["amount_at_risk"].iloc[0], money))
    for by, key in (("vendor", "kpi.vendor_core"), ("customer", "kpi.customer_core")):
        line = data.pareto_summary.loc[data.pareto_summary["by"] == by]
        if len(line) and int(line["keys"].iloc[0]):
            row = line.iloc[0]
            items.append((words.text(key), words.text("core_text", core=int(row["core_keys"]), keys=int(row["keys"]),
                                                      share=float(row["core_keys_share"])), "text"))
    return items


def _pareto_keys(data: ReportData, by: str) -> int | None:
    line = data.pareto_summary.loc[data.pareto_summary["by"] == by]
    return int(line["keys"].iloc[0]) if len(line) else None


def _chart(kind: str, title: str, series: list[ChartSeries], anchor_row: int, y_format: str | None = None
           ) -> ChartSpec:
    return ChartSpec(kind, title, series, f"{col_letter(CHART_COL)}{anchor_row}", width=CHART_WIDTH,
                     height=CHART_HEIGHT, y_axis_format=y_format)


def _ref(columns: Sequence[str], column: str, first: int, last: int) -> str:
    letter = _col_of(columns, column)
    return f"{letter}{first}:{letter}{last}"


def _section_end(layout: _Layout, top: int, charted: bool) -> None:
    """Next block starts below both the table and its chart."""
    if charted:
        layout.row = max(layout.row, top + CHART_HEIGHT)
    layout.gap()


def _headline_block(layout: _Layout, data: ReportData, words: _Words) -> None:
    top = layout.title(words.text("headline"), "label")
    frame = data.headline.assign(severity=data.headline["severity"].map(SEVERITY_WORDS[words.lang]))
    columns = ["severity", "findings", "rows", "amount_at_risk", "open", "explained", "confirmed"]
    first, last = layout.table("XE_DashHeadline", frame, columns)
    # The chart leaves the total line out: it would dwarf the severities it adds up.
    rows_end = last - 1 if len(frame) and data.headline["severity"].iloc[-1] == "total" else last
    layout.sheet.charts.append(_chart("col", words.text("chart.headline"), [
        ChartSeries(words.label("findings"), _ref(columns, "findings", first, rows_end),
                    _ref(columns, "severity", first, rows_end))], top))
    layout.highlight(first, last, len(columns), f'$A{first}="{SEVERITY_WORDS[words.lang]["error"]}"', "error")
    _section_end(layout, top, True)


def _top_categories(shares: pd.DataFrame, words: _Words) -> pd.DataFrame:
    """At most MAX_SLICES lines: the largest categories and one 其他/Other line for the rest.

    A pie of a hundred slices (a council's spending codes) shows nothing; the full list is one
    filter away in the ledger.
    """
    frame = _display(shares, words, keys=["category"])
    if len(frame) <= MAX_SLICES:
        return frame
    head, tail = frame.iloc[: MAX_SLICES - 1], frame.iloc[MAX_SLICES - 1:]
    other = pd.DataFrame([{"category": words.text("other", n=len(tail)), "amount": round(tail["amount"].sum(), 2),
                           "share": round(tail["share"].sum(), 4), "count": int(tail["count"].sum())}])
    return pd.concat([head, other], ignore_index=True)


def _shares_block(layout: _Layout, data: ReportData, words: _Words) -> None:
    top = layout.title(words.text("shares"), "label")
    columns = ["category", "amount", "share", "count"]
    frame = _top_categories(data.shares, words)
    first, last = layout.table("XE_DashShares", frame, columns)
    if len(frame):
        layout.sheet.charts.append(_chart("pie", words.text("chart.shares"), [
            ChartSeries(words.label("amount"), _ref(columns, "amount", first, last),
                        _ref(columns, "category", first, last))], top))
    _section_end(layout, top, bool(len(frame)))


def _trend_block(layout: _Layout, data: ReportData, words: _Words) -> None:
    top = layout.title(words.text("trend"), "label")
    columns = ["month", "amount", "count", "mom_change", "mom_pct", "yoy_change", "yoy_pct"]
    if data.has_revenue:
        columns += ["revenue", "expense_to_revenue"]
    # Months as text (2025-03): the chart's axis and the filter both read better than dates.
    frame = data.trend.assign(month=data.trend["month"].dt.strftime("%Y-%m"))
    first, last = layout.table("XE_DashTrend", frame, columns)
    if len(frame):
        series = [ChartSeries(words.label("amount"), _ref(columns, "amount", first, last),
                              _ref(columns, "month", first, last))]
        if data.has_revenue:
            series.append(ChartSeries(words.label("revenue"), _ref(columns, "revenue", first, last),
                                      _ref(columns, "month", first, last)))
        layout.sheet.charts.append(_chart("line", words.text("chart.trend"), series, top, "#,##0"))
    _section_end(layout, top, bool(len(frame)))


_BUDGET_COLUMNS = ["group", "planned_year", "planned_to_date", "actual_to_date", "variance", "pace", "used_pct",
                   "remaining", "forecast_seasonal"]


def _budget_blocks(layout: _Layout, data: ReportData, words: _Words) -> None:
    if data.budget_by_category is None:
        return
    for key, frame, table, charted in (
            ("budget_category", data.budget_by_category, "XE_DashBudgetCategory", True),
            ("budget_department", data.budget_by_department, "XE_DashBudgetDepartment", False)):
        if frame is None:
            continue
        top = layout.title(words.text(key), "label")
        labels = {"group": words.label("category" if key == "budget_category" else "department")}
        first, last = layout.table(table, _display(frame, words, keys=["group"]), _BUDGET_COLUMNS, labels=labels)
        pace = _col_of(_BUDGET_COLUMNS, "pace")
        layout.highlight(first, last, len(_BUDGET_COLUMNS), f"${pace}{first}>1", "error")
        if charted and len(frame):
            layout.sheet.charts.append(_chart("col", words.text("chart.budget"), [
                ChartSeries(words.label("planned_to_date"), _ref(_BUDGET_COLUMNS, "planned_to_date", first, last),
                            _ref(_BUDGET_COLUMNS, "group", first, last)),
                ChartSeries(words.label("actual_to_date"), _ref(_BUDGET_COLUMNS, "actual_to_date", first, last),
                            _ref(_BUDGET_COLUMNS, "group", first, last))], top, "#,##0"))
        _section_end(layout, top, charted and bool(len(frame)))


def _pareto_block(layout: _Layout, data: ReportData, words: _Words, frame: pd.DataFrame, *, by: str) -> None:
    title_key, chart_key, table = (("vendors", "chart.vendors", "XE_DashVendors") if by == "vendor"
                                   else ("customers_pareto", "chart.customers", "XE_DashCustomers"))
    top = layout.title(words.text(title_key, n=TOP_N), "label")
    columns = ["key", "rank", "amount", "count", "share", "cum_share", "in_core"]
    shown = _display(frame.head(TOP_N), words, flags=["in_core"])
    first, last = layout.table(table, shown, columns, labels={"key": words.label(by)})
    in_core = _col_of(columns, "in_core")
    layout.highlight(first, last, len(columns), f'${in_core}{first}="{words.text("yes")}"', "good")
    if len(shown):
        layout.sheet.charts.append(_chart("bar", words.text(chart_key, n=TOP_N), [
            ChartSeries(words.label("amount"), _ref(columns, "amount", first, last),
                        _ref(columns, "key", first, last))], top, "#,##0"))
    _section_end(layout, top, bool(len(shown)))


def _ratios_block(layout: _Layout, data: ReportData, words: _Words) -> None:
    layout.title(words.text("ratios"), "label")
    columns = ["group", "spend", "claims", "customers", "cost_per_customer", "cost_per_claim"]
    columns += _measured(data.ratios_by_department, ["cost_per_activity"])
    if data.has_revenue:
        columns += _measured(data.ratios_by_department, ["revenue", "expense_to_revenue"])
    layout.table("XE_DashRatios", _display(data.ratios_by_department, words, keys=["group"]), columns,
                 labels={"group": words.label("department")})
    layout.gap()


def dashboard_sheet(data: ReportData) -> NewSheet:
    """看板/Dashboard: key figures, audit headline, shares, trend, budget, Pareto, ratios, charts.

    Each block is a Table on the left (columns A–I) with its chart to the right (from column
    K), so the chart is next to the numbers it draws; the sheet prints one page wide.
    """
    words = _Words(data.lang, data.currency)
    layout = _Layout(sheet_name("dashboard", data.lang), words)
    layout.title(words.text("dashboard.title"))
    layout.note(_period_text(data, words))
    layout.gap()
    layout.title(words.text("kpis"), "label")
    layout.pairs(_kpis(data, words))
    layout.gap()
    _headline_block(layout, data, words)
    _shares_block(layout, data, words)
    _trend_block(layout, data, words)
    _budget_blocks(layout, data, words)
    _pareto_block(layout, data, words, data.vendors, by="vendor")
    _pareto_block(layout, data, words, data.customers_pareto, by="customer")
    _ratios_block(layout, data, words)
    sheet = layout.sheet
    sheet.freeze = "A3"
    sheet.col_widths = {1: 30.0, **{c: 14.0 for c in range(2, 10)}, 10: 3.0,
                        **{c: 10.0 for c in range(CHART_COL, CHART_COL + CHART_WIDTH)}}
    sheet.tab_color = "1F4E78"
    sheet.fit_width = True
    sheet.landscape = True
    return sheet


# --------------------------------------------------------------------------- customers

_CUSTOMER_COLUMNS = ["customer", "cost", "claims", "income", "margin", "cost_to_income", "cost_exceeds_income",
                     "cost_recent", "cost_prior", "trend_pct", "top_category"]


def _category_pivot(long: pd.DataFrame, customers: pd.Series, words: _Words) -> tuple[pd.DataFrame, list[str]]:
    """Customers × categories (cost), customers in the customer view's order, largest categories first."""
    frame = _display(long, words, keys=["customer", "category"])
    order = frame.groupby("category", sort=False)["amount"].sum().sort_values(ascending=False, kind="stable")
    pivot = frame.pivot_table(index="customer", columns="category", values="amount", aggfunc="sum", sort=False)
    pivot = pivot.reindex(index=[words.key(c) for c in customers], columns=list(order.index))
    pivot = pivot.reset_index()
    return pivot, [str(c) for c in order.index]


def customers_sheet(data: ReportData) -> NewSheet:
    """客户/Customers: cost, income, margin, cost-to-income, trend and the upkeep flag per customer."""
    words = _Words(data.lang, data.currency)
    layout = _Layout(sheet_name("customers", data.lang), words)
    layout.title(words.text("customers.title"))
    if not data.has_revenue:
        layout.note(words.text("customers.no_revenue"))
    header_row = layout.row
    shown = _display(data.customers, words, keys=["customer"], flags=["cost_exceeds_income"])
    first, last = layout.table("XE_Customers", shown, _CUSTOMER_COLUMNS)
    flag = _col_of(_CUSTOMER_COLUMNS, "cost_exceeds_income")
    layout.highlight(first, last, len(_CUSTOMER_COLUMNS), f'${flag}{first}="{words.text("yes")}"', "error")
    layout.gap()
    layout.title(words.text("customers.categories"), "label")
    pivot, categories = _category_pivot(data.customer_categories, data.customers["customer"], words)
    if categories:
        renamed = pivot.rename(columns={c: f"c{i}" for i, c in enumerate(categories)})
        keys = [f"c{i}" for i in range(len(categories))]
        labels = {"customer": words.label("customer"), **{k: str(c) for k, c in zip(keys, categories)}}
        # The pivot's category columns are money, whatever their (user-given) names.
        layout.table("XE_CustomerCategories", renamed, ["customer", *keys], labels=labels,
                     styles={k: words.money_style for k in keys})
    sheet = layout.sheet
    sheet.freeze = f"B{header_row + 1}"
    sheet.col_widths = {1: 28.0, **{c: 14.0 for c in range(2, 2 + max(len(_CUSTOMER_COLUMNS), len(categories) + 1))}}
    return sheet


# --------------------------------------------------------------------------- scorecards

_SCORE_COLUMNS_PERSON = ["rank", "group", "department", "score", "tier", "reward", "weights_used",
                         "budget_points", "peer_spend_points", "findings_points", "receipts_points", "savings_points",
                         "spend", "claims", "customers", "cost_per_customer",
                         "budget_planned_to_date", "budget_actual_to_date", "budget_pace",
                         "peer_group_size", "peer_median_cost_per_customer", "peer_index",
                         "findings_error", "findings_warning", "findings_info",
                         "findings_confirmed", "findings_open", "findings_explained",
                         "weighted_findings", "findings_rate", "missing_receipts", "receipts_rate",
                         "previous_cost_per_customer", "savings", "savings_pct"]


def _tier_highlights(layout: _Layout, columns: Sequence[str], first: int, last: int, tiers: Sequence[Any]) -> None:
    """Top tier green, a tier with a penalty (negative amount) red."""
    if not tiers:
        return
    tier = _col_of(columns, "tier")
    layout.highlight(first, last, len(columns), f'${tier}{first}="{tiers[0].name}"', "good")
    for t in tiers:
        if t.amount < 0:
            layout.highlight(first, last, len(columns), f'${tier}{first}="{t.name}"', "error")


def scorecards_sheet(data: ReportData) -> NewSheet:
    """绩效/Scorecards: per salesperson and per department, every component of the score visible."""
    words = _Words(data.lang, data.currency)
    layout = _Layout(sheet_name("scorecards", data.lang), words)
    layout.title(words.text("scorecards.title"))
    layout.note(words.text("scorecards.formula"))
    header_row = layout.row
    person_labels = {"group": words.label("person")}
    first, last = layout.table("XE_ScorePeople", _display(data.scorecards_person, words, keys=["department"]),
                               _SCORE_COLUMNS_PERSON, labels=person_labels)
    _tier_highlights(layout, _SCORE_COLUMNS_PERSON, first, last, data.tiers)
    layout.gap()
    layout.title(words.text("scorecards.departments"), "label")
    dept_columns = [c for c in _SCORE_COLUMNS_PERSON if c not in ("department", "peer_group_size")]
    first, last = layout.table("XE_ScoreDepartments", data.scorecards_department, dept_columns,
                               labels={"group": words.label("department")})
    _tier_highlights(layout, dept_columns, first, last, data.tiers)
    layout.gap()
    layout.title(words.text("scorecards.tiers"), "label")
    tiers = pd.DataFrame([{"name": t.name, "min_score": t.min_score, "reward": t.amount} for t in data.tiers])
    layout.table("XE_ScoreTiers", tiers, ["name", "min_score", "reward"], labels={"min_score": words.label("min_score")})
    layout.gap()
    layout.title(words.text("scorecards.weights"), "label")
    weights = pd.DataFrame([{"component": words.label(f"{c}_points"), "weight": float(w)}
                            for c, w in data.weights.items()])
    layout.table("XE_ScoreWeights", weights, ["component", "weight"])
    sheet = layout.sheet
    sheet.freeze = f"C{header_row + 1}"
    sheet.col_widths = {1: 8.0, 2: 16.0, 3: 16.0, **{c: 12.0 for c in range(4, len(_SCORE_COLUMNS_PERSON) + 1)}}
    return sheet


# --------------------------------------------------------------------------- benchmark

def _benchmark_columns(frame: pd.DataFrame) -> list[str]:
    """Metrics that could be measured, then their ranks and gaps: nothing shown that is all blank."""
    metrics = _measured(frame, ["cost_per_customer", "cost_per_claim", "cost_per_activity", "expense_to_revenue",
                                "findings_per_100_claims", "budget_pace"])
    return (["overall_rank", "group", "is_reference", "spend", "claims", "customers", *metrics, "mean_rank",
             *[f"rank_{m}" for m in metrics], *[f"gap_{m}" for m in metrics]])


def _benchmark_table(layout: _Layout, frame: pd.DataFrame, table: str, group_label: str, words: _Words) -> None:
    columns = _benchmark_columns(frame)
    shown = _display(frame, words, keys=["group"], flags=["is_reference"])
    first, last = layout.table(table, shown, columns, labels={"group": group_label})
    ref = _col_of(columns, "is_reference")
    layout.highlight(first, last, len(columns), f'${ref}{first}="{words.text("yes")}"', "good")


def benchmark_sheet(data: ReportData) -> NewSheet:
    """对标/Benchmark: departments (and regions) ranked on the same ratios, gaps to the best."""
    words = _Words(data.lang, data.currency)
    layout = _Layout(sheet_name("benchmark", data.lang), words)
    layout.title(words.text("benchmark.title"))
    reference = data.benchmark_department.loc[data.benchmark_department["is_reference"].astype(bool), "group"]
    layout.note(words.text("benchmark.reference", name=words.key(reference.iloc[0]) if len(reference)
                           else words.text("none")))
    header_row = layout.row
    _benchmark_table(layout, data.benchmark_department, "XE_BenchDepartments", words.label("department"), words)
    if data.benchmark_region is not None and len(data.benchmark_region):
        layout.gap()
        layout.title(words.text("benchmark.regions"), "label")
        _benchmark_table(layout, data.benchmark_region, "XE_BenchRegions",
                         "地区" if words.lang == "zh" else "Region", words)
    sheet = layout.sheet
    sheet.freeze = f"C{header_row + 1}"
    sheet.col_widths = {1: 8.0, 2: 18.0, **{c: 13.0 for c in range(3, 30)}}
    return sheet


# --------------------------------------------------------------------------- proposals

def _transfer_command(book: str, move: pd.Series, lang: str) -> str:
    """The command that applies one move; the user runs it after approval (nothing is applied here)."""
    reason = "优化建议" if lang == "zh" else "reallocation proposal"
    return (f"xl-expense transfer \"{book}\" --from \"{move['from_line']}\" --to \"{move['to_line']}\" "
            f"--amount {move['amount']:.2f} --reason \"{reason}\" --in-place")


def proposals_sheet(data: ReportData) -> NewSheet:
    """优化建议/Proposals: the LP's moves, each explained, and every line's bounds (nothing applied)."""
    words = _Words(data.lang, data.currency)
    layout = _Layout(sheet_name("proposals", data.lang), words)
    layout.title(words.text("proposals.title"))
    layout.note(words.text("proposals.note"))
    moves = data.proposal_moves if data.proposal_moves is not None else pd.DataFrame()
    header_row = layout.row
    if moves.empty:
        layout.note(words.text("proposals.none"))
        header_row = layout.row
    columns = ["from_line", "to_line", "amount", "from_pace", "to_pace", "explanation", "command"]
    shown = moves.copy()
    if not shown.empty:
        shown["command"] = [_transfer_command(data.budget_book_name, m, words.lang) for _, m in shown.iterrows()]
    else:
        shown = pd.DataFrame(columns=columns)
    layout.table("XE_ProposalMoves", shown, columns)
    layout.gap()
    if data.proposal_lines is not None:
        layout.title(words.text("proposals.lines"), "label")
        lines = data.proposal_lines.assign(role=data.proposal_lines["role"].map(
            lambda r: words.text(f"role.{r}") if isinstance(r, str) else None))
        columns = ["line", "category", "unit", "role", "base", "planned_year", "planned_to_date", "actual_to_date",
                   "pace", "closed_months", "months_under", "forecast_seasonal", "min_change", "max_change",
                   "change", "proposed"]
        first, last = layout.table("XE_ProposalLines", lines, columns)
        change = _col_of(columns, "change")
        layout.highlight(first, last, len(columns), f"${change}{first}<0", "warning")
        layout.highlight(first, last, len(columns), f"${change}{first}>0", "good")
    sheet = layout.sheet
    sheet.freeze = f"A{header_row + 1}"
    sheet.col_widths = {1: 22.0, 2: 22.0, 3: 14.0, 4: 12.0, 5: 14.0, 6: 70.0, 7: 70.0,
                        **{c: 13.0 for c in range(8, 17)}}
    return sheet


# --------------------------------------------------------------------------- evaluation

def evaluation_sheet(data: ReportData) -> NewSheet:
    """评估/Evaluation: runs compared (opened, resolved, recurring), by rule and department, a trend
    chart, and the run history Table the next report reads back."""
    words = _Words(data.lang, data.currency)
    layout = _Layout(sheet_name("evaluation", data.lang), words)
    layout.title(words.text("evaluation.title"))
    if len(data.evaluation_trend) <= 1:
        layout.note(words.text("evaluation.first"))
    top = layout.title(words.text("evaluation.trend"), "label")
    columns = ["run", "findings", "opened", "recurring", "reopened", "resolved", "error", "warning", "info",
               "amount_at_risk"]
    first, last = layout.table("XE_EvalRuns", data.evaluation_trend, columns)
    categories = _ref(columns, "run", first, last)
    layout.sheet.charts.append(ChartSpec("col", words.text("chart.evaluation"), [
        ChartSeries(words.label(s), _ref(columns, s, first, last), categories)
        for s in ("opened", "resolved", "recurring")], f"{col_letter(12)}{top}", width=CHART_WIDTH,
        height=CHART_HEIGHT))
    layout.row = max(layout.row, top + CHART_HEIGHT)
    layout.gap()
    layout.title(words.text("evaluation.by"), "label")
    by_columns = ["rule", "department", "current", "previous", "opened", "recurring", "reopened", "resolved",
                  "net_change"]
    first, last = layout.table("XE_EvalBy", _display(data.evaluation_by, words, keys=["department"]), by_columns)
    net = _col_of(by_columns, "net_change")
    layout.highlight(first, last, len(by_columns), f"${net}{first}>0", "error")
    layout.highlight(first, last, len(by_columns), f"${net}{first}<0", "good")
    layout.gap()
    layout.title(words.text("evaluation.changes"), "label")
    change_columns = ["finding_id", "state", "rule", "severity", "department", "person", "amount"]
    changes = data.changes.assign(state=data.changes["state"].map(STATE_WORDS[words.lang]),
                                  severity=data.changes["severity"].map(SEVERITY_WORDS[words.lang]))
    first, last = layout.table("XE_EvalChanges", _display(changes, words, keys=["department", "person"]),
                               change_columns)
    state = _col_of(change_columns, "state")
    for key, colour in (("opened", "warning"), ("reopened", "error"), ("resolved", "good")):
        layout.highlight(first, last, len(change_columns), f'${state}{first}="{STATE_WORDS[words.lang][key]}"', colour)
    layout.gap()
    layout.title(words.text("evaluation.history"), "label")
    # The history keeps language-free keys (rule ids, severities) so a run in the other
    # language reads it back unchanged.
    layout.table(HISTORY_TABLE, data.history, list(HISTORY_COLUMNS))
    sheet = layout.sheet
    sheet.freeze = "A2"
    sheet.col_widths = {1: 26.0, 2: 16.0, **{c: 12.0 for c in range(3, 11)}}
    return sheet


def build_report_sheets(data: ReportData) -> list[NewSheet]:
    """The report's sheets in tab order; 优化建议/Proposals only when the workbook has a budget."""
    sheets = [dashboard_sheet(data), customers_sheet(data), scorecards_sheet(data), benchmark_sheet(data)]
    if data.proposal_lines is not None:
        sheets.append(proposals_sheet(data))
    sheets.append(evaluation_sheet(data))
    return sheets


# --------------------------------------------------------------------------- reading back

def _open(path: str | PathLike[str], tables: bool = False):
    from python_calamine import CalamineWorkbook

    try:
        return CalamineWorkbook.from_path(str(path), load_tables=tables)
    except Exception as exc:  # calamine raises its own error types for corrupt files
        raise UnreadableWorkbook(f"cannot read the workbook: {exc}", "open it in Excel and save it again",
                                 path=str(path)) from exc


def read_history(path: str | PathLike[str]) -> pd.DataFrame:
    """The run history an earlier report wrote (Table ``XE_EvalHistory``), or an empty frame.

    Columns are taken by position (:data:`HISTORY_COLUMNS`), so a header translated by a
    re-run in the other language reads the same.
    """
    if str(path).lower().endswith(".csv"):
        return empty_history()
    book = _open(path, tables=True)
    try:
        if HISTORY_TABLE not in (book.table_names or []):
            return empty_history()
        rows = book.get_table_by_name(HISTORY_TABLE).to_python()
    finally:
        book.close()
    rows = [list(r[: len(HISTORY_COLUMNS)]) + [None] * (len(HISTORY_COLUMNS) - len(r)) for r in rows]
    frame = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS), dtype=object).replace({"": None})
    # A run without findings is recorded as one line without an id: it stays a run.
    frame = frame.loc[frame["run"].notna()]
    frame["amount"] = pd.to_numeric(frame["amount"], errors="coerce").astype("float64")
    frame["row"] = pd.to_numeric(frame["row"], errors="coerce").astype("Int64")
    for column in ("run", "finding_id"):
        frame[column] = _objects([_text_key(v) for v in frame[column]], frame.index)
    return frame.reset_index(drop=True)


def _objects(values: list[Any], index: pd.Index) -> pd.Series:
    """Text with ``None`` for blanks (pandas' string dtype would turn ``None`` into NaN)."""
    return pd.Series(values, index=index, dtype=object)


def _text_key(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    return str(value).strip()


def empty_history() -> pd.DataFrame:
    """A history frame without runs."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in HISTORY_COLUMNS})


#: Revenue sheet headers: canonical column → what people write.
REVENUE_ALIASES = {
    "customer": ("客户", "客户名称", "客户单位", "customer", "client", "account", "customer name", "account name"),
    "date": ("日期", "月份", "期间", "收款日期", "开票日期", "date", "month", "period", "invoice date"),
    "amount": ("金额", "收入", "维护费收入", "收入金额", "维护费", "amount", "revenue", "income", "fee",
               "maintenance fee", "maintenance income"),
    "department": ("部门", "department", "dept"),
    "region": ("地区", "区域", "region", "area"),
    "person": ("销售", "销售员", "业务员", "报销人", "salesperson", "sales rep", "person", "owner"),
}
_REVENUE_LOOKUP = {normalize_header(alias): key for key, aliases in REVENUE_ALIASES.items() for alias in aliases}
_MONTH_TEXT = re.compile(r"^\s*(\d{4})\s*(?:[-/.年])\s*(\d{1,2})\s*月?\s*$")


def _revenue_header(rows: list[list[Any]]) -> tuple[int, dict[str, int]] | None:
    """The first row (within 30) naming a customer and an amount column, and its columns."""
    for index, row in enumerate(rows[:30]):
        found: dict[str, int] = {}
        for pos, cell in enumerate(row):
            key = _REVENUE_LOOKUP.get(normalize_header(cell))
            if key and key not in found:
                found[key] = pos
        if "customer" in found and "amount" in found:
            return index, found
    return None


def _revenue_dates(values: pd.Series) -> pd.Series:
    """Dates of income lines; a month written as ``2025-03`` or ``2025年3月`` is its first day."""
    from xl_expense.core.normalize import parse_dates

    dates, _ = parse_dates(values)
    missing = dates.isna() & values.notna()
    if missing.any():
        def month(text: Any) -> Any:
            m = _MONTH_TEXT.match(str(text))
            return pd.Timestamp(int(m.group(1)), int(m.group(2)), 1) if m and 1 <= int(m.group(2)) <= 12 else pd.NaT
        dates = dates.where(~missing, values[missing].map(month).astype("datetime64[ns]"))
    return dates.astype("datetime64[ns]")


def read_revenue_sheet(path: str | PathLike[str], sheet: str | None = None) -> pd.DataFrame | None:
    """Maintenance-fee income from the workbook's ``收入/Revenue`` sheet (or ``sheet``), or None.

    Returns the revenue frame of :mod:`xl_expense.core.analysis.revenue` (customer, date,
    amount and any of department/region/person the sheet has); None when there is no such
    sheet or it has no customer and amount columns. Amounts like ``¥12,000`` are read as
    in the ledger; blank lines are skipped.
    """
    from xl_expense.core.normalize import parse_amounts

    if str(path).lower().endswith(".csv"):
        return None
    book = _open(path)
    try:
        wanted = {normalize_header(n) for n in ((sheet,) if sheet else REVENUE_SHEETS)}
        name = next((n for n in book.sheet_names if normalize_header(n) in wanted), None)
        if name is None:
            return None
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
    finally:
        book.close()
    found = _revenue_header(rows)
    if found is None:
        return None
    index, columns = found
    body = [r for r in rows[index + 1:] if any(v not in (None, "") for v in r)]
    frame = pd.DataFrame({key: pd.Series([r[pos] if pos < len(r) else None for r in body], dtype=object)
                          .replace({"": None}) for key, pos in columns.items()})
    frame["amount"], _ = parse_amounts(frame["amount"])
    frame["date"] = _revenue_dates(frame["date"]) if "date" in frame else pd.Series(pd.NaT, index=frame.index)
    for key in ("customer", "department", "region", "person"):
        if key in frame:
            frame[key] = _objects([None if v is None or (isinstance(v, float) and np.isnan(v))
                                   else (str(v).strip() or None) for v in frame[key]], frame.index)
    return frame.loc[frame["customer"].notna() | frame["amount"].notna()].reset_index(drop=True)


#: Settings-sheet keys of the reward/penalty table: ``奖惩:优秀 | 85, 2000`` (minimum score, amount).
TIER_PREFIXES = ("奖惩:", "奖惩：", "档位:", "档位：", "tier:", "reward tier:")
_NUMBERS = re.compile(r"-?\d+(?:\.\d+)?")


def tiers_from_settings_rows(rows: Sequence[Sequence[Any]] | None) -> dict[str, tuple[float, float]]:
    """Reward tiers from Settings-sheet rows, ``{name: (min_score, amount)}`` (empty when none).

    The value cell holds ``85, 2000`` (minimum score, then reward; negative = penalty), or the
    score alone (reward 0); a number in the third column is taken as the amount when the value
    cell is a bare number. Validation (scores 0–100, no duplicates) is the core's.
    """
    tiers: dict[str, tuple[float, float]] = {}
    for row in rows or []:
        if not row or row[0] in (None, ""):
            continue
        key = str(row[0]).strip()
        folded = normalize_header(key)
        prefix = next((p for p in TIER_PREFIXES if folded.startswith(normalize_header(p))), None)
        if prefix is None:
            continue
        name = re.split(r"[:：]", key, maxsplit=1)[1].strip()
        value = row[1] if len(row) > 1 else None
        third = row[2] if len(row) > 2 else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            amount = float(third) if isinstance(third, (int, float)) and not isinstance(third, bool) else 0.0
            tiers[name] = (float(value), amount)
            continue
        numbers = [float(n) for n in _NUMBERS.findall(str(value or "").replace(",", " ").replace("，", " "))]
        tiers[name] = (numbers[0], numbers[1] if len(numbers) > 1 else 0.0) if numbers else (float("nan"), 0.0)
    return tiers
