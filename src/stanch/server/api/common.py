"""What the routers share: documented error answers and the request's context."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import StringConstraints

from stanch.server.api.schemas import ErrorOut
from stanch.server.auth import context_of
from stanch.server.context import ServerContext

_DESCRIPTIONS = {
    400: "Refused: the body or a parameter is wrong; the detail says what",
    401: "Missing, invalid or revoked credentials",
    403: "The token's role may not do this",
    404: "No such thing",
    409: "The current state does not allow this",
    413: "Body (or its decompressed form) too large",
    415: "Unsupported Content-Encoding",
    503: "Busy: retry after the Retry-After seconds",
}

BODY_ERRORS = (400, 413, 415)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given error codes, each ``{"detail": str}``."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(max_length=2000)]


async def _context(request: Request) -> ServerContext:
    # async, so FastAPI runs it on the event loop rather than in its threadpool
    return context_of(request)


Ctx = Annotated[ServerContext, Depends(_context)]
