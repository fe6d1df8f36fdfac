"""Webhook delivery for the emulator: after ``setWebhook``, updates are POSTed to the bot's URL.

Follows https://core.telegram.org/bots/api#setwebhook: one update per request as a JSON body, the
``X-Telegram-Bot-Api-Secret-Token`` header when a secret was set, an update counts as delivered on any
2xx answer and is retried (here after 0.2 s, doubling up to 2 s) otherwise; ``getWebhookInfo`` reports
the last error. Differences from Telegram (documented): plain ``http://`` is accepted for 127.0.0.1 and
localhost (Telegram demands HTTPS on ports 443/80/88/8443), deliveries are sequential (one connection).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.emulator.state import EmulatorState


@dataclass
class WebhookConfig:
    """The webhook set by the bot; ``last_error_*`` as getWebhookInfo reports them (Unix seconds)."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0


class WebhookPusher:
    """A daemon thread that delivers queued updates to :attr:`EmulatorState.webhook` while one is set."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the delivery thread (idempotent)."""
        if self._thread is None:
            self._stopped = False
            self._thread = threading.Thread(target=self._run, name="bot-api-emulator-webhook", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop delivering and join the thread."""
        thread = self._thread
        if thread is None:
            return
        with self._state.lock:
            self._stopped = True
            self._state.cond.notify_all()
        thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        backoff = 0.0
        while True:
            with self._state.lock:
                while not self._stopped and (self._state.webhook is None or not self._state.updates):
                    self._state.cond.wait(0.5)
                if self._stopped:
                    return
                config = self._state.webhook
                queued = self._state.updates[0]
            assert config is not None
            if backoff:
                time.sleep(backoff)
            error = _post(config, queued.payload)
            with self._state.lock:
                if error is None:
                    self._state.updates = [u for u in self._state.updates if u is not queued]
                    config.delivered += 1
                    backoff = 0.0
                else:
                    config.last_error_date = self._state.now()
                    config.last_error_message = error
                    backoff = min(2.0, backoff * 2 or 0.2)
                self._state.notify()


def _post(config: WebhookConfig, payload: dict[str, object]) -> str | None:
    """POST one update; None on a 2xx answer, else Telegram-style error text."""
    headers = {"Content-Type": "application/json"}
    if config.secret_token:
        headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
    req = urllib.request.Request(config.url, data=json.dumps(payload).encode("utf-8"), headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
            return None
    except urllib.error.HTTPError as exc:
        return f"Wrong response from the webhook: {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"Connection failed: {reason}"
