"""Agent mode: the middleware of one service instance, talking to a ``stanch serve`` control plane.

Two background threads keep the network off the request path entirely:

- the **shipper** drains the :class:`EventBuffer` every ``flush_interval_s`` and POSTs gzip'd
  batches to ``/api/v1/events``; a failed batch is retried with exponential backoff and jitter
  (at least the server's ``Retry-After``), and kept in a bounded backlog meanwhile; when the
  backlog is full the oldest batch is dropped and counted. A batch the server refuses for good
  (a 4xx other than 408/429: a wrong token, a malformed event) is dropped and counted, so it
  cannot wedge the queue. Events older than ``max_event_age_s`` are dropped and counted before
  sending, since the server refuses a whole batch that holds one (its window is 300 s);
- the **policy poller** long-polls ``/api/v1/policy/{service}`` with ``If-None-Match`` so a new
  action reaches every instance within one poll; when the server is unreachable the instance
  keeps enforcing the last policy it had (fail-static) and serves traffic normally.

The request path only appends to the bounded buffer: it never waits, and a full buffer drops
and counts. ``agent.dropped`` is every event this instance lost; ``agent.stats`` says more.
Every request to the server carries the instance id and that count (``Stanch-Agent``,
``Stanch-Agent-Dropped``), so the server knows which data it never received
(``GET /api/v1/agents``).

Threads rather than asyncio tasks: the agent must work the same under any ASGI server, with or
without a running event loop, and must never compete with request handlers for the loop. Each
thread has its own HTTP client, so a long-poll never holds a connection the shipper needs.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httpx

from stanch.buffer import EventBuffer, PolicyHolder, RawEvent
from stanch.core.policy import Policy
from stanch.middleware import StanchMiddleware

log = logging.getLogger("stanch.agent")

_RETRYABLE_4XX = frozenset({408, 425, 429})
# Sent on every request: which instance this is, and how many events it has lost so far.
AGENT_HEADER = "stanch-agent"
DROPPED_HEADER = "stanch-agent-dropped"


@dataclass(frozen=True, slots=True)
class AgentConfig:
    server_url: str
    token: str
    service: str
    version: str = ""
    batch_size: int = 5_000
    flush_interval_s: float = 0.5
    buffer_capacity: int = 200_000
    backlog_batches: int = 100  # failed batches kept for retry before the oldest is dropped
    poll_wait_s: float = 2.0  # long-poll wait; also the poll interval of a server answering at once
    timeout_s: float = 10.0
    min_backoff_s: float = 0.5  # first retry delay; doubles per failure up to max_backoff_s
    max_backoff_s: float = 30.0
    max_event_age_s: float = 240.0  # the server refuses events 300 s old: leave room for skew
    instance: str = ""  # id in the server's agent list, one per process lifetime; "" makes one


@dataclass(slots=True)
class AgentStats:
    """What the agent did. ``dropped`` counts events lost after leaving the request buffer
    (backlog full, refused for good, too old); ``StanchAgent.dropped`` adds the buffer's own."""

    shipped: int = 0
    batches: int = 0
    failed_posts: int = 0
    dropped: int = 0
    policy_version: int = 0
    policy_updates: int = 0
    last_policy_at: float | None = None
    last_error: str = ""
    last_error_at: float | None = None
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=50))


@dataclass(slots=True)
class _Batch:
    """One gzip'd body waiting to be sent, with what the shipper needs without inflating it."""

    body: bytes
    count: int
    oldest: float
    newest: float


