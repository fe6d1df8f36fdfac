"""The small steps a field day is made of. Each step is a frozen dataclass (data) with ``describe()`` for
failure messages and ``async play(player)`` that does what a person would do in the chat, then waits for
the bot and checks what it should have done.

Answers name the XLSForm question (``Answer(SARI, "gender", "female")``); the step checks, from the
database, that the interview is asking that question right now, then answers it the way the chat offers:
a tap on the choice's label in the interview language, toggles and Done for select_multiple, typed text,
a voice note, a photo (or a photo sent as a file), the location button, or ``/skip`` (`SKIP`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import re
import shlex
from dataclasses import dataclass
from typing import ClassVar, Protocol

from bot.demo.media import asset
from bot.demo.player import Actor, Player, StepFailed
from bot.emulator.users import compressed_photo_sizes
from bot.i18n import LANGUAGE_NAMES, t
from questionnaires.interview import Prompt
from questionnaires.model import Question, pick


class Step(Protocol):
    """What the player runs: a description and the play."""

    def describe(self) -> str: ...

    async def play(self, p: Player) -> None: ...


# ------------------------------------------------------------------------------------ answer values
@dataclass(frozen=True, slots=True)
class Voice:
    """A voice note from the demo assets (``voice_tiktok.ogg``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Photo:
    """A photo from the demo assets; ``as_file`` sends it as a document (uncompressed, EXIF kept)."""

    name: str
    as_file: bool = False
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class Here:
    """A location shared with the chat's location button."""

    lat: float
    lon: float
    accuracy: float = 15.0


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


#: Answer value meaning "send /skip".
SKIP = _Skip()

Value = str | list[str] | Voice | Photo | Here | bool | _Skip


async def send_media(p: Player, who: Actor, value: Voice | Photo) -> int:
    """Send a voice note or photo from the assets; returns the handled update id."""
    user = p.user(who)
    if isinstance(value, Voice):
        a = asset(value.name)
        return await p.act(user.send_voice(a.data, duration=a.duration))
    a = asset(value.name)
    if value.as_file:
        return await p.act(user.send_document(a.data, file_name=value.name, mime_type="image/jpeg",
                                              caption=value.caption))
    return await p.act(user.send_photo(a.data, caption=value.caption))


# ------------------------------------------------------------------------------------------- scenes
@dataclass(frozen=True, slots=True)
class Scene:
    """A heading in the printed conversation."""

    title: str

    def describe(self) -> str:
        return f"scene {self.title!r}"

    async def play(self, p: Player) -> None:
        p.say()
        p.say(f"━━━ {self.title} " + "━" * max(3, 72 - len(self.title)))


@dataclass(frozen=True, slots=True)
class Narrate:
    """A line of narration."""

    text: str

    def describe(self) -> str:
        return "narration"

    async def play(self, p: Player) -> None:
        p.say(f"   {self.text}")


# ------------------------------------------------------------------------------------------- chat
@dataclass(frozen=True, slots=True)
class Command:
    """Send ``/name args``; ``expect`` (a bot text key of `bot.i18n`) must be in a reply."""

    who: Actor
    name: str
    args: str = ""
    expect: str | None = None

    def describe(self) -> str:
        return f"{self.who.name} sends /{self.name} {self.args}".rstrip()

    async def play(self, p: Player) -> None:
        user = p.user(self.who)
        mark = user.mark()
        await p.act(user.send_command(self.name, self.args))
        if self.expect is not None:
            await expect_key(p, self.who, self.expect, since=mark)


@dataclass(frozen=True, slots=True)
class Say:
    """Type a message (an answer the bot should refuse, a chat line)."""

    who: Actor
    text: str

    def describe(self) -> str:
        return f"{self.who.name} types {self.text!r}"

    async def play(self, p: Player) -> None:
        await p.act(p.user(self.who).send_text(self.text))


@dataclass(frozen=True, slots=True)
class Refused:
    """Type an answer the form's constraint refuses; the bot must show the form's constraint_message (in
    the interview language) and ask the same question again."""

    who: Actor
    question: str
    text: str

    def describe(self) -> str:
        return f"{self.who.name} types {self.text!r} at {self.question!r} (should be refused)"

    async def play(self, p: Player) -> None:
        prompt = await expect_question(p, self.who, self.question)
        sub = await p.open_submission(self.who)
        q = prompt.question
        why = pick(q.bind.constraint_message, sub.language) if q is not None else ""
        user = p.user(self.who)
        mark = user.mark()
        await p.act(user.send_text(self.text))
        replies = [m.shown_text for m in user.messages_since(mark)]
        if not any(why[:40] in r for r in replies):
            raise StepFailed(f"{self.text!r} was not refused with the form's constraint message {why!r}; "
                             f"the bot said {replies[-1:]}")
        await expect_question(p, self.who, self.question)


@dataclass(frozen=True, slots=True)
class TapKey:
    """Tap a button whose label is the bot text ``key`` (`bot.i18n`) in the actor's language."""

    who: Actor
    key: str

    def describe(self) -> str:
        return f"{self.who.name} taps the {self.key!r} button"

    async def play(self, p: Player) -> None:
        await p.tap(self.who, t(await p.ui_lang(self.who), self.key))


@dataclass(frozen=True, slots=True)
class ChooseLanguage:
    """Tap ``Bahasa Indonesia`` or ``English`` on the language keyboard."""

    who: Actor
    lang: str

    def describe(self) -> str:
        return f"{self.who.name} chooses {LANGUAGE_NAMES[self.lang]}"

    async def play(self, p: Player) -> None:
        await p.tap(self.who, LANGUAGE_NAMES[self.lang])
        if await p.ui_lang(self.who) != self.lang:
            raise StepFailed(f"{self.who.name}'s language is not {self.lang} after the tap")


@dataclass(frozen=True, slots=True)
class NewInterview:
    """``/new``, then tap the form's title: an enumerator interview starts (respondent code shown)."""

    who: Actor
    form_id: str

    def describe(self) -> str:
        return f"{self.who.name} starts a {self.form_id} interview with /new"

    async def play(self, p: Player) -> None:
        user = p.user(self.who)
        await p.act(user.send_command("new"))
        fv = await asyncio.to_thread(p.svc.repo.active_form_version, self.form_id)
        if fv is None:
            raise StepFailed(f"form {self.form_id} is not published")
        await p.tap(self.who, fv.title or fv.form_id)
        sub = await p.open_submission(self.who)
        if not any(sub.respondent_code in text for text in p.recent_texts(self.who, 6)):
            raise StepFailed(f"the respondent code {sub.respondent_code} was not shown")
        p.forms[self.who.key] = self.form_id


@dataclass(frozen=True, slots=True)
class ShareLocation:
    """Tap the reply-keyboard location button (the enumerator's position at the start: paradata)."""

    who: Actor
    where: Here

    def describe(self) -> str:
        return f"{self.who.name} shares their location"

    async def play(self, p: Player) -> None:
        await press_location(p, self.who, self.where)
        sub = await p.open_submission(self.who)
        assert sub.id is not None
        stored = await asyncio.to_thread(p.svc.enumerator_location_of, sub.id)
        if stored is None or [round(v or 0.0, 6) for v in stored[:2]] != [self.where.lat, self.where.lon]:
            raise StepFailed(f"the enumerator's location was not stored as paradata (found {stored})")


async def press_location(p: Player, who: Actor, where: Here) -> int:
    """Press the keyboard's location button with ``where``; returns the handled update id."""
    user = p.user(who)
    label = next((b["text"] for row in user.reply_keyboard() for b in row if b.get("request_location")), None)
    if label is None:
        raise StepFailed("no location button is shown")
    return await p.act(user.reply_keyboard_tap(label, location=(where.lat, where.lon), accuracy=where.accuracy))


@dataclass(frozen=True, slots=True)
class Note:
    """A field note attached to the interview without answering: ``/note text``, or a photo with a caption."""

    who: Actor
    text: str
    photo: str | None = None

    def describe(self) -> str:
        return f"{self.who.name} adds a field note"

    async def play(self, p: Player) -> None:
        user = p.user(self.who)
        mark = user.mark()
        if self.photo is None:
            await p.act(user.send_command("note", self.text))
        else:
            await p.act(user.send_photo(asset(self.photo).data, caption=self.text))
        await expect_key(p, self.who, "note_saved", since=mark)
        sub = await p.open_submission(self.who)
        assert sub.id is not None
        if self.photo is None:  # a typed note is a 'note' event; a captioned photo a Media row
            notes = await asyncio.to_thread(p.svc.repo.text_notes_of, sub.id)
            stored = any(ev.new_value == self.text for ev in notes)
        else:
            rows = await asyncio.to_thread(p.svc.repo.media_of, sub.id)
            stored = any(m.question_path is None and m.caption == self.text for m in rows)
        if not stored:
            raise StepFailed("the field note is not stored with the interview")


# ------------------------------------------------------------------------------------------- answers
@dataclass(frozen=True, slots=True)
class Answer:
    """Answer the question named ``question`` (XLSForm name) with ``value`` (see module doc)."""

    who: Actor
    question: str
    value: Value

    def describe(self) -> str:
        shown = self.value if not isinstance(self.value, str) or len(self.value) < 40 else self.value[:37] + "…"
        return f"{self.who.name} answers {self.question!r} with {shown!r}"

    async def play(self, p: Player) -> None:
        prompt = await expect_question(p, self.who, self.question)
        lang = await p.ui_lang(self.who)
        user = p.user(self.who)
        v = self.value
        if isinstance(v, _Skip):
            await p.act(user.send_command("skip"))
            return
        if prompt.kind == "repeat":
            await p.tap(self.who, t(lang, "btn_yes" if v is True else "btn_no"))
            return
        q = prompt.question
        assert q is not None
        if isinstance(v, (Voice, Photo)):
            await send_media(p, self.who, v)
        elif isinstance(v, Here):
            await press_location(p, self.who, v)
        elif q.type == "select_one" and isinstance(v, str):
            await p.tap_choice(self.who, choice_label(prompt, v), more=t(lang, "btn_more"))
        elif q.is_multiple and isinstance(v, list):
            for name in v:
                await p.tap_choice(self.who, choice_label(prompt, name), more=t(lang, "btn_more"))
            await p.tap(self.who, t(lang, "btn_done"))
        elif q.type == "acknowledge":
            await p.tap(self.who, t(lang, "btn_ok"))
        elif isinstance(v, str):
            await p.act(user.send_text(v))
        else:
            raise StepFailed(f"the script has no way to answer a {q.type} question with {v!r}")
        await check_answered(p, self.who, prompt, v)


def choice_label(prompt: Prompt, name: str) -> str:
    """The label of choice ``name`` as the prompt shows it; StepFailed when it is not offered."""
    for c in prompt.choices:
        if c.name == name:
            return c.label
    raise StepFailed(f"choice {name!r} is not offered at {prompt.key} (offered: {[c.name for c in prompt.choices]})")


def label_head(q: Question | None, prompt: Prompt) -> str:
    """The start of the question's label as shown (before any ``${…}`` and the first line), to find it in
    the chat."""
    text = prompt.label or (pick(q.labels, None) if q is not None else "")
    return text.splitlines()[0][:40] if text else ""


async def expect_question(p: Player, who: Actor, name: str) -> Prompt:
    """StepFailed unless the actor's interview is asking ``name`` now (from the database) and the chat
    shows its label in one of the bot's newest messages."""
    prompt = await p.asking(who)
    if prompt is None:
        raise StepFailed(f"expected the question {name!r}, but the interview is at its review")
    asked = prompt.key.rsplit("/", 1)[-1].split("[", 1)[0]
    if asked != name:
        raise StepFailed(f"expected the question {name!r}, but the bot is asking {prompt.key!r}")
    head = label_head(prompt.question, prompt)
    if head and not any(head in text for text in p.recent_texts(who, 4)):
        raise StepFailed(f"the bot's messages do not show the question {name!r} ({head!r})")
    return prompt


async def check_answered(p: Player, who: Actor, prompt: Prompt, value: Value) -> None:
    """After an answer: the stored answer has the expected value (choices, text), or the interview moved on."""
    sub = await p.open_submission(who)
    answers = (sub.progress or {}).get("answers", {})
    stored = answers.get(prompt.key)
    q = prompt.question
    if isinstance(value, list):
        want: str | None = " ".join(value)
    elif isinstance(value, str) and q is not None and q.type != "geopoint":
        want = value
    else:
        want = None  # media/location: the stored value is a file name / "lat lon alt accuracy"
    if stored is None:
        raise StepFailed(f"no answer stored for {prompt.key} after answering; the bot said: {p.last_said(who)}")
    if isinstance(value, (Voice, Photo)):
        data = asset(value.name).data
        if isinstance(value, Photo) and not value.as_file:  # Telegram re-encodes a compressed photo
            data = compressed_photo_sizes(data)[-1][0]
        sha = hashlib.sha256(data).hexdigest()
        if not stored.startswith(sha):
            raise StepFailed(f"{prompt.key} holds {stored!r}, not the file sent (sha256 {sha[:12]}…)")
        return
    if want is not None and q is not None and q.is_multiple:
        if set(stored.split()) != set(want.split()):
            raise StepFailed(f"stored {stored!r} for {prompt.key}, expected {want!r}")
    elif want is not None and stored != want:
        raise StepFailed(f"stored {stored!r} for {prompt.key}, expected {want!r}")


async def expect_key(p: Player, who: Actor, key: str, *, since: int) -> None:
    """StepFailed unless a bot message (text or button) since ``since`` shows the text ``key`` in the
    actor's language (its part before any ``{placeholder}``)."""
    text = t(await p.ui_lang(who), key)
    head = text.split("{")[0].strip()[:40]
    msgs = p.user(who).messages_since(since)
    replies = [m.shown_text for m in msgs]
    shown = replies + [label for m in msgs for row in m.inline_buttons() for label, _ in row]
    if not any(head in r for r in shown):
        raise StepFailed(f"expected the bot to say {head!r}; it said {replies[-2:] or 'nothing'}")


@dataclass(frozen=True, slots=True)
class Submit:
    """Tap Submit at the review; ``double_tap`` taps twice before the bot answers (a shaky thumb): one
    submission, and the second tap answered "already submitted"."""

    who: Actor
    double_tap: bool = False

    def describe(self) -> str:
        return f"{self.who.name} taps Submit" + (" twice" if self.double_tap else "")

    async def play(self, p: Player) -> None:
        if await p.asking(self.who) is not None:
            raise StepFailed(f"the interview is not finished: it still asks {(await p.asking(self.who)).key}")  # type: ignore[union-attr]
        sub = await p.open_submission(self.who)
        lang = await p.ui_lang(self.who)
        label = t(lang, "btn_submit")
        user = p.user(self.who)
        mark = user.mark()
        try:
            first = user.tap(label)
            second = user.tap(label) if self.double_tap else None
        except LookupError as exc:
            raise StepFailed(str(exc)) from None
        await p.act(first)
        if second is not None:
            await p.act(second)
        await expect_key(p, self.who, "submitted", since=mark)
        assert sub.id is not None
        row = await asyncio.to_thread(p.svc.repo.get_submission, sub.id)
        if row.status != "submitted":
            raise StepFailed(f"submission {sub.id} is {row.status}, not submitted")
        if second is not None:
            answer = user.callback_answer(second)
            if answer.text != t(lang, "already_submitted"):
                raise StepFailed(f"the second tap was answered {answer.text!r}, not 'already submitted'")
            events = await asyncio.to_thread(p.svc.repo.events_of, sub.id)
            if sum(1 for e in events if e.kind == "submitted") != 1:
                raise StepFailed("the double tap submitted twice")


# ------------------------------------------------------------------------------------ researcher side
#: An invite deep link in a bot message (Bot API deep linking: ``start`` payload of [A-Za-z0-9_-]).
LINK_RE = re.compile(r"https://t\.me/[A-Za-z0-9_]+\?start=[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class ChatInvite:
    """The researcher asks the bot for an invite (``/invite enumerator`` or ``/invite respondent FORM``,
    ``--uses N``); the link in the reply is kept in ``player.vars[save_as]``."""

    who: Actor
    role: str
    save_as: str
    form_id: str | None = None
    uses: int | None = None

    def describe(self) -> str:
        return f"{self.who.name} makes a {self.role} invite with /invite"

    async def play(self, p: Player) -> None:
        args = " ".join([self.role] + ([self.form_id] if self.form_id else [])
                        + (["--uses", str(self.uses)] if self.uses else []))
        user = p.user(self.who)
        mark = user.mark()
        await p.act(user.send_command("invite", args))
        links = [m.group(0) for msg in user.messages_since(mark) if (m := LINK_RE.search(msg.shown_text))]
        if not links:
            raise StepFailed(f"/invite {args} gave no link; the bot said: {p.last_said(self.who)}")
        p.vars[self.save_as] = links[-1]


@dataclass(frozen=True, slots=True)
class AdminInvite:
    """The researcher makes an invite link with ``suara admin invite`` (run in-process on the demo's data
    directory, as they would in a terminal); the link is kept in ``player.vars[save_as]``."""

    role: str
    save_as: str
    form_id: str | None = None
    uses: int | None = None
    bot_username: ClassVar[str] = "suara_demo_bot"

    def describe(self) -> str:
        return f"the researcher makes a {self.role} invite"

    def argv(self, p: Player) -> list[str]:
        args = ["admin", "--data-dir", str(p.settings.data_dir), "--database-url",
                p.settings.resolved_database_url(), "--env-file", "", "invite", "--role", self.role,
                "--bot-username", self.bot_username]
        if self.form_id:
            args += ["--form", self.form_id]
        if self.uses:
            args += ["--uses", str(self.uses)]
        return args

    async def play(self, p: Player) -> None:
        from bot.cli import main

        argv = self.argv(p)
        shown = ["suara", "admin", "invite", "--role", self.role] + (["--form", self.form_id] if self.form_id else []) \
            + (["--uses", str(self.uses)] if self.uses else [])
        p.say(f"💻 researcher$ {shlex.join(shown)}")
        out, err = io.StringIO(), io.StringIO()

        def run() -> int:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return main(argv)

        code = await asyncio.to_thread(run)
        link = out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""
        if code != 0 or "?start=" not in link:
            raise StepFailed(f"suara admin invite exited {code}: {err.getvalue().strip() or out.getvalue().strip()}")
        p.say(f"   {link}")
        p.vars[self.save_as] = link


@dataclass(frozen=True, slots=True)
class OpenLink:
    """Open an invite link: the Telegram app sends ``/start <code>`` (the deep-link payload).
    ``form_id`` is the form a respondent link opens (remembered for the answers that follow)."""

    who: Actor
    link: str
    expect: str | None = None
    form_id: str | None = None

    def describe(self) -> str:
        return f"{self.who.name} opens the invite link {self.link!r}"

    async def play(self, p: Player) -> None:
        link = p.vars.get(self.link)
        if not isinstance(link, str):
            raise StepFailed(f"no link {self.link!r} was made before")
        code = link.rsplit("?start=", 1)[-1]
        p.say(f"   ({self.who.name} opens {link} in Telegram)")
        user = p.user(self.who)
        mark = user.mark()
        await p.act(user.send_command("start", code))
        if self.expect is not None:
            await expect_key(p, self.who, self.expect, since=mark)
        if self.form_id is not None:
            p.forms[self.who.key] = self.form_id


# ------------------------------------------------------------------------------------ restart & checks
@dataclass(frozen=True, slots=True)
class Restart:
    """Stop the bot (Application and database) and start a new one on the same SQLite file and data
    directory, as after a crash or an update on the server. The emulator keeps running."""

    def describe(self) -> str:
        return "the bot restarts"

    async def play(self, p: Player) -> None:
        p.say()
        p.say("🔁 The bot restarts: the Application stops, the database is closed, a new Application and")
        p.say(f"   Services are built on the same SQLite file ({p.settings.resolved_database_url()}).")
        await p.restart_bot()
        p.say(f"   Bot running again (restart #{p.restarts}); Telegram (the emulator) kept the chats.")
        p.say()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Read the actor's open interview from the database and keep its answers in ``vars[save_as]``;
    with ``same_as`` check that every answer saved then is still there, unchanged."""

    who: Actor
    save_as: str
    same_as: str | None = None
    status: str | None = None

    def describe(self) -> str:
        return f"check {self.who.name}'s saved answers in the database"

    async def play(self, p: Player) -> None:
        sub = await p.open_submission(self.who)
        assert sub.id is not None
        answers = await asyncio.to_thread(p.svc.repo.answers_of, sub.id)
        if self.status is not None and sub.status != self.status:
            raise StepFailed(f"{self.who.name}'s interview is {sub.status}, expected {self.status}")
        if self.same_as is not None:
            before: dict[str, str] = p.vars.get(self.same_as, {})
            lost = {k: v for k, v in before.items() if answers.get(k) != v}
            if lost:
                raise StepFailed(f"answers lost or changed across the restart: {lost}")
            p.say(f"   🗄 database: {self.who.name}'s interview #{sub.id} is {sub.status}; all {len(before)} answers "
                  "saved before the restart are still there, unchanged.")
        else:
            p.say(f"   🗄 database: {self.who.name}'s interview #{sub.id} is {sub.status} with {len(answers)} answers "
                  f"saved ({', '.join(k.rsplit('/', 1)[-1] for k in answers)}).")
        p.vars[self.save_as] = answers
        p.vars[self.save_as + ":id"] = sub.id


@dataclass(frozen=True, slots=True)
class Mine:
    """``/mine``: the enumerator's list must show every interview they did, as submitted."""

    who: Actor
    count: int

    def describe(self) -> str:
        return f"{self.who.name} checks /mine"

    async def play(self, p: Player) -> None:
        user = p.user(self.who)
        await p.act(user.send_command("mine"))
        lang = await p.ui_lang(self.who)
        shown = user.last_text().count(t(lang, "status_submitted"))
        if shown != self.count:
            raise StepFailed(f"/mine lists {shown} submitted interviews, expected {self.count}")
