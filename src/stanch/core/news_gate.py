"""The news gate: with the ensemble, a point is bad only when its excursion is news.

The ensemble's ``value`` is *news*: it crosses 0.5 once, on the point where a surprise is new
for its series, and is then muted. Its ``deviation`` (the z of the strongest of several time
scales) stays high while the anomaly lasts. So a point is *bad* for a signal when its deviation
is beyond the configured threshold in the signal's direction **and** the excursion is news: the
ensemble called it new at some point of the current excursion (the signal is *armed*; it
disarms once the deviation falls back under :data:`ARM_FLOOR` of the threshold), **or** the
deviation is overwhelming (:data:`OVERWHELMING` times the threshold), so a repeat of an incident
the series has just had, which is no longer news to the ensemble, is still caught. Familiar
excursions that merely cross the threshold (a daily burst the series always has) do not page.

Why a separate gate rather than the ensemble's score alone: the thresholds (``spike_threshold``
& co.) keep their meaning for ``stanch tune`` and the dashboard's bands, and alert duration
comes from the deviation and the hysteresis, not from a one-shot score.
"""

from __future__ import annotations

from typing import ClassVar, Final

from stanch.core.detectors.base import squash

#: A deviation this many times the threshold is bad even when it is no news.
OVERWHELMING: Final = 2.0
#: A signal stays armed while its deviation is at least this share of the threshold (the news
#: often arrives a point before the deviation crosses the threshold).
ARM_FLOOR: Final = 0.5
#: The score of a point beyond the threshold that is not news: under the hysteresis gate's
#: ``on`` (it does not count towards firing) but over its ``off`` (a firing alert does not clear
#: while it lasts).
HELD: Final = 0.45
#: The alarm directions gated: rate spikes, rate drops, latency rises.
SIGNALS: Final = ("spike", "drop", "latency")


class NewsGate:
    """Per alarm direction: armed by news, or held until news or an overwhelming deviation.

    ``armed``: the ensemble called the current excursion news. ``held``/``since``: how many
    points beyond the threshold came before that news in the current run, and when the first
    began. The ensemble's news may arrive a point or two into an excursion (a scale-1 z that is
    large but not yet a record, then a larger one): the held points before it are the same
    event, so they are offered as a *credit* for the hysteresis gate to count
    (``Hysteresis.backdate``), and the alert's onset is the excursion's first point.
    """

    STATE: ClassVar[tuple[str, ...]] = ("armed", "held", "since")
    __slots__ = ("_credits", "armed", "gated", "held", "since")

    def __init__(self, *, gated: bool = True) -> None:
        # Ungated (``RobustBaseline``, whose score already stays high while an anomaly lasts):
        # a signal's score is its squashed surprise, as it always was.
        self.gated = gated
        self.armed: dict[str, bool] = dict.fromkeys(SIGNALS, False)
        self.held: dict[str, int] = dict.fromkeys(SIGNALS, 0)
        self.since: dict[str, float] = dict.fromkeys(SIGNALS, 0.0)
        # Held points that turned out to be the start of a news excursion, per signal, on the
        # current point: (start of the first, how many). Transient: not part of the state.
        self._credits: dict[str, tuple[float, int]] = {}

    def begin_point(self) -> None:
        """Forget the previous point's credits (call before judging a new point)."""
        self._credits.clear()

    def take_credit(self, signal: str) -> tuple[float, int] | None:
        """``(start, points)`` held before this point's news on ``signal``, once."""
        return self._credits.pop(signal, None)

    def judge(
        self,
        signal: str,
        t: float,
        news: bool,
        direction: float,
        surprise: float,
        threshold: float,
        strength: float | None = None,
    ) -> float:
        """The gate's score for ``signal`` on the point that starts at ``t``.

        ``direction`` is the deviation in the signal's alarm direction (up for spikes and
        latency, down for drops); ``surprise`` is the same, or 0 when a relative or absolute
        guard (``min_rate_change`` ...) fails; ``strength`` is the ensemble's own deviation in
        the alarm direction before any cap (default ``surprise``), the one compared with
        :data:`OVERWHELMING` times the threshold.
        """
        size = squash(surprise, threshold)
        if not self.gated:
            return size
        if strength is None:
            strength = surprise
        if direction < ARM_FLOOR * threshold:
            self.armed[signal] = False
        elif news:
            self.armed[signal] = True
        if surprise < threshold:
            self.held[signal] = 0
            return size
        if self.armed[signal]:
            if self.held[signal]:
                self._credits[signal] = (self.since[signal], self.held[signal])
                self.held[signal] = 0
            return size
        if strength >= OVERWHELMING * threshold:
            self.held[signal] = 0
            return size
        if not self.held[signal]:
            self.since[signal] = t
        self.held[signal] += 1
        return min(size, HELD)
