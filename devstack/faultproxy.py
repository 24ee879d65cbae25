"""Proxies that put the faults of production in front of the local stack's real servers.

`TcpFaultProxy` forwards bytes to any server (MongoDB's wire protocol) and can cut every
open connection at once, as a failover or a reset does. `S3FaultProxy` forwards HTTP to the
S3 server, headers untouched so signatures still verify, and can answer the next requests
with an S3 error (`503 SlowDown`), drop them before they reach S3, or let S3 do the work and
drop the answer (the lost-response case a retry must settle). Each runs its own event loop
in a daemon thread so a synchronous test can drive it; `close()` stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeVar

import aiohttp
from aiohttp import web

__all__ = ["S3FaultProxy", "TcpFaultProxy"]

T = TypeVar("T")
HOST = "127.0.0.1"
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "expect", "trailer"}
)

S3Fault = Literal["error", "drop", "lose_answer", "truncate"]


class _LoopThread:
    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class TcpFaultProxy:
    """A TCP forwarder on a free loopback port; `cut()` resets what is connected now."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._loop = _LoopThread("tcp-fault-proxy")
        self._writers: set[asyncio.StreamWriter] = set()
        self._closed = False
        self.cuts = 0
        self._server = self._loop.run(asyncio.start_server(self._accept, HOST, 0))
        self.port: int = self._server.sockets[0].getsockname()[1]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cut(self) -> int:
        """Close every open connection (both sides); how many there were."""
        return self._loop.run(self._cut())

    async def _cut(self) -> int:
        writers = list(self._writers)
        for writer in writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()
        self.cuts += 1
        return len(writers) // 2

    def close(self) -> None:
        """Stop listening and cut what is open; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._loop.run(self._close())
        self._loop.stop()

    async def _close(self) -> None:
        self._server.close()
        await self._cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


@dataclass
class _Plan:
    fault: S3Fault
    remaining: int
    matches: str  # a substring of "<METHOD> <path>?<query>"; "" matches every request
    status: int = 503
    code: str = "SlowDown"
    injected: list[str] = field(default_factory=list)


class S3FaultProxy:
    """An HTTP forwarder to an S3 endpoint with faults planned by `inject`."""

    def __init__(self, upstream_url: str) -> None:
        self._upstream = upstream_url.rstrip("/")
        self._loop = _LoopThread("s3-fault-proxy")
        self._plans: list[_Plan] = []
        self._lock = threading.Lock()
        self._closed = False
        self.forwarded = 0
        self.injected: list[str] = []
        self._runner, self.port = self._loop.run(self._start())
        self.url = f"http://{HOST}:{self.port}"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def inject(
        self,
        fault: S3Fault,
        *,
        times: int = 1,
        matches: str = "",
        status: int = 503,
        code: str = "SlowDown",
    ) -> None:
        """Fault the next `times` requests whose "<METHOD> <path>?<query>" contains `matches`.

        `error` answers `status` with the S3 error `code` without asking S3; `drop` closes
        the connection without asking S3; `lose_answer` lets S3 do it, then closes the
        connection without the answer; `truncate` sends the answer's headers and half its
        body, then closes the connection (a download cut off).
        """
        with self._lock:
            self._plans.append(_Plan(fault, times, matches, status, code))

    def pending(self) -> int:
        """Faults planned and not yet injected."""
        with self._lock:
            return sum(plan.remaining for plan in self._plans)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.run(self._stop())
        self._loop.stop()

    async def _start(self) -> tuple[web.AppRunner, int]:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        server: Any = site._server  # aiohttp exposes the bound port only through the server
        return runner, int(server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    def _take(self, request_line: str) -> _Plan | None:
        with self._lock:
            for plan in self._plans:
                if plan.remaining > 0 and plan.matches in request_line:
                    plan.remaining -= 1
                    self.injected.append(f"{plan.fault} {request_line}")
                    return plan
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_line = f"{request.method} {request.path_qs}"
        plan = self._take(request_line)
        body = await request.read()
        if plan is not None and plan.fault == "error":
            xml = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{plan.code}</Code><Message>injected by the test proxy</Message>"
                f"<Resource>{request.path}</Resource><RequestId>fault</RequestId></Error>"
            )
            return web.Response(status=plan.status, text=xml, content_type="application/xml")
        if plan is not None and plan.fault == "drop":
            return self._hang_up(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self._upstream + request.path_qs,
            headers=headers,
            data=io.BytesIO(body),  # bytes this large would be copied on the loop
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept-Encoding", "Accept"),
        ) as upstream:
            payload = await upstream.read()
            self.forwarded += 1
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if plan is not None and plan.fault == "truncate":
                response = web.StreamResponse(status=upstream.status, headers=out)
                await response.prepare(request)
                await response.write(payload[: len(payload) // 2])
                return self._hang_up(request)
            if plan is not None:  # lose_answer
                return self._hang_up(request)
            out.pop("Content-Length", None)
            return web.Response(status=upstream.status, body=payload, headers=out)

    @staticmethod
    def _hang_up(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("fault injected: connection closed without an answer")
