"""``suara run``: start the Telegram bot (long polling by default, or a webhook behind a reverse proxy).

Settings come from arguments, the environment and ``.env`` (see `bot.config`). A missing or malformed
token prints one line explaining how to get one from @BotFather and exits 2 (no traceback). The token is
scrubbed from every log line.

Webhook mode (``--webhook https://example.org/suara --listen 0.0.0.0:8443``) runs PTB's tornado webhook
server (PTB's ``webhooks`` extra is a dependency of suara); Telegram then calls
``<URL>/<secret>`` with the secret in a header too (the local server serves ``/<secret>``: a proxy
publishing it under a path prefix strips the prefix), and several workers may share one PostgreSQL
database. See `bot.webhook` for restarts and what a graceful stop (SIGINT/SIGTERM) guarantees.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

HELP = "Run the Telegram bot (long polling; --webhook URL --listen HOST:PORT behind a reverse proxy)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``suara run``."""
    parser.add_argument("--data-dir", help="data directory (default: $SUARA_DATA_DIR or ./data)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: $DATABASE_URL or SQLite in the data dir)")
    parser.add_argument("--env-file", default=None, help="a .env file to read (must exist; default: ./.env if present; \"\": none)")
    parser.add_argument("--webhook", metavar="URL", help="public HTTPS base URL Telegram should call (webhook mode)")
    parser.add_argument("--listen", metavar="HOST:PORT", default=None,
                        help="where the webhook server listens (with --webhook; default 127.0.0.1:8443)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="long polling with N bot processes, updates shared out by chat (default 1; see "
                             "bot/workers.py). For webhook mode run several `suara run --webhook` instead")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def parse_listen(value: str) -> tuple[str, int]:
    """``"HOST:PORT"`` -> (host, port). Raises ValueError with a readable message."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen must be HOST:PORT, got {value!r}")
    return host or "0.0.0.0", int(port)


#: Loggers of Suara itself, shown at the chosen ``--log-level``; every other library (httpx, apscheduler,
#: telegram, alembic) logs at WARNING and above only.
OWN_LOGGERS: tuple[str, ...] = ("suara", "bot", "storage", "questionnaires", "exports")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """One stderr handler on the root logger (replacing any installed before, so no line is printed
    twice), root at WARNING, Suara's own loggers (`OWN_LOGGERS`) at ``level``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)
    for name in ("httpx", "httpcore", "apscheduler", "telegram", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def api_host(base_url: str) -> str:
    """The host ``suara run`` talks to: the netloc of ``SUARA_BOT_API_URL``, else ``api.telegram.org``."""
    from urllib.parse import urlsplit

    return urlsplit(base_url).netloc or base_url if base_url else "api.telegram.org"


def reason_of(exc: BaseException) -> str:
    """A short reason for a network error: PTB's message without its ``aiohttp.…:``/``httpx.…:`` class
    prefix."""
    text = getattr(exc, "message", "") or str(exc) or type(exc).__name__
    return text.split(": ", 1)[1] if text.startswith(("aiohttp.", "httpx.", "httpcore.")) and ": " in text else text


def unreachable(host: str, exc: BaseException, base_url: str, token: str) -> str:
    """The one line ``suara run`` prints when the Bot API cannot be reached: the reason (token scrubbed),
    and what to check — the proxy from the environment when one applies (`bot.http.AiohttpRequest.proxy_for`;
    named by host and port only, never its password), else the network and ``SUARA_BOT_API_URL``."""
    from urllib.parse import urlsplit

    from bot.config import scrub_token
    from bot.http import AiohttpRequest

    proxy = AiohttpRequest().proxy_for(base_url or "https://api.telegram.org/bot")
    advice = "check the network or SUARA_BOT_API_URL"
    if proxy:
        try:
            parts = urlsplit(proxy)
            where = f" {parts.hostname}:{parts.port}" if parts.port else f" {parts.hostname or ''}".rstrip()
        except ValueError:
            where = ""
        advice = f"check the proxy{where} (from HTTPS_PROXY/HTTP_PROXY/ALL_PROXY; NO_PROXY skips it)"
    return scrub_token(f"suara run: cannot reach Telegram at {host}: {reason_of(exc)}; {advice}", token)


def refused_token(base_url: str) -> str:
    """The one line printed when the Bot API answers 401/404 to getMe."""
    if base_url:
        return ("suara run: the Bot API at SUARA_BOT_API_URL refused the token (401/404): the token is revoked or "
                "mistyped (get the current one from @BotFather), or SUARA_BOT_API_URL is not a Bot API server.")
    return "suara run: Telegram refused the token (revoked or mistyped): get the current one from @BotFather."


def preflight(token: str, base_url: str, *, timeout_s: float = 10.0) -> Exception | None:
    """Call ``getMe`` once with a throw-away `telegram.Bot` before starting (Bot API method getMe).

    Returns None when Telegram answered, else the error: `telegram.error.InvalidToken` (refused token),
    `telegram.error.NetworkError`/`TimedOut` (no route, DNS, closed port, timeout after ``timeout_s``
    seconds). Unlike PTB's start-up retry loop this logs nothing, so the caller prints one line."""
    import asyncio

    from telegram import Bot
    from telegram.error import TelegramError

    from bot.http import AiohttpRequest

    async def check() -> None:
        request = AiohttpRequest(1, connect_timeout=timeout_s, read_timeout=timeout_s)
        kwargs = {"base_url": base_url} if base_url else {}
        async with Bot(token, request=request, get_updates_request=request, **kwargs) as bot:
            await bot.get_me()

    try:
        asyncio.run(check())
    except TelegramError as exc:
        return exc
    return None


def run(args: argparse.Namespace) -> int:
    """Start the bot; returns the exit code (2 for configuration errors)."""
    from bot.config import ConfigError, dotenv_file, install_token_filter, load_settings

    try:
        settings = load_settings(dotenv_path=dotenv_file(args.env_file),
                                 data_dir=args.data_dir, database_url=args.database_url)
        if args.listen is not None and not args.webhook:
            raise ValueError("--listen is where the webhook server listens: give --webhook URL too, or leave "
                             "--listen out for long polling")
        listen = parse_listen(args.listen or "127.0.0.1:8443") if args.webhook else None
        target: tuple[str, str, str] | None = None
        if not 1 <= args.workers <= 64:
            raise ValueError(f"--workers must be between 1 and 64, got {args.workers}")
        if args.workers > 1 and args.webhook:
            raise ValueError("--workers is for long polling; in webhook mode run several `suara run --webhook` "
                             "processes behind the reverse proxy")
    except (ConfigError, ValueError) as exc:
        print(f"suara run: {exc}", file=sys.stderr)
        return 2
    if args.webhook:
        from bot.webhook import webhook_target

        try:
            target = webhook_target(args.webhook, settings.token)
        except ValueError as exc:
            print(f"suara run: {exc}", file=sys.stderr)
            return 2
    # PTB 22 warns on every RetryAfter/duration read until timedelta values are opted into; Suara reads
    # both shapes (bot.inputs), so the process opts in (an explicit PTB_TIMEDELTA setting is kept)
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    configure_logging(args.log_level)
    install_token_filter(settings.token)
    log = logging.getLogger("suara.run")

    from telegram.error import InvalidToken, NetworkError

    from bot.app import build_application
    from bot.config import scrub_token
    from bot.services import Services
    from bot.workers import WorkerDied

    host = api_host(settings.api_base_url)
    problem = preflight(settings.token, settings.api_base_url)
    if isinstance(problem, InvalidToken):
        print(refused_token(settings.api_base_url), file=sys.stderr)
        return 2
    if problem is not None:
        print(unreachable(host, problem, settings.api_base_url, settings.token), file=sys.stderr)
        return 1
    try:
        services = Services.open(settings)
    except Exception as exc:  # a bad DATABASE_URL, an unwritable data dir: say it in one line
        print(scrub_token(f"suara run: cannot open the database or data directory: {type(exc).__name__}: {exc}",
                          settings.token), file=sys.stderr)
        return 1
    try:
        app = build_application(settings, services=services, base_url=settings.api_base_url or None,
                                base_file_url=settings.api_file_url or None)
        log.info("data directory %s, database %s", settings.data_dir, services.db)
        if target is not None and listen is not None:
            import asyncio

            from bot.webhook import serve_webhook

            url, path, secret = target
            log.info("webhook mode: listening on %s:%s; press Ctrl+C to stop", *listen)
            asyncio.run(serve_webhook(app, webhook_url=url, url_path=path, listen_host=listen[0],
                                      listen_port=listen[1], secret_token=secret))
        elif args.workers > 1:
            import asyncio

            from bot.workers import serve_workers

            cores = os.cpu_count() or 1
            if args.workers > cores:
                log.warning("--workers %d on %d CPU cores: more workers than cores adds memory (~100 MiB each), "
                            "not speed", args.workers, cores)
            log.info("long polling with %d worker processes; press Ctrl+C to stop", args.workers)
            asyncio.run(serve_workers(settings, args.workers, base_url=settings.api_base_url or None,
                                      base_file_url=settings.api_file_url or None))
        else:
            log.info("long polling; press Ctrl+C to stop")
            app.run_polling()
    except InvalidToken:
        print(refused_token(settings.api_base_url), file=sys.stderr)
        return 2
    except NetworkError as exc:  # the network went away between the check and the start
        print(unreachable(host, exc, settings.api_base_url, settings.token), file=sys.stderr)
        return 1
    except WorkerDied as exc:
        print(scrub_token(f"suara run: {exc}; stopped so that a supervisor (systemd, docker) restarts it",
                          settings.token), file=sys.stderr)
        return 1
    finally:
        services.close()
    return 0
