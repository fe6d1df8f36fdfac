"""A readable transcript of what happens in the emulated chats (for ``suara demo`` and test failures).

Every user action and every bot message, edit, deletion and callback answer becomes a
:class:`ChatEvent`; :meth:`ChatEvent.line` renders it as one line such as ``Ana → /start F1`` or
``bot → Umur Anda? (2/9) [Ya | Tidak]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChatEvent:
    """One thing that happened in a chat.

    ``who`` is ``"user"`` or ``"bot"``; ``kind`` one of text, command, tap, location, live_location, voice,
    audio, photo, document, video, video_note, sticker, contact, edit, delete, answer, block, unblock,
    message (anything else). ``at`` is Unix time (seconds). ``buttons`` lists inline button labels
    (or reply-keyboard labels) shown with a bot message.
    """

    at: float
    chat_id: int
    who: str
    name: str
    kind: str
    text: str
    message_id: int | None = None
    buttons: list[str] = field(default_factory=list)

    def line(self, width: int = 160) -> str:
        """One printable line (text shortened to ``width`` characters)."""
        text = self.text.replace("\n", " ⏎ ")
        if len(text) > width:
            text = text[: width - 1] + "…"
        arrow = {"edit": "✎", "delete": "✗", "answer": "↩", "tap": "☞"}.get(self.kind, "→")
        who = "bot" if self.who == "bot" else self.name
        tail = f" [{' | '.join(self.buttons)}]" if self.buttons else ""
        return f"{who} {arrow} {text}{tail}"


_MEDIA = ("voice", "audio", "photo", "document", "video", "video_note", "sticker")


def describe_user_update(kind: str, obj: dict[str, Any], label: str | None = None) -> tuple[str, str]:
    """``(event kind, text)`` for an update a scripted user produced."""
    if kind == "callback_query":
        return "tap", label if label is not None else f"(data {obj.get('data')!r})"
    if kind == "my_chat_member":
        status = obj["new_chat_member"]["status"]
        return ("block", "blocked the bot") if status == "kicked" else ("unblock", "unblocked the bot")
    msg = obj
    if "location" in msg:
        loc = msg["location"]
        what = "live_location" if kind == "edited_message" or "live_period" in loc else "location"
        return what, f"📍 {loc['latitude']:.5f}, {loc['longitude']:.5f}"
    if "contact" in msg:
        return "contact", f"☎ {msg['contact']['phone_number']}"
    for media in _MEDIA:
        if media in msg:
            info = msg[media][-1] if media == "photo" else msg[media]
            size = info.get("file_size", 0)
            extra = f" {info['duration']} s" if "duration" in info else ""
            name = f" {info['file_name']}" if info.get("file_name") else ""
            caption = f" “{msg['caption']}”" if msg.get("caption") else ""
            return media, f"[{media}{name}{extra}, {size} bytes]{caption}"
    text = msg.get("text", "")
    if kind == "edited_message":
        return "edit", text
    entities = msg.get("entities") or []
    if any(e.get("type") == "bot_command" and e.get("offset") == 0 for e in entities):
        return "command", text
    return ("text", text) if "text" in msg else ("message", "(message)")
