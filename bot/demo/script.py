"""The scripted field day, as data: who takes part and what each of them does, in order.

A Tuesday of fieldwork in Jambi for the study of social media and the 2024 legislative election
(questionnaires/forms/README.md): the researcher invites an enumerator, the enumerator interviews a voter
(jambi_voter_survey, in Indonesian) and a party's social media admin (campaign_team_interview, with one
repeat per platform and field photos), two voters answer on their own through a deep link (one in English,
one in Indonesian who pauses; the bot restarts; she resumes), then the researcher exports the data.

Answers are the study forms' real choice names and realistic texts (see tests/data/*answers*).
"""

from __future__ import annotations

from bot.demo.player import Actor
from bot.demo.steps import (
    SKIP,
    AdminInvite,
    Answer,
    ChatInvite,
    ChooseLanguage,
    Command,
    Here,
    Mine,
    Narrate,
    NewInterview,
    Note,
    OpenLink,
    Photo,
    Refused,
    Restart,
    Scene,
    ShareLocation,
    Snapshot,
    Step,
    Submit,
    TapKey,
    Voice,
)

VOTER = "jambi_voter_survey"
CAMPAIGN = "campaign_team_interview"

#: Telegram user ids of the people in the demo (the researcher's is passed as SUARA_ADMIN_IDS).
RAHMI = Actor("rahmi", 7_000_001, "Rahmi", "id", "researcher")
SARI = Actor("sari", 7_000_101, "Sari", "id", "enumerator")
MAYA = Actor("maya", 7_000_201, "Maya", "en", "respondent, in English")
DEWI = Actor("dewi", 7_000_202, "Dewi", "id", "respondent, pauses and resumes after a restart")

ACTORS: tuple[Actor, ...] = (RAHMI, SARI, MAYA, DEWI)

#: Where things happen (WGS84 degrees): Telanaipura (Kota Jambi), Sekernan (Muaro Jambi), Pasar Angso Duo.
TELANAIPURA = Here(-1.5921, 103.5806, 12.0)
SEKERNAN = Here(-1.5480, 103.4653, 18.0)
ANGSO_DUO = Here(-1.6148, 103.6201, 9.0)

MORNING: tuple[Step, ...] = (
    Scene("1. Morning: the researcher invites an enumerator"),
    Narrate("Rahmi is a researcher (her Telegram id is in SUARA_ADMIN_IDS)."),
    Command(RAHMI, "start", expect="welcome_researcher"),
    ChatInvite(RAHMI, "enumerator", uses=1, save_as="enumerator_link"),
    OpenLink(SARI, "enumerator_link", expect="welcome_enumerator"),
)

VOTER_INTERVIEW: tuple[Step, ...] = (
    Scene("2. Sari interviews a voter in Sekernan (jambi_voter_survey, Indonesian)"),
    NewInterview(SARI, VOTER),
    ShareLocation(SARI, SEKERNAN),
    Answer(SARI, "consent", "yes"),
    Answer(SARI, "age", "52"),
    Answer(SARI, "gender", "male"),
    Answer(SARI, "regency", "muaro_jambi"),
    Answer(SARI, "district", "Sekernan"),
    Note(SARI, "Responden diwawancarai di warung kopi dekat pasar; istrinya ikut mendengarkan."),
    Answer(SARI, "voted", "yes"),
    Answer(SARI, "platforms_seen", ["facebook", "whatsapp", "tiktok"]),
    Answer(SARI, "frequency", "several_weekly"),
    Answer(SARI, "content_seen", ["candidates", "campaign_messages"]),
    Answer(SARI, "trust", "3"),
    Answer(SARI, "most_influential", "whatsapp"),
    Answer(SARI, "changed_choice", "partly"),
    Note(SARI, "Stiker caleg di angkot depan rumah responden", photo="stiker_angkot.jpg"),
    Answer(SARI, "own_words", "Di grup WhatsApp keluarga banyak kiriman tentang caleg. Untuk DPRD kabupaten "
                              "saya memilih calon yang berjanji memperbaiki jalan ke kebun, pilihan DPR tetap."),
    Answer(SARI, "voice_note", Voice("voice_voter_id.ogg")),
    Answer(SARI, "campaign_photo", Photo("baliho_caleg.jpg")),
    Answer(SARI, "location", SEKERNAN),
    Submit(SARI, double_tap=True),
)

