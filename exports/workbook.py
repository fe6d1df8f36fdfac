"""Write the export workbook: About, Codebook, data sheet, repeat sheets, Qualitative, Media, Summary,
Paradata (export-layout.md), in one streaming pass over the submissions.

Public API::

    export_workbook(forms, submissions, media=(), events=(), out=..., options=ExportOptions(),
                    progress=None, *, notes=(), total=None, text_lengths=None) -> ExportResult

``forms`` are all versions of one form, oldest first. ``submissions`` may be any iterable (a generator
streaming from the database is fine: it is read once). ``media`` is read fully into an index before the
pass (one small record per file). ``events`` are streamed after the pass. The call is blocking and CPU
bound: the bot runs it in a worker thread (``asyncio.to_thread``), never on the event loop.

Time zone: all timestamps are shown in ``options.timezone`` (default Asia/Jakarta, WIB) with a UTC
column beside; headers and the About sheet say which is which (FC-11).
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.chart import BarChart, Reference
from openpyxl.drawing.image import Image as XLImage

from exports.cells import TextCells, local_naive, seconds_between, split_text
from exports.columns import (
    EmitEnv,
    Link,
    MergedQuestion,
    Plan,
    RowContext,
    TablePlan,
    Tally,
    build_plan,
)
from exports.media import MediaIndex, thumbnail_bytes
from exports.naming import SheetTitles, safe_component
from exports.records import EventRecord, MediaRecord, NoteRecord, SubmissionRecord
from exports.sheets import EXCEL_MAX_ROWS, SheetStream
from questionnaires.model import Form, pick

HEADERS = ("names", "labels", "both")


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """What to export and how.

    * ``lang``: ``"values"`` (choice names, header labels in the form's default language) or a form
      language code (choice labels and header labels in that language);
    * ``since``: only submissions submitted (or, if never submitted, started) at or after this aware
      datetime; a `date` means 00:00 of that day in ``timezone``;
    * ``statuses``: only these statuses (None = all);
    * ``media``: write media links (and, for a bundle, the files); thumbnails are embedded either way;
    * ``headers``: ``"names"`` (one header row of XLSForm names), ``"labels"``, or ``"both"`` (two rows);
    * ``questions``: export only these question paths/names (None = all);
    * ``timezone``: the study's IANA zone; ``max_rows`` rows per sheet before continuing on a new one
      (Excel's 1,048,576; lower only in tests); ``max_thumbnails`` photos embedded in the Media sheet
      (beyond that: link only, noted in About); ``exported_at`` fixes the export time (tests).
    """

    lang: str = "values"
    since: datetime | date | None = None
    statuses: frozenset[str] | None = None
    media: bool = True
    headers: str = "names"
    questions: tuple[str, ...] | None = None
    timezone: str = "Asia/Jakarta"
    max_rows: int = EXCEL_MAX_ROWS
    max_thumbnails: int = 5000
    exported_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.headers not in HEADERS:
            raise ValueError(f"headers must be one of {', '.join(HEADERS)}, not {self.headers!r}")
        if isinstance(self.since, datetime) and self.since.tzinfo is None:
            raise ValueError("since must be an aware datetime (or a date)")


@dataclass(slots=True)
class ExportResult:
    """What was written: the .xlsx ``path``, submissions exported, data rows per sheet title (below the
    header; the Summary's count is all its rows), counts by status, media files listed on the Media sheet
    (``media_files``), files actually copied into the zip (``bundled_files``, 0 for a bare .xlsx),
    thumbnails embedded, texts cut in the data sheet (whole in Qualitative), and notes also shown on
    the About sheet."""

    path: Path
    submissions: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    media_files: int = 0
    bundled_files: int = 0
    thumbnails: int = 0
    cut_texts: int = 0
    notes: list[str] = field(default_factory=list)
    instance_ids: set[str] = field(default_factory=set)
    media_index: MediaIndex | None = None
    exported_at: datetime | None = None


_KEY_INDEX = re.compile(r"\[\d+\]")
_SEG = re.compile(r"^(.*)\[(\d+)\]$")
QUAL_HEADER = ("_uuid", "_respondent", "_enumerator", "question", "label", "type", "language", "text",
               "part", "media", "duration_s", "captured_at ({tz})", "captured_at (UTC)", "Code", "Theme",
               "Memo")
MEDIA_HEADER = ("_uuid", "question", "kind", "mime", "file", "thumbnail", "bytes", "sha256", "duration_s",
                "width", "height", "taken_at (EXIF, camera time)", "gps_latitude", "gps_longitude",
                "caption", "received_at ({tz})", "received_at (UTC)")
PARADATA_HEADER = ("_uuid", "at ({tz})", "at (UTC)", "event", "question", "old_value", "new_value",
                   "seconds (spent, or since the previous event)")


#: Column widths in characters (Excel's unit): a date-time "2024-02-14 09:55:00" needs 19 (narrower
#: shows "###" in LibreOffice/Excel), an instance ID (UUID) 36.
W_DATETIME = 19
W_UUID = 36
_META_WIDTHS = {"_uuid": W_UUID, "_submission__uuid": W_UUID, "_version": 16, "_mode": 11, "_enumerator": 11,
                "_respondent": 11, "_status": 11, "_language": 9, "_duration_s": 11, "_review_status": 13,
                "_flags": 24, "_skipped": 24, "_index": 8, "_parent_index": 8, "_parent_table_name": 20}
_TYPE_WIDTHS = {"integer": 10, "decimal": 10, "range": 10, "date": 11, "time": 9, "datetime": W_DATETIME,
                "select_one": 16, "select_one_from_file": 16, "select_multiple": 24,
                "select_multiple_from_file": 24, "rank": 24, "text": 32, "calculate": 14, "hidden": 14,
                "geopoint": 30, "image": 24, "audio": 24, "video": 24, "file": 24, "acknowledge": 10}


def column_widths(tp: TablePlan) -> dict[int, float]:
    """Width per 0-based column of one data/repeat sheet, from the column plan (not the data, so it
    costs nothing per row): timestamps 19, instance IDs 36, free text 32, one 0/1 (or rank) column per
    choice 6, numbers 10, geopoint parts 12, media links 24, other metadata by name."""
    widths: dict[int, float] = {}
    meta = {c.name: c for c in tp.meta}
    for i, c in enumerate(tp.columns):
        if c.path == "" and c.name in meta:
            widths[i] = W_DATETIME if c.zone else _META_WIDTHS.get(c.name, 12)
    offset = 0 if tp.table.parent is not None else len(tp.meta)
    for qc in tp.questions:
        qtype = qc.question.type
        for j, c in enumerate(qc.columns):
            if j == 0:
                w = _TYPE_WIDTHS.get(qtype, 14)
            elif qtype in ("select_multiple", "select_multiple_from_file", "rank"):
                w = 6
            elif qtype == "geopoint":
                w = 12
            elif c.name.endswith("_duration_s"):
                w = 10
            else:
                w = _TYPE_WIDTHS.get(qtype, 14)
            widths[offset + j] = w
        offset += len(qc.columns)
    return widths


def _tz_tag(zone_name: str) -> str:
    return "WIB" if zone_name == "Asia/Jakarta" else zone_name


def _check_forms(forms: Sequence[Form]) -> None:
    if not forms:
        raise ValueError("export needs at least one form version")
    ids = {f.form_id for f in forms}
    if len(ids) > 1:
        raise ValueError(f"all versions must be of one form, got form_ids {sorted(ids)}")


class _Export:
    """One export run (all mutable state of a run lives here, nothing global)."""

    def __init__(self, forms: Sequence[Form], out: Path, options: ExportOptions,
                 text_lengths: Mapping[str, int] | None) -> None:
        _check_forms(forms)
        self.forms = list(forms)
        self.options = options
        self.zone = ZoneInfo(options.timezone)
        self.tag = _tz_tag(options.timezone)
        langs = {c for f in forms for c in f.language_codes()}
        lang = None if options.lang in ("values", "", None) else options.lang
        if lang is not None and langs and lang not in langs:
            raise ValueError(f"language {lang!r} is not in the form (languages: {', '.join(sorted(langs))})")
        self.lang = lang
        self.plan: Plan = build_plan(forms, label_lang=lang, questions=options.questions,
                                     text_lengths=text_lengths, zone_name=options.timezone)
        self.exported_at = (options.exported_at or datetime.now(UTC)).astimezone(UTC)
        self.out = out
        self.result = ExportResult(path=out, exported_at=self.exported_at)
        self.wb = Workbook(write_only=True)
        self.titles = SheetTitles()
        self.tally = Tally()
        # per-run caches of the repeat pass: answer key -> (instance key, path); instance key -> info;
        # rows written per repeat table; table path -> (stream, emitters)
        self._key_cache: dict[str, tuple[str, str]] = {}
        self._inst_cache: dict[str, tuple[str, str, tuple[int, ...]]] = {}
        self._counters: dict[str, int] = {}
        self._tables: dict[str, tuple[SheetStream, list]] = {}
        self._main_title = ""
        self._qual_labels: dict[str, object] = {}

    # ------------------------------------------------------------------------------------- helpers
    def headers(self, cols) -> list[list[object]]:
        mode = self.options.headers
        names = [c.name for c in cols]
        labels = [c.label for c in cols]
        return [names] if mode == "names" else [labels] if mode == "labels" else [names, labels]

    def keep_key(self, key: str | None) -> bool:
        if key is None or not self.options.questions:
            return True
        path = _KEY_INDEX.sub("", key)
        name = path.rsplit("/", 1)[-1]
        only = set(self.options.questions)
        return path in only or name in only

    def since_utc(self) -> datetime | None:
        s = self.options.since
        if s is None:
            return None
        if isinstance(s, datetime):
            return s.astimezone(UTC)
        return datetime.combine(s, time(0), self.zone).astimezone(UTC)

    # ------------------------------------------------------------------------------------- the run
    def run(self, submissions: Iterable[SubmissionRecord], media: Iterable[MediaRecord],
            events: Iterable[EventRecord], notes: Iterable[NoteRecord],
            progress: Callable[[int, int], None] | None, total: int | None) -> ExportResult:
        wb, titles, plan = self.wb, self.titles, self.plan
        about_title = titles.take("About")
        codebook_title = titles.take("Codebook")
        self.about_ws = wb.create_sheet(about_title)
        self.codebook_ws = wb.create_sheet(codebook_title)
        text = TextCells(self.about_ws)
        self.text = text
        env = EmitEnv(text=text, zone=self.zone, lang=self.lang, tally=self.tally,
                      media_links=self.options.media)
        # data + repeat sheets, in form order
        self.streams: dict[str, SheetStream] = {}
        self.emitters: dict[str, list] = {}
        for tp in plan.tables:
            t = tp.table
            title = titles.take(self.forms[-1].form_id if t.parent is None else t.name)
            cols = tp.columns
            links = [i for i, c in enumerate(cols) if c.link]
            zone_notes = [_zone_note(c.zone, self.options.timezone) for c in cols]
            self.streams[t.path] = SheetStream(wb, titles, title, self.headers(cols), link_cols=links,
                                               max_rows=self.options.max_rows, notes=zone_notes,
                                               widths=column_widths(tp))
            self.emitters[t.path] = [qc.make(env) for qc in tp.questions]
            self._tables[t.path] = (self.streams[t.path], self.emitters[t.path])
        self._main_title = self.streams[""].base_title
        tag = self.tag
        qual_cols = [h.format(tz=tag) for h in QUAL_HEADER]
        self.qual = SheetStream(wb, titles, titles.take("Qualitative"), [qual_cols], link_cols=[9],
                                wrap_cols=[7], widths={0: W_UUID, 3: 24, 4: 30, 7: 60, 11: W_DATETIME,
                                                       12: W_DATETIME, 13: 15, 14: 15, 15: 30},
                                autofilter=True, max_rows=self.options.max_rows)
        self.media_title = titles.take("Media")
        self.summary_title = titles.take("Summary")
        self.paradata_title = titles.take("Paradata")
        self.media_ws = wb.create_sheet(self.media_title)
        self.summary_ws = wb.create_sheet(self.summary_title)

        self.index = MediaIndex(media, keep=self.keep_key)
        self.result.media_index = self.index
        notes_by: dict[str, list[NoteRecord]] = {}
        for n in notes:
            notes_by.setdefault(n.instance_id, []).append(n)
        self.notes_by = notes_by

        self._pass(submissions, progress, total)
        for s in self.streams.values():
            s.close()
        self.qual.close()
        self._paradata(events)
        self._media_sheet()
        self._summary()
        self._codebook()
        self._about()
        self.result.rows.update({s.title: s.data_rows for s in [*self.streams.values(), self.qual]})
        self.result.cut_texts = self.tally.cut
        self.out.parent.mkdir(parents=True, exist_ok=True)
        wb.save(self.out)
        return self.result

    def _pass(self, submissions: Iterable[SubmissionRecord], progress: Callable[[int, int], None] | None,
              total: int | None) -> None:
        opts = self.options
        statuses = opts.statuses
        since = self.since_utc()
        zone = self.zone
        cell = self.text.cell
        main_stream = self.streams[""]
        main_emit = self.emitters[""]
        has_repeats = len(self.plan.tables) > 1
        by_key = self.index.by_key
        empty_media: dict = {}
        by_status: Counter[str] = Counter()
        ids = self.result.instance_ids
        memo: dict[str, object] = {}

        def small(v: str) -> object:
            """Text cells for fields with few distinct values (version, mode, status…), made once."""
            got = memo.get(v)
            if got is None:
                got = memo[v] = cell(v) if v else None
                if len(memo) > 10_000:
                    memo.clear()
            return got

        n = 0
        seen = 0
        total_n = total if total is not None else (len(submissions) if isinstance(submissions, Sequence) else 0)
        step = 500
        for rec in submissions:
            seen += 1
            if progress is not None and seen % step == 0:
                progress(seen, total_n)
            if statuses is not None and rec.status not in statuses:
                continue
            if since is not None:
                when = rec.submitted_at or rec.started_at
                if when is None or when < since:
                    continue
            n += 1
            by_status[rec.status] += 1
            iid = rec.instance_id
            ids.add(iid)
            answers = rec.answers
            ctx = RowContext(instance_id=iid, media=by_key.get(iid, empty_media))
            sub = rec.submitted_at
            st = rec.started_at
            en = rec.ended_at
            row: list = [
                cell(iid),
                local_naive(sub, zone), _utc(sub),
                small(rec.form_version), small(rec.mode), small(rec.enumerator), cell(rec.respondent) or None,
                small(rec.status), small(rec.language),
                local_naive(st, zone), _utc(st),
                local_naive(en, zone), _utc(en),
                seconds_between(st, en),
                small(rec.review_status),
                cell(" ".join(rec.flags)) if rec.flags else None,
                cell(" ".join([k for k, v in answers.items() if v == ""])) or None,
                n,
            ]
            for e in main_emit:
                e(answers, row, ctx)
            main_stream.append(row)
            if has_repeats:
                self._repeats(rec, ctx, n)
            if ctx.qual or rec.notes or iid in self.index.by_instance or iid in self.notes_by:
                self._qualitative(rec, ctx)
        if progress is not None:
            progress(seen, max(total_n, seen))
        self.result.submissions = n
        self.result.by_status = dict(by_status)

    # ---------------------------------------------------------------------------------- repeats
    def _inst_info(self, inst_key: str) -> tuple[str, str, tuple[int, ...]]:
        """(table path, parent instance key, sort key) of a repeat instance key like ``a[1]/b[2]``."""
        cache = self._inst_cache
        got = cache.get(inst_key)
        if got is None:
            m = _SEG.match(inst_key)
            head = m.group(1) if m else inst_key
            table_path = _KEY_INDEX.sub("", head)
            cut = head.rfind("]")
            parent = head[: cut + 1] if cut >= 0 else ""
            order = {tp.table.path: tp.table.order for tp in self.plan.tables}
            sort: list[int] = []
            prefix = ""
            for seg in inst_key.split("/"):
                prefix = f"{prefix}/{seg}" if prefix else seg
                mm = _SEG.match(seg)
                if mm:
                    sort += [order.get(_KEY_INDEX.sub("", prefix[: -len(seg)] + mm.group(1)), 10**6),
                             int(mm.group(2))]
            got = cache[inst_key] = (table_path, parent, tuple(sort))
        return got

    def _repeats(self, rec: SubmissionRecord, main_ctx: RowContext, main_index: int) -> None:
        """Rows of every repeat instance of one submission, parents before children, with row keys."""
        cache = self._key_cache
        info_of = self._inst_cache
        inst: dict[str, dict[str, str]] = {}
        for k, v in rec.answers.items():
            if "[" not in k:
                continue
            info = cache.get(k)
            if info is None:
                j = k.rfind("]")
                info = cache[k] = (k[: j + 1], _KEY_INDEX.sub("", k))
            d = inst.get(info[0])
            if d is None:
                d = inst[info[0]] = {}
            d[info[1]] = v
        if rec.repeat_counts:
            for rk, count in rec.repeat_counts.items():
                for i in range(1, int(count) + 1):
                    inst.setdefault(f"{rk}[{i}]", {})
        if not inst:
            return
        # every ancestor instance gets a row too
        for ik in list(inst):
            got = info_of.get(ik) or self._inst_info(ik)
            parent = got[1]
            while parent and parent not in inst:
                inst[parent] = {}
                parent = (info_of.get(parent) or self._inst_info(parent))[1]
        keys = sorted(inst, key=lambda k: (info_of.get(k) or self._inst_info(k))[2]) if len(inst) > 1 else list(inst)
        indexes: dict[str, int] = {}
        counters = self._counters
        tables = self._tables
        iid = rec.instance_id
        for ik in keys:
            table_path, parent, _ = info_of.get(ik) or self._inst_info(ik)
            t = tables.get(table_path)
            if t is None:
                continue
            stream, emitters = t
            idx = counters[table_path] = counters.get(table_path, 0) + 1
            indexes[ik] = idx
            if parent:
                p_idx = indexes.get(parent)
                p_title = tables[info_of[parent][0]][0].base_title
            else:
                p_idx, p_title = main_index, self._main_title
            ctx = RowContext(iid, ik, table_path, main_ctx.media, main_ctx.qual)
            row: list = []
            values = inst[ik]
            for e in emitters:
                e(values, row, ctx)
            row += [idx, p_idx, p_title, iid]
            stream.append(row)

    # ------------------------------------------------------------------------------ qualitative
    def _qualitative(self, rec: SubmissionRecord, ctx: RowContext) -> None:
        """Qualitative rows of one submission: open text answers, audio answers, then field notes."""
        cell = self.text.cell
        zone = self.zone
        append = self.qual.append
        labels = self._qual_labels
        links = self.options.media
        iid = rec.instance_id
        base = [cell(iid), cell(rec.respondent) or None, cell(rec.enumerator) or None]
        lang_cell = cell(rec.language) or None
        answered_at = rec.answered_at

        def emit(key: str, label: object, qtype: str, text: str, media_arc: str | None,
                 duration: float | None, when: datetime | None) -> None:
            parts = split_text(text) if len(text) > 16_000 else [text]
            n = len(parts)
            link = None
            if media_arc:
                name = media_arc.rsplit("/", 1)[-1]
                link = Link(name, media_arc) if links else cell(name)
            at, at_utc = (local_naive(when, zone), _utc(when)) if when is not None else (None, None)
            for i, part in enumerate(parts, 1):
                append([*base, cell(key), label, qtype, lang_cell, cell(part) if part else None,
                        f"{i} of {n}" if n > 1 else None, link if i == 1 else None,
                        duration if i == 1 else None, at, at_utc, None, None, None])

        for key, mq, text, mrec, arc in ctx.qual:
            label = labels.get(mq.path)
            if label is None:
                label = labels[mq.path] = cell(pick(mq.question.labels, self.plan.label_lang) or mq.name)
            when = answered_at.get(key) if answered_at else None
            if mrec is not None:
                emit(key, label, mq.type, text, arc, mrec.duration_s, mrec.captured_at or when)
            else:
                emit(key, label, mq.type, text, None, None, when)
        entries = self.index.by_instance.get(iid)
        if entries:
            for entry in entries:
                r = entry.record
                if r.key is None:
                    emit("(field note)", None, r.kind, r.caption, entry.arcname, r.duration_s, r.captured_at)
        for note in (*rec.notes, *self.notes_by.get(iid, ())):
            if note.text:
                emit("(field note)", cell(f"written at {note.key}") if note.key else None, "text", note.text,
                     None, None, note.captured_at)

    # --------------------------------------------------------------------------------- paradata
    def _paradata(self, events: Iterable[EventRecord]) -> None:
        tag = self.tag
        stream = SheetStream(self.wb, self.titles, self.paradata_title,
                             [[h.format(tz=tag) for h in PARADATA_HEADER]], autofilter=True,
                             max_rows=self.options.max_rows,
                             widths={0: W_UUID, 1: W_DATETIME, 2: W_DATETIME, 3: 11, 4: 26, 5: 20, 6: 20, 7: 12})
        cell = self.text.cell
        ids = self.result.instance_ids
        zone = self.zone
        last: tuple[str, datetime] | None = None
        for ev in events:
            if ev.instance_id not in ids:
                continue
            prev, last = last, (ev.instance_id, ev.at)
            if ev.key is not None and not self.keep_key(ev.key):
                continue
            secs = ev.seconds
            if secs is None and prev is not None and prev[0] == ev.instance_id:
                secs = seconds_between(prev[1], ev.at)
            stream.append([cell(ev.instance_id), local_naive(ev.at, zone), _utc(ev.at), cell(ev.kind),
                           cell(ev.key), _value_cell(cell, ev.old), _value_cell(cell, ev.new), secs])
        stream.close()
        self.result.rows[stream.title] = stream.data_rows
        self.paradata_rows = stream.data_rows

    # ------------------------------------------------------------------------------------ media
    def _media_sheet(self) -> None:
        ws = self.media_ws
        tag = self.tag
        ws.freeze_panes = "A2"
        ws.column_dimensions["F"].width = 24
        header = []
        for h in MEDIA_HEADER:
            c = WriteOnlyCell(ws, h.format(tz=tag))
            header.append(c)
        ws.append(header)
        cell = self.text.cell
        ids = self.result.instance_ids
        zone = self.zone
        row_no = 1
        embedded = 0
        capped = 0
        files = 0
        missing = 0
        for iid, entries in self.index.by_instance.items():
            if iid not in ids:
                continue
            for entry in entries:
                r = entry.record
                files += 1
                row_no += 1
                if self.options.media and (r.source is None or not r.source.is_file()):
                    missing += 1
                thumb = None
                if r.kind in ("photo", "image") or r.thumb is not None:
                    if embedded < self.options.max_thumbnails:
                        thumb = thumbnail_bytes(r)
                    else:
                        capped += 1
                if thumb is not None:
                    img = XLImage(io.BytesIO(thumb))
                    scale = min(1.0, 100 / max(img.width, img.height, 1))
                    img.width, img.height = int(img.width * scale), int(img.height * scale)
                    ws.row_dimensions[row_no].height = max(15, img.height * 0.75 + 4)
                    ws.add_image(img, f"F{row_no}")
                    embedded += 1
                fname = entry.arcname.rsplit("/", 1)[-1]
                if self.options.media:
                    link = WriteOnlyCell(ws, fname)
                    link.hyperlink = entry.arcname
                    link.style = "Hyperlink"
                else:
                    link = fname
                gps = r.gps or (None, None)
                ws.append([
                    cell(iid), cell(r.key if r.key is not None else "(field note)"), cell(r.kind),
                    cell(r.mime) or None, link, None, r.size, cell(r.sha256) or None, r.duration_s,
                    r.width, r.height, r.taken_at.replace(tzinfo=None) if r.taken_at else None,
                    gps[0], gps[1], cell(r.caption) if r.caption else None,
                    local_naive(r.captured_at, zone), _utc(r.captured_at),
                ])
        self.result.media_files = files
        self.result.thumbnails = embedded
        self.result.rows[self.media_title] = files
        if missing:
            self.result.notes.append(f"{missing} media files were missing on disk (their links will not open).")
        if capped:
            self.result.notes.append(
                f"{capped} photos beyond the first {self.options.max_thumbnails} are linked, not embedded.")

    # ---------------------------------------------------------------------------------- summary
    def _summary(self) -> None:
        ws = self.summary_ws
        lang = self.plan.label_lang
        show_lang = self.lang
        cell = self.text.cell
        ws.column_dimensions["A"].width = 24
        ws.column_dimensions["B"].width = 36
        r = 0
        gap = 0
        charts: list[tuple[BarChart, int]] = []
        for tp in self.plan.tables:
            for qc in tp.questions:
                mq = qc.question
                if not mq.question.is_select:
                    continue
                for _ in range(gap):  # blank rows between tables only: none after the last one
                    ws.append([])
                    r += 1
                asked = self.tally.asked.get(mq.path, 0)
                counts = self.tally.counts.get(mq.path, Counter())
                label = pick(mq.question.labels, lang) or mq.name
                title = WriteOnlyCell(ws, None)
                title.value = f"{mq.path} — {label}"
                if title.data_type == "f":
                    title.data_type = "s"
                title.font = _bold()
                ws.append([title, None, f"asked: {asked}"])
                ws.append([_bold_cell(ws, "value"), _bold_cell(ws, "label"), _bold_cell(ws, "count"),
                           _bold_cell(ws, "% of asked")])
                r += 2
                first = r + 1
                names = [c.name for c in mq.choices]
                if mq.question.or_other and "other" not in names:
                    names.append("other")
                names += [v for v in counts if v not in set(names)]
                by_name = {c.name: c for c in mq.choices}
                for name in names:
                    c = by_name.get(name)
                    clabel = (pick(c.labels, show_lang or lang) or name) if c else name
                    pct = WriteOnlyCell(ws, counts.get(name, 0) / asked if asked else None)
                    pct.number_format = "0.0%"
                    ws.append([cell(name), cell(clabel), counts.get(name, 0), pct])
                    r += 1
                last = r
                if names:
                    chart = BarChart()
                    chart.type = "bar"
                    chart.title = label[:200]
                    chart.legend = None
                    chart.height = max(4.0, 0.6 * len(names) + 2)
                    chart.add_data(Reference(ws, min_col=3, min_row=first, max_row=last), titles_from_data=False)
                    chart.set_categories(Reference(ws, min_col=2, min_row=first, max_row=last))
                    charts.append((chart, first - 2))
                rows_needed = int(max(4.0, 0.6 * len(names) + 2) / 0.5) + 1
                gap = 1 + max(0, rows_needed - (len(names) + 3))
        for chart, at in charts:
            ws.add_chart(chart, f"F{at + 1}")
        self.summary_charts = len(charts)
        self.result.rows[self.summary_title] = r

    # --------------------------------------------------------------------------------- codebook
    def _codebook(self) -> None:
        ws = self.codebook_ws
        cell = self.text.cell
        langs: list[str] = []
        for f in self.forms:
            for c in f.language_codes() or ("default",):
                if c not in langs:
                    langs.append(c)
        ws.freeze_panes = "A2"
        header = (["path", "name", "type", "sheet", "columns"] + [f"label::{c}" for c in langs]
                  + [f"hint::{c}" for c in langs]
                  + ["required", "relevant", "constraint", "calculation", "choice_filter", "repeat_count",
                     "choice", *[f"choice_label::{c}" for c in langs], "versions"])
        ws.append([_bold_cell(ws, h) for h in header])
        sheet_of = {tp.table.path: self.streams[tp.table.path].title for tp in self.plan.tables}
        cols_of = {qc.question.path: " ".join(c.name for c in qc.columns)
                   for tp in self.plan.tables for qc in tp.questions}
        exported = set(cols_of)
        tables_done: set[str] = set()
        for mq in self.plan.questions:
            t = mq.table
            chain = []
            tt = t
            while tt is not None and tt.parent is not None:
                chain.append(tt)
                tt = tt.parent
            for t_ in reversed(chain):
                if t_.path not in sheet_of or t_.path in tables_done:
                    continue
                tables_done.add(t_.path)
                rep = t_.repeat
                b = rep.bind if rep else None
                ws.append([cell(t_.path), cell(t_.name), "begin repeat", cell(sheet_of[t_.path]), None,
                           *[cell(t_.labels.get(c)) or None for c in langs],
                           *[None for _ in langs],
                           None, cell(b.relevant) if b else None, None, None, None,
                           cell(rep.repeat_count) if rep else None, None, *[None for _ in langs],
                           cell(" ".join(t_.versions))])
            if mq.path not in exported:
                continue
            q = mq.question
            b = q.bind
            table_path = t.path if t is not None else ""
            ws.append([cell(mq.path), cell(mq.name), cell(q.type + (" or_other" if q.or_other else "")),
                       cell(sheet_of.get(table_path)), cell(cols_of.get(mq.path)),
                       *[cell(q.labels.get(c)) or None for c in langs],
                       *[cell(q.hints.get(c)) or None for c in langs],
                       cell(b.required), cell(b.relevant), cell(b.constraint), cell(b.calculation),
                       cell(b.choice_filter), None, None, *[None for _ in langs],
                       cell(" ".join(mq.versions))])
            removed = {c.name for c in mq.choices} - {c.name for c in q.choices}
            for ch in mq.choices:
                ws.append([cell(mq.path), cell(mq.name), None, None, None, *[None for _ in langs],
                           *[None for _ in langs], None, None, None, None, None, None,
                           cell(ch.name), *[cell(ch.labels.get(c)) or None for c in langs],
                           "removed in newest version" if ch.name in removed else None])

    # ------------------------------------------------------------------------------------ about
    def _about(self) -> None:
        ws = self.about_ws
        cell = self.text.cell
        f = self.forms[-1]
        o = self.options
        ws.column_dimensions["A"].width = 28
        ws.column_dimensions["B"].width = 60
        at = self.exported_at
        rows: list[list[object]] = [
            [_bold_cell(ws, "Suara export"), None],
            ["form title", cell(f.title)],
            ["form_id", cell(f.form_id)],
            ["versions included (oldest first)", cell(", ".join(x.version or "(none)" for x in self.forms))],
            [f"exported at ({self.tag})", local_naive(at, self.zone)],
            ["exported at (UTC)", at.replace(tzinfo=None)],
            ["time zone", f"{o.timezone} ({self.tag}); every timestamp column says its zone, "
                          "a UTC column stands beside each; date answers are never shifted"],
            ["filters: language", cell(o.lang)],
            ["filters: since", cell(str(o.since)) if o.since else "(all)"],
            ["filters: status", cell(", ".join(sorted(o.statuses))) if o.statuses else "(all)"],
            ["filters: questions", cell(", ".join(o.questions)) if o.questions else "(all)"],
            ["media", "links into media/ beside this file" if o.media else "not included"],
            ["headers", o.headers],
            ["submissions exported", self.result.submissions],
        ]
        for status, n in sorted(self.result.by_status.items()):
            rows.append([f"status: {status}", n])
        rows.append([])
        rows.append([_bold_cell(ws, "sheet"), _bold_cell(ws, "contents")])
        for tp in self.plan.tables:
            t = tp.table
            s = self.streams[t.path]
            what = ("one row per submission" if t.parent is None
                    else f"repeat group {t.path} (one row per instance)")
            for sh in s.sheets:
                rows.append([cell(sh.title), cell(what)])
        for sh in self.qual.sheets:
            rows.append([cell(sh.title), "one row per open text answer, audio answer and field note; "
                                         "Code/Theme/Memo are for analysts"])
        rows += [[cell(self.media_title), "one row per media file"],
                 [cell(self.summary_title), "frequencies of every select question (% of those asked)"],
                 [cell(self.paradata_title), "one row per interview event, seconds spent"]]
        rows.append([])
        rows.append([_bold_cell(ws, "column"), _bold_cell(ws, "meaning")])
        legend = [
            ("_uuid", "instance ID of the submission"),
            ("_submission_time / start / end", f"in {o.timezone} ({self.tag}); *_utc columns in UTC"),
            ("_respondent / _enumerator", "pseudonymous codes (never Telegram ids or phone numbers)"),
            ("q/choice", "select_multiple: 1 ticked, 0 not ticked, empty when q was not asked"),
            ("_q_latitude … _q_precision", "geopoint parts (decimal degrees, metres)"),
            ("q_URL", "relative link to the file in media/ (open from the unzipped bundle)"),
            ("q_part2 …", "continuation of a text longer than Excel's 32,767 characters"),
            ("_index / _parent_index", "row key in its sheet / row key of the parent row"),
            ("_skipped", "answer keys that were asked and left empty (skipped), space-separated; a question "
                         "not asked (not relevant) is not listed. Both leave the question's cell empty"),
            ("_flags", "automatic quality flags (e.g. too fast), space-separated"),
            ("calculate columns", "a plain-number result is a number; codes like 01 stay text"),
            ("(field note)", "Qualitative: a note written outside any question (typed text, voice, photo)"),
        ]
        rows += [[a, b] for a, b in legend]
        if self.tally.cut:
            self.result.notes.append(
                f"{self.tally.cut} texts were longer than the data sheet's planned columns; "
                "the whole text is in the Qualitative sheet.")
        if self.result.notes:
            rows.append([])
            rows.append([_bold_cell(ws, "notes"), None])
            rows += [[None, cell(n)] for n in self.result.notes]
        for r in rows:
            ws.append(r)


def _zone_note(zone: str, zone_name: str) -> str:
    if zone == "UTC":
        return "Time in UTC."
    if zone:
        return f"Time in {zone_name} ({zone}), not UTC; the *_utc column beside it is in UTC."
    return ""


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: records must carry aware datetimes")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _value_cell(cell: Callable[[str | None], object], v: str | None) -> object:
    if v is None:
        return None
    if len(v) > 32_767:
        v = v[:32_000] + " …(cut; full value in the data)"
    return cell(v)


def _bold():
    from openpyxl.styles import Font

    return Font(bold=True)


def _bold_cell(ws, text: str) -> WriteOnlyCell:
    c = WriteOnlyCell(ws, text)
    if c.data_type == "f":
        c.data_type = "s"
    c.font = _bold()
    return c


def export_workbook(
    forms: Sequence[Form],
    submissions: Iterable[SubmissionRecord],
    media: Iterable[MediaRecord] = (),
    events: Iterable[EventRecord] = (),
    out: Path | str = "export.xlsx",
    options: ExportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    notes: Iterable[NoteRecord] = (),
    total: int | None = None,
    text_lengths: Mapping[str, int] | None = None,
) -> ExportResult:
    """Write the export workbook to ``out`` (a ``.xlsx`` path, parent folders created; an existing folder
    gets ``<form_id>.xlsx`` inside). Returns the `ExportResult` (``path`` is the file written).

    ``forms``: every version of the form, oldest first (ValueError if empty or of different form_ids).
    ``submissions`` are streamed once; ``media`` and ``notes`` are indexed first; ``events`` streamed
    after. ``progress(done, total)`` is called every 500 submissions read and at the end (``total`` is
    ``len(submissions)`` for a sequence, the ``total`` argument, or 0 when unknown). ``text_lengths``
    maps text question paths to their longest answer so ``q_part2…`` columns are planned (for a list of
    submissions it is computed here). Raises ValueError on a bad option (unknown language) or a naive
    datetime in a record; OSError when ``out`` cannot be written.
    """
    options = options or ExportOptions()
    out = Path(out)
    if out.is_dir() and forms:
        out = out / f"{safe_component(forms[-1].form_id, 'form')}.xlsx"
    if text_lengths is None and isinstance(submissions, Sequence):
        text_lengths = longest_texts(forms, submissions)
    run = _Export(forms, out, options, text_lengths)
    try:
        return run.run(submissions, media, events, notes, progress, total)
    except BaseException:
        _discard(run.wb)
        raise


def _discard(wb: Workbook) -> None:
    """Close the streams of an export that failed and delete openpyxl's temporary files."""
    import contextlib
    import os

    for ws in wb.worksheets:
        writer = getattr(ws, "_writer", None)
        rows = getattr(ws, "_rows", None)
        with contextlib.suppress(Exception):
            if rows is not None:
                rows.close()
        with contextlib.suppress(Exception):
            if writer is not None:
                writer.xf.close()
                writer.close()
        with contextlib.suppress(Exception):
            if writer is not None and isinstance(writer.out, str):
                os.remove(writer.out)


def longest_texts(forms: Sequence[Form], submissions: Iterable[SubmissionRecord]) -> dict[str, int]:
    """Longest answer (UTF-16 units) per text question path, only where it exceeds Excel's cell limit."""
    from exports.cells import EXCEL_CELL_LIMIT, utf16_len

    text_paths = {q.path for f in forms for q in f.questions() if q.type in ("text", "calculate", "hidden")}
    out: dict[str, int] = {}
    for rec in submissions:
        for k, v in rec.answers.items():
            if len(v) > EXCEL_CELL_LIMIT // 2:
                path = _KEY_INDEX.sub("", k)
                if path in text_paths:
                    n = utf16_len(v)
                    if n > EXCEL_CELL_LIMIT and n > out.get(path, 0):
                        out[path] = n
    return out


__all__ = ["ExportOptions", "ExportResult", "export_workbook", "longest_texts", "MergedQuestion",
           "TablePlan"]
