"""Per-series detection: closed points in, alerts (fired, updated, resolved) out.

One :class:`SeriesMonitor` per series watches four signals: request rate (spikes and drops),
errors (burst test on counts), SLO burn rate, and p95 latency. Each signal has its detector and
its own hysteresis; an alert carries an explanation of what was seen against what was expected,
and for load anomalies the clients that explain them.

Request rate and p95 latency are scored by :class:`~stanch.core.detectors.EnsembleDetector` by
default (``DetectionConfig.detector = "ensemble"``), or by the older
:class:`~stanch.core.detectors.RobustBaseline` (``"robust"``). The two speak differently:

* ``RobustBaseline`` gives a point-level z-score; its ``value`` stays above 0.5 for as long as
  the anomaly lasts, which is what a hysteresis gate (``fire_after`` bad points in a row) needs.
* The ensemble's ``value`` is *news*: it crosses 0.5 once, on the point where a surprise is new
  for this series, and is then muted. Its ``deviation`` (the z of the strongest of several time
  scales, against a robust level or a learned daily profile) stays high while the anomaly lasts.

So with the ensemble a point is bad only when its deviation passes the threshold and the
excursion is news (or overwhelming): :mod:`stanch.core.news_gate` decides that.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Final

from stanch.core.alert_text import explain, explaining_clients
from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.core.count_run import DeficitRun
from stanch.core.detectors import (
    BurnRateDetector,
    EnsembleDetector,
    ErrorBurstDetector,
    RobustBaseline,
    Score,
)
from stanch.core.detectors.base import NO_DATA
from stanch.core.detectors.burn_rate import BurnTier
from stanch.core.detectors.state import restore, snapshot
from stanch.core.hysteresis import Edge, Hysteresis
from stanch.core.news_gate import NewsGate
from stanch.core.series import SERVICE_WIDE, SeriesKey
from stanch.core.severity import Severity, assess_severity
from stanch.core.windows import Point

#: The detectors that may score request rate and p95 latency (``DetectionConfig.detector``).
DETECTORS: Final = ("ensemble", "robust")


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Detector settings; durations are in seconds and converted to points by the interval.

    ``detector`` picks what scores request rate and p95 latency: ``"ensemble"`` (the default) or
    ``"robust"`` (see the module docstring for how each is gated).
    """

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
    # SLO burn-rate tiers (see BurnRateDetector): the workbook's fast page, slow page, ticket.
    burn_long_s: float = 3600.0
    burn_short_s: float = 300.0
    burn_threshold: float = 14.4
    burn_slow_long_s: float = 21600.0
    burn_slow_short_s: float = 1800.0
    burn_slow_threshold: float = 6.0
    burn_ticket_long_s: float = 259200.0
    burn_ticket_short_s: float = 21600.0
    burn_ticket_threshold: float = 1.0
    latency_threshold: float = 6.0
    latency_min_change: float = 0.5
    latency_min_samples: int = 3
    detector: str = "ensemble"

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}"
            )
        for prefix, long_s, short_s, threshold, _ in self._burn_tier_settings():
            if not (0.0 < short_s <= long_s and math.isfinite(long_s)):
                raise ValueError(
                    f"{prefix}_short_s ({short_s:g}) must be positive and at most "
                    f"{prefix}_long_s ({long_s:g}), which must be finite"
                )
            if not (threshold > 0.0 and math.isfinite(threshold)):
                raise ValueError(f"{prefix}_threshold must be positive, got {threshold:g}")

    def points(self, seconds: float) -> int:
        return max(1, round(seconds / self.interval_s))

    def burn_tiers(self) -> tuple[BurnTier, ...]:
        """The SLO burn-rate tiers in points.

        Each tier is three flat fields rather than one list setting so that the detection YAML
        (``stanch.evaluation.tune``) reads, renders and tunes them like any other number; the
        ``burn_long_s``/``burn_short_s``/``burn_threshold`` of older configurations keep their
        meaning: the fast page tier."""
        return tuple(
            BurnTier(self.points(long_s), self.points(short_s), threshold, pages)
            for _, long_s, short_s, threshold, pages in self._burn_tier_settings()
        )

    def _burn_tier_settings(self) -> tuple[tuple[str, float, float, float, bool], ...]:
        """(field prefix, long s, short s, threshold, pages) of each tier."""
        return (
            ("burn", self.burn_long_s, self.burn_short_s, self.burn_threshold, True),
            (
                "burn_slow",
                self.burn_slow_long_s,
                self.burn_slow_short_s,
                self.burn_slow_threshold,
                True,
            ),
            (
                "burn_ticket",
                self.burn_ticket_long_s,
                self.burn_ticket_short_s,
                self.burn_ticket_threshold,
                False,
            ),
        )


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
        self.rate: RobustBaseline | EnsembleDetector
        self.latency: RobustBaseline | EnsembleDetector
        if config.detector == "ensemble":
            self.rate = _ensemble(config, "rate")
            self.latency = _ensemble(config, "latency_p95")  # fed log1p(p95): see _latency
        else:
            self.rate = _robust(config, "rate", config.spike_threshold, count_noise=True)
            self.latency = _robust(config, "latency_p95", config.latency_threshold, log=True)
        self.errors = ErrorBurstDetector(
            window=config.points(config.error_window_s),
            warmup=warmup,
            threshold=config.error_threshold,
            min_ratio=config.error_min_ratio,
            min_errors=config.error_min_errors,
            p_floor=config.error_p_floor,
        )
        self.burn = BurnRateDetector(
            config.burn_tiers(), objective=config.slo_objective, interval_s=config.interval_s
        )
        self._gates = {
            kind: Hysteresis(fire_after=config.fire_after, clear_after=config.clear_after)
            for kind in _SIGNAL_OF
        }
        self._share = _ShareWindow(config.points(30.0))
        self._news = NewsGate(gated=config.detector == "ensemble")
        self._run = DeficitRun()  # requests missing over the current run under expectation
        self._usual_run = DeficitRun(hold=False)  # the same, under the daily profile
        self._ticket_covered = False  # a page cleared while the ticket tier still burns
        self._escalated = False  # the open SLO page began as a ticket
        self.firing: dict[AlertKind, Alert] = {}
        self.last_scores: dict[AlertKind, Score] = {}
        # The point-level sigma behind the last rate and latency scores (req/s; log1p seconds),
        # NaN when unknown: with the ensemble the deviation is that of its strongest time
        # scale, so ``|observed - expected| / |deviation|`` is not a point's spread.
        self.spreads: dict[str, float] = {"rate": math.nan, "latency_p95": math.nan}
        self._rate_raw: Score = NO_DATA  # the rate detector's own last score, for explain()

    def snapshot(self) -> dict[str, Any]:
        """What this monitor has learned, as JSON-safe data (see ``detectors.state``)."""
        return {
            "detector": self.config.detector,
            "rate": snapshot(self.rate),
            "errors": snapshot(self.errors),
            "burn": snapshot(self.burn),
            "latency": snapshot(self.latency),
            "news": snapshot(self._news),
            "run": snapshot(self._run),
            "usual_run": snapshot(self._usual_run),
            "share": snapshot(self._share),
            "gates": {kind.value: snapshot(gate) for kind, gate in self._gates.items()},
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`. Rate and latency state saved by another kind of detector
        (a checkpoint from before ``detector`` changed; one without the key is from the robust
        era) is not loadable: those two signals warm up again instead."""
        if data.get("detector", "robust") == self.config.detector:
            restore(self.rate, data.get("rate", {}))
            restore(self.latency, data.get("latency", {}))
            restore(self._news, data.get("news", {}))
            restore(self._run, data.get("run", {}))
            restore(self._usual_run, data.get("usual_run", {}))
        restore(self.errors, data.get("errors", {}))
        restore(self.burn, data.get("burn", {}))
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
            if kind is AlertKind.SLO_BURN and score.has_data and not score.warming:
                score = self._burn_for_gate(score)
            self.last_scores[kind] = score
            # The run of bad points starts at the *start* of the first bad window: the onset.
            gate = self._gates[kind]
            credit = self._news.take_credit(_NEWS_SIGNAL.get(kind, ""))
            if credit is not None:
                gate.backdate(*credit)
            edge = gate.update(point.t, score)
            current = self.firing.get(kind)
            if edge is Edge.FIRED:
                alert = self._new_alert(kind, score, point, service_point)
                self.firing[kind] = alert
                changes.append(alert)
            elif edge is Edge.CLEARED and current is not None:
                del self.firing[kind]
                changes.append(current.resolve(t))
                if kind is AlertKind.SLO_BURN and current.severity > Severity.SEV4:
                    # The burn the outage left behind is the page's; a slow burn that was
                    # there before it (an escalated ticket) files its ticket again.
                    self._ticket_covered = not self._escalated
                    self._escalated = False
            elif current is not None and score.has_data and not score.warming:
                updated = replace(current, updated_at=t, observed=score.observed, score=score.value)
                if kind is AlertKind.SLO_BURN:
                    # A slow burn that turns fast escalates its ticket to a page (never back:
                    # an open page stays one until it clears).
                    now_severity = self._severity(kind, score, point, service_point)
                    if now_severity > current.severity:
                        self._escalated = current.severity <= Severity.SEV4
                        updated = replace(
                            updated,
                            severity=now_severity,
                            explanation=explain(
                                kind, score, self.key, point, (), self._detail(kind)
                            ),
                        )
                self.firing[kind] = updated
        return changes

    def _burn_for_gate(self, score: Score) -> Score:
        """The SLO score the alert gate sees. A page is judged on the page tiers alone, so it
        clears soon after the fix instead of when the ticket tier's 6 h window forgets the
        outage; and the slow burn that outage left behind files no ticket afterwards (the page
        said it all) until the ticket tier has stopped burning once."""
        if self.burn.value_of(pages=False) < 0.5:
            self._ticket_covered = False
        current = self.firing.get(AlertKind.SLO_BURN)
        paging = current is not None and current.severity > Severity.SEV4
        if paging or self._ticket_covered:
            return replace(score, value=self.burn.value_of(pages=True))
        return score

    def _score(self, point: Point) -> dict[AlertKind, Score]:
        cfg = self.config
        t = point.t_end
        self._news.begin_point()
        spike, drop = self._rate(t, point)
        if point.served > 0:
            errors = self.errors.update(t, float(point.errors), float(point.served))
            burn = self.burn.update(t, float(point.errors), float(point.served))
        else:
            errors = burn = NO_DATA
        if point.served >= cfg.latency_min_samples and not math.isnan(point.p95):
            latency = self._latency(point, point.p95)
        else:
            latency = NO_DATA
        return {
            AlertKind.TRAFFIC_SPIKE: spike,
            AlertKind.TRAFFIC_DROP: drop,
            AlertKind.ERROR_BURST: errors,
            AlertKind.SLO_BURN: burn,
            AlertKind.LATENCY_SPIKE: latency,
        }

    def _rate(self, t: float, point: Point) -> tuple[Score, Score]:
        """Spike and drop scores of the request rate.

        With the ensemble, the deviation is capped by the point's Poisson z,
        ``|rate - expected| / sqrt(max(expected, 1) / interval)``: the ensemble learns its
        spreads from the series (and a mean over several points has a small one), so without
        the cap a quiet route (2 req/s) with a few seconds' lull would read as a drop. This is
        the Poisson floor ``RobustBaseline(count_noise=True)`` has. What one point cannot show,
        a run of them can: the z of the requests missing over the current run of points under
        the expectation replaces the capped deviation when larger, and counts as strength (it
        may be overwhelming), so a quiet route that stays silent pages. Before that, a point
        the daily profile finds ordinary for this time of day is ordinary (see ``usual_at``),
        and the run is counted against that profile once it knows the hour.
        """
        cfg = self.config
        raw = self.rate.update(t, point.rate, point.interval)
        self._rate_raw = raw
        if raw.warming or not raw.has_data:
            self.spreads["rate"] = math.nan
            return raw, raw
        change = point.rate - raw.expected
        rate = raw
        strength = raw.deviation  # what may be overwhelming (see NewsGate.judge)
        if isinstance(self.rate, EnsembleDetector):
            poisson = math.sqrt(max(raw.expected, 1.0) / point.interval)
            spread = _point_spread(self.rate)
            limit = abs(change) / poisson
            deviation = math.copysign(min(abs(raw.deviation), limit), raw.deviation)
            # What happens every day at this hour is no anomaly, whichever baseline the
            # ensemble judged by (a level that slept through a night of zeros wakes up to
            # the morning ramp): when the daily profile knows this time of day and finds the
            # point less surprising, its verdict stands.
            usual, usual_spread = self.rate.usual_at(t)
            if usual == usual:
                floor = math.sqrt(max(usual, 1.0) / point.interval)
                usual_z = (point.rate - usual) / max(usual_spread, floor)
                if abs(usual_z) < abs(deviation):
                    deviation = strength = usual_z
            # A run of points all under the expectation adds up: a quiet route that stays
            # silent becomes a drop once sqrt(rate * seconds) passes the threshold, however
            # small each point's own surprise (see core.count_run). Judged against the daily
            # profile once it knows this hour (the night's silence is expected), else against
            # the ensemble's expectation. Deficits only: after an outage the baseline has
            # sagged, and the traffic coming back is no spike.
            dispersion = (spread / poisson) ** 2 if spread == spread else 1.0
            run_z = -self._run.push(point.rate, raw.expected, point.interval, dispersion)
            if usual == usual:
                usual_dispersion = usual_spread**2 * point.interval / max(usual, 1.0)
                run_z = -self._usual_run.push(point.rate, usual, point.interval, usual_dispersion)
            else:
                self._usual_run.reset()
            if run_z < min(deviation, 0.0):
                deviation = strength = run_z
            rate = replace(raw, deviation=deviation)
            self.spreads["rate"] = max(spread, poisson)
        relative = abs(change) / max(raw.expected, 1e-9)
        big_enough = relative >= cfg.min_rate_change
        spike_ok = big_enough and change >= cfg.min_spike_rps
        news = raw.value >= 0.5
        spike = replace(
            rate,
            value=self._news.judge(
                "spike",
                point.t,
                news,
                rate.deviation,
                rate.deviation if spike_ok else 0.0,
                cfg.spike_threshold,
                strength,
            ),
        )
        drop = replace(
            rate,
            value=self._news.judge(
                "drop",
                point.t,
                news,
                -rate.deviation,
                -rate.deviation if big_enough else 0.0,
                cfg.drop_threshold,
                -strength,
            ),
        )
        return spike, drop

    def _latency(self, point: Point, p95: float) -> Score:
        """The p95 latency score: judged in log space (a doubling is as surprising at 50 ms as
        at 2 s), upwards only, and only with a relative rise of ``latency_min_change``."""
        cfg = self.config
        if isinstance(self.latency, EnsembleDetector):
            raw = self.latency.update(point.t_end, math.log1p(max(p95, 0.0)))
            if not raw.has_data:
                return raw
            # Back to seconds for alerts and charts; the deviation stays in log space.
            latency = replace(raw, observed=p95, expected=math.expm1(raw.expected))
            if latency.warming:
                self.spreads["latency_p95"] = math.nan
                return latency
            self.spreads["latency_p95"] = _point_spread(self.latency)
        else:
            raw = latency = self.latency.update(point.t_end, p95)
            if latency.warming:
                return latency
        rise_ok = latency.expected > 0 and latency.observed >= latency.expected * (
            1.0 + cfg.latency_min_change
        )
        value = self._news.judge(
            "latency",
            point.t,
            raw.value >= 0.5,
            latency.deviation,
            latency.deviation if rise_ok else 0.0,
            cfg.latency_threshold,
        )
        return replace(latency, value=value)

    def _new_alert(
        self, kind: AlertKind, score: Score, point: Point, service_point: Point | None
    ) -> Alert:
        since = self._gates[kind].since
        started = since if since is not None else point.t
        share = self._share.share()
        clients: tuple[str, ...] = ()
        if kind is AlertKind.TRAFFIC_SPIKE:
            clients = explaining_clients(point, point.rate - score.expected)
        severity = self._severity(kind, score, point, service_point)
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
            explanation=explain(kind, score, self.key, point, clients, self._detail(kind)),
            clients=clients,
            labels={"share": f"{share:.4f}"},
        )

    def _severity(
        self, kind: AlertKind, score: Score, point: Point, service_point: Point | None
    ) -> Severity:
        total = service_point.requests if service_point and service_point.requests else 0
        share = self._share.share()
        if kind is AlertKind.TRAFFIC_SPIKE:
            excess = (point.rate - score.expected) * point.interval  # requests, not req/s
            normal_total = max(total - excess, 1.0) if total else 1.0
            return assess_severity(excess_load=excess / normal_total)
        if kind is AlertKind.TRAFFIC_DROP:
            lost = max(score.expected - point.rate, 0.0) * point.interval
            return assess_severity(lost_share=lost / max(total + lost, 1.0))
        if kind is AlertKind.SLO_BURN and not _pages(self.burn.driving_tier()):
            return Severity.SEV4  # a slow burn files a ticket; it wakes no one
        if kind in (AlertKind.ERROR_BURST, AlertKind.SLO_BURN):
            ratio = score.observed if kind is AlertKind.ERROR_BURST else point.error_ratio
            return assess_severity(failing_share=share * ratio, burn=self.burn.page_burn())
        return assess_severity(slow_share=share)

    def _detail(self, kind: AlertKind) -> str:
        """The ensemble's own account of a rate alert (which baseline, which time scale), or
        the burn-rate detector's of an SLO alert (which tier, over which windows)."""
        if kind is AlertKind.SLO_BURN:
            return self.burn.explain(self.last_scores.get(kind, NO_DATA))
        if kind in (AlertKind.TRAFFIC_SPIKE, AlertKind.TRAFFIC_DROP) and isinstance(
            self.rate, EnsembleDetector
        ):
            return self.rate.explain(self._rate_raw)
        return ""


def _pages(tier: BurnTier | None) -> bool:
    """Whether an SLO alert driven by ``tier`` is a page (True too when unknown: the safe side)."""
    return tier is None or tier.pages


def _robust(
    config: DetectionConfig,
    name: str,
    threshold: float,
    *,
    count_noise: bool = False,
    log: bool = False,
) -> RobustBaseline:
    """The robust z-score for one signal (``detector: robust``)."""
    return RobustBaseline(
        half_life=config.points(config.rate_half_life_s),
        warmup=config.points(config.warmup_s),
        threshold=threshold,
        count_noise=count_noise,
        log=log,
        name=name,
    )


def _ensemble(config: DetectionConfig, name: str) -> EnsembleDetector:
    """The ensemble for one signal, with the configuration's half-life and warm-up.

    The first half of the warm-up learns the baselines, the second half the series' usual
    surprises (the ensemble's ``quiet`` period: the news of a fresh detector means nothing);
    the signal is judged after ``warmup_s`` either way, as with ``RobustBaseline``.
    """
    warmup = config.points(config.warmup_s)
    return EnsembleDetector(
        half_life=config.points(config.rate_half_life_s),
        warmup=max(1, warmup // 2),
        quiet=warmup,
        name=name,
    )


def _point_spread(detector: EnsembleDetector) -> float:
    """The ensemble's point-level sigma for its last point, NaN when it has none yet."""
    return detector.spread if detector.spread > 0 else math.nan


_NEWS_SIGNAL: Final = {
    AlertKind.TRAFFIC_SPIKE: "spike",
    AlertKind.TRAFFIC_DROP: "drop",
    AlertKind.LATENCY_SPIKE: "latency",
}


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
