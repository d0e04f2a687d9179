"""One detector per series for every candidate that would build and feed the same one.

A sweep replays each series through dozens of :class:`~stanch.core.detection.SeriesMonitor`
(one per candidate: ``stanch tune`` tries 28 by default), and most of a monitor's cost is its
detectors: the request-rate and latency ensembles, the burn-rate windows and the error-burst
test. A tuned threshold or ``fire_after`` judges their scores; it does not reach what they
learn (the error-burst test aside: it stops learning during a burst above its threshold). So
:class:`DetectorPool` gives every monitor of a series that would hold an equal detector the
same one, which takes each point once; the other monitors read its answer. The replay costs a
few candidates' worth instead of one per candidate, and its results are those of separate
monitors (a test replays with and without the pool).

Two conditions make monitors' detectors interchangeable, and both are checked, so a setting
the detectors came to depend on is caught rather than trusted:

- **built alike**: the fresh detectors are equal field for field, configuration and state
  (:func:`fingerprint`), so the error-burst tests of candidates with different thresholds
  stay apart, and so would any detector a new setting reaches;
- **fed alike**: the monitors' settings differ only in :data:`NEUTRAL` ones, which judge
  scores but do not decide what a detector is fed; and on every point each repeated call must
  bring the first call's arguments, else :class:`SharingError`.

The news gate, hysteresis and SLO paging hold each candidate's own verdicts: never shared.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import replace
from typing import Any, Final, Generic, TypeVar

from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors import BurnRateDetector, EnsembleDetector, ErrorBurstDetector, Score
from stanch.core.rate_signal import RateReading, RateSignal
from stanch.core.series import SeriesKey
from stanch.evaluation.sweep import TUNED

#: The settings that change what a monitor concludes from its detectors' scores, never what it
#: feeds them (nor whether): thresholds judge a score, ``fire_after`` counts bad points. Monitors
#: whose settings differ only in these call their detectors alike, point for point.
NEUTRAL: Final = (*TUNED.values(), "fire_after")
_NEUTRAL_DEFAULTS: Final[dict[str, Any]] = {
    name: getattr(DetectionConfig(), name) for name in NEUTRAL
}
T = TypeVar("T")


class SharingError(RuntimeError):
    """A shared detector was fed differently by two monitors on one point: sharing was wrong."""


class _Clock:
    """How many points of its series the replay has handed out: a call is repeated when it
    comes on the same point (``BurnRateDetector.idle`` takes no argument to tell)."""

    __slots__ = ("tick",)

    def __init__(self) -> None:
        self.tick = 0


class _Memo(Generic[T]):
    """The point a shared detector last took, with its arguments and its answer."""

    __slots__ = ("answer", "args", "clock", "tick", "what")

    def __init__(self, clock: _Clock, what: str) -> None:
        self.clock = clock
        self.what = what
        self.tick = -1
        self.args: tuple[Any, ...] = ()
        self.answer: T | None = None

    def seen(self, args: tuple[Any, ...]) -> bool:
        """Whether this point was taken already (then :attr:`answer` is the answer); a repeat
        with other arguments is a :class:`SharingError`."""
        if self.clock.tick != self.tick:
            return False
        if args != self.args and not all(
            a == b or (a != a and b != b) for a, b in zip(args, self.args, strict=True)
        ):
            raise SharingError(f"{self.what} fed {args} and {self.args} on one point")
        return True

    def keep(self, args: tuple[Any, ...], answer: T) -> T:
        self.tick, self.args, self.answer = self.clock.tick, args, answer
        return answer


class _SharedRate(RateSignal):
    """A :class:`RateSignal` that takes each point once, however many monitors feed it."""

    __slots__ = ("_memo",)
    _memo: _Memo[RateReading]

    def update(self, t: float, rate: float, interval: float) -> RateReading:
        args = (t, rate, interval)
        if self._memo.seen(args) and self._memo.answer is not None:
            return self._memo.answer
        return self._memo.keep(args, super().update(t, rate, interval))


class _SharedEnsemble(EnsembleDetector):
    """An :class:`EnsembleDetector` that takes each point once, however many monitors feed it."""

    __slots__ = ("_memo",)
    _memo: _Memo[Score]

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        args = (t, value, weight)
        if self._memo.seen(args) and self._memo.answer is not None:
            return self._memo.answer
        return self._memo.keep(args, super().update(t, value, weight))


class _SharedErrors(ErrorBurstDetector):
    """An :class:`ErrorBurstDetector` that takes each point once, however many monitors feed
    it."""

    __slots__ = ("_memo",)
    _memo: _Memo[Score]

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        args = (t, value, weight)
        if self._memo.seen(args) and self._memo.answer is not None:
            return self._memo.answer
        return self._memo.keep(args, super().update(t, value, weight))


class _SharedBurn(BurnRateDetector):
    """A :class:`BurnRateDetector` that takes each point once, however many monitors feed it
    (an idle point too)."""

    __slots__ = ("_memo",)
    _memo: _Memo[Score | None]

    def update(self, t: float, value: float, weight: float = 1.0) -> Score:
        args = (t, value, weight)
        if self._memo.seen(args) and self._memo.answer is not None:
            return self._memo.answer
        score = super().update(t, value, weight)
        self._memo.keep(args, score)
        return score

    def idle(self) -> None:
        if not self._memo.seen(("idle",)):
            super().idle()
            self._memo.keep(("idle",), None)


def _slots(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return names


def _twin(obj: Any, cls: type[Any], clock: _Clock, key: SeriesKey) -> Any:
    """``obj`` as an instance of its memoizing subclass ``cls``, taking over its fields."""
    twin = object.__new__(cls)
    for name in _slots(type(obj)):
        if hasattr(obj, name):
            object.__setattr__(twin, name, getattr(obj, name))
    twin._memo = _Memo(clock, f"{cls.__mro__[1].__name__} of {key}")
    return twin


def fingerprint(obj: Any) -> Any:
    """Everything ``obj`` holds, as nested tuples of plain values: configuration and state,
    recursively (NaN equal to itself). Two detectors with equal fingerprints behave alike."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj
    if isinstance(obj, float):
        return "nan" if math.isnan(obj) else obj
    if isinstance(obj, list | tuple | deque | array):
        maxlen = obj.maxlen if isinstance(obj, deque) else None
        return (type(obj).__name__, maxlen, tuple(fingerprint(v) for v in obj))
    if isinstance(obj, dict):
        return ("dict", tuple((fingerprint(k), fingerprint(v)) for k, v in obj.items()))
    fields = {name: getattr(obj, name) for name in _slots(type(obj)) if hasattr(obj, name)}
    fields.update(getattr(obj, "__dict__", {}))
    return (type(obj).__qualname__, tuple((k, fingerprint(v)) for k, v in sorted(fields.items())))


