"""Names the export makes up: sheet titles and paths inside the zip bundle.

Sheet titles follow Excel's rules (at most 31 characters; none of ``[ ] : * ? / \\``; not starting or
ending with an apostrophe; unique ignoring case; ``History`` is reserved). Zip entry names are built
from our own ids only (instance ID, question name, repeat indices), never from a user's file name.
"""

from __future__ import annotations

import re

#: Excel's limit on sheet title length.
SHEET_TITLE_MAX = 31
_BAD_TITLE = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_SAFE_COMPONENT = re.compile(r"[^A-Za-z0-9_.-]+")


class SheetTitles:
    """Hands out legal, unique sheet titles for one workbook."""

    def __init__(self) -> None:
        self._taken: set[str] = {"history"}

    def take(self, wanted: str) -> str:
        """A legal title close to ``wanted``; truncated to 31 characters, ``~2``, ``~3``… on collision."""
        base = _BAD_TITLE.sub("_", wanted).strip().strip("'") or "Sheet"
        base = base[:SHEET_TITLE_MAX]
        title = base
        n = 1
        while title.lower() in self._taken:
            n += 1
            suffix = f"~{n}"
            title = base[: SHEET_TITLE_MAX - len(suffix)].rstrip("'") + suffix
        self._taken.add(title.lower())
        return title


def safe_component(text: str, fallback: str = "x") -> str:
    """``text`` reduced to ``[A-Za-z0-9_.-]`` (runs of others and of dots become ``_``), no leading dot, <= 100 chars."""
    out = re.sub(r"\.{2,}", "_", _SAFE_COMPONENT.sub("_", text)).lstrip(".")[:100]
    return out or fallback


_KEY_INDEX = re.compile(r"\[(\d+)\]")


def media_base_name(key: str | None, note_number: int = 0) -> str:
    """The file stem for a media answer: question name plus repeat indices.

    ``"photo"`` -> ``"photo"``; ``"hh/members[2]/photo"`` -> ``"photo_2"``; a field note (``key`` None)
    -> ``"note_<note_number>"``.
    """
    if key is None:
        return f"note_{note_number}"
    name = key.rsplit("/", 1)[-1]
    name = _KEY_INDEX.sub("", name)
    indices = _KEY_INDEX.findall(key)
    stem = safe_component(name, "answer")
    return stem + "".join(f"_{i}" for i in indices)


_MIME_EXT = {
    "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif",
    "audio/ogg": "ogg", "audio/mpeg": "mp3", "audio/mp4": "m4a", "audio/wav": "wav", "audio/x-wav": "wav",
    "video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm", "application/pdf": "pdf",
}


def media_ext(ext: str, mime: str) -> str:
    """A safe extension (no dot) from the detected ``ext``, else from ``mime``, else ``"bin"``."""
    e = ext.lower().lstrip(".")
    if e and e.isalnum() and len(e) <= 5:
        return e
    return _MIME_EXT.get(mime.lower(), "bin")
