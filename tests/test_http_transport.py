"""`bot.http.AiohttpRequest`, the aiohttp transport PTB uses for every Bot API call, over real HTTP.

Everything goes through a real `telegram.Bot` where possible: against the Bot API emulator (``emu``) for
the wire format (form encoding, multipart uploads, downloads, long polls, Bot API error JSON), and against
tiny raw asyncio servers on 127.0.0.1 for what the emulator can't do (never answering, stalling or hanging
up mid-body, counting TCP connections). Error mapping is compared with PTB's own `HTTPXRequest`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest

from bot.emulator import Emulator
from bot.http import AiohttpRequest

#: PTB deprecation warnings fail these tests (as in the other emulator tests).
pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")

#: Upper bound for any single await in these tests, so a broken transport fails instead of hanging.
GUARD_S = 15.0


def _bot(emu: Emulator, request: BaseRequest, **kwargs: object) -> Bot:
    return Bot(emu.token, request=request, base_url=emu.base_url, base_file_url=emu.base_file_url,
               **kwargs)  # type: ignore[arg-type]


async def _guard(aw: Awaitable[object]) -> object:
    return await asyncio.wait_for(aw, GUARD_S)


# -- a raw HTTP server for conditions the emulator can't produce ----------------------------------------

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    """One HTTP/1.1 request: (request line, lower-cased headers, body); None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


