"""Excel export of submissions: the workbook (About, Codebook, data, repeats, Qualitative, Media, Summary,
Paradata) and the zip bundle with media. Fed plain records (`exports.records`); never imports Telegram.

Entry points (blocking, CPU bound: call from a worker thread in async code)::

    export_workbook(forms, submissions, media=(), events=(), out=Path, options=ExportOptions(),
                    progress=None, *, notes=(), total=None, text_lengths=None) -> ExportResult
    export_bundle(...same...) -> Path            # the .zip
    write_bundle(...same...) -> ExportResult     # result.path is the .zip
"""

from exports.bundle import export_bundle, write_bundle
from exports.records import EventRecord, MediaRecord, NoteRecord, SubmissionRecord
from exports.workbook import ExportOptions, ExportResult, export_workbook

__all__ = [
    "EventRecord", "ExportOptions", "ExportResult", "MediaRecord", "NoteRecord", "SubmissionRecord",
    "export_bundle", "export_workbook", "write_bundle",
]
