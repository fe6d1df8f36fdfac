"""Write the first study's two XLSForms (bilingual: Indonesian default, English) as .xlsx with openpyxl.

Study: influence of social-media political communication on voting in the 2024 legislative election
(Pemilu Legislatif, 14 February 2024) in Jambi province.

Outputs (the shipped artifacts; researchers edit the .xlsx directly afterwards):

* ``questionnaires/forms/jambi_voter_survey.xlsx``       voter survey (self- or enumerator-administered)
* ``questionnaires/forms/campaign_team_interview.xlsx``  in-depth interview guide for campaign teams

Usage (from the repository root)::

    python tools/make_study_forms.py            # write both forms, then validate them with pyxform
    python tools/make_study_forms.py --out DIR  # write into another folder

The forms are validated with pyxform (``xls2xform.convert``, ODK Validate not needed) after writing; a
pyxform error aborts with exit code 1. Running the script twice gives the same sheets (the xlsx bytes
differ only in the timestamps openpyxl writes).

Layout follows the XLSForm spec (https://xlsform.org): sheets ``survey``, ``choices``, ``settings``;
translated columns are ``label::Bahasa Indonesia (id)`` / ``label::English (en)`` and the settings
``default_language`` must equal the language part of the header exactly (pyxform compares the text).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

#: Language names exactly as in the column headers (``label::<name>``).
ID = "Bahasa Indonesia (id)"
EN = "English (en)"
LANGS: tuple[str, ...] = (ID, EN)

#: Form version: yyyymmddnn (bump the last two digits for a second edit on the same day).
VERSION = "2026112903"

ROOT = Path(__file__).resolve().parent.parent
FORMS_DIR = ROOT / "questionnaires" / "forms"

Bi = tuple[str, str]  # (Indonesian, English)


@dataclass(frozen=True)
class Row:
    """One survey-sheet row; bilingual texts are ``(Indonesian, English)`` pairs."""

    type: str
    name: str = ""
    label: Bi | None = None
    hint: Bi | None = None
    required: str = ""
    required_message: Bi | None = None
    relevant: str = ""
    constraint: str = ""
    constraint_message: Bi | None = None
    choice_filter: str = ""
    appearance: str = ""
    calculation: str = ""
    repeat_count: str = ""
    parameters: str = ""


@dataclass(frozen=True)
class Choice:
    """One choices-sheet row; ``extra`` holds additional columns (e.g. ``bps_code``)."""

    list_name: str
    name: str
    label: Bi
    extra: dict[str, str] = field(default_factory=dict)


SURVEY_COLUMNS: tuple[str, ...] = (
    "type", "name",
    f"label::{ID}", f"label::{EN}",
    f"hint::{ID}", f"hint::{EN}",
    "required", f"required_message::{ID}", f"required_message::{EN}",
    "relevant",
    "constraint", f"constraint_message::{ID}", f"constraint_message::{EN}",
    "choice_filter", "appearance", "calculation", "repeat_count", "parameters",
)

REQ_MSG: Bi = ("Pertanyaan ini wajib dijawab.", "This question must be answered.")
REQ_CHOICE: Bi = ("Mohon pilih salah satu jawaban.", "Please choose an answer.")
REQ_MULTI: Bi = ("Mohon pilih setidaknya satu jawaban.", "Please choose at least one answer.")
SPECIFY: Bi = ("Sebutkan lainnya:", "Please specify:")


def _row_cells(row: Row) -> list[str]:
    def bi(pair: Bi | None) -> list[str]:
        return list(pair) if pair else ["", ""]

    return [
        row.type, row.name, *bi(row.label), *bi(row.hint),
        row.required, *bi(row.required_message), row.relevant,
        row.constraint, *bi(row.constraint_message),
        row.choice_filter, row.appearance, row.calculation, row.repeat_count, row.parameters,
    ]


# ----------------------------------------------------------------------------------------- choices
def yes_no() -> list[Choice]:
    return [Choice("yes_no", "yes", ("Ya", "Yes")), Choice("yes_no", "no", ("Tidak", "No"))]


def regencies(list_name: str = "regency") -> list[Choice]:
    """Jambi province's 11 regencies/cities (BPS codes from the Kemendagri/BPS region list)."""
    rows = [
        ("kota_jambi", "Kota Jambi", "Jambi City", "1571"),
        ("kota_sungai_penuh", "Kota Sungai Penuh", "Sungai Penuh City", "1572"),
        ("batanghari", "Kabupaten Batanghari", "Batanghari Regency", "1504"),
        ("bungo", "Kabupaten Bungo", "Bungo Regency", "1509"),
        ("kerinci", "Kabupaten Kerinci", "Kerinci Regency", "1501"),
        ("merangin", "Kabupaten Merangin", "Merangin Regency", "1502"),
        ("muaro_jambi", "Kabupaten Muaro Jambi", "Muaro Jambi Regency", "1505"),
        ("sarolangun", "Kabupaten Sarolangun", "Sarolangun Regency", "1503"),
        ("tanjung_jabung_barat", "Kabupaten Tanjung Jabung Barat", "West Tanjung Jabung Regency", "1507"),
        ("tanjung_jabung_timur", "Kabupaten Tanjung Jabung Timur", "East Tanjung Jabung Regency", "1506"),
        ("tebo", "Kabupaten Tebo", "Tebo Regency", "1508"),
    ]
    return [Choice(list_name, n, (i, e), {"bps_code": c}) for n, i, e, c in rows]


