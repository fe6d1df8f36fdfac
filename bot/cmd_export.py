"""``suara export FORM``: write the Excel export of a form from the database, with a progress bar.

    suara export jambi_voter_survey                       # bundle .zip (workbook + media) in ./exports
    suara export jambi_voter_survey --no-media --out out/ # just the .xlsx
    suara export jambi_voter_survey --lang en --headers both --status submitted,paused --since 2024-02-01

Reads the same data directory / database as ``suara run``; never needs the bot token. The workbook
layout is described in ``../shared/design/export-layout.md`` and `exports.workbook`. Into a folder the
file is ``<form_id>_<YYYYmmdd-HHMMSS>.zip`` (or ``.xlsx``), with ``-2``, ``-3``… rather than replacing an
earlier export. Like the chat's /export, pending quality checks run first and ``_flags`` is filled
(`bot.study_export`). The printed line counts what is in the file: media files copied into the zip
(none with ``--no-media``).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

HELP = "Export a form's submissions to Excel (a .zip with media, or just the .xlsx)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """FORM plus the export options (issue 5)."""
    parser.add_argument("form_id", metavar="FORM", help="the form_id to export (see `suara admin publish`)")
    parser.add_argument("--out", type=Path, default=Path("exports"),
                        help="output folder, or a file name ending in .zip/.xlsx (default: ./exports)")
    parser.add_argument("--lang", default="values",
                        help="choice labels in this form language (e.g. id, en), or 'values' for choice names")
    parser.add_argument("--since", help="only submissions from this date (YYYY-MM-DD, study time zone) "
                                        "or ISO datetime with offset")
    parser.add_argument("--status", default="submitted",
                        help="comma-separated statuses: submitted, in_progress, paused, discarded, or 'all' "
                             "(default: submitted)")
    parser.add_argument("--media", action=argparse.BooleanOptionalAction, default=True,
                        help="bundle media files into a .zip (default) or write only the .xlsx")
    parser.add_argument("--headers", choices=("names", "labels", "both"), default="names",
                        help="header row: XLSForm names, labels, or both (two rows)")
    parser.add_argument("--questions", help="comma-separated question names/paths to export (default: all)")
    parser.add_argument("--data-dir", help="data directory (default: $SUARA_DATA_DIR or ./data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: $DATABASE_URL or SQLite in the data dir)")
    parser.add_argument("--env-file", default=None, help="a .env file to read (must exist; default: ./.env if present; \"\": none)")


def parse_since(text: str | None) -> date | datetime | None:
    """``YYYY-MM-DD`` -> date; ISO datetime with offset -> aware datetime. ValueError otherwise."""
    if not text:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: use YYYY-MM-DD or an ISO datetime with offset") from None
    if dt.tzinfo is None:
        raise ValueError(f"--since {text!r}: a datetime needs an offset, e.g. 2024-02-01T08:00+07:00")
    return dt


class ProgressBar:
    """A one-line terminal progress bar on ``stream`` (redrawn at most 10 times a second)."""

    def __init__(self, stream=None, width: int = 30) -> None:  # type: ignore[no-untyped-def]
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.last = 0.0
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and done < total:
            return
        self.last = now
        frac = done / total if total else 0.0
        fill = int(self.width * min(frac, 1.0))
        rate = done / max(now - self.t0, 1e-9)
        self.stream.write(f"\r[{'#' * fill}{'.' * (self.width - fill)}] {done}/{total or '?'} "
                          f"submissions read ({rate:.0f}/s)")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def plural(n: int, word: str, words: str | None = None) -> str:
    """``"1 submission"``, ``"2 submissions"`` (``words`` for an irregular plural)."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


