"""Bot settings: read once at start from arguments, the environment and an optional ``.env`` file.

Precedence is argument > environment > ``.env`` > default. The token is never shown: `Settings` hides it
from ``repr`` and `TokenRedactingFilter` scrubs it from every log record (httpx logs request URLs, and the
Bot API puts the token in the URL path).

Environment variables (issue 4):

=====================  =====================================================================
``TELEGRAM_BOT_TOKEN``  the bot token from @BotFather (``123456789:AA…``), required for ``suara run``
``SUARA_DATA_DIR``      data directory (database, media), default ``./data``
``DATABASE_URL``        SQLAlchemy URL, default ``sqlite:///<data dir>/suara.sqlite3``
``SUARA_ADMIN_IDS``     comma/space separated Telegram user ids of the first researchers
``SUARA_TZ``            IANA time zone for schedules and shown times, default ``Asia/Jakarta`` (WIB)
``SUARA_BOT_API_URL``   optional Bot API base URL (a self-hosted telegram-bot-api server, or the
                        local emulator): ``http://host:port/bot``; ``SUARA_BOT_FILE_URL`` likewise
                        for downloads (``http://host:port/file/bot``)
=====================  =====================================================================
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Shape of a Bot API token: the bot's numeric id, a colon, and a secret of URL-safe characters
#: (Bot API docs, "Authorizing your bot"). Checked before any network call.
TOKEN_RE = re.compile(r"^[0-9]{3,15}:[A-Za-z0-9_-]{20,100}$")

DEFAULT_TZ = "Asia/Jakarta"

HOW_TO_GET_A_TOKEN = (
    "open Telegram, talk to @BotFather, send /newbot, and put the token it gives you in "
    "TELEGRAM_BOT_TOKEN (environment or a .env file next to where you run suara)"
)


class ConfigError(ValueError):
    """A setting is missing or malformed. ``str(error)`` is one line meant for the person running suara."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot needs to start.

    ``token``: Bot API token (hidden from repr). ``data_dir``: directory for the SQLite file and media.
    ``database_url``: SQLAlchemy URL. ``admin_ids``: Telegram user ids made researchers at start.
    ``tz``: IANA zone name used for `telegram.ext.Defaults` and times shown to users (storage keeps UTC).
    ``concurrent_updates``: how many updates (of different chats) are handled at once.
    ``rate_limit_retries``: `AIORateLimiter` max_retries for 429 answers.
    ``api_base_url``/``api_file_url``: Bot API URLs when not Telegram's (empty = api.telegram.org).
    ``connection_pool_size``: keep-alive HTTP connections to the Bot API for sending (`bot.http`);
    requests beyond it wait for a free connection (pool timeout 30 s), they are not dropped.
    ``db_threads``: threads that run the handlers' database work (`bot.services.Services.run`); 0 means
    1 for SQLite (it writes one transaction at a time anyway) and 4 for PostgreSQL.
    """

    token: str = field(repr=False)
    data_dir: Path = Path("data")
    database_url: str = ""
    admin_ids: frozenset[int] = frozenset()
    tz: str = DEFAULT_TZ
    concurrent_updates: int = 64
    rate_limit_retries: int = 2
    connection_pool_size: int = 8
    db_threads: int = 0
    api_base_url: str = ""
    api_file_url: str = ""

    @property
    def zone(self) -> ZoneInfo:
        """`tz` as a ZoneInfo (validated in `load_settings`)."""
        return ZoneInfo(self.tz)

    @property
    def media_dir(self) -> Path:
        """Where the content-addressed media store lives: ``<data_dir>/media``."""
        return self.data_dir / "media"

    def resolved_database_url(self) -> str:
        """`database_url`, or the default SQLite file ``<data_dir>/suara.sqlite3``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'suara.sqlite3').resolve()}"


def check_token(token: str | None) -> str:
    """Return the stripped token, or raise `ConfigError` with a one-line explanation.

    The message never contains the token itself.
    """
    if token is None or not token.strip():
        raise ConfigError(f"TELEGRAM_BOT_TOKEN is not set: {HOW_TO_GET_A_TOKEN}.")
    token = token.strip()
    if not TOKEN_RE.match(token):
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN does not look like a bot token (expected digits, a colon, then about "
            f"35 letters/digits/-/_): {HOW_TO_GET_A_TOKEN}."
        )
    return token


def parse_admin_ids(raw: str | None) -> frozenset[int]:
    """Parse ``"123, 456 789"`` into ``{123, 456, 789}``. Raises ConfigError on a non-number."""
    if not raw:
        return frozenset()
    out: set[int] = set()
    for part in re.split(r"[,\s;]+", raw.strip()):
        if not part:
            continue
        if not re.fullmatch(r"-?[0-9]+", part):
            raise ConfigError(f"SUARA_ADMIN_IDS must be Telegram user ids (numbers), got {part!r}.")
        out.add(int(part))
    return frozenset(out)


