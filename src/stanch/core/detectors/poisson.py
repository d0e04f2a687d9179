"""Error bursts judged as counts, not ratios.

A per-second error *ratio* on a route serving five requests a second jumps from 0% to 20% on a
single unlucky request; a z-score on it pages all night. This detector instead asks how
surprising the number of errors in the last ``window`` points is, given the requests served in
them and the learned baseline error probability: the Poisson tail probability of seeing at least
that many. Surprise is ``-log10(p)``, so the default threshold 7 means "one in ten million".
An effect-size floor (``min_ratio``, ``min_errors``) keeps statistically real but harmless
blips (3 errors where 0.3 were expected, on a 0.1% baseline) from paging.

>>> d = ErrorBurstDetector(window=5, warmup=10)
>>> for t in range(100):
...     _ = d.update(float(t), 0.0, 20.0)
>>> d.update(100.0, 6.0, 20.0).value > 0.5
True
"""

from __future__ import annotations

import math
from collections import deque
from typing import ClassVar

from stanch.core.detectors.base import NO_DATA, Score, squash


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

    STATE: ClassVar[tuple[str, ...]] = ("_errors", "_served", "_ew_errors", "_ew_served", "_count")
    __slots__ = (
        "_count",
        "_errors",
        "_ew_errors",
        "_ew_served",
        "_served",
        "alpha",
        "min_errors",
        "min_ratio",
        "name",
        "p_floor",
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
        name: str = "error_burst",
    ) -> None:
        if window < 1 or half_life <= 0 or warmup < 1 or threshold <= 0:
            raise ValueError("window, half_life, warmup and threshold must be positive")
        if not 0.0 < p_floor < 1.0:
            raise ValueError("p_floor must be in (0, 1): a route never seen failing can still fail")
        self.window = window
        self.alpha = 1.0 - 0.5 ** (1.0 / half_life)
        self.warmup = warmup
        self.threshold = threshold
        self.p_floor = p_floor
        self.min_ratio = min_ratio
        self.min_errors = min_errors
        self.name = name
        self._errors: deque[float] = deque(maxlen=window)
        self._served: deque[float] = deque(maxlen=window)
        self._ew_errors = 0.0
        self._ew_served = 0.0
        self._count = 0

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
        errors = sum(self._errors)
        served = sum(self._served)
        p = max(self.baseline, self.p_floor)
        expected = served * p
        ratio = errors / served
        warming = self._count < self.warmup
        surprise = 0.0
        if not warming and errors >= self.min_errors and ratio >= self.min_ratio:
            surprise = -poisson_sf_log10(round(errors), expected)
        self._learn(value, weight, surprise)
        deviation = (errors - expected) / math.sqrt(max(expected, 1e-9))
        return Score(
            squash(surprise, self.threshold),
            observed=ratio,
            expected=p,
            deviation=deviation,
            warming=warming,
        )

    def _learn(self, errors: float, served: float, surprise: float) -> None:
        # A ratio of two decayed sums weights each second by its traffic, so a quiet second
        # with one failure moves the baseline less than a busy one.
        self._count += 1
        if self._count > self.warmup and surprise >= self.threshold:
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
        # squash() is invertible: the surprise is -log10 of the burst's chance.
        value = min(score.value, 1.0 - 1e-12)
        surprise = self.threshold * value / (1.0 - value)
        verdict = "an error burst" if score.value >= 0.5 else "not yet a burst"
        return (
            f"{seen}: that many errors happen by chance about once in 10^{surprise:.0f} "
            f"(alarm at 1 in 10^{self.threshold:g}): {verdict}"
        )
