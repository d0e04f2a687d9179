"""Outgoing webhooks: payloads, retries, signatures and never blocking the engine, against a real
HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.errors import ValidationError
from stanch.core.incidents import Incident
from stanch.core.runbook import load_runbook_text
from stanch.core.severity import Severity
from stanch.engine import Engine
from stanch.notify import (
    SIGNATURE_HEADER,
    Notifier,
    WebhookTarget,
    parse_retry_after,
    verify_signature,
)
from stanch.store import Store

T0 = 1_800_000_000.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    """A webhook receiver that records requests; ``plan`` holds the statuses (and headers) of
    the next answers, 200 once it is empty; a closed ``gate`` holds every answer back."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.plan: list[tuple[int, dict[str, str]]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    status, headers = receiver.plan.pop(0) if receiver.plan else (200, {})
                receiver.gate.wait(10)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                reply = b"ok" if status < 400 else b"nope"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def fail_first(self, n: int, status: int, headers: dict[str, str] | None = None) -> None:
        self.plan = [(status, headers or {})] * n


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.gate.set()
    r.server.shutdown()
    r.server.server_close()


class FakeSleep:
    """Records back-off delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def make_notifier(sleep: FakeSleep) -> Iterator[Callable[..., Notifier]]:
    made: list[Notifier] = []

    def make(*targets: WebhookTarget, **kwargs: Any) -> Notifier:
        kwargs.setdefault("sleep", sleep)
        kwargs.setdefault("clock", lambda: T0)
        kwargs.setdefault("rng", random.Random(7))
        notifier = Notifier(targets, **kwargs)
        made.append(notifier)
        return notifier

    yield make
    for notifier in made:
        notifier.close(timeout=2.0)


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_alert(explanation: str = "error ratio 12.3% vs baseline 0.4%") -> Alert:
    return Alert(
        fingerprint="fp-pay",
        kind=AlertKind.ERROR_BURST,
        service="shop",
        route="POST /pay",
        signal="errors",
        severity=Severity.SEV2,
        status=AlertStatus.FIRING,
        started_at=T0,
        updated_at=T0,
        observed=0.123,
        expected=0.004,
        score=9.1,
        explanation=explanation,
        source="alertmanager",
    )


def incident(title: str = "Error burst on POST /pay", explanation: str = "") -> Incident:
    inc = Incident(id="INC-0007", service="shop", title=title, severity=Severity.SEV2, opened_at=T0)
    inc.add_alert(make_alert(explanation or "error ratio 12.3% vs baseline 0.4%"), T0)
    return inc


def test_json_message_carries_incident_facts_and_engine_details(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """A generic JSON webhook gets event, incident, title, severity, service, text, url, ts and
    the engine's own details, as application/json with event and delivery headers."""
    inc = incident()
    notifier = make_notifier(
        WebhookTarget("ops", receiver.url),
        lookup={inc.id: inc}.get,
        base_url="https://stanch.example/",
    )
    details = {"incident": inc.id, "action": "ACT-0001", "kind": "circuit_break"}
    notifier.on_event("approval_needed", details | {"target": "POST /pay"})
    wait_for(lambda: notifier.status()["ops"].sent == 1)
    (got,) = receiver.requests
    body = got.json
    assert body["event"] == "approval_needed"
    assert body["incident"] == "INC-0007"
    assert body["title"] == "Error burst on POST /pay"
    assert (body["severity"], body["service"], body["state"]) == ("SEV2", "shop", "detected")
    assert body["url"] == "https://stanch.example/incidents/INC-0007"
    assert body["ts"] == T0
    assert body["action"] == "ACT-0001"
    assert (
        body["text"] == "INC-0007: circuit_break on POST /pay waits for approval (action ACT-0001)"
    )
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Stanch-Event"] == "approval_needed"
    assert len(got.headers["X-Stanch-Delivery"]) == 32


