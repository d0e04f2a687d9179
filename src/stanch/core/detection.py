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
from dataclasses import replace
from typing import Any, ClassVar, Final

from stanch.core.alert_text import explain, explaining_clients
from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors import (
    BurnRateDetector,
    EnsembleDetector,
    ErrorBurstDetector,
    RobustBaseline,
    Score,
)
from stanch.core.detectors.base import HOLD_SCORE, NO_DATA
from stanch.core.detectors.state import restore, snapshot
from stanch.core.hysteresis import Edge, Hysteresis
from stanch.core.level_hold import LevelHold
from stanch.core.news_gate import NewsGate
from stanch.core.rate_signal import RateSignal, point_spread
from stanch.core.series import SeriesKey
from stanch.core.severity import Severity, assess_severity
from stanch.core.slo_paging import SloPaging
from stanch.core.windows import Point

_SIGNAL_OF = {
    AlertKind.TRAFFIC_SPIKE: "rate",
    AlertKind.TRAFFIC_DROP: "rate",
    AlertKind.ERROR_BURST: "errors",
    AlertKind.SLO_BURN: "errors",
    AlertKind.LATENCY_SPIKE: "latency_p95",
}
# Alerts on a level the detectors learn, held while the level lasts (see core/level_hold.py).
_LEVEL_KINDS: Final = frozenset(
    {AlertKind.TRAFFIC_SPIKE, AlertKind.TRAFFIC_DROP, AlertKind.LATENCY_SPIKE}
)


