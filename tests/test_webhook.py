"""Webhook mode end to end, real HTTP both ways: the emulator POSTs updates to the bot's tornado server
(`bot.webhook.running_webhook`, PTB's ``start_webhook``) on 127.0.0.1, the bot calls the emulator back.

Covers: an interview over webhook (SQLite file and PostgreSQL), the secret token (a POST without it or
with a wrong one is refused and changes nothing), a restart while users keep writing (the emulator
retries, nothing lost, each update applied once), the emulator's delivery order (different chats in
parallel up to ``max_connections``, one chat strictly in order), and ``suara run --webhook`` as a real
process that stops cleanly on SIGINT / SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bot_harness import (
    BotHarness,
    answer_until,
    consent_through_chat,
    start_respondent,
)
from sqlalchemy import func
from sqlmodel import select

from bot.config import Settings
from bot.emulator import Emulator
from bot.services import Services
from bot.webhook import (
    SECRET_HEADER,
    check_secret_token,
    running_webhook,
    webhook_secret,
    webhook_target,
)
from storage.models import ProcessedUpdate

pytestmark = pytest.mark.filterwarnings("error::telegram.warnings.PTBDeprecationWarning")

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"consent": "yes", "age": "34", "gender": "female", "regency": "tebo"}
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebhookHarness(BotHarness):
    """`BotHarness` with the bot in webhook mode on 127.0.0.1:``port`` (the same port across restarts,
    so the webhook URL the emulator delivers to stays valid)."""

    def __init__(self, emu: Emulator, data_dir: Path, database_url: str = "", **kw: Any) -> None:
        super().__init__(emu, data_dir, database_url, **kw)
        self.port = free_port()
        self.secret = webhook_secret(emu.token)
        self.url = f"http://127.0.0.1:{self.port}/hook/{self.secret}"

    def serving(self) -> contextlib.AbstractAsyncContextManager[object]:
        assert self.app is not None
        return running_webhook(self.app, webhook_url=self.url, listen_host="127.0.0.1", listen_port=self.port,
                               secret_token=self.secret)


@contextlib.asynccontextmanager
async def webhook_harness(data_dir: Path, database_url: str = "") -> AsyncIterator[WebhookHarness]:
    with Emulator() as emu:
        h = WebhookHarness(emu, data_dir, database_url)
        await h.start()
        try:
            yield h
        finally:
            await h.stop()


def webhook_info(emu: Emulator) -> dict[str, Any]:
    """getWebhookInfo over real HTTP (works while the bot is down)."""
    with urllib.request.urlopen(f"{emu.base_url}{emu.token}/getWebhookInfo", timeout=10) as resp:
        return json.loads(resp.read())["result"]


def processed_count(svc: Services) -> int:
    with svc.db.session() as s:
        return int(s.exec(select(func.count()).select_from(ProcessedUpdate)).one())


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    """POST JSON to ``url``; the HTTP status."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


# ------------------------------------------------------------------------------------ pure helpers
def test_secret_rules_and_target() -> None:
    secret = webhook_secret(TOKEN)
    assert check_secret_token(secret) == secret and TOKEN.split(":")[1] not in secret
    assert webhook_secret(TOKEN) == secret != webhook_secret("1:other")  # stable, per token
    for bad in ("", "a" * 257, "has space", "slash/no", "titik.no"):
        with pytest.raises(ValueError, match="1-256"):
            check_secret_token(bad)
    assert check_secret_token("A-z_09" * 40) and check_secret_token("x" * 256)
    url, path, s = webhook_target("https://example.org/suara/", TOKEN)
    assert (url, path, s) == (f"https://example.org/suara/{secret}", f"/{secret}", secret)
    with pytest.raises(ValueError, match="http"):
        webhook_target("example.org/suara", TOKEN)


