"""Content-addressed media store: received files checked from their bytes, stored once, never half-written.

Layout (relative to the data directory)::

    media/ab/cd/<sha256>.<ext>     the original bytes exactly as received (ab, cd = first hex pairs)
    thumbs/ab/cd/<sha256>.jpg      photos only: upright JPEG thumbnail, longest side <= 320 px

What a file *is* comes from its bytes (magic numbers and container structure), never from the MIME
type or file name Telegram declares (FC-24). The caller says what it expected (``declared_kind``); a
file that is not that kind, or that claims to be a picture but Pillow cannot decode to the end (a text
file renamed ``.jpg``, a truncated JPEG), raises `MediaError` and leaves nothing on disk.

Every check and derived file (thumbnail) is computed in memory first; then each file is written to a
temporary name in its final directory, fsynced, renamed over the final name (atomic on POSIX) and the
directory fsynced. The same bytes twice map to the same name and are written once.

Thread-safe: the store keeps no mutable state; concurrent puts of the same bytes race harmlessly.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, UnidentifiedImageError

#: Longest side of a thumbnail, pixels.
THUMB_SIZE = 320
#: JPEG quality of thumbnails.
THUMB_QUALITY = 80
#: Default largest accepted file (bytes). Telegram's Bot API serves downloads up to 20 MB.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Kinds a caller may declare / the store may detect.
KINDS: tuple[str, ...] = ("photo", "voice", "audio", "video", "document")
#: Kind -> the engine's `questionnaires.interview.MediaRef.kind`.
ENGINE_KIND: dict[str, str] = {"photo": "image", "voice": "audio", "audio": "audio", "video": "video",
                               "document": "file"}

_EXIF_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_EXIF_DATETIME_ORIGINAL = 0x9003
_EXIF_DATETIME = 0x0132
#: EXIF Orientation -> the transpose that shows the picture upright (EXIF 2.32, tag 0x0112).
_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class MediaError(Exception):
    """A file refused by the store. ``reason`` is a stable code for the bot to pick a message:

    ``empty``, ``too_large``, ``not_an_image``, ``corrupt_image``, ``unsupported_image`` (HEIC at a
    photo question), ``not_audio``, ``not_video``, ``corrupt_audio``. ``message`` is an English explanation for logs.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A file in the store and what its bytes told us.

    ``kind`` in `KINDS` (``voice`` only when declared so and the bytes are audio); ``mime``/``ext`` from
    the bytes; ``size_bytes``; ``path`` relative to the data dir (``media/ab/cd/<sha256>.<ext>``);
    ``width``/``height`` in pixels *as displayed* (EXIF orientation applied, FC-25); ``duration_s``
    seconds for OGG (Opus/Vorbis), WAV and MP4-family files; ``taken_at`` the EXIF DateTimeOriginal as
    a naive local wall time (EXIF has no zone); ``gps`` (latitude, longitude) in decimal degrees, south
    and west negative; ``thumb_path`` relative path of the upright JPEG thumbnail (photos only).
    """

    sha256: str
    kind: str
    mime: str
    ext: str
    size_bytes: int
    path: str
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    taken_at: datetime | None = None
    gps: tuple[float, float] | None = None
    thumb_path: str | None = None
    orientation: int | None = None

    @property
    def ref(self) -> str:
        """The engine's media reference: ``"<sha256>.<ext>"`` (see `questionnaires.interview.MediaRef`)."""
        return f"{self.sha256}.{self.ext}"

    @property
    def engine_kind(self) -> str:
        """``image``/``audio``/``video``/``file`` for `questionnaires.interview.MediaRef.kind`."""
        return ENGINE_KIND[self.kind]


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the first bytes say: ``kind`` (photo/audio/video/document), ``mime``, ``ext``."""

    kind: str
    mime: str
    ext: str


def sniff(data: bytes) -> Sniffed:
    """Identify a file from its bytes (magic numbers / container headers). Plain UTF-8 text -> a
    ``text/plain`` document (``.txt``); anything else unknown -> an ``application/octet-stream`` document."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("photo", "image/jpeg", "jpg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("photo", "image/png", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("photo", "image/gif", "gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("photo", "image/webp", "webp")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return Sniffed("audio", "audio/wav", "wav")
    if head.startswith(b"OggS"):
        if b"OpusHead" in data[:512]:
            return Sniffed("audio", "audio/ogg", "ogg")
        if b"\x01vorbis" in data[:512]:
            return Sniffed("audio", "audio/ogg", "ogg")
        if b"theora" in data[:512]:
            return Sniffed("video", "video/ogg", "ogv")
        return Sniffed("audio", "audio/ogg", "ogg")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"):
            return Sniffed("photo", "image/heic", "heic")
        if brand in (b"M4A ", b"M4B "):
            return Sniffed("audio", "audio/mp4", "m4a")
        if brand == b"qt  ":
            return Sniffed("video", "video/quicktime", "mov")
        if brand.startswith(b"3gp"):
            return Sniffed("video", "video/3gpp", "3gp")
        return Sniffed("video", "video/mp4", "mp4")
    if head.startswith(b"\x1aE\xdf\xa3"):
        return Sniffed("video", "video/webm", "webm")
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return Sniffed("audio", "audio/mpeg", "mp3")
    if head.startswith(b"#!AMR"):
        return Sniffed("audio", "audio/amr", "amr")
    if head.startswith(b"%PDF-"):
        return Sniffed("document", "application/pdf", "pdf")
    if head.startswith(b"PK\x03\x04"):
        return Sniffed("document", "application/zip", "zip")
    if _is_text(data):
        return Sniffed("document", "text/plain", "txt")
    return Sniffed("document", "application/octet-stream", "bin")


#: Bytes of a file read to decide whether it is plain text.
TEXT_SNIFF_BYTES = 64 * 1024
_TEXT_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13}


def _is_text(data: bytes) -> bool:
    """True for plain UTF-8 text: the first `TEXT_SNIFF_BYTES` decode as UTF-8 (a character cut at the
    end is allowed) and hold no control character other than tab, LF, FF and CR."""
    chunk = data[:TEXT_SNIFF_BYTES]
    if not chunk or any(b in _TEXT_CONTROLS for b in set(chunk)):
        return False
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the chunk boundary is still text
        return len(data) > TEXT_SNIFF_BYTES and exc.start >= len(chunk) - 3
    return True


# ------------------------------------------------------------------------------------------------ photos
@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """Decoded facts about a picture: displayed size, EXIF orientation/taken-at/GPS, thumbnail JPEG bytes."""

    width: int
    height: int
    orientation: int | None
    taken_at: datetime | None
    gps: tuple[float, float] | None
    thumbnail: bytes


def inspect_photo(data: bytes, *, thumb_size: int = THUMB_SIZE) -> PhotoInfo:
    """Verify a picture by decoding it (at reduced scale: JPEG draft mode) and make its thumbnail.

    Width x height are as displayed (swapped for EXIF orientations 5-8). The thumbnail is upright
    (EXIF orientation applied), RGB JPEG, longest side <= ``thumb_size``. Raises MediaError
    ``not_an_image`` (Pillow cannot identify it) or ``corrupt_image`` (fails verify or decoding, e.g.
    truncated). Decompression bombs (Pillow's limit) are ``corrupt_image`` too.
    """
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
    except UnidentifiedImageError as exc:
        raise MediaError("not_an_image", "the file is not a picture Pillow can read") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError("corrupt_image", f"the picture is damaged ({exc})") from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            raw_w, raw_h = im.size
            exif = im.getexif()
            orientation = exif.get(_EXIF_ORIENTATION)
            orientation = int(orientation) if isinstance(orientation, int) and 1 <= orientation <= 8 else None
            taken_at = _exif_datetime(exif)
            gps = _exif_gps(exif)
            if im.format == "JPEG":
                im.draft("RGB", (thumb_size, thumb_size))  # DCT scaling: decode at 1/2..1/8 size, >= thumb
            im.load()  # decodes the whole (scaled) image: a truncated file fails here
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGBA").convert("RGB") if "A" in im.mode or im.mode == "P" else im.convert("RGB")
            im.thumbnail((thumb_size, thumb_size), Image.Resampling.LANCZOS)
            up = im.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else im
            buf = io.BytesIO()
            up.save(buf, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    except MediaError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise MediaError("corrupt_image", f"the picture cannot be decoded ({exc})") from exc
    w, h = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    return PhotoInfo(w, h, orientation, taken_at, gps, buf.getvalue())


def _exif_datetime(exif: Image.Exif) -> datetime | None:
    raw = exif.get_ifd(_EXIF_IFD).get(_EXIF_DATETIME_ORIGINAL) or exif.get(_EXIF_DATETIME)
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _exif_gps(exif: Image.Exif) -> tuple[float, float] | None:
    gps = exif.get_ifd(_GPS_IFD)
    try:
        lat = _dms(gps[2], gps.get(1, "N"))
        lon = _dms(gps[4], gps.get(3, "E"))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return (lat, lon)


def _dms(value: object, ref: object) -> float:
    d, m, s = (float(x) for x in value)  # type: ignore[attr-defined]
    deg = d + m / 60.0 + s / 3600.0
    ref_s = ref.decode() if isinstance(ref, bytes) else str(ref)
    return -deg if ref_s.strip("\x00 ").upper() in ("S", "W") else deg


# ------------------------------------------------------------------------------------------------- audio
def ogg_duration(data: bytes) -> float:
    """Duration in seconds of an Ogg Opus or Vorbis file, from the page structure (no decoder).

    Walks every Ogg page (RFC 3533) checking capture pattern and lengths; duration = last granule
    position minus Opus pre-skip, over 48 kHz for Opus (RFC 7845 §4) or the Vorbis sample rate.
    Raises MediaError ``corrupt_audio`` for a malformed or truncated stream.
    """
    pos, n = 0, len(data)
    granule = -1
    serial0: int | None = None
    first_packet = b""
    while pos < n:
        if data[pos:pos + 4] != b"OggS" or pos + 27 > n:
            raise MediaError("corrupt_audio", f"bad Ogg page at byte {pos}")
        gp, serial = struct.unpack_from("<qI", data, pos + 6)
        nsegs = data[pos + 26]
        if pos + 27 + nsegs > n:
            raise MediaError("corrupt_audio", "truncated Ogg page header")
        body = sum(data[pos + 27:pos + 27 + nsegs])
        end = pos + 27 + nsegs + body
        if end > n:
            raise MediaError("corrupt_audio", "truncated Ogg page (the file is cut short)")
        if serial0 is None:
            serial0 = serial
            first_packet = data[pos + 27 + nsegs:end]
        if serial == serial0 and gp >= 0:
            granule = gp
        pos = end
    if serial0 is None or granule < 0:
        raise MediaError("corrupt_audio", "no audio pages in the Ogg file")
    if first_packet.startswith(b"OpusHead") and len(first_packet) >= 12:
        pre_skip = struct.unpack_from("<H", first_packet, 10)[0]
        return max(0.0, (granule - pre_skip) / 48000.0)
    if first_packet.startswith(b"\x01vorbis") and len(first_packet) >= 16:
        rate = struct.unpack_from("<I", first_packet, 12)[0]
        if rate:
            return granule / float(rate)
    raise MediaError("corrupt_audio", "unknown Ogg codec")


def wav_duration(data: bytes) -> float | None:
    """Duration in seconds of a RIFF/WAVE file (byte rate of ``fmt `` and size of ``data``), or None."""
    pos, byte_rate, size = 12, None, None
    while pos + 8 <= len(data):
        cid, clen = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if cid == b"fmt " and clen >= 16:
            byte_rate = struct.unpack_from("<I", data, pos + 16)[0]
        elif cid == b"data":
            size = min(clen, len(data) - pos - 8)
            break
        pos += 8 + clen + (clen & 1)
    return size / byte_rate if byte_rate and size is not None else None


def mp4_duration(data: bytes) -> float | None:
    """Duration in seconds from the ``moov/mvhd`` box of an MP4/M4A/MOV/3GP file, or None."""

    def boxes(start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        pos = start
        while pos + 8 <= end:
            size, typ = struct.unpack_from(">I4s", data, pos)
            hdr = 8
            if size == 1 and pos + 16 <= end:
                size, hdr = struct.unpack_from(">Q", data, pos + 8)[0], 16
            elif size == 0:
                size = end - pos
            if size < hdr:
                return
            yield typ, pos + hdr, min(pos + size, end)
            pos += size

    for typ, b, e in boxes(0, len(data)):
        if typ != b"moov":
            continue
        for typ2, b2, _e2 in boxes(b, e):
            if typ2 == b"mvhd" and b2 + 32 <= len(data):
                version = data[b2]
                if version == 1:
                    timescale, duration = struct.unpack_from(">IQ", data, b2 + 20)
                else:
                    timescale, duration = struct.unpack_from(">II", data, b2 + 12)
                return duration / timescale if timescale else None
    return None


# ------------------------------------------------------------------------------------------------- store
class MediaStore:
    """Files under ``root`` (the data directory): see the module doc for layout and guarantees.

    ``max_bytes`` is the largest file accepted (`DEFAULT_MAX_BYTES`).
    """

    def __init__(self, root: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    # paths
    @staticmethod
    def relative_path(sha256: str, ext: str) -> str:
        """``media/ab/cd/<sha256>.<ext>``."""
        return f"media/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"

    @staticmethod
    def thumb_relative_path(sha256: str) -> str:
        """``thumbs/ab/cd/<sha256>.jpg``."""
        return f"thumbs/{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"

    def abspath(self, relative: str) -> Path:
        """The absolute path of a stored relative path (refuses paths escaping the root)."""
        p = (self.root / relative).resolve()
        if self.root.resolve() not in p.parents:
            raise ValueError(f"path outside the media store: {relative!r}")
        return p

    def path_for_ref(self, ref: str) -> Path:
        """The file of an engine reference ``"<sha256>.<ext>"``."""
        sha, _, ext = ref.partition(".")
        return self.abspath(self.relative_path(sha, ext))

    # writing
    def put(self, data: bytes, *, declared_kind: str, declared_mime: str | None = None,
            filename: str | None = None) -> StoredMedia:
        """Check ``data`` against ``declared_kind`` and store it; returns its `StoredMedia`.

        ``declared_kind`` (one of `KINDS`) is what the caller expects: ``photo`` needs a picture Pillow
        decodes; ``voice``/``audio`` need audio bytes (OGG files must be well-formed); ``video`` needs
        video; ``document`` takes anything (pictures sent as files are still checked and thumbnailed).
        ``declared_mime`` and ``filename`` are informational only and never decide the kind.
        Raises MediaError (nothing is written) or OSError from the file system (temp files removed).
        """
        if declared_kind not in KINDS:
            raise ValueError(f"declared_kind must be one of {KINDS}, not {declared_kind!r}")
        if not data:
            raise MediaError("empty", "the file is empty")
        if len(data) > self.max_bytes:
            raise MediaError("too_large", f"{len(data)} bytes is more than the limit of {self.max_bytes}")
        s = sniff(data)
        kind = s.kind
        if declared_kind == "photo" and kind != "photo":
            raise MediaError("not_an_image", f"expected a picture, the bytes are {s.mime}")
        if declared_kind in ("voice", "audio") and kind != "audio":
            raise MediaError("not_audio", f"expected audio, the bytes are {s.mime}")
        if declared_kind == "video" and kind != "video":
            raise MediaError("not_video", f"expected a video, the bytes are {s.mime}")
        if declared_kind == "voice":
            kind = "voice"
        sha = hashlib.sha256(data).hexdigest()
        info: PhotoInfo | None = None
        duration: float | None = None
        if s.mime == "image/heic":
            # Pillow has no HEIF decoder here, so such a picture cannot be checked or thumbnailed.
            if declared_kind == "photo":
                raise MediaError("unsupported_image", "HEIC/HEIF pictures cannot be checked; send it as a photo")
            kind = "document"
        elif s.kind == "photo":
            info = inspect_photo(data)
        elif s.mime == "audio/ogg":
            duration = ogg_duration(data)
        elif s.mime == "audio/wav":
            duration = wav_duration(data)
        elif s.ext in ("m4a", "mp4", "mov", "3gp"):
            duration = mp4_duration(data)
        rel = self.relative_path(sha, s.ext)
        thumb_rel = self.thumb_relative_path(sha) if info is not None else None
        written: list[Path] = []
        try:
            if self._write_once(self.abspath(rel), data):
                written.append(self.abspath(rel))
            if info is not None and thumb_rel is not None:
                self._write_once(self.abspath(thumb_rel), info.thumbnail)
        except BaseException:
            for p in written:
                p.unlink(missing_ok=True)
            raise
        return StoredMedia(
            sha256=sha, kind=kind, mime=s.mime, ext=s.ext, size_bytes=len(data), path=rel,
            width=info.width if info else None, height=info.height if info else None,
            duration_s=duration, taken_at=info.taken_at if info else None, gps=info.gps if info else None,
            thumb_path=thumb_rel, orientation=info.orientation if info else None,
        )

    @staticmethod
    def _write_once(final: Path, data: bytes) -> bool:
        """Atomically create ``final`` with ``data`` unless an identical-size file is there; True if written."""
        if final.exists() and final.stat().st_size == len(data):
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dfd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        return True

    def remove(self, path: str, thumb_path: str | None = None) -> list[str]:
        """Delete a stored file (and its thumbnail); returns the relative paths actually removed.

        The caller (the repository) checks that no Media row still references the bytes.
        """
        removed: list[str] = []
        for rel in (path, thumb_path):
            if rel:
                p = self.abspath(rel)
                if p.exists():
                    p.unlink()
                    removed.append(rel)
        return removed

    def clean_temp_files(self, *, older_than_s: float = 600.0) -> list[str]:
        """Delete temporary files left by a process killed mid-write (older than ``older_than_s``).

        Safe while other processes write: a temp file younger than the threshold may be in use.
        Returns the relative paths removed. Call at start-up.
        """
        import time

        limit = time.time() - older_than_s
        removed: list[str] = []
        for top in ("media", "thumbs"):
            base = self.root / top
            if base.is_dir():
                for p in base.rglob(".tmp-*"):
                    try:
                        if p.is_file() and p.stat().st_mtime < limit:
                            p.unlink()
                            removed.append(p.relative_to(self.root).as_posix())
                    except FileNotFoundError:
                        continue
        return sorted(removed)

    def read(self, relative: str) -> bytes:
        """The bytes of a stored file."""
        return self.abspath(relative).read_bytes()

    def iter_files(self) -> Iterator[str]:
        """Every stored file (media and thumbnails) as a relative path, sorted; temp files skipped."""
        for top in ("media", "thumbs"):
            base = self.root / top
            if not base.is_dir():
                continue
            for p in sorted(base.rglob("*")):
                if p.is_file() and not p.name.startswith(".tmp-"):
                    yield p.relative_to(self.root).as_posix()
