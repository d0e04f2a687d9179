"""Evidence that builds up while a route keeps getting fewer requests than expected.

One point of a quiet route says little: at 10 req/s a silent second is a Poisson z of about 3,
under any sensible threshold, and at 1 req/s it is barely unusual at all. Ten silent minutes
of that same route are overwhelming evidence, and a detector that judges each point alone
never sees it: the route could stay dead all night without a page.

:class:`DeficitRun` follows the current *run* of points under the expectation and sums, over
it, the requests missing and their variance: the expected count, as if the rate were at least
1 req/s (the floor the per-point test has too: a route expecting a request every few seconds
needs minutes of silence, not seconds), times how much burstier than Poisson the route has
been (``dispersion``, from its learned spread). ``z`` is the run's total surprise in standard
deviations: for a route that went silent, ``rate * sqrt(seconds)`` under 1 req/s and
``sqrt(rate * seconds)`` above, whatever the point interval.

Expectations are held at least at the run's first one: the baseline slowly learns a silence
as normal, but the question is whether traffic was expected when it stopped. A point at or
over the expectation ends the run, so ordinary noise, which crosses the expectation all the
time, never accumulates.

Pure: no I/O, no clock; its state is snapshotted with the series monitor.
"""

from __future__ import annotations

import math
from typing import ClassVar


class DeficitRun:
    """Requests missing over the current run of points under the expectation."""

    STATE: ClassVar[tuple[str, ...]] = ("missing", "variance", "reference")
    __slots__ = ("hold", "missing", "reference", "variance")

    def __init__(self, *, hold: bool = True) -> None:
        # hold=False for an expectation that does not learn from the silence itself (the
        # daily profile): its decline is the known shape of the day, to follow, not to hold.
        self.hold = hold
        self.missing = 0.0  # expected minus observed requests over the run
        self.variance = 0.0
        self.reference = 0.0  # the expected rate when the run began (req/s)

    def push(self, observed: float, expected: float, interval: float, dispersion: float) -> float:
        """Add one point (``observed`` and ``expected`` rates in req/s over ``interval`` s);
        return the run's z, >= 0. A point at or over its expectation ends the run."""
        if not (math.isfinite(observed) and math.isfinite(expected)) or interval <= 0.0:
            return self.z
        if observed >= expected:
            self.missing = self.variance = self.reference = 0.0
            return 0.0
        if self.variance == 0.0:
            self.reference = expected
        held = max(expected, self.reference) if self.hold else expected
        self.missing += (held - observed) * interval
        self.variance += max(held, 1.0) * interval * max(dispersion, 1.0)
        return self.z

    def reset(self) -> None:
        """End the run (its expectation is unknown for this point)."""
        self.missing = self.variance = self.reference = 0.0

    @property
    def z(self) -> float:
        return self.missing / math.sqrt(self.variance) if self.variance > 0.0 else 0.0