def summary_line(result, *, media: bool) -> str:  # type: ignore[no-untyped-def]
    """The line printed after an export: path, submissions by status, and the media files that were
    actually written into the bundle (none with ``--no-media``: the workbook then lists them only)."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.by_status.items())) or "none"
    if media:
        files = f"{plural(result.bundled_files, 'media file')} in the zip"
    else:
        files = f"no media files written (--no-media; {plural(result.media_files, 'file')} listed on the Media sheet)"
    return f"wrote {result.path} — {plural(result.submissions, 'submission')} ({counts}), {files}"


def run(args: argparse.Namespace) -> int:
    """Write the export; 0 on success, 1 on bad input (message on stderr), 2 on bad settings."""
    from bot.config import ConfigError, dotenv_file, load_settings

    try:
        settings = load_settings(dotenv_path=dotenv_file(args.env_file),
                                 data_dir=args.data_dir, database_url=args.database_url, require_token=False)
    except ConfigError as exc:
        print(f"suara export: {exc}", file=sys.stderr)
        return 2
    try:
        since = parse_since(args.since)
    except ValueError as exc:
        print(f"suara export: {exc}", file=sys.stderr)
        return 1
    statuses = None if args.status.strip() == "all" else [s.strip() for s in args.status.split(",") if s.strip()]
    from storage.models import STATUSES

    unknown = [s for s in statuses or () if s not in STATUSES]
    if unknown or statuses == []:
        print(f"suara export: --status {', '.join(unknown) or repr(args.status)}: use {', '.join(STATUSES)} "
              f"(comma-separated) or all", file=sys.stderr)
        return 1
    questions = tuple(q.strip() for q in args.questions.split(",") if q.strip()) if args.questions else None

    from zoneinfo import ZoneInfo

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from bot.study_data import check_pending
    from bot.study_export import flags_by_instance, with_flags
    from exports import ExportOptions, export_workbook, write_bundle
    from exports.bundle import bundle_name, place_new
    from exports.from_storage import UnknownForm, load_source
    from storage.db import open_database
    from storage.media import MediaStore
    from storage.repository import Repository

    if not settings.data_dir.is_dir() and not args.database_url:
        print(f"suara export: no data directory at {settings.data_dir} (use --data-dir)", file=sys.stderr)
        return 1
    url = settings.resolved_database_url()
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        print(f"suara export: cannot use database URL {url!r}: {exc}", file=sys.stderr)
        return 1
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).is_file():
        # exporting must never create an empty database where the user pointed by mistake
        print(f"suara export: no Suara database at {parsed.database} (is --data-dir right?)", file=sys.stderr)
        return 1
    try:
        db = open_database(url)
    except (SQLAlchemyError, OSError) as exc:
        print(f"suara export: cannot open the database ({parsed.get_backend_name()}): "
              f"{str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    try:
        repo = Repository(db, MediaStore(settings.data_dir))
        try:
            src = load_source(repo, args.form_id, data_dir=settings.data_dir, statuses=statuses, since=since,
                              timezone=settings.tz)
        except UnknownForm as exc:
            print(f"suara export: {exc}", file=sys.stderr)
            return 1
        if questions:
            known = {key for f in src.forms for q in f.questions() for key in (q.name, q.path)}
            missing = [q for q in questions if q not in known]
            if missing:
                print(f"suara export: --questions: {', '.join(missing)} is not a question of {args.form_id} "
                      f"(names or paths from its survey sheet, any version)", file=sys.stderr)
                return 1
        try:
            options = ExportOptions(lang=args.lang, since=since, statuses=frozenset(statuses) if statuses else None,
                                    media=args.media, headers=args.headers, questions=questions,
                                    timezone=settings.tz)
        except ValueError as exc:
            print(f"suara export: {exc}", file=sys.stderr)
            return 1
        # the same quality flags (_flags) as the chat's /export: pending checks first, then the stored flags
        check_pending(repo, now=datetime.now(UTC), zone=ZoneInfo(settings.tz))
        subs = with_flags(src.submissions, flags_by_instance(repo, args.form_id))
        out: Path = args.out
        bar = ProgressBar()
        try:
            if args.media:
                result = write_bundle(src.forms, subs, src.media, src.events, out=out, options=options,
                                      progress=bar, total=src.total, text_lengths=src.text_lengths)
            elif out.suffix.lower() == ".xlsx":
                result = export_workbook(src.forms, subs, src.media, src.events, out=out, options=options,
                                         progress=bar, total=src.total, text_lengths=src.text_lengths)
            else:  # a folder: a new time-stamped file, never replacing an earlier export
                out.mkdir(parents=True, exist_ok=True)
                partial = out / f".{args.form_id}.xlsx.part"
                result = export_workbook(src.forms, subs, src.media, src.events, out=partial, options=options,
                                         progress=bar, total=src.total, text_lengths=src.text_lengths)
                result.path = place_new(partial, out / bundle_name(args.form_id, result, settings.tz, ".xlsx"))
        except ValueError as exc:
            bar.close()
            print(f"suara export: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:  # an output path under a file, a read-only folder, a full disk
            bar.close()
            print(f"suara export: cannot write to {out}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        bar.close()
    finally:
        db.close()
    print(summary_line(result, media=args.media))
    for note in result.notes:
        print(f"note: {note}")
    return 0
