"""The `suara` command line: one sub-command per job, each in its own module `bot/cmd_<name>.py`.

Each command module exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int`` (the exit
code). Modules are imported lazily so `suara check` never imports Telegram or SQL machinery.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: sub-command -> module under ``bot``
COMMANDS: dict[str, str] = {
    "run": "cmd_run",
    "demo": "cmd_demo",
    "try": "cmd_try",
    "check": "cmd_check",
    "export": "cmd_export",
    "backup": "cmd_backup",
    "restore": "cmd_restore",
    "admin": "cmd_admin",
}


def _available() -> dict[str, object]:
    mods: dict[str, object] = {}
    for name, modname in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(f"bot.{modname}")
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name != f"bot.{modname}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="suara", description="Suara: chat-based field research on Telegram.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, mod in _available().items():
        p = sub.add_parser(name, help=getattr(mod, "HELP", ""), description=getattr(mod, "HELP", ""))
        mod.add_arguments(p)  # type: ignore[attr-defined]
        p.set_defaults(_run=mod.run)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``suara`` console script. Returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
