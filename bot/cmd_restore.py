"""`suara restore PATH [--data-dir DIR]`: bring a verified backup back into an empty data directory.

Exit codes: 0 restored; 1 refused or failed (non-empty target, a target that is a file or on a
read-only or full disk, failed verification — one line naming the path and the reason, each problem
named); nothing half-restored is left behind.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

HELP = "Restore a backup made by `suara backup` into an empty data directory."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `suara restore`."""
    parser.add_argument("path", type=Path, help="the backup folder (with manifest.json)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="empty or new data directory (default: $SUARA_DATA_DIR or ./data)")


def run(args: argparse.Namespace) -> int:
    """Verify then restore; prints what was restored or why it was refused."""
    from storage.backup import BackupError, restore_backup
    from storage.db import data_dir

    target = data_dir(args.data_dir)
    try:
        result = restore_backup(args.path, target)
    except BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 1
    except (OSError, sqlite3.Error) as exc:  # last resort: never a traceback
        print(f"restore failed: {target}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    print(f"restored {result.files} files ({result.bytes} bytes) into {result.path}; "
          f"schema revision {result.revision} (upgraded on the next start if older)")
    return 0
