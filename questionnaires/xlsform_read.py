"""Reading the bytes of an XLSForm into pyxform's workbook structure, and turning pyxform errors into ours.

Everything here goes through pyxform's own readers (``pyxform.xls2json_backends``: xlsx/xlsm via
openpyxl, xls via xlrd, the CSV and markdown-table formats); Suara has no spreadsheet parser of its own.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import (
    DefinitionData,
    csv_to_dict,
    md_to_dict,
    xls_to_dict,
    xlsx_to_dict,
)

from questionnaires.errors import FormError, FormProblem

_READERS = {
    ".xlsx": xlsx_to_dict,
    ".xlsm": xlsx_to_dict,
    ".xls": xls_to_dict,
    ".csv": csv_to_dict,
    ".md": md_to_dict,
}
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
#: A password-protected .xlsx is an OLE2 container holding a stream of this name (MS-OFFCRYPTO §2.3.4.4);
#: its directory entry spells the name in UTF-16.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_WHAT_TO_DO = (
    "Save the form from Excel, LibreOffice or Google Sheets as an .xlsx workbook with a sheet named "
    "\"survey\" and try again."
)


#: Largest form file read from a path, in bytes (a device such as /dev/zero would otherwise be read forever).
MAX_FORM_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A form's bytes with what we know about where they came from.

    ``name`` is the file name for messages (``"form.xlsx"``, or ``"<bytes>"``); ``stem`` the name
    without suffix (the default form_id) or ``None``; ``directory`` the folder beside the form (for
    select_one_from_file CSVs) or ``None``.
    """

    data: bytes
    name: str
    suffix: str
    stem: str | None
    directory: Path | None


