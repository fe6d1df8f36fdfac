"""Printing the demo's conversation as it happens: ``👤 Sari: …`` / ``🤖 Suara: …`` with buttons as ``[Label]``.

`ChatPrinter` is an `bot.emulator.Emulator.subscribe` listener: it gets every `bot.emulator.ChatEvent`
(user actions, bot messages, callback answers) and writes readable lines. Edits (an answered question
showing ``✔ value``, a toggled ✓) are left out: the user's own line already says what was chosen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from bot.emulator import ChatEvent

#: Icons for what a user sent (the emulator's transcript text follows them).
USER_ICONS: dict[str, str] = {"voice": "🎤", "audio": "🎵", "photo": "📷", "document": "📎", "video": "🎬"}


@dataclass
class ChatPrinter:
    """Writes chat events to ``out``. ``max_lines``: lines of one bot message shown before ``…``;
    ``max_buttons``: buttons shown per message. ``bot_name`` is how the bot is named in the lines."""

    out: TextIO
    bot_name: str = "Suara"
    max_lines: int = 8
    max_buttons: int = 12
    _chat: int | None = field(default=None, repr=False)

    def say(self, text: str = "") -> None:
        """A narration line (scene titles, shell commands, restarts)."""
        self.out.write(text + "\n")
        self.out.flush()

    def __call__(self, event: ChatEvent) -> None:
        if event.kind in ("edit", "delete"):
            return
        if event.chat_id != self._chat:
            self._chat = event.chat_id
            self.say(f"   ··· chat with {event.name} ···")
        if event.who != "bot":
            self.say(self.user_line(event))
            return
        if event.kind == "answer":
            self.say(f"🤖 {self.bot_name} (pop-up): {event.text}")
            return
        self.say(self.bot_lines(event))

    @staticmethod
    def user_line(event: ChatEvent) -> str:
        """``👤 Sari: /new``, ``👤 Sari: [Ya]`` (a tap), ``👤 Sari: 🎤 [voice 8 s, 20354 bytes]``."""
        text = event.text
        if event.kind == "tap":
            text = f"[{text}]"
        elif event.kind in USER_ICONS:
            text = f"{USER_ICONS[event.kind]} {text}"
        return f"👤 {event.name}: {text}"

    def bot_lines(self, event: ChatEvent) -> str:
        """The bot's message: first line after the name, further lines indented, then the buttons."""
        lines = event.text.splitlines() or [""]
        shown = lines[: self.max_lines]
        if len(lines) > self.max_lines:
            shown.append(f"… ({len(lines) - self.max_lines} more lines)")
        out = [f"🤖 {self.bot_name}: {shown[0]}"] + [f"   {line}" for line in shown[1:]]
        if event.buttons:
            buttons = event.buttons[: self.max_buttons]
            more = f" … +{len(event.buttons) - self.max_buttons}" if len(event.buttons) > self.max_buttons else ""
            out.append("   " + " ".join(f"[{b}]" for b in buttons) + more)
        return "\n".join(out)
