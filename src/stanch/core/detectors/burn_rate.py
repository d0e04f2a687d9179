"""SLO burn rate in several (long window, short window, threshold) tiers, as in the SRE workbook.

Burn rate is the error ratio divided by the error budget (``1 - objective``): at burn 1 the
budget lasts exactly the SLO period. One window pair cannot serve every speed of burn: a pair
tuned to page on an outage within minutes (1 h / 5 min at 14.4x) never sees a 5x burn that
empties the budget in six days. So, as the workbook's "multiwindow, multi-burn-rate alerts",
each :class:`BurnTier` fires only when *both* its windows burn faster than its threshold: the
long window proves the burn is significant, the short one that it is still happening (so the
alert clears soon after the fix). Fast tiers page; the slowest one only files a ticket.

Window lengths are in points; :func:`workbook_tiers` gives the workbook's three tiers for a
30-day SLO period at a given point interval.

>>> d = BurnRateDetector(
...     [BurnTier(60, 5, 14.4), BurnTier(600, 50, 1.0, pages=False)], min_requests=10
... )
>>> for t in range(60):
...     _ = d.update(float(t), 0.0, 10.0)
>>> for t in range(60, 120):
...     s = d.update(float(t), 5.0, 10.0)
>>> s.value > 0.5, round(s.observed, 1), s.expected
(True, 50.0, 14.4)
>>> d.explain(s)
'burning 50.0x the error budget over 1 min (and 50.0x over 5 s): page tier 14.4x'
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from stanch.core.detectors.base import NO_DATA, Score, squash
from stanch.core.detectors.state import restore, snapshot

#: The workbook's tiers for a 30-day SLO, in seconds: (long, short, burn threshold, pages).
#: 14.4x for 1 h spends 2 % of the budget, 6x for 6 h 5 %, 1x for 3 days 10 %.
WORKBOOK_TIERS_S: Final = (
    (3600.0, 300.0, 14.4, True),
    (21600.0, 1800.0, 6.0, True),
    (259200.0, 21600.0, 1.0, False),
)


@dataclass(frozen=True, slots=True)
class BurnTier:
    """One alert of the scheme: fires when both windows (in points) burn faster than
    ``threshold``. ``pages`` is False for a tier whose burn is worth a ticket, not a page."""

    long_points: int
    short_points: int
    threshold: float
    pages: bool = True

    def __post_init__(self) -> None:
        if self.short_points < 1 or self.long_points < self.short_points:
            raise ValueError("need 1 <= short_points <= long_points")
        if not (math.isfinite(self.threshold) and self.threshold > 0.0):
            raise ValueError(f"burn threshold must be positive, e.g. 14.4; got {self.threshold}")

    @property
    def action(self) -> str:
        return "page" if self.pages else "ticket"


def workbook_tiers(interval_s: float = 1.0) -> tuple[BurnTier, ...]:
    """The workbook's three tiers at points of ``interval_s`` seconds."""
    return tuple(
        BurnTier(_points(long_s, interval_s), _points(short_s, interval_s), threshold, pages)
        for long_s, short_s, threshold, pages in WORKBOOK_TIERS_S
    )


def _points(seconds: float, interval_s: float) -> int:
    return max(1, round(seconds / interval_s))


