"""Send generated requests straight into an ASGI app, and drive a simulated clock while doing so.

A demo run sends tens of thousands of requests, so :func:`send` skips every layer a real client
would add (httpx, sockets, a server) and speaks ASGI directly: it builds the scope a server
such as uvicorn would, feeds the body through ``receive``, and collects the response from
``send``. Like a server, it turns an exception the app raises into a 500 rather than stopping
the run (unless ``raise_app_exceptions``).

:func:`run` sets the :class:`~stanch.clock.SimClock` to each request's time before sending it,
and calls ``on_tick`` at every tick boundary simulated time crosses, so the caller can step the
engine exactly as a live loop would on its timer.
"""

from __future__ import annotations

import inspect
import math
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Scope

from stanch.clock import SimClock
from stanch.demo.traffic import RequestSpec

HOST = "shop.local"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def client_address(client: str) -> tuple[str, int]:
    """A stable ``("10.0.x.y", port)`` for a client id: its number if it has one, else a hash."""
    digits = client.rpartition("-")[2]
    n = int(digits) if digits.isdigit() else zlib.crc32(client.encode())
    n %= 65_536
    return f"10.0.{n >> 8}.{n & 255}", 49_152 + n % 16_384


def _scope(spec: RequestSpec, client_header: str) -> Scope:
    path, _, query = spec.path.partition("?")
    headers = [
        (b"host", HOST.encode()),
        (b"user-agent", b"stanch-demo/1"),
        (b"accept", b"application/json"),
        (client_header.lower().encode(), spec.client.encode()),
    ]
    if spec.body or spec.method in _BODY_METHODS:
        headers.append((b"content-type", spec.content_type.encode()))
        headers.append((b"content-length", str(len(spec.body)).encode()))
    return {
        "type": "http",
        # spec_version 2.4: the server does not promise to report a disconnect mid-response, so
        # Starlette does not listen on ``receive`` while streaming.
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": spec.method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": client_address(spec.client),
        "server": (HOST, 80),
        "state": {},
    }


async def send(
    app: ASGIApp,
    spec: RequestSpec,
    *,
    client_header: str = "x-client-id",
    raise_app_exceptions: bool = False,
) -> tuple[int, bytes]:
    """Send one request to ``app`` in-process; returns the status and the whole body."""
    body_sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal body_sent
        if body_sent:
            return {"type": "http.disconnect"}
        body_sent = True
        return {"type": "http.request", "body": spec.body, "more_body": False}

    async def reply(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(_scope(spec, client_header), receive, reply)
    except Exception:
        if raise_app_exceptions:
            raise
        # What a server does: answer 500 unless the response had already started.
        return status or 500, b"".join(chunks)
    return status or 500, b"".join(chunks)


@dataclass(slots=True)
class DriveStats:
    """What a :func:`run` sent and how the app answered."""

    requests: int = 0
    ticks: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    first_t: float | None = None
    last_t: float | None = None

    @property
    def by_class(self) -> dict[str, int]:
        """Counts per status class: ``{"2xx": ..., "3xx": ..., "4xx": ..., "5xx": ...}``."""
        classes = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0}
        for status, count in self.by_status.items():
            key = f"{status // 100}xx"
            classes[key] = classes.get(key, 0) + count
        return classes

    @property
    def error_ratio(self) -> float:
        """Share of requests answered 5xx."""
        return self.by_class["5xx"] / self.requests if self.requests else 0.0


async def run(
    app: ASGIApp,
    specs: Iterable[RequestSpec],
    clock: SimClock,
    on_tick: Callable[[float], Awaitable[None] | None] | None = None,
    tick: float = 1.0,
    *,
    until: float | None = None,
    client_header: str = "x-client-id",
) -> DriveStats:
    """Send ``specs`` in order at their simulated times, calling ``on_tick`` at each boundary.

    Tick boundaries are the multiples of ``tick``. ``on_tick(b)`` runs, with the clock set to
    ``b``, before the first request at or after ``b``; the first request sets the reference,
    so no tick precedes it. With ``until``, the ticks after the last request up to ``until`` run
    too, so the last seconds of traffic are stepped as well.
    """
    if not tick > 0.0:
        raise ValueError(f"tick must be > 0, got {tick!r}")
    stats = DriveStats()
    # Boundaries as integer multiples of ``tick``: adding ``tick`` up would drift at epoch scale.
    next_k: int | None = None

    async def tick_to(t: float) -> None:
        nonlocal next_k
        if next_k is None:
            next_k = math.floor(t / tick) + 1
            return
        while next_k * tick <= t:
            boundary = next_k * tick
            clock.set(boundary)
            if on_tick is not None:
                result = on_tick(boundary)
                if inspect.isawaitable(result):
                    await result
            stats.ticks += 1
            next_k += 1

    for spec in specs:
        await tick_to(spec.t)
        clock.set(spec.t)
        status, _ = await send(app, spec, client_header=client_header)
        stats.requests += 1
        stats.by_status[status] = stats.by_status.get(status, 0) + 1
        if stats.first_t is None:
            stats.first_t = spec.t
        stats.last_t = spec.t
    if until is not None:
        await tick_to(until)
    return stats
