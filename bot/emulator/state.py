"""In-memory state of the emulated Bot API: chats, messages, keyboards, files, callback queries, updates.

Everything here is guarded by one re-entrant lock (:attr:`EmulatorState.lock`); :attr:`EmulatorState.cond`
is notified after every bot call and every scripted-user action so tests can wait on conditions.
Wire dictionaries follow the Bot API object shapes (https://core.telegram.org/bots/api#available-types)
with the fields python-telegram-bot needs to ``de_json`` them. Times are Unix seconds (UTC).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.transcript import ChatEvent, describe_user_update

#: Bots may download files of at most this many bytes (20 MiB on the Bot API server; PTB's
#: FileSizeLimit.FILESIZE_DOWNLOAD is the slightly stricter 20e6).
FILESIZE_DOWNLOAD = 20 * 1024 * 1024

#: Update types Telegram sends when ``allowed_updates`` is empty or was never given.
DEFAULT_UPDATE_TYPES = frozenset({
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "inline_query",
    "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media",
    "poll", "poll_answer", "my_chat_member", "chat_join_request", "chat_boost", "removed_chat_boost",
})


@dataclass
class ApiCall:
    """One Bot API call as the emulator saw it.

    ``params`` holds the decoded parameters (uploaded files shown as ``<file ...>``), ``at`` is Unix time
    (seconds, float), ``status`` the HTTP status answered (0 when the connection was dropped) and
    ``description`` the error description for non-200 answers.
    """

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    description: str | None = None


@dataclass
class FileRecord:
    """A file known to the emulator (sent by a scripted user or uploaded by the bot).

    ``data`` is None for big-file stubs (declared ``file_size`` only). ``file_path`` is relative, as
    getFile returns it; downloads are served at ``/file/bot<token>/<file_path>``.
    """

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes | None
    file_size: int
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None

    def wire(self) -> dict[str, Any]:
        """The common file fields (file_id, file_unique_id, file_size, plus name/mime/dims when known)."""
        out: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                               "file_size": self.file_size}
        if self.file_name is not None:
            out["file_name"] = self.file_name
        if self.mime_type is not None:
            out["mime_type"] = self.mime_type
        if self.width is not None:
            out["width"] = self.width
            out["height"] = self.height
        if self.duration is not None:
            out["duration"] = self.duration
        return out


@dataclass
class BotMessage:
    """A message the bot sent to a chat, as the user would see it.

    ``text``/``caption`` are what is displayed (HTML tags parsed away); ``raw_text``/``raw_caption`` are
    what the bot sent. ``reply_markup`` is the inline keyboard attached to the message (None when none);
    ``reply_keyboard`` is the reply keyboard (or ``{"remove_keyboard": true}``) sent along with it.
    ``file`` holds the uploaded document/photo/audio bytes. ``history`` lists earlier texts/captions
    (one entry per edit). ``seq`` is the emulator-wide change counter at the last change, ``changed_at``
    its ``time.perf_counter()``.
    """

    message_id: int
    chat_id: int
    date: int
    kind: str = "text"
    text: str | None = None
    raw_text: str | None = None
    parse_mode: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    caption: str | None = None
    raw_caption: str | None = None
    caption_entities: list[dict[str, Any]] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None
    reply_keyboard: dict[str, Any] | None = None
    file: FileRecord | None = None
    photo_sizes: list[FileRecord] = field(default_factory=list)
    location: tuple[float, float] | None = None
    reply_to_message_id: int | None = None
    edited: bool = False
    edit_date: int | None = None
    history: list[str | None] = field(default_factory=list)
    deleted: bool = False
    seq: int = 0
    #: ``time.perf_counter()`` in the emulator process at the last change (benchmarks time replies with it)
    changed_at: float = 0.0

    @property
    def shown_text(self) -> str:
        """The text, or the caption for media messages, or ``""``."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def data(self) -> bytes | None:
        """The bytes of the document/photo/audio the bot uploaded with this message (None if none)."""
        return self.file.data if self.file is not None else None

    def inline_buttons(self) -> list[list[tuple[str, str | None]]]:
        """Rows of ``(label, callback_data)`` of the inline keyboard (``callback_data`` None for URL buttons)."""
        if not self.reply_markup:
            return []
        return [[(b.get("text", ""), b.get("callback_data")) for b in row]
                for row in self.reply_markup.get("inline_keyboard", [])]


@dataclass
class CallbackRecord:
    """A callback query a scripted user created by tapping; ``answered`` once answerCallbackQuery came."""

    query_id: str
    chat_id: int
    message_id: int
    data: str
    update_id: int
    at: float
    answered: bool = False
    answer_text: str | None = None
    show_alert: bool = False
    url: str | None = None


