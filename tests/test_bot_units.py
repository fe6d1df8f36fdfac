"""Pure parts of the bot: settings, texts, callback data, rendering, inputs (no network, no database)."""

from __future__ import annotations

import logging
import re
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup

from bot.app import PerChatUpdateProcessor
from bot.config import ConfigError, TokenRedactingFilter, check_token, load_settings, parse_admin_ids
from bot.i18n import TEXTS, t, ui_language
from bot.inputs import callback_input, text_input
from bot.render import (
    CALLBACK_MAX,
    PAGE_SIZE,
    Callback,
    choice_keyboard,
    decode,
    decode_selection,
    encode,
    encode_selection,
    from_b36,
    indices_of,
    key_tag,
    mask_of,
    prompt_markup,
    prompt_text,
    render_prompt,
    render_review,
    split_text,
    to_b36,
)
from questionnaires.interview import Back, ChoiceOption, Location, Prompt, ReviewItem, Select, Skip, Text
from questionnaires.model import Choice, Question

GOOD_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


# ------------------------------------------------------------------------------------------- settings
def test_missing_token_is_one_line_explaining_botfather() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({}, dotenv_path=None)
    msg = str(err.value)
    assert "\n" not in msg and "@BotFather" in msg and "TELEGRAM_BOT_TOKEN" in msg


def test_malformed_token_is_refused_without_echoing_it() -> None:
    bad = "hello-this-is-not-a-token"
    with pytest.raises(ConfigError) as err:
        check_token(bad)
    assert bad not in str(err.value) and "@BotFather" in str(err.value)


def test_settings_precedence_env_over_dotenv_and_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"TELEGRAM_BOT_TOKEN={GOOD_TOKEN}\nSUARA_DATA_DIR={tmp_path / 'from_dotenv'}\n"
                        "SUARA_ADMIN_IDS=11, 22\n")
    s = load_settings({"SUARA_DATA_DIR": str(tmp_path / "from_env")}, dotenv_path=env_file)
    assert s.token == GOOD_TOKEN
    assert s.data_dir == tmp_path / "from_env"
    assert s.admin_ids == frozenset({11, 22})
    assert s.tz == "Asia/Jakarta" and s.zone.key == "Asia/Jakarta"
    assert s.resolved_database_url().startswith("sqlite:///") and s.resolved_database_url().endswith("suara.sqlite3")
    assert GOOD_TOKEN not in repr(s)


def test_bad_admin_ids_and_time_zone_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        parse_admin_ids("12, abc")
    with pytest.raises(ConfigError):
        load_settings({"TELEGRAM_BOT_TOKEN": GOOD_TOKEN, "SUARA_TZ": "Mars/Olympus"}, dotenv_path=None)


def test_token_redacting_filter_scrubs_messages_args_and_tracebacks() -> None:
    flt = TokenRedactingFilter(GOOD_TOKEN)
    rec = logging.LogRecord("httpx", logging.INFO, __file__, 1, "POST %s", (f"https://x/bot{GOOD_TOKEN}/getMe",), None)
    flt.filter(rec)
    assert GOOD_TOKEN not in rec.getMessage() and "<token>" in rec.getMessage()
    try:
        raise RuntimeError(f"failed for {GOOD_TOKEN.replace(':', '%3A')}")
    except RuntimeError as exc:
        rec2 = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, (type(exc), exc, exc.__traceback__))
    flt.filter(rec2)
    shown = rec2.getMessage()
    assert GOOD_TOKEN.replace(":", "%3A") not in shown and "RuntimeError: failed for <token>" in shown


# ---------------------------------------------------------------------------------------------- texts
def test_every_text_exists_in_both_languages_with_the_same_placeholders() -> None:
    fmt = string.Formatter()
    for key, texts in TEXTS.items():
        assert set(texts) == {"id", "en"}, key
        fields = [{f for _, f, _, _ in fmt.parse(texts[lang]) if f} for lang in ("id", "en")]
        assert fields[0] == fields[1], key
        assert texts["id"] and texts["en"], key


def test_ui_language_maps_telegram_codes() -> None:
    assert ui_language("en-US") == "en" and ui_language("id") == "id" and ui_language(None) == "id"
    assert ui_language("ms") == "id"
    assert t("en-GB", "btn_ok") == "OK" and t("id", "btn_done").startswith("Selesai")


def test_command_descriptions_fit_the_bot_api() -> None:
    for key, texts in TEXTS.items():
        if key.startswith("cmd_"):
            assert all(1 <= len(v) <= 256 for v in texts.values())


# ------------------------------------------------------------------------------------- callback data
@settings(max_examples=60, deadline=None)
@given(op=st.sampled_from(sorted("atdpkrbsjSvclRNfx")), sid=st.integers(0, 10**12),
       key=st.text(min_size=1, max_size=300), i=st.integers(0, 200), mask=st.integers(0, 2**120))
def test_callback_data_roundtrips_and_fits_64_bytes(op: str, sid: int, key: str, i: int, mask: int) -> None:
    cb = Callback(op, to_b36(sid), key_tag(key), (str(i), to_b36(mask), "3"))
    data = encode(cb)
    assert len(data.encode("utf-8")) <= CALLBACK_MAX
    assert decode(data) == cb
    assert from_b36(cb.sid) == sid


