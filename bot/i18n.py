"""Every text the bot itself says, in Indonesian (``id``, the default) and English (``en``).

Question labels, hints and validation messages come from the form (in the interview language); this
module holds only the bot's own words: buttons, hints on how to answer, errors, help and the commands
menu. `t(lang, key, **values)` formats one text; an unknown language falls back to Indonesian.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

#: UI languages, in the order offered on the language-choice keyboard.
LANGUAGES: tuple[str, ...] = ("id", "en")
DEFAULT_LANGUAGE = "id"
LANGUAGE_NAMES: Mapping[str, str] = MappingProxyType({"id": "Bahasa Indonesia", "en": "English"})

_T: dict[str, tuple[str, str]] = {
    # key: (Indonesian, English)
    # ---- onboarding
    "choose_language": ("Pilih bahasa / Choose a language:", "Choose a language / Pilih bahasa:"),
    "language_set": ("Bahasa diatur ke Bahasa Indonesia.", "Language set to English."),
    "welcome_respondent": (
        "Selamat datang di {title}. Jawaban Anda disimpan setiap kali Anda menjawab; Anda bisa berhenti "
        "dengan /pause dan melanjutkan kapan saja.",
        "Welcome to {title}. Your answers are saved as you go; you can stop with /pause and continue any time.",
    ),
    "welcome_enumerator": (
        "Anda terdaftar sebagai enumerator. Mulai wawancara dengan /new. Bantuan: /help",
        "You are registered as an enumerator. Start an interview with /new. Help: /help",
    ),
    "welcome_researcher": (
        "Anda terdaftar sebagai peneliti. Mulai wawancara dengan /new. Bantuan: /help",
        "You are registered as a researcher. Start an interview with /new. Help: /help",
    ),
    "welcome_unknown": (
        "Halo! Bot ini menjalankan survei. Buka tautan undangan dari tim peneliti untuk mulai.",
        "Hello! This bot runs surveys. Open the invitation link from the research team to begin.",
    ),
    "invite_invalid": (
        "Tautan undangan ini tidak berlaku lagi (kedaluwarsa atau sudah terpakai). Minta tautan baru "
        "kepada tim peneliti.",
        "This invitation link is no longer valid (expired or used up). Ask the research team for a new one.",
    ),
    "open_interview": (
        "Anda punya wawancara yang belum selesai ({form}, {where}). Lanjutkan atau mulai dari awal?",
        "You have an unfinished interview ({form}, {where}). Continue it or start over?",
    ),
    "btn_resume": ("▶ Lanjutkan", "▶ Continue"),
    "btn_start_over": ("↺ Mulai dari awal", "↺ Start over"),
    "help_respondent": (
        "Jawab setiap pertanyaan dengan tombol atau dengan mengetik.\n"
        "/back – pertanyaan sebelumnya\n/skip – lewati (jika boleh)\n/review – lihat dan ubah jawaban\n"
        "/pause – berhenti sebentar, /resume – lanjutkan\n/language – ganti bahasa\n"
        "/delete_me – tarik diri dan hapus jawaban Anda",
        "Answer each question with the buttons or by typing.\n"
        "/back – previous question\n/skip – skip (when allowed)\n/review – see and change answers\n"
        "/pause – take a break, /resume – continue\n/language – change language\n"
        "/delete_me – withdraw and delete your answers",
    ),
    "help_enumerator": (
        "/new – wawancara baru\n/mine – wawancara saya\n/resume – lanjutkan wawancara yang dijeda\n"
        "/back, /skip, /review, /pause – selama wawancara\n"
        "/note teks – catatan lapangan; pesan suara atau foto dengan keterangan juga menjadi catatan "
        "saat tidak sedang menjawab pertanyaan media\n/language – ganti bahasa",
        "/new – new interview\n/mine – my interviews\n/resume – continue a paused interview\n"
        "/back, /skip, /review, /pause – during an interview\n"
        "/note text – field note; a voice note or a captioned photo is also a note when the current "
        "question does not ask for media\n/language – change language",
    ),
    # ---- commands menu (<= 256 chars each, Bot API BotCommand.description)
    "cmd_start": ("Mulai", "Start"),
    "cmd_help": ("Bantuan", "Help"),
    "cmd_back": ("Pertanyaan sebelumnya", "Previous question"),
    "cmd_skip": ("Lewati pertanyaan", "Skip the question"),
    "cmd_review": ("Lihat dan ubah jawaban", "Review and change answers"),
    "cmd_pause": ("Jeda wawancara", "Pause the interview"),
    "cmd_resume": ("Lanjutkan wawancara", "Continue the interview"),
    "cmd_language": ("Ganti bahasa", "Change language"),
    "cmd_delete_me": ("Tarik diri dan hapus jawaban", "Withdraw and delete my answers"),
    "cmd_new": ("Wawancara baru", "New interview"),
    "cmd_mine": ("Wawancara saya", "My interviews"),
    "cmd_note": ("Catatan lapangan", "Field note"),
    # ---- interview
    "pick_form": ("Pilih kuesioner:", "Choose a questionnaire:"),
    "no_forms": (
        "Belum ada kuesioner yang diterbitkan. Peneliti dapat menerbitkan dengan: suara admin publish FORM.xlsx",
        "No questionnaire is published yet. A researcher can publish one with: suara admin publish FORM.xlsx",
    ),
    "respondent_code": ("Kode responden: {code}", "Respondent code: {code}"),
    "ask_enumerator_location": (
        "Bagikan lokasi Anda saat ini (paradata) dengan tombol 📍 di bawah; pertanyaan pertama menyusul.",
        "Share your current location (paradata) with the 📍 button below; the first question follows.",
    ),
    "location_saved": ("Lokasi dicatat.", "Location recorded."),
    "no_interview": (
        "Tidak ada wawancara yang sedang berjalan.",
        "There is no interview in progress.",
    ),
    "no_interview_enumerator": (
        "Tidak ada wawancara yang sedang berjalan. Mulai dengan /new atau lanjutkan dengan /resume.",
        "There is no interview in progress. Start one with /new or continue one with /resume.",
    ),
    "only_enumerators": (
        "Perintah ini untuk enumerator dan peneliti.",
        "This command is for enumerators and researchers.",
    ),
    "paused": (
        "Wawancara dijeda; semua jawaban tersimpan. Lanjutkan dengan /resume.",
        "Interview paused; every answer is saved. Continue with /resume.",
    ),
    "nothing_to_resume": ("Tidak ada wawancara yang dijeda.", "There is no paused interview."),
    "review_header": ("Tinjau jawaban ({n}). Ketuk untuk mengubah:", "Review your answers ({n}). Tap to change:"),
    "review_empty": ("Belum ada jawaban.", "No answers yet."),
    "btn_submit": ("✅ Kirim", "✅ Submit"),
    "btn_continue": ("▶ Lanjut menjawab", "▶ Continue answering"),
    "ready_to_submit": (
        "Semua pertanyaan sudah dijawab. Periksa lalu tekan Kirim.",
        "All questions are answered. Check them, then press Submit.",
    ),
    "submitted": ("Terima kasih! Jawaban telah dikirim.", "Thank you! Your answers have been submitted."),
    "summary": ("Ringkasan: {n} jawaban, ID {instance}.", "Summary: {n} answers, ID {instance}."),
    "already_submitted": ("Sudah dikirim.", "Already submitted."),
    "not_complete": ("Masih ada pertanyaan yang perlu dijawab.", "Some questions still need an answer."),
    "survey_already_submitted": (
        "Anda sudah mengisi survei ini. Terima kasih! Jawaban Anda sudah kami terima.",
        "You have already answered this survey. Thank you! We have your answers.",
    ),
    "already_answered": ("Sudah dijawab.", "Already answered."),
    "stale_button": (
        "Tombol ini sudah tidak berlaku.",
        "This button is no longer valid.",
    ),
    "consent_refused": (
        "Terima kasih atas waktu Anda. Tanpa persetujuan, wawancara tidak dilanjutkan dan tidak ada jawaban "
        "yang disimpan.",
        "Thank you for your time. Without consent the interview does not continue and no answers are kept.",
    ),
    "answered_mark": ("✔ {value}", "✔ {value}"),
    "edit_not_read": (
        "Pesan yang diedit tidak dibaca ulang. Untuk mengubah jawaban, pakai /back atau /review.",
        "Edited messages are not read again. To change an answer, use /back or /review.",
    ),
    "media_received": ("diterima", "received"),
    "cmd_link_back": ("◀ Kembali: /back", "◀ Back: /back"),
    "cmd_link_skip": ("⏭ Lewati: /skip", "⏭ Skip: /skip"),
    "skipped_mark": ("— (dilewati)", "— (skipped)"),
    "location_skipped": ("✔ Lokasi dilewati", "✔ Location skipped"),
    "btn_yes": ("Ya", "Yes"),
    "btn_no": ("Tidak", "No"),
    "btn_done": ("Selesai ✔", "Done ✔"),
    "btn_ok": ("OK", "OK"),
    "btn_back": ("◀ Kembali", "◀ Back"),
    "btn_skip": ("Lewati ⏭", "Skip ⏭"),
    "btn_more": ("Lainnya ▶", "More ▶"),
    "btn_prev": ("◀ Sebelumnya", "◀ Previous"),
    "btn_share_location": ("📍 Kirim lokasi saya", "📍 Send my location"),
    "btn_cancel": ("Batal", "Cancel"),
    # ---- how to answer, by question type
    "how_text": ("Ketik jawaban Anda.", "Type your answer."),
    "how_integer": ("Ketik bilangan bulat, mis. 42.", "Type a whole number, e.g. 42."),
    "how_decimal": ("Ketik angka, mis. 3.5.", "Type a number, e.g. 3.5."),
    "how_range": ("Ketik angka dari {start} sampai {end}.", "Type a number from {start} to {end}."),
    "how_date": ("Ketik tanggal: TTTT-BB-HH, mis. 2024-03-05.", "Type a date: YYYY-MM-DD, e.g. 2024-03-05."),
    "how_time": ("Ketik jam: JJ:MM, mis. 09:55.", "Type a time: HH:MM, e.g. 09:55."),
    "how_datetime": (
        "Ketik tanggal dan jam: TTTT-BB-HH JJ:MM, mis. 2024-03-05 09:55.",
        "Type a date and time: YYYY-MM-DD HH:MM, e.g. 2024-03-05 09:55.",
    ),
    "how_geopoint": (
        "Tekan tombol 📍 di bawah, atau ketik lintang, bujur (mis. -1.61, 103.61).",
        "Press the 📍 button below, or type latitude, longitude (e.g. -1.61, 103.61).",
    ),
    "how_image": ("Kirim foto.", "Send a photo."),
    "how_audio": ("Kirim pesan suara (tahan tombol mikrofon) atau berkas audio.", "Send a voice note (hold the microphone button) or an audio file."),
    "how_video": ("Kirim video.", "Send a video."),
    "how_file": ("Kirim berkas.", "Send a file."),
    "how_select_one": ("Pilih satu.", "Choose one."),
    "how_select_multiple": ("Pilih satu atau lebih, lalu tekan Selesai.", "Choose one or more, then press Done."),
    "how_acknowledge": ("Tekan OK untuk lanjut.", "Press OK to continue."),
    # ---- wrong kinds / media (FC-24, FC-28)
    "expected_image": ("sebuah foto", "a photo"),
    "expected_audio": ("pesan suara atau berkas audio", "a voice note or audio file"),
    "expected_video": ("sebuah video", "a video"),
    "expected_file": ("sebuah berkas", "a file"),
    "expected_text": ("jawaban yang diketik", "a typed answer"),
    "expected_select": ("pilihan dari tombol", "a choice from the buttons"),
    "expected_geopoint": ("lokasi (tombol 📍) atau lintang, bujur", "a location (📍 button) or latitude, longitude"),
    "got_photo": ("foto", "a photo"),
    "got_voice": ("pesan suara", "a voice note"),
    "got_audio": ("berkas audio", "an audio file"),
    "got_video": ("video", "a video"),
    "got_document": ("berkas", "a file"),
    "got_sticker": ("stiker", "a sticker"),
    "got_location": ("lokasi", "a location"),
    "got_text": ("teks", "text"),
    "got_other": ("pesan jenis ini", "this kind of message"),
    "wrong_kind": (
        "Pertanyaan ini meminta {expected}, tetapi Anda mengirim {got}. {how}",
        "This question needs {expected}, but you sent {got}. {how}",
    ),
    "too_big": (
        "Berkas ini terlalu besar ({size_mb} MB); bot hanya dapat menerima hingga {limit_mb} MB. "
        "Kirim versi yang lebih kecil: rekam klip yang lebih pendek, atau kirim foto biasa (bukan sebagai berkas). "
        "Pertanyaannya masih sama.",
        "This file is too large ({size_mb} MB); the bot can only receive up to {limit_mb} MB. "
        "Send a smaller one: record a shorter clip, or send the picture as a normal photo (not as a file). "
        "The question stays the same.",
    ),
    "media_unreadable": (
        "Berkas ini tidak dapat dipakai ({reason}). Silakan kirim lagi.",
        "This file can't be used ({reason}). Please send it again.",
    ),
    "download_failed": (
        "Berkas tidak dapat diunduh saat ini. Silakan kirim lagi sebentar lagi.",
        "The file could not be downloaded right now. Please send it again in a moment.",
    ),
    # ---- notes
    "note_saved": ("📝 Catatan lapangan disimpan.", "📝 Field note saved."),
    "note_next": (
        "Kirim catatannya sekarang: teks, pesan suara, foto atau berkas.",
        "Send the note now: text, a voice note, a photo or a file.",
    ),
    "note_needs_interview": (
        "Catatan lapangan dilampirkan ke wawancara yang sedang berjalan; mulai dengan /new atau /resume.",
        "Field notes are attached to the interview in progress; start one with /new or /resume.",
    ),
    "caption_saved": ("Keterangan disimpan sebagai catatan.", "Caption kept as a note."),
    # ---- withdrawal
    "delete_confirm": (
        "Yakin ingin menarik diri? Semua jawaban dan berkas Anda akan dihapus dan tidak dapat dikembalikan.",
        "Do you really want to withdraw? All your answers and files will be deleted and cannot be recovered.",
    ),
    "btn_delete_yes": ("Ya, hapus semuanya", "Yes, delete everything"),
    "deleted": (
        "Jawaban dan berkas Anda telah dihapus ({n} wawancara). Terima kasih.",
        "Your answers and files have been deleted ({n} interviews). Thank you.",
    ),
    "delete_cancelled": ("Dibatalkan; tidak ada yang dihapus.", "Cancelled; nothing was deleted."),
    # ---- lists
    "mine_header": ("Wawancara Anda:", "Your interviews:"),
    "mine_empty": ("Anda belum punya wawancara. Mulai dengan /new.", "You have no interviews yet. Start one with /new."),
    "status_in_progress": ("berjalan", "in progress"),
    "status_paused": ("dijeda", "paused"),
    "status_submitted": ("terkirim", "submitted"),
    "status_discarded": ("dibatalkan", "discarded"),
    "at_question": ("pertanyaan {marker}", "question {marker}"),
    "at_review": ("tinjauan", "review"),
    # ---- errors
    "error_generic": (
        "Maaf, terjadi gangguan. Jawaban yang sudah tersimpan aman. Silakan coba lagi.",
        "Sorry, something went wrong. Answers already saved are safe. Please try again.",
    ),
    "unknown_command": ("Perintah tidak dikenal. Lihat /help.", "Unknown command. See /help."),
}

TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {key: MappingProxyType({"id": pair[0], "en": pair[1]}) for key, pair in _T.items()}
)


def ui_language(code: str | None) -> str:
    """Map a Telegram ``language_code`` (``"en-US"``, ``"id"``, ``None``) or form language to ``id``/``en``.

    Anything that is not English becomes Indonesian, the study's default.
    """
    if code and code.lower().split("-")[0] in ("en", "english"):
        return "en"
    return DEFAULT_LANGUAGE


def t(lang: str | None, key: str, **values: object) -> str:
    """The text ``key`` in ``lang`` (``id``/``en``; other codes via `ui_language`), formatted with ``values``.

    Raises KeyError for an unknown key (a programming error, caught by tests).
    """
    texts = TEXTS[key]
    code = lang if lang in texts else ui_language(lang)
    text = texts[code]
    return text.format(**values) if values else text
