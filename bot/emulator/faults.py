"""Fault injection for the emulator: scripted error answers and dropped connections.

Each fault is consumed by the next matching call(s), in the order they were planned. ``method`` is a
Bot API method name (case-insensitive, like Telegram) or ``"*"`` for any method.
Error shapes follow https://core.telegram.org/bots/api#making-requests (``parameters.retry_after`` for 429).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class PlannedFailure:
    """An error answer for the next ``times`` calls of ``method``."""

    method: str
    status: int
    description: str
    retry_after: int | None = None
    times: int = 1

    def payload(self) -> dict[str, object]:
        """The JSON error body Telegram would send."""
        out: dict[str, object] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


class FaultPlan:
    """Thread-safe queue of planned failures and connection drops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[PlannedFailure] = []
        self._drops: list[tuple[str, bool]] = []
        self._latency: dict[str, float] = {}
        self._flood: list[float] | None = None

    def fail_next(self, method: str, *, status: int, description: str, retry_after: int | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status``/``description``.

        Raises ``ValueError`` for a success status or ``times < 1``.
        """
        if status < 400 or times < 1:
            raise ValueError("fail_next needs an error status (>= 400) and times >= 1")
        with self._lock:
            self._failures.append(PlannedFailure(method.lower(), status, description, retry_after, times))

    def drop_next_connection(self, method: str = "getUpdates", *, after_processing: bool = False) -> None:
        """Close the socket of the next ``method`` call without answering; with ``after_processing`` the
        call takes effect first (e.g. the message is sent) and only the answer is lost."""
        with self._lock:
            self._drops.append((method.lower(), after_processing))

    def take_drop(self, method: str) -> bool | None:
        """None when this call of ``method`` is not dropped; else (consumed) its ``after_processing`` flag."""
        m = method.lower()
        with self._lock:
            for i, (planned, after) in enumerate(self._drops):
                if planned in (m, "*"):
                    del self._drops[i]
                    return after
        return None

    def set_latency(self, seconds: float, method: str = "*") -> None:
        """Delay every answer to ``method`` (or all, ``"*"``) by ``seconds``; 0 removes the delay."""
        if seconds < 0:
            raise ValueError("latency must be >= 0 seconds")
        with self._lock:
            if seconds:
                self._latency[method.lower()] = seconds
            else:
                self._latency.pop(method.lower(), None)

    def latency(self, method: str) -> float:
        """Seconds to wait before answering ``method`` (the method's own setting wins over ``"*"``)."""
        with self._lock:
            return self._latency.get(method.lower(), self._latency.get("*", 0.0))

    def take_failure(self, method: str) -> PlannedFailure | None:
        """The planned failure for this call of ``method`` (consumes one of its ``times``), or None."""
        m = method.lower()
        with self._lock:
            for i, planned in enumerate(self._failures):
                if planned.method in (m, "*"):
                    planned.times -= 1
                    if planned.times <= 0:
                        del self._failures[i]
                    return planned
        return None

    def set_flood_limit(self, per_second: float | None, *, burst: int | None = None) -> None:
        """Answer message-producing calls (send*, edit*, copy/forward) with 429 + ``retry_after`` when
        they exceed ``per_second`` overall (a token bucket holding ``burst`` calls, default one second's
        worth). Telegram's documented ceiling is about 30 messages/s. ``None`` switches it off."""
        with self._lock:
            if per_second is None:
                self._flood = None
            else:
                if per_second <= 0:
                    raise ValueError("per_second must be > 0")
                size = float(burst if burst is not None else max(1, int(per_second)))
                self._flood = [per_second, size, size, time.monotonic()]  # rate, capacity, tokens, last

    def flood_wait(self, method: str) -> int | None:
        """Seconds to tell the client to wait (429) if this call breaks the flood limit, else None."""
        m = method.lower()
        if not m.startswith(("send", "edit", "copy", "forward")):
            return None
        with self._lock:
            if self._flood is None:
                return None
            rate, capacity, tokens, last = self._flood
            now = time.monotonic()
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= 1:
                self._flood[2:] = [tokens - 1, now]
                return None
            self._flood[2:] = [tokens, now]
            return max(1, math.ceil((1 - tokens) / rate))

    def pending(self) -> int:
        """How many planned faults are still waiting (failures count their remaining times)."""
        with self._lock:
            return sum(f.times for f in self._failures) + len(self._drops)
