"""``suara admin``: the researcher's basic administration from the shell.

* ``suara admin add TELEGRAM_ID [--role researcher|enumerator]`` — give someone a role.
* ``suara admin invite --role enumerator|respondent [--form FORM_ID] [--uses N] [--days D]`` — make an
  invite and print its deep link ``https://t.me/<bot>?start=<code>``.
* ``suara admin publish FORM.xlsx`` — check and publish a questionnaire (a changed form with answers becomes
  a new version; old submissions keep theirs).

Works on the same data directory / database as ``suara run`` (no token needed).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from pathlib import Path

HELP = "Administration: add people, make invite links, publish forms."

#: Telegram user ids have at most 52 significant bits (Bot API, User.id), so 1 <= id < 2**52.
TELEGRAM_ID_LIMIT = 2**52


def parse_telegram_id(text: str) -> int | None:
    """The Telegram user id written in ``text`` (digits, surrounding spaces allowed), or None when it is
    not a positive whole number below `TELEGRAM_ID_LIMIT` (Bot API: user ids have at most 52 bits)."""
    t = text.strip()
    if not t.isascii() or not t.isdigit() or len(t) > 20:
        return None
    value = int(t)
    return value if 0 < value < TELEGRAM_ID_LIMIT else None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands add / invite / publish."""
    parser.add_argument("--data-dir", help="data directory (default: $SUARA_DATA_DIR or ./data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: $DATABASE_URL or SQLite in the data dir)")
    parser.add_argument("--env-file", default=None, help="a .env file to read (must exist; default: ./.env if present; \"\": none)")
    sub = parser.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="give a Telegram user a role")
    add.add_argument("telegram_id", help="the person's numeric Telegram user id (1 to 2^52-1)")
    add.add_argument("--role", choices=("researcher", "enumerator"), default="researcher")
    inv = sub.add_parser("invite", help="make an invite deep link")
    inv.add_argument("--role", choices=("enumerator", "respondent"), required=True)
    inv.add_argument("--form", dest="form_id", help="form_id the respondent link opens")
    inv.add_argument("--uses", type=int, default=None, help="how many times the link works (default: unlimited)")
    inv.add_argument("--days", type=float, default=None, help="valid for this many days (default: no expiry)")
    inv.add_argument("--bot-username", default=os.environ.get("SUARA_BOT_USERNAME"),
                     help="the bot's @username for the link (default: $SUARA_BOT_USERNAME)")
    pub = sub.add_parser("publish", help="check and publish an XLSForm")
    pub.add_argument("xlsx", type=Path, help="the XLSForm workbook")


def _services(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from bot.config import dotenv_file, load_settings
    from bot.services import Services

    settings = load_settings(dotenv_path=dotenv_file(args.env_file), data_dir=args.data_dir,
                             database_url=args.database_url, require_token=False)
    return Services.open(settings)


def run(args: argparse.Namespace) -> int:
    """Run one admin action; 0 on success, 1 on a refused input (message on stderr), 2 on bad settings."""
    from bot.config import ConfigError

    telegram_id: int | None = None
    if args.admin_command == "add":
        telegram_id = parse_telegram_id(str(args.telegram_id))
        if telegram_id is None:
            print(f"suara admin: {str(args.telegram_id)[:40]!r} is not a Telegram user id (a positive whole "
                  f"number below 2^52)", file=sys.stderr)
            return 1
    try:
        svc = _services(args)
    except ConfigError as exc:
        print(f"suara admin: {exc}", file=sys.stderr)
        return 2
    try:
        if args.admin_command == "add" and telegram_id is not None:
            p = svc.repo.upsert_person(telegram_id, display_name="", language="id", role=args.role, now=svc.now())
            print(f"person {p.telegram_id} is now {p.role}")
            return 0
        if args.admin_command == "invite":
            if args.role == "respondent" and not args.form_id:
                print("suara admin: a respondent invite needs --form FORM_ID", file=sys.stderr)
                return 1
            if args.form_id and svc.repo.active_form_version(args.form_id) is None:
                known = ", ".join(fv.form_id for fv in svc.repo.active_form_versions()) or "none"
                print(f"suara admin: no published form {args.form_id!r} (published: {known})", file=sys.stderr)
                return 1
            if args.uses is not None and args.uses < 1:
                print("suara admin: --uses must be at least 1", file=sys.stderr)
                return 1
            if args.days is not None and not args.days > 0:
                print("suara admin: --days must be more than 0 (leave it out for a link that never expires)",
                      file=sys.stderr)
                return 1
            now = svc.now()
            expires = now + timedelta(days=args.days) if args.days is not None else None
            inv = svc.repo.create_invite(role=args.role, created_by=None, now=now, form_id=args.form_id,
                                         expires_at=expires, max_uses=args.uses)
            bot = (args.bot_username or "").lstrip("@") or "<your_bot>"
            print(f"https://t.me/{bot}?start={inv.code}")
            if bot == "<your_bot>":
                print("(replace <your_bot> with the bot's username, or pass --bot-username)", file=sys.stderr)
            return 0
        if args.admin_command == "publish":
            from questionnaires.errors import FormError
            from questionnaires.xlsform import load_xlsform

            try:
                data = args.xlsx.read_bytes()
            except OSError as exc:
                print(f"suara admin: cannot read {args.xlsx}: {exc.strerror}", file=sys.stderr)
                return 1
            try:
                form = load_xlsform(data, filename=str(args.xlsx))
            except FormError as exc:
                print(f"suara admin: {args.xlsx} was not published:\n{exc}", file=sys.stderr)
                return 1
            fv = svc.repo.publish_form(form, data, now=svc.now())
            print(f"published {fv.form_id} version {fv.version or '-'} ({fv.title}) as form version {fv.id}")
            return 0
    finally:
        svc.close()
    return 1
