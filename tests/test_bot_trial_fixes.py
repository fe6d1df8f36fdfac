"""Findings from a pilot run of the bot, each checked end to end through the local emulator with the
real PTB network stack and a real SQLite file (database rows, not only messages):

* repeat prompts said their words twice ("Tambah Tambah Foto … lagi? lagi?");
* the progress marker showed an estimate as exact and could read "5/4";
* ``/skip`` at a location question replied a bare "✔ —" and left the location keyboard up;
* ``uuid()`` calculations were not seeded by the submission's instance ID;
* typed field notes were stored as small ``.bin``/``.txt`` media files instead of ``note`` events;
* the enumerator's location was a second ``started`` event; a consent refusal wrote two ``discarded``
  events;
* a forged language button could start a form in onboarding without an invite.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from bot_harness import BotHarness, bot_harness, start_respondent
from study_helpers import enumerator, xlsx
from telegram.ext import CallbackQueryHandler

from bot.render import to_b36
from questionnaires import engine
from questionnaires.interview import Progress
from questionnaires.xlsform import load_xlsform

#: PTB deprecations (e.g. voice.duration becoming a timedelta) must be handled, not ignored.
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")

FORM_ID = "trial_fixes"
_HEAD = ["type", "name", "label::English (en)", "label::Bahasa Indonesia (id)", "required", "calculation"]
_ROWS = [
    _HEAD,
    ["select_one yesno", "consent", "Do you agree to take part?", "Apakah Anda setuju ikut?", "yes", ""],
    ["calculate", "iid", "", "", "", "uuid()"],
    ["integer", "n", "How many posters?", "Berapa poster?", "", ""],
    ["begin_repeat", "photo_rep", "Field activity photo", "Foto kegiatan lapangan", "", ""],
    ["text", "caption", "Caption", "Keterangan", "", ""],
    ["end_repeat", "", "", "", "", ""],
    ["geopoint", "where", "Where are you?", "Di mana Anda?", "", ""],
    ["text", "last", "Anything else?", "Ada lagi?", "", ""],
]
_CHOICES = [["list_name", "name", "label::English (en)", "label::Bahasa Indonesia (id)"],
            ["yesno", "yes", "Yes", "Ya"], ["yesno", "no", "No", "Tidak"]]
MARKER = re.compile(r"^\[(\d+)/~(\d+)")


def trial_form() -> bytes:
    """A small bilingual form: consent, a uuid() calculation, an open repeat, a geopoint, a text."""
    return xlsx(_ROWS, _CHOICES, [["form_id", "version", "form_title", "default_language"],
                                  [FORM_ID, "1", "Trial fixes", "English (en)"]])


async def publish(h: BotHarness) -> None:
    data = trial_form()
    await asyncio.to_thread(h.svc.repo.publish_form, load_xlsform(data, filename="trial_fixes.xlsx"), data,
                            now=h.now())


async def events(h: BotHarness, sub_id: int) -> list[tuple[str, str | None]]:
    return [(e.kind, e.question_path) for e in await asyncio.to_thread(h.svc.repo.events_of, sub_id)]


async def _prompts_through_repeat(h: BotHarness, lang: str, user_id: int) -> tuple[list[str], int, object]:
    """A respondent in ``lang`` answers consent and n, adds two repeat instances, then stops adding.
    Returns the prompt texts seen, the submission id and the user."""
    u, _, sid = await start_respondent(h, user_id, language=lang, form_id=FORM_ID)
    yes, no = ("Yes", "No") if lang == "en" else ("Ya", "Tidak")
    await h.do(u.tap(yes))                      # consent
    await h.do(u.send_text("3"))                # n
    for caption in ("poster", "banner"):
        await h.do(u.tap(yes))                  # add (another) photo instance
        await h.do(u.send_text(caption))
    await h.do(u.tap(no))                       # no more
    return u.texts(), sid, u


async def test_repeat_prompt_says_its_words_once_in_both_languages(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        texts_id, sid, _ = await _prompts_through_repeat(h, "id", 7101)
        texts_en, _, _ = await _prompts_through_repeat(h, "en", 7102)
        repeat_id = [t for t in texts_id if t.startswith("Tambah")]  # the "add (another)?" prompts
        repeat_en = [t for t in texts_en if t.startswith("Add")]
        assert len(repeat_id) == len(repeat_en) == 3, (repeat_id, repeat_en)
        for t in repeat_id:
            assert t.count("Tambah") == 1 and t.count("Foto kegiatan lapangan") == 1 and t.count("lagi") <= 1, t
        assert any(t.startswith("Tambah Foto kegiatan lapangan lagi?") for t in repeat_id)
        for t in repeat_en:
            assert t.count("Add") == 1 and t.count("Field activity photo") == 1 and t.count("another") <= 1, t
        # the two instances are stored
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
        assert answers["photo_rep[1]/caption"] == "poster" and answers["photo_rep[2]/caption"] == "banner"


async def test_progress_marker_is_an_estimate_that_never_runs_past_its_total(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        texts, _, u = await _prompts_through_repeat(h, "en", 7103)
        await h.do(u.send_command("skip"))      # the location
        markers = [MARKER.match(t) for t in texts + u.texts()]
        pairs = [(int(m.group(1)), int(m.group(2))) for m in markers if m]
        assert len(pairs) >= 5  # consent, n, two captions, where (+ last)
        assert all(n <= total for n, total in pairs), pairs
        assert not any(re.match(r"^\[\d+/\d+", t) for t in u.texts())  # always shown as "~" estimate


async def test_skip_at_a_location_question_says_skipped_and_removes_the_keyboard(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        for lang, said in (("en", "✔ Location skipped"), ("id", "✔ Lokasi dilewati")):
            _, sid, u = await _prompts_through_repeat(h, lang, 7104 if lang == "en" else 7105)
            assert any(b.get("request_location") for row in u.reply_keyboard() for b in row)
            mark = u.mark()
            await h.do(u.send_command("skip"))
            sent = [m.text for m in u.messages_since(mark)]
            assert said in sent and "✔ —" not in sent, sent
            assert u.reply_keyboard() == []
            assert u.last_text().startswith("[") and ("Anything else?" in u.last_text() or "Ada lagi?" in u.last_text())
            answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
            assert "where" not in answers
            assert ("skipped", "where") in await events(h, sid)


async def test_a_shared_location_answer_also_removes_the_keyboard(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        _, sid, u = await _prompts_through_repeat(h, "en", 7106)
        label = next(b["text"] for row in u.reply_keyboard() for b in row if b.get("request_location"))
        await h.do(u.reply_keyboard_tap(label, location=(-1.61, 103.61)))
        assert u.reply_keyboard() == []
        assert any(t.startswith("✔ -1.61, 103.61") for t in u.texts())
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
        assert answers["where"].startswith("-1.61 103.61")


async def test_uuid_calculation_is_seeded_by_the_instance_id_and_survives_a_restart(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        u, _, sid = await start_respondent(h, 7107, language="en", form_id=FORM_ID)
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sid)
        form = await asyncio.to_thread(h.svc.repo.load_form, sub.form_version_id)
        expected = engine.start(form, "en", now=h.svc.local_now(), instance_id=sub.instance_id).progress.answers["iid"]
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
        assert answers["iid"] == expected == Progress.from_dict(sub.progress).answers["iid"]
        await h.do(u.tap("Yes"))
        await h.restart()
        await h.do(u.send_text("2"))
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
        assert answers["iid"] == expected and answers["n"] == "2"
        await h.do(u.send_command("review"))
        data = await asyncio.to_thread(lambda: h.svc.review(sid))
        assert any(item.key == "n" for item in data[2])


async def test_enumerator_paradata_location_event_and_typed_note_event(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        u = await enumerator(h, 7201)
        await h.do(u.send_command("new"))
        await h.do(u.tap("Trial fixes"))
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 7201)
        sub = await asyncio.to_thread(h.svc.repo.open_submission_for, person.id)
        label = next(b["text"] for row in u.reply_keyboard() for b in row if b.get("request_location"))
        await h.do(u.reply_keyboard_tap(label, location=(-1.548, 103.4653), accuracy=18.0))
        assert "Location recorded." in u.texts()
        await h.do(u.send_command("note", "Interview at the coffee stall"))
        assert u.last_text() == "📝 Field note saved."
        evs = await asyncio.to_thread(h.svc.repo.events_of, sub.id)
        kinds = [e.kind for e in evs]
        assert kinds.count("started") == 1 and kinds.count("location") == 1
        loc = next(e for e in evs if e.kind == "location")
        assert loc.detail == {"enumerator_location": [-1.548, 103.4653, 18.0]}
        assert await asyncio.to_thread(h.svc.enumerator_location_of, sub.id) == [-1.548, 103.4653, 18.0]
        notes = await asyncio.to_thread(h.svc.repo.text_notes_of, sub.id)
        assert [(n.new_value, n.question_path) for n in notes] == [("Interview at the coffee stall", "consent")]
        assert await asyncio.to_thread(h.svc.repo.media_of, sub.id) == []  # no note file any more
        # /note then a typed message: also a note event; a re-delivered update stores nothing twice
        await h.do(u.send_command("note"))
        again = await h.do(u.send_text("Wife listened in"))
        h.emu.redeliver(again)
        await h.handled(again, times=2)
        notes = await asyncio.to_thread(h.svc.repo.text_notes_of, sub.id)
        assert [n.new_value for n in notes] == ["Interview at the coffee stall", "Wife listened in"]
        assert u.texts().count("📝 Field note saved.") == 2


async def test_consent_refusal_is_one_discarded_event_with_its_reason(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as h:
        await publish(h)
        u, _, sid = await start_respondent(h, 7301, language="en", form_id=FORM_ID)
        await h.do(u.tap("No"))
        assert "Without consent" in u.last_text()
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sid)
        assert sub.status == "discarded"
        evs = [e for e in await asyncio.to_thread(h.svc.repo.events_of, sid) if e.kind == "discarded"]
        assert len(evs) == 1
        assert evs[0].detail == {"reason": "consent_refused"} and evs[0].question_path == "consent"


async def test_onboarding_itself_refuses_a_language_button_not_made_for_this_person(tmp_path: Path) -> None:
    """Defence in depth: with the study gate taken out of the way, onboarding still refuses to start a form
    from language-button data it did not make for this person after an invite (forged, or another
    person's button), and the real button still works."""
    async with bot_harness(tmp_path) as h:
        assert h.app is not None
        for group in h.app.handlers.values():
            for handler in group:
                if isinstance(handler, CallbackQueryHandler):
                    handler.callback = getattr(handler.callback, "__wrapped__", handler.callback)
        fv = await asyncio.to_thread(h.svc.repo.active_form_version, "jambi_voter_survey")
        assert fv is not None and fv.id is not None
        intruder = h.emu.user(7401, "Nobody", language_code="en")
        await h.do(intruder.send_command("start"))
        forged = await h.do(intruder.tap_data(f"l|f{to_b36(fv.id)}|-|id", message_id=intruder.last_message().message_id))
        assert intruder.callback_answer(forged).text == "This button is no longer valid."
        # a real respondent's button, copied by someone else, does not work for them either
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        real = h.emu.user(7402, "Rina", language_code="en")
        await h.do(real.send_command("start", inv.code))
        data = next(d for row in real.inline_buttons() for lbl, d in row if lbl == "English")
        assert data is not None and data.startswith(f"l|f{to_b36(fv.id)}|")
        copied = await h.do(intruder.tap_data(data, message_id=intruder.last_message().message_id))
        assert intruder.callback_answer(copied).text == "This button is no longer valid."
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 7401)
        assert person is not None and person.id is not None
        assert await asyncio.to_thread(h.svc.repo.submissions_of, person.id) == []
        assert person.language == "en"  # nothing changed either
        # with an invite of their own, the button onboarding made for them starts the form
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        await h.do(intruder.send_command("start", inv.code))
        await h.do(intruder.tap("English"))
        assert len(await asyncio.to_thread(h.svc.repo.submissions_of, person.id)) == 1