def test_slack_message_escapes_user_controlled_text(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """A Slack target gets text + mrkdwn blocks, with & < > escaped so a title or alert text
    cannot inject markup, links or mentions."""
    inc = incident(title="<script>alert(1)</script> & <!channel>", explanation="p99 > 2s <b>")
    notifier = make_notifier(
        WebhookTarget("slack", receiver.url, kind="slack"),
        lookup={inc.id: inc}.get,
        base_url="https://stanch.example",
    )
    notifier.on_event("incident_opened", {"incident": inc.id})
    wait_for(lambda: notifier.status()["slack"].sent == 1)
    body = receiver.requests[0].json
    assert set(body) == {"text", "blocks"}
    raw = json.dumps(body)
    assert "<script>" not in raw
    assert "<!channel>" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;!channel&gt;" in body["text"]
    section, context = body["blocks"]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert "p99 &gt; 2s &lt;b&gt;" in section["text"]["text"]
    assert context["type"] == "context"
    assert (
        "<https://stanch.example/incidents/INC-0007|Open INC-0007 in Stanch>"
        in (context["elements"][0]["text"])
    )


def test_server_errors_are_retried_with_backoff_then_delivered(
    receiver: Receiver, make_notifier: Callable[..., Notifier], sleep: FakeSleep
) -> None:
    """Two 500s then a 200: three attempts with the same delivery id, two growing jittered
    back-off delays, counted as sent once and retried twice."""
    receiver.fail_first(2, 500)
    notifier = make_notifier(WebhookTarget("ops", receiver.url))
    notifier.on_event("incident_resolved", {"incident": "INC-0001"})
    wait_for(lambda: notifier.status()["ops"].sent == 1)
    status = notifier.status()["ops"]
    assert (status.sent, status.retried, status.failed) == (1, 2, 0)
    assert len(receiver.requests) == 3
    assert len({r.headers["X-Stanch-Delivery"] for r in receiver.requests}) == 1
    first, second = sleep.delays
    assert 0.5 <= first <= 1.0
    assert 1.0 <= second <= 2.0
    assert status.last_error == "HTTP 500: nope"


def test_retry_after_is_honoured_on_429(
    receiver: Receiver, make_notifier: Callable[..., Notifier], sleep: FakeSleep
) -> None:
    """A 429 with Retry-After: 7 waits exactly 7 s before the next attempt."""
    receiver.fail_first(1, 429, {"Retry-After": "7"})
    notifier = make_notifier(WebhookTarget("ops", receiver.url))
    notifier.on_event("incident_opened", {"incident": "INC-0001"})
    wait_for(lambda: notifier.status()["ops"].sent == 1)
    assert sleep.delays == [7.0]


def test_permanent_failure_is_visible_in_status_failures_and_log(
    receiver: Receiver,
    make_notifier: Callable[..., Notifier],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A target that always answers 503 is given up on after max_attempts: failed, last_error,
    last_error_at, recent_failures and a warning all say so."""
    receiver.fail_first(10, 503)
    notifier = make_notifier(WebhookTarget("ops", receiver.url), max_attempts=3)
    with caplog.at_level(logging.WARNING, logger="stanch.notify"):
        notifier.on_event("incident_opened", {"incident": "INC-0002"})
        wait_for(lambda: notifier.status()["ops"].failed == 1)
    status = notifier.status()["ops"]
    assert (status.sent, status.retried, status.failed) == (0, 2, 1)
    assert status.last_error == "HTTP 503: nope"
    assert status.last_error_at == T0
    (failure,) = notifier.recent_failures
    assert (failure.target, failure.event, failure.incident) == (
        "ops",
        "incident_opened",
        "INC-0002",
    )
    assert failure.attempts == 3
    assert len(receiver.requests) == 3
    assert "gave up on incident_opened for INC-0002 after 3 attempt(s)" in caplog.text
    assert receiver.url not in caplog.text  # a webhook URL is a credential


def test_client_errors_are_not_retried(
    receiver: Receiver, make_notifier: Callable[..., Notifier], sleep: FakeSleep
) -> None:
    """A 400 fails at once: one request, no back-off, no retry."""
    receiver.fail_first(1, 400)
    notifier = make_notifier(WebhookTarget("ops", receiver.url))
    notifier.on_event("incident_opened", {"incident": "INC-0003"})
    wait_for(lambda: notifier.status()["ops"].failed == 1)
    assert len(receiver.requests) == 1
    assert notifier.status()["ops"].retried == 0
    assert sleep.delays == []


def test_connection_refused_is_retried_then_reported(
    make_notifier: Callable[..., Notifier],
) -> None:
    """A closed port is a transport error: retried, then failed with the error's name."""
    notifier = make_notifier(
        WebhookTarget("down", f"http://127.0.0.1:{closed_port()}/hook"), max_attempts=2
    )
    notifier.on_event("incident_opened", {"incident": "INC-0004"})
    wait_for(lambda: notifier.status()["down"].failed == 1)
    status = notifier.status()["down"]
    assert status.retried == 1
    assert status.last_error is not None
    assert status.last_error.startswith("ConnectError")


def test_signature_verifies_against_the_exact_body(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """With a secret, X-Stanch-Signature is sha256=HMAC(secret, body) and nothing else verifies."""
    notifier = make_notifier(WebhookTarget("ops", receiver.url, secret="s3cr3t"))
    notifier.on_event("incident_resolved", {"incident": "INC-0005"})
    wait_for(lambda: notifier.status()["ops"].sent == 1)
    got = receiver.requests[0]
    header = got.headers[SIGNATURE_HEADER]
    assert header.startswith("sha256=")
    assert verify_signature("s3cr3t", got.body, header)
    assert not verify_signature("wrong", got.body, header)
    assert not verify_signature("s3cr3t", got.body + b" ", header)


def test_no_signature_header_without_a_secret(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """Unsigned targets send no signature header at all."""
    notifier = make_notifier(WebhookTarget("ops", receiver.url))
    notifier.on_event("incident_resolved", {"incident": "INC-0005"})
    wait_for(lambda: notifier.status()["ops"].sent == 1)
    assert SIGNATURE_HEADER not in receiver.requests[0].headers


def test_unreachable_target_never_blocks_the_engine(make_notifier: Callable[..., Notifier]) -> None:
    """1000 events for a dead target (real back-off sleep) are handed over at once (well under
    the 0.5 s bound even on a loaded machine; waiting on the target would take seconds); close
    gives up after its timeout and counts what was never sent as dropped."""
    notifier = make_notifier(
        WebhookTarget("down", f"http://127.0.0.1:{closed_port()}/hook"), sleep=None
    )
    start = time.perf_counter()
    for i in range(1000):
        notifier.on_event("incident_opened", {"incident": f"INC-{i}", "title": "t"})
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5
    assert notifier.close(timeout=0.2) is False
    status = notifier.status()["down"]
    assert (status.sent, status.failed, status.dropped) == (0, 0, 1000)


def test_a_full_queue_drops_and_counts(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """While a receiver hangs, a queue of 2 takes two more messages and drops the rest, counted;
    once it answers, the queued ones go out in order."""
    receiver.gate.clear()
    notifier = make_notifier(WebhookTarget("ops", receiver.url), queue_size=2)
    notifier.on_event("incident_opened", {"incident": "INC-0"})
    wait_for(lambda: len(receiver.requests) == 1)  # in flight, held at the receiver
    for i in range(1, 10):
        notifier.on_event("incident_opened", {"incident": f"INC-{i}"})
    assert notifier.status()["ops"].dropped == 7
    receiver.gate.set()
    assert notifier.close(timeout=5.0) is True
    assert notifier.status()["ops"].sent == 3
    assert [r.json["incident"] for r in receiver.requests] == ["INC-0", "INC-1", "INC-2"]


def test_targets_get_only_the_events_they_subscribed_to(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """A target for incident_resolved ignores other events, and timeline events go nowhere."""
    notifier = make_notifier(
        WebhookTarget("ops", receiver.url, events=frozenset({"incident_resolved"}))
    )
    notifier.on_event("timeline", {"incident": "INC-1", "text": "noise"})
    notifier.on_event("incident_opened", {"incident": "INC-1"})
    notifier.on_event("incident_resolved", {"incident": "INC-1"})
    assert notifier.close(timeout=5.0) is True
    assert [r.json["event"] for r in receiver.requests] == ["incident_resolved"]


def test_engine_events_arrive_in_order(
    receiver: Receiver, make_notifier: Callable[..., Notifier], store: Store
) -> None:
    """Wired to a real engine: opened, approval needed, applied and resolved arrive in that
    order, with the incident's title and service filled in."""
    runbook = load_runbook_text(
        "version: 1\nrules:\n  - name: pay\n    match: {kinds: [error_burst]}\n"
        "    actions:\n      - {kind: circuit_break, mode: approve}\n"
    )
    engine = Engine(store, runbook, now=T0)
    notifier = make_notifier(WebhookTarget("ops", receiver.url))
    notifier.attach(engine)
    incident_id = engine.ingest_alert(make_alert(), T0)
    assert incident_id is not None
    (action,) = engine.incident_actions(incident_id)
    engine.decide(action.id, True, actor="erin", now=T0 + 5)
    engine.resolve(incident_id, actor="erin", now=T0 + 60, resolution="bad deploy rolled back")
    assert notifier.close(timeout=5.0) is True
    bodies = [r.json for r in receiver.requests]
    assert [b["event"] for b in bodies] == [
        "incident_opened",
        "approval_needed",
        "action_applied",
        "incident_resolved",
    ]
    assert {b["service"] for b in bodies} == {"shop"}
    assert bodies[0]["title"] == "Error burst on POST /pay"
    assert bodies[0]["explanations"] == ["error ratio 12.3% vs baseline 0.4%"]
    assert bodies[3]["text"].endswith("(bad deploy rolled back)")


def test_events_after_close_are_dropped_not_sent(
    receiver: Receiver, make_notifier: Callable[..., Notifier]
) -> None:
    """After close, on_event still returns at once and counts the message as dropped."""
    notifier = make_notifier(WebhookTarget("ops", receiver.url))
    notifier.close(timeout=1.0)
    notifier.on_event("incident_opened", {"incident": "INC-9"})
    assert notifier.status()["ops"].dropped == 1
    assert receiver.requests == []


def test_backoff_grows_and_is_capped() -> None:
    """Delays double from base_delay_s, are jittered within the upper half, never exceed the cap."""
    notifier = Notifier([], base_delay_s=1.0, max_delay_s=60.0, rng=random.Random(1))
    assert 4.0 <= notifier.backoff(4) <= 8.0
    assert all(30.0 <= notifier.backoff(20) <= 60.0 for _ in range(50))


def test_retry_after_parses_seconds_and_http_dates() -> None:
    """Retry-After accepts delta-seconds and an HTTP date; junk is ignored."""
    assert parse_retry_after("12", now=0.0) == 12.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
    assert parse_retry_after("soon", now=0.0) is None
    assert parse_retry_after("\u00b2", now=0.0) is None  # a digit to str.isdigit, not to float


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset to change zones")
def test_retry_after_minus_zero_zone_is_utc_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An HTTP date in "-0000" is UTC (RFC 5322), not the server's local time."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 -0000", now=40.0) == 60.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_targets_are_validated_and_hide_secrets() -> None:
    """Bad kinds, URLs and event names are refused; repr shows neither the URL nor the secret."""
    with pytest.raises(ValidationError, match="kind"):
        WebhookTarget("x", "https://h/x", kind="teams")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="url"):
        WebhookTarget("x", "ftp://h/x")
    with pytest.raises(ValidationError, match="unknown events"):
        WebhookTarget("x", "https://h/x", events=frozenset({"incident_opend"}))
    text = repr(WebhookTarget("x", "https://hooks.example/T000/SECRET", secret="k3y"))
    assert "SECRET" not in text
    assert "k3y" not in text
