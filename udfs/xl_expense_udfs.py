"""Excel worksheet functions (UDFs) for xl-expense: ``=XE_CATEGORY(…)``, ``=XE_CLASSIFY(…)`` …

Thin ``@xw.func`` wrappers over :mod:`xl_expense.core`: each one turns the cells Excel hands
over into a canonical ledger, calls one core function, and turns the answer back into cells.
No business rule lives here; what a function decides is decided in core, so a formula, the
CLI and the ribbon give the same answer.

Setup (classic xlwings add-in, no paid licence): put this folder on the add-in's PYTHONPATH
and ``xl_expense_udfs`` in "UDF Modules", then click "Import Functions".

Conventions every function keeps:

* **Table arguments** are a range *including its header row*, headers in Chinese or English
  (日期/date, 金额/amount, 摘要/description …, the aliases of :mod:`xl_expense.schema`).
  Amounts like ``¥1,234.50`` and dates like ``2025年3月5日`` or Excel serials are read by
  :mod:`xl_expense.core.normalize`, as the CLI reads a workbook.
* **Per-row results spill one line per line of the range, header line included**, so a
  formula typed in the header row beside the table lines up with it row by row. Blank and
  合计/total rows get an empty cell; a row whose amount or date cannot be read gets the reason.
* **Language**: headers with Chinese characters give Chinese labels and messages, else English.
* **Errors**: a bad argument gives a short text in the cell, ``#XE! <what> — <how to fix>``,
  never a traceback (:func:`cell_errors`).
* **Models are cached** in the Excel Python process, keyed by a SHA-256 of the labelled rows
  (:func:`xl_expense.core.classify_ledger.training_fingerprint`): recalculating a sheet does
  not retrain until a label or a labelled row changes.

``XE_CATEGORY`` without training data uses keyword rules built from the default taxonomy:
every category name, English label and synonym (差旅/出差/travel → 差旅费, 快递/courier →
物流费 …) is a keyword searched in the description and vendor; the longest keyword found
wins. Words that name a category only indirectly (机票, 酒店) are not in the taxonomy and give
an empty cell: pass a labelled table, or your own 分类规则 range, for those.

Excel shows at most 255 characters of a function's or argument's description in the
function wizard (xlwings cuts the rest), so the docstrings of the ``XE_`` functions are kept
within that.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import inspect
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from itertools import zip_longest

import numpy as np
import pandas as pd
import xlwings as xw

from xl_expense.core.audit import RULES, prepare_ledger, run_audit
from xl_expense.core.audit.anomaly import MIN_ROWS, anomaly_scores
from xl_expense.core.audit.benford import CONFORMITY_LABELS, benford_analysis
from xl_expense.core.budget_monitor import ControlPolicy, monitor_budget
from xl_expense.core.classify_ledger import (
    fill_predictions,
    label_rows,
    train_on_labels,
    training_fingerprint,
)
from xl_expense.core.classify_rules import Rule, apply_rules, fold_text, rules_from_rows
from xl_expense.core.normalize import (
    clean_text,
    is_total_row,
    parse_amounts,
    parse_dates,
    score_header_row,
)
from xl_expense.core.settings import Settings, settings_from_dict
from xl_expense.core.taxonomy import default_taxonomy
from xl_expense.errors import XlExpenseError
from xl_expense.io.settings_io import settings_from_rows
from xl_expense.schema import (
    ALIAS_LOOKUP,
    HEADER_ALIASES,
    TEXT_COLUMNS,
    normalize_header,
)

ERROR_PREFIX = "#XE! "
#: Function wizard category (classic add-in; ignored elsewhere).
CATEGORY = "XL Expense 销售维护费"
#: Trained classifiers kept per Excel session; a workbook rarely has more than a few tables.
MODEL_CACHE_SIZE = 8


class UdfError(XlExpenseError):
    """A worksheet function's argument cannot be used; shown in the cell, zh / en."""


