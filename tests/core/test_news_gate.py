"""The news gate: beyond the threshold counts only when the excursion is news or overwhelming."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stanch.core.detectors.base import squash
from stanch.core.news_gate import HELD, OVERWHELMING, NewsGate

THRESHOLD = 6.0


def test_a_familiar_excursion_is_held_then_credited_when_news_arrives() -> None:
    """Two points beyond the threshold without news are held (under 0.5); the news on the third
    arms the signal and offers the two held points, from the first one's start, as a credit."""
    gate = NewsGate()
    scores = []
    for t, news in ((10.0, False), (11.0, False), (12.0, True)):
        gate.begin_point()
        scores.append(gate.judge("spike", t, news, 8.0, 8.0, THRESHOLD))
    assert scores[0] == scores[1] == HELD
    assert scores[2] == squash(8.0, THRESHOLD) > 0.5
    assert gate.take_credit("spike") == (10.0, 2)
    assert gate.take_credit("spike") is None  # offered once


def test_a_credit_not_taken_on_its_point_is_forgotten() -> None:
    gate = NewsGate()
    gate.judge("spike", 10.0, False, 8.0, 8.0, THRESHOLD)
    gate.judge("spike", 11.0, True, 8.0, 8.0, THRESHOLD)  # news: one held point to credit
    gate.begin_point()
    assert gate.take_credit("spike") is None


def test_an_armed_signal_stays_armed_until_the_deviation_falls_back() -> None:
    gate = NewsGate()
    gate.judge("drop", 0.0, True, 4.0, 0.0, THRESHOLD)  # news just under the threshold: armed
    assert gate.judge("drop", 1.0, False, 7.0, 7.0, THRESHOLD) > 0.5
    gate.judge("drop", 2.0, False, 1.0, 0.0, THRESHOLD)  # under half the threshold: disarmed
    assert gate.judge("drop", 3.0, False, 7.0, 7.0, THRESHOLD) == HELD


def test_an_overwhelming_deviation_counts_without_news() -> None:
    gate = NewsGate()
    big = OVERWHELMING * THRESHOLD
    assert gate.judge("latency", 0.0, False, big, big, THRESHOLD) == squash(big, THRESHOLD)
    # The strength before a cap decides, not the capped surprise.
    assert gate.judge("latency", 1.0, False, 7.0, 7.0, THRESHOLD, strength=big) > 0.5


@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(-20, 20), st.floats(0, 30), st.floats(0, 30)),
        max_size=60,
    )
)
def test_the_gate_never_raises_a_score_and_holds_under_one_half(
    steps: list[tuple[bool, float, float, float]],
) -> None:
    """Whatever the sequence: the gate's score is the squashed surprise or HELD (never more
    than the surprise alone), and a point scored HELD had no news armed and no overwhelming
    strength."""
    gate = NewsGate()
    for i, (news, direction, surprise, strength) in enumerate(steps):
        gate.begin_point()
        score = gate.judge("spike", float(i), news, direction, surprise, THRESHOLD, strength)
        plain = squash(surprise, THRESHOLD)
        assert score <= plain
        if score < plain:
            assert score == HELD < 0.5
            assert surprise >= THRESHOLD
            assert strength < OVERWHELMING * THRESHOLD
            assert not gate.armed["spike"]


def test_an_ungated_gate_scores_the_squashed_surprise() -> None:
    """For ``RobustBaseline`` (gated=False) news plays no part: no holding, no credits."""
    gate = NewsGate(gated=False)
    assert gate.judge("spike", 0.0, False, 8.0, 8.0, THRESHOLD) == squash(8.0, THRESHOLD)
    assert gate.take_credit("spike") is None
    assert gate.held["spike"] == 0
