"""Error bursts judged as counts, not ratios.

A per-second error *ratio* on a route serving five requests a second jumps from 0% to 20% on a
single unlucky request; a z-score on it pages all night. This detector instead asks how
surprising the number of errors in the last ``window`` points is, given the requests served in
them and the learned baseline error probability: the Poisson tail probability of seeing at least
that many. Surprise is ``-log10(p)``, so the default threshold 7 means "one in ten million".
An effect-size floor (``min_ratio``, ``min_errors``) keeps statistically real but harmless
blips (3 errors where 0.3 were expected, on a 0.1% baseline) from paging.

**A burst in progress is over only when the evidence says so.** On a route serving 20 req/s a
sustained 5% error ratio puts about 5 errors in a 5-point window, right at the threshold: the
window dips under it every few seconds, and a gate that clears on ten such dips resolved and
re-fired the alert four or five times in fifteen minutes of steady failure. Once a window has
crossed the threshold the detector holds its score at ``HOLD_SCORE`` (between the gates' ``off``
0.4 and ``on`` 0.5: it fires nothing, and nothing counts as recovered) while

* the errors over the last ``hold`` points (30 by default, six windows) are still surprising
  (``-log10`` tail above ``recover``, "one in a thousand", at half the ratio floor), and
* the run of error-free requests since the last error is too short to tell the burst is over:
  at the burst's own ratio ``p``, ``n`` clean requests happen with chance ``exp(-n p)``, and
  the burst is over once that is under ``10^-threshold``: calling it over takes the same odds
  as calling it.

So a busy route resolves a few seconds after its errors stop (the clean run speaks fast) and a
quiet one once its last errors leave the longer window. Nothing is learned while the hold
lasts: fifteen minutes of failure would otherwise move the baseline.

>>> d = ErrorBurstDetector(window=5, warmup=10)
>>> for t in range(100):
...     _ = d.update(float(t), 0.0, 20.0)
>>> d.update(100.0, 6.0, 20.0).value > 0.5
True
"""

from __future__ import annotations

import math
from collections import deque
from itertools import islice
from typing import ClassVar

from stanch.core.detectors.base import HOLD_SCORE, NO_DATA, Score, squash


def poisson_sf_log10(k: int, lam: float) -> float:
    """log10 of P(X >= k) for X ~ Poisson(lam); exact for small k, stable for large ones."""
    if k <= 0:
        return 0.0
    if lam <= 0.0:
        return -math.inf
    log_term = -lam + k * math.log(lam) - math.lgamma(k + 1)
    total = 1.0
    term = 1.0
    i = k
    # Terms past k shrink by lam/(i+1); when k is below lam they grow first, so the upper tail
    # is computed as 1 - lower tail instead.
    if k > lam:
        while term > 1e-12 * total and i < k + 10_000:
            i += 1
            term *= lam / i
            total += term
        return (log_term + math.log(total)) / math.log(10)
    lower = 0.0
    term_l = math.exp(-lam)
    for j in range(k):
        lower += term_l
        term_l *= lam / (j + 1)
    upper = max(1.0 - lower, 1e-300)
    return math.log10(upper)


