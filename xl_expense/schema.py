"""The canonical ledger: column names, their meaning and the headers users write for them.

Every reader produces this shape and every rule consumes it, so that a ledger exported
from a CRM and one typed by a sales assistant look the same to the audit.

Canonical ledger DataFrame (one row per expense):

========== ============== ===========================================================
column     dtype          meaning
========== ============== ===========================================================
date       datetime64[ns] the day the money was spent (NaT when unreadable/missing)
amount     float64        amount in the ledger currency; refunds negative
category   object (str)   费用类别, as written by the user (may be missing)
description object        摘要/用途
person     object         报销人/经办人/salesperson
department object         部门
customer   object         客户
vendor     object         供应商/商户
receipt    object         发票号/票据号
project    object         项目
region     object         地区
card       object         card number / payment account (for split purchases)
sheet      object         source sheet name
row        int64          source row number as Excel shows it (1-based)
========== ============== ===========================================================

Missing text is ``None``/NaN, never the empty string.
"""

from __future__ import annotations

import re
import unicodedata

TEXT_COLUMNS = (
    "category",
    "description",
    "person",
    "department",
    "customer",
    "vendor",
    "receipt",
    "project",
    "region",
    "card",
)
LEDGER_COLUMNS = ("date", "amount") + TEXT_COLUMNS
SOURCE_COLUMNS = ("sheet", "row")
ALL_COLUMNS = LEDGER_COLUMNS + SOURCE_COLUMNS

#: Headers users actually write, by canonical column. Compared after :func:`normalize_header`.
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "date": ("日期", "交易日期", "交易时间", "交易创建时间", "发生日期", "报销日期", "费用日期", "消费日期", "记账日期", "单据日期",
             "date", "transaction date", "trans date", "expense date", "posting date", "spend date"),
    "amount": ("金额", "金额（元）", "金额(元)", "报销金额", "费用金额", "发生金额", "支出金额", "实报金额",
               "amount", "amount (cny)", "total", "net amount", "transaction amount", "original gross amt",
               "expense amount", "cost"),
    "category": ("费用类别", "类别", "费用类型", "费用科目", "科目", "类型", "收支科目",
                 "category", "expense type", "expense category", "gl account", "type"),
    "description": ("摘要", "说明", "用途", "事由", "备注", "费用说明", "报销事由", "内容",
                    "description", "purpose", "memo", "details", "narrative", "notes"),
    "person": ("报销人", "经办人", "申请人", "姓名", "业务员", "销售员", "销售", "员工",
               "salesperson", "employee", "person", "claimant", "cardholder", "sales rep", "name"),
    "department": ("部门", "所属部门", "费用部门", "department", "dept", "directorate", "division"),
    "customer": ("客户", "客户名称", "客户单位", "customer", "client", "account", "customer name"),
    "vendor": ("供应商", "商户", "收款方", "收款单位", "支出对象", "商家", "交易对方",
               "vendor", "merchant", "supplier", "payee", "merchant name", "supplier name"),
    "receipt": ("发票号", "票据号", "发票号码", "单据号", "凭证号", "receipt", "receipt no", "receipt number",
                "invoice", "invoice no", "invoice number", "voucher"),
    "project": ("项目", "项目名称", "销售阶段", "project", "project code", "stage"),
    "region": ("地区", "区域", "大区", "省份", "region", "area", "territory"),
    "card": ("卡号", "付款账户", "支付账户", "card", "card number", "card no", "account number"),
}

#: Words that mark a totals row (合计行): such rows are not expenses.
TOTAL_MARKERS = ("合计", "小计", "总计", "汇总", "总额", "共计", "total", "subtotal", "grand total", "sum")

_SPACES = re.compile(r"[\s\u3000]+")


def normalize_header(text: object) -> str:
    """Fold a header cell for matching: full-width → half-width, case, spaces, trailing colons.

    ``'金额（元）'`` and ``'金额(元)'`` then compare equal, as do ``'Amount '`` and ``'amount'``.
    """
    if text is None:
        return ""
    folded = unicodedata.normalize("NFKC", str(text)).strip().lower()
    folded = _SPACES.sub(" ", folded).rstrip(":：*")
    return folded


#: Lookup from folded header to canonical column, built once.
ALIAS_LOOKUP: dict[str, str] = {
    normalize_header(alias): canonical
    for canonical, aliases in HEADER_ALIASES.items()
    for alias in aliases
}

#: Position of each alias in its list: when two columns match, the one listed first wins.
ALIAS_RANK: dict[str, int] = {
    normalize_header(alias): rank
    for aliases in HEADER_ALIASES.values()
    for rank, alias in enumerate(aliases)
}

#: Columns of the findings DataFrame produced by ``xl_expense.core.audit.run_audit``.
FINDING_COLUMNS = (
    "finding_id",  # stable across runs: the same issue on the same row keeps its id
    "rule",        # registry id, e.g. "duplicate" (a contract: appears in output)
    "severity",    # "error" | "warning" | "info"
    "sheet",       # source sheet (None for population-level findings)
    "row",         # Excel row number in the source sheet (<NA> for group findings)
    "date",
    "person",
    "department",
    "vendor",
    "category",
    "amount",      # amount of the row, or amount at risk of the group
    "score",       # rule-specific strength in [0, 1] (1 = strongest)
    "message",     # one sentence, in the run's language, says why
)

SEVERITIES = ("error", "warning", "info")