# ------------------------------------------------------------------------------ errors

def cell_errors(func):
    """Return ``#XE! <message>`` instead of raising, so the cell says what to fix.

    Excel shows a raised exception as ``#VALUE!`` (or xlwings' traceback text), which tells
    an accountant nothing. User errors (:class:`XlExpenseError`) give their one-line message;
    anything else gives its type and first line, marked as an internal error to report.
    ``functools.wraps`` keeps the signature and docstring that xlwings reads for the wizard.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            with _collector_paused():
                return func(*args, **kwargs)
        except XlExpenseError as error:
            return ERROR_PREFIX + error.one_line()
        except Exception as error:  # noqa: BLE001 - a cell must never show a traceback
            first_line = (str(error).strip().splitlines() or [""])[0][:200]
            return f"{ERROR_PREFIX}内部错误 / internal error ({type(error).__name__}): {first_line}"

    # The wizard shows the docstring as it is: no source indentation, one paragraph.
    wrapper.__doc__ = " ".join(inspect.cleandoc(func.__doc__ or "").splitlines())
    return wrapper


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector for the length of one call.

    Excel hands a range over as one Python list per row, and the answer goes back the same
    way: tens of thousands of small containers, each allocation counting towards the next
    collection, each collection walking all of them again (and the cached models). Measured
    on 10,000 rows, that was a third of a warm ``XE_CLASSIFY``. Nothing here builds reference
    cycles, and the collector runs again as soon as the call returns.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _missing_column(canonical: str) -> UdfError:
    zh, en = _column_names(canonical)
    return UdfError(f"{zh}列缺失 / {en} column missing",
                    f"选中含表头的整个区域，表头写 {zh} 或 {en} / select the table with its header row")


def _column_names(canonical: str) -> tuple[str, str]:
    """The first Chinese and first English header alias of a canonical column."""
    aliases = HEADER_ALIASES[canonical]
    zh = next(a for a in aliases if not a.isascii())
    en = next(a for a in aliases if a.isascii())
    return zh, en


# ------------------------------------------------------------------------------ cells in

def _grid(value) -> list[list]:
    """Any argument as xlwings may pass it (scalar, 1-D list, 2-D list, DataFrame) as rows.

    A 2-D list is returned as it is, not copied: allocating 10,000 row lists wakes Python's
    cyclic garbage collector, which then walks every live object (the cached models too) and
    costs more than the rest of a recalculation. Callers never modify the rows.
    """
    if isinstance(value, pd.DataFrame):
        return [list(value.columns)] + value.astype(object).to_numpy().tolist()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return [[value]]
    if value and all(isinstance(row, (list, tuple)) for row in value):
        return value
    return [[cell] for cell in value]  # a single column or row arrives as a flat list


def _column(value) -> tuple[list, bool]:
    """A scalar or a one-column/one-row range as a flat list, and whether it was a scalar."""
    if value is None or not isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [value], True
    cells = [cell for row in _grid(list(value)) for cell in row]
    return cells, False


def _filled(cell) -> bool:
    if cell is None:
        return False
    if isinstance(cell, float) and math.isnan(cell):
        return False
    return not (isinstance(cell, str) and not cell.strip())


def _language(header: list) -> str:
    """zh when any header cell has a CJK character (the user works in Chinese), else en."""
    text = "".join(str(c) for c in header if isinstance(c, str))
    return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text) else "en"


def _header_mapping(header: list) -> dict[str, int]:
    """Canonical column → position, by the schema's aliases.

    ``score_header_row`` is the reader's own matcher but only accepts expense headers (with a
    date or amount); a classification table of 摘要 | 供应商 | 类别 falls back to exact aliases.
    """
    _, mapping = score_header_row(header)
    if mapping:
        return mapping
    exact: dict[str, int] = {}
    for position, cell in enumerate(header):
        canonical = ALIAS_LOOKUP.get(normalize_header(cell)) if isinstance(cell, str) else None
        if canonical and canonical not in exact:
            exact[canonical] = position
    return exact


@dataclass
class Table:
    """A table argument read into a canonical ledger.

    ``ledger`` holds the readable expense rows (``row`` = line in the range, header = 1, as a
    reviewer counts); ``line`` maps each of them to its data line (0-based, header excluded);
    ``notes`` holds the text shown for the other lines (a reason, or "" for blank/total rows).
    """

    ledger: pd.DataFrame
    line: np.ndarray
    notes: list[str]
    n_lines: int
    lang: str
    columns: dict[str, int]


def read_table(value, required: tuple[str, ...] = (), *, parse: tuple[str, ...] | None = None) -> Table:
    """Read a table argument (header row + data rows) with core's parsers.

    ``required`` columns must be in the header. When amount or date is required, rows whose
    amount or date cannot be read are left out of the ledger and their line carries the
    reason, as the reader's list of unreadable rows does; otherwise such a cell just counts
    as empty (a classification does not need the amount).
    ``parse`` limits the text columns parsed to those a function uses (a classification
    never looks at the receipt number), which keeps a recalculation of 10,000 rows fast;
    the others stay empty in the ledger.
    """
    grid = _grid(value)
    end = len(grid)
    while end and not any(_filled(c) for c in grid[end - 1]):
        end -= 1  # a range selected generously ends in blank rows: no lines for them
    if end < 2:
        raise UdfError("区域没有数据行 / the range has no data rows",
                       "选中表头和数据行 / select the header row and the rows below it")
    header, rows = grid[0], grid[1:end]
    columns = _header_mapping(header)
    for canonical in required:
        if canonical not in columns:
            raise _missing_column(canonical)
    n = len(rows)
    # zip_longest: rows built by hand may be ragged; Excel's ranges are rectangular.
    cols = [np.array(col, dtype=object) for col in zip_longest(*rows, fillvalue=None)]

    def column(canonical: str) -> pd.Series:
        i = columns.get(canonical)
        return pd.Series(cols[i], dtype=object) if i is not None else pd.Series([None] * n, dtype=object)

    blank = np.logical_and.reduce([_empty(col) for col in cols])
    amount, amount_reason = parse_amounts(column("amount"))
    date, date_reason = parse_dates(column("date"))
    # 合计 labels are looked for in every column, as the reader does, except in the columns a
    # caller said it does not use (a receipt column has thousands of distinct values to fold).
    skipped = {i for name, i in columns.items() if parse is not None and name in TEXT_COLUMNS and name not in parse}
    labels = pd.DataFrame({i: pd.Series(col, dtype=object) for i, col in enumerate(cols) if i not in skipped})
    totals = is_total_row(labels, date.isna()).to_numpy() & ~blank
    reasons = pd.Series([None] * n, dtype=object)
    for name, reason in (("date", date_reason), ("amount", amount_reason)):  # amount's reason shown first
        if name in required:
            reasons = reason.where(reason.notna(), reasons)
    bad = reasons.notna().to_numpy() & ~blank & ~totals
    good = ~(blank | totals | bad)

    frame = {"date": date.astype("datetime64[ns]"), "amount": amount}
    for name in TEXT_COLUMNS:
        wanted = parse is None or name in parse
        frame[name] = clean_text(column(name)) if wanted else pd.Series([None] * n, dtype=object)
    lang = _language(header)
    frame["sheet"] = pd.Series(["本表" if lang == "zh" else "table"] * n, dtype=object)
    frame["row"] = pd.Series(np.arange(2, n + 2), dtype="int64")
    ledger = pd.DataFrame(frame)[good].reset_index(drop=True)
    notes = [str(reasons.iloc[i]) if bad[i] else "" for i in range(n)]
    return Table(ledger, np.flatnonzero(good), notes, n, lang, columns)


def _empty(col: np.ndarray) -> np.ndarray:
    """Cells that hold nothing: None (xlwings' empty cell), NaN (a DataFrame's) or ""."""
    return pd.isna(col) | np.equal(col, "")


def _settings(value, lang: str) -> Settings:
    """Settings from an optional key | value range (the Settings sheet's layout), else defaults."""
    values: dict = {}
    if value is not None:
        values, _ = settings_from_rows(_grid(value))
    values.setdefault("lang", lang)
    return settings_from_dict(values)


def _number(value, name: str, default: float | None = None) -> float | None:
    """A scalar numeric argument; blank → ``default``."""
    if not _filled(value):
        return default
    parsed, reason = parse_amounts(pd.Series([value], dtype=object))
    if reason.iloc[0] is not None or math.isnan(parsed.iloc[0]):
        raise UdfError(f"{name} 不是数字 / {name} is not a number: {value!r}", "输入数字 / type a number")
    return float(parsed.iloc[0])


def _date(value, name: str) -> dt.date:
    parsed, _ = parse_dates(pd.Series([value], dtype=object))
    if pd.isna(parsed.iloc[0]):
        raise UdfError(f"{name} 不是日期 / {name} is not a date: {value!r}", "输入日期 / type a date such as 2025-12-31")
    return parsed.iloc[0].date()


# ------------------------------------------------------------------------------ cells out

def _cell(value):
    """A value Excel can show: missing → "" (an empty-looking cell), numpy → Python."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _per_line(table: Table, header: list[str], values: dict[int, list]) -> list[list]:
    """Header line plus one line per data line: computed values where given, else the note."""
    width = len(header)
    out = [list(header)]
    for i in range(table.n_lines):
        row = values.get(i)
        out.append([_cell(v) for v in row] if row is not None else [table.notes[i]] + [""] * (width - 1))
    return out


def _by_line(table: Table, columns: list[pd.Series]) -> dict[int, list]:
    """Values of ledger-indexed Series, keyed by data line."""
    arrays = [c.reindex(table.ledger.index).to_numpy(dtype=object) for c in columns]
    return {int(line): [a[k] for a in arrays] for k, line in enumerate(table.line)}


# ------------------------------------------------------------------------------ classification

_models: OrderedDict[str, object] = OrderedDict()
_models_lock = threading.Lock()


def cached_model(ledger: pd.DataFrame, labels: pd.DataFrame):
    """The classifier trained on these labelled rows, trained once per distinct training set.

    The key is core's training fingerprint (features and labels of the labelled rows), so an
    unchanged table recalculates without retraining while any edited label retrains.
    """
    key = training_fingerprint(ledger, labels)
    with _models_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
    model = train_on_labels(ledger, labels, cv=False).model
    with _models_lock:
        _models[key] = model
        while len(_models) > MODEL_CACHE_SIZE:
            _models.popitem(last=False)
    return model


def clear_model_cache() -> None:
    """Forget every cached model (tests; or to free memory)."""
    with _models_lock:
        _models.clear()


def _classify(ledger: pd.DataFrame, rules: tuple[Rule, ...] = ()) -> pd.DataFrame:
    """Core's order of authority: the typed category, then rules, then the (cached) model."""
    labels, _ = label_rows(ledger, rules=rules)
    if not labels["source"].isna().any():
        return labels
    return fill_predictions(ledger, labels, cached_model(ledger, labels))


#: Ledger columns the classifier and the rules read (see xl_expense.core.classify).
_CLASSIFY_COLUMNS = ("category", "description", "vendor", "customer")


@functools.lru_cache(maxsize=1)
def taxonomy_rules() -> tuple[Rule, ...]:
    """Keyword rules from the default taxonomy: each name, English label and synonym.

    Longer keywords get a smaller priority number (applied first), so 售后服务费 decides
    before 售后 and "spare parts" before "parts"; equal lengths keep the taxonomy's order.
    """
    rules = []
    for category in default_taxonomy():
        for spelling in category.spellings():
            keyword = fold_text(spelling)
            rules.append(Rule(pattern=keyword, category=category.name, field="any",
                              priority=1000 - len(keyword), name=f"taxonomy:{keyword}"))
    return tuple(rules)


def _user_rules(value) -> tuple[Rule, ...]:
    return () if value is None else rules_from_rows(_grid(value), sheet="分类规则")


# ------------------------------------------------------------------------------ the functions

@xw.func(category=CATEGORY)
@xw.arg("description", doc="摘要：一个单元格或一列 / description: a cell or a column")
@xw.arg("vendor", doc="可选，供应商（与摘要同样大小）/ optional vendor, same size as description")
@xw.arg("amount", doc="可选，金额 / optional amount")
@xw.arg("training", ndim=2, doc="可选，已填类别的明细表（含表头）/ optional labelled table with its header row")
@xw.arg("rules", ndim=2, doc="可选，分类规则区域（关键词 | 类别 …）/ optional rules range (pattern | category …)")
@cell_errors
def XE_CATEGORY(description, vendor=None, amount=None, training=None, rules=None):
    """费用类别：按摘要/供应商判断。有已分类明细时用学习模型，否则用默认类别名和同义词关键词；未识别为空。
    Expense category from the description/vendor: learned from a labelled table if given, else
    the default category names and synonyms as keywords; blank when unrecognised."""
    texts, scalar = _column(description)
    n = len(texts)
    ledger = pd.DataFrame({"description": clean_text(pd.Series(texts, dtype=object))})
    for name, value in (("vendor", vendor), ("amount", amount)):
        cells, _ = _column(value) if value is not None else ([None] * n, True)
        if len(cells) == 1 and n > 1:
            cells = cells * n
        if len(cells) != n:
            raise UdfError(f"{name} 与摘要大小不同 / {name} and description differ in size",
                           "选择同样行数的区域 / select ranges with the same number of cells")
        series = pd.Series(cells, dtype=object)
        ledger[name] = parse_amounts(series)[0] if name == "amount" else clean_text(series)
    user_rules = _user_rules(rules)
    if training is not None:
        train = read_table(training, ("category",), parse=_CLASSIFY_COLUMNS).ledger
        known = pd.concat([train, ledger.assign(category=None)], ignore_index=True)
        result = _classify(known, user_rules)["category"].iloc[len(train):].reset_index(drop=True)
        # Nothing to read (no description, no vendor): blank, as without training.
        result = result.where(ledger["description"].notna() | ledger["vendor"].notna(), None)
    else:
        hits = apply_rules(ledger, user_rules + taxonomy_rules())
        result = hits["category"]
    categories = [_cell(c) for c in result.to_numpy(dtype=object)]
    return categories[0] if scalar else [[c] for c in categories]


@xw.func(category=CATEGORY)
@xw.arg("table", ndim=2, doc="明细表（含表头，类别列部分已填）/ ledger with its header row, some categories filled")
@xw.arg("rules", ndim=2, doc="可选，分类规则区域 / optional rules range (pattern | category …)")
@cell_errors
def XE_CLASSIFY(table, rules=None):
    """逐行溢出「类别 | 置信度」：已填类别保留（置信度 1），其余按已填行学习的模型预测。在表头行旁输入，与表逐行对齐。
    Spills category | confidence per row: filled categories are kept (1.0), the rest predicted
    by a model learned from them. Type it beside the header row."""
    data = read_table(table, ("category",), parse=_CLASSIFY_COLUMNS)
    if not any(name in data.columns for name in ("description", "vendor", "customer")):
        raise _missing_column("description")
    result = _classify(data.ledger, _user_rules(rules))
    header = ["类别", "置信度"] if data.lang == "zh" else ["category", "confidence"]
    confidence = result["confidence"].round(4)
    return _per_line(data, header, _by_line(data, [result["category"], confidence]))


@xw.func(category=CATEGORY)
@xw.arg("table", ndim=2, doc="明细表（含表头，需金额列）/ ledger with its header row (needs amount)")
@xw.arg("settings", ndim=2, doc="可选，设置区域（参数 | 值）/ optional settings range (key | value)")
@cell_errors
def XE_ANOMALY_SCORE(table, settings=None):
    """逐行溢出异常分数（0–1，越高越异常；孤立森林，综合金额、报销人、类别、商户、日期）。非正数金额为空。至少 50 行。
    Spills an anomaly score per row (0–1, higher = stranger; isolation forest over amount,
    person, category, vendor, date). Blank for non-positive amounts. Needs 50 rows."""
    data = read_table(table, ("amount",))
    run = _settings(settings, data.lang)
    ledger = prepare_ledger(data.ledger)
    scored = anomaly_scores(ledger, run)
    if len(scored) < MIN_ROWS:
        raise UdfError(f"至少需要 {MIN_ROWS} 行正数金额 / needs at least {MIN_ROWS} rows with a positive amount",
                       f"现有 {len(scored)} 行 / found {len(scored)}")
    score = scored["score"].round(4).reindex(ledger.index)
    header = ["异常分数"] if data.lang == "zh" else ["anomaly score"]
    return _per_line(data, header, _by_line(data, [score]))


@xw.func(category=CATEGORY)
@xw.arg("table", ndim=2, doc="明细表（含表头，需金额列）/ ledger with its header row (needs amount)")
@xw.arg("settings", ndim=2, doc="可选，设置区域（参数 | 值）/ optional settings range (key | value)")
@cell_errors
def XE_AUDIT_FLAGS(table, settings=None):
    """逐行溢出该行触发的审计规则编号（逗号分隔，严重的在前），与「一键审计」相同的规则和设置；无问题为空。
    Spills the audit rule ids each row triggers (comma-separated, most severe first): the same
    rules and settings as the one-click audit. Blank when the row is clean."""
    data = read_table(table, ("amount",))
    findings = run_audit(data.ledger, _settings(settings, data.lang))
    rows = findings[findings["row"].notna()]
    flags = rows.groupby(rows["row"].astype("int64"), sort=False)["rule"].agg(lambda ids: ",".join(dict.fromkeys(ids)))
    by_row = data.ledger["row"].map(flags).astype(object)
    header = ["审计规则"] if data.lang == "zh" else ["audit rules"]
    return _per_line(data, header, _by_line(data, [by_row]))


@xw.func(category=CATEGORY)
@xw.arg("table", ndim=2, doc="明细表（含表头，需日期和金额）/ ledger with its header row (needs date and amount)")
@xw.arg("settings", ndim=2, doc="可选，设置区域（参数 | 值）/ optional settings range (key | value)")
@cell_errors
def XE_DUPLICATES(table, settings=None):
    """逐行溢出重复检查：同日同人同商户同金额或发票号重复（重复报销），或几天内再次出现（疑似重复），并指出原始行；否则为空。
    Spills per row whether it repeats an earlier row (same day, person, vendor, amount or
    receipt; or within a few days) and which row; blank otherwise."""
    data = read_table(table, ("date", "amount"))
    run = _settings(settings, data.lang)
    ledger = prepare_ledger(data.ledger)
    text = pd.Series("", index=ledger.index, dtype=object)
    for rule_id in ("near_duplicate", "duplicate"):  # duplicate last: it wins on a row hit by both
        rule = RULES[rule_id]
        hits = rule.func(ledger, run)
        text[hits.index] = (f"{rule.title(run.lang)}: " + hits["message"].astype(str)).to_numpy(dtype=object)
    header = ["重复检查"] if data.lang == "zh" else ["duplicates"]
    return _per_line(data, header, _by_line(data, [text]))


_STATUS_LABELS = {
    "zh": {"ok": "正常", "warn": "预警", "over": "超支", "stop": "超支（停止）"},
    "en": {"ok": "OK", "warn": "Warning", "over": "Over budget", "stop": "Over budget (stop)"},
}


@xw.func(category=CATEGORY)
@xw.arg("actual", doc="已用金额：一个单元格或一列 / amount spent: a cell or a column")
@xw.arg("budget", doc="预算金额（与已用同样大小）/ budget, same size as actual")
@xw.arg("warn_share", doc="可选，预警比例，默认 0.8 / optional warning share, default 0.8")
@xw.arg("stop_share", doc="可选，超支比例，默认 1.0 / optional over-budget share, default 1.0")
@xw.arg("lang", doc="可选，zh 或 en / optional zh or en")
@cell_errors
def XE_BUDGET_STATUS(actual, budget, warn_share=0.8, stop_share=1.0, lang="zh"):
    """预算状态：已用 ≥ 预算×预警比例为「预警」，超过 预算×超支比例 为「超支」，否则「正常」；与预警表同一规则。
    Budget status: Warning from budget × warn used, Over budget above budget × stop, else OK;
    the same rule as the Alerts sheet."""
    spent, scalar = _column(actual)
    planned, _ = _column(budget)
    if len(planned) != len(spent):
        raise UdfError("已用与预算大小不同 / actual and budget differ in size",
                       "选择同样行数的区域 / select ranges with the same number of cells")
    lang = _lang_argument(lang)
    policy = ControlPolicy(warn_pct=_number(warn_share, "warn_share", 0.8), stop_pct=_number(stop_share, "stop_share", 1.0))
    spent_n = parse_amounts(pd.Series(spent, dtype=object))[0]
    planned_n = parse_amounts(pd.Series(planned, dtype=object))[0]
    usable = (spent_n.notna() & planned_n.notna()).to_numpy()
    statuses = np.full(len(spent), "", dtype=object)
    if usable.any():
        statuses[usable] = _annual_status(spent_n[usable].to_numpy(), planned_n[usable].to_numpy(), policy)
    labels = [_STATUS_LABELS[lang].get(s, "") for s in statuses]
    return labels[0] if scalar else [[s] for s in labels]


def _annual_status(spent: np.ndarray, planned: np.ndarray, policy: ControlPolicy) -> np.ndarray:
    """Core's status for budget lines judged on their annual limit only.

    Each pair becomes one budget line planned in January and spent on 1 January, monitored
    as of 31 December: ``monitor_budget`` then compares exactly ``spent`` with ``planned``
    (to the cent, with the policy's shares) and the month limit has nothing in it.
    """
    year = 2001
    keys = [f"L{i}" for i in range(len(spent))]
    budget = pd.DataFrame({"category": keys, "unit": [""] * len(keys), "m1": planned,
                           **{f"m{m}": 0.0 for m in range(2, 13)}})
    ledger = pd.DataFrame({"date": pd.Timestamp(year, 1, 1), "amount": spent, "category": keys,
                           "department": [""] * len(keys)})
    alerts = monitor_budget(budget, ledger, as_of=dt.date(year, 12, 31), year=year, policy=policy)
    alerts = alerts[alerts["line"] != "(unbudgeted)"].set_index("category")
    return alerts.loc[keys, "status"].to_numpy(dtype=object)


def _lang_argument(value) -> str:
    lang = str(value or "zh").strip().lower()
    if lang not in ("zh", "en"):
        raise UdfError(f"lang 应为 zh 或 en / lang must be zh or en: {value!r}", "输入 zh 或 en / type zh or en")
    return lang


@xw.func(category=CATEGORY)
@xw.arg("dates", doc="日期列 / column of dates")
@xw.arg("amounts", doc="金额列（与日期同样大小）/ column of amounts, same size as dates")
@xw.arg("period_end", doc="期末日期，如 2025-12-31 / last day of the period, e.g. 2025-12-31")
@xw.arg("period_start", doc="可选，期初日期，默认期末所在年的 1 月 1 日 / optional first day, default 1 Jan")
@cell_errors
def XE_FORECAST(dates, amounts, period_end, period_start=None):
    """按当前速度预测到期末的支出：期初至最近一笔日期的已用 ÷ 已过天数 × 期间总天数（与预警表的“按速度预测”相同）。
    Spend forecast to the period end at the current pace: spent from the period start to the
    latest date ÷ days elapsed × days in the period (the Alerts sheet's run-rate forecast)."""
    day_cells, _ = _column(dates)
    amount_cells, _ = _column(amounts)
    if len(day_cells) != len(amount_cells):
        raise UdfError("日期与金额大小不同 / dates and amounts differ in size",
                       "选择同样行数的区域 / select ranges with the same number of cells")
    end = _date(period_end, "period_end")
    start = _date(period_start, "period_start") if _filled(period_start) else dt.date(end.year, 1, 1)
    if start > end:
        raise UdfError("期初晚于期末 / period_start is after period_end", "交换两个日期 / swap the two dates")
    day = parse_dates(pd.Series(day_cells, dtype=object))[0]
    amount = parse_amounts(pd.Series(amount_cells, dtype=object))[0]
    inside = (day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end)) & amount.notna()
    if not inside.any():
        raise UdfError("期间内没有带日期的金额 / no dated amounts inside the period",
                       f"检查日期列和期间 {start} – {end} / check the dates and the period")
    as_of = day[inside].max().date()
    elapsed = (as_of - start).days + 1
    period_days = (end - start).days + 1
    return round(float(amount[inside].sum()) / elapsed * period_days, 2)


