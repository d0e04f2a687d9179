"""Bad input is a 4xx that says what is wrong, never a 5xx, and loses nothing accepted."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from stanch.server import ServerContext
from stanch.server.auth import Role

from .helpers import Clock, batch, bearer

JSON = {"Content-Type": "application/json"}

HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("malformed", b'{"service": "api", "events": [', 422, "JSON decode error"),
    ("not an object", b"[1, 2, 3]", 422, "valid dictionary"),
    ("NaN", b'{"service": "api", "events": [[NaN, "GET", "/", 200, 0.1, "", ""]]}', 400, "NaN"),
    ("Infinity", b'{"service": "api", "events": [], "x": -Infinity}', 400, "Infinity"),
    ("deep", b'{"service": "api", "events": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "deeper"),
    ("lone surrogate", b'{"service": "\\ud800", "events": []}', 400, "surrogate"),
    ("NUL", b'{"service": "a\\u0000b", "events": []}', 400, "NUL"),
    ("bad utf-8", b'{"service": "\xff\xfe", "events": []}', 400, "UTF-8"),
    ("huge number", b'{"service": "api", "events": [], "v": 1' + b"0" * 5000 + b"}", 400, "pars"),
    ("unknown field", b'{"service": "api", "events": [], "colour": "red"}', 422, "xtra"),
    ("wrong type", b'{"service": 7, "events": []}', 422, "valid string"),
    ("long service", b'{"service": "' + b"s" * 201 + b'", "events": []}', 422, "at most 200"),
]


@pytest.mark.parametrize(
    ("raw", "status", "needle"),
    [case[1:] for case in HOSTILE],
    ids=[case[0] for case in HOSTILE],
)
async def test_hostile_event_bodies_are_4xx_with_a_reason(
    client: httpx.AsyncClient, tokens: dict[Role, str], raw: bytes, status: int, needle: str
) -> None:
    """Each hostile body gets its specific 4xx, and the message names the problem."""
    headers = {**JSON, **bearer(tokens[Role.AGENT])}
    response = await client.post("/api/v1/events", content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert needle in response.text


async def test_oversized_bodies_are_413_by_header_or_by_stream(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """Over 1 MiB is 413, whether Content-Length says so or a chunked body grows past it."""
    headers = {**JSON, **bearer(tokens[Role.AGENT])}
    big = b'{"service": "api", "events": [], "pad": "' + b"x" * (1024 * 1024) + b'"}'
    declared = await client.post("/api/v1/events", content=big, headers=headers)
    assert declared.status_code == 413
    assert "larger than 1048576 bytes" in declared.json()["detail"]

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    streamed = await client.post("/api/v1/events", content=chunks(), headers=headers)
    assert streamed.status_code == 413


async def test_gzip_bombs_and_broken_gzip_are_refused(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    """A small gzip that inflates past the cap is 413; a broken one is 400; br is 415."""
    headers = {**JSON, **bearer(tokens[Role.AGENT]), "Content-Encoding": "gzip"}
    bomb = gzip.compress(b" " * (64 * 1024 * 1024))
    assert len(bomb) < 1024 * 1024
    response = await client.post("/api/v1/events", content=bomb, headers=headers)
    assert response.status_code == 413
    assert "decompressed" in response.json()["detail"]
    broken = await client.post("/api/v1/events", content=b"\x1f\x8bnope", headers=headers)
    assert broken.status_code == 400
    brotli = await client.post(
        "/api/v1/events", content=b"{}", headers={**headers, "Content-Encoding": "br"}
    )
    assert brotli.status_code == 415


async def test_nothing_accepted_is_lost_around_bad_requests(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """Good batches around bad ones are all still queued, counted exactly."""
    headers = {**JSON, **bearer(tokens[Role.AGENT])}
    good = json.dumps(batch(clock.t)).encode()
    for raw in (good, HOSTILE[0][1], good, HOSTILE[4][1], good):
        await client.post("/api/v1/events", content=raw, headers=headers)
    assert len(ctx.queue) == 120
    assert len(ctx.queue.drain()) == 120


BODY_ROUTES = [
    "/api/v1/events",
    "/api/v1/alertmanager",
    "/api/v1/pagerduty/v2/enqueue",
    "/api/v1/pagerduty/v2/change/enqueue",
    "/api/v1/reports",
    "/api/v1/changes",
    "/api/v1/incidents/INC-0001/comments",
    "/api/v1/incidents/INC-0001/resolve",
    "/api/v1/actions/ACT-0001/approve",
    "/api/v1/runbook/validate",
    "/api/v1/config/api/rollback",
    "/api/v1/tokens",
]
PAYLOADS = [
    b"",
    b"null",
    b"{}",
    b'{"a": {"b": {"c": []}}}',
    b'"string"',
    b"[[[[[]]]]]",
    b'{"service": [], "text": {}, "events": "x", "alerts": [null]}',
    b'{"routing_key": 1, "event_action": null, "payload": []}',
    b'{"version": "4", "status": "firing", "alerts": [{"status": "firing", "startsAt": 5}]}',
    b'{"text": "version: 1\\nrules: [", "source": "x"}',
]


@pytest.mark.parametrize("path", BODY_ROUTES)
async def test_every_body_route_answers_junk_with_4xx(
    client: httpx.AsyncClient, tokens: dict[Role, str], path: str
) -> None:
    """Junk of every shape, sent as an admin, never gets a 5xx from any body-taking route."""
    headers = {**JSON, **bearer(tokens[Role.ADMIN])}
    for raw in PAYLOADS:
        response = await client.post(path, content=raw, headers=headers)
        where = (path, raw, response.status_code)
        assert 200 <= response.status_code < 500, where
        if response.status_code >= 400:
            assert "detail" in response.json(), where
