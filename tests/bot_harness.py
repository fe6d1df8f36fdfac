"""Test harness for the bot: the real Application (PTB network stack) against the local emulator, on a real
SQLite file (or PostgreSQL), with a way to wait until an update has been fully handled (no sleeps).

`BotHarness.handled(update_id)` waits for a marker handler in a late handler group (PTB runs groups in
order for one update, so the marker runs after the real handler has finished, replies included).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.app import build_application, running
from bot.config import Settings
from bot.emulator import Emulator
from bot.emulator.users import ScriptedUser
from bot.services import Services

DONE_GROUP = 99

_template: dict[str, Path] = {}


def _template_db() -> Path:
    """A SQLite file migrated to head with the shipped forms published, made once per test process
    (saves the ~1 s of migrations + form parsing in every test). Copied, never shared."""
    if "path" not in _template:
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="suara_bot_template_"))
        Services.open(Settings(token="x", data_dir=d)).close()  # the last close checkpoints the WAL
        _template["path"] = d / "suara.sqlite3"
    return _template["path"]


class BotHarness:
    """One emulator + one bot (restartable) on ``data_dir`` / ``database_url``."""

    def __init__(self, emu: Emulator, data_dir: Path, database_url: str = "", *, admin_ids: frozenset[int] = frozenset(),
                 overall_max_rate: float = 0.0, concurrent_updates: int = 32) -> None:
        self.emu = emu
        self.settings = Settings(token=emu.token, data_dir=data_dir, database_url=database_url, admin_ids=admin_ids,
                                 concurrent_updates=concurrent_updates, rate_limit_retries=2)
        self.overall_max_rate = overall_max_rate
        self.services: Services | None = None
        self.app: Application | None = None
        self._done: dict[int, int] = {}
        self._event = asyncio.Event()
        self._stack: contextlib.AsyncExitStack | None = None

    async def _mark_done(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(update, Update):
            self._done[update.update_id] = self._done.get(update.update_id, 0) + 1
            self._event.set()

    async def start(self) -> None:
        """Open services and start polling (a fresh SQLite data dir starts from the prepared template)."""
        target = self.settings.data_dir / "suara.sqlite3"
        if not self.settings.database_url and not target.exists():
            import shutil

            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(await asyncio.to_thread(_template_db), target)
        self.services = await asyncio.to_thread(Services.open, self.settings)
        self.app = build_application(self.settings, services=self.services, base_url=self.emu.base_url,
                                     base_file_url=self.emu.base_file_url, overall_max_rate=self.overall_max_rate)
        self.app.add_handler(TypeHandler(Update, self._mark_done), group=DONE_GROUP)
        self._stack = contextlib.AsyncExitStack()
        await self._stack.enter_async_context(self.serving())

    def serving(self) -> contextlib.AbstractAsyncContextManager[object]:
        """How the started app gets its updates: long polling here (`bot.app.running`); subclasses override."""
        assert self.app is not None
        return running(self.app, timeout=1)

    async def stop(self) -> None:
        """Stop polling and close the database (what a process exit would do)."""
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None
        if self.services is not None:
            self.services.close()
            self.services = None

    async def restart(self) -> None:
        """Stop, then build a NEW application and services on the same data (FC-23)."""
        await self.stop()
        await self.start()

    @property
    def svc(self) -> Services:
        assert self.services is not None
        return self.services

    def times_handled(self, update_id: int) -> int:
        """How many times ``update_id`` went through the handlers (re-deliveries count)."""
        return self._done.get(update_id, 0)

    async def handled(self, update_id: int, timeout: float = 15.0, *, times: int = 1) -> None:
        """Wait until the bot has finished handling ``update_id`` (``times`` times, for re-deliveries)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._done.get(update_id, 0) < times:
            self._event.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self.emu.describe(f"update {update_id} to be handled", timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)

    async def do(self, update_id: int, timeout: float = 15.0) -> int:
        """`handled` and return the id (so ``await h.do(user.send_text("x"))`` reads naturally)."""
        await self.handled(update_id, timeout)
        return update_id

    def now(self) -> datetime:
        return datetime.now(UTC)


@contextlib.asynccontextmanager
async def bot_harness(data_dir: Path, database_url: str = "", **kw: object) -> AsyncIterator[BotHarness]:
    """An emulator and a started bot; everything stopped afterwards."""
    with Emulator() as emu:
        h = BotHarness(emu, data_dir, database_url, **kw)  # type: ignore[arg-type]
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


def buttons(user: ScriptedUser) -> list[str]:
    """Labels of the inline buttons on the newest message that has a keyboard."""
    return [label for row in user.inline_buttons() for label, _ in row]