def open_source(source: str | Path | bytes, filename: str | None = None) -> SourceFile:
    """Read ``source`` (a path, or the bytes of a file) into a `SourceFile`.

    ``filename`` names bytes (its suffix chooses the reader, its stem the default form_id, its folder
    the place of select_one_from_file CSVs when that folder exists). Raises FormError (code
    ``"file-missing"`` / ``"file-unreadable"``) when a path cannot be read or is not a regular file
    (a device, a pipe), ``"too-large"`` when it is over `MAX_FORM_BYTES`.
    """
    if isinstance(source, bytes | bytearray):
        name = filename or "<bytes>"
        p = Path(filename) if filename else None
        directory = p.parent if p is not None and str(p.parent) not in ("", ".") and p.parent.is_dir() else None
        return SourceFile(
            data=bytes(source),
            name=p.name if p else name,
            suffix=p.suffix.lower() if p else "",
            stem=p.stem if p else None,
            directory=directory,
        )
    if isinstance(source, str) and ("\n" in source or source.lstrip().startswith("|")):
        raise FormError.single(
            "this looks like the text of a form, not a file path — give the path of the .xlsx file "
            "(markdown tables go to load_markdown).",
            code="file-missing",
        )
    path = Path(source)
    try:
        if path.exists() and not path.is_dir() and not path.is_file():
            raise FormError.single(
                f"{str(path)!r} is not a regular file (a device, pipe or socket) — give the path of the "
                ".xlsx file.",
                code="file-unreadable",
            )
        size = path.stat().st_size
        if size > MAX_FORM_BYTES:
            raise FormError.single(
                f"{str(path)!r} is {size // (1024 * 1024)} MB; a form file may be at most "
                f"{MAX_FORM_BYTES // (1024 * 1024)} MB (a 10,000-question form is well under 5 MB) — check "
                "that this is the form, or save only its survey, choices and settings sheets.",
                code="too-large",
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormError.single(
            f"file {str(path)!r} does not exist — check the path and the spelling of the file name.",
            code="file-missing",
        ) from None
    except IsADirectoryError:
        raise FormError.single(
            f"{str(path)!r} is a folder, not a form file — give the path of the .xlsx file.",
            code="file-unreadable",
        ) from None
    except OSError as exc:
        raise FormError.single(
            f"cannot read {str(path)!r}: {exc.strerror or exc} — check the file's permissions.",
            code="file-unreadable",
        ) from None
    except ValueError:  # e.g. "embedded null byte": no file can have this name
        raise FormError.single(
            f"{str(path)!r} is not a usable file name (it holds a NUL character) — give the path of the .xlsx file.",
            code="file-missing",
        ) from None
    fname = filename or path.name
    return SourceFile(
        data=data,
        name=fname,
        suffix=Path(fname).suffix.lower(),
        stem=Path(fname).stem,
        directory=path.resolve().parent,
    )


def _sniff(data: bytes) -> str:
    if data.startswith(_ZIP_MAGIC):
        return ".xlsx"
    if data.startswith(_OLE_MAGIC):
        return ".xls"
    head = data[:5000].decode("utf-8", errors="replace")
    if head.count("|") >= 5:
        return ".md"
    if head.count(",") >= 4:
        return ".csv"
    return ""


def text_as_utf8(data: bytes, name: str) -> bytes:
    """The bytes of a text form (XLSForm CSV, markdown) as UTF-8 without a byte order mark.

    UTF-16 (what Excel's "Unicode Text" and some Windows tools write; with a byte order mark, or
    detected by its zero bytes) is converted. Raises FormError ``"not-utf8"`` naming the line of the
    first byte that is not UTF-8 (a CSV saved as Windows-1252/Latin-1), with what to do.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif _mostly_zero(data[1:200:2]) and len(data) % 2 == 0:
        encoding = "utf-16-le"
    elif _mostly_zero(data[0:200:2]) and len(data) % 2 == 0:
        encoding = "utf-16-be"
    else:
        encoding = "utf-8-sig"  # a UTF-8 byte order mark would become part of the first sheet name
    try:
        return data.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FormError.single(
            f"{name} is not UTF-8 text: line {line} has the byte 0x{data[exc.start]:02x}, which UTF-8 does not "
            "allow (the file was probably saved as Windows-1252 or Latin-1). Save it again as \"CSV UTF-8\" "
            "(Excel) or with the character set Unicode (UTF-8) (LibreOffice), or save the form as .xlsx.",
            code="not-utf8",
        ) from None


def _mostly_zero(sample: bytes) -> bool:
    """True when at least 80 % of ``sample`` (every other byte of a text) is zero: UTF-16 of mostly ASCII."""
    return len(sample) >= 4 and sample.count(0) >= 0.8 * len(sample)


#: Largest total unpacked size of the XML parts (sheets, shared strings) of an .xlsx form, in bytes.
#: A 10,000-question form unpacks to a few MB; a few hundred KB of zip can declare gigabytes ("zip
#: bomb"), which the reader would try to hold in memory. Pictures pasted into the workbook don't count.
MAX_UNPACKED_BYTES = 64 * 1024 * 1024


def _check_inflated_size(src: SourceFile) -> None:
    """Refuse an .xlsx whose XML parts unpack to more than `MAX_UNPACKED_BYTES` (FormError ``"too-large"``).

    Python's zipfile never inflates a member beyond the size its directory declares, so the declared
    sizes are a safe bound. A file that is not a readable zip is left to the reader's own error.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(src.data)) as zf:
            total = sum(info.file_size for info in zf.infolist() if info.filename.lower().endswith((".xml", ".rels")))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return
    if total > MAX_UNPACKED_BYTES:
        raise FormError.single(
            f"{src.name} unpacks to {total // (1024 * 1024)} MB, more than the {MAX_UNPACKED_BYTES // (1024 * 1024)} MB "
            "a form may take — a form of even 10,000 questions unpacks to a few MB. Save only the survey, "
            "choices and settings sheets in a new workbook.",
            code="too-large",
        )


def _password_protected(src: SourceFile) -> FormError:
    return FormError.single(
        f"{src.name} is protected with a password, so it cannot be read — open it in Excel, remove the "
        "password (File > Info > Protect Workbook > Encrypt with Password, clear it) and save it again; "
        "or in LibreOffice: File > Save As, without \"Save with password\".",
        code="password-protected",
    )


def read_workbook(src: SourceFile) -> DefinitionData:
    """Parse ``src`` with the pyxform backend for its kind.

    Raises FormError ``"not-a-spreadsheet"`` (with the reader's reason, shortened),
    ``"password-protected"``, ``"not-utf8"`` (a text form in another encoding), ``"too-large"`` (an .xlsx
    unpacking to more than `MAX_UNPACKED_BYTES`) or ``"duplicate-column"``.
    """
    suffix = src.suffix if src.suffix in _READERS else ""
    sniffed = _sniff(src.data)
    # The content decides between binary formats: a .xls that is really an .xlsx still reads.
    if sniffed in (".xlsx", ".xls"):
        kind = sniffed
    else:
        kind = suffix or sniffed
    if not kind or (suffix in (".xlsx", ".xlsm", ".xls") and sniffed not in (".xlsx", ".xls")):
        raise FormError.single(
            f"{src.name} is not a spreadsheet (not an .xlsx/.xls workbook, nor an XLSForm CSV). {_WHAT_TO_DO}",
            code="not-a-spreadsheet",
        )
    data = src.data
    if kind == ".xlsx":
        _check_inflated_size(src)
    if kind == ".xls" and _ENCRYPTED_PACKAGE in data:
        raise _password_protected(src)
    if kind in (".csv", ".md"):
        data = text_as_utf8(data, src.name)
    try:
        book: dict[str, Any] = _READERS[kind](data)
    except PyXFormError as exc:
        dup = _DUP_HEADER.search(str(exc))
        if dup:
            raise FormError.single(
                f"two columns have the same header {dup.group(1).strip()!r} — delete or rename one of them "
                "(for several languages use label::Indonesian (id), label::English (en)…).",
                code="duplicate-column", row=1,
            ) from None
        raise FormError.single(
            f"{src.name} could not be read as a {kind} file ({_short(_clean(str(exc)))}). {_WHAT_TO_DO}",
            code="not-a-spreadsheet",
        ) from None
    except Exception as exc:  # noqa: BLE001 — any reader failure means "not a readable spreadsheet"
        if kind == ".xls" and "encrypted" in str(exc).lower():
            raise _password_protected(src) from None  # a legacy .xls with a password (xlrd's words)
        raise FormError.single(
            f"{src.name} could not be read as a {kind} file ({_short(f'{type(exc).__name__}: {exc}')}). "
            f"{_WHAT_TO_DO}",
            code="not-a-spreadsheet",
        ) from None
    try:
        return DefinitionData(fallback_form_name=src.stem, **book)
    except TypeError:
        # A sheet name pyxform lists but DefinitionData has no slot for: keep the known ones.
        known = set(DefinitionData.__slots__)
        return DefinitionData(fallback_form_name=src.stem, **{k: v for k, v in book.items() if k in known})


# ---------------------------------------------------------------------------------- pyxform errors
_DUP_HEADER = re.compile(r"Duplicate column header:\s*(.+)$")
_BAD_HEADER = re.compile(r"Invalid headers provided for sheet: '(\w+)'")
_ROW = re.compile(r"\[row\s*:\s*(\d+)\]")
_SHEET = re.compile(r"(?:On|on) the '(\w+)' sheet")
_COLUMN = re.compile(r"the '([\w:\- ]+)' (?:value|column)")
_CHOICES_HINTS = ("Choice names must be unique", "choice list", "choices sheet has")


def _clean(msg: str) -> str:
    return " ".join(msg.split())


def _short(detail: str, limit: int = 160) -> str:
    """A reader's error detail cut to ``limit`` characters: a damaged zip makes the xlsx reader quote
    kilobytes of raw bytes, which say nothing to a researcher."""
    detail = "".join(ch if ch.isprintable() else "?" for ch in detail)
    return detail if len(detail) <= limit else detail[: limit - 1] + "…"


def problem_from_pyxform(exc: PyXFormError) -> FormProblem:
    """A `FormProblem` from a pyxform error: sheet, row and column from its context or its message text.

    pyxform writes rows as ``[row : 62]`` and often the sheet and column in words (``On the 'choices'
    sheet, the 'name' value is invalid``); both forms are understood. The message keeps pyxform's
    wording (it says what is wrong) and adds what to do for the common cases.
    """
    text = _clean(str(exc))
    ctx = getattr(exc, "context", {}) or {}
    row: int | None = None
    if isinstance(ctx.get("row"), int):
        row = ctx["row"]
    else:
        m = _ROW.search(text)
        if m:
            row = int(m.group(1))
    sheet = ctx.get("sheet") if isinstance(ctx.get("sheet"), str) else None
    if sheet is None:
        m = _SHEET.search(text)
        if m:
            sheet = m.group(1)
    column = ctx.get("column") if isinstance(ctx.get("column"), str) else None
    if column is None:
        m = _COLUMN.search(text)
        if m:
            column = m.group(1)
    message = _ROW.sub("", text).strip()
    low = message.lower()
    code = "pyxform"
    header = _BAD_HEADER.search(message)
    if header:
        # About a header row (e.g. a choices sheet without a name column): row 1 of that sheet.
        sheet, row, code = header.group(1), 1, "bad-header"
        missing = re.search(r"were not found: '([^']+)'", message)
        column = column or (missing.group(1) if missing else None)
        hint = " — add the missing column (its header goes in row 1)."
        message = message.replace(". Learn more:", hint + " Learn more:", 1) if ". Learn more:" in message else message + hint
    elif "list name not in columns sheet" in low:
        # pyxform's words for ``begin loop over <list>`` with an unknown list.
        code = "missing-choice-list"
        column = column or "type"
        message += " — 'begin loop over' needs a list of that name on the choices sheet; add it or correct the name."
    elif "list name not in choices sheet" in low:
        code = "missing-choice-list"
        column = column or "type"
        message += " — add this list to the choices sheet (list_name column) or correct the list name."
    elif "choice names must be unique" in low:
        code = "duplicate-choice-name"
        sheet = sheet or "choices"
        message += (
            " (Give every choice in a list its own name, or add allow_choice_duplicates = yes on the "
            "settings sheet if the repetition is intended.)"
        )
    elif "must be unique within their nearest parent" in low or "duplicate" in low and "name" in low:
        code = "duplicate-name"
        column = column or "name"
        message += " Rename one of the two rows."
    elif "could not find the name" in low:
        code = "unknown-reference"
    elif "appears more than once" in low:
        code = "ambiguous-reference"
    elif "names must begin with a letter" in low:
        code = "invalid-name"
    elif "should be a choices sheet" in low:
        code = "missing-choices-sheet"
    elif "unmatched" in low or "end group" in low or "end repeat" in low:
        code = "unmatched-group"
        column = column or "type"
    elif "no type" in low:
        code = "missing-type"
        column = column or "type"
    elif "no name" in low:
        code = "missing-name"
        column = column or "name"
    elif "missing calculation" in low:
        code = "missing-calculation"
        column = column or "calculation"
    if row is not None and sheet is None and not any(h in message for h in _CHOICES_HINTS):
        sheet = "survey"
    return FormProblem(sheet=sheet, row=row, column=column, code=code, message=message)

