"""Engine prompts -> chat messages: text plus an inline or reply keyboard, and the callback-data codec.

Rules (issue 4, Bot API limits in telegram.constants):

* select_one: one inline button per visible choice, `PAGE_SIZE` per page with ◀/▶ buttons past that;
  ``likert`` appearance puts the choices in one row. select_multiple/rank: toggle buttons showing ✓ (rank:
  the position) and a Done button; the selection so far, in the order chosen, travels in the callback
  data (`encode_selection`), so no state is kept in memory and a restart loses nothing that was saved.
* acknowledge: an OK button; "add another?" of an open-ended repeat: Yes/No.
* geopoint: a reply-keyboard button with ``request_location`` (inline buttons can't ask for a location).
* Every question starts with a progress marker ``"5/23"``. Texts over 4096 characters are split.
* Callback data is ``op|submission|tag|args`` in at most 64 bytes (UTF-8). ``tag`` is a short hash of the
  answer key being asked, so a tap on a keyboard of another question (stale, or a mixed-up generic
  pattern, PTB #1843) is refused by comparing it with the stored position.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from bot.i18n import t
from questionnaires.interview import Prompt, ReviewItem
from questionnaires.model import MEDIA_TYPES

#: Choices per page before ◀/▶ buttons appear.
PAGE_SIZE = 8
#: Bot API: callback_data is 1-64 bytes.
CALLBACK_MAX = int(InlineKeyboardButtonLimit.MAX_CALLBACK_DATA)
#: Bot API: message text is at most 4096 characters (after entity parsing; we send plain text).
TEXT_MAX = int(MessageLimit.MAX_TEXT_LENGTH)
#: How many review jump buttons at most (Telegram refuses very large keyboards).
REVIEW_BUTTONS_MAX = 80

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


# ------------------------------------------------------------------------------------- callback data
def key_tag(key: str | None) -> str:
    """A 6-character tag for an answer key (or ``"-"`` for none): base32 of a blake2b digest."""
    if key is None:
        return "-"
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=5).digest()
    return base64.b32encode(digest).decode("ascii")[:6].lower()


def to_b36(n: int) -> str:
    """Non-negative int -> base 36 (digits and lowercase letters)."""
    if n < 0:
        raise ValueError("negative")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def from_b36(s: str) -> int:
    """Inverse of `to_b36`; raises ValueError on a bad string."""
    return int(s, 36)


@dataclass(frozen=True, slots=True)
class Callback:
    """Decoded callback data.

    ``op`` is one letter (see `encode`); ``sid`` the submission id as text (may be ``""``); ``tag`` the
    answer-key tag the keyboard was made for (``""`` when not tied to a question); ``args`` the rest.
    """

    op: str
    sid: str = ""
    tag: str = ""
    args: tuple[str, ...] = ()


#: ops: a=answer one, t=toggle, d=done (multiple), p=page, k=acknowledge OK, r=repeat yes/no, b=back,
#: s=skip, j=jump from review, S=submit, v=show review, c=continue answering, l=language, R=resume,
#: N=start over, f=pick form, x=withdrawal confirm.
OPS = frozenset("atdpkrbsjSvclRNfx")


def encode(cb: Callback) -> str:
    """``Callback`` -> callback data string. Raises ValueError if over 64 bytes or malformed."""
    if cb.op not in OPS:
        raise ValueError(f"unknown op {cb.op!r}")
    parts = [cb.op, cb.sid, cb.tag, *cb.args]
    if any("|" in p for p in parts):
        raise ValueError("'|' not allowed in callback parts")
    data = "|".join(parts)
    if len(data.encode("utf-8")) > CALLBACK_MAX:
        raise ValueError(f"callback data over {CALLBACK_MAX} bytes: {data!r}")
    return data


def decode(data: str | None) -> Callback | None:
    """Callback data -> `Callback`, or None when it is not ours (unknown op, too few parts)."""
    if not data:
        return None
    parts = data.split("|")
    if len(parts) < 3 or parts[0] not in OPS:
        return None
    return Callback(op=parts[0], sid=parts[1], tag=parts[2], args=tuple(parts[3:]))


def button(label: str, cb: Callback) -> InlineKeyboardButton:
    """An inline button with encoded callback data."""
    return InlineKeyboardButton(label, callback_data=encode(cb))


# ------------------------------------------------------------------------------------- text helpers
def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, at line breaks when possible.

    Never returns an empty list (``""`` -> ``[""]``). A single line longer than ``limit`` is cut hard.
    """
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current or not chunks:
        chunks.append(current)
    return chunks


