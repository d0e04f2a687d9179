"""Per-series detection: closed points in, alerts (fired, updated, resolved) out.

One :class:`SeriesMonitor` per series watches four signals: request rate (spikes and drops),
errors (burst test on counts), SLO burn rate, and p95 latency. Each signal has its detector and
its own hysteresis; an alert carries an explanation of what was seen against what was expected,
and for load anomalies the clients that explain them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.core.detectors import BurnRateDetector, ErrorBurstDetector, RobustBaseline, Score
from stanch.core.detectors.base import NO_DATA, squash
from stanch.core.detectors.state import restore, snapshot
from stanch.core.hysteresis import Edge, Hysteresis
from stanch.core.series import SERVICE_WIDE, SeriesKey
from stanch.core.severity import Severity, assess_severity
from stanch.core.windows import Point


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Detector settings; durations are in seconds and converted to points by the interval."""

    interval_s: float = 1.0
    warmup_s: float = 120.0
    fire_after: int = 3
    clear_after: int = 10
    rate_half_life_s: float = 600.0
    spike_threshold: float = 6.0
    drop_threshold: float = 4.0
    min_rate_change: float = 0.5  # relative change a rate anomaly needs, on top of the z-test
    min_spike_rps: float = 2.0  # absolute extra load a spike needs
    error_window_s: float = 5.0
    error_threshold: float = 7.0
    error_min_ratio: float = 0.03
    error_min_errors: int = 3
    error_p_floor: float = 0.002
    slo_objective: float = 0.99
    burn_long_s: float = 3600.0
    burn_short_s: float = 300.0
    burn_threshold: float = 14.4
    latency_threshold: float = 6.0
    latency_min_change: float = 0.5
    latency_min_samples: int = 3

    def points(self, seconds: float) -> int:
        return max(1, round(seconds / self.interval_s))


def route_config(
    route: str, defaults: DetectionConfig, routes: Mapping[str, DetectionConfig]
) -> DetectionConfig:
    """The settings of one series: an exact route key, else the first glob that matches it (in
    order), else ``defaults``. The key ``"*"`` names the service-wide series only; it is not a
    glob for "every route" (that is what ``defaults`` are)."""
    exact = routes.get(route)
    if exact is not None:
        return exact
    if route != SERVICE_WIDE:
        for glob, config in routes.items():
            if glob != SERVICE_WIDE and fnmatchcase(route, glob):
                return config
    return defaults


_SIGNAL_OF = {
    AlertKind.TRAFFIC_SPIKE: "rate",
    AlertKind.TRAFFIC_DROP: "rate",
    AlertKind.ERROR_BURST: "errors",
    AlertKind.SLO_BURN: "errors",
    AlertKind.LATENCY_SPIKE: "latency_p95",
}


