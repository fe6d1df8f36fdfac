"""Which answered prompts are edited (one Bot API call each, ~10-15 % of the bot's CPU per answer in
benchmarks/bot_bench.py): only a prompt that had an inline keyboard, to show the answer and take the
buttons away. A prompt answered by typing/sharing that had no inline keyboard is left as it is (the
person's own message shows the answer)."""

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
    ["integer", "age", "How old are you?", "Berapa umur Anda?", "yes"],  # Back button (inline)
    ["geopoint", "where", "Where are you?", "Di mana Anda?", "yes"],     # reply keyboard only
    ["text", "last", "Anything else?", "Ada lagi?", "yes"],
]


def _edits(h) -> list[dict]:  # type: ignore[no-untyped-def]
    return [c.params for c in h.emu.calls if c.method.startswith("editMessage")]


async def test_only_prompts_with_inline_buttons_are_edited_after_a_typed_answer(tmp_path: Path) -> None:
    data = xlsx(_ROWS, (), [["form_id", "version", "form_title", "default_language"],
                            [FORM_ID, "1", "Prompt edits", "English (en)"]])
    async with bot_harness(tmp_path) as h:
        await asyncio.to_thread(h.svc.repo.publish_form, load_xlsform(data, filename="edits.xlsx"), data,
                                now=h.now())
        u, _, sid = await start_respondent(h, 6901, form_id=FORM_ID)
        name_prompt = u.last_message()
        assert "Your name?" in name_prompt.shown_text and not u.inline_buttons(name_prompt.message_id)
        before = len(_edits(h))
        await h.do(u.send_text("Sari"))
        assert "How old" in u.last_text()
        assert len(_edits(h)) == before  # no buttons on the name prompt: nothing to edit
        age_prompt = u.last_message()
        assert u.inline_buttons(age_prompt.message_id)  # ◀ Back
        await h.do(u.send_text("34"))
        edits = _edits(h)[before:]
        assert len(edits) == 1 and int(edits[0]["message_id"]) == age_prompt.message_id
        assert "✔ 34" in u.message(age_prompt.message_id).shown_text
        assert not u.inline_buttons(age_prompt.message_id)  # a later tap on its Back can't happen
        assert "Where are you?" in u.last_text()
        n = len(_edits(h))
        await h.do(u.share_location(-1.61, 103.61))
        assert "Anything else?" in u.last_text() and len(_edits(h)) == n  # reply keyboard: no edit
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sid)
        assert answers["name"] == "Sari" and answers["age"] == "34" and answers["where"].startswith("-1.61 103.61")
