"""One export of a form for the chat's /export and the nightly export: the export issue's workbook/bundle
plus the automatic quality flags (``_flags`` column) read from storage. Blocking: run in a worker thread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from bot.study_data import check_pending, flags_of
from exports import ExportOptions, ExportResult, SubmissionRecord, export_workbook, write_bundle
from exports.from_storage import load_source
from storage.models import FormVersion, Submission
from storage.repository import Repository


def flags_by_instance(repo: Repository, form_id: str) -> dict[str, tuple[str, ...]]:
    """instance ID -> stored quality flags, for every submission of ``form_id`` that has been checked."""
    with repo.db.session() as s:
        rows = list(s.exec(select(Submission.id, Submission.instance_id)
                           .join(FormVersion, col(FormVersion.id) == col(Submission.form_version_id))
                           .where(FormVersion.form_id == form_id)).all())
    flags = flags_of(repo, [i for i, _ in rows if i is not None])
    return {iid: flags[i] for i, iid in rows if i in flags}


def with_flags(records: Iterator[SubmissionRecord], flags: dict[str, tuple[str, ...]]) -> Iterator[SubmissionRecord]:
    """The records with their ``flags`` filled in from ``flags`` (instance ID -> flags)."""
    for rec in records:
        f = flags.get(rec.instance_id)
        yield dataclasses.replace(rec, flags=f) if f else rec


def export_form(repo: Repository, form_id: str, *, data_dir: Path, out_dir: Path, now: datetime, timezone: str,
                media: bool = False, progress: Callable[[int, int], None] | None = None) -> ExportResult:
    """Write ``<out_dir>/<form_id>_<YYYYmmdd-HHMMSS>.xlsx`` (or the .zip bundle with media) of the submitted
    submissions of ``form_id``, quality flags included (pending checks run first). ``progress(done, total)``
    is called as submissions are written. Raises `exports.from_storage.UnknownForm`, ValueError."""
    from zoneinfo import ZoneInfo

    check_pending(repo, now=now, zone=ZoneInfo(timezone))
    src = load_source(repo, form_id, data_dir=data_dir, statuses=("submitted",), timezone=timezone)
    subs = with_flags(src.submissions, flags_by_instance(repo, form_id))
    options = ExportOptions(media=media, timezone=timezone, statuses=frozenset({"submitted"}))
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.astimezone(ZoneInfo(timezone)).strftime("%Y%m%d-%H%M%S")
    if media:
        return write_bundle(src.forms, subs, src.media, src.events, out=out_dir / f"{form_id}_{stamp}.zip",
                            options=options, progress=progress, total=src.total, text_lengths=src.text_lengths)
    return export_workbook(src.forms, subs, src.media, src.events, out=out_dir / f"{form_id}_{stamp}.xlsx",
                           options=options, progress=progress, total=src.total, text_lengths=src.text_lengths)
