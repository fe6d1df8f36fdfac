"""Helpers for the export tests: read a written workbook back with openpyxl, sheet by sheet."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

T0 = datetime(2024, 9, 7, 2, 55, tzinfo=UTC)  # 09:55 WIB


def sheet_rows(path: Path, title: str) -> list[tuple[Any, ...]]:
    """All rows of one sheet as value tuples."""
    wb = load_workbook(path)
    return [tuple(r) for r in wb[title].iter_rows(values_only=True)]


def table(path: Path, title: str, header_rows: int = 1) -> list[dict[str, Any]]:
    """Rows of a sheet as dicts keyed by the first header row (names)."""
    rows = sheet_rows(path, title)
    head = rows[0]
    return [dict(zip(head, r, strict=False)) for r in rows[header_rows:]]


def cells(path: Path, title: str):
    """The openpyxl worksheet (cells with data types, hyperlinks, formats)."""
    return load_workbook(path)[title]


def all_text(path: Path) -> str:
    """Every cell value of every sheet joined (for 'never appears' checks)."""
    wb = load_workbook(path)
    out = []
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            out.extend(str(v) for v in row if v is not None)
        out.append(ws.title)
    return "\n".join(out)