class StanchAgent:
    """Ships one service instance's events and keeps its policy current.

    ``agent.start()`` starts both threads; ``agent.stop()`` stops them and ships what is left
    (one bounded try). ``with StanchAgent(config) as agent:`` does both.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.instance = config.instance or instance_id()
        self.buffer = EventBuffer(
            config.service, version=config.version, capacity=config.buffer_capacity
        )
        self.policy = PolicyHolder(config.service)
        self.stats = AgentStats()
        self._backlog: deque[_Batch] = deque()
        self._retry_after = 0.0  # the server's last Retry-After, honoured by the next wait
        self._etag = ""
        self._stop = threading.Event()
        self._ship_lock = threading.Lock()  # flush() from a caller and the shipper, one at a time
        self._threads: list[threading.Thread] = []
        self._ship_client = self._new_client(transport)
        self._policy_client = self._new_client(transport)

    def _new_client(self, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(
            base_url=self.config.server_url.rstrip("/"),
            headers={"authorization": f"Bearer {self.config.token}", AGENT_HEADER: self.instance},
            timeout=self.config.timeout_s,
            transport=transport,
        )

    def middleware(self, app: object, **kwargs: object) -> StanchMiddleware:
        """Wrap an ASGI app so its requests are enforced and recorded through this agent."""
        return StanchMiddleware(
            app,  # type: ignore[arg-type]
            buffer=self.buffer,
            policy=self.policy,
            clock=self.clock,
            **kwargs,  # type: ignore[arg-type]
        )

    # -------------------------------------------------------------- lifecycle

    def start(self) -> StanchAgent:
        if self._threads or self._stop.is_set():
            raise RuntimeError("an agent starts once")
        for target, name in ((self._ship_loop, "ship"), (self._poll_loop, "policy")):
            thread = threading.Thread(target=target, name=f"stanch-agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads and ship what is waiting: one try, all within ``timeout``."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        if self._ship_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            try:
                self._flush(timeout=max(0.1, deadline - time.monotonic()))
            finally:
                self._ship_lock.release()
        # A thread still inside a request gets an error from the closed client and exits.
        self._ship_client.close()
        self._policy_client.close()

    def __enter__(self) -> StanchAgent:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def dropped(self) -> int:
        """Events lost on this instance: full request buffer plus dropped batches."""
        return self.buffer.dropped + self.stats.dropped

    @property
    def backlog(self) -> int:
        """Events drained from the buffer and not yet accepted by the server."""
        return sum(batch.count for batch in list(self._backlog))

    # -------------------------------------------------------------- shipping

    def flush(self) -> bool:
        """Ship everything waiting now; True when nothing is left behind."""
        with self._ship_lock:
            return self._flush(timeout=None)

    def _flush(self, timeout: float | None) -> bool:
        while True:
            raw = self.buffer.drain_raw(self.config.batch_size)
            if not raw:
                break
            self._enqueue(raw)
        backlog = self._backlog
        while backlog:
            batch = self._fresh(backlog[0])
            if batch is not None and not self._post(batch, timeout):
                if batch is not backlog[0]:
                    backlog[0] = batch  # keep it without the events that aged out
                return False
            backlog.popleft()
        return True

    def _enqueue(self, raw: list[RawEvent]) -> None:
        self._backlog.append(self._encode(raw))
        while len(self._backlog) > self.config.backlog_batches:
            lost = self._backlog.popleft()
            self.stats.dropped += lost.count
            self._error(f"backlog full: dropped a batch of {lost.count} events")

    def _encode(self, raw: list[RawEvent]) -> _Batch:
        body = json.dumps(
            {"service": self.config.service, "version": self.config.version, "events": raw},
            separators=(",", ":"),
        ).encode()
        stamps = [event[0] for event in raw]
        return _Batch(gzip.compress(body, compresslevel=1), len(raw), min(stamps), max(stamps))

    def _fresh(self, batch: _Batch) -> _Batch | None:
        """The batch without events the server would refuse as too old (None: all were)."""
        cutoff = self.clock() - self.config.max_event_age_s
        if batch.oldest >= cutoff:
            return batch
        if batch.newest < cutoff:
            kept: list[RawEvent] = []
        else:  # rare: only after an outage of minutes, so inflating here is fine
            events = json.loads(gzip.decompress(batch.body))["events"]
            kept = [cast(RawEvent, tuple(event)) for event in events if event[0] >= cutoff]
        aged = batch.count - len(kept)
        self.stats.dropped += aged
        self._error(f"dropped {aged} events older than {self.config.max_event_age_s:g}s")
        return self._encode(kept) if kept else None

    def _post(self, batch: _Batch, timeout: float | None) -> bool:
        """True when the batch is done with (accepted, or refused for good); False to retry."""
        try:
            response = self._ship_client.post(
                "/api/v1/events",
                content=batch.body,
                headers={
                    "content-type": "application/json",
                    "content-encoding": "gzip",
                    DROPPED_HEADER: str(self.dropped),
                },
                timeout=timeout if timeout is not None else self.config.timeout_s,
            )
        except httpx.HTTPError as exc:
            self.stats.failed_posts += 1
            self._error(f"events: {type(exc).__name__}: {exc}")
            return False
        status = response.status_code
        if status >= 400:
            self.stats.failed_posts += 1
            self._error(f"events: HTTP {status}: {response.text[:200]}")
            if status < 500 and status not in _RETRYABLE_4XX:
                # The server will never accept this batch: retrying would block the rest.
                self.stats.dropped += batch.count
                self._error(f"events: dropped a batch of {batch.count} refused with {status}")
                return True
            self._retry_after = _seconds(response.headers.get("retry-after"))
            return False
        self.stats.batches += 1
        self.stats.shipped += batch.count
        return True

    def _ship_loop(self) -> None:
        failures = 0
        delay = self.config.flush_interval_s
        while not self._stop.wait(delay):
            try:
                done = self.flush()
            except Exception as exc:  # the shipper must outlive any surprise; it retries
                done = False
                self._error(f"shipper: {type(exc).__name__}: {exc}")
            if done:
                failures = 0
                delay = self.config.flush_interval_s
            else:
                failures += 1
                retry_after = min(self._retry_after, self.config.max_backoff_s)
                self._retry_after = 0.0
                delay = max(self._backoff(failures), retry_after)

    # -------------------------------------------------------------- policy

    def poll_policy(self, wait_s: float = 0.0) -> bool:
        """Fetch the policy once (long-polling up to ``wait_s``); True when it changed.

        Raises on a network error, an error status, or a body that is not a policy: the
        caller keeps the policy it had.
        """
        headers = {DROPPED_HEADER: str(self.dropped)}
        if self._etag:
            headers["if-none-match"] = self._etag
        params = {"wait": f"{wait_s:g}"} if wait_s > 0 else {}
        response = self._policy_client.get(
            f"/api/v1/policy/{self.config.service}",
            headers=headers,
            params=params,
            timeout=self.config.timeout_s + wait_s,
        )
        if response.status_code == 304:
            return False
        response.raise_for_status()
        policy = Policy.from_dict(response.json())
        now = self.clock()
        self.policy.publish(policy, now)
        self._etag = response.headers.get("etag", "")
        self.stats.policy_version = policy.version
        self.stats.policy_updates += 1
        self.stats.last_policy_at = now
        return True

    def _poll_loop(self) -> None:
        failures = 0
        wait_s = self.config.poll_wait_s
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                changed = self.poll_policy(wait_s)
            except Exception as exc:
                # Fail static: the last policy stays in force while the server is away.
                failures += 1
                self._error(f"policy: {type(exc).__name__}: {exc}")
                self._stop.wait(self._backoff(failures))
                continue
            failures = 0
            if not changed or not self._etag:
                # A server that answers at once (no long-poll, or no ETag to compare) is asked
                # once per poll_wait_s, not in a hot loop.
                self._stop.wait(max(0.0, wait_s - (time.monotonic() - started)))

    # -------------------------------------------------------------- helpers

    def _backoff(self, failures: int) -> float:
        base = self.config.min_backoff_s * 2.0 ** min(max(failures - 1, 0), 16)
        base = min(self.config.max_backoff_s, base)
        return base * (0.5 + random.random() / 2)  # jitter: instances do not retry in step

    def _error(self, message: str) -> None:
        self.stats.last_error = message
        self.stats.last_error_at = self.clock()
        self.stats.errors.append(message)
        log.warning("stanch agent: %s", message)


def instance_id() -> str:
    """``<host>-<pid>-<random>``: names the instance for an operator, unique across restarts."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def _seconds(header: str | None) -> float:
    """A ``Retry-After`` given in seconds (an HTTP date is ignored: backoff applies)."""
    try:
        return max(0.0, float(header)) if header else 0.0
    except ValueError:
        return 0.0