# ------------------------------------------------------------------------------------ in process
async def test_interview_over_webhook(tmp_path: Path, migrated_url: str) -> None:
    """A respondent's deep link, language choice and answers arrive by webhook POSTs; the rows are in the
    database (SQLite file, and PostgreSQL when it answers); the bot never polls."""
    async with webhook_harness(tmp_path, migrated_url) as h:
        set_calls = h.emu.calls_to("setWebhook")
        assert set_calls and set_calls[-1].params["url"] == h.url
        assert set_calls[-1].params["secret_token"] == h.secret
        u, person_id, sub_id = await start_respondent(h, 5001, "en")
        await answer_until(h, u, sub_id, SPEC, "respondent/district")
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_id)
        assert {k: answers.get(k) for k in ("consent", "respondent/age", "respondent/gender",
                                            "respondent/regency")} == {
            "consent": "yes", "respondent/age": "34", "respondent/gender": "female", "respondent/regency": "tebo"}
        person = await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 5001)
        assert person is not None and person.id == person_id and person.language == "en"
        sub = await asyncio.to_thread(h.svc.repo.get_submission, sub_id)
        assert sub.position == "respondent/district" and "district" in u.last_text()
        assert h.emu.calls_to("getUpdates") == []
        info = await asyncio.to_thread(webhook_info, h.emu)
        assert info["url"] == h.url and info["pending_update_count"] == 0


async def test_post_without_or_with_a_wrong_secret_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    async with webhook_harness(tmp_path) as h:
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        user = h.emu.user(5101, "Forged", language_code="en")
        message = {"message_id": 1, "date": 1_700_000_000, "text": f"/start {inv.code}",
                   "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
                   "chat": {"id": 5101, "type": "private", "first_name": "Forged"},
                   "from": {"id": 5101, "is_bot": False, "first_name": "Forged", "language_code": "en"}}
        body = {"update_id": 990_001, "message": message}
        before = await asyncio.to_thread(processed_count, h.svc)
        n_calls = len(h.emu.calls)

        assert await asyncio.to_thread(post, h.url, body, {}) == 403
        assert await asyncio.to_thread(post, h.url, body, {SECRET_HEADER: "wrong-secret"}) == 403
        assert await asyncio.to_thread(post, h.url, body, {SECRET_HEADER: h.secret.upper()}) == 403
        wrong_path = f"http://127.0.0.1:{h.port}/hook/not-the-secret"
        assert await asyncio.to_thread(post, wrong_path, body, {SECRET_HEADER: h.secret}) == 404

        # nothing reached the handlers, the database or the chat
        assert h.times_handled(990_001) == 0
        assert await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 5101) is None
        assert await asyncio.to_thread(processed_count, h.svc) == before
        assert [c.method for c in h.emu.calls[n_calls:] if str(c.params.get("chat_id")) == "5101"] == []
        assert user.messages == []

        # the same POST with the right secret is taken (so the refusals above were the secret's doing)
        assert await asyncio.to_thread(post, h.url, body, {SECRET_HEADER: h.secret}) == 200
        await h.handled(990_001)
        assert await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 5101) is not None
        assert "English" in " ".join(label for row in user.inline_buttons() for label, _ in row)


