"""/metrics: exact per-route counters and Stanch's own health, read at scrape time."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import REGISTRY, CollectorRegistry
from starlette.applications import Starlette
from starlette.routing import Route

from stanch.buffer import EventBuffer
from stanch.core.actions import ActionKind
from stanch.core.alerts import Alert, AlertKind, AlertStatus
from stanch.core.events import RequestEvent
from stanch.core.runbook import load_runbook_text
from stanch.core.series import OVERFLOW_ROUTE
from stanch.core.severity import Severity
from stanch.core.totals import SeriesTotals
from stanch.engine import Engine, EngineConfig
from stanch.metrics import StanchCollector, build_registry, metrics_app
from stanch.middleware import StanchMiddleware
from stanch.notify import Notifier, WebhookTarget
from stanch.store import Store

T0 = 1_800_000_000.0
PRODUCT = "GET /products/{product_id}"
CHECKOUT = "POST /checkout"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Rig:
    """A real engine on an in-memory store, with the totals fed whether or not the engine
    keeps its own yet."""

    def __init__(self, runbook: str = "version: 1\nrules: []\n", max_series: int = 500) -> None:
        self.store = Store.open("sqlite://")
        self.engine = Engine(
            self.store,
            load_runbook_text(runbook),
            config=EngineConfig(max_series=max_series),
            now=T0,
        )
        existing = getattr(self.engine, "totals", None)
        self.totals: SeriesTotals = existing if existing is not None else SeriesTotals()
        self.own_totals = existing is None
        self.now = T0
        self.registry = build_registry(self.engine, totals=self.totals, clock=lambda: self.now)

    def step(self, now: float) -> None:
        points = self.engine.step(now)
        if self.own_totals:
            self.totals.add(points)
        self.now = now

    def scrape(self) -> Samples:
        text = registry_text(self.registry)
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig()
    yield r
    r.store.close()


def registry_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def ev(
    ts: float, method: str, route: str, status: int = 200, latency: float = 0.05
) -> RequestEvent:
    return RequestEvent(ts, "shop", method, route, status, latency, "c1")


def series(service: str, route: str, **more: str) -> tuple[tuple[str, str], ...]:
    """Labels as the scrape dict keys them: sorted by name."""
    return tuple(sorted({"service": service, "route": route, **more}.items()))


def test_per_route_counters_are_exact(rig: Rig) -> None:
    """Requests, errors, enforced and served per route key equal what was ingested, summed over
    windows; route="*" is the whole service."""
    events = [ev(T0 + i * 0.01, "GET", "/products/{product_id}") for i in range(30)]
    events += [ev(T0 + 0.5, "GET", "/products/{product_id}", status=503)] * 4
    events += [ev(T0 + 1.2 + i * 0.01, "POST", "/checkout", status=500) for i in range(3)]
    events += [ev(T0 + 1.3 + i * 0.01, "POST", "/checkout") for i in range(7)]
    shed = RequestEvent(T0 + 1.5, "shop", "POST", "/checkout", 503, 0.0, "c1", "", "shed")
    rig.engine.ingest([*events, shed, shed])
    rig.step(T0 + 3)
    got = rig.scrape()
    product, checkout, whole = (
        series("shop", PRODUCT),
        series("shop", CHECKOUT),
        series("shop", "*"),
    )
    assert got["stanch_requests_total", product] == 34
    assert got["stanch_errors_total", product] == 4
    assert got["stanch_requests_total", checkout] == 12
    assert got["stanch_errors_total", checkout] == 3
    assert got["stanch_enforced_total", checkout] == 2
    assert got["stanch_served_total", checkout] == 10
    assert got["stanch_requests_total", whole] == 46
    rig.engine.ingest([ev(T0 + 3.5, "GET", "/products/{product_id}")])
    rig.step(T0 + 5)
    assert rig.scrape()["stanch_requests_total", product] == 35


def test_latency_quantiles_of_the_last_window(rig: Rig) -> None:
    """stanch_latency_seconds carries p50/p95/p99 of the last closed window per route."""
    rig.engine.ingest(
        ev(T0 + i / 100, "GET", "/products/{product_id}", latency=0.2) for i in range(50)
    )
    rig.step(T0 + 1)
    got = rig.scrape()
    for quantile in ("0.5", "0.95", "0.99"):
        key = ("stanch_latency_seconds", series("shop", PRODUCT, quantile=quantile))
        assert got[key] == pytest.approx(0.2, rel=0.02)


def test_buffers_lag_and_guard_are_reported(rig: Rig) -> None:
    """Ingested and dropped come from each service's buffer; lag is now minus the end of the
    last closed window; the guard's series count is exposed."""
    buffer, _ = rig.engine.attach("shop")
    small = EventBuffer("tiny", capacity=2)
    rig.engine.buffers["tiny"] = small
    for i in range(5):
        buffer.push((T0 + i * 0.1, "GET", "/a", 200, 0.01, "", ""))
        small.push((T0 + i * 0.1, "GET", "/a", 200, 0.01, "", ""))
    rig.step(T0 + 2)
    rig.now = T0 + 4.5  # the scrape comes 2.5 s after the window [T0+1, T0+2) closed
    got = rig.scrape()
    assert got["stanch_events_ingested_total", (("service", "shop"),)] == 5
    assert got["stanch_events_dropped_total", (("service", "tiny"),)] == 3
    assert got["stanch_events_ingested_total", (("service", "tiny"),)] == 2
    assert got["stanch_detector_lag_seconds", ()] == pytest.approx(2.5)
    assert got["stanch_series", ()] == 2  # a route in each service; service-wide ones are free
    assert got["stanch_engine_last_step_timestamp_seconds", ()] == T0 + 2