class SeriesMonitor:
    """Detectors and hysteresis for one series; holds the alerts currently firing on it."""

    def __init__(self, key: SeriesKey, config: DetectionConfig) -> None:
        self.key = key
        self.config = config
        warmup = config.points(config.warmup_s)
        self.rate = RobustBaseline(
            half_life=config.points(config.rate_half_life_s),
            warmup=warmup,
            threshold=config.spike_threshold,
            count_noise=True,
            name="rate",
        )
        self.errors = ErrorBurstDetector(
            window=config.points(config.error_window_s),
            warmup=warmup,
            threshold=config.error_threshold,
            min_ratio=config.error_min_ratio,
            min_errors=config.error_min_errors,
            p_floor=config.error_p_floor,
        )
        self.burn = BurnRateDetector(
            objective=config.slo_objective,
            long_points=config.points(config.burn_long_s),
            short_points=config.points(config.burn_short_s),
            burn_threshold=config.burn_threshold,
        )
        self.latency = RobustBaseline(
            half_life=config.points(config.rate_half_life_s),
            warmup=warmup,
            threshold=config.latency_threshold,
            log=True,
            name="latency_p95",
        )
        self._gates = {
            kind: Hysteresis(fire_after=config.fire_after, clear_after=config.clear_after)
            for kind in _SIGNAL_OF
        }
        self._share = _ShareWindow(config.points(30.0))
        self.firing: dict[AlertKind, Alert] = {}
        self.last_scores: dict[AlertKind, Score] = {}

    def snapshot(self) -> dict[str, Any]:
        """What this monitor has learned, as JSON-safe data (see ``detectors.state``)."""
        return {
            "rate": snapshot(self.rate),
            "errors": snapshot(self.errors),
            "burn": snapshot(self.burn),
            "latency": snapshot(self.latency),
            "share": snapshot(self._share),
            "gates": {kind.value: snapshot(gate) for kind, gate in self._gates.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        restore(self.rate, data.get("rate", {}))
        restore(self.errors, data.get("errors", {}))
        restore(self.burn, data.get("burn", {}))
        restore(self.latency, data.get("latency", {}))
        restore(self._share, data.get("share", {}))
        for kind, gate in self._gates.items():
            restore(gate, data.get("gates", {}).get(kind.value, {}))

    @property
    def share(self) -> float:
        """This series' share of its service's requests over the last half minute."""
        return self._share.share()

    def rearm(self, alert: Alert) -> None:
        """Mark ``alert`` as firing again (after a restart): it clears only on fresh evidence."""
        self.firing[alert.kind] = alert
        self._gates[alert.kind].firing = True

    def observe(self, point: Point, service_point: Point | None) -> list[Alert]:
        """Score one closed point; return alerts that fired or resolved on it."""
        t = point.t_end
        self._share.push(point.requests, service_point.requests if service_point else 0)
        scores = self._score(point)
        changes: list[Alert] = []
        for kind, score in scores.items():
            self.last_scores[kind] = score
            # The run of bad points starts at the *start* of the first bad window: the onset.
            edge = self._gates[kind].update(point.t, score)
            current = self.firing.get(kind)
            if edge is Edge.FIRED:
                alert = self._new_alert(kind, score, point, service_point)
                self.firing[kind] = alert
                changes.append(alert)
            elif edge is Edge.CLEARED and current is not None:
                del self.firing[kind]
                changes.append(current.resolve(t))
            elif current is not None and score.has_data and not score.warming:
                self.firing[kind] = replace(
                    current, updated_at=t, observed=score.observed, score=score.value
                )
        return changes

    def _score(self, point: Point) -> dict[AlertKind, Score]:
        cfg = self.config
        t = point.t_end
        rate = self.rate.update(t, point.rate, point.interval)
        spike = drop = rate
        if not rate.warming:
            change = point.rate - rate.expected
            relative = abs(change) / max(rate.expected, 1e-9)
            big_enough = relative >= cfg.min_rate_change
            spike_ok = big_enough and change >= cfg.min_spike_rps
            spike = replace(
                rate, value=squash(rate.deviation, cfg.spike_threshold) if spike_ok else 0.0
            )
            drop = replace(
                rate, value=squash(-rate.deviation, cfg.drop_threshold) if big_enough else 0.0
            )
        if point.served > 0:
            errors = self.errors.update(t, float(point.errors), float(point.served))
            burn = self.burn.update(t, float(point.errors), float(point.served))
        else:
            errors = burn = NO_DATA
        if point.served >= cfg.latency_min_samples and not math.isnan(point.p95):
            latency = self.latency.update(t, point.p95)
            if latency.expected > 0 and latency.observed < latency.expected * (
                1.0 + cfg.latency_min_change
            ):
                latency = replace(latency, value=0.0)
        else:
            latency = NO_DATA
        return {
            AlertKind.TRAFFIC_SPIKE: spike,
            AlertKind.TRAFFIC_DROP: drop,
            AlertKind.ERROR_BURST: errors,
            AlertKind.SLO_BURN: burn,
            AlertKind.LATENCY_SPIKE: latency,
        }

    def _new_alert(
        self, kind: AlertKind, score: Score, point: Point, service_point: Point | None
    ) -> Alert:
        since = self._gates[kind].since
        started = since if since is not None else point.t
        total = service_point.requests if service_point and service_point.requests else 0
        share = self._share.share()
        clients: tuple[str, ...] = ()
        if kind is AlertKind.TRAFFIC_SPIKE:
            clients = explaining_clients(point, point.rate - score.expected)
            excess = (point.rate - score.expected) * point.interval  # requests, not req/s
            normal_total = max(total - excess, 1.0) if total else 1.0
            severity = assess_severity(excess_load=excess / normal_total)
        elif kind is AlertKind.TRAFFIC_DROP:
            lost = max(score.expected - point.rate, 0.0) * point.interval
            severity = assess_severity(lost_share=lost / max(total + lost, 1.0))
        elif kind in (AlertKind.ERROR_BURST, AlertKind.SLO_BURN):
            long_burn, _ = self.burn.burn()
            ratio = score.observed if kind is AlertKind.ERROR_BURST else point.error_ratio
            severity = assess_severity(failing_share=share * ratio, burn=long_burn)
        else:
            severity = assess_severity(slow_share=share)
        return Alert(
            fingerprint=fingerprint(self.key.service, self.key.route, kind.value),
            kind=kind,
            service=self.key.service,
            route=self.key.route,
            signal=_SIGNAL_OF[kind],
            severity=severity,
            status=AlertStatus.FIRING,
            started_at=started,
            updated_at=point.t_end,
            observed=score.observed,
            expected=score.expected,
            score=score.value,
            explanation=explain(kind, score, self.key, point, clients),
            clients=clients,
            labels={"share": f"{share:.4f}"},
        )


class _ShareWindow:
    STATE: ClassVar[tuple[str, ...]] = ("_own", "_total", "own", "total")

    """This series' share of its service's requests over the last few points.

    Severity from one second's share would swing with every burst of arrivals; half a minute
    is steady enough to grade, and short enough to follow a flood.
    """

    __slots__ = ("_own", "_total", "own", "total")

    def __init__(self, size: int) -> None:
        self._own: deque[int] = deque(maxlen=size)
        self._total: deque[int] = deque(maxlen=size)
        self.own = 0
        self.total = 0

    def push(self, own: int, total: int) -> None:
        if len(self._own) == self._own.maxlen:
            self.own -= self._own[0]
            self.total -= self._total[0]
        self._own.append(own)
        self._total.append(total)
        self.own += own
        self.total += total

    def share(self) -> float:
        return min(1.0, self.own / self.total) if self.total > 0 else 1.0


def explaining_clients(point: Point, excess: float, top: int = 3) -> tuple[str, ...]:
    """Clients whose requests make up at least a third of the excess load, biggest first."""
    if excess <= 0 or not point.clients:
        return ()
    per_second = {c: s.requests / point.interval for c, s in point.clients.items()}
    ranked = sorted(per_second.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(c for c, rps in ranked[:top] if rps >= excess / 3.0 and c != "__other__")


def explain(
    kind: AlertKind, score: Score, key: SeriesKey, point: Point, clients: tuple[str, ...]
) -> str:
    where = f"{key.service} {key.route}" if not key.is_service_wide else f"service {key.service}"
    if kind is AlertKind.TRAFFIC_SPIKE or kind is AlertKind.TRAFFIC_DROP:
        text = (
            f"request rate {score.observed:.1f}/s vs baseline {score.expected:.1f}/s "
            f"(z={score.deviation:+.1f}), {where}"
        )
        if clients:
            shares = ", ".join(
                f"{c} {point.clients[c].requests / max(point.requests, 1):.0%}" for c in clients
            )
            text += f"; explained by client(s) {shares} of requests"
        return text
    if kind is AlertKind.ERROR_BURST:
        return (
            f"error ratio {score.observed:.1%} vs baseline {score.expected:.2%} "
            f"({point.errors} of {point.served} requests failed in the last second), {where}"
        )
    if kind is AlertKind.SLO_BURN:
        return (
            f"SLO burn rate {score.observed:.1f}x vs page threshold {score.expected:.1f}x, {where}"
        )
    return (
        f"p95 latency {score.observed * 1000:.0f} ms vs baseline {score.expected * 1000:.0f} ms, "
        f"{where}"
    )


def worst(severities: list[Severity]) -> Severity:
    return max(severities) if severities else Severity.SEV4
