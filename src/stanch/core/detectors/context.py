"""The ensemble plus a sequence-novelty channel: surprising sizes that are also new shapes.

Why: the :class:`~stanch.core.detectors.ensemble.EnsembleDetector` judges how *large* a
deviation is against the series' own record of surprises. Some of its false alarms are large
but familiar moves (a daily burst that always climbs the same way), and some events are modest
but follow a path the series has never taken. The idea of Numenta's contextOSE detector (the
CAD algorithm: coarse value levels, "contexts" of what came before, novelty of the current
level in its context) gives that second view; this is an independent, much smaller rewrite of
that idea, not a port of its code.

How it decides:

1. **Ensemble novelty ratio.** ``a = r / (1 + r)`` with ``r`` the ensemble's ratio of the
   current multi-scale surprise to its decaying record, before the ensemble's own muting.
2. **Coarse levels.** The value is quantized into ``levels`` steps of the range seen so far
   (causal running min and max: no look-ahead, unlike contextOSE's whole-file range).
3. **Sequence novelty.** For every order ``k`` in ``1..order``, the previous ``k`` levels form
   a context. ``nov`` is the share of already-seen contexts in which the current level has
   never followed before; a level never seen at all gives ``nov = 1``. Seen contexts and
   transitions are bits of two integers: ``levels = 8, order = 2`` needs 72 + 584 bits, so the
   memory stays fixed however long the series runs.
4. **Novelty sharpens the size score.** ``v = a ** (1 - boost * nov)``: a familiar shape keeps
   the ensemble's score, a new one raises it toward 1 (``a ** 0.5`` for ``boost = 0.5``).
5. **One alarm per event.** As in the ensemble: after a score, lower or equal scores are muted
   for ``refractory`` points.

>>> import random
>>> rng = random.Random(11)
>>> d = ContextEnsemble()
>>> calm = [d.update(60.0 * i, 50 + rng.gauss(0, 2)).value for i in range(2000)]
>>> sum(v >= 0.5 for v in calm[300:])  # not 0: see the caveat below
3
>>> d.update(60.0 * 2000, 90.0).value >= 0.5
True

Caveat: a new extreme of plain noise shifts the coarse levels, so the next few transitions look
new and a moderate deviation is sharpened past 0.5: a few alarms per few thousand points of
Gaussian noise, where the ensemble raises none. On NAB this trade pays (fewer false positives
overall, see ``bench/results/detection.md``); for the engine's alerting the ensemble stays the
default.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from stanch.core.detectors.base import NO_DATA, Score
from stanch.core.detectors.ensemble import EnsembleDetector

# A monotone stretch (``v ** CALIBRATION``) that puts this detector's own threshold, 0.5, where
# NAB's standard profile put it on the 44 development files (0.568 before the stretch). It
# changes no NAB score (thresholds are swept over the scores) and makes 0.5 mean "alarm".
CALIBRATION = math.log(0.5) / math.log(0.568)


class SequenceNovelty:
    """How new the current coarse level is after the last few levels (0: seen, 1: never)."""

    STATE: ClassVar[tuple[str, ...]] = ("_lo", "_hi", "_history", "_contexts", "_transitions")
    __slots__ = (
        "_contexts",
        "_ctx_offsets",
        "_hi",
        "_history",
        "_lo",
        "_tr_offsets",
        "_transitions",
        "levels",
        "order",
    )

    def __init__(self, levels: int = 8, order: int = 2) -> None:
        if levels < 2 or order < 1 or levels**order > 4096:
            raise ValueError("levels >= 2, order >= 1, levels ** order <= 4096")
        self.levels = levels
        self.order = order
        # Bit offsets of each order's contexts (k = 1..order) and transitions (k = 0..order).
        self._ctx_offsets = [0] * (order + 1)
        self._tr_offsets = [0] * (order + 1)
        for k in range(1, order + 1):
            if k < order:
                self._ctx_offsets[k + 1] = self._ctx_offsets[k] + levels**k
            self._tr_offsets[k] = self._tr_offsets[k - 1] + levels**k
        self._lo = math.inf
        self._hi = -math.inf
        self._history: list[int] = []  # the last ``order`` levels, oldest first
        self._contexts = 0  # bitset of contexts seen
        self._transitions = 0  # bitset of (context, level) pairs seen

    def level(self, value: float) -> int:
        """Learn ``value`` into the running range and return its coarse level."""
        if value < self._lo:
            self._lo = value
        if value > self._hi:
            self._hi = value
        span = self._hi - self._lo
        if span <= 0.0:
            return 0
        return int((value - self._lo) / span * (self.levels - 1) + 0.5)

    def update(self, value: float) -> float:
        """Novelty of ``value`` in [0, 1], then remember it."""
        q = self.level(value)
        history = self._history
        levels = self.levels
        seen_contexts = 0
        novel = 0
        code = 0
        n = len(history)
        for k in range(1, self.order + 1):
            if n < k:
                break
            code += history[n - k] * levels ** (k - 1)
            ctx_bit = 1 << (self._ctx_offsets[k] + code)
            tr_bit = 1 << (self._tr_offsets[k] + code * levels + q)
            if self._contexts & ctx_bit:
                seen_contexts += 1
                if not self._transitions & tr_bit:
                    novel += 1
            else:
                self._contexts |= ctx_bit
            self._transitions |= tr_bit
        if not self._transitions & (1 << q):
            self._transitions |= 1 << q
            score = 1.0
        elif seen_contexts:
            score = novel / seen_contexts
        else:
            score = 0.5 if history else 0.0
        history.append(q)
        if len(history) > self.order:
            del history[0]
        return score


class ContextEnsemble:
    """Ensemble novelty ratio, sharpened by sequence novelty, with refractory muting."""

    STATE: ClassVar[tuple[str, ...]] = ("_ensemble", "_novelty", "_peak", "_age")
    __slots__ = ("_age", "_ensemble", "_novelty", "_peak", "boost", "name", "refractory")

    def __init__(
        self,
        *,
        boost: float = 0.5,
        levels: int = 8,
        order: int = 2,
        refractory: int = 300,
        name: str = "context",
        **ensemble: Any,
    ) -> None:
        if not 0.0 <= boost < 1.0 or refractory < 0:
            raise ValueError("0 <= boost < 1, refractory >= 0")
        self.boost = boost
        self.refractory = refractory
        self.name = name
        # The ensemble's own muting is off: muting happens here, on the sharpened score.
        self._ensemble = EnsembleDetector(refractory=0, **ensemble)
        self._novelty = SequenceNovelty(levels, order)
        self._peak = 0.0
        self._age = 0

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        if value != value or weight <= 0.0:
            return NO_DATA
        ensemble = self._ensemble
        record = ensemble.record
        s = ensemble.update(t, value, weight)
        novelty = self._novelty.update(value)
        if s.warming:
            return s
        ratio = abs(s.deviation) / (record + ensemble.margin)
        size = ratio / (1.0 + ratio)
        score = size ** ((1.0 - self.boost * novelty) * CALIBRATION) if size > 0.0 else 0.0
        if score > self._peak:
            self._peak = score
            self._age = 0
        else:
            score = 0.0
            self._age += 1
            if self._age >= self.refractory:
                self._peak = 0.0
                self._age = 0
        return Score(score, s.observed, s.expected, s.deviation)

    def explain(self, score: Score) -> str:
        """The ensemble's explanation of the size of the deviation."""
        return self._ensemble.explain(score)