@dataclass
class ChatRecord:
    """A private chat between one scripted user and the bot (chat id == user id)."""

    user: dict[str, Any]
    blocked: bool = False
    reply_keyboard: dict[str, Any] | None = None
    reply_keyboard_hidden: bool = False
    next_message_id: int = 1
    bot_messages: dict[int, BotMessage] = field(default_factory=dict)
    user_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    menu_button: dict[str, Any] | None = None

    @property
    def chat_id(self) -> int:
        return int(self.user["id"])

    def chat_wire(self) -> dict[str, Any]:
        """The ``Chat`` object of this private chat."""
        out: dict[str, Any] = {"id": self.chat_id, "type": "private", "first_name": self.user["first_name"]}
        if self.user.get("username"):
            out["username"] = self.user["username"]
        return out

    def take_message_id(self) -> int:
        """The next message id (private chats share one sequence for both sides)."""
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


@dataclass
class QueuedUpdate:
    """An update waiting for confirmation. ``forced`` marks a re-delivery that ignores the offset once."""

    update_id: int
    payload: dict[str, Any]
    forced: bool = False
    returned: bool = False

    @property
    def type(self) -> str:
        return next(k for k in self.payload if k != "update_id")


class EmulatorState:
    """All mutable emulator state; every method must be called with :attr:`lock` held (it is re-entrant)."""

    def __init__(self, *, token: str, bot_username: str, on_new_update: Callable[[], None],
                 on_notify: Callable[[set[int]], None] | None = None) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id, "is_bot": True, "first_name": "Suara Test Bot", "username": bot_username,
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False,
            "can_connect_to_business": False, "has_main_web_app": False,
        }
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._on_new_update = on_new_update
        self._on_notify = on_notify
        #: one condition per chat (sharing :attr:`lock`) so per-user waits don't wake every waiter
        self.chat_conds: dict[int, threading.Condition] = {}
        self._dirty_chats: set[int] = set()
        self.chats: dict[int, ChatRecord] = {}
        self.files: dict[str, FileRecord] = {}
        self.files_by_path: dict[str, FileRecord] = {}
        self.updates: list[QueuedUpdate] = []
        self.archive: dict[int, dict[str, Any]] = {}
        self.next_update_id = 100_001
        self.callbacks: dict[str, CallbackRecord] = {}
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.calls: list[ApiCall] = []
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.default_menu_button: dict[str, Any] = {"type": "commands"}
        self.descriptions: dict[tuple[str, str], str] = {}
        self.seq = 0
        self._ids = itertools.count(1)
        #: set by setWebhook (then updates are pushed, getUpdates answers 409); type WebhookConfig
        self.webhook: Any = None
        #: chronological transcript of every chat, and callbacks called with each new event
        self.events: list[ChatEvent] = []
        self.listeners: list[Callable[[ChatEvent], None]] = []

    # -- bookkeeping -------------------------------------------------------------------------------
    def bump(self, chat_id: int | None = None) -> int:
        """Advance and return the change counter; ``chat_id`` marks that chat as changed for :meth:`notify`."""
        self.seq += 1
        if chat_id is not None:
            self._dirty_chats.add(chat_id)
        return self.seq

    def chat_cond(self, chat_id: int) -> threading.Condition:
        """The condition notified when something in chat ``chat_id`` changes."""
        cond = self.chat_conds.get(chat_id)
        if cond is None:
            cond = self.chat_conds[chat_id] = threading.Condition(self.lock)
        return cond

    def notify(self) -> None:
        """Wake global waiters and the waiters of chats changed since the last call (lock must be held)."""
        self.cond.notify_all()
        dirty = self._dirty_chats
        self._dirty_chats = set()
        for chat_id in dirty:
            cond = self.chat_conds.get(chat_id)
            if cond is not None:
                cond.notify_all()
        if self._on_notify is not None:
            self._on_notify(dirty)

    def now(self) -> int:
        return int(time.time())

    def new_file(self, kind: str, data: bytes | None, *, file_size: int | None = None, ext: str = "bin",
                 folder: str | None = None, **meta: Any) -> FileRecord:
        """Register a file and give it ids and a relative ``file_path`` like ``voice/file_3.oga``."""
        n = next(self._ids)
        digest = hashlib.sha1(f"{n}:{kind}".encode()).hexdigest()
        size = len(data) if data is not None and file_size is None else int(file_size or 0)
        rec = FileRecord(
            file_id=f"F{kind[:2].upper()}{n:06d}{digest[:18]}",
            file_unique_id=f"U{n:06d}{digest[18:26]}",
            kind=kind, data=data, file_size=size,
            file_path=f"{folder or kind + 's'}/file_{n}.{ext}", **meta,
        )
        self.files[rec.file_id] = rec
        self.files_by_path[rec.file_path] = rec
        return rec

    def new_query_id(self) -> str:
        return f"{self.bot_id}{next(self._ids):010d}"

    # -- updates -----------------------------------------------------------------------------------
    def emit(self, chat_id: int, who: str, kind: str, text: str, *, message_id: int | None = None,
             buttons: list[str] | None = None) -> None:
        """Record a :class:`ChatEvent` and pass it to every listener (listener errors are logged, not raised)."""
        chat = self.chats.get(chat_id)
        name = chat.user["first_name"] if chat is not None else str(chat_id)
        event = ChatEvent(at=time.time(), chat_id=chat_id, who=who, name=name, kind=kind, text=text,
                          message_id=message_id, buttons=list(buttons or []))
        self.events.append(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken printer must not break the emulated API
                logging.getLogger(__name__).exception("emulator event listener failed")

    def enqueue(self, kind: str, obj: dict[str, Any], *, label: str | None = None) -> int:
        """Queue an update ``{"update_id": N, kind: obj}`` unless ``allowed_updates`` excludes ``kind``,
        and record it in the transcript (``label``: the tapped button's text for callback queries).

        Returns the update id (also when filtered out, so callers can refer to it).
        """
        update_id = self.next_update_id
        self.next_update_id += 1
        payload = {"update_id": update_id, kind: obj}
        self.archive[update_id] = payload
        if kind in self.allowed_updates:
            self.updates.append(QueuedUpdate(update_id, payload))
        chat = obj.get("chat") or (obj.get("message") or {}).get("chat") or {}
        chat_id = chat.get("id")
        self.bump(chat_id)
        if chat_id is not None:
            ev_kind, text = describe_user_update(kind, obj, label)
            self.emit(chat_id, "user", ev_kind, text, message_id=obj.get("message_id"))
        self.notify()
        self._on_new_update()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Put an already-confirmed update back in the queue with the same id (KeyError if never made)."""
        payload = self.archive[update_id]
        self.updates = [u for u in self.updates if u.update_id != update_id]
        self.updates.append(QueuedUpdate(update_id, payload, forced=True))
        self.notify()
        self._on_new_update()

    def confirm(self, offset: int | None) -> None:
        """Drop updates confirmed by ``offset`` (getUpdates semantics; negative = keep the last -offset)."""
        if offset is None:
            return
        if offset < 0:
            keep = -offset
            self.updates = self.updates[-keep:] if keep else []
            return
        self.updates = [
            u for u in self.updates
            if (u.forced and not (u.returned and offset > u.update_id)) or (not u.forced and u.update_id >= offset)
        ]

    def take(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` pending updates (they stay queued until a later offset confirms them)."""
        out = []
        for u in self.updates[:limit]:
            u.returned = True
            out.append(u.payload)
        return out

    # -- chats -------------------------------------------------------------------------------------
    def chat(self, chat_id: int) -> ChatRecord | None:
        return self.chats.get(chat_id)

    def message_wire(self, chat: ChatRecord, msg: BotMessage) -> dict[str, Any]:
        """The ``Message`` object of a bot message as Telegram returns it."""
        out: dict[str, Any] = {
            "message_id": msg.message_id, "date": msg.date, "chat": chat.chat_wire(),
            "from": dict(self.bot_user),
        }
        if msg.text is not None:
            out["text"] = msg.text
            if msg.entities:
                out["entities"] = msg.entities
        if msg.caption is not None:
            out["caption"] = msg.caption
            if msg.caption_entities:
                out["caption_entities"] = msg.caption_entities
        if msg.kind == "photo" and msg.photo_sizes:
            out["photo"] = [f.wire() for f in msg.photo_sizes]
        elif msg.file is not None:
            out[msg.kind] = msg.file.wire()
        if msg.location is not None:
            out["location"] = {"latitude": msg.location[0], "longitude": msg.location[1]}
        if msg.reply_markup:
            out["reply_markup"] = msg.reply_markup
        if msg.edit_date is not None:
            out["edit_date"] = msg.edit_date
        if msg.reply_to_message_id is not None:
            ref = chat.user_messages.get(msg.reply_to_message_id)
            if ref is not None:
                out["reply_to_message"] = ref
        return out