@xw.func(category=CATEGORY)
@xw.arg("amounts", doc="金额列（可含表头）/ column of amounts (a header cell is ignored)")
@xw.arg("lang", doc="可选，zh 或 en / optional zh or en")
@cell_errors
def XE_BENFORD(amounts, lang="zh"):
    """本福特首位数字检验：溢出 1–9 各数字的笔数、实际与预期占比，以及 MAD 和结论（Nigrini 标准；只计 ≥10 的金额）。
    Benford first-digit test: spills count, actual and expected share per digit 1–9, then the
    MAD and conformity (Nigrini's bands; amounts of 10 or more)."""
    lang = _lang_argument(lang)
    cells, _ = _column(amounts)
    parsed = parse_amounts(pd.Series(cells, dtype=object))[0].dropna()  # header and notes are not amounts
    run = Settings(lang=lang)
    result = benford_analysis(pd.DataFrame({"amount": parsed.to_numpy(), "person": None}), run)
    overall = result.groups.iloc[0]
    if int(overall["n"]) == 0:
        raise UdfError("没有 ≥10 的金额 / no amounts of 10 or more", "选择金额列 / select the amount column")
    verdict = CONFORMITY_LABELS[lang][overall["conformity"]]
    if not overall["judged"]:
        verdict += f"（少于 {run.benford_min_count} 笔，仅供参考）" if lang == "zh" else \
            f" (under {run.benford_min_count} amounts: indicative only)"
    header = (["首位数字", "笔数", "实际占比", "预期占比"] if lang == "zh"
              else ["first digit", "count", "actual", "expected"])
    out = [header]
    for row in result.digits.itertuples(index=False):
        out.append([int(row.digit), int(row.count), round(float(row.actual), 4), round(float(row.expected), 4)])
    out.append(["MAD", round(float(overall["mad"]), 4), "", ""])
    out.append(["结论" if lang == "zh" else "conformity", verdict, "", ""])
    out.append(["笔数合计" if lang == "zh" else "amounts tested", int(overall["n"]), "", ""])
    return out


__all__ = [
    "XE_ANOMALY_SCORE",
    "XE_AUDIT_FLAGS",
    "XE_BENFORD",
    "XE_BUDGET_STATUS",
    "XE_CATEGORY",
    "XE_CLASSIFY",
    "XE_DUPLICATES",
    "XE_FORECAST",
    "cell_errors",
    "clear_model_cache",
    "read_table",
    "taxonomy_rules",
]