def mask_of(indices: Sequence[int]) -> int:
    """Bitmask with bit i set for every index i."""
    m = 0
    for i in indices:
        m |= 1 << i
    return m


def encode_selection(indices: Sequence[int], n_choices: int) -> str:
    """The select_multiple/rank selection for callback data: ``"o"`` + one base-36 digit per chosen index
    in the order chosen (lists up to 36 choices), else a base-36 bitmask (list order)."""
    if n_choices <= 36:
        return "o" + "".join(to_b36(i) for i in indices)
    return to_b36(mask_of(indices))


def decode_selection(data: str) -> list[int]:
    """Inverse of `encode_selection` (raises ValueError on garbage)."""
    if data.startswith("o"):
        return [int(c, 36) for c in data[1:]]
    return indices_of(from_b36(data))


def indices_of(mask: int) -> list[int]:
    """Indices of the set bits of ``mask``, ascending."""
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def display_value(prompt_or_item: Prompt | ReviewItem | None, value: str | None, lang: str) -> str:
    """A canonical answer value as shown to a person: choice labels for selects, ``lat, lon`` for
    geopoints, a paperclip for media; ``"—"`` when empty."""
    if value is None or value == "":
        return "—"
    question = prompt_or_item.question if prompt_or_item is not None else None
    if question is None:
        return value
    if question.is_select:
        labels = {c.name: c.label for c in getattr(prompt_or_item, "choices", ())}
        from questionnaires.model import pick

        for c in question.choices:
            labels.setdefault(c.name, pick(c.labels, lang))
        names = value.split(" ") if question.is_multiple else [value]
        return ", ".join(labels.get(n, n) for n in names)
    if question.type == "geopoint":
        parts = value.split()
        return f"{parts[0]}, {parts[1]}" if len(parts) >= 2 else value
    if question.type in MEDIA_TYPES:
        icon = {"image": "📷", "audio": "🎤", "video": "🎬"}.get(question.type, "📎")
        return f"{icon} {t(lang, 'media_received')}"
    return value


# ------------------------------------------------------------------------------------------ prompts
@dataclass(frozen=True, slots=True)
class Rendered:
    """One message to send: plain ``text`` (≤ 4096 chars) and its ``markup`` (None for none)."""

    text: str
    markup: Markup = None


def how_to_answer(prompt: Prompt, lang: str) -> str:
    """The one-line hint telling how to answer this prompt (by question type)."""
    q = prompt.question
    if prompt.kind == "repeat" or q is None:
        return ""
    if q.type == "range":
        return t(lang, "how_range", start=q.parameters.get("start", "0"), end=q.parameters.get("end", "10"))
    if q.is_select:
        return t(lang, "how_select_multiple" if q.is_multiple else "how_select_one")
    key = f"how_{q.type}"
    try:
        return t(lang, key)
    except KeyError:
        return t(lang, "how_text")


def progress_marker(number: int, total: int) -> str:
    """The chat progress marker: ``"5/~23"``, or ``""`` when ``number`` is 0 (repeat prompts).

    ``total`` is the engine's estimate of how many questions will be asked (it grows or shrinks as
    answers make questions relevant), so it is shown with ``~`` like ``suara try`` does, and never below
    ``number``: an enumerator never reads "18/16" (the estimate is raised to the position instead)."""
    if number <= 0:
        return ""
    if total <= 0:
        return str(number)
    total = max(total, number)
    return f"{number}/~{total}"


def prompt_text(prompt: Prompt, lang: str) -> str:
    """The message text of a prompt: ``"5/~23"`` marker (`progress_marker`), section, label, hint, current
    value, how-to. A repeat prompt's label is already the engine's phrased question ("Add another …?",
    in the interview language), shown once as it is."""
    if prompt.kind == "repeat":
        return prompt.label
    lines: list[str] = []
    marker = progress_marker(prompt.number, prompt.total)
    section = " › ".join(x for x in prompt.group_labels if x)
    head = " · ".join(x for x in (marker, section) if x)
    if head:
        lines.append(f"[{head}]")
    label = prompt.label + (" *" if prompt.required else "")
    lines.append(label)
    if prompt.hint:
        lines.append(f"({prompt.hint})")
    if prompt.current not in (None, "") and not (prompt.question is not None and prompt.question.is_select):
        lines.append(f"» {display_value(prompt, prompt.current, lang)}")
    how = how_to_answer(prompt, lang)
    if how:
        lines.append(how)
    nav = nav_commands(prompt, lang)
    if nav:
        lines.append(nav)
    return "\n".join(lines)


