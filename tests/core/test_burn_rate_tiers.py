"""Multi-window, multi-burn-rate SLO alerting: the SRE workbook's page, page and ticket tiers.

Streams are one point per minute (the workbook's windows in 60 s points) with 100 requests
each, at a 99 % objective: a burn of ``b`` is ``b`` % of the requests failing.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.alerts import AlertKind, AlertStatus
from stanch.core.detection import SeriesMonitor
from stanch.core.detection_config import DetectionConfig
from stanch.core.detectors.base import Score
from stanch.core.detectors.burn_rate import (
    BurnRateDetector,
    BurnTier,
    _RollingSum,
    workbook_tiers,
)
from stanch.core.detectors.state import restore, snapshot
from stanch.core.series import SeriesKey
from stanch.core.severity import Severity
from stanch.evaluation.detection_file import parse_detection_config

from .factories import make_point

MINUTE = 60.0
HOUR = 60  # points
SERVED = 100.0
FAST, SLOW, TICKET = workbook_tiers(MINUTE)


class Stream:
    """Feeds a detector minute by minute; remembers each score and the tier behind it."""

    def __init__(self, detector: BurnRateDetector | None = None) -> None:
        self.detector = detector or BurnRateDetector(workbook_tiers(MINUTE), interval_s=MINUTE)
        self.t = 0

    def run(self, minutes: int, burn: float) -> list[tuple[Score, BurnTier | None]]:
        out = []
        for _ in range(minutes):
            score = self.detector.update(self.t * MINUTE, burn / 100.0 * SERVED, SERVED)
            out.append((score, self.detector.driving_tier()))
            self.t += 1
        return out


def first_fire(scored: list[tuple[Score, BurnTier | None]]) -> int:
    return next(i for i, (score, _) in enumerate(scored) if score.value >= 0.5)


def test_workbook_tiers_in_points() -> None:
    """1 h / 5 min at 14.4x and 6 h / 30 min at 6x page; 3 d / 6 h at 1x is a ticket."""
    expected = (BurnTier(60, 5, 14.4), BurnTier(360, 30, 6.0), BurnTier(4320, 360, 1.0, False))
    assert workbook_tiers(MINUTE) == expected


def test_a_7x_burn_pages_through_the_6h_tier_and_never_the_1h_one() -> None:
    """7x never reaches the 1 h tier's 14.4x; the 6 h tier fires once 6x of its window is
    spent (6/7 of 6 h, about 5.1 h in) and says so."""
    stream = Stream()
    stream.run(6 * HOUR, 0.0)
    fast_burns, texts = [], []
    scored = []
    for _ in range(8 * HOUR):
        scored += stream.run(1, 7.0)
        fast_burns.append(min(stream.detector.burns()[0]))
        texts.append(stream.detector.explain(scored[-1][0]))
    fired = first_fire(scored)
    assert 5 * HOUR <= fired <= 6 * HOUR
    score, tier = scored[fired]
    assert tier == SLOW
    assert score.expected == 6.0
    assert score.observed >= 6.0
    assert max(fast_burns) < FAST.threshold
    assert all(t != FAST for s, t in scored if s.value >= 0.5)
    assert re.fullmatch(
        r"burning 6\.\dx the error budget over 6 h \(and 7\.0x over 30 min\): page tier 6x",
        texts[fired],
    )
    # Asked later, the detector cannot vouch for the short window any more: score alone.
    assert stream.detector.explain(score) == "burning 6.1x the error budget vs a 6x tier"


@pytest.mark.parametrize(("burn", "minutes"), [(20.0, 43.2), (100.0, 8.64)])
def test_a_fast_burn_pages_through_the_1h_tier_within_minutes(burn: float, minutes: float) -> None:
    """After a clean hour the 1 h tier fires once 14.4x of its hour is spent: 43 min into a
    20x burn, 9 min into a total outage; not before, and before the 6 h tier."""
    stream = Stream()
    stream.run(6 * HOUR, 0.0)
    scored = stream.run(2 * HOUR, burn)
    fired = first_fire(scored)
    assert minutes - 1 <= fired + 1 <= minutes + 3
    assert scored[fired][1] == FAST
    assert scored[fired][0].expected == 14.4


def test_a_2x_burn_for_days_files_only_a_ticket() -> None:
    """2x never pages; the ticket tier fires once 3 days' budget pace is spent (1.5 days into
    the burn after a clean day), as a SEV4 ticket though 2 % of requests fail."""
    config = DetectionConfig(interval_s=300.0)
    route = SeriesKey("shop", "POST /checkout")
    monitor = SeriesMonitor(route, config)
    day = 288  # five-minute points
    changes = []
    for i in range(4 * day):
        errors = 12 if i >= day else 0
        point = make_point(route, i * 300.0, 600, errors=errors, interval=300.0)
        changes += monitor.observe(point, point)
        if i < day:
            continue
        tier = monitor.burn.driving_tier()
        if monitor.last_scores[AlertKind.SLO_BURN].value >= 0.5:
            assert tier is not None
            assert not tier.pages
    fired = [a for a in changes if a.kind is AlertKind.SLO_BURN]
    assert [a.status for a in fired] == [AlertStatus.FIRING]
    alert = fired[0]
    assert alert.severity is Severity.SEV4
    assert alert.explanation.startswith("SLO burn rate: burning 1.0x the error budget over 3 d")
    assert alert.explanation.endswith("): ticket tier 1x, shop POST /checkout")
    assert 2.4 * day * 300 <= alert.started_at <= 2.6 * day * 300


@pytest.mark.parametrize("clean", [22, 6 * HOUR])
@pytest.mark.parametrize("burn", [20.0, 100.0])
def test_a_two_minute_blip_does_not_fire(burn: float, clean: int) -> None:
    """A 2 min blip burns the short windows only (at 100x, 40x over 5 min): no tier fires,
    even 22 minutes into a fresh series, when the 6 h window has seen 24 of its 360 minutes
    (8x of them) and counts the rest as clean."""
    stream = Stream()
    stream.run(clean, 0.0)
    scored = stream.run(2, burn)
    short_burn = stream.detector.burns()[0][1]
    scored += stream.run(HOUR, 0.0)
    assert short_burn == pytest.approx(burn * 2 / 5)
    assert max(score.value for score, _ in scored) < 0.5


@pytest.mark.parametrize(("burn", "tier", "clears_within"), [(20.0, FAST, 2), (7.0, SLOW, 5)])
def test_the_alert_clears_soon_after_the_burn_stops(
    burn: float, tier: BurnTier, clears_within: int
) -> None:
    """Once the burn stops the firing tier's short window empties: quiet within minutes, not
    the hour or six it takes the long window, and it stays quiet."""
    probe = Stream()
    probe.run(6 * HOUR, 0.0)
    scored = probe.run(8 * HOUR, burn)
    fired = first_fire(scored)
    assert scored[fired][1] == tier
    stream = Stream()
    stream.run(6 * HOUR, 0.0)
    stream.run(fired + 10, burn)  # the burn goes on 10 min after the page
    after = [score.value for score, _ in stream.run(2 * HOUR, 0.0)]
    quiet = next(i for i, v in enumerate(after) if v < 0.5)
    assert quiet + 1 <= clears_within
    assert max(after[quiet:]) < 0.5


def test_a_fresh_detector_pages_on_its_first_busy_point_without_the_slow_tiers() -> None:
    """Each tier warms up on its own requests: a total outage from the start pages on the
    first point with ``min_requests``; the 3 d tier holding minutes does not hold it back."""
    scored = Stream().run(1, 100.0)
    score, tier = scored[0]
    assert not score.warming
    assert score.value >= 0.5
    assert tier == FAST
    quiet = BurnRateDetector(workbook_tiers(MINUTE), min_requests=50)
    early = [quiet.update(float(t), 10.0, 10.0) for t in range(5)]
    assert [s.warming for s in early] == [True, True, True, True, False]
    assert quiet.explain(early[0]) == ("burning 100.0x the error budget; too few requests to judge")


def test_a_fresh_ticket_tier_counts_its_unseen_days_as_clean() -> None:
    """One early error at 2x on a fresh series pages nothing and files no ticket, though
    every window it has holds 2x: its 3 d window has seen an hour, not three days."""
    stream = Stream()
    scored = stream.run(7 * HOUR, 2.0)
    assert max(score.value for score, _ in scored) < 0.5
    long_burn, short_burn = stream.detector.burns()[2]
    assert long_burn == pytest.approx(2.0 * 7 / 72)
    assert short_burn == pytest.approx(2.0)


def test_window_memory_is_bounded_by_buckets_not_points() -> None:
    """A 3 d window of 1 s points keeps at most 30 buckets, as does a 5 min one, and still
    measures its ratio."""
    sizes = []
    for points in (300, 3600, 259_200):
        window = _RollingSum(points)
        for i in range(2 * points):
            window.push(1.0 if i % 10 == 0 else 0.0, 1.0)
        assert window.ratio() == pytest.approx(0.1, rel=0.01)
        sizes.append(len(json.dumps(snapshot(window))))
    assert max(sizes) <= 1.5 * min(sizes)
    assert max(sizes) < 2000


def test_snapshot_round_trip_resumes_exactly() -> None:
    """A detector restored from JSON scores and explains the rest of the stream like the
    original."""
    original = Stream()
    original.run(6 * HOUR, 0.0)
    original.run(3 * HOUR, 7.0)
    data = json.loads(json.dumps(snapshot(original.detector)))
    restored = Stream()
    restore(restored.detector, data)
    restored.t = original.t
    assert restored.detector.burns() == original.detector.burns()
    tail = original.run(4 * HOUR, 7.0)
    again = restored.run(4 * HOUR, 7.0)
    assert again == tail
    assert restored.detector.explain(again[-1][0]) == original.detector.explain(tail[-1][0])


def test_an_old_single_pair_snapshot_starts_fresh() -> None:
    """A snapshot of the single-pair detector (``_long``/``_short``) loads without error, and
    the detector carries on as a fresh one; so does a monitor's checkpoint holding one."""
    window = _RollingSum(3600)
    for _ in range(100):
        window.push(50.0, 100.0)
    old = {"_long": snapshot(window), "_short": snapshot(_RollingSum(300))}
    detector = BurnRateDetector(workbook_tiers(MINUTE), interval_s=MINUTE)
    restore(detector, json.loads(json.dumps(old)))
    assert detector.burns() == [(0.0, 0.0)] * 3
    assert Stream(detector).run(30, 3.0) == Stream().run(30, 3.0)

    route = SeriesKey("shop", "GET /")
    monitor = SeriesMonitor(route, DetectionConfig())
    checkpoint = monitor.snapshot()
    checkpoint["burn"] = old
    SeriesMonitor(route, DetectionConfig()).restore(json.loads(json.dumps(checkpoint)))


