"""Scripted users: a person in a private chat with the bot, driven by tests and by ``suara demo``.

Every action queues an update exactly as Telegram would deliver it (message, edited_message,
callback_query, my_chat_member) and returns its ``update_id``. Reading methods show what the bot sent to
this chat. Shapes follow https://core.telegram.org/bots/api#message (photo sizes ascending, voice notes
``audio/ogg``, commands with a ``bot_command`` entity at offset 0, live locations as edited messages).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.emulator.formatting import utf16_len
from bot.emulator.state import BotMessage, CallbackRecord, ChatRecord, FileRecord

if TYPE_CHECKING:
    from bot.emulator.emulator import Emulator

_COMMAND_AT_START = re.compile(r"^/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,64})?")

#: Default coordinates used when a reply-keyboard location button is tapped without any (Jambi city).
JAMBI = (-1.6101, 103.6131)


@dataclass(frozen=True)
class CallbackAnswer:
    """How the bot answered one tap: ``answered`` False while answerCallbackQuery has not come."""

    update_id: int
    data: str
    answered: bool
    text: str | None
    show_alert: bool


class ScriptedUser:
    """A Telegram user in a private chat with the bot (``chat_id == id``). Thread-safe."""

    def __init__(self, emulator: Emulator, user_id: int, first_name: str, *, language_code: str = "id",
                 username: str | None = None) -> None:
        self._emu = emulator
        self._state = emulator.state
        self.id = user_id
        self.chat_id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name,
                                "language_code": language_code}
        if username:
            user["username"] = username
        self.user_wire = user
        #: message_id of this user's latest message (e.g. to edit a live location later)
        self.last_message_id: int | None = None
        with self._state.lock:
            if user_id not in self._state.chats:
                self._state.chats[user_id] = ChatRecord(user=dict(user))
            self._chat = self._state.chats[user_id]

    def __repr__(self) -> str:
        return f"ScriptedUser({self.id}, {self.first_name!r})"

    # -- sending -----------------------------------------------------------------------------------
    def _message(self, extra: dict[str, Any], *, reply_to: int | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": self._chat.take_message_id(), "from": dict(self.user_wire),
            "chat": self._chat.chat_wire(), "date": self._state.now(),
        }
        if reply_to is not None:
            ref = self._chat.bot_messages.get(reply_to)
            if ref is not None:
                msg["reply_to_message"] = self._state.message_wire(self._chat, ref)
            elif reply_to in self._chat.user_messages:
                msg["reply_to_message"] = self._chat.user_messages[reply_to]
        msg.update(extra)
        return msg

    def _send(self, extra: dict[str, Any], *, reply_to: int | None = None) -> int:
        with self._state.lock:
            if self._chat.blocked:
                raise RuntimeError(f"{self!r} blocked the bot; call unblock() first")
            msg = self._message(extra, reply_to=reply_to)
            self._chat.user_messages[msg["message_id"]] = msg
            self.last_message_id = msg["message_id"]
            return self._state.enqueue("message", msg)

    def send_text(self, text: str, *, reply_to: int | None = None) -> int:
        """Send a text message; a leading ``/command`` gets a ``bot_command`` entity like Telegram adds.

        Returns the update id. Raises ``ValueError`` for empty text or text over 4096 characters.
        """
        if not text or len(text) > 4096:
            raise ValueError("Telegram clients send 1-4096 characters")
        extra: dict[str, Any] = {"text": text}
        match = _COMMAND_AT_START.match(text)
        if match:
            extra["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
        return self._send(extra, reply_to=reply_to)

    def send_command(self, command: str, args: str = "") -> int:
        """Send ``/command args`` (``command`` with or without the slash), e.g. a deep link ``/start CODE``."""
        command = command.lstrip("/")
        text = f"/{command}" + (f" {args}" if args else "")
        return self.send_text(text)

    def edit_text(self, message_id: int, text: str) -> int:
        """Edit one of this user's own text messages (an ``edited_message`` update)."""
        with self._state.lock:
            original = self._chat.user_messages.get(message_id)
            if original is None or "text" not in original:
                raise LookupError(f"{self!r} has no text message {message_id}")
            edited = dict(original, text=text, edit_date=self._state.now())
            edited.pop("entities", None)
            self._chat.user_messages[message_id] = edited
            return self._state.enqueue("edited_message", edited)

    def share_location(self, lat: float, lon: float, *, accuracy: float | None = None,
                       live_period: int | None = None) -> int:
        """Send a location (``live_period`` seconds makes it a live location that can be edited)."""
        loc: dict[str, Any] = {"latitude": lat, "longitude": lon}
        if accuracy is not None:
            loc["horizontal_accuracy"] = accuracy
        if live_period is not None:
            loc["live_period"] = live_period
        return self._send({"location": loc})

    def send_live_location_edit(self, message_id: int, lat: float, lon: float, *,
                                accuracy: float | None = None) -> int:
        """Move a live location: an ``edited_message`` update of ``message_id`` with the new position."""
        with self._state.lock:
            original = self._chat.user_messages.get(message_id)
            if original is None or "location" not in original:
                raise LookupError(f"{self!r} has no location message {message_id}")
            loc = dict(original["location"], latitude=lat, longitude=lon)
            if accuracy is not None:
                loc["horizontal_accuracy"] = accuracy
            edited = dict(original, location=loc, edit_date=self._state.now())
            self._chat.user_messages[message_id] = edited
            return self._state.enqueue("edited_message", edited)

    def send_contact(self, phone_number: str) -> int:
        """Share this user's own contact (as a ``request_contact`` button does)."""
        return self._send({"contact": {"phone_number": phone_number, "first_name": self.first_name,
                                       "user_id": self.id}})

    def _file(self, kind: str, data: bytes, *, ext: str, folder: str, **meta: Any) -> FileRecord:
        if not data:
            raise ValueError("a file needs bytes")
        return self._state.new_file(kind, data, ext=ext, folder=folder, **meta)

    def send_voice(self, data: bytes, *, duration: int, mime_type: str = "audio/ogg",
                   caption: str | None = None) -> int:
        """Send a voice note (OGG/Opus bytes; file_path ends ``.oga`` like Telegram's)."""
        with self._state.lock:
            rec = self._file("voice", data, ext="oga", folder="voice", mime_type=mime_type, duration=duration)
            return self._send(self._with_caption({"voice": rec.wire()}, caption))

    def send_audio(self, data: bytes, *, duration: int, file_name: str = "audio.mp3",
                   mime_type: str = "audio/mpeg", caption: str | None = None) -> int:
        """Send an audio file (music player attachment)."""
        with self._state.lock:
            rec = self._file("audio", data, ext=_ext(file_name, "mp3"), folder="music", file_name=file_name,
                             mime_type=mime_type, duration=duration)
            return self._send(self._with_caption({"audio": rec.wire()}, caption))

    def send_video(self, data: bytes, *, duration: int, width: int = 640, height: int = 360,
                   mime_type: str = "video/mp4", caption: str | None = None) -> int:
        """Send a video (bytes are served back as-is; dims are declared)."""
        with self._state.lock:
            rec = self._file("video", data, ext="mp4", folder="videos", mime_type=mime_type, duration=duration,
                             width=width, height=height)
            return self._send(self._with_caption({"video": rec.wire()}, caption))

    def send_video_note(self, data: bytes, *, duration: int, length: int = 240) -> int:
        """Send a round video message."""
        with self._state.lock:
            rec = self._file("video_note", data, ext="mp4", folder="video_notes", duration=duration)
            wire = rec.wire()
            wire["length"] = length
            return self._send({"video_note": wire})

    def send_sticker(self, data: bytes = b"RIFF\x00\x00\x00\x00WEBPVP8 ", *, emoji: str = "\U0001F44D") -> int:
        """Send a (static WEBP) sticker."""
        with self._state.lock:
            rec = self._file("sticker", data, ext="webp", folder="stickers", width=512, height=512)
            wire = rec.wire()
            wire.update({"type": "regular", "is_animated": False, "is_video": False, "emoji": emoji})
            return self._send({"sticker": wire})

    def send_photo(self, data: bytes, *, caption: str | None = None, media_group_id: str | None = None) -> int:
        """Send a compressed photo, re-encoded the way Telegram does it.

        Telegram never delivers the bytes of a compressed photo: it re-encodes it as JPEG, applies the
        EXIF orientation to the pixels and drops all metadata (EXIF, GPS, camera). ``message.photo`` lists
        the sizes ascending, each an upright JPEG without EXIF, fitted in a box of 90, 320, 800 and
        1280 px on the long side (only the boxes smaller than the picture, plus the picture itself fitted
        in 1280 px, so a 1000x750 photo gives 90/320/800/1000 and a 4000x3000 one 90/320/800/1280).
        Send with `send_document` to keep the original bytes and EXIF (a photo "sent as file", FC-25).

        Raises ``ValueError`` if Pillow can't read the image.
        """
        sizes = compressed_photo_sizes(data)
        with self._state.lock:
            recs = [self._file("photo", blob, ext="jpg", folder="photos", width=w, height=h)
                    for blob, w, h in sizes]
            extra: dict[str, Any] = {"photo": [r.wire() for r in recs]}
            if media_group_id:
                extra["media_group_id"] = media_group_id
            return self._send(self._with_caption(extra, caption))

    def send_album(self, photos: list[bytes], *, caption: str | None = None) -> list[int]:
        """Send several photos as an album: one update each, sharing a ``media_group_id`` (caption on the
        first, as Telegram clients do). Returns the update ids."""
        with self._state.lock:
            group = f"mg{self.chat_id}{self._state.new_query_id()}"
        return [self.send_photo(data, caption=caption if i == 0 else None, media_group_id=group)
                for i, data in enumerate(photos)]

    def send_document(self, data: bytes, *, file_name: str, mime_type: str, caption: str | None = None) -> int:
        """Send a file as a document (e.g. a photo sent "as file": an image ``mime_type``)."""
        with self._state.lock:
            rec = self._file("document", data, ext=_ext(file_name, "bin"), folder="documents",
                             file_name=file_name, mime_type=mime_type)
            return self._send(self._with_caption({"document": rec.wire()}, caption))

    def send_big_file_stub(self, *, kind: str = "document", file_size: int = 25 * 1024 * 1024,
                           file_name: str = "big.bin", mime_type: str = "application/octet-stream",
                           duration: int = 600) -> int:
        """Send a file that declares ``file_size`` bytes without holding them (e.g. a long video).

        getFile on it answers ``400 Bad Request: file is too big`` when over 20 MB, like Telegram.
        ``kind`` is one of document, video, audio, voice, photo.
        """
        meta: dict[str, Any] = {}
        if kind in ("document", "audio"):
            meta.update(file_name=file_name, mime_type=mime_type)
        if kind in ("video", "audio", "voice"):
            meta["duration"] = duration
        if kind in ("video", "photo"):
            meta.update(width=1920, height=1080)
        if kind == "voice":
            meta["mime_type"] = "audio/ogg"
        with self._state.lock:
            rec = self._state.new_file(kind, None, file_size=file_size, ext="bin", folder=f"{kind}s", **meta)
            wire = rec.wire()
            return self._send({kind: [wire] if kind == "photo" else wire})

    @staticmethod
    def _with_caption(extra: dict[str, Any], caption: str | None) -> dict[str, Any]:
        if caption:
            extra["caption"] = caption
            match = _COMMAND_AT_START.match(caption)
            if match:
                extra["caption_entities"] = [{"type": "bot_command", "offset": 0,
                                              "length": utf16_len(match.group(0))}]
        return extra

    # -- keyboards ---------------------------------------------------------------------------------
    def tap(self, label: str, *, message_id: int | None = None) -> int:
        """Press the inline button labelled ``label`` (exact match) on the latest message showing it, or on
        ``message_id``. Queues a ``callback_query`` update and returns its id.

        Raises ``LookupError`` (listing the visible buttons) when no such callback button is shown.
        """
        with self._state.lock:
            msg = self._find_button_message(label, message_id)
            data = next(d for row in msg.inline_buttons() for lbl, d in row if lbl == label and d is not None)
            qid = self._state.new_query_id()
            query = {"id": qid, "from": dict(self.user_wire), "chat_instance": f"ci{self.chat_id}",
                     "message": self._state.message_wire(self._chat, msg), "data": data}
            update_id = self._state.enqueue("callback_query", query, label=label)
            self._state.callbacks[qid] = CallbackRecord(qid, self.chat_id, msg.message_id, data, update_id,
                                                        at=float(self._state.now()))
            return update_id

    def tap_data(self, callback_data: str, *, message_id: int) -> int:
        """Send a callback query with arbitrary ``callback_data`` for ``message_id`` (a stale or forged tap)."""
        with self._state.lock:
            msg = self._chat.bot_messages.get(message_id)
            if msg is None:
                raise LookupError(f"no bot message {message_id} in chat {self.chat_id}")
            qid = self._state.new_query_id()
            query = {"id": qid, "from": dict(self.user_wire), "chat_instance": f"ci{self.chat_id}",
                     "message": self._state.message_wire(self._chat, msg), "data": callback_data}
            update_id = self._state.enqueue("callback_query", query)
            self._state.callbacks[qid] = CallbackRecord(qid, self.chat_id, message_id, callback_data, update_id,
                                                        at=float(self._state.now()))
            return update_id

    def _find_button_message(self, label: str, message_id: int | None) -> BotMessage:
        candidates = self._visible()
        if message_id is not None:
            candidates = [m for m in candidates if m.message_id == message_id]
            if not candidates:
                raise LookupError(f"no visible bot message {message_id} in chat {self.chat_id}")
        for msg in reversed(candidates):
            if any(lbl == label and d is not None for row in msg.inline_buttons() for lbl, d in row):
                return msg
        shown = [[lbl for lbl, _ in row] for m in candidates[-3:] for row in m.inline_buttons()]
        raise LookupError(f"no inline button {label!r} in chat {self.chat_id}; recent buttons: {shown}")

    def reply_keyboard(self) -> list[list[dict[str, Any]]]:
        """Rows of the reply keyboard currently shown (buttons as dicts with ``text``, ``request_location``...);
        empty when none is shown (removed, or a one-time keyboard already used)."""
        with self._state.lock:
            kb = self._chat.reply_keyboard
            if kb is None or self._chat.reply_keyboard_hidden:
                return []
            return [[dict(b) for b in row] for row in kb.get("keyboard", [])]

    def reply_keyboard_tap(self, label: str, *, location: tuple[float, float] = JAMBI,
                           accuracy: float | None = 12.0, phone_number: str = "+6281234567890") -> int:
        """Press a reply-keyboard button: a ``request_location`` button shares ``location``, a
        ``request_contact`` button the phone number, any other sends its label as text.

        Raises ``LookupError`` when no such button is shown.
        """
        with self._state.lock:
            button = next((b for row in self.reply_keyboard() for b in row if b.get("text") == label), None)
            if button is None:
                raise LookupError(f"no reply-keyboard button {label!r}; shown: "
                                  f"{[b.get('text') for row in self.reply_keyboard() for b in row]}")
            if (self._chat.reply_keyboard or {}).get("one_time_keyboard"):
                self._chat.reply_keyboard_hidden = True
            if button.get("request_location"):
                return self.share_location(location[0], location[1], accuracy=accuracy)
            if button.get("request_contact"):
                return self.send_contact(phone_number)
            return self.send_text(label)

    # -- blocking the bot --------------------------------------------------------------------------
    def block(self) -> int:
        """Block the bot: later sends to this chat answer 403 and a ``my_chat_member`` update (kicked) comes."""
        return self._set_blocked(True)

    def unblock(self) -> int:
        """Unblock (restart) the bot: a ``my_chat_member`` update (member) comes."""
        return self._set_blocked(False)

    def _set_blocked(self, blocked: bool) -> int:
        with self._state.lock:
            self._chat.blocked = blocked
            old, new = ("member", "kicked") if blocked else ("kicked", "member")
            def member(status: str) -> dict[str, Any]:
                out: dict[str, Any] = {"status": status, "user": dict(self._state.bot_user)}
                if status == "kicked":
                    out["until_date"] = 0  # 0 = forever
                return out

            update = {"chat": self._chat.chat_wire(), "from": dict(self.user_wire), "date": self._state.now(),
                      "old_chat_member": member(old), "new_chat_member": member(new)}
            return self._state.enqueue("my_chat_member", update)

    # -- reading -----------------------------------------------------------------------------------
    def _visible(self) -> list[BotMessage]:
        return sorted((m for m in self._chat.bot_messages.values() if not m.deleted), key=lambda m: m.message_id)

    @property
    def messages(self) -> list[BotMessage]:
        """The bot's messages in this chat still shown (not deleted), oldest first (a snapshot list)."""
        with self._state.lock:
            return self._visible()

    @property
    def deleted_messages(self) -> list[BotMessage]:
        """The bot's messages in this chat that were deleted."""
        with self._state.lock:
            return sorted((m for m in self._chat.bot_messages.values() if m.deleted), key=lambda m: m.message_id)

    def message(self, message_id: int) -> BotMessage:
        """The bot message ``message_id`` in this chat (also when deleted); ``KeyError`` if unknown."""
        with self._state.lock:
            return self._chat.bot_messages[message_id]

    def last_message(self) -> BotMessage:
        """The newest visible bot message; ``LookupError`` when the bot has sent nothing."""
        with self._state.lock:
            visible = self._visible()
            if not visible:
                raise LookupError(f"the bot sent nothing to chat {self.chat_id}")
            return visible[-1]

    def last_text(self) -> str:
        """Text (or caption) of the newest visible bot message; ``""`` when the bot has sent nothing."""
        with self._state.lock:
            visible = self._visible()
            return visible[-1].shown_text if visible else ""

    def texts(self) -> list[str]:
        """Texts/captions of all visible bot messages, oldest first."""
        return [m.shown_text for m in self.messages]

    def inline_buttons(self, message_id: int | None = None) -> list[list[tuple[str, str | None]]]:
        """Rows of ``(label, callback_data)`` on ``message_id`` or on the latest message with a keyboard."""
        with self._state.lock:
            if message_id is not None:
                return self._chat.bot_messages[message_id].inline_buttons()
            for msg in reversed(self._visible()):
                if msg.reply_markup:
                    return msg.inline_buttons()
            return []

    @property
    def answered_callbacks(self) -> list[CallbackAnswer]:
        """Every tap of this user with the bot's answerCallbackQuery (text, alert), oldest first."""
        with self._state.lock:
            return [CallbackAnswer(r.update_id, r.data, r.answered, r.answer_text, r.show_alert)
                    for r in self._state.callbacks.values() if r.chat_id == self.chat_id]

    def callback_answer(self, update_id: int) -> CallbackAnswer:
        """The answer to the tap that produced ``update_id``; ``KeyError`` if it was not a tap."""
        for ans in self.answered_callbacks:
            if ans.update_id == update_id:
                return ans
        raise KeyError(update_id)

    @property
    def chat_actions(self) -> list[str]:
        """sendChatAction actions the bot sent to this chat (``typing``, ``upload_document``...)."""
        with self._state.lock:
            return list(self._chat.actions)

    def mark(self) -> int:
        """The emulator's change counter now; pass to :meth:`messages_since` / :meth:`wait_message`."""
        with self._state.lock:
            return self._state.seq

    def messages_since(self, mark: int) -> list[BotMessage]:
        """Bot messages in this chat sent or edited after ``mark`` (ordered by change)."""
        with self._state.lock:
            return sorted((m for m in self._chat.bot_messages.values() if m.seq > mark), key=lambda m: m.seq)

    def wait_message(self, *, since: int, contains: str | None = None, timeout: float = 10.0) -> BotMessage:
        """Block until the bot sends or edits a message here after ``since`` (a :meth:`mark`), optionally one
        whose text/caption or one of whose inline button labels contains ``contains``; returns it.
        ``TimeoutError`` otherwise."""
        found: list[BotMessage] = []

        def pred() -> bool:
            for m in self.messages_since(since):
                if contains is None or _shows(m, contains):
                    found.append(m)
                    return True
            return False

        what = f"a message to {self!r}" + (f" containing {contains!r}" if contains else "")
        self._emu._wait_sync(pred, timeout, what, chat_id=self.chat_id, recheck=False)
        return found[0]

    async def wait_message_async(self, *, since: int, contains: str | None = None,
                                 timeout: float = 10.0) -> BotMessage:
        """:meth:`wait_message` for code running on an event loop (e.g. the bot's own)."""
        found: list[BotMessage] = []

        def pred() -> bool:
            for m in self.messages_since(since):
                if contains is None or _shows(m, contains):
                    found.append(m)
                    return True
            return False

        what = f"a message to {self!r}" + (f" containing {contains!r}" if contains else "")
        await self._emu._wait_async(pred, timeout, what, chat_id=self.chat_id, recheck=False)
        return found[0]


