"""HTTP to the Bot API over aiohttp: a `telegram.request.BaseRequest` that python-telegram-bot uses
for every Bot API call (sending, editing, getUpdates long polls, file downloads).

Why not PTB's default `HTTPXRequest`
------------------------------------
PTB lets the transport be replaced (``ApplicationBuilder().request(...)``, documented in PTB's
"Architecture" and `BaseRequest`). Profiling the bot under load (``benchmarks/bot_bench.py``) showed
httpx + httpcore + anyio spending ~2–3.5 ms of CPU per Bot API call: the connection pool re-checks every
pooled socket with ``getpeername`` + ``poll`` on each request, and each call passes through several
layers of context managers. aiohttp (a well-kept, widely used asyncio HTTP client with C speedups for
HTTP parsing) does the same job for a fraction of that; the benchmark prints both (``--transport``).

Semantics kept from `HTTPXRequest` (so the rest of PTB behaves the same):

- plain parameters are posted form-encoded (``application/x-www-form-urlencoded``), uploads as
  ``multipart/form-data`` with the file parts PTB prepared (bytes or file objects);
- timeouts in seconds: ``connect_timeout`` to open a socket, ``read_timeout`` between bytes of the
  answer (PTB adds the long-poll timeout itself for getUpdates), ``pool_timeout`` to wait for a free
  connection, ``write_timeout`` (``media_write_timeout`` for uploads) bounds the whole exchange of a
  request with files, because aiohttp has no separate write timeout;
- a timeout raises `telegram.error.TimedOut`; any other transport failure raises
  `telegram.error.NetworkError` naming the aiohttp exception class. Both make PTB retry/log as usual;
- an HTTP(S) proxy: the ``proxy`` argument, else ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
  ``NO_PROXY`` from the environment as httpx reads them (looked up once per scheme and host, not per
  request: aiohttp's own ``trust_env`` would re-read them, and ``.netrc``, on every call).
"""

from __future__ import annotations

import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """PTB transport on one `aiohttp.ClientSession` with at most ``connection_pool_size`` connections.

    All timeouts are seconds (``None`` = wait forever). The session is created by `initialize` (it needs
    the running event loop) and closed by `shutdown`; `do_request` before `initialize` raises
    `RuntimeError`, as `HTTPXRequest` does.
    """

    __slots__ = ("_connect_timeout", "_media_write_timeout", "_pool_size", "_pool_timeout", "_proxies", "_proxy",
                 "_read_timeout", "_session", "_write_timeout")

    def __init__(
        self,
        connection_pool_size: int = 8,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
        proxy: str | None = None,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxy = proxy
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        """Default seconds to wait for the Bot API's answer (PTB adds the long-poll timeout to it)."""
        return self._read_timeout

    async def initialize(self) -> None:
        """Open the session (idempotent)."""
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=self._pool_size,
                                             ttl_dns_cache=300, enable_cleanup_closed=False)
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": self.USER_AGENT},
                                                  auto_decompress=True, trust_env=False)

    async def shutdown(self) -> None:
        """Close the session and its connections (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def proxy_for(self, url: str) -> str | None:
        """The proxy URL for requests to ``url``: the ``proxy`` argument, else the environment's
        (``<SCHEME>_PROXY`` then ``ALL_PROXY``, unless ``NO_PROXY`` names the host), else None."""
        if self._proxy is not None:
            return self._proxy
        parts = urlsplit(url)
        key = (parts.scheme, parts.hostname or "")
        if key not in self._proxies:
            found: str | None = None
            if not (key[1] and urllib.request.proxy_bypass(key[1])):
                env = urllib.request.getproxies()
                found = env.get(key[0]) or env.get("all")
            self._proxies[key] = found
        return self._proxies[key]

    @staticmethod
    def _pick(value: ODVInput[float], default: float | None) -> float | None:
        return default if isinstance(value, DefaultValue) else value

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One HTTP exchange; returns ``(status code, body bytes)``. See `BaseRequest.do_request`.

        Raises `TimedOut` on any timeout, `NetworkError` on other transport errors, `RuntimeError`
        when not initialised."""
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read_s = self._pick(read_timeout, self._read_timeout)
        connect_s = self._pick(connect_timeout, self._connect_timeout)
        pool_s = self._pick(pool_timeout, self._pool_timeout)
        files = request_data.multipart_data if request_data is not None and request_data.contains_files else None
        write_s = self._pick(write_timeout, self._media_write_timeout if files else self._write_timeout)
        # aiohttp's ``connect`` covers waiting for a pooled connection *and* opening one.
        acquire_s = None if connect_s is None or pool_s is None else connect_s + pool_s
        total_s = None
        if files and write_s is not None and read_s is not None:
            total_s = acquire_s + write_s + read_s if acquire_s is not None else None
        timeout = aiohttp.ClientTimeout(total=total_s, connect=acquire_s, sock_connect=connect_s, sock_read=read_s)
        data: Any = None
        if request_data is not None:
            params = request_data.json_parameters
            if files:
                form = aiohttp.FormData(quote_fields=False)
                for name, value in params.items():
                    form.add_field(name, value)
                for name, (filename, content, mimetype) in files.items():
                    form.add_field(name, content, filename=filename or name, content_type=mimetype)
                data = form
            elif params:
                data = params
        try:
            async with session.request(method, url, data=data, timeout=timeout, proxy=self.proxy_for(url)) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ServerTimeoutError) as err:
            raise TimedOut(f"Timed out talking to the Bot API ({err.__class__.__name__})") from err
        except aiohttp.ClientError as err:
            raise NetworkError(f"aiohttp.{err.__class__.__name__}: {err}") from err