def test_incidents_actions_and_approvals_are_counted() -> None:
    """Open incidents by severity, active actions by kind and pending approvals, every label
    present (zeros included) so dashboards never see a series vanish."""
    rig = Rig(
        "version: 1\nrules:\n"
        "  - name: a\n    match: {routes: ['POST /pay']}\n"
        "    actions: [{kind: circuit_break, mode: auto}]\n"
        "  - name: b\n    match: {routes: ['POST /refund']}\n"
        "    actions: [{kind: shed_load, mode: approve, params: {fraction: 0.5}}]\n"
    )
    try:
        for route, severity in (("POST /pay", Severity.SEV1), ("POST /refund", Severity.SEV3)):
            rig.engine.ingest_alert(alert(route, severity), T0)
        got = rig.scrape()
        assert got["stanch_open_incidents", (("severity", "SEV1"),)] == 1
        assert got["stanch_open_incidents", (("severity", "SEV3"),)] == 1
        assert got["stanch_open_incidents", (("severity", "SEV2"),)] == 0
        assert got["stanch_active_actions", (("kind", "circuit_break"),)] == 1
        assert got["stanch_active_actions", (("kind", "shed_load"),)] == 0
        assert len([k for k in got if k[0] == "stanch_active_actions"]) == len(ActionKind)
        assert got["stanch_pending_approvals", ()] == 1
    finally:
        rig.store.close()


def alert(route: str, severity: Severity) -> Alert:
    return Alert(
        f"fp-{route}",
        AlertKind.ERROR_BURST,
        "shop",
        route,
        "errors",
        severity,
        AlertStatus.FIRING,
        T0,
        T0,
        0.3,
        0.01,
        5.0,
        "error ratio 30% vs baseline 1%",
        source="alertmanager",
    )


def test_cardinality_stays_bounded_by_the_guard() -> None:
    """A thousand distinct route templates make at most max_series route series (plus the
    overflow and service series), and the overflow is counted."""
    rig = Rig(max_series=10)
    try:
        rig.engine.ingest(ev(T0 + 0.5, "GET", f"/u/{i}") for i in range(1000))
        rig.step(T0 + 2)
        got = rig.scrape()
        routes = {dict(labels)["route"] for name, labels in got if name == "stanch_requests_total"}
        assert len(routes) == 12  # 10 admitted, the overflow series and "*"
        assert OVERFLOW_ROUTE in routes
        assert got["stanch_requests_total", series("shop", OVERFLOW_ROUTE)] == 990
        assert got["stanch_series_overflowed_total", ()] == 990
    finally:
        rig.store.close()


def test_a_noisy_service_folds_only_its_own_routes_and_the_folds_are_counted() -> None:
    """The audit case end to end: 'noisy' posts 600 raw paths, then billing's route is new;
    billing keeps its per-route series, noisy's excess is folded into noisy's __other__ and
    counted per service in stanch_series_folded_total."""
    rig = Rig()
    try:
        rig.engine.ingest(
            RequestEvent(T0 + 0.1, "noisy", "GET", f"/item/{i}", 200, 0.01, "c1")
            for i in range(600)
        )
        rig.engine.ingest([RequestEvent(T0 + 0.5, "billing", "POST", "/invoice", 200, 0.01, "c")])
        rig.step(T0 + 2)
        got = rig.scrape()
        assert got["stanch_requests_total", series("billing", "POST /invoice")] == 1
        assert ("stanch_requests_total", series("billing", OVERFLOW_ROUTE)) not in got
        assert got["stanch_requests_total", series("noisy", OVERFLOW_ROUTE)] == 400
        assert got["stanch_requests_total", series("noisy", "*")] == 600
        assert got["stanch_series_folded_total", (("service", "noisy"),)] == 400
        assert ("stanch_series_folded_total", (("service", "billing"),)) not in got
        assert got["stanch_series_overflowed_total", ()] == 400
    finally:
        rig.store.close()