def test_a_snapshot_under_other_tiers_keeps_only_the_tiers_that_match() -> None:
    """Changing the ticket tier's windows restarts that tier only: the pages keep their hour."""
    original = Stream()
    original.run(2 * HOUR, 3.0)
    other = BurnRateDetector([FAST, SLOW, BurnTier(2880, 360, 1.0, pages=False)], interval_s=MINUTE)
    restore(other, json.loads(json.dumps(snapshot(original.detector))))
    assert other.burns()[:2] == original.detector.burns()[:2]
    assert other.burns()[2] == (0.0, 0.0)
    restore(other, {"windows": "not a list"})
    assert other.burns() == [(0.0, 0.0)] * 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.floats(-10, 200), st.sampled_from([math.nan, math.inf])),
            st.one_of(st.floats(-10, 200), st.sampled_from([math.nan, math.inf, 0.0])),
        ),
        max_size=200,
    )
)
def test_any_stream_scores_in_unit_interval_deterministically(
    points: list[tuple[float, float]],
) -> None:
    """Whatever (errors, served) arrive, every score is in [0, 1], a count that is not a
    finite non-negative number is no data, and two detectors agree point by point."""
    tiers = [BurnTier(20, 4, 14.4), BurnTier(60, 10, 6.0), BurnTier(120, 30, 1.0, pages=False)]
    one, two = BurnRateDetector(tiers, min_requests=20), BurnRateDetector(tiers, min_requests=20)
    for t, (errors, served) in enumerate(points):
        a, b = one.update(float(t), errors, served), two.update(float(t), errors, served)
        assert a == b
        assert one.explain(a) == two.explain(b)
        assert 0.0 <= a.value <= 1.0
        valid = math.isfinite(errors) and math.isfinite(served) and errors >= 0 and served > 0
        assert a.has_data == valid


