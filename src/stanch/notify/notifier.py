"""The :class:`Notifier`: per-target queues and worker threads that deliver messages, with
retries, and count what happened.

It never blocks the engine. ``on_event`` copies what the message needs from the incident (it
runs on the engine's thread, so the copy is consistent) and puts it on the target's bounded
queue; a full queue drops the message and counts it. Each target has its own worker *thread*
with its own ``httpx.Client``. A thread rather than an asyncio task, because the engine runs both
in plain sync code (demo, CLI) with no loop at all and inside the server's loop, and may step
from an executor thread: a ``queue.Queue`` is safe from any of them, and retry back-off sleeps
and slow receivers never hold the event loop. One worker per target keeps each target's
messages in order ("resolved" never overtakes "opened") while a dead target retrying with
back-off cannot delay the healthy ones.

Delivery retries transport errors, 5xx, 408 and 429 with exponential back-off and jitter
(``Retry-After`` on 429/503 is honoured, up to ``max_delay_s``); other 4xx fail at once.
Failures are visible: :meth:`Notifier.status` counts per target, :attr:`Notifier.recent_failures`
keeps the last ones, and each is logged. URLs and secrets are never logged or reported (a
Slack webhook URL *is* a credential).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from stanch.core.errors import ValidationError
from stanch.core.incidents import Incident
from stanch.notify.messages import Notification, render_json, render_slack, summary_line
from stanch.notify.targets import WebhookTarget
from stanch.notify.wire import (
    RETRY_AFTER_STATUSES,
    RETRY_STATUSES,
    SIGNATURE_HEADER,
    parse_retry_after,
    sign,
)

if TYPE_CHECKING:
    from stanch.engine import Engine

log = logging.getLogger("stanch.notify")

MAX_EXPLANATIONS = 3  # firing alerts quoted in a message
_ERROR_SNIPPET = 200  # characters of a receiver's error body kept in last_error


@dataclass(frozen=True, slots=True)
class TargetStatus:
    """Counters of one target. ``retried`` counts extra attempts; ``dropped`` messages that were
    never sent (queue full, or still queued at close)."""

    name: str
    kind: str
    sent: int
    failed: int
    retried: int
    dropped: int
    queued: int
    last_error: str | None
    last_error_at: float | None
    last_sent_at: float | None


@dataclass(frozen=True, slots=True)
class Failure:
    """A message given up on: to which target, what it was, why, after how many attempts."""

    target: str
    event: str
    incident: str
    error: str
    attempts: int
    at: float


class _Worker:
    __slots__ = (
        "client",
        "dropped",
        "failed",
        "last_error",
        "last_error_at",
        "last_sent_at",
        "queue",
        "retried",
        "sent",
        "target",
        "thread",
    )

    def __init__(self, target: WebhookTarget, queue_size: int) -> None:
        self.target = target
        self.queue: queue.Queue[Notification | None] = queue.Queue(maxsize=queue_size)  # None: stop
        self.sent = self.failed = self.retried = self.dropped = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_sent_at: float | None = None
        self.thread: threading.Thread | None = None
        # Built here, on the caller's thread: its TLS set-up costs milliseconds of CPU that would
        # otherwise compete for the GIL with the engine's first on_event calls.
        self.client = httpx.Client(timeout=target.timeout_s, follow_redirects=False)


class Notifier:
    """Sends engine events to webhook targets from background threads; see the module doc.

    ``lookup`` finds an incident by id (``engine.incidents.get``; :meth:`attach` sets it) so a
    message can carry title, severity and service. ``base_url`` makes each message link to
    ``{base_url}/incidents/{id}``. ``clock`` stamps messages and failures; ``sleep`` and ``rng``
    drive the back-off (tests pass fakes: the default sleep wakes up early on :meth:`close`).
    """

    def __init__(
        self,
        targets: Iterable[WebhookTarget],
        *,
        lookup: Callable[[str], Incident | None] | None = None,
        base_url: str | None = None,
        queue_size: int = 1000,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] | None = None,
        rng: random.Random | None = None,
        max_recent_failures: int = 100,
    ) -> None:
        if queue_size < 1 or max_attempts < 1:
            raise ValueError("queue_size and max_attempts must be at least 1")
        self.lookup = lookup
        self.base_url = base_url.rstrip("/") if base_url else None
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._abort = threading.Event()
        self._sleep = sleep if sleep is not None else self._abort.wait
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._recent: deque[Failure] = deque(maxlen=max_recent_failures)
        self._closed = False
        self._workers: list[_Worker] = []
        for target in targets:
            if any(w.target.name == target.name for w in self._workers):
                raise ValidationError(f"two webhook targets are named {target.name!r}")
            self._workers.append(_Worker(target, queue_size))
        self._wanted = frozenset().union(*(w.target.events for w in self._workers))
        for worker in self._workers:
            worker.thread = threading.Thread(
                target=self._run, args=(worker,), name=f"stanch-notify-{worker.target.name}"
            )
            worker.thread.daemon = True  # a hung receiver must not keep the process alive
            worker.thread.start()

    def attach(self, engine: Engine) -> None:
        """Listen to ``engine`` and look incidents up in it."""
        self.lookup = engine.incidents.get
        engine.listeners.append(self.on_event)

    # -------------------------------------------------------------- engine side: O(1), no I/O

    def on_event(self, name: str, details: dict[str, Any]) -> None:
        """Engine listener: queue a message for each target that wants ``name``; never waits."""
        if name not in self._wanted:
            return
        notification = self._snapshot(name, details)
        for worker in self._workers:
            if name not in worker.target.events:
                continue
            if self._closed:
                self._count_drop(worker, "notifier closed")
                continue
            try:
                worker.queue.put_nowait(notification)
            except queue.Full:
                self._count_drop(worker, "queue full")

    def _snapshot(self, name: str, details: dict[str, Any]) -> Notification:
        incident_id = str(details.get("incident", ""))
        incident = self.lookup(incident_id) if self.lookup and incident_id else None
        explanations: tuple[str, ...] = ()
        if incident is not None and name in (
            "incident_opened",
            "incident_reopened",
            "severity_changed",
        ):
            explanations = tuple(a.explanation for a in incident.firing_alerts[:MAX_EXPLANATIONS])
        return Notification(
            event=name,
            incident=incident_id,
            title=incident.title if incident else str(details.get("title", "")),
            severity=incident.severity.value if incident else str(details.get("severity", "")),
            service=incident.service if incident else str(details.get("service", "")),
            state=incident.state.value if incident else "",
            ts=self._clock(),
            text=summary_line(name, incident, details),
            url=f"{self.base_url}/incidents/{incident_id}" if self.base_url else None,
            explanations=explanations,
            details=dict(details),
        )

    def _count_drop(self, worker: _Worker, why: str) -> None:
        with self._lock:
            worker.dropped += 1
            dropped = worker.dropped
        if dropped == 1 or dropped in (10, 100, 1000) or dropped % 10_000 == 0:  # not per drop
            log.warning(
                "webhook %s: message dropped (%s), %d so far", worker.target.name, why, dropped
            )

    # -------------------------------------------------------------- worker side

    def _run(self, worker: _Worker) -> None:
        client = worker.client
        with client:  # closed by its own thread once the queue is done
            while not (self._closed and worker.queue.empty()):
                item = worker.queue.get()
                if item is None:
                    break
                if self._abort.is_set():
                    self._count_drop(worker, "closed before delivery")
                    continue
                try:
                    self._deliver(worker, item, client)
                except Exception as exc:  # a bug in rendering must not kill the worker
                    self._fail(worker, item, f"{type(exc).__name__}: {exc}", 1)

    def _deliver(self, worker: _Worker, n: Notification, client: httpx.Client) -> None:
        target = worker.target
        payload = render_slack(n) if target.kind == "slack" else render_json(n)
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "stanch-notify/1",
            "X-Stanch-Event": n.event,
            "X-Stanch-Delivery": uuid.uuid4().hex,  # the same on every retry: receivers dedupe
        }
        if target.secret:
            headers[SIGNATURE_HEADER] = sign(target.secret, body)
        for attempt in range(1, self.max_attempts + 1):
            if self._abort.is_set():
                self._count_drop(worker, "closed during retries")
                return
            retry_after: float | None = None
            try:
                response = client.post(target.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error, retryable = f"{type(exc).__name__}: {exc}", True
            else:
                status = response.status_code
                if 200 <= status < 300:
                    with self._lock:
                        worker.sent += 1
                        worker.last_sent_at = self._clock()
                    return
                snippet = response.text[:_ERROR_SNIPPET].strip()
                error = f"HTTP {status}" + (f": {snippet}" if snippet else "")
                retryable = status >= 500 or status in RETRY_STATUSES
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(
                        response.headers.get("retry-after"), self._clock()
                    )
            if not retryable or attempt == self.max_attempts:
                self._fail(worker, n, error, attempt)
                return
            delay = retry_after if retry_after is not None else self.backoff(attempt)
            with self._lock:
                worker.retried += 1
                worker.last_error, worker.last_error_at = error, self._clock()
            log.info(
                "webhook %s: %s for %s, retry %d in %.1fs",
                target.name,
                error,
                n.event,
                attempt,
                delay,
            )
            self._sleep(min(delay, self.max_delay_s))

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt ``attempt`` (1-based): exponential, capped, half jittered."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def _fail(self, worker: _Worker, n: Notification, error: str, attempts: int) -> None:
        now = self._clock()
        # Logged before the counters move: whoever sees ``failed`` go up finds the line too.
        log.warning(
            "webhook %s: gave up on %s for %s after %d attempt(s): %s",
            worker.target.name,
            n.event,
            n.incident,
            attempts,
            error,
        )
        with self._lock:
            worker.failed += 1
            worker.last_error, worker.last_error_at = error, now
            self._recent.append(
                Failure(worker.target.name, n.event, n.incident, error, attempts, now)
            )

    # -------------------------------------------------------------- visibility and shutdown

    def status(self) -> dict[str, TargetStatus]:
        """Per-target counters, by target name."""
        with self._lock:
            return {
                w.target.name: TargetStatus(
                    w.target.name,
                    w.target.kind,
                    w.sent,
                    w.failed,
                    w.retried,
                    w.dropped,
                    w.queue.qsize(),
                    w.last_error,
                    w.last_error_at,
                    w.last_sent_at,
                )
                for w in self._workers
            }

    @property
    def recent_failures(self) -> list[Failure]:
        """The last failures (bounded), oldest first."""
        with self._lock:
            return list(self._recent)

    def close(self, timeout: float = 5.0) -> bool:
        """Stop taking events, deliver what is queued within ``timeout`` seconds, stop.

        Returns whether everything queued was handled (sent or failed); what was still queued
        after ``timeout`` is counted as dropped.
        """
        self._closed = True
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            # On a full queue the worker sees _closed once it has emptied the queue.
            with contextlib.suppress(queue.Full):
                worker.queue.put_nowait(None)
        for worker in self._workers:
            if worker.thread is not None:
                worker.thread.join(max(0.0, deadline - time.monotonic()))
        drained = not any(w.thread is not None and w.thread.is_alive() for w in self._workers)
        if not drained:
            self._abort.set()  # wakes back-off sleeps; the rest of each queue is dropped
            for worker in self._workers:
                if worker.thread is not None:
                    worker.thread.join(1.0)
        return drained

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
