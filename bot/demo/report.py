"""After the field day: the export bundles (written with the export functions, read back with openpyxl)
and the summary of where the data is.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func
from sqlmodel import col, select

from bot.services import Services
from storage.models import FormVersion, Media, Submission


@dataclass(frozen=True, slots=True)
class SheetCount:
    """One sheet of an exported workbook: its title and rows below the header row (read back)."""

    title: str
    rows: int


@dataclass(frozen=True, slots=True)
class ExportedBundle:
    """One export bundle: the form, the zip ``path``, submissions exported, the workbook's sheets and
    how many media files the zip holds (besides the workbook and thumbnails)."""

    form_id: str
    path: Path
    submissions: int
    sheets: tuple[SheetCount, ...]
    media_files: int


@dataclass(slots=True)
class DemoSummary:
    """What the demo left: paths, submissions per (form_id, status), media rows per kind, files on disk,
    and how long it took (``seconds``, wall clock) for how many Telegram ``updates`` and ``api_calls``."""

    data_dir: Path
    database: str
    media_dir: Path
    exports: list[ExportedBundle] = field(default_factory=list)
    submissions: dict[tuple[str, str], int] = field(default_factory=dict)
    media_rows: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    media_bytes: int = 0
    seconds: float = 0.0
    updates: int = 0
    api_calls: int = 0

    def by_status(self) -> dict[str, int]:
        """Submissions per status over all forms."""
        out: dict[str, int] = {}
        for (_, status), n in self.submissions.items():
            out[status] = out.get(status, 0) + n
        return out


def export_form(svc: Services, form_id: str, out_dir: Path) -> ExportedBundle:
    """Write ``form_id``'s submitted interviews as a bundle (.zip: workbook + media) into ``out_dir``
    with `exports.write_bundle`, then read the workbook back from the zip with openpyxl. Blocking."""
    from openpyxl import load_workbook

    from exports import ExportOptions, write_bundle
    from exports.from_storage import load_source

    tz = svc.settings.tz
    src = load_source(svc.repo, form_id, data_dir=svc.settings.data_dir, statuses=("submitted",), timezone=tz)
    options = ExportOptions(statuses=frozenset({"submitted"}), timezone=tz)
    result = write_bundle(src.forms, src.submissions, src.media, src.events, out=out_dir, options=options,
                          total=src.total, text_lengths=src.text_lengths)
    with zipfile.ZipFile(result.path) as zf:
        names = zf.namelist()
        xlsx = next(n for n in names if n.endswith(".xlsx"))
        wb = load_workbook(io.BytesIO(zf.read(xlsx)), read_only=True)
        try:
            sheets = tuple(SheetCount(ws.title, max(0, sum(1 for _ in ws.iter_rows(values_only=True)) - 1))
                           for ws in wb.worksheets)
        finally:
            wb.close()
    media = sum(1 for n in names if n.startswith("media/") and "/thumbs/" not in n and not n.endswith("/"))
    return ExportedBundle(form_id, result.path, result.submissions, sheets, media)


def summarize(svc: Services, exports: list[ExportedBundle], seconds: float) -> DemoSummary:
    """Count what is in the database and the media folder. Blocking."""
    settings = svc.settings
    summary = DemoSummary(data_dir=settings.data_dir.resolve(), database=settings.resolved_database_url(),
                          media_dir=settings.media_dir.resolve(), exports=exports, seconds=seconds)
    with svc.db.session() as s:
        rows = s.exec(select(FormVersion.form_id, Submission.status, func.count())
                      .join(FormVersion, col(FormVersion.id) == col(Submission.form_version_id))
                      .group_by(col(FormVersion.form_id), col(Submission.status))).all()
        summary.submissions = {(form_id, status): int(n) for form_id, status, n in rows}
        kinds = s.exec(select(Media.kind, func.count()).group_by(col(Media.kind))).all()
        summary.media_rows = {kind: int(n) for kind, n in kinds}
    if settings.media_dir.is_dir():
        files = [f for f in settings.media_dir.rglob("*") if f.is_file()]
        summary.media_files = len(files)
        summary.media_bytes = sum(f.stat().st_size for f in files)
    return summary


def format_exports(bundles: list[ExportedBundle]) -> list[str]:
    """Lines describing the bundles: path, sheet names and rows read back."""
    lines: list[str] = []
    for b in bundles:
        lines.append(f"📦 {b.path}")
        lines.append(f"   {b.submissions} submitted interview{'s' if b.submissions != 1 else ''}, "
                     f"{b.media_files} media file{'s' if b.media_files != 1 else ''} in the zip; sheets "
                     "(rows below the header, read back with openpyxl):")
        lines.append("   " + ", ".join(f"{s.title} {s.rows}" for s in b.sheets))
    return lines


def format_summary(s: DemoSummary) -> list[str]:
    """The closing summary: where the data is and what it holds."""
    status = ", ".join(f"{k} {v}" for k, v in sorted(s.by_status().items())) or "none"
    per_form = ", ".join(f"{form} {n}" for (form, st), n in sorted(s.submissions.items()) if st == "submitted")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.media_rows.items())) or "none"
    db_file = s.database.removeprefix("sqlite:///")
    lines = [
        "",
        "━━━ Where the data is " + "━" * 56,
        f"data directory : {s.data_dir}",
        f"SQLite database: {db_file}",
        f"media folder   : {s.media_dir}  ({s.media_files} files, {s.media_bytes / 1024:.0f} KiB, named by SHA-256)",
    ]
    for i, b in enumerate(s.exports):
        lines.append(f"{'exports' if i == 0 else '':15}: {b.path}")
    lines += [
        f"submissions    : {status}  (submitted: {per_form or 'none'})",
        f"media rows     : {kinds}",
        "",
        "Look at it:",
        f"  sqlite3 {db_file} 'select status, count(*) from submission group by status'",
        f"  suara export jambi_voter_survey --data-dir {s.data_dir} --lang en --out {s.data_dir / 'exports-en'}",
        f"Field day played in {s.seconds:.1f} s: {s.updates} updates handled by the bot, {s.api_calls} Bot API "
        "calls to the emulator.",
    ]
    return lines