def test_detection_config_tiers_and_the_old_fields() -> None:
    """The config's tiers are the workbook's in seconds; the old three fields still set the
    fast page tier; a short window longer than its long one is refused, naming the fields."""
    assert DetectionConfig(interval_s=MINUTE).burn_tiers() == (FAST, SLOW, TICKET)
    assert DetectionConfig().burn_tiers() == workbook_tiers(1.0)
    legacy = DetectionConfig(burn_long_s=120.0, burn_short_s=10.0, burn_threshold=10.0)
    assert legacy.burn_tiers()[0] == BurnTier(120, 10, 10.0)
    with pytest.raises(ValueError, match=r"burn_slow_short_s .* burn_slow_long_s"):
        DetectionConfig(burn_slow_short_s=7 * 3600.0)
    with pytest.raises(ValueError, match="burn_ticket_threshold"):
        DetectionConfig(burn_ticket_threshold=0.0)


def test_detection_yaml_sets_every_tier() -> None:
    """detection.yaml takes the tiers' fields like any other, durations included."""
    defaults, routes = parse_detection_config(
        "detection:\n"
        "  defaults:\n"
        "    burn_threshold: 10\n"
        "    burn_ticket_long_s: 48h\n"
        "  routes:\n"
        "    'GET /search':\n"
        "      burn_slow_threshold: 5\n"
    )
    fast, slow, ticket = defaults.burn_tiers()
    assert (fast.threshold, slow.threshold, ticket.long_points) == (10.0, 6.0, 48 * 3600)
    assert routes["GET /search"].burn_tiers()[1].threshold == 5.0


