"""Make the demo's media files in ``bot/demo/assets/`` (run once; the files are committed and shipped as
package data, ``suara demo`` never runs this).

    python bot/demo/make_assets.py      # needs Pillow, espeak-ng and opusenc (Debian packages)

Photos are JPEGs drawn with Pillow, with EXIF (camera make/model, DateTimeOriginal in the camera's wall
time, GPS in Jambi province); one is stored rotated with EXIF Orientation 6 like a phone held upright.
Voice notes are spoken sentences (espeak-ng, Indonesian or English voice) encoded as OGG/Opus 16 kbit/s
mono with opusenc, the format Telegram voice notes use.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ASSETS = Path(__file__).resolve().parent / "assets"

#: file name -> (espeak voice, sentence)
VOICES: dict[str, tuple[str, str]] = {
    "voice_voter_id.ogg": ("id", "Saya sering melihat video calon legislatif di TikTok, "
                                 "tapi pilihan saya untuk DPR tidak berubah."),
    "voice_instagram.ogg": ("id", "Di Instagram kami mengunggah Reels setiap hari. "
                                  "Pengikut naik dari dua ribu menjadi sembilan ribu lima ratus."),
    "voice_tiktok.ogg": ("id", "TikTok paling cepat menjangkau pemilih pemula dengan video pendek."),
    "voice_whatsapp.ogg": ("id", "Grup WhatsApp dipakai untuk koordinasi relawan di setiap kecamatan."),
    "voice_effects.ogg": ("id", "Menurut tim, suara tetap paling banyak datang dari tatap muka dan jaringan keluarga."),
    "voice_voter_en.ogg": ("en", "I saw many short campaign videos, but I voted for the candidate "
                                 "who promised to repair the village road."),
}

#: file name -> (size, background, banner lines, EXIF date, GPS (lat, lon), orientation)
PHOTOS: dict[str, tuple[tuple[int, int], tuple[int, int, int], tuple[str, ...], str, tuple[float, float], int]] = {
    "baliho_caleg.jpg": ((960, 640), (196, 30, 36), ("PEMILU 14 FEBRUARI 2024", "CALEG DPRD PROVINSI JAMBI",
                                                      "Dapil Jambi 1 - Coblos No. 3"),
                         "2024:02:03 10:12:40", (-1.6101, 103.6131), 1),
    "stiker_angkot.jpg": ((800, 600), (20, 90, 160), ("AYO MEMILIH!", "Jangan golput", "TPS 07 Telanaipura"),
                          "2024:02:06 16:45:02", (-1.5921, 103.5806), 1),
    "kampanye_pasar.jpg": ((1024, 768), (40, 120, 60), ("Kampanye tatap muka", "Pasar Angso Duo, Kota Jambi",
                                                         "Januari 2024"),
                           "2024:01:20 08:31:15", (-1.6148, 103.6201), 6),
    "pelatihan_admin.jpg": ((900, 600), (120, 80, 30), ("Pelatihan admin media sosial", "Posko pemenangan",
                                                         "Desember 2023"),
                            "2023:12:16 19:05:55", (-1.6350, 103.6010), 1),
}


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    deg = int(value)
    minutes = int((value - deg) * 60)
    seconds = round(((value - deg) * 60 - minutes) * 60, 2)
    return (float(deg), float(minutes), seconds)


def _exif(when: str, gps: tuple[float, float], orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SuaraDemo"        # Make
    exif[0x0110] = "Field phone"      # Model
    exif.get_ifd(0x8769)[0x9003] = when  # DateTimeOriginal (camera wall time, no zone)
    g = exif.get_ifd(0x8825)
    g[1] = "S" if gps[0] < 0 else "N"
    g[2] = _dms(gps[0])
    g[3] = "E" if gps[1] >= 0 else "W"
    g[4] = _dms(gps[1])
    return exif


def make_photo(name: str) -> None:
    """Draw one banner photo and save it with EXIF."""
    (w, h), bg, lines, when, gps, orientation = PHOTOS[name]
    im = Image.new("RGB", (w, h), (225, 225, 215))
    d = ImageDraw.Draw(im)
    d.rectangle((w // 12, h // 8, w - w // 12, h - h // 5), fill=bg, outline=(250, 250, 250), width=6)
    font = ImageFont.load_default(size=max(18, h // 14))
    y = h // 8 + h // 12
    for line in lines:
        d.text((w // 12 + 30, y), line, fill=(255, 255, 255), font=font)
        y += h // 8
    d.rectangle((0, h - h // 5, w, h), fill=(90, 90, 80))  # the street
    if orientation == 6:  # stored rotated: a viewer turns it 90° clockwise to show it upright
        im = im.rotate(90, expand=True)
    im.save(ASSETS / name, "JPEG", quality=62, exif=_exif(when, gps, orientation))


def make_voice(name: str) -> None:
    """Speak one sentence and encode it as OGG/Opus."""
    voice, sentence = VOICES[name]
    with tempfile.TemporaryDirectory() as td:
        wav = Path(td) / "v.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), sentence], check=True)
        subprocess.run(["opusenc", "--quiet", "--bitrate", "16", "--downmix-mono", str(wav), str(ASSETS / name)],
                       check=True)


def main() -> int:
    ASSETS.mkdir(exist_ok=True)
    for name in PHOTOS:
        make_photo(name)
    if not (shutil.which("espeak-ng") and shutil.which("opusenc")):
        print("espeak-ng and opusenc are needed for the voice notes (apt-get install espeak-ng opus-tools)",
              file=sys.stderr)
        return 1
    for name in VOICES:
        make_voice(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