def platforms(list_name: str = "platform", *, with_none: bool = True) -> list[Choice]:
    rows: list[tuple[str, Bi]] = [
        ("instagram", ("Instagram", "Instagram")),
        ("facebook", ("Facebook", "Facebook")),
        ("youtube", ("YouTube", "YouTube")),
        ("whatsapp", ("WhatsApp (grup, saluran, atau status)", "WhatsApp (groups, channels or status)")),
        ("tiktok", ("TikTok", "TikTok")),
        ("x", ("X (Twitter)", "X (Twitter)")),
        ("other", ("Lainnya", "Other")),
    ]
    if with_none:
        rows.append(("none", ("Tidak ada", "None")))
    return [Choice(list_name, n, lab) for n, lab in rows]


def content_kinds(list_name: str = "content") -> list[Choice]:
    rows: list[tuple[str, Bi]] = [
        ("programmes", ("Program kerja partai", "Party programmes")),
        ("activities", ("Kegiatan partai", "Party activities")),
        ("candidates", ("Profil calon anggota legislatif (caleg)", "Candidate profiles")),
        ("campaign_messages", ("Pesan dan ajakan kampanye", "Campaign messages")),
        ("other", ("Lainnya", "Other")),
    ]
    return [Choice(list_name, n, lab) for n, lab in rows]


