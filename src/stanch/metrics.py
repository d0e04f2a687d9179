"""``/metrics`` in Prometheus format, by collection: nothing is counted on the request path.

:class:`StanchCollector` reads Stanch's own state when Prometheus scrapes: the engine's per-series
totals (requests, errors, enforced, served, last-window latency quantiles per route), its event
buffers, cardinality guard, incidents and actions, the middleware's internal error count and the
notifier's delivery counters. The middleware therefore never calls ``labels()``; the only thing
worth caching is each series' label values, kept per series key and bounded with the series.

Register it on a registry of your own, never the global one::

    registry = build_registry(engine, middleware=mw, notifier=notifier)
    app.add_route("/metrics", metrics_app(registry), include_in_schema=False)

``route`` labels are route keys (``"GET /products/{product_id}"``), never raw paths; ``route="*"``
is the whole service (do not add it to the per-route series), ``"__other__"`` collects a
service's series past the cardinality caps (per service, then global);
``stanch_series_folded_total{service}`` counts the events folded into it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from starlette.types import Receive, Scope, Send

from stanch.core.actions import ActionKind, ActionState
from stanch.core.series import SeriesKey
from stanch.core.severity import Severity
from stanch.core.totals import SeriesTotals
from stanch.engine import Engine
from stanch.middleware import StanchMiddleware
from stanch.notify import Notifier

SERIES = ["service", "route"]
QUANTILES = ("0.5", "0.95", "0.99")
_Family = CounterMetricFamily | GaugeMetricFamily


class StanchCollector:
    """A prometheus_client custom collector over one engine (see the module doc).

    ``totals`` defaults to ``engine.totals``; without either, per-route metrics are left out.
    ``clock`` gives "now" in the engine's time for ``stanch_detector_lag_seconds`` (pass the
    simulation clock in a simulation). Reads happen on the scraping thread: counters are copied
    before use, so a scrape concurrent with ``engine.step`` sees monotonic, if not
    step-consistent, values.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        middleware: StanchMiddleware | None = None,
        notifier: Notifier | None = None,
        totals: SeriesTotals | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.middleware = middleware
        self.notifier = notifier
        self.totals = totals
        self.clock = clock
        self._labels: dict[SeriesKey, tuple[list[str], list[list[str]]]] = {}

    def _series_labels(self, key: SeriesKey) -> tuple[list[str], list[list[str]]]:
        """(service, route) and the three (service, route, quantile) label lists of ``key``."""
        hit = self._labels.get(key)
        if hit is None:
            base = [key.service, key.route]
            hit = (base, [[*base, q] for q in QUANTILES])
            self._labels[key] = hit
        return hit

    def describe(self) -> list[Metric]:
        """The families this collector yields, empty: lets the registry catch name clashes."""
        return list(self._families().values())

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        self._fill(families)
        # A family with nothing to report (no middleware, no window closed yet) is left out.
        yield from (family for family in families.values() if family.samples)

    def _families(self) -> dict[str, _Family]:
        c, g = CounterMetricFamily, GaugeMetricFamily
        f: dict[str, _Family] = {
            "requests": c("stanch_requests", "Requests offered, per route key", labels=SERIES),
            "served": c("stanch_served", "Requests that reached the app", labels=SERIES),
            "errors": c("stanch_errors", "Requests the app answered with 5xx", labels=SERIES),
            "enforced": c("stanch_enforced", "Requests Stanch answered itself", labels=SERIES),
            "latency": g(
                "stanch_latency_seconds",
                "App latency quantiles of the last closed window (NaN: it served nothing)",
                labels=[*SERIES, "quantile"],
            ),
            "ingested": c(
                "stanch_events_ingested", "Request events drained from buffers", labels=["service"]
            ),
            "dropped": c(
                "stanch_events_dropped",
                "Request events dropped by a full buffer",
                labels=["service"],
            ),
            "late": c(
                "stanch_events_late",
                "Events older than the last closed window (counted in the oldest open one)",
            ),
            "lag": g("stanch_detector_lag_seconds", "Now minus the end of the last closed window"),
            "last_step": g(
                "stanch_engine_last_step_timestamp_seconds", "Engine time of the last step"
            ),
            "incidents": g("stanch_open_incidents", "Open incidents", labels=["severity"]),
            "actions": g("stanch_active_actions", "Actions in force", labels=["kind"]),
            "pending": g("stanch_pending_approvals", "Actions waiting for a human"),
            "internal": c(
                "stanch_middleware_internal_errors",
                "Stanch's own errors in the middleware (each request went on without Stanch)",
            ),
            "series": g("stanch_series", "Series admitted by the cardinality guard"),
            "overflowed": c(
                "stanch_series_overflowed",
                "Events folded into the overflow series by the cardinality guard",
            ),
            "folded": c(
                "stanch_series_folded",
                "Events folded into the service's __other__ series (a series cap was reached)",
                labels=["service"],
            ),
            "notify": c(
                "stanch_notifications",
                "Webhook messages by target and outcome",
                labels=["target", "outcome"],
            ),
        }
        return f

    def _fill(self, f: dict[str, _Family]) -> None:
        engine = self.engine
        totals = self.totals if self.totals is not None else getattr(engine, "totals", None)
        if totals is not None:
            self._fill_series(f, totals)
            if totals.last_window_end is not None:
                f["lag"].add_metric([], max(0.0, self.clock() - totals.last_window_end))
        for service, buffer in sorted(engine.buffers.items()):
            f["ingested"].add_metric([service], buffer.accepted)
            f["dropped"].add_metric([service], buffer.dropped)
        f["late"].add_metric([], engine.windows.late)
        f["last_step"].add_metric([], engine.last_step)
        severities = Counter(i.severity for i in list(engine.incidents.values()) if i.is_open)
        for severity in Severity:
            f["incidents"].add_metric([severity.value], severities[severity])
        actions = list(engine.actions.values())
        kinds = Counter(a.kind for a in actions if a.is_active)
        for kind in ActionKind:
            f["actions"].add_metric([kind.value], kinds[kind])
        f["pending"].add_metric([], sum(a.state is ActionState.PENDING for a in actions))
        if self.middleware is not None:
            f["internal"].add_metric([], self.middleware.internal_errors)
        f["series"].add_metric([], len(engine.guard))
        f["overflowed"].add_metric([], engine.guard.overflowed)
        for service, folded in sorted(dict(engine.guard.folded).items()):
            f["folded"].add_metric([service], folded)
        if self.notifier is not None:
            for name, s in self.notifier.status().items():
                for outcome, value in (
                    ("sent", s.sent),
                    ("failed", s.failed),
                    ("retried", s.retried),
                    ("dropped", s.dropped),
                ):
                    f["notify"].add_metric([name, outcome], value)

    def _fill_series(self, f: dict[str, _Family], totals: SeriesTotals) -> None:
        snapshot = totals.snapshot()
        if len(self._labels) > 2 * len(snapshot):
            self._labels.clear()  # forget series the totals no longer hold: bounded at 2x
        requests, served, errors = f["requests"], f["served"], f["errors"]
        enforced, latency = f["enforced"], f["latency"]
        for t in snapshot:
            labels, quantile_labels = self._series_labels(t.key)
            requests.add_metric(labels, t.requests)
            served.add_metric(labels, t.served)
            errors.add_metric(labels, t.errors)
            enforced.add_metric(labels, t.enforced)
            for qlabels, value in zip(quantile_labels, (t.p50, t.p95, t.p99), strict=True):
                latency.add_metric(qlabels, value)


