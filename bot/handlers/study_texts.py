"""The bot's own words for running a study (issue 6), in Indonesian (``id``) and English (``en``).

`st(lang, key, **values)` formats one text; an unknown language falls back to Indonesian (like `bot.i18n.t`).
"""

from __future__ import annotations

from bot.i18n import ui_language

_T: dict[str, tuple[str, str]] = {
    # commands menu of researchers (issue-4 staff commands come first, with bot.i18n's descriptions)
    "cmd_invite": ("Buat tautan undangan", "Make an invite link"),
    "cmd_invites": ("Undangan yang berlaku", "Valid invites"),
    "cmd_revoke": ("Cabut undangan", "Revoke an invite"),
    "cmd_forms": ("Formulir dan versi", "Forms and versions"),
    "cmd_close": ("Tutup formulir", "Close a form"),
    "cmd_reopen": ("Buka lagi formulir", "Open a form again"),
    "cmd_stats": ("Statistik dan grafik", "Statistics and chart"),
    "cmd_export": ("Ekspor ke Excel", "Export to Excel"),
    "only_researchers": ("Perintah ini hanya untuk peneliti.", "This command is for researchers only."),
    "form_closed": ("Formulir ini sudah ditutup; wawancara baru tidak bisa dimulai.",
                    "This form is closed; no new interviews can start."),
    # invites
    "invite_usage": ("Pakai: /invite enumerator  atau  /invite respondent FORM [--uses N] [--expires 7d]",
                     "Use: /invite enumerator  or  /invite respondent FORM [--uses N] [--expires 7d]"),
    "invite_bad_option": ("Opsi tidak dikenal atau salah: {opt}", "Unknown or malformed option: {opt}"),
    "invite_unknown_form": ("Tidak ada formulir aktif {form}. Lihat /forms.", "No open form {form}. See /forms."),
    "invite_made": ("Undangan {role}{form}: {link}\nKode {code}; {uses}; {expires}.",
                    "Invite for {role}{form}: {link}\nCode {code}; {uses}; {expires}."),
    "uses_unlimited": ("tanpa batas pemakaian", "unlimited uses"),
    "uses_n": ("maks. {n} kali", "at most {n} uses"),
    "never_expires": ("tidak kedaluwarsa", "never expires"),
    "expires_at": ("berlaku sampai {when} WIB", "valid until {when} WIB"),
    "invites_header": ("Undangan yang masih berlaku:", "Invites still valid:"),
    "invites_empty": ("Tidak ada undangan yang berlaku.", "No valid invites."),
    "revoke_usage": ("Pakai: /revoke KODE", "Use: /revoke CODE"),
    "revoked": ("Undangan {code} dicabut.", "Invite {code} revoked."),
    "revoke_unknown": ("Tidak ada undangan berlaku dengan kode {code}.", "No valid invite with code {code}."),
    # forms
    "forms_header": ("Formulir:", "Forms:"),
    "forms_empty": ("Belum ada formulir. Kirim file .xlsx untuk menerbitkan.", "No forms yet. Send an .xlsx file to publish one."),
    "form_open": ("terbuka", "open"),
    "form_closed_word": ("ditutup", "closed"),
    "close_usage": ("Pakai: /close FORM", "Use: /close FORM"),
    "closed_ok": ("{form} ditutup: tidak ada wawancara baru; yang sedang berjalan boleh selesai. Buka lagi: /reopen {form}",
                  "{form} closed: no new interviews; those in progress can finish. Open again: /reopen {form}"),
    "close_unknown": ("{form} tidak terbuka (lihat /forms).", "{form} is not open (see /forms)."),
    "reopen_usage": ("Pakai: /reopen FORM", "Use: /reopen FORM"),
    "reopened": ("{form} dibuka lagi (versi {version}).", "{form} is open again (version {version})."),
    "unknown_form": ("Formulir {form} tidak dikenal (lihat /forms).", "Unknown form {form} (see /forms)."),
    # publishing
    "publish_checking": ("Memeriksa {file}…", "Checking {file}…"),
    "publish_problems": ("{file}: {n} masalah — formulir tidak diterbitkan:", "{file}: {n} problem(s) — the form was not published:"),
    "publish_not_xlsx": ("Kirim formulir sebagai file .xlsx.", "Send the form as an .xlsx file."),
    "publish_too_big": ("File terlalu besar (maks. 20 MB).", "The file is too big (at most 20 MB)."),
    "publish_same": ("{form} versi ini sudah terbit dan aktif; tidak ada yang berubah.",
                     "This version of {form} is already published and active; nothing changed."),
    "publish_new_form": ("Formulir baru {form} (versi {version}): {n} pertanyaan.",
                         "New form {form} (version {version}): {n} questions."),
    "publish_changes": ("{form}: versi {old} → {version}.", "{form}: version {old} → {version}."),
    "publish_added": ("Ditambah: {items}", "Added: {items}"),
    "publish_removed": ("Dihapus: {items}", "Removed: {items}"),
    "publish_relabelled": ("Label berubah: {items}", "Relabelled: {items}"),
    "publish_nochange": ("Pertanyaan sama; hanya isi lain yang berubah.", "Same questions; only other content changed."),
    "publish_in_progress": ("{n} wawancara yang sedang berjalan tetap memakai versi lama sampai selesai.",
                            "{n} interview(s) in progress stay on the old version until they finish."),
    "publish_warnings": ("{n} peringatan (formulir tetap bisa dipakai, tapi periksa):",
                         "{n} warning(s) (the form runs, but check these):"),
    "publish_confirm": ("Terbitkan?", "Publish?"),
    "btn_publish": ("✅ Terbitkan", "✅ Publish"),
    "btn_cancel": ("Batal", "Cancel"),
    "published": ("Terbit: {form} versi {version}. Wawancara baru memakai versi ini.",
                  "Published: {form} version {version}. New interviews use this version."),
    "publish_cancelled": ("Tidak diterbitkan.", "Not published."),
    "publish_expired": ("File ini tidak ada lagi; kirim ulang .xlsx.", "This file is gone; send the .xlsx again."),
    # stats
    "stats_usage": ("Pakai: /stats FORM", "Use: /stats FORM"),
    "stats_title": ("Statistik {form}", "Statistics {form}"),
    "stats_total": ("Total: {counts}", "Total: {counts}"),
    "stats_today": ("Hari ini (WIB): {counts}", "Today (WIB): {counts}"),
    "stats_enum": ("Terkirim per enumerator: {counts}", "Submitted per enumerator: {counts}"),
    "stats_group": ("Terkirim per {label}: {counts}", "Submitted per {label}: {counts}"),
    "stats_median": ("Durasi median: {d}", "Median duration: {d}"),
    "stats_flagged": ("Ditandai (cek mutu): {n} — /review", "Flagged (quality): {n} — /review"),
    "chart_status": ("per status", "by status"),
    "chart_enum": ("terkirim per enumerator", "submitted per enumerator"),
    "chart_group": ("terkirim per {label}", "submitted per {label}"),
    "none": ("tidak ada", "none"),
    "digest_title": ("Ringkasan harian {day}", "Daily digest {day}"),
    "morning_note": ("Selamat pagi! Wawancara Anda yang dijeda:\n{items}\nLanjutkan dengan /resume.",
                     "Good morning! Your paused interviews:\n{items}\nContinue with /resume."),
    # reminders
    "reminder": ("Halo! Survei \"{title}\" Anda belum selesai ({n}/{total}). Lanjutkan dengan /resume — "
                 "jawaban Anda sudah tersimpan. Tidak mau diingatkan? /stop",
                 "Hello! Your survey \"{title}\" is not finished yet ({n}/{total}). Continue with /resume — "
                 "your answers are saved. No more reminders? /stop"),
    "stopped": ("Baik, tidak ada pengingat lagi.", "OK, no more reminders."),
    # review
    "review_empty": ("Tidak ada kiriman bertanda yang menunggu tinjauan.", "No flagged submissions waiting for review."),
    "review_card": ("Tinjauan {code} · {form} · {who}\nDikirim {when} WIB · {dur}\nTanda: {flags}\n"
                    "{answers}\n\nBalas pesan ini untuk menambah catatan.",
                    "Review {code} · {form} · {who}\nSubmitted {when} WIB · {dur}\nFlags: {flags}\n"
                    "{answers}\n\nReply to this message to add a note."),
    "btn_approve": ("✅ Setujui", "✅ Approve"),
    "btn_hold": ("⏸ Tahan", "⏸ On hold"),
    "btn_reject": ("❌ Tolak", "❌ Reject"),
    "btn_next": ("Berikutnya ▶", "Next ▶"),
    "review_done": ("{code}: {status}", "{code}: {status}"),
    "review_note_saved": ("Catatan disimpan untuk {code}.", "Note saved for {code}."),
    "rs_approved": ("disetujui", "approved"),
    "rs_on_hold": ("ditahan", "on hold"),
    "rs_rejected": ("ditolak", "rejected"),
    "rs_none": ("belum ditinjau", "not reviewed"),
    # export
    "export_usage": ("Pakai: /export FORM [media]", "Use: /export FORM [media]"),
    "export_progress": ("Ekspor {form}: {done}/{total} kiriman…", "Exporting {form}: {done}/{total} submissions…"),
    "export_done": ("Ekspor {form} selesai: {n} kiriman.", "Export of {form} done: {n} submissions."),
    "export_too_big": ("File ekspor {size} MB — melebihi batas Telegram 50 MB. Tersimpan di server: {path}",
                       "The export is {size} MB — over Telegram's 50 MB limit. Written on the server: {path}"),
    "export_failed": ("Ekspor gagal: {error}", "Export failed: {error}"),
}


def st(lang: str | None, key: str, **values: object) -> str:
    """The study text ``key`` in ``lang`` (``id``/``en``), formatted with ``values``. KeyError if unknown."""
    pair = _T[key]
    text = pair[1] if ui_language(lang) == "en" else pair[0]
    return text.format(**values) if values else text


TEXT_KEYS: frozenset[str] = frozenset(_T)
