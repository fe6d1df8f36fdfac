"""Webhook mode: Telegram POSTs each update to the bot's HTTP server instead of the bot polling for it.

`running_webhook(app, …)` is the webhook twin of `bot.app.running` (long polling): inside an
``async with`` block the app is initialised, `bot.app.on_startup` has run, PTB's webhook server
(tornado, from the ``python-telegram-bot[webhooks]`` extra) listens and ``setWebhook`` has been called.
`serve_webhook` runs that until SIGINT/SIGTERM; ``suara run --webhook URL --listen HOST:PORT`` uses it.

Bot API facts (https://core.telegram.org/bots/api#setwebhook, #getwebhookinfo)
------------------------------------------------------------------------------
- ``setWebhook(url, secret_token, max_connections, allowed_updates, drop_pending_updates)``: Telegram
  POSTs one JSON-serialised ``Update`` per request to ``url`` (HTTPS; ports 443, 80, 88 or 8443 when
  Telegram connects directly; a reverse proxy may forward to any local port). While a webhook is set,
  ``getUpdates`` answers 409.
- ``secret_token``: 1–256 characters from ``A-Z a-z 0-9 _ -``; Telegram sends it in the header
  ``X-Telegram-Bot-Api-Secret-Token`` of every delivery. PTB's server answers 403 to a request without
  it or with another value, so only Telegram (or whoever knows the secret) can inject updates.
- Any 2xx answer confirms the update; on anything else Telegram retries later, and gives up on an
  update after a while (updates are kept at most 24 hours). ``max_connections`` (1–100, default 40) caps
  Telegram's simultaneous HTTPS connections. ``getWebhookInfo`` shows ``pending_update_count`` and the
  ``last_error_date``/``last_error_message`` of failed deliveries.

Restarts and what is lost
-------------------------
The webhook stays set while the bot is stopped: Telegram keeps the updates and retries them, so
nothing sent meanwhile is lost; on start ``setWebhook`` is called again with the same URL and secret and
``drop_pending_updates=False``, and the queued updates arrive. PTB's handler answers 200 as soon as an
update is in the application's queue (before handlers ran); a graceful stop (leaving the block,
SIGINT/SIGTERM under `serve_webhook`) first closes the HTTP server (nothing new is accepted) and then
lets the application handle every update already acknowledged, so a graceful restart loses nothing.
(An update arriving during the stop may be handled while its 200 is cut off with the closing
connection; Telegram then delivers it again after the restart — at least once, never lost.) A
hard kill (SIGKILL, power loss) loses the updates acknowledged but not yet handled — the same window
as PTB's long polling, which confirms updates on the next ``getUpdates`` before handling them. An
update delivered twice (a retry after a lost 200) is applied once: the repository records each
``update_id`` in the answer's transaction.

Several workers (several processes sharing PostgreSQL behind one proxy) each call ``setWebhook`` with
the same URL and secret at start; the call is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import signal
from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

from telegram.ext import Application

from bot.app import running

log = logging.getLogger(__name__)

#: setWebhook's ``secret_token`` rule (Bot API): 1–256 characters, ``A-Z a-z 0-9 _ -``.
SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
#: The header Telegram sends the secret in (Bot API setWebhook).
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def webhook_secret(token: str) -> str:
    """A stable secret derived from the bot token (never the token itself): 32 lowercase hex characters,
    valid as setWebhook ``secret_token`` and as a URL path segment. Stable across restarts and identical
    in every worker, so updates queued at Telegram under the old setting still pass the check."""
    return hashlib.sha256(("suara-webhook:" + token).encode()).hexdigest()[:32]


def check_secret_token(secret: str) -> str:
    """Return ``secret`` if it satisfies the Bot API rule (`SECRET_TOKEN_RE`), else raise ValueError."""
    if not SECRET_TOKEN_RE.fullmatch(secret):
        raise ValueError("the webhook secret token must be 1-256 characters of A-Z a-z 0-9 _ -")
    return secret


def webhook_target(public_base: str, token: str) -> tuple[str, str, str]:
    """``(webhook_url, local_path, secret)`` for ``suara run --webhook public_base``.

    The secret (`webhook_secret`) is both the last segment of the public URL and the header value; the
    local server serves ``/<secret>``, so a reverse proxy publishing the bot under a path prefix strips
    it (nginx: ``location /suara/ { proxy_pass http://127.0.0.1:8443/; }``). Example:
    ``https://example.org/suara`` → ``("https://example.org/suara/<secret>", "/<secret>", "<secret>")``.
    Raises ValueError when ``public_base`` is no http(s) URL."""
    split = urlsplit(public_base)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ValueError(f"--webhook must be an http(s) URL, got {public_base!r}")
    secret = webhook_secret(token)
    return f"{public_base.rstrip('/')}/{secret}", f"/{secret}", secret


@contextlib.asynccontextmanager
async def running_webhook(
    app: Application,
    *,
    webhook_url: str,
    listen_host: str,
    listen_port: int,
    secret_token: str,
    url_path: str | None = None,
    max_connections: int = 40,
    allowed_updates: Sequence[str] | None = None,
    bootstrap_retries: int = 0,
) -> AsyncIterator[Application]:
    """Run ``app`` in webhook mode for the duration of an ``async with`` block.

    ``webhook_url`` is the public URL given to setWebhook; ``listen_host``/``listen_port`` where PTB's
    tornado server listens (plain HTTP: TLS belongs to the reverse proxy); ``url_path`` the path it
    serves (default: the path of ``webhook_url``); ``secret_token`` per `check_secret_token` (ValueError
    otherwise); ``max_connections`` and ``allowed_updates`` go to setWebhook (None keeps Telegram's
    current ``allowed_updates``); ``bootstrap_retries`` as PTB (0: a failing setWebhook raises at once,
    <0: retry forever).

    It is `bot.app.running` with ``updater.start_webhook`` in place of polling: initialise,
    `bot.app.on_startup`, ``updater.start_webhook`` (calls
    setWebhook with ``drop_pending_updates=False``, then listens), ``app.start``; on exit
    ``updater.stop`` (the server closes), ``app.stop`` (every acknowledged update is handled),
    ``app.shutdown``. Errors: `OSError` when the port is taken, `telegram.error.TelegramError` when
    setWebhook fails, `RuntimeError` without the webhooks extra.
    """
    check_secret_token(secret_token)
    path = url_path if url_path is not None else (urlsplit(webhook_url).path or "/")
    assert app.updater is not None
    updater = app.updater

    async def start_webhook() -> None:
        await updater.start_webhook(
            listen=listen_host, port=listen_port, url_path=path.lstrip("/"), webhook_url=webhook_url,
            secret_token=secret_token, max_connections=max_connections, allowed_updates=allowed_updates,
            drop_pending_updates=False, bootstrap_retries=bootstrap_retries,
        )

    async with running(app, start_updates=start_webhook):
        yield app


#: Signals that stop `serve_webhook` gracefully.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)


@contextlib.asynccontextmanager
async def stop_signals(stop: asyncio.Event | None = None) -> AsyncIterator[asyncio.Event]:
    """An event (``stop``, or a new one) that `STOP_SIGNALS` set while the block runs: handlers are
    installed on the running loop where the platform allows and removed on exit. Used by `serve_webhook`
    and `bot.workers.serve_workers` to stop gracefully on Ctrl+C / SIGTERM."""
    event = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, event.set)
            installed.append(sig)
    try:
        yield event
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def serve_webhook(app: Application, *, stop: asyncio.Event | None = None, **kwargs: object) -> None:
    """`running_webhook` (``kwargs`` are its keyword arguments) until ``stop`` is set or one of
    `STOP_SIGNALS` arrives (`stop_signals`); then stops gracefully as `running_webhook` describes."""
    async with stop_signals(stop) as stopped, running_webhook(app, **kwargs):  # type: ignore[arg-type]
        await stopped.wait()
        log.info("stopping: handling the updates already received")
