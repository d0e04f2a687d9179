"""Sequence novelty: how new is the current coarse level after the last few levels?

Why: a deviation can be large but familiar (a daily burst that always climbs the same way) or
modest but on a path the series has never taken. The idea of Numenta's contextOSE detector (the
CAD algorithm: coarse value levels, "contexts" of what came before, novelty of the current level
in its context) gives that second view; this is an independent, much smaller rewrite of that
idea, not a port of its code. The ensemble uses it to sharpen its size score.

How: the value is quantized into ``levels`` steps of the range seen so far (a causal running
min and max: no look-ahead). For every order ``k`` in ``1..order``, the previous ``k`` levels
form a context; the novelty is the share of already-seen contexts in which the current level has
never followed before, and 1 for a level never seen at all. Seen contexts and transitions are
bits of two integers: ``levels = 8, order = 2`` needs 72 + 584 bits, so memory stays fixed
however long the series runs.

>>> n = SequenceNovelty()
>>> [n.update(v) for v in (1.0, 5.0, 1.0, 5.0, 1.0, 5.0)][-1]
0.0
>>> n.update(3.0)
1.0
"""

from __future__ import annotations

import math
from typing import ClassVar


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
        """Novelty of ``value`` in [0, 1], then remember it.

        A value that is not finite (NaN, +-inf) is no measurement: it scores 0 and is not
        learned, because one infinity would stretch the running range to infinity for good.
        """
        if not math.isfinite(value):
            return 0.0
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