class ErrorBurstDetector:
    """Poisson tail test on errors over a short window against a slowly learned error rate."""

    STATE: ClassVar[tuple[str, ...]] = (
        "_errors",
        "_served",
        "_ew_errors",
        "_ew_served",
        "_count",
        "_bursting",
        "_clean_served",
    )
    __slots__ = (
        "_bursting",
        "_clean_served",
        "_count",
        "_errors",
        "_ew_errors",
        "_ew_served",
        "_served",
        "alpha",
        "hold",
        "min_errors",
        "min_ratio",
        "name",
        "p_floor",
        "recover",
        "threshold",
        "warmup",
        "window",
    )

    def __init__(
        self,
        *,
        window: int = 5,
        half_life: float = 1800.0,
        warmup: int = 60,
        threshold: float = 7.0,
        p_floor: float = 0.002,
        min_ratio: float = 0.03,
        min_errors: int = 3,
        hold: int | None = None,
        recover: float = 3.0,
        name: str = "error_burst",
    ) -> None:
        if window < 1 or half_life <= 0 or warmup < 1 or threshold <= 0:
            raise ValueError("window, half_life, warmup and threshold must be positive")
        hold = 6 * window if hold is None else hold
        if hold < window or not 0.0 < recover < threshold:
            raise ValueError("need hold >= window and 0 < recover < threshold")
        if not 0.0 < p_floor < 1.0:
            raise ValueError("p_floor must be in (0, 1): a route never seen failing can still fail")
        self.window = window
        self.alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.warmup = warmup
        self.threshold = threshold
        self.p_floor = p_floor
        self.min_ratio = min_ratio
        self.min_errors = min_errors
        self.hold = hold
        self.recover = recover
        self.name = name
        # The last ``hold`` points; the test window is the newest ``window`` of them.
        self._errors: deque[float] = deque(maxlen=hold)
        self._served: deque[float] = deque(maxlen=hold)
        self._ew_errors = 0.0
        self._ew_served = 0.0
        self._count = 0
        self._bursting = False  # a window crossed the threshold and the burst is not over
        self._clean_served = 0.0  # requests served since the last error

    @property
    def baseline(self) -> float:
        """Learned probability that a served request fails."""
        return self._ew_errors / self._ew_served if self._ew_served > 0 else 0.0

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        """``value`` is the number of errors among ``weight`` served requests; a count that is
        negative or larger than ``weight`` is corrupt (an error ratio over 100 % pages nobody
        usefully) and is no data, like NaN."""
        if not (math.isfinite(value) and 0.0 < weight < math.inf):  # NaN, +-inf: no data
            return NO_DATA
        if not 0.0 <= value <= weight:
            return NO_DATA
        self._errors.append(value)
        self._served.append(weight)
        self._clean_served = 0.0 if value > 0 else self._clean_served + weight
        errors = sum(islice(reversed(self._errors), self.window))
        served = sum(islice(reversed(self._served), self.window))
        p = max(self.baseline, self.p_floor)
        expected = served * p
        ratio = errors / served
        warming = self._count < self.warmup
        surprise = self._surprise(errors, served, p) if not warming else 0.0
        value_now = squash(surprise, self.threshold)
        if surprise >= self.threshold:
            self._bursting = True
        elif self._bursting:
            self._bursting = self._still_bursting(p)
            if self._bursting:
                value_now = max(value_now, HOLD_SCORE)
        self._learn(value, weight, surprise)
        deviation = (errors - expected) / math.sqrt(max(expected, 1e-9))
        return Score(
            value_now,
            observed=ratio,
            expected=p,
            deviation=deviation,
            warming=warming,
        )

    def _surprise(self, errors: float, served: float, p: float, floor: float = 1.0) -> float:
        """``-log10`` of the chance of that many errors among ``served`` at ratio ``p``; 0
        under the effect-size floors (too few errors, or too small a ratio, to page on),
        scaled by ``floor``."""
        if errors < self.min_errors or errors / served < self.min_ratio * floor:
            return 0.0
        return -poisson_sf_log10(round(errors), served * p)

    def _still_bursting(self, p: float) -> bool:
        """Is the burst that crossed the threshold still going on (see the module docstring)?"""
        errors, served = sum(self._errors), sum(self._served)
        if self._surprise(errors, served, p, floor=0.5) < self.recover:
            return False  # the longer window no longer shows it (at half the ratio floor:
            # a 5% burst whose window dips to 2.9% has not ended)
        burst_ratio = errors / served
        return self._clean_served * burst_ratio < self.threshold * math.log(10.0)

    def _learn(self, errors: float, served: float, surprise: float) -> None:
        # A ratio of two decayed sums weights each second by its traffic, so a quiet second
        # with one failure moves the baseline less than a busy one.
        self._count += 1
        if self._count > self.warmup and (surprise >= self.threshold or self._bursting):
            return  # an incident in progress is not the new normal
        keep = 1.0 - self.alpha
        self._ew_errors = self._ew_errors * keep + errors
        self._ew_served = self._ew_served * keep + served

    def explain(self, score: Score) -> str:
        """One line a responder can read: the error ratio over the window vs the learned one, and
        how unlikely that many errors are by chance (the verdict is a Poisson tail, so odds say
        more than a z-score)."""
        if not score.has_data:
            return "no data: no request was served at this point"
        seen = (
            f"error ratio {score.observed:.2%} over the last {self.window} points "
            f"vs baseline {score.expected:.2%}"
        )
        if score.warming:
            return f"{seen}; still learning the baseline ({self.warmup}-point warm-up), no verdict"
        if score.value <= 0.0:
            if score.observed < self.min_ratio:
                return f"{seen}: under the {self.min_ratio:.0%} floor an error burst needs"
            return (
                f"{seen}: no burst (one needs at least {self.min_errors} errors in the window, "
                f"more than chance explains at this traffic)"
            )
        if score.value == HOLD_SCORE:
            return (
                f"{seen}: the burst is not over yet: the errors of the last {self.hold} points "
                "are still far more than chance explains, and too few requests have succeeded "
                "since the last error to call it recovered"
            )
        # squash() is invertible: the surprise is -log10 of the burst's chance.
        value = min(score.value, 1.0 - 1e-12)
        surprise = self.threshold * value / (1.0 - value)
        verdict = "an error burst" if score.value >= 0.5 else "not yet a burst"
        return (
            f"{seen}: that many errors happen by chance about once in 10^{surprise:.0f} "
            f"(alarm at 1 in 10^{self.threshold:g}): {verdict}"
        )
