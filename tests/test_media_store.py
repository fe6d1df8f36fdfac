"""The media store on real files (tests/fixtures, made by tests/fixtures/make_fixtures.py)."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from storage.media import MediaError, MediaStore, StoredMedia, mp4_duration, ogg_duration, sniff, wav_duration


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _is_red(px: tuple[int, ...]) -> bool:
    return px[0] > 150 and px[2] < 100


def _is_blue(px: tuple[int, ...]) -> bool:
    return px[2] > 150 and px[0] < 100


def test_jpeg_exif6_gps_displayed_size_upright_thumbnail_and_gps(media_store: MediaStore, fixtures_dir: Path,
                                                                 data_dir: Path) -> None:
    data = (fixtures_dir / "photo_exif6_gps.jpg").read_bytes()
    with Image.open(io.BytesIO(data)) as raw:
        assert raw.size == (64, 48)  # stored landscape, displayed portrait
    m = media_store.put(data, declared_kind="photo", declared_mime="image/jpeg")
    assert (m.kind, m.mime, m.ext, m.size_bytes) == ("photo", "image/jpeg", "jpg", len(data))
    assert (m.width, m.height, m.orientation) == (48, 64, 6)
    assert m.taken_at == datetime(2024, 9, 7, 9, 55)  # naive EXIF local time
    assert m.gps is not None
    assert m.gps[0] == pytest.approx(-(1 + 36 / 60 + 36.36 / 3600), abs=1e-6)  # south is negative
    assert m.gps[1] == pytest.approx(103 + 36 / 60 + 47.16 / 3600, abs=1e-6)
    sha = hashlib.sha256(data).hexdigest()
    assert m.sha256 == sha and m.path == f"media/{sha[:2]}/{sha[2:4]}/{sha}.jpg" and m.ref == f"{sha}.jpg"
    assert (data_dir / m.path).read_bytes() == data  # original bytes kept as sent
    assert m.thumb_path is not None
    with Image.open(data_dir / m.thumb_path) as th:
        assert th.format == "JPEG" and th.height > th.width  # upright: portrait
        th = th.convert("RGB")
        assert _is_red(th.getpixel((th.width * 3 // 4, 2)))  # red on top
        assert _is_blue(th.getpixel((th.width * 3 // 4, th.height - 3)))  # blue at the bottom


def test_fc25_1000x750_orientation6_sent_as_file(media_store: MediaStore, fixtures_dir: Path, data_dir: Path) -> None:
    """FC-25: original bytes kept; width x height as displayed; thumbnail upright and <= 320 px."""
    data = (fixtures_dir / "fc25_1000x750_exif6.jpg").read_bytes()
    m = media_store.put(data, declared_kind="document", declared_mime="application/octet-stream",
                        filename="IMG_0001.JPG")
    assert m.kind == "photo" and (m.width, m.height) == (750, 1000)
    assert (data_dir / m.path).read_bytes() == data
    with Image.open(data_dir / m.thumb_path) as th:  # type: ignore[arg-type]
        assert max(th.size) <= 320 and th.size[1] == 320 and th.size[0] == 240
        th = th.convert("RGB")
        assert _is_red(th.getpixel((200, 10))) and _is_blue(th.getpixel((200, 310)))


def test_png_is_stored_with_size_and_thumbnail(media_store: MediaStore, fixtures_dir: Path, data_dir: Path) -> None:
    m = media_store.put((fixtures_dir / "plain.png").read_bytes(), declared_kind="photo")
    assert (m.mime, m.ext, m.width, m.height, m.gps, m.taken_at) == ("image/png", "png", 40, 30, None, None)
    with Image.open(data_dir / m.thumb_path) as th:  # type: ignore[arg-type]
        assert th.format == "JPEG" and th.mode == "RGB"


@pytest.mark.parametrize("name,kind,reason", [
    ("truncated.jpg", "photo", "corrupt_image"),
    ("truncated.jpg", "document", "corrupt_image"),
    ("not_a_photo.jpg", "photo", "not_an_image"),
    ("voice.ogg", "photo", "not_an_image"),  # FC-24: a voice note at a photo question
    ("plain.png", "voice", "not_audio"),
])
def test_refused_files_leave_nothing_on_disk(media_store: MediaStore, fixtures_dir: Path, data_dir: Path,
                                             name: str, kind: str, reason: str) -> None:
    with pytest.raises(MediaError) as err:
        media_store.put((fixtures_dir / name).read_bytes(), declared_kind=kind, declared_mime="image/jpeg",
                        filename=name)
    assert err.value.reason == reason and err.value.message
    assert _files(data_dir) == []


def test_text_renamed_jpg_is_just_a_document_when_a_document_was_expected(media_store: MediaStore,
                                                                          fixtures_dir: Path) -> None:
    m = media_store.put((fixtures_dir / "not_a_photo.jpg").read_bytes(), declared_kind="document",
                        declared_mime="image/jpeg", filename="foto.jpg")
    assert (m.kind, m.mime, m.ext, m.thumb_path) == ("document", "text/plain", "txt", None)  # text, not .bin


def test_ogg_opus_voice_note_duration_from_the_bytes(media_store: MediaStore, fixtures_dir: Path) -> None:
    data = (fixtures_dir / "voice.ogg").read_bytes()
    expected = float((fixtures_dir / "voice.expected_seconds.txt").read_text())
    m = media_store.put(data, declared_kind="voice", declared_mime="audio/ogg")
    assert (m.kind, m.mime, m.ext) == ("voice", "audio/ogg", "ogg")
    assert m.duration_s == pytest.approx(expected, abs=0.03)
    assert media_store.put(data, declared_kind="audio").kind == "audio"
    with pytest.raises(MediaError) as err:
        ogg_duration(data[: len(data) - 100])
    assert err.value.reason == "corrupt_audio"
    with pytest.raises(MediaError):
        media_store.put(data[:-100], declared_kind="voice")


def test_same_bytes_twice_are_stored_once_even_concurrently(media_store: MediaStore, fixtures_dir: Path,
                                                            data_dir: Path) -> None:
    data = (fixtures_dir / "photo_exif6_gps.jpg").read_bytes()
    results: list[StoredMedia] = []
    threads = [threading.Thread(target=lambda: results.append(media_store.put(data, declared_kind="photo")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len({r.path for r in results}) == 1
    assert len(_files(data_dir)) == 2  # one original + one thumbnail, no temp files left
    assert list(media_store.iter_files()) == sorted([results[0].path, results[0].thumb_path])


def test_too_large_and_empty_are_refused_before_anything_is_written(fixtures_dir: Path, data_dir: Path) -> None:
    store = MediaStore(data_dir, max_bytes=1000)
    with pytest.raises(MediaError) as err:
        store.put((fixtures_dir / "voice.ogg").read_bytes(), declared_kind="voice")
    assert err.value.reason == "too_large"
    with pytest.raises(MediaError) as err:
        store.put(b"", declared_kind="document")
    assert err.value.reason == "empty"
    assert _files(data_dir) == []


def test_kind_comes_from_the_bytes_not_the_declared_mime_fc24() -> None:
    assert sniff(b"\xff\xd8\xff\xe0rest").mime == "image/jpeg"
    assert sniff(b"\x89PNG\r\n\x1a\n....").ext == "png"
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ").mime == "image/webp"
    assert sniff(b"\0\0\0\x18ftypM4A \0\0\0\0").mime == "audio/mp4"
    assert sniff(b"\0\0\0\x18ftypisom\0\0\0\0").mime == "video/mp4"
    assert sniff(b"\0\0\0\x18ftypheic\0\0\0\0").mime == "image/heic"
    assert sniff(b"ID3\x04\0\0").mime == "audio/mpeg"
    assert sniff(b"%PDF-1.7\n").kind == "document"
    assert sniff(b"hello").mime == "text/plain" and sniff("catatan: ibu ragu — 🙂\n".encode()).ext == "txt"
    assert sniff(b"\x00\x01\x02binary").mime == "application/octet-stream"
    assert sniff(b"\xc3\x28 not utf-8").ext == "bin"


def test_wav_and_mp4_durations_from_headers() -> None:
    import struct
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 12000)
    assert wav_duration(buf.getvalue()) == pytest.approx(1.5)
    mvhd = b"\0\0\0\0" + struct.pack(">IIII", 0, 0, 1000, 2500) + b"\0" * 80
    moov = struct.pack(">I4s", 8 + 8 + len(mvhd), b"moov") + struct.pack(">I4s", 8 + len(mvhd), b"mvhd") + mvhd
    ftyp = struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0)
    assert mp4_duration(ftyp + moov) == pytest.approx(2.5)
    assert mp4_duration(ftyp) is None


def test_remove_and_path_safety(media_store: MediaStore, fixtures_dir: Path, data_dir: Path) -> None:
    m = media_store.put((fixtures_dir / "plain.png").read_bytes(), declared_kind="photo")
    assert media_store.path_for_ref(m.ref) == (data_dir / m.path).resolve()
    with pytest.raises(ValueError):
        media_store.abspath("../outside.txt")
    assert media_store.remove(m.path, m.thumb_path) == [m.path, m.thumb_path]
    assert list(media_store.iter_files()) == []


def test_heic_cannot_be_checked_so_it_is_refused_as_a_photo_and_kept_as_a_document(media_store: MediaStore,
                                                                                   data_dir: Path) -> None:
    heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64
    with pytest.raises(MediaError) as err:
        media_store.put(heic, declared_kind="photo")
    assert err.value.reason == "unsupported_image" and _files(data_dir) == []
    m = media_store.put(heic, declared_kind="document")
    assert (m.kind, m.mime, m.ext, m.thumb_path, m.width) == ("document", "image/heic", "heic", None, None)


def test_clean_temp_files_removes_only_old_leftovers(media_store: MediaStore, data_dir: Path) -> None:
    import os
    import time

    d = data_dir / "media" / "ab" / "cd"
    d.mkdir(parents=True)
    old, young, real = d / ".tmp-old", d / ".tmp-young", d / ("ab" * 32 + ".jpg")
    for p in (old, young, real):
        p.write_bytes(b"x")
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert media_store.clean_temp_files(older_than_s=600) == ["media/ab/cd/.tmp-old"]
    assert young.exists() and real.exists() and not old.exists()