class _RollingSum:
    """Errors and requests over roughly the last ``size`` points, in at most ``buckets`` buckets.

    A three-day window at 1 s points would otherwise keep 259,200 numbers per series; bucketing
    keeps memory constant at the cost of the window's edge moving one bucket at a time.
    """

    STATE: ClassVar[tuple[str, ...]] = (
        "_errors",
        "_served",
        "_fill",
        "_cur_errors",
        "_cur_served",
        "errors",
        "served",
    )
    __slots__ = (
        "_cur_errors",
        "_cur_served",
        "_errors",
        "_fill",
        "_per_bucket",
        "_served",
        "errors",
        "served",
        "size",
    )

    def __init__(self, size: int, buckets: int = 30) -> None:
        self.size = size
        self._per_bucket = max(1, size // buckets)
        count = -(-size // self._per_bucket)
        self._errors: deque[float] = deque(maxlen=count)
        self._served: deque[float] = deque(maxlen=count)
        self._fill = 0
        self._cur_errors = 0.0
        self._cur_served = 0.0
        self.errors = 0.0  # completed buckets only
        self.served = 0.0

    def push(self, errors: float, served: float) -> None:
        self._cur_errors += errors
        self._cur_served += served
        self._fill += 1
        if self._fill < self._per_bucket:
            return
        if len(self._errors) == self._errors.maxlen:
            self.errors -= self._errors[0]
            self.served -= self._served[0]
        self._errors.append(self._cur_errors)
        self._served.append(self._cur_served)
        self.errors += self._cur_errors
        self.served += self._cur_served
        self._fill = 0
        self._cur_errors = 0.0
        self._cur_served = 0.0

    def coverage(self) -> float:
        """The share of the window's ``size`` points seen so far (1 once full)."""
        return min(1.0, (len(self._errors) * self._per_bucket + self._fill) / self.size)

    def total_served(self) -> float:
        return self.served + self._cur_served

    def ratio(self) -> float:
        served = self.served + self._cur_served
        return (self.errors + self._cur_errors) / served if served > 0 else 0.0

    def burn(self, budget: float, *, unseen_is_clean: bool = False) -> float:
        """The window's burn rate; with ``unseen_is_clean`` the part of the window not seen
        yet counts as served without errors."""
        return self.ratio() * (self.coverage() if unseen_is_clean else 1.0) / budget


class _TierWindows:
    """The two rolling sums of one tier."""

    STATE: ClassVar[tuple[str, ...]] = ("long", "short")
    __slots__ = ("long", "short")

    def __init__(self, tier: BurnTier) -> None:
        self.long = _RollingSum(tier.long_points)
        self.short = _RollingSum(tier.short_points)


@dataclass(frozen=True, slots=True)
class _Verdict:
    tier: int
    long_burn: float
    short_burn: float
    judged: bool
    value: float

    @property
    def fires(self) -> bool:
        return self.value >= 0.5


class BurnRateDetector:
    """Multi-window, multi-burn-rate SLO alerting over ``tiers``.

    The score is that of the most urgent tier: a firing page tier before a firing ticket tier
    (the highest threshold first), else whichever is closest to firing. ``observed`` is that
    tier's long-window burn, ``expected`` its threshold, ``deviation`` the lesser of its two
    burns.

    A tier is judged once its long window holds ``min_requests``, each tier on its own, so the
    three-day tier does not hold back the one-hour one. The fastest tier (the shortest long
    window) judges what its windows hold, so a busy route is judged on its first point and an
    outage from the start pages.

    The slower tiers are there to show a burn *sustained* for hours or days, which a young
    window cannot: read as full, a 6 h window holding 24 minutes would page on a 2 min outage
    (8x), a 3 d one would file a ticket for a few early errors, and six clean hours into a
    series a steady 7x burn would file the ticket an hour in, four hours before the 6 h page
    (and the SLO alert, open as a ticket, would not become a page). So they count the part of
    their windows not seen yet as clean: they fire no sooner than after a clean history, and
    in the same order.
    """

    STATE: ClassVar[tuple[str, ...]] = ("windows",)
    __slots__ = (
        "_tiers",
        "_unseen_is_clean",
        "_verdicts_now",
        "_why",
        "_windows",
        "budget",
        "interval_s",
        "min_requests",
        "name",
    )

    def __init__(
        self,
        tiers: Sequence[BurnTier] | None = None,
        *,
        objective: float = 0.99,
        min_requests: int = 50,
        interval_s: float = 1.0,
        name: str = "burn_rate",
    ) -> None:
        if not 0.0 < objective < 1.0:
            raise ValueError("objective must be between 0 and 1, e.g. 0.999")
        self._tiers = tuple(tiers) if tiers is not None else workbook_tiers(interval_s)
        if not self._tiers:
            raise ValueError("need at least one burn-rate tier")
        fastest = min(tier.long_points for tier in self._tiers)
        self._unseen_is_clean = tuple(tier.long_points > fastest for tier in self._tiers)
        self.budget = 1.0 - objective
        self.min_requests = min_requests
        self.interval_s = interval_s  # only to word explanations in seconds, not points
        self.name = name
        self._windows = [_TierWindows(tier) for tier in self._tiers]
        self._why: _Verdict | None = None
        # The verdicts of the windows as they are: computed once per update, read by
        # value_of and page_burn on the same point (None: recompute).
        self._verdicts_now: list[_Verdict] | None = None

    @property
    def windows(self) -> list[dict[str, Any]]:
        """The tiers' learned state for :mod:`~stanch.core.detectors.state`, each tagged with
        its window lengths so a snapshot taken under other tiers is recognised."""
        return [
            {"shape": [tier.long_points, tier.short_points], **snapshot(windows)}
            for tier, windows in zip(self._tiers, self._windows, strict=True)
        ]

    @windows.setter
    def windows(self, saved: object) -> None:
        """Load saved tiers; a tier whose saved shape does not match starts fresh, and so does
        every tier on data of another shape (such as the single pair of older versions)."""
        saved_tiers = saved if isinstance(saved, list) else []
        self._verdicts_now = None
        for i, tier in enumerate(self._tiers):
            self._windows[i] = _TierWindows(tier)
            data = saved_tiers[i] if i < len(saved_tiers) else None
            if not isinstance(data, dict) or data.get("shape") != [
                tier.long_points,
                tier.short_points,
            ]:
                continue
            try:
                restore(self._windows[i], data)
            except (TypeError, ValueError, AttributeError):
                self._windows[i] = _TierWindows(tier)

    def burns(self) -> list[tuple[float, float]]:
        """Current (long, short) window burn rates, one pair per tier, as the tiers judge them."""
        return [self._burns(i) for i in range(len(self._tiers))]

    def page_burn(self) -> float:
        """The highest long-window burn among judged page tiers (0 when none is judged): what
        severity grades, since a ticket-level burn is no reason to wake anyone."""
        return max(
            (v.long_burn for v in self._verdicts() if v.judged and self._tiers[v.tier].pages),
            default=0.0,
        )

    def value_of(self, *, pages: bool) -> float:
        """The strongest score among the judged page tiers (``pages=True``) or ticket tiers:
        a page must clear when no page tier burns any more, whatever the ticket tier says."""
        return max(
            (v.value for v in self._verdicts() if v.judged and self._tiers[v.tier].pages is pages),
            default=0.0,
        )

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        """``value`` is the number of errors among ``weight`` served requests; a count that is
        not a finite non-negative number is no data, so a corrupt sample neither pages nor
        stays in the windows for days."""
        if not (math.isfinite(value) and math.isfinite(weight)) or value < 0.0 or weight <= 0.0:
            return NO_DATA
        for windows in self._windows:
            windows.long.push(value, weight)
            windows.short.push(value, weight)
        self._verdicts_now = None
        verdicts = self._verdicts()
        judged = [v for v in verdicts if v.judged]
        if not judged:
            self._why = None
            first = verdicts[0]
            return Score(
                0.0,
                observed=first.long_burn,
                expected=self._tiers[0].threshold,
                deviation=0.0,
                warming=True,
            )
        why = max(judged, key=self._urgency)
        self._why = why
        return Score(
            why.value,
            observed=why.long_burn,
            expected=self._tiers[why.tier].threshold,
            deviation=min(why.long_burn, why.short_burn),
        )

    def idle(self) -> None:
        """A point passed with no request served: the windows move on without a verdict.

        The tiers' windows count points, so without this they would stretch over the idle
        points of a quiet route: a "6 h" window at 0.2 req/s held days of traffic, and a
        steady 10x burn (10 % errors at 99 %) read as 2.5x and never paged."""
        for windows in self._windows:
            windows.long.push(0.0, 0.0)
            windows.short.push(0.0, 0.0)
        self._verdicts_now = None

    def explain(self, score: Score) -> str:
        """The tier behind the latest score, in words a responder reads, e.g. "burning 7.2x the
        error budget over 6 h (and 8.1x over 30 min): page tier 6x"."""
        if not score.has_data:
            return "no data"
        why = self._why
        if score.warming or why is None:
            return f"burning {score.observed:.1f}x the error budget; too few requests to judge"
        tier = self._tiers[why.tier]
        if (score.observed, score.expected) != (why.long_burn, tier.threshold):
            # An older score than the latest: its tier's windows have moved on since.
            return f"burning {score.observed:.1f}x the error budget vs a {score.expected:g}x tier"
        return (
            f"burning {why.long_burn:.1f}x the error budget over "
            f"{_span(tier.long_points * self.interval_s)} (and {why.short_burn:.1f}x over "
            f"{_span(tier.short_points * self.interval_s)}): {tier.action} tier {tier.threshold:g}x"
        )

    def driving_tier(self) -> BurnTier | None:
        """The tier behind the latest score; None while every tier is warming up."""
        return self._tiers[self._why.tier] if self._why is not None else None

    def _verdicts(self) -> list[_Verdict]:
        if self._verdicts_now is not None:
            return self._verdicts_now
        out = []
        for i, (tier, windows) in enumerate(zip(self._tiers, self._windows, strict=True)):
            long_burn, short_burn = self._burns(i)
            judged = windows.long.total_served() >= self.min_requests
            surprise = min(long_burn, short_burn) if judged else 0.0
            out.append(_Verdict(i, long_burn, short_burn, judged, squash(surprise, tier.threshold)))
        self._verdicts_now = out
        return out

    def _urgency(self, verdict: _Verdict) -> tuple[bool, bool, float]:
        """Firing page tiers first, the fastest burn among them (a 100x outage is the 14.4x
        tier's, though the 6x one fires too), then firing tickets, then the tier closest to
        firing."""
        tier = self._tiers[verdict.tier]
        if verdict.fires:
            return True, tier.pages, tier.threshold
        return False, False, verdict.value

    def _burns(self, i: int) -> tuple[float, float]:
        windows, clean = self._windows[i], self._unseen_is_clean[i]
        return (
            windows.long.burn(self.budget, unseen_is_clean=clean),
            windows.short.burn(self.budget, unseen_is_clean=clean),
        )


_SPAN_UNITS: Final = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"))


def _span(seconds: float) -> str:
    """``seconds`` in the largest unit that divides it: "3 d", "6 h", "30 min", "45 s"."""
    for size, unit in _SPAN_UNITS:
        if seconds >= size and (seconds / size).is_integer():
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
