"""The Bot API methods the emulator implements, with Telegram's validation and error texts.

Each method takes the decoded request parameters and returns the JSON ``result`` or raises
:class:`ApiError`. Callers hold :attr:`EmulatorState.lock`. Method names are matched case-insensitively
(Telegram does the same). Limits come from https://core.telegram.org/bots/api and
``telegram.constants`` (text 4096, caption 1024, callback_data 64 bytes, answerCallbackQuery text 200).
``getUpdates`` lives in :mod:`bot.emulator.emulator` because it waits (long poll).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bot.emulator.formatting import EntityParseError, render
from bot.emulator.server import UploadedFile
from bot.emulator.state import (
    DEFAULT_UPDATE_TYPES,
    FILESIZE_DOWNLOAD,
    BotMessage,
    ChatRecord,
    EmulatorState,
    FileRecord,
)
from bot.emulator.webhook import WebhookConfig

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER = 200
_COMMAND_RE = re.compile(r"^[a-z0-9_]{1,32}$")
CHAT_ACTIONS = frozenset({
    "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
    "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
})
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")
BLOCKED = "Forbidden: bot was blocked by the user"


class ApiError(Exception):
    """A Bot API error answer: HTTP ``status`` and Telegram's ``description``."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            out["parameters"] = {"retry_after": self.retry_after}
        return out


def bad(description: str) -> ApiError:
    """A 400 ``Bad Request: ...`` error."""
    return ApiError(400, f"Bad Request: {description}")


# -- parameter coercion ----------------------------------------------------------------------------
def _present(p: dict[str, Any], name: str) -> bool:
    return name in p and p[name] is not None and p[name] != ""


def _str(p: dict[str, Any], name: str, *, required: bool = False, empty: str | None = None) -> str | None:
    if not _present(p, name):
        if required:
            raise bad(empty or f"{name} is empty")
        return None
    value = p[name]
    if isinstance(value, UploadedFile):
        raise bad(f"{name} must be a string")
    return value if isinstance(value, str) else json.dumps(value)