def uses_inline_nav(prompt: Prompt) -> bool:
    """True when the prompt's ◀ Back / Skip are inline buttons: prompts answered by tapping (selects,
    acknowledge, repeat yes/no), whose message is edited after the tap anyway. Prompts answered by
    typing, sending media or sharing a location carry them as tappable commands instead (see
    `nav_commands`)."""
    q = prompt.question
    return prompt.kind == "repeat" or (q is not None and (q.is_select or q.type == "acknowledge"))


def nav_commands(prompt: Prompt, lang: str) -> str:
    """``"◀ Back: /back · ⏭ Skip: /skip"`` (what applies) for prompts not answered by a tap, else ``""``.

    Why commands and not inline buttons: Telegram shows a ``/command`` in a bot's message as a link that
    sends it when tapped, and ``/back``/``/skip`` always act on the *current* question, so an old prompt
    higher up in the chat needs no edit to stay harmless. Inline buttons would have to be edited away
    after every typed answer (one more Bot API call per answer, counted against Telegram's ~30 messages/s
    per bot; measured in benchmarks/bot_bench.py)."""
    if uses_inline_nav(prompt):
        return ""
    parts = []
    if prompt.can_back:
        parts.append(t(lang, "cmd_link_back"))
    if prompt.can_skip and not prompt.required:
        parts.append(t(lang, "cmd_link_skip"))
    return " · ".join(parts)


def _nav_row(prompt: Prompt, sid: str, tag: str, lang: str) -> list[InlineKeyboardButton]:
    row = []
    if prompt.can_back:
        row.append(button(t(lang, "btn_back"), Callback("b", sid, tag)))
    if prompt.can_skip and not prompt.required:
        row.append(button(t(lang, "btn_skip"), Callback("s", sid, tag)))
    return row


