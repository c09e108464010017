"""Blocks side by side (a findings table with the run record beside it) stream in chunks.

A findings sheet of half a million rows was once rendered as one string (and encoded as a
second copy): an audit with 454k findings peaked at 4.5 GB. The rows are now merged by row
number a chunk at a time; the XML must be what rendering each block whole gives.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from xl_expense.io import sheet_xml
from xl_expense.io.sheet_model import STYLE_KEYS, Block

CTX = sheet_xml.SheetContext(style_ids={k: i for i, k in enumerate(STYLE_KEYS)}, dxf_ids={})


def _whole_blocks(blocks: list[Block]) -> str:
    """The oracle: each block rendered in one piece, rows sorted by number, a shared row's
    cells left block first."""
    by_row: dict[int, list[tuple[int, str]]] = {}
    for block in blocks:
        for i, cells in enumerate(sheet_xml._render_rows(block, CTX)):
            by_row.setdefault(block.row + i, []).append((block.col, cells))
    return "".join(f'<row r="{n}">' + "".join(c for _, c in sorted(cells)) + "</row>"
                   for n, cells in sorted(by_row.items()))


def _random_blocks(rng: random.Random) -> list[Block]:
    """Blocks in disjoint column bands (so no cell overlaps) with random rows and values."""
    blocks, col = [], 1
    for _ in range(rng.randint(2, 4)):
        width, height = rng.randint(1, 3), rng.randint(0, 40)
        values = [[rng.choice([None, "", "文本 & <x>", 3, 2.5, -0.1, True, dt.date(2026, 3, rng.randint(1, 28))])
                   for _ in range(width)] for _ in range(height)]
        blocks.append(Block(row=rng.randint(1, 30), col=col, values=values, styles=["date"] * width))
        col += width + rng.randint(0, 2)
    return blocks


@pytest.mark.parametrize("seed", range(40))
def test_side_by_side_blocks_stream_in_chunks_with_the_whole_blocks_xml(seed: int, monkeypatch) -> None:
    blocks = _random_blocks(random.Random(seed))
    expected = _whole_blocks(blocks)
    monkeypatch.setattr(sheet_xml, "CHUNK_ROWS", 4)
    pieces = list(sheet_xml._merged_rows(blocks, CTX))
    assert "".join(pieces) == expected
    rows = expected.count("<row ")
    assert len(pieces) == -(-rows // 4)  # a piece per chunk of rows, never the whole sheet at once


def test_a_findings_sheet_with_the_run_record_beside_it_is_yielded_in_pieces(monkeypatch) -> None:
    body = [[f"F{i:06d}", "duplicate", float(i)] for i in range(1000)]
    blocks = [Block(row=1, col=1, values=[["id", "rule", "amount"]], row_style="header"),
              Block(row=2, col=1, values=body),
              Block(row=1, col=5, values=[["version", "1.0"], ["sha256", "ab"]])]
    monkeypatch.setattr(sheet_xml, "CHUNK_ROWS", 100)
    pieces = list(sheet_xml._sheet_data(blocks, CTX))
    assert pieces[0] == "<sheetData>" and pieces[-1] == "</sheetData>"
    assert len(pieces) == 2 + 11  # 1,001 rows in pieces of 100
    assert "".join(pieces[1:-1]) == _whole_blocks(blocks)