def check_tz(name: str) -> str:
    """Return ``name`` if it is a known IANA zone, else raise ConfigError."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"SUARA_TZ={name!r} is not a known time zone (try Asia/Jakarta).") from exc
    return name


def read_dotenv(path: Path) -> dict[str, str]:
    """Values of a ``.env`` file (python-dotenv syntax) without touching ``os.environ``; {} if absent."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def dotenv_file(arg: str | None) -> Path | None:
    """The ``.env`` file a command reads: ``arg`` (its ``--env-file``) must be an existing file, else
    ConfigError — settings silently taken from elsewhere would put invites or answers in the wrong
    database; None means ``./.env``, read only when present; ``""`` means no file at all."""
    if arg is None:
        return Path(".env")
    if arg == "":
        return None
    path = Path(arg)
    if not path.is_file():
        raise ConfigError(f"--env-file {arg}: no such file (leave the option out to read ./.env when present).")
    return path


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    dotenv_path: Path | None = Path(".env"),
    token: str | None = None,
    data_dir: str | Path | None = None,
    database_url: str | None = None,
    require_token: bool = True,
) -> Settings:
    """Build `Settings` from arguments, then ``env`` (default ``os.environ``), then ``.env``, then defaults.

    Raises `ConfigError` (one line) for a missing/malformed token (when ``require_token``), a bad
    admin id list, an unknown time zone, a bad Bot API URL or ``SUARA_DB_THREADS``.
    """
    merged: dict[str, str] = {}
    if dotenv_path is not None:
        merged.update(read_dotenv(dotenv_path))
    merged.update(os.environ if env is None else env)
    raw_token = token if token is not None else merged.get("TELEGRAM_BOT_TOKEN")
    if require_token:
        tok = check_token(raw_token)
    else:
        tok = (raw_token or "").strip()
    ddir = Path(data_dir if data_dir is not None else merged.get("SUARA_DATA_DIR") or "data")
    return Settings(
        token=tok,
        data_dir=ddir,
        database_url=database_url if database_url is not None else merged.get("DATABASE_URL", ""),
        admin_ids=parse_admin_ids(merged.get("SUARA_ADMIN_IDS")),
        tz=check_tz(merged.get("SUARA_TZ") or DEFAULT_TZ),
        api_base_url=check_api_url("SUARA_BOT_API_URL", merged.get("SUARA_BOT_API_URL", "")),
        api_file_url=check_api_url("SUARA_BOT_FILE_URL", merged.get("SUARA_BOT_FILE_URL", "")),
        db_threads=check_db_threads(merged.get("SUARA_DB_THREADS", "")),
    )


def check_db_threads(raw: str) -> int:
    """``SUARA_DB_THREADS`` as a whole number 1..8 (``Settings.db_threads``); empty means 0 (automatic).
    At most 8: each thread holds a pooled database connection while it works, and the pool (5 + 10
    overflow, `storage.db`) is shared with slow work and the scheduler. Raises ConfigError otherwise."""
    raw = raw.strip()
    if not raw:
        return 0
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 8:
        raise ConfigError(f"SUARA_DB_THREADS must be a whole number from 1 to 8 (or empty: 1 for SQLite, "
                          f"4 for PostgreSQL), got {raw!r}.")
    return int(raw)


def check_api_url(name: str, value: str) -> str:
    """A Bot API base URL setting (``SUARA_BOT_API_URL`` / ``SUARA_BOT_FILE_URL``) stripped of spaces, or
    ``""`` when unset. PTB appends the token straight to it (``<url><token>/getMe``), so it must be an
    http(s) URL with a host whose path ends with ``/bot`` (``/file/bot`` for files), as Telegram's and a
    self-hosted telegram-bot-api server's do. Raises `ConfigError` naming the setting otherwise."""
    from urllib.parse import urlsplit

    url = (value or "").strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it raises ValueError for a port out of range
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL ({exc}): e.g. http://127.0.0.1:8081/bot") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must start with http:// or https:// and name a host, e.g. "
                          f"https://api.telegram.org/bot (got {url!r})")
    if not parts.path.endswith("/bot") or parts.query or parts.fragment:
        raise ConfigError(f"{name} must end with /bot (the token is appended to it), e.g. "
                          f"{parts.scheme}://{parts.netloc}{'/file' if 'FILE' in name else ''}/bot (got {url!r})")
    return url


def scrub_token(text: str, token: str) -> str:
    """``text`` with the bot token (also URL-encoded) replaced by ``<token>``: for messages printed to the
    terminal, which the logging filter (`TokenRedactingFilter`) does not see."""
    for variant in {token, token.replace(":", "%3A")}:
        if variant:
            text = text.replace(variant, "<token>")
    return text


class TokenRedactingFilter(logging.Filter):
    """A logging filter that replaces the bot token with ``<token>`` in every record it sees.

    Attach it to the handlers (not loggers) so records from every library pass through it.
    """

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token
        # PTB URL-quotes the token in file download paths (':' -> '%3A').
        self._variants = tuple(v for v in {token, token.replace(":", "%3A")} if v)

    def _scrub(self, text: str) -> str:
        for v in self._variants:
            text = text.replace(v, "<token>")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._variants:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error path
            return True
        scrubbed = self._scrub(msg)
        if scrubbed != msg or record.args:
            record.msg = scrubbed
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Format once, scrubbed, and drop exc_info so the traceback is not re-formatted raw.
            import traceback

            tb = "".join(traceback.format_exception(*record.exc_info))
            record.msg = f"{record.msg}\n{self._scrub(tb)}"
            record.exc_info = None
            record.exc_text = None
        return True


def install_token_filter(token: str, logger: logging.Logger | None = None) -> TokenRedactingFilter:
    """Attach a `TokenRedactingFilter` for ``token`` to every handler of ``logger`` (default: root).

    Also quiets httpx's per-request INFO lines (they carry the URL). Returns the filter.
    """
    flt = TokenRedactingFilter(token)
    target = logger or logging.getLogger()
    for handler in target.handlers:
        handler.addFilter(flt)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return flt
