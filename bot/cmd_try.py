"""`suara try FORM.xlsx [--lang CODE] [--answers FILE] [--json]`: pilot a form in the terminal.

Runs the form through the same interview engine the bot uses (`questionnaires.engine`), one prompt at a
time, reading one answer per line from FILE or standard input:

* a choice by its number in the list shown or by its name (several, separated by spaces or commas, for
  select_multiple and rank); a choice label typed in full also works;
* ``-`` or ``/skip`` skips the question, ``<`` or ``/back`` goes back to the previous one (the chat
  commands the bot teaches work here too);
* ``lat lon`` (or ``lat, lon``) answers a geopoint;
* a file path answers an image/audio/video/file question (the file must exist; its reference is
  ``<sha256>.<ext>`` and its kind is detected from the bytes, as the bot does);
* ``y`` / ``n`` answers "add another?" of an open-ended repeat.

A refused answer prints the engine's message and the same question is asked again with the next line
(the refused line is consumed). At the end the review and the submission are printed. ``--json`` prints
only the submission JSON on standard output (prompts go to standard error):
``{"instance_id", "form_id", "version", "language", "answers"}`` where ``answers`` is keyed by question
path and repeats are lists of dicts. Exit codes: 0 completed, 1 the form is refused or the answers ran
out before the end, 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import hashlib
import json
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
Exit codes: 0 completed, 1 the form is refused or the answers ran out, 2 usage error.
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


def media_ref(path: Path) -> tuple[str, str]:
    """``("<sha256>.<ext>", kind)`` for a file on disk. Raises OSError when it cannot be read."""
    data = path.read_bytes()
    kind, ext = detect_media(data)
    if kind == "file" and path.suffix:
        ext = path.suffix.lstrip(".").lower() or ext
    return f"{hashlib.sha256(data).hexdigest()}.{ext}", kind


def _choice_tokens(line: str) -> list[str]:
    return [t for t in line.replace(",", " ").replace(";", " ").split() if t]


def to_input(line: str, prompt: Any) -> Any:
    """Turn one typed line into an engine input for ``prompt`` (an `interview.Prompt`).

    Raises ValueError with a printable message for a media path that does not exist.
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
        path = Path(text).expanduser()
        if not text or not path.is_file():
            raise ValueError(f"no such file: {text!r} (give the path of a file)")
        ref, kind = media_ref(path)
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


def _lines(args: argparse.Namespace) -> Iterator[str]:
    if args.answers is not None:
        with open(args.answers, encoding="utf-8-sig") as fh:  # Notepad may add a BOM
            content = fh.read().splitlines()
        yield from content
    else:
        for line in sys.stdin:
            yield line.rstrip("\n")


def run(args: argparse.Namespace) -> int:
    """Run the pilot; returns the exit code (0 completed, 1 refused form or input ran out)."""
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
    instance_id = f"uuid:{uuid.uuid4()}"
    now = datetime.now(LOCAL_ZONE)
    result = engine.start(form, args.lang, now=now, instance_id=instance_id)
    lines = _lines(args)
    try:
        while not isinstance(result, Completed):
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
            print(f"> {line}", file=out)
            now = datetime.now(LOCAL_ZONE)
            try:
                inp = to_input(line, prompt)
            except ValueError as exc:
                print(f"!! {exc}", file=out)
                continue
            result = engine.step(form, result.progress, inp, now=now, instance_id=instance_id)
    except OSError as exc:
        print(f"cannot read the answers: {exc}", file=sys.stderr)
        return 1
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