class SeriesMonitor:
    """Detectors and hysteresis for one series; holds the alerts currently firing on it."""

    def __init__(self, key: SeriesKey, config: DetectionConfig) -> None:
        self.key = key
        self.config = config
        warmup = config.points(config.warmup_s)
        self.latency: RobustBaseline | EnsembleDetector
        if config.detector == "ensemble":
            self._rate_signal = RateSignal(_ensemble(config, "rate"))
            self.latency = _ensemble(config, "latency_p95")  # fed log1p(p95): see _latency
        else:
            self._rate_signal = RateSignal(
                _robust(config, "rate", config.spike_threshold, count_noise=True)
            )
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
        self._slo = SloPaging(self.burn)
        self.firing: dict[AlertKind, Alert] = {}
        self._holds: dict[AlertKind, LevelHold] = {}
        self.last_scores: dict[AlertKind, Score] = {}
        # The point-level sigma behind the last rate and latency scores (req/s; log1p seconds),
        # NaN when unknown: with the ensemble the deviation is that of its strongest time
        # scale, so ``|observed - expected| / |deviation|`` is not a point's spread.
        self.spreads: dict[str, float] = {"rate": math.nan, "latency_p95": math.nan}

    @property
    def rate(self) -> RobustBaseline | EnsembleDetector:
        """The detector scoring the request rate (see :mod:`stanch.core.rate_signal`)."""
        return self._rate_signal.detector

    def snapshot(self) -> dict[str, Any]:
        """What this monitor has learned, as JSON-safe data (see ``detectors.state``)."""
        return {
            "detector": self.config.detector,
            "rate": snapshot(self.rate),
            "errors": snapshot(self.errors),
            "burn": snapshot(self.burn),
            "latency": snapshot(self.latency),
            "news": snapshot(self._news),
            "run": snapshot(self._rate_signal.run),
            "usual_run": snapshot(self._rate_signal.usual_run),
            "calm": snapshot(self._rate_signal.calm),
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
            restore(self._rate_signal.run, data.get("run", {}))
            restore(self._rate_signal.usual_run, data.get("usual_run", {}))
            restore(self._rate_signal.calm, data.get("calm", {}))
        restore(self.errors, data.get("errors", {}))
        restore(self.burn, data.get("burn", {}))
        restore(self._share, data.get("share", {}))
        for kind, gate in self._gates.items():
            restore(gate, data.get("gates", {}).get(kind.value, {}))

    @property
    def share(self) -> float:
        """This series' share of its service's requests over the last half minute."""
        return self._share.share()

    def troubled(self, kind: AlertKind) -> bool:
        """Whether ``kind`` fires on this series or is in a run of bad points that may fire:
        what a service-wide alert of that kind may be made of."""
        return self._gates[kind].troubled

    def rearm(self, alert: Alert) -> None:
        """Mark ``alert`` as firing again (after a restart): it clears only on fresh evidence."""
        self.firing[alert.kind] = alert
        self._gates[alert.kind].firing = True
        if alert.kind in _LEVEL_KINDS:
            self._holds[alert.kind] = self._hold(alert.kind, alert.expected, alert.started_at)

    def observe(self, point: Point, service_point: Point | None) -> list[Alert]:
        """Score one closed point; return alerts that fired or resolved on it."""
        t = point.t_end
        self._share.push(point.requests, service_point.requests if service_point else 0)
        scores = self._score(point)
        changes: list[Alert] = []
        for kind, score in scores.items():
            if kind is AlertKind.SLO_BURN and score.has_data and not score.warming:
                score = self._slo.gate_score(score, self.firing.get(kind))
            hold = self._holds.get(kind)
            if (
                hold is not None
                and score.has_data
                and not score.warming
                and score.value < HOLD_SCORE
                and hold.holds(point.t, score.observed)
            ):
                score = _with_value(score, HOLD_SCORE)
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
                if kind in _LEVEL_KINDS:
                    self._holds[kind] = self._hold(kind, score.expected, point.t)
                changes.append(alert)
            elif edge is Edge.CLEARED and current is not None:
                del self.firing[kind]
                self._holds.pop(kind, None)
                changes.append(current.resolve(t))
                if kind is AlertKind.SLO_BURN:
                    self._slo.cleared(current)
            elif current is not None and score.has_data and not score.warming:
                updated = replace(current, updated_at=t, observed=score.observed, score=score.value)
                if kind is AlertKind.SLO_BURN:
                    # A slow burn that turns fast escalates its ticket to a page.
                    now_severity = self._severity(kind, score, point, service_point)
                    if self._slo.escalates(current.severity, now_severity):
                        updated = replace(
                            updated,
                            severity=now_severity,
                            explanation=explain(
                                kind, score, self.key, point, (), self._detail(kind)
                            ),
                        )
                self.firing[kind] = updated
        return changes

    def _hold(self, kind: AlertKind, expected: float, since: float) -> LevelHold:
        """The hold of a level alert: see :mod:`stanch.core.level_hold`."""
        cfg = self.config
        if kind is AlertKind.LATENCY_SPIKE:
            return LevelHold(
                expected, 1, since, min_change=cfg.latency_min_change, min_points=cfg.clear_after
            )
        return LevelHold(
            expected,
            1 if kind is AlertKind.TRAFFIC_SPIKE else -1,
            since,
            min_change=cfg.min_rate_change,
            interval=cfg.interval_s,
            min_points=cfg.clear_after,
        )

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
            # The SLO windows span time, not requests: a quiet route's "6 h" is six hours.
            self.burn.idle()
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
        """Spike and drop scores of the request rate: the rate signal's verdict (see
        :mod:`stanch.core.rate_signal`) through the news gate, each direction with its own
        threshold and guards (``min_rate_change``, and ``min_spike_rps`` for spikes)."""
        cfg = self.config
        reading = self._rate_signal.update(t, point.rate, point.interval)
        rate = reading.score
        self.spreads["rate"] = self._rate_signal.spread
        if rate.warming or not rate.has_data:
            return rate, rate
        change = point.rate - rate.expected
        relative = abs(change) / max(rate.expected, 1e-9)
        big_enough = relative >= cfg.min_rate_change
        spike_ok = big_enough and change >= cfg.min_spike_rps
        deviation, strength = rate.deviation, reading.strength
        spike = self._news.judge(
            "spike",
            point.t,
            reading.news,
            deviation,
            deviation if spike_ok else 0.0,
            cfg.spike_threshold,
            strength,
        )
        drop = self._news.judge(
            "drop",
            point.t,
            reading.news,
            -deviation,
            -deviation if big_enough else 0.0,
            cfg.drop_threshold,
            -strength,
        )
        return _with_value(rate, spike), _with_value(rate, drop)

    def _latency(self, point: Point, p95: float) -> Score:
        """The p95 latency score: judged in log space (a doubling is as surprising at 50 ms as
        at 2 s), upwards only, and only with a relative rise of ``latency_min_change``."""
        cfg = self.config
        if isinstance(self.latency, EnsembleDetector):
            raw = self.latency.update(point.t_end, math.log1p(max(p95, 0.0)))
            if not raw.has_data:
                return raw
            # Back to seconds for alerts and charts; the deviation stays in log space.
            latency = Score(
                raw.value, p95, math.expm1(raw.expected), raw.deviation, raw.warming, True
            )
            if latency.warming:
                self.spreads["latency_p95"] = math.nan
                return latency
            self.spreads["latency_p95"] = point_spread(self.latency)
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
        return _with_value(latency, value)

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
        if kind is AlertKind.SLO_BURN and self._slo.ticket_only():
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
        if kind in (AlertKind.TRAFFIC_SPIKE, AlertKind.TRAFFIC_DROP):
            return self._rate_signal.explain()
        return ""


def _with_value(score: Score, value: float) -> Score:
    """``score`` with another value: ``dataclasses.replace`` costs a few microseconds per
    call, and every point of every series takes several."""
    return Score(
        value, score.observed, score.expected, score.deviation, score.warming, score.has_data
    )


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
