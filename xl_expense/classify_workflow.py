"""The classify workflow: read the ledger → manual, rules, model → write columns and a report.

Called by ``xl-expense classify``, the ribbon's 分类 button and batch alike. The input is
never modified unless ``in_place`` (then a ``.bak`` is kept). The model is stored beside the
output workbook (:mod:`xl_expense.io.model_store`) and reused by the next run while the
labelled rows it learned from are unchanged; any new or corrected label retrains it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xl_expense.core.classify_ledger import (
    LedgerClassification,
    classification_counts,
    classify_ledger,
    label_rows,
    training_fingerprint,
)
from xl_expense.errors import XlExpenseError
from xl_expense.io.classification_io import (
    plan_columns,
    read_ledger_grid,
    write_classification_columns,
)
from xl_expense.io.classification_sheets import SHEET_NAMES, build_classification_sheet
from xl_expense.io.classify_config import ClassifyConfig, read_classify_config
from xl_expense.io.csv_export import neutralize_formulas, write_csv
from xl_expense.io.ledger_reader import Ledger, load_ledger, shared_workbook
from xl_expense.io.model_store import (
    ModelFileError,
    ModelStale,
    load_model,
    model_path_for,
    save_model,
)
from xl_expense.io.plain_copy import PACKAGE_SUFFIXES, copy_values_to_xlsx
from xl_expense.io.safety import check_package
from xl_expense.io.settings_io import load_settings
from xl_expense.io.xlsx_package import add_sheets
from xl_expense.workflows import _run_record, resolve_output

#: Columns of the predictions CSV, in order (the first five are the documented contract).
PREDICTION_COLUMNS = ("sheet", "row", "category", "confidence", "source", "rule", "review")


@dataclass
class ClassifyResult:
    """What one classification run produced; the CLI prints it, the ribbon shows it."""

    input: Path
    output: Path
    ledger: Ledger
    classification: LedgerClassification
    config: ClassifyConfig
    model_path: Path | None
    run_record: dict[str, Any]
    predictions_csv: Path | None = None
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        source = self.classification.table["source"]
        return {"manual": int(source.eq("manual").sum()), "rule": int(source.eq("rule").sum()),
                "model": int(source.eq("model").sum()), "unclassified": int(source.isna().sum()),
                "review": int(self.classification.table["review"].sum())}


def classify_workbook(
    path: str | Path,
    output: str | Path | None = None,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str] | None = None,
    config: str | Path | None = None,
    lang: str | None = None,
    dayfirst: bool = False,
    in_place: bool = False,
    retrain: bool = False,
    min_confidence: float = 0.6,
    predictions_csv: str | Path | None = None,
    model_file: str | Path | None = None,
    now: dt.datetime | None = None,
    ledger: Ledger | None = None,
) -> ClassifyResult:
    """Give every expense row of the workbook a category, with its confidence and source.

    A category a person typed is kept (source ``manual``); the team's rules (分类规则/Rules
    sheet or ``[classify]`` in the TOML) come next; a model trained on those rows predicts
    the rest, and rows below ``min_confidence`` are marked for review. Writes the columns
    into the ledger sheet of a copy of the workbook plus a 分类报告/Classification sheet, and
    with ``predictions_csv`` one CSV row per expense row. ``ledger`` is the ledger of ``path``
    already read with these ``sheet``/``mapping``/``dayfirst`` (a batch has it from convert).
    """
    started = time.perf_counter()
    path = Path(path)
    try:
        if not path.is_file():
            raise XlExpenseError("file not found", "check the path and the file name")
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise XlExpenseError(f"--min-confidence {min_confidence} is not between 0 and 1",
                                 "give a probability such as 0.6")
        out = resolve_output(path, output, in_place, tag="classified")
        check_package(path)
        # One open for the settings, the categories and rules, and the ledger: each open
        # parses the shared strings again.
        with shared_workbook(path) as book:
            settings, settings_source = load_settings(path, config, {"lang": lang}, book=book)
            cfg = read_classify_config(path, Path(config) if config else None, book=book)
            if ledger is None:
                ledger = load_ledger(path, sheet=sheet, mapping=dict(mapping or {}), dayfirst=dayfirst, book=book)
        with tempfile.TemporaryDirectory(prefix=".xl-expense-", dir=out.parent) as work:
            base = _package_of(path, Path(work))
            grid, prior = read_ledger_grid(base, ledger)
            stored = Path(model_file) if model_file else model_path_for(path)
            target_model = Path(model_file) if model_file else model_path_for(out)
            result, model_state, model_path = _classify(ledger, cfg, prior, stored, target_model, retrain,
                                                        float(min_confidence), settings.random_state)
            run_record = _run_record(path, ledger, settings, settings_source, now)
            run_record["settings"] = {"min_confidence": float(min_confidence), "retrain": bool(retrain),
                                      "rules": len(cfg.rules), "categories": len(cfg.taxonomy),
                                      **{f"{k}_source": v for k, v in cfg.sources.items()}}
            patched = Path(work) / f"patched{out.suffix}"
            plan = plan_columns(grid, ledger)
            write_classification_columns(base, patched, grid, plan, ledger, result.table, settings.lang)
            report = build_classification_sheet(
                ledger, result.table, classification_counts(result.table),
                info=_headline_info(result, model_state, model_path, min_confidence, cfg),
                unknown=result.unknown_categories,
                display={c.name: c.display(settings.lang) for c in cfg.taxonomy},
                run_record=run_record, lang=settings.lang)
            if in_place:
                shutil.copy2(path, path.with_name(path.name + ".bak"))
            add_sheets(patched, out, [report], replace=list(SHEET_NAMES.values()))
        csv_path = _write_predictions(ledger, result, predictions_csv) if predictions_csv else None
    except XlExpenseError as exc:
        raise exc.with_path(str(path))
    return ClassifyResult(input=path, output=out, ledger=ledger, classification=result, config=cfg,
                          model_path=model_path, run_record=run_record, predictions_csv=csv_path,
                          seconds=time.perf_counter() - started)


def classified_ledger(result: ClassifyResult) -> Ledger | None:
    """The ledger as :attr:`ClassifyResult.output` reads back, without reading it again.

    A batch audits the classified workbook right after writing it; re-reading a thousand
    freshly written files costs more than the audit of each. Reading back gives the same
    expenses with the category cells as written: a person's category untouched, every other
    row the category we wrote (empty where nothing was found). ``None`` when the ledger had
    no category column: the column we add then changes what the reader maps, so read it.
    """
    ledger = result.ledger
    if "category" not in ledger.columns or "category" not in ledger.df.columns:
        return None
    table = result.classification.table
    written = table["category"].to_numpy(dtype=object)
    kept = table["source"].eq("manual").to_numpy()
    category = np.where(kept, ledger.df["category"].to_numpy(dtype=object), written)
    df = ledger.df.copy(deep=False)  # copy-on-write: the new column leaves ledger.df as it is
    df["category"] = pd.Series(category, index=df.index, dtype=ledger.df["category"].dtype)
    return dataclasses.replace(ledger, df=df, path=str(result.output))


def _package_of(path: Path, work: Path) -> Path:
    """The workbook package to write into: the input itself, or a values copy of a CSV/xls/ods."""
    if path.suffix.lower() in PACKAGE_SUFFIXES:
        return path
    base = work / "base.xlsx"
    copy_values_to_xlsx(path, base)
    return base


def _classify(ledger: Ledger, cfg: ClassifyConfig, prior: dict[str, pd.Series], stored: Path, target: Path,
              retrain: bool, min_confidence: float, random_state: int
              ) -> tuple[LedgerClassification, str, Path | None]:
    """Run the classification, reusing the stored model when it learned from these very labels.

    Returns the result, the model state for the report (``trained``/``reused``/``none``) and
    where the model now is. A damaged, tampered or foreign model file is an error (the user
    decides: ``--retrain`` replaces it); a stale one (labels changed) is simply retrained.
    """
    df = ledger.df
    labelled = label_rows(df, rules=cfg.rules, taxonomy=cfg.taxonomy, prior_source=prior.get("source"),
                          prior_suggested=prior.get("suggested"))
    # The fingerprint is needed only to check a stored model or to store a new one: most
    # batch ledgers have neither (every row labelled, nothing to train).
    fingerprint = None
    model = None
    if not retrain and stored.is_file():
        fingerprint = training_fingerprint(df, labelled[0])
        try:
            model, _meta = load_model(stored, expect={"training_sha256": fingerprint})
        except ModelStale:
            model = None
    result = classify_ledger(df, model=model, labelled=labelled, min_confidence=min_confidence,
                             random_state=random_state)
    if model is not None:
        return result, "reused", stored
    if result.training is None:
        return result, "none", None
    if fingerprint is None:
        fingerprint = training_fingerprint(df, labelled[0])
    meta = {"training_sha256": fingerprint, "labelled_rows": result.training.n_labelled,
            "classes": list(result.training.classes), "cv_accuracy": result.training.cv_accuracy}
    return result, "trained", save_model(result.training.model, target, meta)


def _headline_info(result: LedgerClassification, state: str, model_path: Path | None, min_confidence: float,
                   cfg: ClassifyConfig) -> dict[str, Any]:
    training = result.training
    info: dict[str, Any] = {"model_state": state, "min_confidence": float(min_confidence), "rules": len(cfg.rules),
                            "note": result.note, "model_file": model_path.name if model_path else ""}
    if training is not None:
        info.update(labelled=training.n_labelled, cv_accuracy=training.cv_accuracy,
                    classes=len(training.classes), skipped=training.skipped)
    return info


def predictions_frame(ledger: Ledger, table: pd.DataFrame) -> pd.DataFrame:
    """One row per expense row: ``sheet,row,category,confidence,source,rule,review``.

    ``row`` is the Excel row number; text is formula-safe (a category or rule name typed as
    ``=…`` stays text in Excel).
    """
    frame = pd.DataFrame({
        "sheet": ledger.df["sheet"].astype(object),
        "row": ledger.df["row"].astype("int64"),
        "category": table["category"].astype(object),
        "confidence": table["confidence"].round(4),
        "source": table["source"].astype(object),
        "rule": table["rule"].astype(object),
        "review": table["review"].astype(bool),
    })
    for column in ("sheet", "category", "rule"):
        frame[column] = neutralize_formulas(frame[column])
    return frame[list(PREDICTION_COLUMNS)]


def _write_predictions(ledger: Ledger, result: LedgerClassification, target: str | Path) -> Path:
    return write_csv(predictions_frame(ledger, result.table), target, what="predictions CSV",
                     option="--predictions-csv")


__all__ = ["ClassifyResult", "ModelFileError", "classify_workbook", "predictions_frame"]