class DetectorPool:
    """The shared detectors of a replay, per series (see the module docstring).

    The replay calls :meth:`tick` once per point of a series, before any monitor scores it.
    """

    def __init__(self) -> None:
        self._pool: dict[tuple[SeriesKey, DetectionConfig, str], list[tuple[Any, Any]]] = {}
        self._clocks: dict[SeriesKey, _Clock] = {}

    def tick(self, key: SeriesKey) -> None:
        """A new point of ``key``'s series: the shared detectors take the next call."""
        self._clock(key).tick += 1

    def share(self, monitor: SeriesMonitor) -> SeriesMonitor:
        """``monitor``, fresh, with the detectors of an equal earlier monitor of its series."""
        key = monitor.key
        # Only monitors that feed their detectors alike may share them.
        feeds = replace(monitor.config, **_NEUTRAL_DEFAULTS)
        if isinstance(monitor.latency, EnsembleDetector):
            monitor.latency = self._get(key, feeds, "latency", monitor.latency, _SharedEnsemble)
        monitor._rate_signal = self._get(key, feeds, "rate", monitor._rate_signal, _SharedRate)
        monitor.errors = self._get(key, feeds, "errors", monitor.errors, _SharedErrors)
        burn = self._get(key, feeds, "burn", monitor.burn, _SharedBurn)
        monitor.burn = monitor._slo.burn = burn
        return monitor

    def _clock(self, key: SeriesKey) -> _Clock:
        clock = self._clocks.get(key)
        if clock is None:
            clock = self._clocks[key] = _Clock()
        return clock

    def _get(
        self, key: SeriesKey, feeds: DetectionConfig, what: str, fresh: Any, cls: type[Any]
    ) -> Any:
        seen = fingerprint(fresh)
        known = self._pool.setdefault((key, feeds, what), [])
        for print_, shared in known:
            if print_ == seen:
                return shared
        shared = _twin(fresh, cls, self._clock(key), key)
        known.append((seen, shared))
        return shared