def test_the_engine_builds_its_guard_from_its_config() -> None:
    """EngineConfig's caps reach the guard; the totals have room for what it admits."""
    store = Store.open("sqlite://")
    try:
        config = EngineConfig(max_series=3000, max_routes_per_service=7)
        engine = Engine(store, load_runbook_text("version: 1\nrules: []\n"), config=config)
        assert (engine.guard.max_series, engine.guard.max_routes_per_service) == (3000, 7)
        assert engine.totals.max_series >= 2 * 3000
    finally:
        store.close()


def test_middleware_and_notifier_counters() -> None:
    """Middleware internal errors and webhook outcomes per target are exposed when given."""
    rig = Rig()
    buffer, holder = rig.engine.attach("shop")
    middleware = StanchMiddleware(Starlette(), buffer=buffer, policy=holder)
    middleware.internal_errors = 3
    with Notifier([WebhookTarget("ops", "http://127.0.0.1:9/x")]) as notifier:
        collector = StanchCollector(rig.engine, middleware=middleware, notifier=notifier)
        registry = build_registry(rig.engine, middleware=middleware, notifier=notifier)
        text = registry_text(registry)
        assert "stanch_middleware_internal_errors_total 3.0" in text
        assert 'stanch_notifications_total{outcome="sent",target="ops"} 0.0' in text
        assert [m.name for m in collector.describe()][:2] == ["stanch_requests", "stanch_served"]
    rig.store.close()


def test_nothing_lands_on_the_global_registry(rig: Rig) -> None:
    """build_registry makes its own registry: the process-wide one never sees stanch_ metrics."""
    rig.engine.ingest([ev(T0, "GET", "/a")])
    rig.step(T0 + 2)
    assert "stanch_requests_total" in registry_text(rig.registry)
    assert "stanch_" not in registry_text(REGISTRY)


def test_a_second_collector_on_the_same_registry_is_refused(rig: Rig) -> None:
    """describe() names the families, so registering Stanch twice fails loudly, not silently."""
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        rig.registry.register(StanchCollector(rig.engine))


def test_lag_and_series_are_absent_before_any_window_closes(rig: Rig) -> None:
    """With no traffic yet there is no lag to report, and no per-route series."""
    got = rig.scrape()
    assert ("stanch_detector_lag_seconds", ()) not in got
    assert not [k for k in got if k[0] == "stanch_requests_total"]
    assert got["stanch_pending_approvals", ()] == 0


async def test_endpoint_serves_text_format_and_mounts_on_starlette(rig: Rig) -> None:
    """GET /metrics on a Starlette app answers 200 in text format 0.0.4 that parses; HEAD has
    no body; POST is refused; OpenMetrics is served to a scraper that asks for it."""
    rig.engine.ingest([ev(T0, "GET", "/products/{product_id}")])
    rig.step(T0 + 2)
    app = Starlette(routes=[Route("/metrics", metrics_app(rig.registry))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        response = await client.get("/metrics")
        head = await client.head("/metrics")
        post = await client.post("/metrics")
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["stanch_requests"].samples[0].value == 1
    assert head.status_code == 200
    assert head.content == b""
    assert post.status_code == 405
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")


def test_nan_quantile_for_an_idle_window_is_exposed_as_nan(rig: Rig) -> None:
    """A route that served nothing in the last window reports NaN latency, not a stale value."""
    rig.engine.ingest([ev(T0, "GET", "/products/{product_id}")])
    rig.step(T0 + 3)
    key = ("stanch_latency_seconds", series("shop", PRODUCT, quantile="0.99"))
    assert math.isnan(rig.scrape()[key])


async def test_requests_through_the_middleware_show_up_by_route_template(rig: Rig) -> None:
    """End to end on a FastAPI app behind StanchMiddleware with /metrics mounted beside its
    routes: raw paths become one route-key series, and scrapes are not recorded themselves."""
    shop = FastAPI()

    @shop.get("/products/{product_id}")
    async def product(product_id: int) -> dict[str, int]:
        return {"id": product_id}

    buffer, holder = rig.engine.attach("shop")
    app = StanchMiddleware(shop, buffer=buffer, policy=holder, clock=lambda: T0 + 0.5)
    registry = build_registry(rig.engine, middleware=app, totals=rig.totals)
    shop.router.routes.append(Route("/metrics", metrics_app(registry), include_in_schema=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        for i in range(7):
            assert (await client.get(f"/products/{i}")).status_code == 200
        await client.get("/metrics")
        rig.step(T0 + 2)
        text = (await client.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples["stanch_requests_total", series("shop", PRODUCT)] == 7
    assert samples["stanch_events_ingested_total", (("service", "shop"),)] == 7
    assert samples["stanch_middleware_internal_errors_total", ()] == 0
    assert not [k for k in samples if "/products/1" in str(k) or "/metrics" in str(k)]
