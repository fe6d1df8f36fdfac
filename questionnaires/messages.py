"""The interview engine's own messages, in Indonesian (``"id"``) and English (``"en"``).

A form's ``constraint_message`` / ``required_message`` always wins over these defaults (the engine asks
`questionnaires.model.pick` first). Messages are looked up by a short code; placeholders use
`str.format` names (``{min}``, ``{max}``…). Any other language falls back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: Fallback language when a code is missing in the interview language.
FALLBACK = "en"

_EN: dict[str, str] = {
    "required": "This question is required: please answer it.",
    "not_integer": "Please send a whole number, for example 42.",
    "not_decimal": "Please send a number, for example 3.5.",
    "int_too_large": "This number is too large. Please send a whole number from {min} to {max}.",
    "decimal_too_large": "This number is too large. Please send a number with at most 15 digits before "
                         "the decimal point.",
    "range_bounds": "Please send a number from {min} to {max}.",
    "range_step": "Please send a number from {min} to {max} in steps of {step}.",
    "not_date": "Please send a date, for example 05/03/2024 (day/month/year) or 2024-03-05.",
    "not_time": "Please send a time, for example 09:30.",
    "not_datetime": "Please send a date and time, for example 05/03/2024 09:30.",
    "not_geopoint": "Please share your location, or send latitude and longitude, for example -1.61 103.61.",
    "geopoint_range": "Latitude must be between -90 and 90 and longitude between -180 and 180.",
    "not_choice": "Please choose one of the options shown.",
    "one_choice": "Please choose only one option.",
    "no_choice": "Please choose at least one option.",
    "duplicate_choice": "Each option can be chosen only once.",
    "rank_all": "Please put all the options in order.",
    "constraint": "This answer is not allowed here. Please check it and try again.",
    "want_text": "Please type your answer.",
    "want_media": "Please send a {kind}.",
    "wrong_media": "This is not a {kind}. Please send a {kind}.",
    "want_location": "Please share a location (or send latitude and longitude).",
    "want_ok": "Please confirm with OK.",
    "repeat_answer": "Please answer yes (add another) or no (continue).",
    "not_repeat": "This is not the moment to add or end a repeat.",
    "no_back": "This is the first question: there is nothing to go back to.",
    "bad_jump": "That question cannot be opened now.",
    "completed": "This interview is complete: open a question from the review to change it.",
    "empty_text": "The answer is empty. Please type something, or skip.",
    "add_another": "Add another {label}?",
    "add_first": "Add a {label}?",
    "kind_image": "photo",
    "kind_audio": "voice note or audio file",
    "kind_video": "video",
    "kind_file": "file",
}

_ID: dict[str, str] = {
    "required": "Pertanyaan ini wajib dijawab.",
    "not_integer": "Mohon kirim bilangan bulat, misalnya 42.",
    "not_decimal": "Mohon kirim angka, misalnya 3,5 atau 3.5.",
    "int_too_large": "Angka ini terlalu besar. Mohon kirim bilangan bulat dari {min} sampai {max}.",
    "decimal_too_large": "Angka ini terlalu besar. Mohon kirim angka dengan paling banyak 15 digit sebelum "
                         "tanda desimal.",
    "range_bounds": "Mohon kirim angka dari {min} sampai {max}.",
    "range_step": "Mohon kirim angka dari {min} sampai {max} dengan kelipatan {step}.",
    "not_date": "Mohon kirim tanggal, misalnya 05/03/2024 (tanggal/bulan/tahun) atau 2024-03-05.",
    "not_time": "Mohon kirim jam, misalnya 09:30.",
    "not_datetime": "Mohon kirim tanggal dan jam, misalnya 05/03/2024 09:30.",
    "not_geopoint": "Mohon bagikan lokasi Anda, atau kirim lintang dan bujur, misalnya -1.61 103.61.",
    "geopoint_range": "Lintang harus antara -90 dan 90, bujur antara -180 dan 180.",
    "not_choice": "Mohon pilih salah satu pilihan yang tersedia.",
    "one_choice": "Mohon pilih satu saja.",
    "no_choice": "Mohon pilih paling sedikit satu pilihan.",
    "duplicate_choice": "Setiap pilihan hanya boleh dipilih sekali.",
    "rank_all": "Mohon urutkan semua pilihan.",
    "constraint": "Jawaban ini tidak diperbolehkan. Mohon periksa dan coba lagi.",
    "want_text": "Mohon ketik jawaban Anda.",
    "want_media": "Mohon kirim {kind}.",
    "wrong_media": "Ini bukan {kind}. Mohon kirim {kind}.",
    "want_location": "Mohon bagikan lokasi (atau kirim lintang dan bujur).",
    "want_ok": "Mohon konfirmasi dengan OK.",
    "repeat_answer": "Mohon jawab ya (tambah lagi) atau tidak (lanjut).",
    "not_repeat": "Saat ini tidak sedang menambah atau mengakhiri pengulangan.",
    "no_back": "Ini pertanyaan pertama: tidak ada yang bisa dikembalikan.",
    "bad_jump": "Pertanyaan itu tidak bisa dibuka sekarang.",
    "completed": "Wawancara ini sudah selesai: buka pertanyaan dari ringkasan untuk mengubahnya.",
    "empty_text": "Jawaban kosong. Mohon ketik sesuatu, atau lewati.",
    "add_another": "Tambah {label} lagi?",
    "add_first": "Tambah {label}?",
    "kind_image": "foto",
    "kind_audio": "pesan suara atau file audio",
    "kind_video": "video",
    "kind_file": "file",
}

#: language code -> message code -> text (read-only).
CATALOG: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"en": MappingProxyType(_EN), "id": MappingProxyType(_ID)}
)


def _lang_family(language: str | None) -> str:
    """``"id"`` for ``"id"``, ``"id-ID"``, ``"Indonesian"`` or ``"Bahasa Indonesia"``; else the code as given."""
    if not language:
        return FALLBACK
    low = language.lower()
    if low in CATALOG:
        return low
    if low.startswith("id") or "indonesia" in low:
        return "id"
    if low.startswith("en") or "english" in low:
        return "en"
    return low


def message(code: str, language: str | None, **values: object) -> str:
    """The message ``code`` in ``language`` (English when the language or the code is missing).

    ``values`` fill the ``{name}`` placeholders. Raises KeyError for an unknown code (a programming error).
    """
    table = CATALOG.get(_lang_family(language), CATALOG[FALLBACK])
    text = table.get(code) or CATALOG[FALLBACK][code]
    return text.format(**values) if values else text


def media_kind(kind: str, language: str | None) -> str:
    """Human name of a media kind (``"image"`` -> ``"photo"`` / ``"foto"``)."""
    return message(f"kind_{kind}", language) if f"kind_{kind}" in CATALOG[FALLBACK] else kind
