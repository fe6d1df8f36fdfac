"""The export bundle: one ``.zip`` holding the workbook and the media it links to.

Layout (export-layout.md "Bundle")::

    <form_id>_<YYYYmmdd-HHMMSS>[-n].zip
        <form_id>.xlsx
        media/<instance_id>/<question>[_n].<ext>      original bytes
        media/<instance_id>/thumbs/<stem>.jpg          small upright JPEG for photos

Every entry name is built from our own ids (`exports.media.MediaIndex`), never from a user's file name,
and the workbook's hyperlinks are relative (``media/…``), so links work wherever the zip is unpacked.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

from exports.media import thumbnail_bytes
from exports.naming import safe_component
from exports.records import EventRecord, MediaRecord, NoteRecord, SubmissionRecord
from exports.workbook import ExportOptions, ExportResult, export_workbook
from questionnaires.model import Form

#: Kinds whose bytes are already compressed: stored, not deflated again.
_STORED_EXT = frozenset({"jpg", "jpeg", "png", "webp", "gif", "ogg", "oga", "opus", "mp3", "m4a", "mp4",
                         "mov", "webm", "zip"})


def bundle_name(form_id: str, result: ExportResult, zone: str = "Asia/Jakarta", suffix: str = ".zip") -> str:
    """``<form_id>_<YYYYmmdd-HHMMSS>.zip`` with the export time in the study zone (seconds included, so
    exports a minute apart never share a name; `place_new` adds ``-2``, ``-3``… when one still does)."""
    at = result.exported_at.astimezone(ZoneInfo(zone)) if result.exported_at else None
    stamp = at.strftime("%Y%m%d-%H%M%S") if at else "export"
    return f"{safe_component(form_id, 'form')}_{stamp}{suffix}"


def place_new(source: Path, target: Path) -> Path:
    """Move the finished file ``source`` to ``target`` without ever replacing an existing file: if
    ``target`` exists, ``<stem>-2<suffix>``, ``-3``… is used. Returns the path written.

    Uses a hard link (atomic "create if absent", so two exports finishing at once cannot take the same
    name), falling back to an existence check + rename on file systems without hard links (FAT)."""
    import os

    n = 1
    while True:
        candidate = target if n == 1 else target.with_name(f"{target.stem}-{n}{target.suffix}")
        try:
            os.link(source, candidate)
        except FileExistsError:
            n += 1
            continue
        except OSError:
            if candidate.exists():
                n += 1
                continue
            source.replace(candidate)
            return candidate
        source.unlink()
        return candidate


def export_bundle(*args, **kwargs) -> Path:
    """Write the bundle (see `write_bundle`, same arguments) and return the ``.zip`` path."""
    return write_bundle(*args, **kwargs).path


def write_bundle(
    forms: Sequence[Form],
    submissions: Iterable[SubmissionRecord],
    media: Iterable[MediaRecord] = (),
    events: Iterable[EventRecord] = (),
    out: Path | str = ".",
    options: ExportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    notes: Iterable[NoteRecord] = (),
    total: int | None = None,
    text_lengths: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write the workbook and, when ``options.media``, the media files into one zip.

    ``out`` is a folder (the zip gets `bundle_name`, never replacing an existing file: see `place_new`)
    or a path ending in ``.zip`` (replaced if it exists: the caller named it). Other arguments as in
    `exports.workbook.export_workbook`. Returns the `ExportResult` whose ``path`` is the zip; files missing
    on disk are counted in the About sheet and ``result.notes``: the export still completes. The zip is written to a temporary
    name and renamed at the end, so a failed export never leaves a half-written bundle.
    """
    options = options or ExportOptions()
    out = Path(out)
    form_id = forms[-1].form_id if forms else "form"
    with tempfile.TemporaryDirectory(prefix="suara-export-") as tmp:
        xlsx = Path(tmp) / f"{safe_component(form_id, 'form')}.xlsx"
        result = export_workbook(forms, submissions, media, events, xlsx, options, progress, notes=notes,
                                 total=total, text_lengths=text_lengths)
        named = out.suffix.lower() == ".zip"
        target = out if named else out / bundle_name(form_id, result, options.timezone)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            zf.write(xlsx, xlsx.name)
            index = result.media_index
            if options.media and index is not None:
                for iid, entries in index.by_instance.items():
                    if iid not in result.instance_ids:
                        continue
                    for entry in entries:
                        rec = entry.record
                        ext = entry.arcname.rsplit(".", 1)[-1]
                        kind = zipfile.ZIP_STORED if ext in _STORED_EXT else zipfile.ZIP_DEFLATED
                        if rec.source is None or not rec.source.is_file():
                            continue  # counted on the About sheet
                        info = zipfile.ZipInfo.from_file(rec.source, entry.arcname)
                        info.compress_type = kind
                        with rec.source.open("rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                        result.bundled_files += 1
                        if entry.thumb_arcname:
                            thumb = thumbnail_bytes(rec)
                            if thumb is not None:
                                zf.writestr(entry.thumb_arcname, thumb, compress_type=zipfile.ZIP_STORED)
        if named:
            partial.replace(target)
        else:
            target = place_new(partial, target)
    result.path = target
    return result