CAMPAIGN_INTERVIEW: tuple[Step, ...] = (
    Scene("3. Sari interviews a party's social media admin (campaign_team_interview)"),
    NewInterview(SARI, CAMPAIGN),
    ShareLocation(SARI, TELANAIPURA),
    Answer(SARI, "interviewer", "ENUM-01 Sari"),
    Answer(SARI, "consent", "yes"),
    Answer(SARI, "consent_recording", "yes"),
    Refused(SARI, "informant_code", "jmb-7"),
    Answer(SARI, "informant_code", "JMB-07"),
    Answer(SARI, "role", "social_media_admin"),
    Answer(SARI, "party", "golkar"),
    Answer(SARI, "contest", ["dpr", "dprd_province"]),
    Answer(SARI, "dapil", "Jambi"),
    Answer(SARI, "regency", "kota_jambi"),
    Answer(SARI, "platforms_used", ["instagram", "whatsapp", "tiktok"]),
    # one repeat instance per platform, in the choice list's order: Instagram, WhatsApp, TikTok
    Answer(SARI, "why_platform", "Banyak pemilih muda di Kota Jambi aktif di Instagram, jadi kami memakai "
                                 "Reels dan Story setiap hari."),
    Answer(SARI, "account_manager", ["campaign_team", "volunteers"]),
    Answer(SARI, "content_posted", ["candidates", "activities"]),
    Answer(SARI, "posting_frequency", "daily"),
    Answer(SARI, "results", "Pengikut naik dari sekitar 2.000 menjadi 9.500; video kunjungan ke Pasar Angso Duo "
                            "ditonton 40 ribu kali."),
    Answer(SARI, "platform_voice", Voice("voice_instagram.ogg")),
    Answer(SARI, "why_platform", "Grup WhatsApp sudah ada di setiap RT, murah dan dipercaya warga."),
    Answer(SARI, "account_manager", ["volunteers"]),
    Answer(SARI, "content_posted", ["programmes", "campaign_messages"]),
    Answer(SARI, "posting_frequency", "several_daily"),
    Answer(SARI, "results", "Sekitar 120 grup relawan; pesan cepat sampai, tetapi sulit mengukur dampaknya."),
    Answer(SARI, "platform_voice", Voice("voice_whatsapp.ogg")),
    Answer(SARI, "why_platform", "TikTok paling cepat menjangkau pemilih pemula dengan video pendek."),
    Answer(SARI, "account_manager", ["consultant"]),
    Answer(SARI, "content_posted", ["campaign_messages"]),
    Answer(SARI, "posting_frequency", "several_daily"),
    Answer(SARI, "results", "Beberapa video ditonton lebih dari 100 ribu kali, tetapi banyak penontonnya dari "
                            "luar dapil."),
    Answer(SARI, "platform_voice", Voice("voice_tiktok.ogg")),
    Answer(SARI, "strategy_overall", "Konten dibuat berbeda untuk tiap platform: video pendek untuk anak muda, "
                                     "poster dan siaran langsung untuk pemilih yang lebih tua."),
    Answer(SARI, "key_messages", "Caleg dekat dengan warga, program nyata untuk petani dan nelayan, anti politik uang."),
    Answer(SARI, "target_audience", ["first_time", "youth", "farmers"]),
    Answer(SARI, "target_audience_why", "Pemilih pemula jumlahnya besar dan petani sawit serta karet adalah "
                                        "mayoritas di luar kota."),
    Answer(SARI, "vote_effects", "Media sosial menambah pengenalan nama caleg, tetapi suara tetap paling banyak "
                                 "datang dari tatap muka dan jaringan keluarga."),
    Answer(SARI, "vote_effects_voice", Voice("voice_effects.ogg")),
    Answer(SARI, "obstacles", "Sinyal lemah di pedesaan, iklan berbayar mahal, dan hoaks di grup WhatsApp."),
    Answer(SARI, "has_photos", "yes"),
    Answer(SARI, "field_photo", True),
    Answer(SARI, "photo", Photo("pelatihan_admin.jpg")),
    Answer(SARI, "caption", "Pelatihan admin media sosial relawan di posko pemenangan, Desember 2023."),
    Answer(SARI, "field_photo", True),
    Narrate("(Sari sends the next photo as a file, uncompressed, so its EXIF date and GPS are kept.)"),
    Answer(SARI, "photo", Photo("kampanye_pasar.jpg", as_file=True)),
    Answer(SARI, "caption", "Kampanye tatap muka di Pasar Angso Duo, Kota Jambi, Januari 2024."),
    Answer(SARI, "field_photo", False),
    Answer(SARI, "interviewer_notes", "Informan menjanjikan data statistik akun Instagram; wawancara di posko "
                                      "pemenangan, sekitar 70 menit."),
    Submit(SARI),
    Mine(SARI, count=2),
)