def test_a_ticket_escalates_to_a_page_when_the_burn_turns_fast() -> None:
    """The open SLO alert of a slow burn (a SEV4 ticket) becomes a page, same alert, once a
    fast tier fires too; when the fast burn stops the page resolves and, the slow burn going
    on, a ticket is filed again."""
    config = DetectionConfig(interval_s=300.0)
    route = SeriesKey("shop", "POST /checkout")
    monitor = SeriesMonitor(route, config)
    day = 288
    firing: list[tuple[float, Severity]] = []
    changes = []
    for i in range(4 * day):
        errors = 12 if i < 3 * day else 150  # 2 % failing, then 25 %
        if i >= 3 * day + 24:
            errors = 12  # back to the slow burn after two hours
        point = make_point(route, i * 300.0, 600, errors=errors if i >= day else 0, interval=300.0)
        changes += [c for c in monitor.observe(point, point) if c.kind is AlertKind.SLO_BURN]
        alert = monitor.firing.get(AlertKind.SLO_BURN)
        if alert is not None:
            firing.append((alert.started_at, alert.severity))
    assert firing[0][1] is Severity.SEV4
    paged = [started for started, severity in firing if severity is Severity.SEV1]
    assert paged
    assert set(paged) == {firing[0][0]}  # escalated in place: the ticket's own alert
    assert [(c.status, c.severity) for c in changes] == [
        (AlertStatus.FIRING, Severity.SEV4),
        (AlertStatus.RESOLVED, Severity.SEV1),
        (AlertStatus.FIRING, Severity.SEV4),
    ]
    assert monitor.firing[AlertKind.SLO_BURN].explanation.startswith("SLO burn rate: burning")


def test_a_page_clears_soon_after_the_fix_and_leaves_no_ticket_behind() -> None:
    """After an hour of total failure the ticket tier burns for hours (its 6 h window
    remembers); the page must still resolve once no page tier burns (the 30 min window), and
    that remembered burn must not file a ticket of its own."""
    config = DetectionConfig(interval_s=60.0)
    route = SeriesKey("shop", "POST /checkout")
    monitor = SeriesMonitor(route, config)
    hour = 60
    fix = 73 * hour
    changes = []
    for i in range(fix + 8 * hour):
        errors = 100 if 72 * hour <= i < fix else 0
        point = make_point(route, i * 60.0, 100, errors=errors, interval=60.0)
        changes += [c for c in monitor.observe(point, point) if c.kind is AlertKind.SLO_BURN]
        if i == fix + 2 * hour:
            assert monitor.burn.value_of(pages=False) >= 0.5  # the ticket tier still burns
    assert [(c.status, c.severity) for c in changes] == [
        (AlertStatus.FIRING, Severity.SEV1),
        (AlertStatus.RESOLVED, Severity.SEV1),
    ]
    assert changes[1].ended_at is not None
    assert changes[1].ended_at - fix * 60.0 <= 3600


def test_a_quiet_route_burning_slowly_pages_within_its_windows_of_wall_clock_time() -> None:
    """At 0.2 req/s (one request every 5 s, 1 s points) with 10 % failing, a 10x burn, the 6 h
    tier pages within hours: the windows span time, not requests (idle points move them on).
    Counted in requests-bearing points only, the "6 h" window held 30 h and read 2.5x."""
    key = SeriesKey("shop", "GET /quiet")
    monitor = SeriesMonitor(key, DetectionConfig())
    fired_at = None
    tier: BurnTier | None = None
    for second in range(8 * 3600):
        requests = 1 if second % 5 == 0 else 0
        failing = 1 if requests and (second // 5) % 10 == 0 else 0  # 10 % of requests
        point = make_point(key, float(second), requests, errors=failing)
        for alert in monitor.observe(point, point):
            firing = alert.kind is AlertKind.SLO_BURN and alert.status is AlertStatus.FIRING
            if firing and fired_at is None:
                fired_at, tier = second, monitor.burn.driving_tier()
    assert fired_at is not None, "a steady 10x burn on a quiet route never paged"
    assert tier is not None
    assert tier.threshold == 6.0
    assert tier.pages
    # 6x over 6 h and 30 min: a 10x burn from the start crosses it at about 3.6 h.
    assert 3 * 3600 <= fired_at <= 4.5 * 3600, fired_at / 3600
