"""Which media files an export holds, their names inside the bundle, and their thumbnails.

Names are ``media/<instance_id>/<question>[_<repeat index>…].<ext>`` (a second file for the same
answer key gets ``_2``…), field notes ``media/<instance_id>/note_<n>.<ext>``, thumbnails
``media/<instance_id>/thumbs/<stem>.jpg``. All parts come from our own ids (see `exports.naming`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PIL import Image, ImageOps

from exports.naming import media_base_name, media_ext, safe_component
from exports.records import MediaRecord

#: Longest side of a thumbnail made here when storage gave none (pixels).
THUMB_PX = 160
_PHOTO_KINDS = frozenset({"photo", "image"})


@dataclass(frozen=True, slots=True)
class MediaEntry:
    """A media record with its path inside the bundle (``arcname``) and its thumbnail path."""

    record: MediaRecord
    arcname: str
    thumb_arcname: str | None


class MediaIndex:
    """Media records grouped by submission, with bundle names assigned once.

    ``keep`` decides per answer key (None = field note) whether a file belongs to the export (question
    subset). Records are kept in the order given.
    """

    def __init__(self, media: Iterable[MediaRecord], keep: Callable[[str | None], bool] | None = None) -> None:
        self.by_instance: dict[str, list[MediaEntry]] = {}
        self.by_key: dict[str, dict[str, tuple[MediaRecord, str]]] = {}
        used: dict[str, set[str]] = {}
        notes: dict[str, int] = {}
        for rec in media:
            if keep is not None and not keep(rec.key):
                continue
            iid = safe_component(rec.instance_id, "submission")
            taken = used.setdefault(rec.instance_id, set())
            if rec.key is None:
                notes[rec.instance_id] = notes.get(rec.instance_id, 0) + 1
                stem = media_base_name(None, notes[rec.instance_id])
            else:
                stem = media_base_name(rec.key)
            ext = media_ext(rec.ext, rec.mime)
            final, n = stem, 1
            while f"{final}.{ext}" in taken:
                n += 1
                final = f"{stem}_{n}"
            taken.add(f"{final}.{ext}")
            arc = f"media/{iid}/{final}.{ext}"
            thumb = (f"media/{iid}/thumbs/{final}.jpg"
                     if rec.kind in _PHOTO_KINDS or rec.thumb is not None else None)
            self.by_instance.setdefault(rec.instance_id, []).append(MediaEntry(rec, arc, thumb))
            if rec.key is not None:
                self.by_key.setdefault(rec.instance_id, {})[rec.key] = (rec, arc)

    def for_instance(self, instance_id: str) -> list[MediaEntry]:
        """The entries of one submission (empty list if none)."""
        return self.by_instance.get(instance_id, [])


def thumbnail_bytes(rec: MediaRecord) -> bytes | None:
    """A small upright JPEG: storage's thumbnail when it has one (photos, pictures sent as files), else,
    for photos, one made from the original (EXIF orientation applied, FC-25). None otherwise."""
    if rec.thumb is not None:
        try:
            return rec.thumb.read_bytes()
        except OSError:
            pass
    if rec.source is None or rec.kind not in _PHOTO_KINDS:
        return None
    try:
        with Image.open(rec.source) as im:
            im = ImageOps.exif_transpose(im)
            im.thumbnail((THUMB_PX, THUMB_PX))
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
            return buf.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
