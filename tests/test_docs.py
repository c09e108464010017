"""The committed rule documentation is what the registry says today."""

from __future__ import annotations

from pathlib import Path

from xl_expense.core.audit import RULES
from xl_expense.docs import audit_rules_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "audit-rules.md"

CONTRACT_IDS = ("duplicate", "near_duplicate", "split_transaction", "below_threshold", "round_amount",
                "weekend_holiday", "future_date", "out_of_period", "missing_receipt", "over_policy_limit",
                "missing_field", "negative_amount", "benford", "isolation_forest")


def test_rule_ids_are_the_contract() -> None:
    assert set(RULES) == set(CONTRACT_IDS)


def test_every_rule_explains_itself_in_both_languages() -> None:
    for rule in RULES.values():
        assert len(rule.describe("en")) > 20 and len(rule.describe("zh")) > 8, rule.id
        assert rule.title("zh") and rule.title("en"), rule.id


def test_docs_match_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == audit_rules_markdown(), \
        "docs/audit-rules.md is stale: run python -m xl_expense.docs"