def test_callback_codec_refuses_oversize_and_foreign_data() -> None:
    with pytest.raises(ValueError):
        encode(Callback("a", "x" * 70, "-"))
    assert decode("hello") is None and decode("") is None and decode("Z|1|2") is None
    assert key_tag("hh/members[2]/age") != key_tag("hh/members[3]/age")
    assert len(key_tag("x" * 500)) == 6


def test_masks() -> None:
    assert indices_of(mask_of([0, 3, 9])) == [0, 3, 9]
    assert mask_of([]) == 0 and indices_of(0) == []


# ------------------------------------------------------------------------------------------ rendering
def _q(type_: str, n_choices: int = 0, appearance: str = "", name: str = "q") -> Question:
    choices = tuple(Choice(f"c{i}", {"en": f"Choice {i}"}) for i in range(n_choices))
    return Question(name=name, path=name, type=type_, labels={"en": "Label"}, choices=choices, appearance=appearance)


def _prompt(q: Question, **kw: object) -> Prompt:
    opts = tuple(ChoiceOption(c.name, c.labels["en"]) for c in q.choices)
    base: dict[str, object] = {"kind": "question", "key": q.path, "question": q, "label": "How many?",
                               "choices": opts, "number": 5, "total": 23}
    base.update(kw)
    return Prompt(**base)  # type: ignore[arg-type]


def _labels(markup: InlineKeyboardMarkup) -> list[list[str]]:
    return [[b.text for b in row] for row in markup.inline_keyboard]


def test_prompt_text_has_progress_marker_label_hint_and_format_hint() -> None:
    p = _prompt(_q("integer"), hint="In years", required=True, group_labels=("About you",))
    text = prompt_text(p, "en")
    assert text.startswith("[5/~23 · About you]")
    assert "How many? *" in text and "(In years)" in text and "whole number" in text
    assert "bilangan bulat" in prompt_text(p, "id")


def test_select_one_one_button_per_choice_with_nav_row() -> None:
    p = _prompt(_q("select_one", 3))
    kb = prompt_markup(p, "1a", "en")
    assert isinstance(kb, InlineKeyboardMarkup)
    labels = _labels(kb)
    assert labels[:3] == [["Choice 0"], ["Choice 1"], ["Choice 2"]]
    assert labels[-1] == ["◀ Back", "Skip ⏭"]
    data = [b.callback_data for row in kb.inline_keyboard for b in row]
    assert decode(data[1]) == Callback("a", "1a", key_tag("q"), ("1",))


def test_required_question_has_no_skip_button() -> None:
    kb = prompt_markup(_prompt(_q("select_one", 2), required=True), "1", "en")
    assert ["◀ Back"] == _labels(kb)[-1]  # type: ignore[arg-type]


def test_long_choice_list_is_paginated() -> None:
    p = _prompt(_q("select_one", 20))
    first = choice_keyboard(p, "1", "en")
    shown = [b.text for row in first.inline_keyboard for b in row if b.text.startswith("Choice")]
    assert len(shown) == PAGE_SIZE
    nav = _labels(first)[-2]
    assert nav == ["1/3", "More ▶"]
    last = choice_keyboard(p, "1", "en", page=2)
    shown = [b.text for row in last.inline_keyboard for b in row if b.text.startswith("Choice")]
    assert shown == ["Choice 16", "Choice 17", "Choice 18", "Choice 19"]
    assert _labels(last)[-2] == ["◀ Previous", "3/3"]


def test_likert_choices_in_one_row() -> None:
    p = _prompt(_q("select_one", 5, appearance="likert"))
    assert _labels(prompt_markup(p, "1", "en"))[0] == [f"Choice {i}" for i in range(5)]  # type: ignore[arg-type]


def test_select_multiple_toggles_show_ticks_and_done_carries_the_selection_in_order() -> None:
    p = _prompt(_q("select_multiple", 3), current="c2")
    kb = choice_keyboard(p, "9", "en")
    assert _labels(kb)[2] == ["✓ Choice 2"] and _labels(kb)[3] == ["Done ✔"]
    kb2 = choice_keyboard(p, "9", "en", selected=[2, 0])
    done = decode(kb2.inline_keyboard[3][0].callback_data)  # type: ignore[arg-type]
    assert done is not None and done.op == "d"
    assert callback_input(done, p) == Select(("c2", "c0"))  # the order chosen (interview.py contract)


