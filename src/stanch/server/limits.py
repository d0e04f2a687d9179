"""Pure-ASGI guard in front of the API: body size, gzip, hostile JSON.

Before any handler (or FastAPI's own parsing) sees a request body, :class:`BodyGuard`

1. refuses a body over the route's limit with 413 (from ``Content-Length`` at once, or while
   reading a chunked body) — 1 MiB by default, 512 KB on the PagerDuty endpoints;
2. inflates ``Content-Encoding: gzip`` with a cap on the *output*, so a small gzip bomb is a
   413 and not a gigabyte in memory; other encodings are 415;
3. runs :func:`stanch.server.jsonguard.problem` on JSON bodies (400: NaN, lone surrogates,
   NUL characters, nesting deeper than allowed);

and hands the checked, decoded body on. Errors are JSON: ``{"detail": "..."}``, rendered by
the ``render`` callable so each API can keep its own error shape.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stanch.server import jsonguard

Render = Callable[[str, int, str], dict[str, Any]]
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def default_render(path: str, status: int, detail: str) -> dict[str, Any]:
    return {"detail": detail}


class TooLarge(Exception):
    pass


class BodyGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_decoded_bytes: int,
        max_depth: int = jsonguard.DEFAULT_MAX_DEPTH,
        limits: Sequence[tuple[str, int]] = (),
        render: Render = default_render,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_decoded_bytes = max_decoded_bytes
        self.max_depth = max_depth
        self.limits = tuple(limits)  # (path prefix, byte limit), first match wins
        self.render = render

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.limit_for(path)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._fail(send, path, 413, f"request body is larger than {limit} bytes")
            return
        try:
            body = await _read(receive, limit)
        except TooLarge:
            await self._fail(send, path, 413, f"request body is larger than {limit} bytes")
            return
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            try:
                body = _gunzip(body, self.max_decoded_bytes)
            except TooLarge:
                message = f"decompressed body is larger than {self.max_decoded_bytes} bytes"
                await self._fail(send, path, 413, message)
                return
            except (zlib.error, EOFError):
                await self._fail(send, path, 400, "body is not valid gzip")
                return
        elif encoding not in ("identity", ""):
            await self._fail(send, path, 415, f"unsupported Content-Encoding {encoding!r}")
            return
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if body and (not content_type or content_type.endswith("json")):
            why = jsonguard.problem(body, self.max_depth)
            if why:
                await self._fail(send, path, 400, why)
                return
        kept = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"content-length", b"content-encoding")
        ]
        kept.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": kept}, _replay(body, receive), send)

    async def _fail(self, send: Send, path: str, status: int, detail: str) -> None:
        payload = json.dumps(self.render(path, status, detail)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _gunzip(body: bytes, max_out: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, max_out + 1)
    if len(out) > max_out or inflater.unconsumed_tail:
        raise TooLarge
    if not inflater.eof:
        raise EOFError("truncated gzip stream")
    return out


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
