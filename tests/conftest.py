"""Shared fixtures and the rules for tests that need outside resources.

Tests that need LibreOffice or ../shared skip with a clear reason when they are absent,
except where ``XL_EXPENSE_REQUIRE_ORACLES`` is set (CI sets it): there a missing oracle
is a failure, so CI can never pass by skipping its strongest checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("XL_EXPENSE_SHARED", REPO.parent / "shared"))
DATA = SHARED / "data"
CORPUS = SHARED / "corpus"


def require(available: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when an outside resource is missing."""
    if available:
        return
    if os.environ.get("XL_EXPENSE_REQUIRE_ORACLES"):
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require(DATA.is_dir(), f"{DATA} absent: the real-ledger tests need ../shared/data")
    return DATA


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    require(CORPUS.is_dir(), f"{CORPUS} absent: the preservation tests need ../shared/corpus")
    return CORPUS


@pytest.fixture(scope="session")
def demo_workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo ledger (5,000 rows), written once per session; tests must copy before changing it."""
    from xl_expense.demo import write_demo_workbook

    return write_demo_workbook(tmp_path_factory.mktemp("demo") / "demo_ledger_2025.xlsx")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``xlwings_license`` drive xlwings' licensed engines: they run only where
    ``XLWINGS_LICENSE_KEY`` is set (CI sets the noncommercial key); the product needs no key."""
    if os.environ.get("XLWINGS_LICENSE_KEY"):
        return
    skip = pytest.mark.skip(reason="XLWINGS_LICENSE_KEY is not set: xlwings' licensed engines are not used")
    for item in items:
        if "xlwings_license" in item.keywords:
            item.add_marker(skip)