def test_rank_shows_positions_and_long_lists_fall_back_to_a_mask() -> None:
    rank = _prompt(_q("rank", 3))
    kb = choice_keyboard(rank, "9", "en", selected=[1, 2, 0])
    assert [row[0].text for row in kb.inline_keyboard[:3]] == ["3. Choice 0", "1. Choice 1", "2. Choice 2"]
    done = decode(kb.inline_keyboard[3][0].callback_data)  # type: ignore[arg-type]
    assert callback_input(done, rank) == Select(("c1", "c2", "c0"))  # type: ignore[arg-type]
    many = _prompt(_q("select_multiple", 50))
    kb = choice_keyboard(many, "zzzzzz", "en", selected=[49, 3])
    data = [b.callback_data for row in kb.inline_keyboard for b in row]
    assert all(len(d.encode()) <= CALLBACK_MAX for d in data)  # type: ignore[union-attr]
    done = decode(kb.inline_keyboard[-2][0].callback_data)  # type: ignore[arg-type]
    assert callback_input(done, many) == Select(("c3", "c49"))  # type: ignore[arg-type]
    assert decode_selection(encode_selection([5, 1], 10)) == [5, 1]


def test_acknowledge_ok_and_geopoint_location_button() -> None:
    ack = prompt_markup(_prompt(_q("acknowledge")), "1", "en")
    assert _labels(ack)[0] == ["OK"]  # type: ignore[arg-type]
    geo = prompt_markup(_prompt(_q("geopoint")), "1", "en")
    assert isinstance(geo, ReplyKeyboardMarkup)
    assert geo.keyboard[0][0].request_location is True


def test_split_text_keeps_every_character_within_4096() -> None:
    text = "\n".join(f"{i}. " + "x" * 90 for i in range(200))
    parts = split_text(text)
    assert len(parts) > 1 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == text
    one_line = "y" * 9000
    assert "".join(split_text(one_line)) == one_line


def test_long_review_is_split_and_keyboard_goes_last() -> None:
    q = _q("text")
    items = [ReviewItem(key=f"k{i}", label=f"Question {i}", value="v" * 100, question=q) for i in range(80)]
    out = render_review(items, "1", "en", completed=True)
    assert len(out) >= 2 and all(len(r.text) <= 4096 for r in out)
    assert all(r.markup is None for r in out[:-1])
    last = out[-1].markup
    assert isinstance(last, InlineKeyboardMarkup)
    assert _labels(last)[-1] == ["✅ Submit"]
    assert _labels(last)[0][0] == "✎ 1"


def test_rejected_prompt_shows_error_first() -> None:
    out = render_prompt(_prompt(_q("integer")), "1", "en", notes=("Welcome",), error="Too old")
    assert out[0].text == "Welcome" and out[1].text.startswith("⚠ Too old")


# --------------------------------------------------------------------------------------------- inputs
def test_text_at_geopoint_becomes_location_else_text() -> None:
    geo = _prompt(_q("geopoint"))
    assert text_input("-1.61, 103.61", geo) == Location(-1.61, 103.61)
    assert text_input("-1,61; 103,61", geo) == Location(-1.61, 103.61)
    assert text_input("somewhere", geo) == Text("somewhere")
    assert text_input("  42 ", _prompt(_q("integer"))) == Text("42")


def test_callback_inputs() -> None:
    p = _prompt(_q("select_one", 3))
    assert callback_input(Callback("a", "1", "t", ("2",)), p) == Select(("c2",))
    assert callback_input(Callback("a", "1", "t", ("7",)), p) is None
    assert callback_input(Callback("b", "1", "t"), p) == Back()
    assert callback_input(Callback("s", "1", "t"), p) == Skip()


def test_per_chat_processor_keys() -> None:
    from telegram import Chat, Message, Update, User

    user = User(5, "A", False)
    msg = Message(1, date=__import__("datetime").datetime.now(), chat=Chat(77, "private"), from_user=user, text="x")
    assert PerChatUpdateProcessor.chat_key(Update(1, message=msg)) == 77
    assert PerChatUpdateProcessor.chat_key(object()) is None
    assert re.match(r"^\w+$", key_tag("a"))


async def test_per_chat_processor_orders_one_chat_and_overlaps_chats() -> None:
    """Updates of one chat run one after another in arrival order even when the first is slow; another
    chat's update runs meanwhile (why: PerChatUpdateProcessor docstring)."""
    import asyncio
    from datetime import datetime

    from telegram import Chat, Message, Update, User

    def upd(uid: int, chat: int) -> Update:
        msg = Message(uid, date=datetime.now(), chat=Chat(chat, "private"), from_user=User(chat, "A", False), text="x")
        return Update(uid, message=msg)

    proc = PerChatUpdateProcessor(8)
    log: list[str] = []
    gate = asyncio.Event()

    async def work(name: str, wait: bool) -> None:
        log.append(f"start {name}")
        if wait:
            await gate.wait()
        log.append(f"end {name}")

    async with proc:
        t1 = asyncio.create_task(proc.process_update(upd(1, 10), work("a1", True)))
        t2 = asyncio.create_task(proc.process_update(upd(2, 10), work("a2", False)))
        t3 = asyncio.create_task(proc.process_update(upd(3, 20), work("b1", False)))
        await asyncio.wait_for(t3, 2)
        assert log == ["start a1", "start b1", "end b1"]  # chat 20 did not wait for chat 10
        gate.set()
        await asyncio.wait_for(asyncio.gather(t1, t2), 2)
    assert log[3:] == ["end a1", "start a2", "end a2"]
    assert proc._locks == {}  # no lock kept once a chat is idle
