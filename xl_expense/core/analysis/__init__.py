"""Analysis for the dashboard, customer view, scorecards, benchmark, proposals and evaluation.

Pure computations on the canonical ledger, the audit findings, the budget monitor's table and
a revenue frame (:mod:`.revenue`). Every function returns a tidy DataFrame with stable English
snake_case columns (listed in the ``*_COLUMNS`` constant next to it); the io layer translates
labels and draws the sheets. Money is rounded to cents, ratios to four places (0.25 = 25 %).
"""

from __future__ import annotations

from xl_expense.core.analysis._common import AnalysisError, period_rows
from xl_expense.core.analysis.benchmark import (
    BENCHMARK_COLUMNS,
    GAP_COLUMNS,
    METRICS,
    benchmark,
    benchmark_gaps,
)
from xl_expense.core.analysis.budget_view import BUDGET_VIEW_COLUMNS, budget_vs_actual
from xl_expense.core.analysis.customers import (
    CUSTOMER_CATEGORY_COLUMNS,
    CUSTOMER_COLUMNS,
    CUSTOMER_MONTH_COLUMNS,
    customer_costs_by_category,
    customer_monthly,
    customer_view,
)
from xl_expense.core.analysis.evaluation import (
    BY_COLUMNS,
    CHANGE_COLUMNS,
    STATES,
    evaluation_by,
    evaluation_trend,
    finding_changes,
)
from xl_expense.core.analysis.evaluation import (
    TREND_COLUMNS as EVALUATION_TREND_COLUMNS,
)
from xl_expense.core.analysis.headline import HEADLINE_COLUMNS, audit_headline
from xl_expense.core.analysis.proposals import (
    LINE_COLUMNS,
    MOVE_COLUMNS,
    Proposal,
    ProposalLimits,
    propose_reallocation,
)
from xl_expense.core.analysis.ratios import (
    ACTIVITY_COLUMNS,
    RATIO_COLUMNS,
    efficiency_ratios,
)
from xl_expense.core.analysis.revenue import (
    REVENUE_COLUMNS,
    check_revenue,
    empty_revenue,
)
from xl_expense.core.analysis.scorecards import (
    COMPONENTS,
    DEFAULT_TIERS,
    SCORECARD_COLUMNS,
    ScoreConfig,
    Tier,
    scorecards,
    tiers_from_mapping,
)
from xl_expense.core.analysis.shares import (
    PARETO_COLUMNS,
    PARETO_SUMMARY_COLUMNS,
    SHARE_COLUMNS,
    category_shares,
    pareto_count,
    pareto_summary,
    pareto_table,
)
from xl_expense.core.analysis.statuses import STATUS_KEYS, status_keys
from xl_expense.core.analysis.trends import TREND_COLUMNS, monthly_trend

__all__ = [
    "ACTIVITY_COLUMNS",
    "BENCHMARK_COLUMNS",
    "BUDGET_VIEW_COLUMNS",
    "BY_COLUMNS",
    "CHANGE_COLUMNS",
    "COMPONENTS",
    "CUSTOMER_CATEGORY_COLUMNS",
    "CUSTOMER_COLUMNS",
    "CUSTOMER_MONTH_COLUMNS",
    "DEFAULT_TIERS",
    "EVALUATION_TREND_COLUMNS",
    "GAP_COLUMNS",
    "HEADLINE_COLUMNS",
    "LINE_COLUMNS",
    "METRICS",
    "MOVE_COLUMNS",
    "PARETO_COLUMNS",
    "PARETO_SUMMARY_COLUMNS",
    "RATIO_COLUMNS",
    "REVENUE_COLUMNS",
    "SCORECARD_COLUMNS",
    "SHARE_COLUMNS",
    "STATES",
    "STATUS_KEYS",
    "TREND_COLUMNS",
    "AnalysisError",
    "Proposal",
    "ProposalLimits",
    "ScoreConfig",
    "Tier",
    "audit_headline",
    "benchmark",
    "benchmark_gaps",
    "budget_vs_actual",
    "category_shares",
    "check_revenue",
    "customer_costs_by_category",
    "customer_monthly",
    "customer_view",
    "efficiency_ratios",
    "empty_revenue",
    "evaluation_by",
    "evaluation_trend",
    "finding_changes",
    "monthly_trend",
    "pareto_count",
    "pareto_summary",
    "pareto_table",
    "period_rows",
    "propose_reallocation",
    "scorecards",
    "status_keys",
    "tiers_from_mapping",
]