# ------------------------------------------------------------------------------------------ driver
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def jpeg_bytes(width: int = 640, height: int = 480, color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A real JPEG made with Pillow."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def voice_bytes() -> bytes:
    """The committed real OGG/Opus voice note fixture."""
    return (FIXTURES / "voice.ogg").read_bytes()


async def current_prompt(h: BotHarness, sub_id: int):  # type: ignore[no-untyped-def]
    """The engine step the stored interview is at (read through the services, like the bot)."""
    _, _, step = await asyncio.to_thread(h.svc.current, sub_id)
    return step


async def tap_choice(h: BotHarness, user: ScriptedUser, label: str) -> None:
    """Tap the choice ``label`` on the newest keyboard, turning pages (▶) until it is shown."""
    for _ in range(10):
        labels = buttons(user)
        for shown in (label, "● " + label):
            if shown in labels:
                await h.do(user.tap(shown))
                return
        nxt = next((lbl for lbl in labels if lbl.endswith("▶") and not lbl.startswith("▶")), None)
        if nxt is None:
            raise LookupError(f"{label!r} not on the keyboard: {labels}")
        await h.do(user.tap(nxt))
    raise LookupError(label)


async def answer_current(h: BotHarness, user: ScriptedUser, sub_id: int, spec: dict[str, object]) -> str | None:
    """Answer whatever the interview asks now, the way a person would in the chat.

    ``spec`` maps a question *name* to: a choice name (select_one), a list of names (select_multiple),
    text, ``None`` (/skip), or for a repeat name the number of instances to add. Media questions get a
    real voice note / JPEG, geopoints the location button. Returns the answer key, or None at the end.
    """
    from questionnaires.interview import Asked, Rejected

    step = await current_prompt(h, sub_id)
    if not isinstance(step, (Asked, Rejected)):
        return None
    p = step.prompt
    name = p.key.split("/")[-1].split("[")[0]
    if p.kind == "repeat":
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
        done = int(sub.progress.get("repeat_counts", {}).get(p.key, 0))
        want = int(spec.get(name, 0))  # type: ignore[call-overload]
        yes = "Ya" if user.language_code == "id" else "Yes"
        no = "Tidak" if user.language_code == "id" else "No"
        await h.do(user.tap(yes if done < want else no))
        return p.key
    q = p.question
    assert q is not None
    value = spec.get(name, spec.get(p.key, "__default__"))
    if value is None:
        await h.do(user.send_command("skip"))
        return p.key
    labels = {c.name: c.label for c in p.choices}
    if q.type == "select_one":
        choice = p.choices[0].name if value == "__default__" else str(value)
        await tap_choice(h, user, labels[choice])
    elif q.is_multiple:
        names = [p.choices[0].name] if value == "__default__" else list(value)  # type: ignore[call-overload]
        for n in names:
            await tap_choice(h, user, labels[n])
        done_label = next(lbl for lbl in buttons(user) if lbl.startswith(("Done", "Selesai")))
        await h.do(user.tap(done_label))
    elif q.type == "acknowledge":
        await h.do(user.tap("OK"))
    elif q.type == "audio":
        await h.do(user.send_voice(voice_bytes(), duration=3))
    elif q.type == "image":
        await h.do(user.send_photo(jpeg_bytes()))
    elif q.type == "geopoint":
        label = next(b["text"] for row in user.reply_keyboard() for b in row if b.get("request_location"))
        await h.do(user.reply_keyboard_tap(label, location=(-1.61, 103.61)))
    elif q.type == "integer":
        await h.do(user.send_text("34" if value == "__default__" else str(value)))
    else:
        await h.do(user.send_text("jawaban" if value == "__default__" else str(value)))
    return p.key


async def answer_until_done(h: BotHarness, user: ScriptedUser, sub_id: int, spec: dict[str, object],
                            limit: int = 120) -> list[str]:
    """`answer_current` until the interview reaches the end (review); returns the keys answered."""
    keys: list[str] = []
    for _ in range(limit):
        key = await answer_current(h, user, sub_id, spec)
        if key is None:
            return keys
        keys.append(key)
    raise AssertionError(f"interview did not end after {limit} answers: {keys[-5:]}\n"
                         + h.emu.describe("the interview to end"))


async def start_respondent(h: BotHarness, user_id: int, language: str = "en",
                           form_id: str = "jambi_voter_survey") -> tuple[ScriptedUser, int, int]:
    """A respondent who opened a deep link for ``form_id`` and chose ``language``.
    Returns (user, person id, submission id)."""
    inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                  form_id=form_id)
    user = h.emu.user(user_id, f"User{user_id}", language_code=language)
    await h.do(user.send_command("start", inv.code))
    await h.do(user.tap("English" if language == "en" else "Bahasa Indonesia"))
    person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, user_id)
    assert person is not None and person.id is not None
    sub = await asyncio.to_thread(h.svc.repo.open_submission_for, person.id)
    assert sub is not None and sub.id is not None
    return user, person.id, sub.id


async def answer_until(h: BotHarness, user: ScriptedUser, sub_id: int, spec: dict[str, object], stop_key: str,
                       limit: int = 80) -> None:
    """Answer (per `answer_current`) until the interview asks ``stop_key``."""
    from questionnaires.interview import Asked, Rejected

    for _ in range(limit):
        step = await current_prompt(h, sub_id)
        if isinstance(step, (Asked, Rejected)) and step.prompt.key == stop_key:
            return
        if await answer_current(h, user, sub_id, spec) is None:
            raise AssertionError(f"reached the end without asking {stop_key}")
    raise AssertionError(f"{stop_key} not asked within {limit} answers")


def consent_through_chat(user: ScriptedUser, code: str, *, until: str = "How old", timeout: float = 30) -> None:
    """Blocking, for a bot running in another process (``suara run`` tests): open the voter survey's deep
    link ``code``, choose English, agree, and wait for the prompt containing ``until``."""
    for act, expect in ((lambda: user.send_command("start", code), "English"), (lambda: user.tap("English"),
                        "Do you agree"), (lambda: user.tap("Yes"), until)):
        m = user.mark()
        act()
        user.wait_message(since=m, contains=expect, timeout=timeout)
