"""`suara try FORM.xlsx [--lang CODE] [--answers FILE] [--json]`: pilot a form in the terminal.

Runs the form through the same interview engine the bot uses (`questionnaires.engine`), one prompt at a
time, reading one answer per line from FILE or standard input:

* a choice by its number in the list shown or by its name (several, separated by spaces or commas, for
  select_multiple and rank); a choice label typed in full also works;
* ``-`` or ``/skip`` skips the question, ``<`` or ``/back`` goes back to the previous one (the chat
  commands the bot teaches work here too);
* ``lat lon`` (or ``lat, lon``) answers a geopoint;
* a file path answers an image/audio/video/file question (a readable regular file of at most
  `MAX_MEDIA_BYTES`, the most a bot can download from Telegram; its reference is ``<sha256>.<ext>`` and
  its kind is detected from the bytes, as the bot does). A missing, unreadable or oversized file is
  refused with a message and the question is asked again (the line is consumed, like a refused answer);
* ``y`` / ``n`` answers "add another?" of an open-ended repeat.

A refused answer prints the engine's message and the same question is asked again with the next line
(the refused line is consumed). At the end the review and the submission are printed. ``--json`` prints
only the submission JSON on standard output (prompts go to standard error):
``{"instance_id", "form_id", "version", "language", "answers"}`` where ``answers`` is keyed by question
path and repeats are lists of dicts. Exit codes: 0 completed, 1 the form is refused, the answers
cannot be read or ran out before the end, 2 usage errors (argparse).

Answers are read as UTF-8 (a leading BOM is ignored; lines end with LF, CRLF or CR). An answers file
must be a regular file of at most `MAX_ANSWERS_BYTES` (a device such as /dev/zero, a pipe or a folder
is refused before the interview starts, as `suara check` refuses such form paths); a line that is not
UTF-8 is named by its number. Standard input is read line by line (each line at most
`MAX_LINE_BYTES`); when standard input is closed the pilot says so and exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import stat
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

HELP = "Pilot a form in the terminal: answer it as in chat, print the submission."

#: Interviews happen in Jambi: local wall time is WIB (UTC+7).
LOCAL_ZONE = ZoneInfo("Asia/Jakarta")


#: Largest answers file read (bytes): a scripted interview is a few KB; 10 MB is far beyond any form.
MAX_ANSWERS_BYTES = 10 * 1024 * 1024
#: Longest line read from standard input (bytes); a longer one is refused (e.g. ``< /dev/zero``).
MAX_LINE_BYTES = 64 * 1024
#: Largest media file taken as an answer (bytes): the Bot API lets bots download at most 20 MB
#: (``getFile``; ../shared/design/telegram-notes.md), so the bot could never receive a larger one.
MAX_MEDIA_BYTES = 20 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"


class AnswersError(Exception):
    """The answers cannot be read (file missing, not a regular file, too large, not UTF-8, stdin closed).

    The message is one printable line naming the file (or standard input), the line number where it
    applies, and what to do.
    """


#: Typed words that skip / go back, as in chat (bot/i18n.py teaches ``/skip`` and ``/back``).
SKIP_WORDS = frozenset({"-", "/skip"})
BACK_WORDS = frozenset({"<", "/back"})

ANSWER_SYNTAX = """\
how to answer (one answer per line, typed or from --answers FILE):
  -  or /skip          skip the question (refused when it is required)
  <  or /back          go back to the previous question
  3  or kota           a choice by its number in the list or by its name
  1 3  or ig, tt       several choices for select_multiple / rank (spaces or commas)
  -1.61 103.61         a location: latitude longitude (decimal degrees)
  ./photo.jpg          an image/audio/video/file question: the path of a file
  y  or n              "add another?" of a repeat
A refused answer prints the reason (!!) and the next line is the new try.
Answers are UTF-8 text; an answers file must be a regular file of at most 10 MB, a media file at
most 20 MB (the most a bot can download from Telegram).
Exit codes: 0 completed, 1 the form is refused or the answers cannot be read or ran out, 2 usage error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``FORM``, ``--lang``, ``--answers`` and ``--json``; the answer syntax goes in the epilog."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = ANSWER_SYNTAX
    parser.add_argument("form", type=Path, help="the XLSForm (.xlsx/.xls) to run")
    parser.add_argument("--lang", default=None, help="interview language code (default: the form's)")
    parser.add_argument("--answers", type=Path, default=None,
                        help="file with one answer per line (default: read standard input)")
    parser.add_argument("--json", action="store_true", help="print only the submission as JSON")


