"""Hysteresis: minimum duration to fire, to clear, and points that count for neither."""

from __future__ import annotations

import pytest

from stanch.core.detectors.base import NO_DATA, Score
from stanch.core.hysteresis import Edge, Hysteresis

BAD = Score(0.9, 1.0, 0.0, 9.0)
GOOD = Score(0.1, 0.0, 0.0, 0.0)
HOVER = Score(0.45, 0.5, 0.0, 4.0)  # between off (0.4) and on (0.5)
WARMING_BAD = Score(0.9, 1.0, 0.0, 9.0, warming=True)


def run(h: Hysteresis, scores: list[Score], t0: float = 0.0) -> list[Edge | None]:
    return [h.update(t0 + i, s) for i, s in enumerate(scores)]


def fired(fire_after: int = 3, clear_after: int = 10) -> Hysteresis:
    h = Hysteresis(fire_after=fire_after, clear_after=clear_after)
    run(h, [BAD] * fire_after)
    assert h.firing
    return h


@pytest.mark.parametrize(
    "kwargs",
    [
        {"on": 0.4, "off": 0.4},
        {"on": 0.5, "off": 0.6},
        {"on": 1.5, "off": 0.4},
        {"off": -0.1},
        {"fire_after": 0},
        {"clear_after": 0},
    ],
)
def test_rejects_bad_parameters(kwargs: dict[str, float]) -> None:
    """off < on within [0, 1] and positive run lengths are required."""
    with pytest.raises(ValueError, match=r"need|must"):
        Hysteresis(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("fire_after", [1, 3, 5])
def test_fires_after_fire_after_consecutive_bad_points(fire_after: int) -> None:
    """FIRED comes on exactly the fire_after-th consecutive bad point, and only once."""
    h = Hysteresis(fire_after=fire_after)
    edges = run(h, [BAD] * (fire_after + 5))
    assert edges.index(Edge.FIRED) == fire_after - 1
    assert edges.count(Edge.FIRED) == 1
    assert h.firing


def test_a_good_point_breaks_the_bad_run() -> None:
    """Bad, bad, good, bad, bad does not fire at fire_after=3."""
    h = Hysteresis(fire_after=3)
    assert run(h, [BAD, BAD, GOOD, BAD, BAD]) == [None] * 5
    assert not h.firing
    assert h.update(5.0, BAD) is Edge.FIRED


def test_a_hover_point_breaks_the_bad_run() -> None:
    """A point between off and on is not bad: it interrupts the run towards firing."""
    h = Hysteresis(fire_after=3)
    assert run(h, [BAD, BAD, HOVER, BAD, BAD]) == [None] * 5
    assert not h.firing


def test_clears_after_clear_after_consecutive_good_points() -> None:
    """CLEARED comes on exactly the clear_after-th consecutive point below off."""
    h = fired(clear_after=4)
    edges = run(h, [GOOD] * 6, t0=10.0)
    assert edges == [None, None, None, Edge.CLEARED, None, None]
    assert not h.firing


def test_a_bad_point_restarts_the_clear_count() -> None:
    """A single bad point while firing resets the good run: clearing needs a fresh run."""
    h = fired(clear_after=3)
    assert run(h, [GOOD, GOOD, BAD, GOOD, GOOD], t0=10.0) == [None] * 5
    assert h.firing
    assert h.update(20.0, GOOD) is Edge.CLEARED


def test_a_hover_point_breaks_the_good_run() -> None:
    """Clearing needs clear_after *consecutive* points below off; a hover point is not one."""
    h = fired(clear_after=3)
    assert run(h, [GOOD, GOOD, HOVER, GOOD], t0=10.0) == [None] * 4
    assert h.firing


def test_hovering_neither_fires_nor_clears() -> None:
    """A score stuck between off and on keeps the current state indefinitely."""
    quiet = Hysteresis()
    assert run(quiet, [HOVER] * 50) == [None] * 50
    assert not quiet.firing
    loud = fired()
    assert run(loud, [HOVER] * 50, t0=10.0) == [None] * 50
    assert loud.firing


def test_no_data_points_are_ignored() -> None:
    """has_data=False neither breaks a bad run, nor counts towards firing or clearing."""
    h = Hysteresis(fire_after=3, clear_after=2)
    assert run(h, [BAD, NO_DATA, BAD, NO_DATA, NO_DATA]) == [None] * 5
    assert h.update(5.0, BAD) is Edge.FIRED
    assert run(h, [NO_DATA] * 100, t0=6.0) == [None] * 100
    assert h.firing  # a route hidden behind a breaker has not recovered
    assert run(h, [GOOD, NO_DATA, GOOD], t0=200.0) == [None, None, Edge.CLEARED]


def test_warming_points_are_ignored() -> None:
    """A warming detector's points never fire an alert however bad they look."""
    h = Hysteresis(fire_after=1)
    assert run(h, [WARMING_BAD] * 10) == [None] * 10
    assert not h.firing
    assert h.since is None


def test_since_is_the_first_bad_point_of_the_run() -> None:
    """`since` records the time of the first bad point of the run that fired."""
    h = Hysteresis(fire_after=3)
    h.update(1.0, BAD)
    h.update(2.0, GOOD)  # broken: the next run starts over
    h.update(5.0, BAD)
    h.update(6.0, NO_DATA)
    h.update(7.0, BAD)
    assert h.update(8.0, BAD) is Edge.FIRED
    assert h.since == 5.0


def test_score_exactly_on_threshold_is_bad() -> None:
    """A score equal to `on` counts as bad (>=), one equal to `off` is not good (<)."""
    h = Hysteresis(on=0.5, off=0.4, fire_after=1, clear_after=1)
    assert h.update(0.0, Score(0.5, 0, 0, 0)) is Edge.FIRED
    assert h.update(1.0, Score(0.4, 0, 0, 0)) is None
    assert h.update(2.0, Score(0.39, 0, 0, 0)) is Edge.CLEARED


def test_fires_again_after_clearing() -> None:
    """After a clear a new bad run fires again, with a new `since`."""
    h = fired(fire_after=2, clear_after=2)
    run(h, [GOOD, GOOD], t0=10.0)
    assert not h.firing
    assert run(h, [BAD, BAD], t0=20.0) == [None, Edge.FIRED]
    assert h.since == 20.0
