"""`suara backup`: a complete, self-contained backup of the data directory, or `--verify` one.

    suara backup [--out PATH] [--data-dir DIR]    copy database (online) + media + manifest.json
    suara backup --verify PATH                    re-hash every file, integrity-check the database

Exit codes: 0 success; 1 a problem (one line naming the path and the reason on stderr, e.g. an output
folder on a full or read-only disk, or each bad file of a verified backup); 2 bad usage. A failed backup
leaves no partial output folder.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

HELP = "Back up the data directory (database + media + manifest) while the bot runs, or verify a backup."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `suara backup`."""
    parser.add_argument("--out", type=Path, default=None,
                        help="new folder for the backup (default: ./suara-backup-<UTC time>)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data directory to back up (default: $SUARA_DATA_DIR or ./data)")
    parser.add_argument("--verify", type=Path, default=None, metavar="PATH",
                        help="check an existing backup instead of making one")


def run(args: argparse.Namespace) -> int:
    """Make or verify a backup; prints a summary on stdout and problems on stderr."""
    from storage.backup import BackupError, default_backup_path, make_backup, verify_backup
    from storage.db import data_dir, database_url

    if args.verify is not None:
        try:
            problems = verify_backup(args.verify)
        except BackupError as exc:
            print(f"backup verification failed: {exc}", file=sys.stderr)
            return 1
        except (OSError, sqlite3.Error) as exc:  # last resort: never a traceback
            print(f"backup verification failed: {args.verify}: {getattr(exc, 'strerror', None) or exc}",
                  file=sys.stderr)
            return 1
        if problems:
            print(f"backup {args.verify} is NOT intact ({len(problems)} problem(s)):", file=sys.stderr)
            for p in problems:
                print(f"  {p}", file=sys.stderr)
            return 1
        print(f"backup {args.verify} verified: every file matches its manifest; database integrity ok")
        return 0

    ddir = data_dir(args.data_dir)
    out = args.out or default_backup_path()
    try:
        result = make_backup(ddir, out, db_url=database_url(ddir))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:  # last resort: never a traceback
        print(f"backup failed: {out}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    print(f"backup written to {result.path}: {result.files} files, {result.bytes} bytes, "
          f"schema revision {result.revision}")
    print(f"check it any time with: suara backup --verify {result.path}")
    return 0