# ------------------------------------------------------------------------------------ voter survey
def voter_survey() -> tuple[list[Row], list[Choice], dict[str, str]]:
    """Rows, choices and settings of ``jambi_voter_survey``."""
    consented = "${consent} = 'yes'"
    saw_any = "${n_platforms} > 0"
    saw_and_voted = "${n_platforms} > 0 and ${voted} != 'no'"  # "prefer not to say" is still asked
    rows: list[Row] = [
        Row("start", "start"),
        Row("end", "end"),
        Row(
            "note", "intro",
            (
                "Selamat datang! Survei ini dilakukan oleh tim peneliti untuk memahami pengaruh komunikasi "
                "politik di media sosial terhadap pilihan warga Provinsi Jambi dalam Pemilu Legislatif "
                "14 Februari 2024. Pengisian memerlukan waktu sekitar 10 menit. Jawaban Anda dijaga "
                "kerahasiaannya dan hanya digunakan untuk keperluan penelitian.",
                "Welcome! This survey is carried out by a research team to understand how political "
                "communication on social media influenced the choices of people in Jambi province in the "
                "legislative election of 14 February 2024. It takes about 10 minutes. Your answers are kept "
                "confidential and are used for research only.",
            ),
        ),
        Row(
            "select_one yes_no", "consent",
            (
                "Apakah Anda bersedia ikut serta dalam survei ini? Keikutsertaan Anda bersifat sukarela "
                "dan Anda boleh berhenti kapan saja.",
                "Do you agree to take part in this survey? Taking part is voluntary and you may stop at "
                "any time.",
            ),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row(
            "note", "no_consent",
            (
                "Terima kasih atas waktu Anda. Survei berakhir di sini dan tidak ada jawaban lain yang "
                "dicatat.",
                "Thank you for your time. The survey ends here and no further answers are recorded.",
            ),
            relevant="${consent} = 'no'",
        ),
        # ---------------------------------------------------------------- about the respondent
        Row("begin group", "respondent", ("Tentang Anda", "About you"), relevant=consented),
        Row(
            "integer", "age",
            ("Berapa usia Anda saat ini?", "How old are you?"),
            ("Tulis usia dalam tahun, misalnya 34.", "In whole years, for example 34."),
            required="yes", required_message=REQ_MSG,
            constraint=". >= 17 and . <= 120",
            constraint_message=(
                "Masukkan usia antara 17 dan 120 tahun. Survei ini untuk pemilih berusia 17 tahun ke "
                "atas, sesuai batas usia memilih di Indonesia (warga yang sudah atau pernah menikah boleh "
                "memilih walau lebih muda, tetapi tidak termasuk sasaran survei ini).",
                "Enter an age between 17 and 120. This survey is for voters aged 17 or over, Indonesia's "
                "voting age (people who are or have been married may vote younger, but are outside this "
                "survey).",
            ),
        ),
        Row(
            "select_one gender", "gender",
            ("Apa jenis kelamin Anda?", "What is your gender?"),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row(
            "select_one regency", "regency",
            ("Di kabupaten/kota mana Anda tinggal?", "Which regency or city do you live in?"),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row(
            "text", "district",
            ("Di kecamatan mana Anda tinggal?", "Which district (kecamatan) do you live in?"),
            ("Tulis nama kecamatan, misalnya Telanaipura.", "Type the district's name, for example Telanaipura."),
            required="yes", required_message=REQ_MSG,
            constraint="string-length(.) >= 3 and string-length(.) <= 60",
            constraint_message=(
                "Nama kecamatan harus terdiri atas 3 sampai 60 karakter.",
                "Type the district's name in 3 to 60 characters.",
            ),
        ),
        Row("calculate", "regency_label", calculation="jr:choice-name(${regency}, '${regency}')"),
        Row(
            "select_one vote", "voted",
            (
                "Apakah Anda memberikan suara dalam Pemilu Legislatif 14 Februari 2024 (DPR, DPD, DPRD)?",
                "Did you vote in the legislative election of 14 February 2024 (DPR, DPD, DPRD)?",
            ),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row("end group"),
        # ---------------------------------------------------------------- exposure
        Row(
            "begin group", "exposure",
            ("Konten politik di media sosial", "Political content on social media"),
            relevant=consented,
        ),
        Row(
            "select_multiple platform", "platforms_seen",
            (
                "Selama masa kampanye (28 November 2023 – 10 Februari 2024), di platform media sosial mana "
                "saja Anda melihat konten politik?",
                "During the campaign period (28 November 2023 – 10 February 2024), on which social media "
                "platforms did you see political content?",
            ),
            (
                "Boleh pilih lebih dari satu. Pilih \"Tidak ada\" jika Anda tidak melihat konten politik "
                "di media sosial.",
                "You may choose more than one. Choose \"None\" if you saw no political content on social "
                "media.",
            ),
            required="yes", required_message=REQ_MULTI,
            constraint="not(selected(., 'none') and count-selected(.) > 1)",
            constraint_message=(
                "\"Tidak ada\" tidak dapat dipilih bersama platform lain.",
                "\"None\" cannot be chosen together with a platform.",
            ),
        ),
        Row(
            "text", "platforms_seen_other", SPECIFY,
            ("Misalnya Telegram atau Threads.", "For example Telegram or Threads."),
            required="yes", required_message=REQ_MSG,
            relevant="selected(${platforms_seen}, 'other')",
        ),
        Row(
            "calculate", "n_platforms",
            calculation="if(selected(${platforms_seen}, 'none'), 0, count-selected(${platforms_seen}))",
        ),
        Row(
            "select_one frequency", "frequency",
            (
                "Seberapa sering Anda melihat konten politik di media sosial selama masa kampanye?",
                "How often did you see political content on social media during the campaign period?",
            ),
            required="yes", required_message=REQ_CHOICE,
            relevant=saw_any, appearance="likert",
        ),
        Row(
            "select_multiple content", "content_seen",
            (
                "Jenis konten politik apa saja yang Anda lihat?",
                "What kinds of political content did you see?",
            ),
            ("Boleh pilih lebih dari satu.", "You may choose more than one."),
            required="yes", required_message=REQ_MULTI, relevant=saw_any,
        ),
        Row(
            "text", "content_seen_other", SPECIFY,
            required="yes", required_message=REQ_MSG,
            relevant="selected(${content_seen}, 'other')",
        ),
        Row(
            "select_one trust", "trust",
            (
                "Seberapa besar Anda percaya pada konten politik di media sosial?",
                "How much do you trust political content on social media?",
            ),
            required="yes", required_message=REQ_CHOICE, appearance="likert",
        ),
        Row("end group"),
        # ---------------------------------------------------------------- influence on the vote
        Row(
            "begin group", "influence",
            ("Pengaruh terhadap pilihan Anda", "Influence on your vote"),
            relevant=consented,
        ),
        Row(
            "select_one influence_platform", "most_influential",
            (
                "Platform mana yang paling memengaruhi pilihan Anda dalam Pemilu Legislatif 2024?",
                "Which platform most influenced your vote in the 2024 legislative election?",
            ),
            (
                "Hanya platform yang Anda pilih sebelumnya yang ditampilkan.",
                "Only the platforms you chose earlier are shown.",
            ),
            required="yes", required_message=REQ_CHOICE, relevant=saw_and_voted,
            choice_filter="selected(${platforms_seen}, name) or name = 'not_influenced'",
        ),
        Row(
            "select_one changed", "changed_choice",
            (
                "Apakah konten partai politik di media sosial mengubah pilihan Anda?",
                "Did political parties' content on social media change your choice?",
            ),
            (
                "Pemilu legislatif memakai beberapa surat suara (DPR, DPD, DPRD provinsi, DPRD "
                "kabupaten/kota); pilih \"Sebagian\" jika hanya sebagian pilihan Anda yang berubah.",
                "The legislative election uses several ballots (DPR, DPD, provincial and regency DPRD); "
                "choose \"Partly\" if only some of your choices changed.",
            ),
            required="yes", required_message=REQ_CHOICE, relevant=saw_and_voted,
        ),
        Row(
            "text", "own_words",
            (
                "Dengan kata-kata Anda sendiri, ceritakan bagaimana konten politik di media sosial "
                "memengaruhi (atau tidak memengaruhi) pilihan Anda.",
                "In your own words, tell us how political content on social media did (or did not) "
                "influence your choice.",
            ),
            (
                "Tulis dengan bebas. Jika lebih suka bercerita secara lisan, lewati pertanyaan ini dan "
                "kirim pesan suara pada pertanyaan berikutnya.",
                "Write freely. If you would rather speak, skip this question and send a voice note at "
                "the next one.",
            ),
            appearance="multiline",
        ),
        Row(
            "audio", "voice_note",
            (
                "(Opsional) Rekam pesan suara tentang pengalaman Anda.",
                "(Optional) Record a voice note about your experience.",
            ),
            (
                "Maksimal sekitar 3 menit. Jangan menyebut nama lengkap Anda.",
                "Up to about 3 minutes. Please do not say your full name.",
            ),
        ),
        Row(
            "image", "campaign_photo",
            (
                "(Opsional) Kirim foto materi kampanye yang Anda terima atau lihat, misalnya brosur, "
                "kartu nama caleg, kalender, atau tangkapan layar unggahan.",
                "(Optional) Send a photo of campaign material you received or saw, for example a leaflet, "
                "a candidate's card, a calendar or a screenshot of a post.",
            ),
            (
                "Hindari memotret wajah orang tanpa izin.",
                "Please avoid photographing people's faces without their permission.",
            ),
            parameters="max-pixels=1600",
        ),
        Row(
            "geopoint", "location",
            (
                "(Opsional) Bagikan lokasi Anda saat ini.",
                "(Optional) Share your current location.",
            ),
            (
                "Lokasi membantu kami memeriksa sebaran wilayah sampel. Lewati jika Anda tidak berkenan.",
                "Your location helps us check how the sample is spread. Skip this if you prefer not to "
                "share it.",
            ),
        ),
        Row("end group"),
        Row(
            "note", "closing",
            (
                "Terima kasih! Jawaban Anda dari ${regency_label} sudah lengkap. Anda melihat konten "
                "politik di ${n_platforms} platform media sosial.",
                "Thank you! Your answers from ${regency_label} are complete. You saw political content on "
                "${n_platforms} social media platform(s).",
            ),
            relevant=consented,
        ),
    ]
    choices: list[Choice] = [
        *yes_no(),
        Choice("gender", "male", ("Laki-laki", "Male")),
        Choice("gender", "female", ("Perempuan", "Female")),
        *regencies(),
        Choice("vote", "yes", ("Ya", "Yes")),
        Choice("vote", "no", ("Tidak", "No")),
        Choice("vote", "prefer_not", ("Tidak ingin menjawab", "Prefer not to say")),
        *platforms(),
        *[Choice("influence_platform", c.name, c.label) for c in platforms(with_none=False)],
        Choice("influence_platform", "not_influenced",
               ("Tidak ada yang memengaruhi pilihan saya", "None of them influenced my vote")),
        Choice("frequency", "daily", ("Setiap hari", "Every day")),
        Choice("frequency", "several_weekly", ("Beberapa kali seminggu", "Several times a week")),
        Choice("frequency", "weekly", ("Sekitar sekali seminggu", "About once a week")),
        Choice("frequency", "rarely", ("Kurang dari sekali seminggu", "Less than once a week")),
        Choice("trust", "1", ("Sangat tidak percaya", "Strongly distrust")),
        Choice("trust", "2", ("Tidak percaya", "Distrust")),
        Choice("trust", "3", ("Ragu-ragu", "Unsure")),
        Choice("trust", "4", ("Percaya", "Trust")),
        Choice("trust", "5", ("Sangat percaya", "Strongly trust")),
        *content_kinds(),
        Choice("changed", "yes", ("Ya, mengubah pilihan saya", "Yes, it changed my choice")),
        Choice("changed", "partly", ("Sebagian", "Partly")),
        Choice("changed", "no", ("Tidak", "No")),
    ]
    settings = {
        "form_id": "jambi_voter_survey",
        "version": VERSION,
        "form_title": "Survei Pemilih Jambi: Media Sosial dan Pemilu Legislatif 2024",
        "default_language": ID,
        "style": "pages",
    }
    return rows, choices, settings


# ---------------------------------------------------------------------- campaign team interview
def campaign_interview() -> tuple[list[Row], list[Choice], dict[str, str]]:
    """Rows, choices and settings of ``campaign_team_interview``."""
    consented = "${consent} = 'yes'"
    may_record = "${consent_recording} = 'yes'"
    rows: list[Row] = [
        Row("start", "start"),
        Row("end", "end"),
        Row(
            "note", "intro",
            (
                "Panduan wawancara mendalam untuk pengurus partai politik dan tim kampanye Pemilu "
                "Legislatif 2024 di Provinsi Jambi. Bacakan setiap pertanyaan, catat jawaban pokoknya, "
                "dan rekam jawaban yang panjang sebagai pesan suara bila informan mengizinkan.",
                "In-depth interview guide for party officials and campaign teams of the 2024 legislative "
                "election in Jambi province. Read each question aloud, note the main points of the answer, "
                "and record long answers as voice notes if the informant allows it.",
            ),
        ),
        Row(
            "text", "interviewer",
            ("Nama atau kode pewawancara", "Interviewer's name or code"),
            required="yes", required_message=REQ_MSG,
        ),
        Row(
            "select_one yes_no", "consent",
            (
                "Bacakan lembar persetujuan kepada informan. Apakah informan bersedia diwawancarai?",
                "Read the consent statement to the informant. Does the informant agree to be interviewed?",
            ),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row(
            "note", "no_consent",
            (
                "Wawancara tidak dilanjutkan. Ucapkan terima kasih kepada informan.",
                "The interview does not go ahead. Thank the informant for their time.",
            ),
            relevant="${consent} = 'no'",
        ),
        Row(
            "select_one yes_no", "consent_recording",
            (
                "Apakah informan mengizinkan jawabannya direkam sebagai pesan suara?",
                "Does the informant allow their answers to be recorded as voice notes?",
            ),
            required="yes", required_message=REQ_CHOICE, relevant=consented,
        ),
        # ---------------------------------------------------------------- informant
        Row("begin group", "informant", ("Informan", "Informant"), relevant=consented),
        Row(
            "text", "informant_code",
            ("Kode informan", "Informant code"),
            (
                "Jangan menulis nama informan; gunakan kode dari daftar informan, misalnya JMB-07.",
                "Do not write the informant's name; use the code from the informant list, e.g. JMB-07.",
            ),
            required="yes", required_message=REQ_MSG,
            constraint="regex(., '^[A-Z]{2,4}-[0-9]{2,3}$')",
            constraint_message=(
                "Format kode: 2–4 huruf kapital, tanda hubung, lalu 2–3 angka (misalnya JMB-07).",
                "Code format: 2–4 capital letters, a hyphen, then 2–3 digits (for example JMB-07).",
            ),
        ),
        Row(
            "select_one role", "role",
            ("Apa peran informan dalam Pemilu Legislatif 2024?", "What was the informant's role in the 2024 legislative election?"),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row("text", "role_other", SPECIFY, required="yes", required_message=REQ_MSG,
            relevant="${role} = 'other'"),
        Row(
            "select_one party", "party",
            ("Partai politik informan", "The informant's political party"),
            (
                "Pilih \"Tanpa partai\" untuk tim calon DPD atau relawan yang bukan anggota partai.",
                "Choose \"No party\" for a DPD candidate's team or volunteers who are not party members.",
            ),
            required="yes", required_message=REQ_CHOICE, appearance="minimal",
        ),
        Row("text", "party_other", SPECIFY, required="yes", required_message=REQ_MSG,
            relevant="${party} = 'other'"),
        Row(
            "select_multiple contest", "contest",
            ("Untuk pemilihan apa saja informan berkampanye?", "Which contests did the informant campaign for?"),
            ("Boleh pilih lebih dari satu.", "You may choose more than one."),
            required="yes", required_message=REQ_MULTI,
        ),
        Row(
            "text", "dapil",
            ("Daerah pemilihan (dapil)", "Electoral district (dapil)"),
            (
                "Tulis seperti pada daftar KPU, misalnya \"Jambi\" untuk DPR RI atau \"Kerinci 2\".",
                "Write it as in the KPU list, for example \"Jambi\" for the DPR or \"Kerinci 2\".",
            ),
            required="yes", required_message=REQ_MSG,
        ),
        Row(
            "select_one campaign_area", "regency",
            ("Wilayah kampanye utama", "Main campaign area"),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row("end group"),
        # ---------------------------------------------------------------- platforms
        Row(
            "begin group", "social_media",
            ("Penggunaan media sosial", "Use of social media"),
            relevant=consented,
        ),
        Row(
            "select_multiple platform", "platforms_used",
            (
                "Platform media sosial apa saja yang dipakai untuk berkampanye?",
                "Which social media platforms were used for campaigning?",
            ),
            ("Boleh pilih lebih dari satu.", "You may choose more than one."),
            required="yes", required_message=REQ_MULTI,
            constraint="not(selected(., 'none') and count-selected(.) > 1)",
            constraint_message=(
                "\"Tidak ada\" tidak dapat dipilih bersama platform lain.",
                "\"None\" cannot be chosen together with a platform.",
            ),
        ),
        Row("text", "platforms_used_other", SPECIFY, required="yes", required_message=REQ_MSG,
            relevant="selected(${platforms_used}, 'other')"),
        Row(
            "begin repeat", "platform_detail",
            ("Platform yang dipakai", "Platform used"),
            relevant="not(selected(${platforms_used}, 'none'))",
            repeat_count="count-selected(${platforms_used})",
        ),
        Row("calculate", "platform_code", calculation="selected-at(${platforms_used}, position(..) - 1)"),
        Row(
            "calculate", "platform_label",
            calculation=(
                "if(${platform_code} = 'other', ${platforms_used_other}, "
                "jr:choice-name(${platform_code}, '${platforms_used}'))"
            ),
        ),
        Row(
            "note", "platform_intro",
            (
                "Pertanyaan berikut tentang penggunaan ${platform_label} dalam kampanye.",
                "The next questions are about how ${platform_label} was used in the campaign.",
            ),
        ),
        Row(
            "text", "why_platform",
            (
                "Mengapa tim memilih memakai ${platform_label}?",
                "Why did the team choose to use ${platform_label}?",
            ),
            required="yes", required_message=REQ_MSG, appearance="multiline",
        ),
        Row(
            "select_multiple account_manager", "account_manager",
            (
                "Siapa yang mengelola akun ${platform_label}?",
                "Who ran the ${platform_label} account?",
            ),
            ("Boleh pilih lebih dari satu.", "You may choose more than one."),
            required="yes", required_message=REQ_MULTI,
        ),
        Row("text", "account_manager_other", SPECIFY, required="yes", required_message=REQ_MSG,
            relevant="selected(${account_manager}, 'other')"),
        Row(
            "select_multiple content", "content_posted",
            (
                "Jenis konten apa saja yang diunggah di ${platform_label}?",
                "What kinds of content were posted on ${platform_label}?",
            ),
            ("Boleh pilih lebih dari satu.", "You may choose more than one."),
            required="yes", required_message=REQ_MULTI,
        ),
        Row(
            "select_one posting", "posting_frequency",
            (
                "Seberapa sering tim mengunggah konten di ${platform_label} selama masa kampanye?",
                "How often did the team post on ${platform_label} during the campaign period?",
            ),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row(
            "text", "results",
            (
                "Bagaimana hasilnya di ${platform_label}? Ceritakan jangkauan dan interaksinya (pengikut, "
                "tayangan, suka, komentar, dibagikan).",
                "What were the results on ${platform_label}? Describe reach and engagement (followers, "
                "views, likes, comments, shares).",
            ),
            required="yes", required_message=REQ_MSG, appearance="multiline",
        ),
        Row(
            "audio", "platform_voice",
            (
                "(Opsional) Rekam jawaban lisan informan tentang ${platform_label}.",
                "(Optional) Record the informant's spoken answer about ${platform_label}.",
            ),
            relevant=may_record,
        ),
        Row("end repeat"),
        Row("end group"),
        # ---------------------------------------------------------------- strategy
        Row("begin group", "strategy", ("Strategi kampanye", "Campaign strategy"), relevant=consented),
        Row(
            "text", "strategy_overall",
            (
                "Ceritakan strategi komunikasi kampanye di media sosial secara keseluruhan.",
                "Describe the overall social media campaign communication strategy.",
            ),
            required="yes", required_message=REQ_MSG, appearance="multiline",
        ),
        Row(
            "text", "key_messages",
            (
                "Apa pesan utama yang ingin disampaikan kepada pemilih?",
                "What were the key messages for voters?",
            ),
            required="yes", required_message=REQ_MSG, appearance="multiline",
        ),
        Row(
            "select_multiple audience", "target_audience",
            ("Siapa sasaran utama kampanye di media sosial?", "Who was the main target audience on social media?"),
            ("Boleh pilih lebih dari satu.", "You may choose more than one."),
            required="yes", required_message=REQ_MULTI,
        ),
        Row(
            "text", "target_audience_why",
            (
                "Mengapa kelompok tersebut yang menjadi sasaran?",
                "Why were these groups targeted?",
            ),
            appearance="multiline",
        ),
        Row(
            "text", "vote_effects",
            (
                "Menurut informan, seberapa besar pengaruh kampanye media sosial terhadap perolehan suara? "
                "Mohon berikan contoh.",
                "In the informant's view, how much did the social media campaign affect the votes won? "
                "Please give examples.",
            ),
            required="yes", required_message=REQ_MSG, appearance="multiline",
        ),
        Row(
            "audio", "vote_effects_voice",
            (
                "(Opsional) Rekam jawaban lisan tentang pengaruh terhadap perolehan suara.",
                "(Optional) Record the spoken answer about the effect on votes.",
            ),
            relevant=may_record,
        ),
        Row(
            "text", "obstacles",
            (
                "Apa saja hambatan utama berkampanye di media sosial?",
                "What were the main obstacles to campaigning on social media?",
            ),
            (
                "Misalnya sinyal internet, biaya iklan, hoaks atau serangan balik, aturan KPU dan Bawaslu.",
                "For example internet coverage, advertising costs, hoaxes or attacks, KPU and Bawaslu rules.",
            ),
            required="yes", required_message=REQ_MSG, appearance="multiline",
        ),
        Row("end group"),
        # ---------------------------------------------------------------- photos of field activities
        Row(
            "begin group", "field", ("Kegiatan lapangan", "Field activities"), relevant=consented,
        ),
        Row(
            "select_one yes_no", "has_photos",
            (
                "Apakah informan memberikan foto kegiatan kampanye di lapangan?",
                "Did the informant provide photos of campaign activities in the field?",
            ),
            required="yes", required_message=REQ_CHOICE,
        ),
        Row(
            "begin repeat", "field_photo",
            ("Foto kegiatan lapangan", "Field activity photo"),
            relevant="${has_photos} = 'yes'",
        ),
        Row(
            "image", "photo",
            ("Kirim foto kegiatan lapangan.", "Send a photo of a field activity."),
            required="yes", required_message=(
                "Mohon kirim fotonya, atau kembali dan jawab \"Tidak\" jika tidak ada foto.",
                "Please send the photo, or go back and answer \"No\" if there are no photos.",
            ),
            parameters="max-pixels=1600",
        ),
        Row(
            "text", "caption",
            (
                "Keterangan foto: kegiatan apa, di mana, dan kapan?",
                "Caption: what activity, where and when?",
            ),
            required="yes", required_message=REQ_MSG,
        ),
        Row("end repeat"),
        Row("calculate", "n_photos", calculation="count(${field_photo})"),
        Row("end group"),
        Row(
            "text", "interviewer_notes",
            ("Catatan pewawancara", "Interviewer's notes"),
            (
                "Suasana wawancara, hal yang perlu ditindaklanjuti, dokumen yang dijanjikan.",
                "Setting of the interview, points to follow up, documents promised.",
            ),
            relevant=consented, appearance="multiline",
        ),
        Row(
            "note", "closing",
            (
                "Wawancara dengan ${informant_code} selesai: ${n_photos} foto kegiatan lapangan tercatat. "
                "Terima kasih!",
                "The interview with ${informant_code} is complete: ${n_photos} field activity photo(s) "
                "recorded. Thank you!",
            ),
            relevant=consented,
        ),
    ]
    party_rows: list[tuple[str, Bi]] = [  # national parties in ballot-number order (KPU, Pemilu 2024)
        ("pkb", ("PKB (Partai Kebangkitan Bangsa)", "PKB (National Awakening Party)")),
        ("gerindra", ("Partai Gerindra", "Gerindra Party")),
        ("pdip", ("PDI Perjuangan", "PDI-P (Indonesian Democratic Party of Struggle)")),
        ("golkar", ("Partai Golkar", "Golkar Party")),
        ("nasdem", ("Partai NasDem", "NasDem Party")),
        ("buruh", ("Partai Buruh", "Labour Party")),
        ("gelora", ("Partai Gelora Indonesia", "Gelora Party")),
        ("pks", ("PKS (Partai Keadilan Sejahtera)", "PKS (Prosperous Justice Party)")),
        ("pkn", ("PKN (Partai Kebangkitan Nusantara)", "PKN (Nusantara Awakening Party)")),
        ("hanura", ("Partai Hanura", "Hanura Party")),
        ("garuda", ("Partai Garuda", "Garuda Party")),
        ("pan", ("PAN (Partai Amanat Nasional)", "PAN (National Mandate Party)")),
        ("pbb", ("PBB (Partai Bulan Bintang)", "PBB (Crescent Star Party)")),
        ("demokrat", ("Partai Demokrat", "Democratic Party")),
        ("psi", ("PSI (Partai Solidaritas Indonesia)", "PSI (Indonesian Solidarity Party)")),
        ("perindo", ("Partai Perindo", "Perindo Party")),
        ("ppp", ("PPP (Partai Persatuan Pembangunan)", "PPP (United Development Party)")),
        ("ummat", ("Partai Ummat", "Ummat Party")),
        ("no_party", ("Tanpa partai (tim calon DPD atau relawan)", "No party (DPD candidate's team or volunteers)")),
        ("other", ("Lainnya", "Other")),
    ]
    choices: list[Choice] = [
        *yes_no(),
        Choice("role", "candidate", ("Calon anggota legislatif (caleg)", "Legislative candidate")),
        Choice("role", "party_official", ("Pengurus partai", "Party official")),
        Choice("role", "campaign_coordinator",
               ("Koordinator tim kampanye/pemenangan", "Campaign team coordinator")),
        Choice("role", "social_media_admin", ("Admin media sosial", "Social media administrator")),
        Choice("role", "volunteer", ("Relawan", "Volunteer")),
        Choice("role", "other", ("Lainnya", "Other")),
        *[Choice("party", n, lab) for n, lab in party_rows],
        Choice("contest", "dpr", ("DPR RI", "DPR (national parliament)")),
        Choice("contest", "dpd", ("DPD RI", "DPD (regional representatives council)")),
        Choice("contest", "dprd_province", ("DPRD Provinsi Jambi", "Jambi provincial DPRD")),
        Choice("contest", "dprd_regency", ("DPRD kabupaten/kota", "Regency/city DPRD")),
        *regencies("campaign_area"),
        Choice("campaign_area", "whole_province", ("Seluruh Provinsi Jambi", "The whole of Jambi province")),
        *platforms(),
        Choice("account_manager", "candidate", ("Caleg sendiri", "The candidate personally")),
        Choice("account_manager", "campaign_team", ("Tim kampanye/pemenangan", "The campaign team")),
        Choice("account_manager", "party_media", ("Tim media partai", "The party's media team")),
        Choice("account_manager", "consultant", ("Konsultan atau agensi berbayar", "A paid consultant or agency")),
        Choice("account_manager", "volunteers", ("Relawan atau simpatisan", "Volunteers or supporters")),
        Choice("account_manager", "other", ("Lainnya", "Other")),
        *content_kinds(),
        Choice("posting", "several_daily", ("Beberapa kali sehari", "Several times a day")),
        Choice("posting", "daily", ("Sekali sehari", "Once a day")),
        Choice("posting", "several_weekly", ("Beberapa kali seminggu", "Several times a week")),
        Choice("posting", "weekly", ("Sekali seminggu", "Once a week")),
        Choice("posting", "rarely", ("Lebih jarang dari seminggu sekali", "Less than once a week")),
        Choice("audience", "first_time", ("Pemilih pemula", "First-time voters")),
        Choice("audience", "youth", ("Anak muda", "Young people")),
        Choice("audience", "women", ("Perempuan dan ibu rumah tangga", "Women and homemakers")),
        Choice("audience", "farmers", ("Petani dan pekebun (sawit, karet)", "Farmers and smallholders (oil palm, rubber)")),
        Choice("audience", "workers", ("Buruh dan pekerja", "Workers")),
        Choice("audience", "religious", ("Komunitas keagamaan", "Religious communities")),
        Choice("audience", "urban", ("Warga perkotaan", "Urban residents")),
        Choice("audience", "rural", ("Warga perdesaan", "Rural residents")),
        Choice("audience", "everyone", ("Semua kalangan", "Everyone")),
    ]
    settings = {
        "form_id": "campaign_team_interview",
        "version": VERSION,
        "form_title": "Wawancara Tim Kampanye: Media Sosial dan Pemilu Legislatif 2024",
        "default_language": ID,
        "style": "pages",
    }
    return rows, choices, settings


# ------------------------------------------------------------------------------------------ writer
_HEADER_FONT = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def _sheet(wb: Workbook, title: str, header: list[str], body: list[list[str]], widths: dict[str, int]) -> None:
    ws = wb.create_sheet(title)
    ws.append(header)
    for cells in body:
        ws.append([c if c != "" else None for c in cells])
    for col, name in enumerate(header, start=1):
        cell = ws.cell(row=1, column=col)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        width = next((w for key, w in widths.items() if name.startswith(key)), 14)
        ws.column_dimensions[get_column_letter(col)].width = width
        if width >= 30:
            for row in ws.iter_rows(min_row=2, min_col=col, max_col=col):
                row[0].alignment = Alignment(wrap_text=True, vertical="top")
    ws.freeze_panes = "C2" if title == "survey" else "A2"


def write_form(path: Path, rows: list[Row], choices: list[Choice], settings: dict[str, str]) -> None:
    """Write one XLSForm workbook (survey, choices, settings sheets) to ``path``."""
    wb = Workbook()
    wb.remove(wb.active)
    _sheet(
        wb, "survey", list(SURVEY_COLUMNS), [_row_cells(r) for r in rows],
        {"type": 26, "name": 20, "label": 50, "hint": 40, "required_message": 30, "constraint_message": 30,
         "relevant": 30, "constraint": 30, "calculation": 40, "choice_filter": 30, "repeat_count": 26},
    )
    extra_cols = sorted({k for c in choices for k in c.extra})
    _sheet(
        wb, "choices", ["list_name", "name", f"label::{ID}", f"label::{EN}", *extra_cols],
        [[c.list_name, c.name, *c.label, *[c.extra.get(k, "") for k in extra_cols]] for c in choices],
        {"list_name": 18, "name": 22, "label": 44},
    )
    _sheet(wb, "settings", list(settings), [list(settings.values())], {"form_title": 50, "default_language": 24})
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def validate(path: Path) -> list[str]:
    """Convert ``path`` with pyxform (no ODK Validate); return pyxform's warnings. Raises on errors."""
    from pyxform.xls2xform import convert

    warnings: list[str] = []
    convert(xlsform=str(path), warnings=warnings, validate=False)
    return warnings


FORMS = {
    "jambi_voter_survey.xlsx": voter_survey,
    "campaign_team_interview.xlsx": campaign_interview,
}


def main(argv: list[str] | None = None) -> int:
    """Write and validate both forms. Returns 0, or 1 when pyxform refuses a form."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FORMS_DIR, help="output folder (default: questionnaires/forms)")
    args = parser.parse_args(argv)
    status = 0
    for filename, build in FORMS.items():
        path = args.out / filename
        write_form(path, *build())
        try:
            warnings = validate(path)
        except Exception as exc:  # pyxform raises PyXFormError and a few others
            print(f"{path}: pyxform refused the form: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{path}: written, pyxform OK" + (f" ({len(warnings)} warnings)" if warnings else ""))
        for w in warnings:
            print(f"  warning: {w}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