SELF_ADMINISTERED: tuple[Step, ...] = (
    Scene("4. Two voters answer on their own through a deep link"),
    Narrate("Rahmi makes the survey link from a terminal on the study's server:"),
    AdminInvite(role="respondent", form_id=VOTER, save_as="survey_link"),
    Narrate("She posts the link in a WhatsApp group of first-time voters."),
    OpenLink(MAYA, "survey_link", expect="choose_language", form_id=VOTER),
    ChooseLanguage(MAYA, "en"),
    Answer(MAYA, "consent", "yes"),
    Refused(MAYA, "age", "15"),
    Answer(MAYA, "age", "19"),
    Answer(MAYA, "gender", "female"),
    Answer(MAYA, "regency", "tebo"),
    Narrate("(Maya picked the wrong regency: she goes back and changes it.)"),
    Command(MAYA, "back"),
    Answer(MAYA, "regency", "kota_jambi"),
    Answer(MAYA, "district", "Telanaipura"),
    Answer(MAYA, "voted", "yes"),
    Answer(MAYA, "platforms_seen", ["instagram", "tiktok"]),
    Answer(MAYA, "frequency", "daily"),
    Answer(MAYA, "content_seen", ["candidates", "campaign_messages"]),
    Answer(MAYA, "trust", "4"),
    Answer(MAYA, "most_influential", "tiktok"),
    Answer(MAYA, "changed_choice", "no"),
    Answer(MAYA, "own_words", SKIP),
    Answer(MAYA, "voice_note", Voice("voice_voter_en.ogg")),
    Answer(MAYA, "campaign_photo", SKIP),
    Answer(MAYA, "location", "-1.5921, 103.5806"),
    Submit(MAYA),
    OpenLink(DEWI, "survey_link", expect="choose_language", form_id=VOTER),
    ChooseLanguage(DEWI, "id"),
    Answer(DEWI, "consent", "yes"),
    Answer(DEWI, "age", "41"),
    Answer(DEWI, "gender", "female"),
    Answer(DEWI, "regency", "kerinci"),
    Answer(DEWI, "district", "Kayu Aro"),
    Answer(DEWI, "voted", "yes"),
    Narrate("(Dewi's bus arrives: she pauses half-way.)"),
    Command(DEWI, "pause", expect="paused"),
    Snapshot(DEWI, save_as="dewi_before", status="paused"),
    Restart(),
    Narrate("(That evening Dewi opens the chat again.)"),
    Command(DEWI, "start", expect="btn_resume"),
    TapKey(DEWI, "btn_resume"),
    Snapshot(DEWI, save_as="dewi_after", same_as="dewi_before", status="in_progress"),
    Answer(DEWI, "platforms_seen", ["facebook", "youtube", "other"]),
    Answer(DEWI, "platforms_seen_other", "Telegram"),
    Answer(DEWI, "frequency", "weekly"),
    Answer(DEWI, "content_seen", ["programmes"]),
    Answer(DEWI, "trust", "2"),
    Answer(DEWI, "most_influential", "not_influenced"),
    Answer(DEWI, "changed_choice", "no"),
    Answer(DEWI, "own_words", "Saya lebih percaya pada pertemuan langsung dengan caleg di desa."),
    Answer(DEWI, "voice_note", SKIP),
    Answer(DEWI, "campaign_photo", SKIP),
    Answer(DEWI, "location", SKIP),
    Submit(DEWI),
)

#: The whole field day, in order (the export and the summary follow; see `bot.demo.run`).
FIELD_DAY: tuple[Step, ...] = MORNING + VOTER_INTERVIEW + CAMPAIGN_INTERVIEW + SELF_ADMINISTERED

#: What the field day leaves in the database (checked by tests/test_demo.py).
EXPECTED_SUBMITTED: dict[str, int] = {VOTER: 3, CAMPAIGN: 1}
