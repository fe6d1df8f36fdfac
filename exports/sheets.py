"""A streaming sheet: header rows, frozen panes, widths, link cells, and continuation past Excel's rows.

Built on openpyxl's write-only worksheets, so rows go straight to a temporary file and memory stays
flat. Everything that openpyxl writes at the top of a sheet (frozen panes, column widths) is set before
the first row; the autofilter range, written at the end, is set in `close`.
"""

from __future__ import annotations

from collections.abc import Sequence

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook

from exports.cells import clean_text
from exports.columns import Link
from exports.naming import SheetTitles

#: Rows per sheet in Excel 2007+ (Excel specifications and limits).
EXCEL_MAX_ROWS = 1_048_576
_BOLD = Font(bold=True)
_WRAP = Alignment(wrap_text=True, vertical="top")


class SheetStream:
    """Append-only rows to one logical sheet that continues on ``"<title> (2)"``… past ``max_rows``.

    ``headers`` are the header rows repeated at the top of every continuation sheet (bold, frozen).
    ``link_cols`` are 0-based column indices where rows may hold a `Link`; ``wrap_cols`` columns get
    wrapped text. ``widths`` maps 0-based column index -> width in characters. ``autofilter`` puts a
    filter on the last header row. ``notes`` (per column, "" for none) become comments on the first
    header row. The first sheet is created at ``index`` (None = at the end).
    """

    def __init__(
        self,
        wb: Workbook,
        titles: SheetTitles,
        title: str,
        headers: Sequence[Sequence[object]] = (),
        *,
        index: int | None = None,
        max_rows: int = EXCEL_MAX_ROWS,
        link_cols: Sequence[int] = (),
        wrap_cols: Sequence[int] = (),
        widths: dict[int, float] | None = None,
        autofilter: bool = False,
        freeze: bool = True,
        notes: Sequence[str] = (),
    ) -> None:
        self._wb = wb
        self._titles = titles
        self.base_title = title
        self._headers = [list(h) for h in headers]
        self._max_rows = max(max_rows, len(self._headers) + 1)
        self._link_cols = tuple(link_cols)
        self._wrap_cols = tuple(wrap_cols)
        self._widths = widths or {}
        self._autofilter = autofilter
        self._freeze = freeze
        self._notes = list(notes)
        self.sheets: list = []
        self.data_rows = 0
        self._rows_here = 0
        self.ws = self._new_sheet(title, index)

    @property
    def title(self) -> str:
        """The title of the first sheet."""
        return self.sheets[0].title

    def _new_sheet(self, title: str, index: int | None):
        ws = self._wb.create_sheet(title, index)
        self.sheets.append(ws)
        ncols = max((len(h) for h in self._headers), default=0)
        if self._freeze and self._headers:
            ws.freeze_panes = f"A{len(self._headers) + 1}"
        for i, w in self._widths.items():
            ws.column_dimensions[get_column_letter(i + 1)].width = w
        for r, h in enumerate(self._headers):
            cells = []
            for i, v in enumerate(h):
                c = WriteOnlyCell(ws, clean_text(v) if isinstance(v, str) else v)
                if c.data_type == "f":  # a label starting with "=" stays text
                    c.data_type = "s"
                c.font = _BOLD
                if r == 0 and i < len(self._notes) and self._notes[i]:
                    c.comment = Comment(self._notes[i], "Suara")
                cells.append(c)
            ws.append(cells)
        self._rows_here = len(self._headers)
        self._ncols = ncols
        return ws

    def _continue(self) -> None:
        self._close_filter(self.ws)
        n = len(self.sheets) + 1
        idx = self._wb.worksheets.index(self.ws) + 1
        suffix = f" ({n})"
        title = self._titles.take(self.base_title[: 31 - len(suffix)] + suffix)
        self.ws = self._new_sheet(title, idx)

    def append(self, row: list) -> None:
        """Append one row (a list; it may be modified in place to turn `Link` values into cells)."""
        if self._rows_here >= self._max_rows:
            self._continue()
        ws = self.ws
        for i in self._link_cols:
            v = row[i] if i < len(row) else None
            if v is not None and v.__class__ is Link:
                c = WriteOnlyCell(ws, v.text)
                c.hyperlink = v.target
                c._style = self._styles()[0]
                row[i] = c
        for i in self._wrap_cols:
            v = row[i] if i < len(row) else None
            if v is not None:
                if isinstance(v, Cell):
                    v.alignment = _WRAP
                else:
                    c = WriteOnlyCell(ws, v)
                    if c.data_type == "f":
                        c.data_type = "s"
                    c._style = self._styles()[1]  # shared, never mutated: no style lookup per cell
                    row[i] = c
        ws.append(row)
        self._rows_here += 1
        self.data_rows += 1

    def _styles(self):
        """(hyperlink style, wrapped-text style) as openpyxl style arrays, registered once."""
        got = getattr(self, "_style_cache", None)
        if got is None:
            link = WriteOnlyCell(self.ws, "x")
            link.style = "Hyperlink"
            wrap = WriteOnlyCell(self.ws, "x")
            wrap.alignment = _WRAP
            got = self._style_cache = (link._style, wrap._style)
        return got

    def _close_filter(self, ws) -> None:
        if self._autofilter and self._headers and self._ncols:
            last = get_column_letter(self._ncols)
            top = len(self._headers)
            ws.auto_filter.ref = f"A{top}:{last}{max(self._rows_here, top)}"

    def close(self) -> None:
        """Finish the current sheet (sets the autofilter range). Appending afterwards is an error."""
        self._close_filter(self.ws)