def build_registry(
    engine: Engine,
    *,
    middleware: StanchMiddleware | None = None,
    notifier: Notifier | None = None,
    totals: SeriesTotals | None = None,
    clock: Callable[[], float] = time.time,
) -> CollectorRegistry:
    """A fresh registry (not the global one) holding a :class:`StanchCollector`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        StanchCollector(
            engine, middleware=middleware, notifier=notifier, totals=totals, clock=clock
        )
    )
    return registry


class MetricsApp:
    """ASGI app serving ``registry`` in the format the scraper asks for (default: text 0.0.4).

    A class, not a function, so Starlette's ``Route`` treats it as an ASGI app. The exposition is
    built on the event loop's thread on purpose: the engine steps on that thread too, so a scrape
    reads its state between steps rather than during one.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain; charset=utf-8")
            return
        accept = ",".join(
            v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == b"accept"
        )
        encoder, content_type = choose_encoder(accept)
        body = encoder(self.registry)
        await _respond(send, 200, b"" if method == "HEAD" else body, content_type, len(body))


async def _respond(
    send: Send, status: int, body: bytes, content_type: str, length: int | None = None
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body) if length is None else length).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def metrics_app(registry: CollectorRegistry) -> MetricsApp:
    """The ``/metrics`` endpoint for ``registry``: mount with ``Route("/metrics", ...)``."""
    return MetricsApp(registry)


__all__ = ["MetricsApp", "StanchCollector", "build_registry", "metrics_app"]
