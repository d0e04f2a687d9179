"""Hysteresis and minimum duration: a single bad second does not page, a single good one does not
clear.

An alert fires after ``fire_after`` consecutive points scored at or above ``on``, and clears after
``clear_after`` consecutive points below ``off`` (``off < on``, so a score hovering at the
threshold does not flap). Points without data (``has_data=False``) neither fire nor clear: a
route hidden behind an open breaker has not recovered just because it is quiet.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from stanch.core.detectors.base import Score


class Edge(StrEnum):
    FIRED = "fired"
    CLEARED = "cleared"


class Hysteresis:
    STATE: ClassVar[tuple[str, ...]] = ("firing", "since", "_bad", "_good")
    __slots__ = ("_bad", "_good", "clear_after", "fire_after", "firing", "off", "on", "since")

    def __init__(
        self, *, on: float = 0.5, off: float = 0.4, fire_after: int = 3, clear_after: int = 10
    ) -> None:
        if not 0.0 <= off < on <= 1.0:
            raise ValueError("need 0 <= off < on <= 1")
        if fire_after < 1 or clear_after < 1:
            raise ValueError("fire_after and clear_after must be at least 1")
        self.on = on
        self.off = off
        self.fire_after = fire_after
        self.clear_after = clear_after
        self.firing = False
        self.since: float | None = None  # when the current run of bad points began
        self._bad = 0
        self._good = 0

    @property
    def troubled(self) -> bool:
        """Firing, or in a run of bad points that may fire."""
        return self.firing or self._bad > 0

    def backdate(self, since: float, points: int) -> None:
        """Count ``points`` earlier points, the first starting at ``since``, as bad.

        For a detector whose verdict on a run of points comes late (the ensemble says an
        excursion is news on one of its points): the run then starts at its real onset. Only
        extends a run that has not begun (a run in progress already counts its points).
        """
        if points > 0 and self._bad == 0:
            self._bad = points
            self.since = since

    def update(self, t: float, score: Score) -> Edge | None:
        if not score.has_data or score.warming:
            return None
        if score.value >= self.on:
            if self._bad == 0:
                self.since = t
            self._bad += 1
            self._good = 0
            if not self.firing and self._bad >= self.fire_after:
                self.firing = True
                return Edge.FIRED
            return None
        self._bad = 0
        if score.value >= self.off:
            self._good = 0  # hovering between the thresholds is not "good" either
        else:
            self._good += 1
            if self.firing and self._good >= self.clear_after:
                self.firing = False
                return Edge.CLEARED
        return None
