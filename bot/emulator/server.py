"""A small HTTP/1.1 server on asyncio for the Bot API emulator, and request-body parsing.

Why asyncio and not ``http.server``: a long poll (``getUpdates`` with ``timeout``) is then a pending
future instead of a parked thread, every keep-alive connection of PTB's httpx pool is a cheap task, one
event-loop thread serves everything without GIL hand-offs between dozens of request threads, and a
dropped client is just a closed transport (no ``BrokenPipeError`` tracebacks). The server runs in its own
thread with its own loop, so it is independent of the bot's event loop.

Supported: ``Content-Length`` and ``chunked`` request bodies, keep-alive, ``Expect: 100-continue``,
``application/x-www-form-urlencoded``, ``application/json`` and ``multipart/form-data`` (own parser; the
``cgi`` module is gone in Python 3.13).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

#: Largest request body accepted (bytes). Telegram's upload limit for bots is 50 MB.
MAX_BODY_BYTES = 60 * 1024 * 1024


@dataclass(frozen=True)
class UploadedFile:
    """One file part of a multipart request: the form field's ``filename``, its ``Content-Type`` and bytes."""

    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:  # keep call logs short
        return f"<file {self.filename!r} {self.content_type} {len(self.data)} bytes>"


@dataclass
class Request:
    """A parsed HTTP request: method, path (not unquoted), query pairs, lower-cased headers, raw body."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    #: awaitable that completes when the client closes the connection (set by the server)
    wait_closed: Callable[[], Awaitable[None]] | None = None


@dataclass
class Response:
    """An HTTP response; ``drop=True`` means: close the socket without answering (fault injection)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object) -> Response:
        """A JSON response (UTF-8, no ASCII escaping so logs stay readable)."""
        return cls(status=status, body=json.dumps(payload, ensure_ascii=False).encode("utf-8"))


class BadRequestBody(ValueError):
    """The request body could not be parsed (bad JSON, malformed multipart...)."""


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def parse_params(request: Request) -> dict[str, object]:
    """The Bot API parameters of a request: query string, then the body by its ``Content-Type``.

    Form and multipart text values stay strings (the API layer coerces them: ``reply_markup`` and
    ``commands`` arrive as JSON strings inside forms); JSON bodies keep their JSON types; multipart file
    parts become :class:`UploadedFile`. Raises :class:`BadRequestBody` on malformed bodies.
    """
    params: dict[str, object] = dict(request.query)
    if not request.body:
        return params
    ctype = request.headers.get("content-type", "")
    mime, _, rest = ctype.partition(";")
    mime = mime.strip().lower()
    if mime == "application/json":
        try:
            data = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequestBody(f"can't parse JSON body: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequestBody("JSON body must be an object")
        params.update(data)
    elif mime == "multipart/form-data":
        boundary = _header_param(rest, "boundary")
        if not boundary:
            raise BadRequestBody("multipart body without boundary")
        params.update(parse_multipart(request.body, boundary))
    else:  # application/x-www-form-urlencoded (and Telegram accepts it without a content type)
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestBody("form body is not UTF-8") from exc
        params.update(parse_qsl(text, keep_blank_values=True))
    return params


def _header_param(rest: str, name: str) -> str | None:
    """The value of ``name=value`` in a header's parameter list (quotes removed)."""
    for piece in rest.split(";"):
        key, sep, value = piece.strip().partition("=")
        if sep and key.strip().lower() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1].replace('\\"', '"')
            return value
    return None


def parse_multipart(body: bytes, boundary: str) -> dict[str, object]:
    """Parse a ``multipart/form-data`` body (RFC 7578) into text values and :class:`UploadedFile` parts.

    A part with a ``filename`` in its ``Content-Disposition`` (or a non-text ``Content-Type``) is a file;
    others are decoded as UTF-8 text. Raises :class:`BadRequestBody` when the boundary never appears.
    """
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise BadRequestBody("multipart boundary not found in body")
    out: dict[str, object] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequestBody("multipart part without header/body separator")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        _, _, dparams = disposition.partition(";")
        name = _header_param(dparams, "name")
        if name is None:
            raise BadRequestBody("multipart part without a name")
        filename = _header_param(dparams, "filename")
        part_type = headers.get("content-type")
        if filename is not None or (part_type and not part_type.lower().startswith("text/")):
            out[name] = UploadedFile(filename=filename, content_type=part_type, data=content)
        else:
            out[name] = content.decode("utf-8", "replace")
    return out


Handler = Callable[[Request], Awaitable[Response]]


