"""Agent mode: the middleware of one service instance, talking to a ``stanch serve`` control plane.

Two background threads keep the network off the request path entirely:

- the **shipper** drains the :class:`EventBuffer` every ``flush_interval_s`` and POSTs gzip'd
  batches to ``/api/v1/events``; a failed batch is retried with exponential backoff and jitter,
  and kept in a bounded backlog meanwhile; when the backlog is full the oldest batch is dropped
  and counted (the request path itself never waits and never grows memory without bound);
- the **policy poller** long-polls ``/api/v1/policy/{service}`` with ``If-None-Match`` so a new
  action reaches every instance within one poll; when the server is unreachable the instance
  keeps enforcing the last policy it had (fail-static) and serves traffic normally.

Threads rather than asyncio tasks: the agent must work the same under any ASGI server, with or
without a running event loop, and must never compete with request handlers for the loop.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from stanch.buffer import EventBuffer, PolicyHolder, RawEvent
from stanch.core.policy import Policy
from stanch.middleware import StanchMiddleware

log = logging.getLogger("stanch.agent")


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
    poll_wait_s: float = 2.0  # long-poll wait: a policy change arrives within this
    timeout_s: float = 10.0
    max_backoff_s: float = 30.0


@dataclass(slots=True)
class AgentStats:
    """What the agent did; ``dropped`` counts events lost to a full buffer or backlog."""

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


class StanchAgent:
    """Ships one service instance's events and keeps its policy current."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.buffer = EventBuffer(
            config.service, version=config.version, capacity=config.buffer_capacity
        )
        self.policy = PolicyHolder(config.service)
        self.stats = AgentStats()
        self._backlog: deque[bytes] = deque()
        self._etag = ""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client = httpx.Client(
            base_url=config.server_url.rstrip("/"),
            headers={"authorization": f"Bearer {config.token}"},
            timeout=config.timeout_s,
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
        for target, name in ((self._ship_loop, "ship"), (self._poll_loop, "policy")):
            thread = threading.Thread(target=target, name=f"stanch-agent-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads, shipping what is waiting (best effort within ``timeout``)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.flush()
        self._client.close()

    # -------------------------------------------------------------- shipping

    def flush(self) -> bool:
        """Ship everything waiting now; True when nothing is left behind."""
        while True:
            raw = self.buffer.drain_raw(self.config.batch_size)
            if not raw:
                break
            self._enqueue(raw)
        while self._backlog:
            if not self._post(self._backlog[0]):
                return False  # keep it for the next try
            self._backlog.popleft()
        return True

    def _enqueue(self, raw: list[RawEvent]) -> None:
        body = json.dumps(
            {"service": self.config.service, "version": self.config.version, "events": raw},
            separators=(",", ":"),
        ).encode()
        self._backlog.append(gzip.compress(body, compresslevel=1))
        while len(self._backlog) > self.config.backlog_batches:
            lost = self._backlog.popleft()
            self.stats.dropped += _count_events(lost)
            self._error(f"backlog full: dropped a batch of {_count_events(lost)} events")

    def _post(self, body: bytes) -> bool:
        """True when the batch is done with (accepted, or refused for good); False to retry."""
        try:
            response = self._client.post(
                "/api/v1/events",
                content=body,
                headers={"content-type": "application/json", "content-encoding": "gzip"},
            )
        except httpx.HTTPError as exc:
            self.stats.failed_posts += 1
            self._error(f"events: {type(exc).__name__}: {exc}")
            return False
        if response.status_code >= 400:
            self.stats.failed_posts += 1
            self._error(f"events: HTTP {response.status_code}: {response.text[:200]}")
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                # The server will never accept this batch: retrying would block the rest.
                self.stats.dropped += _count_events(body)
                return True
            return False
        self.stats.batches += 1
        self.stats.shipped += int(response.json().get("accepted", 0))
        return True

    def _ship_loop(self) -> None:
        failures = 0
        while not self._stop.wait(
            self._backoff(failures) if failures else self.config.flush_interval_s
        ):
            failures = 0 if self.flush() else failures + 1

    # -------------------------------------------------------------- policy

    def poll_policy(self, wait_s: float = 0.0) -> bool:
        """Fetch the policy once (long-polling up to ``wait_s``); True when it changed."""
        headers = {"if-none-match": self._etag} if self._etag else {}
        params = {"wait": f"{wait_s:g}"} if wait_s > 0 else {}
        try:
            response = self._client.get(
                f"/api/v1/policy/{self.config.service}",
                headers=headers,
                params=params,
                timeout=self.config.timeout_s + wait_s,
            )
        except httpx.HTTPError as exc:
            self._error(f"policy: {type(exc).__name__}: {exc}")
            raise
        if response.status_code == 304:
            return False
        response.raise_for_status()
        policy = Policy.from_dict(response.json())
        self._etag = response.headers.get("etag", "")
        self.policy.publish(policy, self.clock())
        self.stats.policy_version = policy.version
        self.stats.policy_updates += 1
        self.stats.last_policy_at = self.clock()
        return True

    def _poll_loop(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.poll_policy(self.config.poll_wait_s)
                failures = 0
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                # Fail static: the last policy stays in force while the server is away.
                failures += 1
                self._error(f"policy: {type(exc).__name__}: {exc}")
                self._stop.wait(self._backoff(failures))

    # -------------------------------------------------------------- helpers

    def _backoff(self, failures: int) -> float:
        base = min(self.config.max_backoff_s, 0.5 * 2.0 ** min(failures, 16))
        return base * (0.5 + random.random() / 2)  # jitter: instances do not retry in step

    def _error(self, message: str) -> None:
        self.stats.last_error = message
        self.stats.last_error_at = self.clock()
        self.stats.errors.append(message)
        log.warning("stanch agent: %s", message)

    @property
    def dropped(self) -> int:
        """Events lost on this instance: full request buffer plus dropped batches."""
        return self.buffer.dropped + self.stats.dropped


def _count_events(body: bytes) -> int:
    try:
        return len(json.loads(gzip.decompress(body))["events"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0
