"""Fault injection for the emulator: scripted error answers and dropped connections.

Each fault is consumed by the next matching call(s), in the order they were planned. ``method`` is a
Bot API method name (case-insensitive, like Telegram) or ``"*"`` for any method.
Error shapes follow https://core.telegram.org/bots/api#making-requests (``parameters.retry_after`` for 429).
"""

from __future__ import annotations

import threading
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
        self._drops: list[str] = []

    def fail_next(self, method: str, *, status: int, description: str, retry_after: int | None = None,
                  times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``status``/``description``.

        Raises ``ValueError`` for a success status or ``times < 1``.
        """
        if status < 400 or times < 1:
            raise ValueError("fail_next needs an error status (>= 400) and times >= 1")
        with self._lock:
            self._failures.append(PlannedFailure(method.lower(), status, description, retry_after, times))

    def drop_next_connection(self, method: str = "getUpdates") -> None:
        """Close the socket of the next ``method`` call without answering."""
        with self._lock:
            self._drops.append(method.lower())

    def take_drop(self, method: str) -> bool:
        """True (and consumed) when the call of ``method`` must be dropped."""
        m = method.lower()
        with self._lock:
            for i, planned in enumerate(self._drops):
                if planned in (m, "*"):
                    del self._drops[i]
                    return True
        return False

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

    def pending(self) -> int:
        """How many planned faults are still waiting (failures count their remaining times)."""
        with self._lock:
            return sum(f.times for f in self._failures) + len(self._drops)