@pytest.mark.parametrize("timedelta_env", ["", "true"])
async def test_voice_note_duration_read_without_ptb_deprecation_either_way(tmp_path: Path, timedelta_env: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22 warns that ``Voice.duration`` becomes a ``timedelta`` (``PTB_TIMEDELTA`` opts in now): the bot
    reads it in both shapes with deprecation warnings as errors, and the voice note is stored."""
    from bot_harness import voice_bytes

    from bot.inputs import _secs

    monkeypatch.setenv("PTB_TIMEDELTA", timedelta_env)
    assert _secs(3) == 3 and _secs(__import__("datetime").timedelta(seconds=3.4)) == 3
    async with bot_harness(tmp_path) as h:
        u = await enumerator(h, 7501)
        await h.do(u.send_command("new"))
        voter = next(lbl for row in u.inline_buttons() for lbl, _ in row if lbl.startswith("Survei Pemilih Jambi"))
        await h.do(u.tap(voter))
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 7501)
        sub = await asyncio.to_thread(h.svc.repo.open_submission_for, person.id)
        await h.do(u.send_command("note"))
        await h.do(u.send_voice(voice_bytes(), duration=3))
        assert u.last_text() == "📝 Field note saved."
        media = await asyncio.to_thread(h.svc.repo.media_of, sub.id)
        assert [(m.kind, m.question_path) for m in media] == [("voice", None)]