def _int(p: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    if not _present(p, name):
        if required:
            raise bad(f"{name} is empty")
        return None
    try:
        return int(p[name])
    except (TypeError, ValueError) as exc:
        raise bad(f"invalid {name} specified") from exc


def _float(p: dict[str, Any], name: str) -> float | None:
    if not _present(p, name):
        return None
    try:
        return float(p[name])
    except (TypeError, ValueError) as exc:
        raise bad(f"invalid {name} specified") from exc


def int_param(p: dict[str, Any], name: str) -> int | None:
    """Optional integer parameter ``name`` (400 "invalid <name> specified" when not an integer)."""
    return _int(p, name)


def json_param(p: dict[str, Any], name: str) -> Any:
    """Optional JSON parameter ``name``: a JSON string inside a form, or the value of a JSON body."""
    return _json(p, name)


def _bool(p: dict[str, Any], name: str) -> bool:
    value = p.get(name)
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1") if value is not None else False


def _json(p: dict[str, Any], name: str) -> Any:
    if not _present(p, name):
        return None
    value = p[name]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise bad(f"can't parse {name} JSON object") from exc
    return value


# -- keyboards -------------------------------------------------------------------------------------
def parse_reply_markup(raw: Any, *, inline_only: bool = False) -> dict[str, Any] | None:
    """Validate a ``reply_markup`` object (inline keyboard, reply keyboard, remove, force reply).

    Raises :class:`ApiError` like Telegram: ``BUTTON_DATA_INVALID`` for callback_data over 64 bytes,
    ``can't parse ...`` for malformed objects.
    """
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        rows = raw["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad("can't parse inline keyboard markup JSON object: field \"inline_keyboard\" must be an Array of Arrays")
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if not button["text"]:
                    raise bad("text buttons are unallowed in the inline keyboard")
                kinds = [k for k in ("callback_data", "url", "switch_inline_query", "login_url", "web_app",
                                     "switch_inline_query_current_chat", "pay", "copy_text") if k in button]
                if not kinds:
                    raise bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = button["callback_data"]
                    if not isinstance(data, str) or not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES:
                        raise bad("BUTTON_DATA_INVALID")
        return {"inline_keyboard": rows}
    if inline_only:
        raise bad("inline keyboard expected")
    if "keyboard" in raw:
        rows = raw["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad("can't parse reply keyboard markup JSON object")
        norm_rows = []
        for row in rows:
            norm = []
            for button in row:
                if isinstance(button, str):
                    button = {"text": button}
                if not isinstance(button, dict) or not button.get("text"):
                    raise bad("keyboard button text is empty")
                norm.append(button)
            norm_rows.append(norm)
        out = dict(raw)
        out["keyboard"] = norm_rows
        return out
    if raw.get("remove_keyboard") or raw.get("force_reply"):
        return dict(raw)
    raise bad("can't parse reply keyboard markup JSON object")


def _render(text: str, parse_mode: str | None, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    try:
        return render(text, parse_mode, entities if isinstance(entities, list) else None)
    except EntityParseError as exc:
        raise bad(f"can't parse entities: {exc}") from exc


class BotApi:
    """Implements Bot API methods on an :class:`EmulatorState` (call with its lock held)."""

    def __init__(self, state: EmulatorState) -> None:
        self.s = state
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {}
        for name in dir(self):
            if name.startswith("m_"):
                self._methods[name[2:].lower()] = getattr(self, name)

    def implemented(self) -> list[str]:
        """Lower-cased names of the implemented methods (getUpdates excluded)."""
        return sorted(self._methods)

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """Run ``method``; raises :class:`ApiError` (400 "not implemented in the emulator" for unknown ones)."""
        fn = self._methods.get(method.lower())
        if fn is None:
            raise bad(f"method {method} not implemented in the emulator")
        return fn(params)

    # -- helpers -----------------------------------------------------------------------------------
    def _chat(self, p: dict[str, Any], *, sending: bool = True) -> ChatRecord:
        raw = _str(p, "chat_id", required=True)
        assert raw is not None
        try:
            chat_id = int(raw)
        except ValueError as exc:
            raise bad("chat not found") from exc
        chat = self.s.chat(chat_id)
        if chat is None:
            raise bad("chat not found")
        if sending and chat.blocked:
            raise ApiError(403, BLOCKED)
        return chat

    def _bot_message(self, chat: ChatRecord, p: dict[str, Any], what: str) -> BotMessage:
        if _present(p, "inline_message_id"):
            raise bad(f"inline messages are not implemented in the emulator ({what})")
        mid = _int(p, "message_id", required=True)
        assert mid is not None
        msg = chat.bot_messages.get(mid)
        if msg is None or msg.deleted:
            if mid in chat.user_messages:
                raise bad("message can't be edited")
            raise bad(f"message to {what} not found")
        return msg

    def _new_message(self, chat: ChatRecord, p: dict[str, Any], kind: str) -> BotMessage:
        """A message object for a send call (validated markup and reply target); nothing changes in the
        chat until :meth:`_store`, so a failing call leaves no trace."""
        markup = parse_reply_markup(_json(p, "reply_markup"))
        reply_to = _int(p, "reply_to_message_id")
        allow_without = _bool(p, "allow_sending_without_reply")
        rp = _json(p, "reply_parameters")
        if isinstance(rp, dict) and rp.get("message_id") is not None:
            reply_to = int(rp["message_id"])
            allow_without = allow_without or bool(rp.get("allow_sending_without_reply"))
        if reply_to is not None and reply_to not in chat.user_messages and (
                reply_to not in chat.bot_messages or chat.bot_messages[reply_to].deleted):
            if not allow_without:
                raise bad("message to be replied not found")
            reply_to = None
        msg = BotMessage(message_id=0, chat_id=chat.chat_id, date=self.s.now(), kind=kind,
                         reply_to_message_id=reply_to)
        if markup is not None:
            if "inline_keyboard" in markup:
                msg.reply_markup = markup
            else:
                msg.reply_keyboard = markup
        return msg

    def _store(self, chat: ChatRecord, msg: BotMessage) -> dict[str, Any]:
        msg.message_id = chat.take_message_id()
        markup = msg.reply_keyboard
        if markup is not None:
            if markup.get("remove_keyboard"):
                chat.reply_keyboard = None
            elif "keyboard" in markup:
                chat.reply_keyboard = markup
                chat.reply_keyboard_hidden = False
        msg.seq, msg.changed_at = self.s.bump(chat.chat_id), time.perf_counter()
        chat.bot_messages[msg.message_id] = msg
        self.s.emit(chat.chat_id, "bot", msg.kind, _shown(msg), message_id=msg.message_id, buttons=_labels(msg))
        return self.s.message_wire(chat, msg)

    def _caption(self, p: dict[str, Any], msg: BotMessage) -> None:
        raw = _str(p, "caption")
        if raw is None:
            return
        caption, ents = _render(raw, _str(p, "parse_mode"), _json(p, "caption_entities"))
        if len(caption) > MAX_CAPTION:
            raise bad("message caption is too long")
        msg.caption, msg.raw_caption, msg.caption_entities = caption, raw, ents

    def _media_input(self, p: dict[str, Any], field: str, kind: str, *, ext: str, folder: str) -> FileRecord:
        value = p.get(field)
        if isinstance(value, UploadedFile):
            if not value.data:
                raise bad("file must be non-empty")
            if len(value.data) > 50 * 1024 * 1024:
                raise ApiError(413, "Request Entity Too Large")
            name = value.filename
            if name and "." in name:
                ext = name.rsplit(".", 1)[1][:8] or ext
            return self.s.new_file(kind, value.data, ext=ext, folder=folder, file_name=name,
                                   mime_type=value.content_type)
        if isinstance(value, str) and value:
            if value.startswith(("http://", "https://")):
                raise bad("sending files by URL is not implemented in the emulator")
            if value.startswith("attach://"):
                raise bad("attach:// uploads are not implemented in the emulator")
            rec = self.s.files.get(value)
            if rec is None:
                raise bad("wrong file identifier/HTTP URL specified")
            return rec
        raise bad(f"there is no {field} in the request")

    # -- bot identity & webhook --------------------------------------------------------------------
    def m_getMe(self, p: dict[str, Any]) -> Any:
        return dict(self.s.bot_user)

    def m_logOut(self, p: dict[str, Any]) -> Any:
        return True

    def m_close(self, p: dict[str, Any]) -> Any:
        return True

    def m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.s.webhook = None
        if _bool(p, "drop_pending_updates"):
            self.s.updates.clear()
        return True

    def m_setWebhook(self, p: dict[str, Any]) -> Any:
        url = _str(p, "url") or ""
        if not url:
            return self.m_deleteWebhook(p)
        split = urlsplit(url)
        local = split.hostname in ("127.0.0.1", "localhost", "::1")
        if split.scheme != "https" and not (split.scheme == "http" and local):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = _str(p, "secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad("secret token contains unallowed characters")
        if "allowed_updates" in p:
            types = allowed_update_types(_json(p, "allowed_updates"))
            self.s.allowed_updates = types
            self.s.updates = [u for u in self.s.updates if u.forced or u.type in types]
        if _bool(p, "drop_pending_updates"):
            self.s.updates.clear()
        self.s.webhook = WebhookConfig(url=url, secret_token=secret,
                                       max_connections=_int(p, "max_connections") or 40)
        self.s.bump()
        return True

    def m_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        hook = self.s.webhook
        out: dict[str, Any] = {"url": hook.url if hook else "", "has_custom_certificate": False,
                               "pending_update_count": len(self.s.updates)}
        if hook is not None:
            out["max_connections"] = hook.max_connections
            if hook.last_error_date is not None:
                out["last_error_date"] = hook.last_error_date
                out["last_error_message"] = hook.last_error_message
            if self.s.allowed_updates != DEFAULT_UPDATE_TYPES:
                out["allowed_updates"] = sorted(self.s.allowed_updates)
        return out

    # -- messages ----------------------------------------------------------------------------------
    def m_sendMessage(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        raw = _str(p, "text", required=True, empty="message text is empty")
        assert raw is not None
        text, ents = _render(raw, _str(p, "parse_mode"), _json(p, "entities"))
        if not text.strip():
            raise bad("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad("message is too long")
        msg = self._new_message(chat, p, "text")
        msg.text, msg.raw_text, msg.entities, msg.parse_mode = text, raw, ents, _str(p, "parse_mode")
        return self._store(chat, msg)

    def m_sendLocation(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        lat, lon = _float(p, "latitude"), _float(p, "longitude")
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise bad("wrong latitude or longitude")
        msg = self._new_message(chat, p, "location")
        msg.location = (lat, lon)
        return self._store(chat, msg)

    def m_editMessageText(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        msg = self._bot_message(chat, p, "edit")
        raw = _str(p, "text", required=True, empty="message text is empty")
        assert raw is not None
        if msg.text is None:
            raise bad("there is no text in the message to edit")
        text, ents = _render(raw, _str(p, "parse_mode"), _json(p, "entities"))
        if not text.strip():
            raise bad("message text is empty")
        if len(text) > MAX_TEXT:
            raise bad("message is too long")
        # Telegram: leaving out reply_markup on an edit removes the inline keyboard.
        markup = parse_reply_markup(_json(p, "reply_markup"), inline_only=True)
        if text == msg.text and ents == msg.entities and markup == msg.reply_markup:
            raise bad(NOT_MODIFIED[len("Bad Request: "):])
        msg.history.append(msg.text)
        msg.text, msg.raw_text, msg.entities, msg.parse_mode = text, raw, ents, _str(p, "parse_mode")
        msg.reply_markup = markup
        return self._edited(chat, msg)

    def m_editMessageCaption(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        msg = self._bot_message(chat, p, "edit")
        if msg.kind == "text":
            raise bad("there is no caption in the message to edit")
        before = (msg.caption, msg.caption_entities, msg.reply_markup)
        old_caption = msg.caption
        raw = _str(p, "caption") or ""
        caption, ents = _render(raw, _str(p, "parse_mode"), _json(p, "caption_entities"))
        if len(caption) > MAX_CAPTION:
            raise bad("message caption is too long")
        markup = parse_reply_markup(_json(p, "reply_markup"), inline_only=True)
        if (caption or None, ents, markup) == (before[0] or None, before[1], before[2]):
            raise bad(NOT_MODIFIED[len("Bad Request: "):])
        msg.history.append(old_caption)
        msg.caption, msg.raw_caption, msg.caption_entities = (caption or None), raw, ents
        msg.reply_markup = markup
        return self._edited(chat, msg)

    def m_editMessageReplyMarkup(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        msg = self._bot_message(chat, p, "edit")
        markup = parse_reply_markup(_json(p, "reply_markup"), inline_only=True)
        if markup is not None and not markup["inline_keyboard"]:
            markup = None
        if markup == msg.reply_markup:
            raise bad(NOT_MODIFIED[len("Bad Request: "):])
        msg.reply_markup = markup
        return self._edited(chat, msg)

    def _edited(self, chat: ChatRecord, msg: BotMessage) -> dict[str, Any]:
        msg.edited = True
        msg.edit_date = self.s.now()
        msg.seq, msg.changed_at = self.s.bump(chat.chat_id), time.perf_counter()
        self.s.emit(chat.chat_id, "bot", "edit", _shown(msg), message_id=msg.message_id, buttons=_labels(msg))
        return self.s.message_wire(chat, msg)

    def m_deleteMessage(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p, sending=False)
        mid = _int(p, "message_id", required=True)
        msg = chat.bot_messages.get(mid)  # type: ignore[arg-type]
        if msg is not None and not msg.deleted:
            msg.deleted = True
            msg.seq, msg.changed_at = self.s.bump(chat.chat_id), time.perf_counter()
            self.s.emit(chat.chat_id, "bot", "delete", f"#{mid} {_shown(msg)}", message_id=mid)
            return True
        if mid in chat.user_messages:
            del chat.user_messages[mid]  # type: ignore[arg-type]
            self.s.bump(chat.chat_id)
            return True
        raise bad("message to delete not found")

    def m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        qid = _str(p, "callback_query_id", required=True)
        text = _str(p, "text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise bad("MESSAGE_TOO_LONG")
        rec = self.s.callbacks.get(qid or "")
        if rec is None or rec.answered:
            raise bad("query is too old and response timeout expired or query ID is invalid")
        rec.answered = True
        rec.answer_text = text
        rec.show_alert = _bool(p, "show_alert")
        rec.url = _str(p, "url")
        self.s.bump(rec.chat_id)
        if text:
            self.s.emit(rec.chat_id, "bot", "answer", ("⚠ " if rec.show_alert else "") + text,
                        message_id=rec.message_id)
        return True

    def m_sendChatAction(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p)
        action = _str(p, "action", required=True)
        if action not in CHAT_ACTIONS:
            raise bad("wrong parameter action in request")
        chat.actions.append(action)  # type: ignore[arg-type]
        self.s.bump(chat.chat_id)
        return True

    def m_getChat(self, p: dict[str, Any]) -> Any:
        chat = self._chat(p, sending=False)
        out = chat.chat_wire()
        out.update({"accent_color_id": 0, "max_reaction_count": 11, "accepted_gift_types": {
            "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False, "premium_subscription": False,
            "gifts_from_channels": False}})
        return out

    # -- files -------------------------------------------------------------------------------------
    def m_getFile(self, p: dict[str, Any]) -> Any:
        fid = _str(p, "file_id", required=True)
        rec = self.s.files.get(fid or "")
        if rec is None:
            raise bad("invalid file_id")
        if rec.file_size > FILESIZE_DOWNLOAD:
            raise bad("file is too big")
        return {"file_id": rec.file_id, "file_unique_id": rec.file_unique_id, "file_size": rec.file_size,
                "file_path": rec.file_path}

    def _send_media(self, p: dict[str, Any], kind: str, *, ext: str, folder: str) -> Any:
        chat = self._chat(p)
        msg = self._new_message(chat, p, kind)
        self._caption(p, msg)
        upload = p.get(kind)
        dims = _image_size(upload.data) if kind == "photo" and isinstance(upload, UploadedFile) else None
        rec = self._media_input(p, kind, kind, ext=ext, folder=folder)
        if kind == "photo":
            if rec.width is None:
                rec.width, rec.height = dims or _image_size(rec.data)
            msg.photo_sizes = [rec]
        if kind in ("audio", "voice", "video") and rec.duration is None:
            rec.duration = _int(p, "duration") or 0
        msg.file = rec
        return self._store(chat, msg)

    def m_sendDocument(self, p: dict[str, Any]) -> Any:
        return self._send_media(p, "document", ext="bin", folder="documents")

    def m_sendPhoto(self, p: dict[str, Any]) -> Any:
        return self._send_media(p, "photo", ext="jpg", folder="photos")

    def m_sendAudio(self, p: dict[str, Any]) -> Any:
        return self._send_media(p, "audio", ext="mp3", folder="music")

    def m_sendVoice(self, p: dict[str, Any]) -> Any:
        return self._send_media(p, "voice", ext="oga", folder="voice")

    def m_sendVideo(self, p: dict[str, Any]) -> Any:
        return self._send_media(p, "video", ext="mp4", folder="videos")

    # -- commands & menu ---------------------------------------------------------------------------
    @staticmethod
    def _scope_key(p: dict[str, Any]) -> tuple[str, str]:
        scope = _json(p, "scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad("can't parse BotCommandScope JSON object")
        if scope["type"] not in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators",
                                 "chat", "chat_administrators", "chat_member"):
            raise bad("wrong BotCommandScope type specified")
        lang = _str(p, "language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise bad("invalid language code specified")
        return json.dumps(scope, sort_keys=True, separators=(",", ":")), lang

    def m_setMyCommands(self, p: dict[str, Any]) -> Any:
        commands = _json(p, "commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad("too many commands specified")
        clean = []
        for c in commands:
            if not isinstance(c, dict) or not _COMMAND_RE.match(str(c.get("command", ""))):
                raise bad("BOT_COMMAND_INVALID")
            desc = c.get("description")
            if not isinstance(desc, str) or not (1 <= len(desc) <= 256):
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": c["command"], "description": desc})
        self.s.commands[self._scope_key(p)] = clean
        return True

    def m_getMyCommands(self, p: dict[str, Any]) -> Any:
        return list(self.s.commands.get(self._scope_key(p), []))

    def m_deleteMyCommands(self, p: dict[str, Any]) -> Any:
        self.s.commands.pop(self._scope_key(p), None)
        return True

    def m_setChatMenuButton(self, p: dict[str, Any]) -> Any:
        button = _json(p, "menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("commands", "web_app", "default"):
            raise bad("can't parse menu button JSON object")
        if _present(p, "chat_id"):
            self._chat(p, sending=False).menu_button = button
        else:
            self.s.default_menu_button = button if button["type"] != "default" else {"type": "commands"}
        return True

    def m_getChatMenuButton(self, p: dict[str, Any]) -> Any:
        if _present(p, "chat_id"):
            chat = self._chat(p, sending=False)
            if chat.menu_button and chat.menu_button.get("type") != "default":
                return chat.menu_button
        return self.s.default_menu_button

    def _describe(self, p: dict[str, Any], kind: str, field: str, limit: int) -> Any:
        value = _str(p, field) or ""
        if len(value) > limit:
            raise bad(f"{field} is too long")
        self.s.descriptions[(kind, _str(p, "language_code") or "")] = value
        return True

    def m_setMyDescription(self, p: dict[str, Any]) -> Any:
        return self._describe(p, "description", "description", 512)

    def m_getMyDescription(self, p: dict[str, Any]) -> Any:
        return {"description": self.s.descriptions.get(("description", _str(p, "language_code") or ""), "")}

    def m_setMyShortDescription(self, p: dict[str, Any]) -> Any:
        return self._describe(p, "short_description", "short_description", 120)

    def m_getMyShortDescription(self, p: dict[str, Any]) -> Any:
        key = ("short_description", _str(p, "language_code") or "")
        return {"short_description": self.s.descriptions.get(key, "")}


def _shown(msg: BotMessage) -> str:
    if msg.kind == "text":
        return msg.text or ""
    if msg.kind == "location" and msg.location is not None:
        return f"📍 {msg.location[0]:.5f}, {msg.location[1]:.5f}"
    name = f" {msg.file.file_name}" if msg.file is not None and msg.file.file_name else ""
    size = f", {msg.file.file_size} bytes" if msg.file is not None else ""
    return f"[{msg.kind}{name}{size}]" + (f" “{msg.caption}”" if msg.caption else "")


def _labels(msg: BotMessage) -> list[str]:
    if msg.reply_markup:
        return [label for row in msg.inline_buttons() for label, _ in row]
    if msg.reply_keyboard and "keyboard" in msg.reply_keyboard:
        return [f"⌨ {b.get('text', '')}" for row in msg.reply_keyboard["keyboard"] for b in row]
    return []


def _image_size(data: bytes | None) -> tuple[int, int]:
    """Pixel size of an image (Pillow reads only the header); 400 IMAGE_PROCESS_FAILED if not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data or b"")) as img:
            return img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise bad("IMAGE_PROCESS_FAILED") from exc


def allowed_update_types(raw: Any) -> frozenset[str]:
    """The update types selected by an ``allowed_updates`` list (empty list = Telegram's default set)."""
    if not raw:
        return DEFAULT_UPDATE_TYPES
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise bad("can't parse allowed_updates JSON array")
    return frozenset(raw)