class RawServer:
    """An asyncio TCP server on 127.0.0.1:<free port>; each connection runs ``behaviour(reader, writer)``.

    Counts accepted connections and requests; ``arrived`` is set when a behaviour calls `saw_request`.
    On exit every connection is aborted and its task cancelled.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    def saw_request(self, req: tuple[str, dict[str, str], bytes]) -> None:
        self.requests.append(req)
        self.arrived.set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self.behaviour(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


def _http_head(status: int, length: int) -> bytes:
    return (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
            "Connection: keep-alive\r\n\r\n").encode("latin-1")


def _free_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on exit: connecting there is refused


# -- plain calls, text and form encoding -------------------------------------------------------------------

async def test_get_me_and_send_message_with_inline_keyboard_arrive_with_their_parameters(emu: Emulator) -> None:
    ana = emu.user(1501, "Ana")
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Ya", callback_data="yes"),
                                      InlineKeyboardButton("Tidak", callback_data="no")]])
    async with _bot(emu, AiohttpRequest()) as bot:
        me = await bot.get_me()
        sent = await bot.send_message(ana.id, "Lanjut?", reply_markup=keyboard,
                                      disable_notification=True)
    assert me.username == emu.bot_username and me.id == int(emu.token.split(":")[0])
    assert len(emu.calls_to("getMe")) == 2  # one from `async with` (Bot.initialize), one explicit
    call = emu.calls_to("sendMessage")[-1]
    assert call.status == 200
    assert call.params["chat_id"] == str(ana.id) and call.params["text"] == "Lanjut?"
    assert call.params["disable_notification"] == "true"
    assert json.loads(call.params["reply_markup"]) == {"inline_keyboard": [[
        {"text": "Ya", "callback_data": "yes"}, {"text": "Tidak", "callback_data": "no"}]]}
    assert ana.inline_buttons() == [[("Ya", "yes"), ("Tidak", "no")]]
    assert sent.message_id == ana.last_message().message_id and sent.text == "Lanjut?"


async def test_unicode_emoji_full_length_text_and_form_reserved_characters_survive(emu: Emulator) -> None:
    budi = emu.user(1502, "Budi")
    long_text = ("Ñandú ꦱꦸꦮꦫ 🇮🇩 👩‍🌾 " * 400)[:4095] + "✅"
    assert len(long_text) == 4096  # the documented maximum (4096 characters), as the emulator counts it
    reserved = "Rp 5.000 & diskon=10% + ongkir; a+b=c&d=%26%2B?x#y"
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("k=v & 1+1", callback_data="q=1&r=2+3%")]])
    async with _bot(emu, AiohttpRequest()) as bot:
        m1 = await bot.send_message(budi.id, long_text)
        m2 = await bot.send_message(budi.id, reserved, reply_markup=markup)
    first, second = budi.messages
    assert first.raw_text == long_text and m1.text == long_text
    assert second.raw_text == reserved and m2.text == reserved
    assert budi.inline_buttons(second.message_id) == [[("k=v & 1+1", "q=1&r=2+3%")]]
    assert emu.calls_to("sendMessage")[-1].params["text"] == reserved


# -- uploads and downloads -----------------------------------------------------------------------------

async def test_uploads_arrive_byte_identical_with_name_and_type_and_download_back(
        emu: Emulator, fixtures_dir: Path, tmp_path: Path) -> None:
    citra = emu.user(1503, "Citra")
    jpeg = (fixtures_dir / "fc25_1000x750_exif6.jpg").read_bytes()
    # binary with CRLFs and boundary-like runs inside, so a sloppy multipart encoder would show
    blob = random.Random(7).randbytes(300_000) + b"\r\n--\r\n--boundary\r\n\r\n" + bytes(range(256))
    on_disk = tmp_path / "rekap data.bin"
    on_disk.write_bytes(blob)
    photo_on_disk = tmp_path / "rumah.jpg"
    photo_on_disk.write_bytes(jpeg)

    async with _bot(emu, AiohttpRequest()) as bot:
        sent = [
            await bot.send_document(citra.id, blob, filename="laporan ñ 2024.csv", caption="bytes"),
            await bot.send_document(citra.id, on_disk.open("rb"), caption="file object"),
            # a file handle PTB leaves unread: aiohttp streams it from the file
            await bot.send_document(citra.id, InputFile(on_disk.open("rb"), read_file_handle=False)),
            await bot.send_photo(citra.id, jpeg, filename="foto 📷.jpg"),
            await bot.send_photo(citra.id, photo_on_disk.open("rb")),
        ]
        file_ids = [m.document.file_id if m.document else m.photo[-1].file_id for m in sent]
        downloads = [bytes(await (await bot.get_file(fid)).download_as_bytearray()) for fid in file_ids]

    got = [(m.file.data, m.file.file_name, m.file.mime_type) for m in citra.messages if m.file is not None]
    assert got == [
        (blob, "laporan ñ 2024.csv", "text/csv"),
        (blob, "rekap data.bin", "application/octet-stream"),
        (blob, "rekap data.bin", "application/octet-stream"),
        (jpeg, "foto 📷.jpg", "image/jpeg"),
        (jpeg, "rumah.jpg", "image/jpeg"),
    ]
    assert [m.caption for m in citra.messages[:2]] == ["bytes", "file object"]
    assert downloads == [blob, blob, blob, jpeg, jpeg]
    assert [c.status for c in emu.calls_to("<download>")] == [200] * 5


async def test_download_of_a_users_voice_note_returns_the_exact_bytes(emu: Emulator, fixtures_dir: Path) -> None:
    voice = (fixtures_dir / "voice.ogg").read_bytes()
    dewi = emu.user(1504, "Dewi")
    dewi.send_voice(voice, duration=3)
    async with _bot(emu, AiohttpRequest(), get_updates_request=AiohttpRequest()) as bot:
        (update,) = await bot.get_updates(timeout=0)
        assert update.message is not None and update.message.voice is not None
        tg_file = await update.message.voice.get_file()
        data = await tg_file.download_as_bytearray()
    assert bytes(data) == voice


# -- transport failures --------------------------------------------------------------------------------

async def test_server_that_never_answers_raises_timed_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await _read_request(reader)
        assert req is not None
        server.saw_request(req)
        await reader.read()  # until the client gives up and closes

    async with RawServer(silent) as server, AiohttpRequest(read_timeout=0.3) as request:
        bot = Bot("1:T", request=request, base_url=server.base_url)
        with pytest.raises(TimedOut) as caught:
            await _guard(bot.get_me())
    assert server.requests and server.requests[0][0].startswith("POST /bot1:T/getMe ")
    assert "Timed out" in str(caught.value)


async def test_server_stalling_in_the_middle_of_the_body_raises_timed_out() -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_http_head(200, 100) + b'{"ok": true, ')
        await writer.drain()
        await reader.read()

    async with RawServer(stall) as server, AiohttpRequest(read_timeout=0.3) as request:
        bot = Bot("1:T", request=request, base_url=server.base_url)
        with pytest.raises(TimedOut):
            await _guard(bot.get_me())


async def test_connection_refused_raises_network_error_naming_the_aiohttp_exception() -> None:
    port = _free_closed_port()
    async with AiohttpRequest(connect_timeout=5) as request:
        bot = Bot("1:T", request=request, base_url=f"http://127.0.0.1:{port}/bot")
        with pytest.raises(NetworkError) as caught:
            await _guard(bot.get_me())
    assert not isinstance(caught.value, TimedOut)
    assert str(caught.value).startswith("aiohttp.ClientConnectorError: ")
    assert str(port) in str(caught.value)


async def test_server_hanging_up_mid_response_raises_network_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(_http_head(200, 100) + b'{"ok": true, "res')
        await writer.drain()
        writer.transport.abort()

    async with RawServer(hang_up) as server, AiohttpRequest() as request:
        bot = Bot("1:T", request=request, base_url=server.base_url)
        with pytest.raises(NetworkError) as caught:
            await _guard(bot.get_me())
    assert not isinstance(caught.value, TimedOut)
    assert str(caught.value).startswith("aiohttp.")


async def test_emulator_dropping_the_connection_raises_network_error_and_the_next_call_works(
        emu: Emulator) -> None:
    eko = emu.user(1505, "Eko")
    async with _bot(emu, AiohttpRequest()) as bot:
        emu.drop_next_connection("sendMessage")
        with pytest.raises(NetworkError) as caught:
            await bot.send_message(eko.id, "hilang")
        assert not isinstance(caught.value, TimedOut)
        assert str(caught.value).startswith("aiohttp.ServerDisconnectedError")
        await bot.send_message(eko.id, "sampai")  # the broken connection left the pool
    assert eko.texts() == ["sampai"]


# -- Bot API error answers: same PTB exceptions as with httpx ---------------------------------------------

ERROR_CASES = {
    "400": (400, "Bad Request: message is not modified", None, BadRequest),
    "403": (403, "Forbidden: bot was blocked by the user", None, Forbidden),
    "429": (429, "Too Many Requests: retry after 7", 7, RetryAfter),
    "409": (409, "Conflict: terminated by other getUpdates request", None, Conflict),
    "401": (401, "Unauthorized", None, InvalidToken),
    "500": (500, "Internal Server Error", None, NetworkError),
    "502": (502, "Bad Gateway", None, NetworkError),
    "chat not found": (None, None, None, BadRequest),  # the emulator's own answer, not a planned fault
}


def _shape(exc: TelegramError) -> tuple[object, ...]:
    return type(exc), str(exc), getattr(exc, "retry_after", None)


@pytest.mark.parametrize("case", list(ERROR_CASES))
async def test_bot_api_error_answers_raise_the_same_exceptions_as_httpx(emu: Emulator, case: str) -> None:
    status, description, retry_after, expected = ERROR_CASES[case]
    fajar = emu.user(1506, "Fajar")
    chat_id = fajar.id if status is not None else 999_999
    shapes = {}
    for name, request in (("aiohttp", AiohttpRequest()), ("httpx", HTTPXRequest())):
        async with _bot(emu, request) as bot:
            if status is not None:
                emu.fail_next("sendMessage", status=status, description=description, retry_after=retry_after)
            with pytest.raises(TelegramError) as caught:
                await bot.send_message(chat_id, "halo")
        shapes[name] = _shape(caught.value)
    assert shapes["aiohttp"] == shapes["httpx"]
    assert shapes["aiohttp"][0] is expected
    if retry_after is not None:
        assert shapes["aiohttp"][2] == dt.timedelta(seconds=retry_after)
    assert fajar.texts() == []


# -- the connection pool --------------------------------------------------------------------------------

async def test_more_concurrent_sends_than_the_pool_size_all_arrive(emu: Emulator) -> None:
    gita = emu.user(1507, "Gita")
    async with _bot(emu, AiohttpRequest(connection_pool_size=2)) as bot:
        sent = await _guard(asyncio.gather(*(bot.send_message(gita.id, f"pesan {i}") for i in range(20))))
    assert sorted(m.text for m in sent) == sorted(f"pesan {i}" for i in range(20))
    assert sorted(gita.texts()) == sorted(f"pesan {i}" for i in range(20))


async def test_the_pool_never_opens_more_connections_than_its_size() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (req := await _read_request(reader)) is not None:  # keep-alive: many requests per connection
            server.saw_request(req)
            body = b'{"ok": true, "result": true}'
            writer.write(_http_head(200, len(body)) + body)
            await writer.drain()

    async with RawServer(answer) as server, AiohttpRequest(connection_pool_size=2) as request:
        bot = Bot("1:T", request=request, base_url=server.base_url)
        results = await _guard(asyncio.gather(*(bot.send_chat_action(7, "typing") for _ in range(20))))
    assert results == [True] * 20 and len(server.requests) == 20
    assert server.connections == 2  # 20 concurrent calls, yet only the pool's 2 connections, kept alive
    assert {h["user-agent"] for _, h, _ in server.requests} == {BaseRequest.USER_AGENT}
    assert {h["content-type"] for _, h, _ in server.requests} == {"application/x-www-form-urlencoded"}


async def test_waiting_longer_than_pool_timeout_for_a_connection_raises_timed_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        req = await _read_request(reader)
        assert req is not None
        server.saw_request(req)
        await reader.read()

    request = AiohttpRequest(connection_pool_size=1, read_timeout=None, connect_timeout=0.2, pool_timeout=0.2)
    async with RawServer(silent) as server, request:
        bot = Bot("1:T", request=request, base_url=server.base_url)
        holder = asyncio.create_task(bot.get_me())  # takes the only connection and never gets an answer
        try:
            await _guard(server.arrived.wait())
            with pytest.raises(TimedOut):
                await _guard(bot.get_me())
        finally:
            holder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holder
    assert server.connections == 1 and len(server.requests) == 1  # the second call never got a connection


# -- lifecycle ------------------------------------------------------------------------------------------

async def test_do_request_before_initialize_and_after_shutdown_raises_runtime_error(emu: Emulator) -> None:
    request = AiohttpRequest()
    url = f"{emu.base_url}{emu.token}/getMe"
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST")
    await request.initialize()
    status, body = await request.do_request(url, "POST")
    assert status == 200 and json.loads(body)["result"]["username"] == emu.bot_username
    await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST")


async def test_initialize_and_shutdown_are_idempotent_and_it_can_start_again(emu: Emulator) -> None:
    request = AiohttpRequest()
    await request.initialize()
    await request.initialize()
    bot = _bot(emu, request)
    assert (await bot.get_me()).username == emu.bot_username
    await request.shutdown()
    await request.shutdown()
    with pytest.raises(NetworkError, match="not initialized"):  # PTB wraps the transport's RuntimeError
        await bot.get_me()
    await request.initialize()  # PTB may initialise a Bot again after shutting it down
    try:
        assert (await bot.get_me()).username == emu.bot_username
    finally:
        await request.shutdown()


async def test_async_with_bot_and_one_request_shared_by_both_slots(emu: Emulator) -> None:
    # bot/cmd_run.py shares one AiohttpRequest for sending and getUpdates: Bot initialises and shuts it twice
    request = AiohttpRequest(1)
    async with _bot(emu, request, get_updates_request=request) as bot:
        assert bot.username == emu.bot_username
        assert await bot.get_updates(timeout=0) == ()
    with pytest.raises(RuntimeError):
        await request.do_request(f"{emu.base_url}{emu.token}/getMe", "POST")
    assert [c.status for c in emu.calls] == [200, 200]


# -- the long poll --------------------------------------------------------------------------------------

async def test_long_poll_on_an_empty_queue_returns_no_updates_instead_of_timing_out(emu: Emulator) -> None:
    # read_timeout (0.5 s) is shorter than the poll (1 s): PTB adds the poll timeout to the read timeout
    async with _bot(emu, AiohttpRequest(), get_updates_request=AiohttpRequest(1, read_timeout=0.5)) as bot:
        assert await _guard(bot.get_updates(timeout=1)) == ()
        hana = emu.user(1508, "Hana")
        hana.send_text("halo 👋 & sampai=jumpa")
        (update,) = await _guard(bot.get_updates(timeout=5))
    assert update.message is not None and update.message.text == "halo 👋 & sampai=jumpa"
    polls = emu.calls_to("getUpdates")
    assert [c.params.get("timeout") for c in polls] == ["1", "5"] and all(c.status == 200 for c in polls)


# -- proxies --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_a_proxy_from_the_environment_is_used_like_httpx_does(monkeypatch: pytest.MonkeyPatch,
                                                                     transport: str) -> None:
    """Deployments reaching Telegram through an HTTP proxy set HTTP(S)_PROXY; both transports honour it."""
    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (req := await _read_request(reader)) is not None:
            server.saw_request(req)
            body = json.dumps({"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "Suara",
                                                      "username": "suara_bot"}}).encode()
            writer.write(_http_head(200, len(body)) + body)
            await writer.drain()

    async with RawServer(proxy) as server:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
        request: BaseRequest = HTTPXRequest() if transport == "httpx" else AiohttpRequest()
        bot = Bot("1:T", request=request, base_url="http://api.telegram.invalid/bot")
        async with request:
            me = await _guard(bot.get_me())
    assert me.username == "suara_bot"
    assert server.requests and server.requests[0][0].startswith("POST http://api.telegram.invalid/bot1:T/getMe")


async def test_no_proxy_and_an_explicit_proxy_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://10.255.255.1:9")  # would hang if used
    monkeypatch.setenv("no_proxy", "api.example.org")
    request = AiohttpRequest()
    assert request.proxy_for("http://api.example.org/bot1:T/getMe") is None
    assert request.proxy_for("http://other.example.org/x") == "http://10.255.255.1:9"
    assert AiohttpRequest(proxy="http://p:1").proxy_for("http://api.example.org/") == "http://p:1"
