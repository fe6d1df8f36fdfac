"""``suara demo``: a whole field day through the real bot, with no token and no network.

    suara demo                       # data in a new temporary folder (kept, and printed at the end)
    suara demo --data-dir demo-data  # or in a folder of your choice (new or empty)
    suara demo --quiet               # only the summary

Starts the local Bot API emulator on 127.0.0.1 and the real bot (python-telegram-bot, real SQLite file,
real media files) and plays the field day of `bot.demo.script` on the shipped Jambi study forms,
printing the conversation as it happens; then exports both forms and prints where the data is.
Exit codes: 0 done, 1 a step failed (the message names it and what the bot last said), 2 bad options.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HELP = "Play a scripted field day through the real bot and a local Telegram emulator (no token, no network)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` and ``--quiet``."""
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where the SQLite database, media and exports go: a new or empty folder "
                             "(default: a new temporary folder, kept)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary, not the conversation")


def prepare_data_dir(given: Path | None) -> Path:
    """The data directory to use: a new temporary one, or ``given`` if it is new or empty.

    Raises ValueError (one line) when ``given`` is a file or a folder that already holds something (the
    demo's counts would mix with other data).
    """
    if given is None:
        return Path(tempfile.mkdtemp(prefix="suara-demo-"))
    if given.exists() and not given.is_dir():
        raise ValueError(f"--data-dir {given} is a file; give a new or empty folder")
    if given.is_dir() and any(given.iterdir()):
        raise ValueError(f"--data-dir {given} is not empty; give a new or empty folder so the demo's data "
                         "stays apart from other data")
    given.mkdir(parents=True, exist_ok=True)
    return given


def run(args: argparse.Namespace) -> int:
    """Play the demo; see the module doc for the exit codes."""
    try:
        data_dir = prepare_data_dir(args.data_dir)
    except (ValueError, OSError) as exc:
        print(f"suara demo: {exc}", file=sys.stderr)
        return 2

    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:  # a terminal without UTF-8 shows ? for 👤/🤖 instead of failing
        reconfigure(errors="replace")

    from bot.demo.report import format_summary
    from bot.demo.run import DemoFailed, DemoOptions, play

    try:
        summary = play(data_dir.resolve(), sys.stdout, DemoOptions(quiet=args.quiet))
    except DemoFailed as exc:
        sys.stdout.flush()
        print(f"\nsuara demo: FAILED: {exc.message()}", file=sys.stderr)
        print(f"suara demo: the data so far is in {data_dir}", file=sys.stderr)
        return 1
    for line in format_summary(summary):
        print(line)
    return 0