async def test_restart_loses_nothing_and_applies_each_update_once(tmp_path: Path, migrated_url: str) -> None:
    """Stop the webhook bot, let users write meanwhile (the emulator's deliveries fail and are retried),
    start a new app on the same data: every update arrives, in order per chat, and is applied once."""
    async with webhook_harness(tmp_path, migrated_url) as h:
        a, _, sub_a = await start_respondent(h, 5201, "en")
        await answer_until(h, a, sub_a, SPEC, "respondent/age")
        inv = await asyncio.to_thread(h.svc.repo.create_invite, role="respondent", created_by=None, now=h.now(),
                                      form_id="jambi_voter_survey")
        b = h.emu.user(5202, "Budi", language_code="id")

        await h.stop()
        queued = [a.send_text("34"), b.send_command("start", inv.code), a.send_command("review")]
        await h.emu.wait_for_async(
            lambda: (h.emu.state.webhook.last_error_message or "").startswith("Connection failed"), 15,
            "a failed delivery while the bot is down")
        info = await asyncio.to_thread(webhook_info, h.emu)
        assert info["pending_update_count"] == 3 and info["url"] == h.url
        assert "Connection failed" in info["last_error_message"] and info["last_error_date"] > 0

        await h.start()
        for uid in queued:
            await h.handled(uid, timeout=20)
        assert [h.times_handled(uid) for uid in queued] == [1, 1, 1]
        answers = await asyncio.to_thread(h.svc.repo.answers_of, sub_a)
        assert answers["respondent/age"] == "34"
        assert await asyncio.to_thread(h.svc.repo.person_by_telegram_id, 5202) is not None
        assert "Bahasa Indonesia" in [label for row in b.inline_buttons() for label, _ in row]
        info = await asyncio.to_thread(webhook_info, h.emu)
        assert info["pending_update_count"] == 0

        # a re-delivered update (Telegram retrying after a lost 200) is handled again but applied once
        events = await asyncio.to_thread(h.svc.repo.events_of, sub_a)
        h.emu.redeliver(queued[0])
        await h.handled(queued[0], times=2)
        assert await asyncio.to_thread(h.svc.repo.answers_of, sub_a) == answers
        assert len(await asyncio.to_thread(h.svc.repo.events_of, sub_a)) == len(events)