def choice_keyboard(prompt: Prompt, sid: str, lang: str, *, page: int = 0,
                    selected: Sequence[int] | None = None) -> InlineKeyboardMarkup:
    """Inline keyboard of a select prompt (one page). ``selected`` are the select_multiple/rank choice
    indices chosen so far, in the order chosen (default: from ``prompt.current``). Rank shows the
    position (``2. TikTok``), select_multiple a tick (``✓ TikTok``)."""
    q = prompt.question
    assert q is not None
    tag = key_tag(prompt.key)
    choices = prompt.choices
    multiple = q.is_multiple
    if multiple and selected is None:
        by_name = {c.name: i for i, c in enumerate(choices)}
        selected = [by_name[n] for n in (prompt.current or "").split() if n in by_name]
    chosen = list(selected or [])
    sel = encode_selection(chosen, len(choices))
    if multiple and len(encode(Callback("t", sid, tag, (str(len(choices)), sel, "99"))).encode()) > CALLBACK_MAX:
        sel = to_b36(mask_of(chosen))  # too long for 64 bytes in order: keep the set, list order
    pages = max(1, -(-len(choices) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = list(enumerate(choices))[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    buttons: list[InlineKeyboardButton] = []
    for i, c in shown:
        if multiple:
            if i in chosen:
                label = (f"{chosen.index(i) + 1}. " if q.type == "rank" else "✓ ") + c.label
            else:
                label = c.label
            buttons.append(button(label, Callback("t", sid, tag, (str(i), sel, str(page)))))
        else:
            label = ("● " if prompt.current == c.name else "") + c.label
            buttons.append(button(label, Callback("a", sid, tag, (str(i),))))
    rows: list[list[InlineKeyboardButton]]
    if "likert" in q.appearance.split():
        rows = [buttons]
    elif buttons and max(len(b.text) for b in buttons) <= 14 and len(buttons) > 3:
        rows = [buttons[i:i + 2] for i in range(0, len(buttons), 2)]
    else:
        rows = [[b] for b in buttons]
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(button(t(lang, "btn_prev"), Callback("p", sid, tag, (str(page - 1), sel))))
        nav.append(button(f"{page + 1}/{pages}", Callback("p", sid, tag, (str(page), sel))))
        if page < pages - 1:
            nav.append(button(t(lang, "btn_more"), Callback("p", sid, tag, (str(page + 1), sel))))
        rows.append(nav)
    if multiple:
        rows.append([button(t(lang, "btn_done"), Callback("d", sid, tag, (sel,)))])
    nav_row = _nav_row(prompt, sid, tag, lang)
    if nav_row:
        rows.append(nav_row)
    return InlineKeyboardMarkup(rows)


def prompt_markup(prompt: Prompt, sid: str, lang: str) -> Markup:
    """The keyboard for a prompt: inline for selects/acknowledge/repeat (with ◀ Back / Skip), a reply
    keyboard with a location button for geopoint, none for typed and media answers (their ◀ Back / Skip
    are commands in the text, see `nav_commands`)."""
    q = prompt.question
    tag = key_tag(prompt.key)
    if prompt.kind == "repeat":
        rows = [[button(t(lang, "btn_yes"), Callback("r", sid, tag, ("y",))),
                 button(t(lang, "btn_no"), Callback("r", sid, tag, ("n",)))]]
        nav = _nav_row(prompt, sid, tag, lang)
        return InlineKeyboardMarkup(rows + ([nav] if nav else []))
    assert q is not None
    if q.is_select:
        return choice_keyboard(prompt, sid, lang)
    if q.type == "acknowledge":
        rows = [[button(t(lang, "btn_ok"), Callback("k", sid, tag))]]
        nav = _nav_row(prompt, sid, tag, lang)
        return InlineKeyboardMarkup(rows + ([nav] if nav else []))
    if q.type == "geopoint":
        return ReplyKeyboardMarkup(
            [[KeyboardButton(t(lang, "btn_share_location"), request_location=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    return None  # typed, media: ◀ Back / Skip are tappable commands in the text (`nav_commands`)


def render_prompt(prompt: Prompt, sid: str, lang: str, *, notes: Sequence[str] = (), error: str | None = None) -> list[Rendered]:
    """Messages for one engine step: the notes passed on the way, an error (for a Rejected step), then
    the prompt with its keyboard (the keyboard goes on the last chunk of a split text)."""
    out: list[Rendered] = []
    for note in notes:
        out.extend(Rendered(chunk) for chunk in split_text(note))
    text = prompt_text(prompt, lang)
    if error:
        text = f"⚠ {error}\n\n{text}"
    chunks = split_text(text)
    out.extend(Rendered(c) for c in chunks[:-1])
    out.append(Rendered(chunks[-1], prompt_markup(prompt, sid, lang)))
    return out


def answered_text(original: str, shown_value: str | None, lang: str) -> str:
    """The text an answered prompt is edited to: its text plus ``✔ value`` (or "skipped")."""
    mark = t(lang, "skipped_mark") if shown_value is None else t(lang, "answered_mark", value=shown_value)
    return split_text(f"{original}\n{mark}")[0] if len(original) + len(mark) + 1 > TEXT_MAX else f"{original}\n{mark}"


# ------------------------------------------------------------------------------------------- review
def render_review(items: Sequence[ReviewItem], sid: str, lang: str, *, completed: bool) -> list[Rendered]:
    """The review: numbered answers (split past 4096 characters) with a jump button per answer, and
    Submit (when every relevant question is answered) or Continue."""
    if not items:
        body = t(lang, "review_empty")
    else:
        lines = [t(lang, "review_header", n=len(items))]
        for n, item in enumerate(items, 1):
            shown = item.value if item.question.is_select else display_value(item, item.value, lang)
            lines.append(f"{n}. {item.label}\n    ➜ {shown}")
        body = "\n".join(lines)
    if completed:
        body += "\n\n" + t(lang, "ready_to_submit")
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    for n, item in enumerate(items[:REVIEW_BUTTONS_MAX], 1):
        row.append(button(f"✎ {n}", Callback("j", sid, key_tag(item.key))))
        if len(row) == 5:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    if completed:
        rows.append([button(t(lang, "btn_submit"), Callback("S", sid, "-"))])
    else:
        rows.append([button(t(lang, "btn_continue"), Callback("c", sid, "-"))])
    chunks = split_text(body)
    return [Rendered(c) for c in chunks[:-1]] + [Rendered(chunks[-1], InlineKeyboardMarkup(rows))]


def language_keyboard() -> InlineKeyboardMarkup:
    """Bahasa Indonesia / English buttons (ops ``l``)."""
    from bot.i18n import LANGUAGE_NAMES, LANGUAGES

    return InlineKeyboardMarkup([[button(LANGUAGE_NAMES[c], Callback("l", "", "-", (c,))) for c in LANGUAGES]])


def remove_reply_keyboard() -> ReplyKeyboardRemove:
    """Markup that hides a reply keyboard (after a location was shared)."""
    return ReplyKeyboardRemove()
