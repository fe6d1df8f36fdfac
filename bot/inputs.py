"""Telegram updates -> engine inputs (`questionnaires.interview.Input`), and media descriptions.

Pure functions over PTB objects: no network, no database. Media bytes are fetched by the media handler;
this module only says *what* arrived (`MediaCandidate`) and whether it can answer a question type.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from telegram import Location as TgLocation
from telegram import Message
from telegram.constants import FileSizeLimit
from telegram.warnings import PTBDeprecationWarning

from bot.render import Callback, decode_selection
from questionnaires.interview import (
    AddRepeat,
    Back,
    EndRepeat,
    Input,
    Location,
    Prompt,
    Select,
    Skip,
    Text,
)

#: Bot API getFile limit: bots download at most 20 MB (telegram.constants.FileSizeLimit.FILESIZE_DOWNLOAD).
DOWNLOAD_LIMIT = int(FileSizeLimit.FILESIZE_DOWNLOAD)

_LATLON = re.compile(r"^\s*(-?\d+(?:[.,]\d+)?)\s*[,; ]\s*(-?\d+(?:[.,]\d+)?)\s*$")


def text_input(text: str, prompt: Prompt | None = None) -> Input:
    """Typed text -> engine input. At a geopoint question ``"lat, lon"`` becomes a `Location`
    (Indonesian decimal commas accepted when separated by ``;`` or spaces); anything else is `Text`."""
    q = prompt.question if prompt is not None else None
    if q is not None and q.type == "geopoint":
        m = _LATLON.match(text)
        if m:
            lat = float(m.group(1).replace(",", "."))
            lon = float(m.group(2).replace(",", "."))
            if -90 <= lat <= 90 and -180 <= lon <= 180:
                return Location(latitude=lat, longitude=lon)
    return Text(text.strip())


def location_input(loc: TgLocation) -> Location:
    """A shared Telegram location -> `Location` (``horizontal_accuracy`` in metres when sent)."""
    return Location(latitude=loc.latitude, longitude=loc.longitude, accuracy=loc.horizontal_accuracy)


def callback_input(cb: Callback, prompt: Prompt) -> Input | None:
    """A tap on a question keyboard -> engine input, or None when the tap is not an answer (page/toggle)
    or points outside the visible choices. The caller has already checked ``cb.tag`` against the prompt.

    ``a|sid|tag|i`` -> Select(choice i); ``d|sid|tag|selection`` -> Select(the ✓ choices, in the order chosen);
    ``k`` -> Text("OK") (acknowledge); ``r|…|y/n`` -> AddRepeat/EndRepeat; ``b`` -> Back; ``s`` -> Skip.
    """
    try:
        if cb.op == "a":
            i = int(cb.args[0])
            if not 0 <= i < len(prompt.choices):
                return None
            return Select((prompt.choices[i].name,))
        if cb.op == "d":
            idx = decode_selection(cb.args[0])
            if any(i >= len(prompt.choices) for i in idx):
                return None
            return Select(tuple(prompt.choices[i].name for i in idx))
    except (IndexError, ValueError):
        return None
    if cb.op == "k":
        return Text("OK")
    if cb.op == "r":
        return AddRepeat() if cb.args[:1] == ("y",) else EndRepeat()
    if cb.op == "b":
        return Back()
    if cb.op == "s":
        return Skip()
    return None


# ------------------------------------------------------------------------------------------------ media
@dataclass(frozen=True, slots=True)
class MediaCandidate:
    """A file attached to a message, before download.

    ``sent_as``: ``photo``, ``voice``, ``audio``, ``video``, ``video_note``, ``document`` or ``animation``.
    ``file_size`` in bytes (None when Telegram did not say). ``width``/``height`` in pixels, ``duration``
    in seconds, when Telegram said.
    """

    sent_as: str
    file_id: str
    file_unique_id: str
    file_size: int | None
    mime_type: str | None = None
    file_name: str | None = None
    duration: int | None = None
    width: int | None = None
    height: int | None = None

    @property
    def too_big(self) -> bool:
        """True when Telegram says the file is over the 20 MB bot download limit (check before download)."""
        return self.file_size is not None and self.file_size > DOWNLOAD_LIMIT


def media_candidate(message: Message) -> MediaCandidate | None:
    """The file in ``message`` (the largest photo size; photos sent as files are documents), or None."""
    with warnings.catch_warnings():
        # PTB 22.2+ warns that ``duration`` will become a timedelta; `_secs` handles both shapes.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        return _candidate(message)


def _candidate(message: Message) -> MediaCandidate | None:
    if message.photo:
        p = message.photo[-1]  # sizes ascend: the last is the largest
        return MediaCandidate("photo", p.file_id, p.file_unique_id, p.file_size, "image/jpeg", None, None, p.width, p.height)
    if message.voice:
        v = message.voice
        return MediaCandidate("voice", v.file_id, v.file_unique_id, v.file_size, v.mime_type, None, _secs(v.duration))
    if message.audio:
        a = message.audio
        return MediaCandidate("audio", a.file_id, a.file_unique_id, a.file_size, a.mime_type, a.file_name, _secs(a.duration))
    if message.video:
        v = message.video
        return MediaCandidate("video", v.file_id, v.file_unique_id, v.file_size, v.mime_type, v.file_name, _secs(v.duration), v.width, v.height)
    if message.video_note:
        v = message.video_note
        return MediaCandidate("video_note", v.file_id, v.file_unique_id, v.file_size, "video/mp4", None, _secs(v.duration), v.length, v.length)
    if message.animation:
        a = message.animation
        return MediaCandidate("animation", a.file_id, a.file_unique_id, a.file_size, a.mime_type, a.file_name, _secs(a.duration), a.width, a.height)
    if message.document:
        d = message.document
        return MediaCandidate("document", d.file_id, d.file_unique_id, d.file_size, d.mime_type, d.file_name)
    return None


def _secs(value: object) -> int | None:
    if value is None:
        return None
    if hasattr(value, "total_seconds"):
        return int(value.total_seconds())  # type: ignore[union-attr]
    return int(value)  # type: ignore[call-overload]


def message_kind(message: Message) -> str:
    """What a message holds, as an i18n ``got_*`` suffix: photo, voice, audio, video, document, sticker,
    location, text or other."""
    if message.photo:
        return "photo"
    if message.voice:
        return "voice"
    if message.audio:
        return "audio"
    if message.video or message.video_note or message.animation:
        return "video"
    if message.document:
        return "document"
    if message.sticker:
        return "sticker"
    if message.location:
        return "location"
    if message.text:
        return "text"
    return "other"


#: Which ways of sending can answer which media question type. Documents are accepted everywhere and
#: judged by their bytes (a photo sent as a file is a document: FC-24).
ACCEPTS: dict[str, frozenset[str]] = {
    "image": frozenset({"photo", "document"}),
    "audio": frozenset({"voice", "audio", "document"}),
    "video": frozenset({"video", "video_note", "animation", "document"}),
    "file": frozenset({"photo", "voice", "audio", "video", "video_note", "animation", "document"}),
}


def can_answer(question_type: str, candidate: MediaCandidate) -> bool:
    """True when ``candidate`` may answer a question of ``question_type`` (before looking at the bytes)."""
    return candidate.sent_as in ACCEPTS.get(question_type, frozenset())


def storage_kind(candidate: MediaCandidate) -> str:
    """The storage Media kind for a candidate: voice, audio, photo, video or document."""
    return {"voice": "voice", "audio": "audio", "photo": "photo", "video": "video",
            "video_note": "video", "animation": "video"}.get(candidate.sent_as, "document")