class HttpServer:
    """An HTTP/1.1 server running its own asyncio loop in a daemon thread.

    ``handler`` is awaited for every request on the server's loop. ``start()`` binds (``port=0`` picks a
    free port, read it from :attr:`port`), ``stop()`` closes the listener and every open connection.
    """

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self.host = host
        self.port = port
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._stop_event: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop thread and bind the socket; raises ``OSError`` if the port can't be bound."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._thread = threading.Thread(target=self._run, name="bot-api-emulator", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            with contextlib.suppress(Exception):
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _bind(self) -> None:
        self._stop_event = asyncio.Event()
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, limit=256 * 1024, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self) -> None:
        try:
            await self._bind()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._wait_and_close()

    async def _wait_and_close(self) -> None:
        assert self._stop_event is not None and self._server is not None
        await self._stop_event.wait()
        self._server.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    async def start_in_running_loop(self) -> None:
        """Serve on the caller's event loop instead of a thread (no GIL hand-offs with a bot on that loop).

        Raises ``OSError`` if the port can't be bound.
        """
        if self._thread is not None or self._loop_task is not None:
            raise RuntimeError("server already started")
        self.loop = asyncio.get_running_loop()
        await self._bind()
        self._loop_task = asyncio.create_task(self._wait_and_close())

    async def stop_in_running_loop(self) -> None:
        """Stop a server started with :meth:`start_in_running_loop`."""
        if self._loop_task is None or self._stop_event is None:
            return
        self._stop_event.set()
        await self._loop_task
        self._loop_task = None

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        if self._thread is None or self.loop is None:
            return
        if self._stop_event is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(timeout=5)
        self._thread = None

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the server loop (thread-safe; ignored once the loop is closed)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                try:
                    request = await self._read_request(reader, writer)
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                except _HttpError as exc:
                    await self._write(writer, Response.json(exc.status, {"ok": False, "error_code": exc.status,
                                                                          "description": exc.message}), False)
                    return
                if request is None:
                    return
                request.wait_closed = functools.partial(_wait_eof, reader)
                try:
                    response = await self._handler(request)
                except Exception as exc:  # noqa: BLE001 - a bug in the emulator must be visible to the client
                    response = Response.json(500, {"ok": False, "error_code": 500,
                                                   "description": f"Internal Server Error: emulator bug: {exc!r}"})
                if response.drop:
                    writer.transport.abort()
                    return
                keep_alive = request.headers.get("connection", "").lower() != "close"
                if not await self._write(writer, response, keep_alive):
                    return
                if not keep_alive:
                    return
        except asyncio.CancelledError:
            raise
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if not exc.partial.strip():
                return None  # clean close between requests
            raise
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise _HttpError(400, "Bad Request: malformed request line")
        method, target, _version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            key, colon, value = line.partition(":")
            if colon:
                headers[key.strip().lower()] = value.strip()
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            pieces: list[bytes] = []
            total = 0
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # trailer end (no trailers expected)
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise _HttpError(413, "Request Entity Too Large")
                pieces.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(pieces)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError as exc:
                raise _HttpError(400, "Bad Request: bad Content-Length") from exc
            if length > MAX_BODY_BYTES:
                raise _HttpError(413, "Request Entity Too Large")
            body = await reader.readexactly(length) if length else b""
        split = urlsplit(target)
        return Request(method=method.upper(), path=split.path, query=parse_qsl(split.query, keep_blank_values=True),
                       headers=headers, body=body)

    async def _write(self, writer: asyncio.StreamWriter, response: Response, keep_alive: bool) -> bool:
        reason = _REASONS.get(response.status, "Unknown")
        head = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            "Server: suara-bot-api-emulator",
            "Connection: keep-alive" if keep_alive else "Connection: close",
        ]
        head.extend(f"{k}: {v}" for k, v in response.extra_headers.items())
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
            await writer.drain()
        except (ConnectionError, RuntimeError):  # the client went away (e.g. a cancelled long poll)
            return False
        return not writer.transport.is_closing()


async def _wait_eof(reader: asyncio.StreamReader) -> None:
    """Complete when the client closes its side while a request is pending (a dropped long poll).

    HTTP/1.1 clients like httpx don't pipeline, so nothing should arrive meanwhile; if bytes do arrive they
    are put back for the next request and the client counts as still connected.
    """
    data = await reader.read(1)
    if data:
        reader._buffer[0:0] = data  # type: ignore[attr-defined]  # noqa: SLF001 - give the byte back
        await asyncio.get_running_loop().create_future()


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
