"""Which answered prompts are edited (one Bot API call each): only a prompt answered by a tap (its
inline keyboard goes, the choice is shown). Prompts answered by typing, media or a location carry
◀ Back / Skip as tappable ``/back`` ``/skip`` commands in their text, so they have no buttons to take
away and are never edited (the person's own message shows the answer)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot_harness import bot_harness, start_respondent
from study_helpers import xlsx

from questionnaires.xlsform import load_xlsform

FORM_ID = "prompt_edits"
_ROWS = [
    ["type", "name", "label::English (en)", "label::Bahasa Indonesia (id)", "required"],
    ["text", "name", "Your name?", "Nama Anda?", "yes"],          # first: no Back, required: no Skip
    ["integer", "age", "How old are you?", "Berapa umur Anda?", "yes"],  # /back in the text
    ["geopoint", "where", "Where are you?", "Di mana Anda?", ""],        # reply keyboard; /back, /skip
    ["select_one yn", "ok", "All fine?", "Semua baik?", "yes"],          # inline choices + ◀ Back
    ["text", "last", "Anything else?", "Ada lagi?", "yes"],
]
_CHOICES = [["list_name", "name", "label::English (en)", "label::Bahasa Indonesia (id)"],
            ["yn", "yes", "Yes", "Ya"], ["yn", "no", "No", "Tidak"]]


def _edits(h) -> list[dict]:  # type: ignore[no-untyped-def]
    return [c.params for c in h.emu.calls if c.method.startswith("editMessage")]


async def test_typed_prompts_are_never_edited_and_go_back_with_the_command_in_their_text(tmp_path: Path) -> None:
    data = xlsx(_ROWS, _CHOICES, [["form_id", "version", "form_title", "default_language"],
                                  [FORM_ID, "1", "Prompt edits", "English (en)"]])
    async with bot_harness(tmp_path) as h:
        await asyncio.to_thread(h.svc.repo.publish_form, load_xlsform(data, filename="edits.xlsx"), data,
                                now=h.now())
        u, _, sid = await start_respondent(h, 6901, form_id=FORM_ID)
        name_prompt = u.last_message()
        assert "Your name?" in name_prompt.shown_text and not u.inline_buttons(name_prompt.message_id)
        assert "/back" not in name_prompt.shown_text and "/skip" not in name_prompt.shown_text  # first, required
        before = len(_edits(h))
        await h.do(u.send_text("Sari"))
        age_prompt = u.last_message()
        assert "How old" in age_prompt.shown_text and not u.inline_buttons(age_prompt.message_id)
        assert "◀ Back: /back" in age_prompt.shown_text and "/skip" not in age_prompt.shown_text  # required
        await h.do(u.send_text("34"))
        where = u.last_message()
        assert "Where are you?" in where.shown_text
        assert "/back" in where.shown_text and "⏭ Skip: /skip" in where.shown_text  # optional location
        assert len(_edits(h)) == before  # typed answers: nothing was edited
        old = u.message(age_prompt.message_id)
        assert not old.edited and old.shown_text == age_prompt.shown_text  # the old prompt is as it was sent
        # the command link on an old prompt acts on the current question: back from "where" to "age"
        await h.do(u.send_command("back"))
        assert "How old" in u.last_text() and "» 34" in u.last_text()
        await h.do(u.send_text("35"))
        await h.do(u.share_location(-1.61, 103.61))
        ok_prompt = u.last_message()
        assert "All fine?" in ok_prompt.shown_text and "/back" not in ok_prompt.shown_text
        assert ["◀ Back"] in [[label for label, _ in row] for row in u.inline_buttons(ok_prompt.message_id)]
        n = len(_edits(h))
        await h.do(u.tap("Yes", message_id=ok_prompt.message_id))
        edits = _edits(h)[n:]
        assert len(edits) == 1 and int(edits[0]["message_id"]) == ok_prompt.message_id  # a tap: edited
        assert not u.inline_buttons(ok_prompt.message_id)
        assert "Anything else?" in u.last_text()
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
        assert answers["name"] == "Sari" and answers["age"] == "35" and answers["ok"] == "yes"
        assert answers["where"].startswith("-1.61 103.61")
