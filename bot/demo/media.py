"""The demo's media: real JPEG photos (with EXIF) and real OGG/Opus voice notes shipped in
``bot/demo/assets/`` as package data (made once by ``bot/demo/make_assets.py``).

`asset(name)` returns the bytes; `ogg_opus_seconds(data)` reads a voice note's length from its last Ogg
page, as a Telegram client does before it declares ``voice.duration``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources

#: Opus granule positions count 48 kHz samples whatever the input rate (RFC 7845, section 4).
OPUS_GRANULE_RATE = 48_000


class AssetMissing(FileNotFoundError):
    """A demo media file is not installed (a broken installation: the package data is missing)."""


@dataclass(frozen=True, slots=True)
class Asset:
    """One demo file: its ``name`` (``voice_tiktok.ogg``), ``data`` bytes and, for voice notes, the whole
    seconds a Telegram client would declare (``duration``, at least 1)."""

    name: str
    data: bytes
    duration: int = 0


@cache
def asset_bytes(name: str) -> bytes:
    """Bytes of ``bot/demo/assets/<name>``. Raises `AssetMissing` when it is not installed."""
    res = resources.files("bot.demo") / "assets" / name
    if not res.is_file():
        raise AssetMissing(f"demo media file {name!r} is missing from the installed package (bot/demo/assets)")
    return res.read_bytes()


def asset(name: str) -> Asset:
    """The `Asset` ``name``; voice notes (``.ogg``) get their duration from the Ogg stream."""
    data = asset_bytes(name)
    duration = 0
    if name.endswith(".ogg"):
        duration = max(1, round(ogg_opus_seconds(data)))
    return Asset(name, data, duration)


def ogg_opus_seconds(data: bytes) -> float:
    """Playing time in seconds of an Ogg/Opus stream: the last page's granule position minus the
    pre-skip of the ``OpusHead`` header, over 48 000 (RFC 7845 sections 4 and 5.1).

    Raises ValueError when ``data`` is not Ogg/Opus.
    """
    if not data.startswith(b"OggS"):
        raise ValueError("not an Ogg stream (no OggS capture pattern)")
    head = data.find(b"OpusHead")
    if head < 0 or len(data) < head + 12:
        raise ValueError("not an Opus stream (no OpusHead)")
    pre_skip = struct.unpack_from("<H", data, head + 10)[0]
    last = data.rfind(b"OggS")
    if len(data) < last + 14:
        raise ValueError("truncated Ogg page header")
    granule = struct.unpack_from("<q", data, last + 6)[0]
    return max(0, granule - pre_skip) / OPUS_GRANULE_RATE