# ------------------------------------------------------------------------------------ emulator delivery
class _Recorder(http.server.BaseHTTPRequestHandler):
    """A webhook receiver recording arrivals; the server object carries the shared state."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the emulator's workers use

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        srv: Any = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        chat = body["message"]["chat"]["id"]
        with srv.lock:
            srv.arrivals.append((chat, body["update_id"], self.headers.get(SECRET_HEADER)))
            srv.active[chat] = srv.active.get(chat, 0) + 1
            srv.max_active_chat = max(srv.max_active_chat, srv.active[chat])
            srv.total += 1
            srv.max_total = max(srv.max_total, srv.total)
        try:
            if srv.barrier is not None and len([a for a in srv.arrivals if a[0] == chat]) == 1:
                srv.barrier.wait()  # the first update of each chat waits until all chats are in flight
        finally:
            with srv.lock:
                srv.active[chat] -= 1
                srv.total -= 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("max_connections", [1, 3])
def test_emulator_delivers_chats_in_parallel_and_each_chat_in_order(emu: Emulator, max_connections: int) -> None:
    """Different chats in parallel up to ``max_connections`` (3 chats meet at a barrier only if 3
    deliveries are in flight at once), one chat never more than one at a time and in update order."""
    srv: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    srv.lock = threading.Lock()
    srv.arrivals, srv.active, srv.total, srv.max_total, srv.max_active_chat = [], {}, 0, 0, 0
    srv.barrier = threading.Barrier(3, timeout=15) if max_connections == 3 else None
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        users = [emu.user(6000 + i, f"U{i}") for i in range(3)]
        sent = {u.id: [u.send_text(f"{u.id}-{n}") for n in range(4)] for u in users}
        url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
        _post_form(emu, "setWebhook", {"url": url, "secret_token": "rahasia_1", "max_connections": max_connections})
        emu.wait_for(lambda: len(srv.arrivals) == 12, 20, "12 deliveries")
        info = json.loads(_post_form(emu, "getWebhookInfo", {}))["result"]
    finally:
        srv.shutdown()
        srv.server_close()
    assert srv.max_active_chat == 1
    assert srv.max_total == max_connections
    for user_id, ids in sent.items():
        assert [uid for chat, uid, _ in srv.arrivals if chat == user_id] == ids
    assert {secret for _, _, secret in srv.arrivals} == {"rahasia_1"}
    assert info["pending_update_count"] == 0 and info["max_connections"] == max_connections
    assert "last_error_message" not in info


def _post_form(emu: Emulator, method: str, params: dict[str, Any]) -> bytes:
    data = json.dumps(params).encode()
    req = urllib.request.Request(f"{emu.base_url}{emu.token}/{method}", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read()


# ------------------------------------------------------------------------------------ suara run
def _env(tmp_path: Path, emu: Emulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TELEGRAM_BOT_TOKEN", "SUARA_DATA_DIR", "DATABASE_URL")}
    env.update(SUARA_DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT), TELEGRAM_BOT_TOKEN=emu.token,
               SUARA_BOT_API_URL=emu.base_url, SUARA_BOT_FILE_URL=emu.base_file_url, SUARA_ADMIN_IDS="42")
    return env


@pytest.mark.parametrize(("backend", "stop_signal"), [("sqlite", signal.SIGINT), ("postgresql", signal.SIGTERM)])
def test_suara_run_webhook_serves_and_stops_cleanly(tmp_path: Path, request: pytest.FixtureRequest, backend: str,
                                                    stop_signal: signal.Signals) -> None:
    """``suara run --webhook … --listen …`` as a process against the emulator: /start with a deep link,
    language, consent over webhook; an answer sent right before the stop signal is handled or still
    queued at the emulator (never lost); exit code 0; the webhook stays set for the next start."""
    database_url = request.getfixturevalue("pg_url") if backend == "postgresql" else ""
    with Emulator(token=TOKEN) as emu:
        data = tmp_path / "data"
        svc = Services.open(Settings(token="", data_dir=data, database_url=database_url))
        try:
            code = svc.repo.create_invite(role="respondent", created_by=None, now=svc.now(),
                                          form_id="jambi_voter_survey").code
        finally:
            svc.close()
        port = free_port()
        args = [sys.executable, "-m", "bot", "run", "--log-level", "WARNING", "--env-file", "",
                "--webhook", f"http://127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}"]
        if database_url:
            args += ["--database-url", database_url]
        proc = subprocess.Popen(args, cwd=tmp_path, env=_env(tmp_path, emu), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            emu.wait_for(lambda: bool(emu.commands(scope={"type": "chat", "chat_id": 42})) or proc.poll() is not None,
                         timeout=60, what="the commands menu (set at start-up)")
            assert proc.poll() is None, proc.communicate()[1][-2000:]
            u = emu.user(8201, "Rudi", language_code="en")
            consent_through_chat(u, code)
            last = u.send_text("41")
        finally:
            proc.send_signal(stop_signal)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert "Traceback" not in err and emu.calls_to("getUpdates") == []
        secret = webhook_secret(TOKEN)
        info = webhook_info(emu)
        assert info["url"] == f"http://127.0.0.1:{port}/{secret}"
        assert emu.calls_to("setWebhook")[-1].params["secret_token"] == secret
        pending = info["pending_update_count"]

    svc = Services.open(Settings(token="", data_dir=data, database_url=database_url), publish_shipped=False)
    try:
        person = svc.repo.person_by_telegram_id(8201)
        assert person is not None and person.id is not None and person.language == "en"
        sub = svc.repo.open_submission_for(person.id)
        assert sub is not None and sub.id is not None
        answers = svc.repo.answers_of(sub.id)
        assert answers["consent"] == "yes"
        handled = svc.repo.was_processed(last)
        # the last answer is applied (delivered before the stop) or still queued at the emulator, or both
        # (its 200 was cut off by the stop: Telegram delivers it again and it is applied once): never lost
        assert handled or pending == 1, (handled, pending)
        assert (answers.get("respondent/age") == "41") == handled
    finally:
        svc.close()


# ------------------------------------------------------------------------------------ two workers
class _Forwarder(http.server.BaseHTTPRequestHandler):
    """Round-robin reverse proxy: each POST goes to the next worker in turn (path and headers kept); a
    worker that does not answer gives 502, so the emulator retries (and the next try goes elsewhere)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        import http.client

        srv: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with srv.lock:
            index = srv.turn % len(srv.ports)
            srv.turn += 1
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", SECRET_HEADER.lower())}
        conn = http.client.HTTPConnection("127.0.0.1", srv.ports[index], timeout=10)
        try:
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except OSError:
            status = 502
        finally:
            conn.close()
        if status == 200:
            with srv.lock:
                srv.served[index].append(json.loads(body)["update_id"])
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_two_webhook_workers_share_postgresql(tmp_path: Path, pg_url: str) -> None:
    """Two ``suara run --webhook`` processes on one PostgreSQL database behind a round-robin forwarder:
    four respondents' updates are spread over both workers, every answer is stored once; then one worker
    is stopped (SIGTERM) and the other serves the rest of the answers (the emulator retries the 502s)."""
    with Emulator(token=TOKEN) as emu:
        svc = Services.open(Settings(token="", data_dir=tmp_path / "data", database_url=pg_url))
        try:  # migrate + publish once before the workers start (they share the database)
            codes = [svc.repo.create_invite(role="respondent", created_by=None, now=svc.now(),
                                            form_id="jambi_voter_survey").code for _ in range(4)]
        finally:
            svc.close()
        fwd: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forwarder)
        fwd.lock, fwd.turn, fwd.ports, fwd.served = threading.Lock(), 0, [free_port(), free_port()], [[], []]
        threading.Thread(target=fwd.serve_forever, daemon=True).start()
        procs = []
        try:
            for i, port in enumerate(fwd.ports):
                args = [sys.executable, "-m", "bot", "run", "--log-level", "WARNING", "--env-file", "",
                        "--database-url", pg_url, "--webhook", f"http://127.0.0.1:{fwd.server_address[1]}",
                        "--listen", f"127.0.0.1:{port}"]
                (tmp_path / f"w{i}").mkdir()
                procs.append(subprocess.Popen(args, cwd=tmp_path / f"w{i}", env=_env(tmp_path / f"w{i}", emu),
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            emu.wait_for(lambda: len(emu.calls_to("setWebhook")) >= 2 or any(p.poll() is not None for p in procs),
                         timeout=90, what="both workers set the webhook")
            assert all(p.poll() is None for p in procs), [p.communicate()[1][-2000:] for p in procs if p.poll()]

            users = [emu.user(8300 + i, f"R{i}", language_code="en") for i in range(4)]

            def step(action: str, wait_for: str) -> None:
                marks = [u.mark() for u in users]
                for u, code in zip(users, codes, strict=True):
                    if action == "start":
                        u.send_command("start", code)
                    elif action.startswith("tap:"):
                        u.tap(action[4:])
                    else:
                        u.send_text(action)
                for u, m in zip(users, marks, strict=True):
                    u.wait_message(since=m, contains=wait_for, timeout=30)

            step("start", "English")
            step("tap:English", "Do you agree")
            step("tap:Yes", "How old")
            assert fwd.served[0] and fwd.served[1], fwd.served  # both workers took updates

            procs[0].send_signal(signal.SIGTERM)
            assert procs[0].wait(timeout=60) == 0, procs[0].communicate()[1][-2000:]
            before = len(fwd.served[1])
            step("33", "gender")
            assert len(fwd.served[1]) >= before + 4 and procs[1].poll() is None
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            errs = [p.communicate(timeout=60)[1] for p in procs]
            fwd.shutdown()
            fwd.server_close()
        assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for e in errs]
        assert not any("Traceback" in e for e in errs), [e[-3000:] for e in errs]
        delivered = fwd.served[0] + fwd.served[1]

    svc = Services.open(Settings(token="", data_dir=tmp_path / "data", database_url=pg_url), publish_shipped=False)
    try:
        for u in users:
            person = svc.repo.person_by_telegram_id(u.id)
            assert person is not None and person.id is not None
            sub = svc.repo.open_submission_for(person.id)
            assert sub is not None and sub.id is not None
            answers = svc.repo.answers_of(sub.id)
            assert (answers["consent"], answers["respondent/age"]) == ("yes", "33")
        assert len(delivered) == len(set(delivered))  # the emulator delivered each update once
        assert all(svc.repo.was_processed(uid) for uid in delivered if uid)
    finally:
        svc.close()
