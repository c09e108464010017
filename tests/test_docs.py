"""The committed rule documentation is what the registry says today."""

from __future__ import annotations

from pathlib import Path

from xl_expense.core.audit import RULES
from xl_expense.cli import cli
from xl_expense.docs import _commands, audit_rules_markdown, cli_reference_markdown

DOC = Path(__file__).resolve().parents[1] / "docs" / "audit-rules.md"
CLI_DOC = DOC.with_name("cli-reference.md")

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


def test_every_command_has_help() -> None:
    missing = [name for name, command in _commands(cli) if len((command.help or "").strip()) < 20]
    assert not missing, f"commands without help: {missing}"


def test_cli_reference_matches_the_commands() -> None:
    text = cli_reference_markdown()
    for name in ("xl-expense audit", "xl-expense classify", "xl-expense report", "xl-expense batch",
                 "xl-expense excel install"):
        assert f"## `{name}`" in text
    assert CLI_DOC.read_text(encoding="utf-8") == text, "docs/cli-reference.md is stale: run python -m xl_expense.docs"