def detect_media(data: bytes) -> tuple[str, str]:
    """``(kind, extension)`` of a media file from its first bytes (not its name).

    JPEG (``FF D8 FF``) and PNG -> image; ``OggS`` -> audio (Telegram voice notes are Ogg/Opus);
    MP3 (``ID3`` or an MPEG frame sync) and WAV -> audio; MP4/QuickTime (``ftyp``) -> video;
    anything else -> ``("file", "bin")``.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "image", "jpg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if data.startswith(b"OggS"):
        return "audio", "ogg"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "audio", "mp3"
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "audio", "wav"
    if data[4:8] == b"ftyp":
        return "video", "mp4"
    return "file", "bin"


def media_ref(path: Path, limit: int = MAX_MEDIA_BYTES) -> tuple[str, str]:
    """``("<sha256>.<ext>", kind)`` for a file on disk, hashed in 1 MB chunks (never loaded whole).

    Raises OSError when it cannot be read, ValueError (printable) when it holds more than ``limit``
    bytes (checked while reading: /proc files report size 0).
    """
    h = hashlib.sha256()
    head = b""
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            if not head:
                head = chunk[:64]
            size += len(chunk)
            if size > limit:
                raise ValueError(_too_big_media(str(path), size, limit))
            h.update(chunk)
    kind, ext = detect_media(head)
    if kind == "file" and path.suffix:
        ext = path.suffix.lstrip(".").lower() or ext
    return f"{h.hexdigest()}.{ext}", kind


def _too_big_media(name: str, size: int, limit: int) -> str:
    return (f"{name!r} is over {limit // (1024 * 1024)} MB ({size // (1024 * 1024)} MB or more); a bot can "
            "download at most 20 MB from Telegram, so give a smaller file")


def _media_input(text: str) -> tuple[str, str]:
    """``(ref, kind)`` for a typed media path; ValueError with a printable reason when it is refused."""
    if not text:
        raise ValueError("give the path of a file (or - to skip)")
    path = Path(text).expanduser()
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"no such file: {text!r} (give the path of a file)") from None
    except ValueError:  # an embedded NUL character
        raise ValueError(f"{text!r} is not a file path (it holds a NUL character)") from None
    except OSError as exc:
        raise ValueError(f"cannot read {text!r}: {exc.strerror or exc} (give the path of a readable file)") from None
    if stat.S_ISDIR(st.st_mode):
        raise ValueError(f"{text!r} is a folder, not a file (give the path of a file)")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{text!r} is not a regular file (a device, pipe or socket); give the path of a file")
    if st.st_size > MAX_MEDIA_BYTES:
        raise ValueError(_too_big_media(text, st.st_size, MAX_MEDIA_BYTES))
    try:
        return media_ref(path)
    except OSError as exc:
        raise ValueError(f"cannot read {text!r}: {exc.strerror or exc} (give the path of a readable file)") from None


def _choice_tokens(line: str) -> list[str]:
    return [t for t in line.replace(",", " ").replace(";", " ").split() if t]


def to_input(line: str, prompt: Any) -> Any:
    """Turn one typed line into an engine input for ``prompt`` (an `interview.Prompt`).

    Raises ValueError with a printable message for a media path that is missing, not a regular file,
    unreadable or larger than `MAX_MEDIA_BYTES`.
    """
    from questionnaires.interview import AddRepeat, Back, EndRepeat, MediaRef, Select, Skip, Text

    text = line.strip()
    word = text.casefold()
    if word in SKIP_WORDS:
        return Skip()
    if word in BACK_WORDS:
        return Back()
    if prompt.kind == "repeat":
        if word in ("y", "yes", "ya"):
            return AddRepeat()
        if word in ("n", "no", "tidak"):
            return EndRepeat()
        return Text(text)
    q = prompt.question
    if q is not None and q.is_select:
        names = [c.name for c in prompt.choices]
        visible = set(names) | ({"other"} if q.or_other else set())
        if text in visible:
            return Select((text,))
        if not q.is_multiple:
            if text.isdigit() and 1 <= int(text) <= len(names):
                return Select((names[int(text) - 1],))
            return Text(text)
        picked: list[str] = []
        for tok in _choice_tokens(text):
            if tok in visible:
                picked.append(tok)
            elif tok.isdigit() and 1 <= int(tok) <= len(names):
                picked.append(names[int(tok) - 1])
            else:
                return Text(text)
        return Select(tuple(picked))
    if q is not None and q.is_media:
        ref, kind = _media_input(text)
        return MediaRef(ref=ref, kind=kind)
    return Text(text)


def render_prompt(prompt: Any) -> str:
    """A prompt as terminal text: section, ``[7/~23]``, label (``*`` if required), hint, choices."""
    lines: list[str] = []
    if prompt.group_labels:
        lines.append("== " + " > ".join(prompt.group_labels))
    head = f"[{prompt.number}/~{prompt.total}] " if prompt.number else ""
    star = " *" if prompt.required else ""
    lines.append(f"{head}{prompt.label}{star}")
    if prompt.hint:
        lines.append(f"   ({prompt.hint})")
    for n, c in enumerate(prompt.choices, 1):
        lines.append(f"   {n}. {c.label} [{c.name}]")
    if prompt.question is not None and prompt.question.or_other:
        lines.append("   other. (other)")
    if prompt.kind == "repeat":
        lines.append("   y / n")
    if prompt.current:
        lines.append(f"   current: {prompt.current}")
    return "\n".join(lines)


def nest_answers(answers: dict[str, str]) -> dict[str, Any]:
    """Answers keyed by answer key -> JSON shape: keyed by path, repeats as lists of dicts.

    ``{"a": "1", "hh/m[2]/age": "30"}`` -> ``{"a": "1", "hh/m": [{}, {"hh/m/age": "30"}]}``.
    """
    from questionnaires.model import split_key

    root: dict[str, Any] = {}
    for key, value in answers.items():
        container = root
        path = ""
        segs = split_key(key)
        for name, idx in segs[:-1]:
            path = f"{path}/{name}" if path else name
            if idx is not None:
                items = container.setdefault(path, [])
                while len(items) < idx:
                    items.append({})
                container = items[idx - 1]
        name = segs[-1][0]
        container[f"{path}/{name}" if path else name] = value
    return root


def decode_lines(data: bytes, name: str) -> list[str]:
    """The lines of ``data`` (UTF-8, optional BOM; LF, CRLF or CR endings) as text.

    Raises AnswersError naming ``name`` and the 1-based line number of the first line that is not UTF-8.
    """
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    out: list[str] = []
    for n, raw in enumerate(data.splitlines(), 1):
        out.append(_decode_line(raw, name, n))
    return out


def _decode_line(raw: bytes, name: str, n: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AnswersError(
            f"{name}: line {n} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start + 1}) "
            "— save the answers as UTF-8 (in Notepad: Save as, Encoding UTF-8)"
        ) from None


def read_answers_file(path: Path) -> list[str]:
    """All answer lines of an answers file, read and decoded before the interview starts.

    Raises AnswersError when the file is missing, a folder, not a regular file (a device such as
    /dev/zero, a pipe), larger than `MAX_ANSWERS_BYTES`, unreadable, or has a line that is not UTF-8.
    """
    name = f"answers file {str(path)!r}"
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise AnswersError(f"{name} is a folder — give a text file with one answer per line")
        if not stat.S_ISREG(st.st_mode):
            raise AnswersError(f"{name} is not a regular file (a device, pipe or socket) — give a text file "
                               "with one answer per line")
        with open(path, "rb") as fh:
            data = fh.read(MAX_ANSWERS_BYTES + 1)  # /proc files report size 0: cap the read itself
    except FileNotFoundError:
        raise AnswersError(f"{name} does not exist — check the path") from None
    except OSError as exc:
        raise AnswersError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_ANSWERS_BYTES:
        raise AnswersError(f"{name} is over {MAX_ANSWERS_BYTES // (1024 * 1024)} MB — an answers file holds "
                           "one short line per answer; check that this is the right file")
    return decode_lines(data, name)


def stdin_lines(stream: Any) -> Iterator[str]:
    """Answer lines read one at a time from ``stream`` (standard input; ``None`` when it is closed).

    Raises AnswersError at once for a closed stream, and (when the line is reached) for an unreadable
    stream, a line over `MAX_LINE_BYTES` or a line that is not UTF-8.
    """
    if stream is None or getattr(stream, "closed", False):
        raise AnswersError("standard input is closed: nothing to read the answers from — type them, pipe "
                           "them in, or give --answers FILE")
    return _stdin_iter(stream)


def _stdin_iter(stream: Any) -> Iterator[str]:
    name = "standard input"
    buf = getattr(stream, "buffer", None)
    n = 0
    while True:
        try:
            raw = buf.readline(MAX_LINE_BYTES + 1) if buf is not None else stream.readline()
        except (OSError, ValueError) as exc:  # ValueError: the stream was closed under us
            raise AnswersError(f"cannot read {name}: {getattr(exc, 'strerror', None) or exc}") from None
        if not raw:
            return
        n += 1
        if isinstance(raw, str):
            yield raw.rstrip("\r\n").lstrip("\ufeff") if n == 1 else raw.rstrip("\r\n")
            continue
        if len(raw) > MAX_LINE_BYTES:
            raise AnswersError(f"{name}: line {n} is longer than {MAX_LINE_BYTES // 1024} KB — one short answer "
                               "per line, please")
        if n == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        yield _decode_line(raw.rstrip(b"\r\n"), name, n)


def run(args: argparse.Namespace) -> int:
    """Run the pilot; returns the exit code (0 completed, 1 refused form, unreadable answers, input ran
    out, or the output cannot be written: a closed pipe such as ``| head`` ends quietly, a full disk is
    reported in one line)."""
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (``suara try F | head``): stop quietly, without a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except OSError as exc:
        if exc.filename is not None:  # pragma: no cover - reads are handled where they happen
            raise
        print(f"cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from questionnaires import engine
    from questionnaires.errors import FormError
    from questionnaires.interview import Asked, Completed, Rejected
    from questionnaires.xlsform import load_xlsform

    out: TextIO = sys.stderr if args.json else sys.stdout
    try:
        form = load_xlsform(args.form)
    except FormError as exc:
        print(f"{args.form}: this form cannot be run:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{args.form}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if args.lang and args.lang not in form.language_codes() and form.languages:
        codes = ", ".join(form.language_codes())
        print(f"unknown language {args.lang!r}; this form has: {codes}", file=sys.stderr)
        return 1
    try:
        lines: Iterator[str] = (iter(read_answers_file(args.answers)) if args.answers is not None
                                else stdin_lines(sys.stdin))
    except AnswersError as exc:
        print(exc, file=sys.stderr)
        return 1
    instance_id = f"uuid:{uuid.uuid4()}"
    now = datetime.now(LOCAL_ZONE)
    try:
        result = engine.start(form, args.lang, now=now, instance_id=instance_id)
    except FormError as exc:  # an expression the engine cannot compile (normally caught at load)
        print(f"{args.form}: this form cannot be run:", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        return 1
    fresh = True  # False after a line refused here (media path): the step's notes/error were shown already
    while not isinstance(result, Completed):
        if fresh:
            for note in result.notes if isinstance(result, Asked) else ():
                print(f"-- {note}", file=out)
            if isinstance(result, Rejected):
                print(f"!! {result.error}", file=out)
        prompt = result.prompt
        print(render_prompt(prompt), file=out)
        try:
            line = next(lines)
        except StopIteration:
            print(f"the answers ran out before the end of the form (at {prompt.key!r}: {prompt.label})",
                  file=sys.stderr)
            return 1
        except AnswersError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"> {line}", file=out)
        now = datetime.now(LOCAL_ZONE)
        try:
            inp = to_input(line, prompt)
        except ValueError as exc:
            print(f"!! {exc}", file=out)
            fresh = False
            continue
        fresh = True
        result = engine.step(form, result.progress, inp, now=now, instance_id=instance_id)
    for note in result.notes:
        print(f"-- {note}", file=out)
    progress = result.progress
    data = engine.submission_data(form, progress, now=now, instance_id=instance_id)
    submission = {
        "instance_id": instance_id,
        "form_id": form.form_id,
        "version": form.version,
        "language": progress.language,
        "answers": nest_answers(data),
    }
    if args.json:
        json.dump(submission, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return 0
    print("\n== Review", file=out)
    for item in engine.review(form, progress, now=now, instance_id=instance_id):
        print(f"  {item.label}: {item.value}", file=out)
    print("\n== Submission", file=out)
    print(json.dumps(submission, ensure_ascii=False, indent=2), file=out)
    return 0