def _shows(msg: BotMessage, needle: str) -> bool:
    """True when ``needle`` is in the message's text/caption or in one of its inline button labels."""
    return needle in msg.shown_text or any(needle in label for row in msg.inline_buttons() for label, _ in row)


def _ext(file_name: str, default: str) -> str:
    return file_name.rsplit(".", 1)[1].lower()[:8] if "." in file_name else default


#: Long side (px) of the sizes Telegram makes of a compressed photo (Bot API ``PhotoSize`` widths seen
#: for photo types s/m/x/y); the last one is also the largest size delivered.
PHOTO_BOXES = (90, 320, 800, 1280)
#: JPEG quality of the re-encoded sizes (Telegram's are around 80-87).
_PHOTO_QUALITY = 85


def compressed_photo_sizes(data: bytes) -> list[tuple[bytes, int, int]]:
    """``[(jpeg_bytes, width, height)]`` ascending, as Telegram makes them for a compressed photo.

    One size per box in `PHOTO_BOXES` smaller than the picture's long side, then the picture fitted in
    the largest box (its own size when smaller). All are re-encoded JPEGs (RGB), upright (EXIF
    orientation applied to the pixels) and carry no EXIF/GPS metadata. Raises ``ValueError`` when
    Pillow can't read ``data``.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            upright = (ImageOps.exif_transpose(img) or img).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"not an image Pillow can read: {exc}") from exc
    long_side = max(upright.size)
    boxes = [side for side in PHOTO_BOXES[:-1] if side < long_side] + [min(long_side, PHOTO_BOXES[-1])]
    out: list[tuple[bytes, int, int]] = []
    for side in boxes:
        size = upright.copy()
        size.thumbnail((side, side))
        buf = io.BytesIO()
        size.save(buf, "JPEG", quality=_PHOTO_QUALITY)  # no exif= : nothing of the original's metadata
        out.append((buf.getvalue(), size.width, size.height))
    return out
