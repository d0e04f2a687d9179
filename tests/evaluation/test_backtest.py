"""Backtests: history readers, labels, alert-to-label matching, and full replays."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stanch.core.alerts import AlertKind
from stanch.core.detection_config import DetectionConfig, route_config
from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.runbook import load_runbook
from stanch.core.series import SeriesKey
from stanch.core.windows import Point
from stanch.demo.scenario import DEFAULT_RUNBOOK, DEMO_START
from stanch.demo.synthetic import synthetic_events
from stanch.demo.traffic import Flood, TrafficProfile
from stanch.evaluation.backtest import (
    backtest_events,
    backtest_file,
    backtest_points,
    matching_labels,
)
from stanch.evaluation.backtest_cli import backtest_app
from stanch.evaluation.backtest_results import (
    BacktestResult,
    Candidate,
    Fire,
    render_markdown,
    replay_warnings,
)
from stanch.evaluation.history import (
    parse_history_time,
    parse_time,
    read_events,
    read_points,
    sniff_format,
)
from stanch.evaluation.labels import Label, load_labels
from stanch.evaluation.recorders import PointRecorder, StorePointRecorder
from stanch.evaluation.replay_batches import EventWindows, PointOrder
from stanch.store import Store

S = DEMO_START
DURATION_S = 1800.0
FLOOD = Flood("scraper-7", "GET", "/search?q=lamp", S + 900, S + 1140, multiplier=20.0)
BURST = (S + 1380.0, S + 1500.0)  # every checkout fails
LABELS = [
    Label("shop", FLOOD.start, FLOOD.end, route="GET /search", name="search-flood"),
    Label("shop", *BURST, route="POST /checkout", kind=AlertKind.ERROR_BURST),
]


def incident_events() -> Iterator[RequestEvent]:
    """30 minutes of the shop: a search flood at 15 min and failing checkouts at 23 min."""
    for batch in synthetic_events(S, DURATION_S, TrafficProfile(), seed=3, floods=[FLOOD]):
        for event in batch:
            if event.route == "/checkout" and BURST[0] <= event.ts < BURST[1]:
                event = dataclasses.replace(event, status=503)
            yield event


def event_row(e: RequestEvent) -> dict[str, object]:
    return {
        "ts": e.ts,
        "service": e.service,
        "method": e.method,
        "route": e.route,
        "status": e.status,
        "latency_s": e.latency_s,
        "client": e.client,
    }


@pytest.fixture(scope="module")
def events() -> list[RequestEvent]:
    return list(incident_events())


@pytest.fixture(scope="module")
def points(events: list[RequestEvent]) -> list[Point]:
    return [p for batch in EventWindows().batches(events) for p in batch]


@pytest.fixture(scope="module")
def points_file(points: list[Point], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history") / "points.jsonl"
    with PointRecorder(path) as recorder:
        recorder.write(points)
    return path


@pytest.fixture(scope="module")
def default_result(points: list[Point]) -> BacktestResult:
    return backtest_points(points, [Candidate("default")], LABELS)[0]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z: history times must lie in 2000..2200
GOOD_EVENT = json.dumps(
    {
        "ts": T0 + 100.5,
        "service": "shop",
        "method": "get",
        "route": "/search",
        "status": 200,
        "latency_s": 0.04,
        "client": "c1",
    }
)


# --------------------------------------------------------------------------- readers


def test_events_reader_parses_rows_and_skips_blank_lines(tmp_path: Path) -> None:
    """Each JSON line becomes a RequestEvent; blank lines are skipped; methods are upper-cased."""
    iso = json.dumps({**json.loads(GOOD_EVENT), "ts": "2025-11-24T16:01:40Z", "extra": 1})
    path = write_lines(tmp_path / "e.jsonl", [GOOD_EVENT, "", "  ", iso])
    events = list(read_events(path))
    assert [e.ts for e in events] == [T0 + 100.5, T0 + 100.0]
    assert events[0] == RequestEvent(T0 + 100.5, "shop", "GET", "/search", 200, 0.04, "c1")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", ":3: (json): not a valid JSON object"),
        ("[1, 2]", ":3: (row): expected a JSON object, got list"),
        ('{"ts": 1}', ":3: service: required field missing"),
        (GOOD_EVENT.replace("200", "700"), ":3: status: expected an HTTP status 100..599"),
        (GOOD_EVENT.replace("200", "true"), ":3: status: expected an HTTP status"),
        (GOOD_EVENT.replace("0.04", "-1"), ":3: latency_s: must be >= 0"),
        (GOOD_EVENT.replace("1764000100.5", '"yesterday"'), ":3: ts: expected epoch seconds"),
        (GOOD_EVENT.replace("1764000100.5", "1" + "0" * 400), ":3: ts: time out of range"),
        (GOOD_EVENT.replace("1764000100.5", "NaN"), ":3: ts: time must be finite"),
        (GOOD_EVENT.replace('"shop"', '""'), ":3: service: expected a non-empty string"),
        (GOOD_EVENT.replace('"c1"', "5"), ":3: client: expected a non-empty string"),
    ],
)
def test_events_reader_names_file_line_and_field(tmp_path: Path, line: str, expected: str) -> None:
    """A bad row stops the replay with file:line: field: problem (lines count blank ones)."""
    path = write_lines(tmp_path / "e.jsonl", [GOOD_EVENT, "", line])
    with pytest.raises(ValidationError) as info:
        list(read_events(path))
    assert str(info.value).startswith(f"{path}{expected}")


def test_missing_history_file_is_a_validation_error(tmp_path: Path) -> None:
    """An unreadable file is reported like a bad row, at line 1."""
    with pytest.raises(ValidationError, match=r"nope\.jsonl:1: \(file\): cannot read"):
        list(read_events(tmp_path / "nope.jsonl"))


@given(st.lists(st.one_of(st.binary(), st.text().map(str.encode)), max_size=5))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_events_reader_raises_only_validation_errors(lines: list[bytes]) -> None:
    """Whatever bytes the lines hold, reading them yields events or raises ValidationError."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.jsonl"
        path.write_bytes(b"\n".join(lines))
        with contextlib.suppress(ValidationError):
            list(read_events(path))


@given(
    st.dictionaries(
        st.sampled_from(["ts", "service", "method", "route", "status", "latency_s", "client"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.integers(min_value=10**308, max_value=10**400),
            st.floats(),
            st.text(max_size=5),
            st.lists(st.integers(), max_size=2),
        ),
    )
)
@settings(max_examples=300, deadline=None)
def test_events_reader_refuses_bad_json_values_cleanly(row: dict[str, object]) -> None:
    """JSON objects of the right shape but wrong values are refused with ValidationError."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.jsonl"
        path.write_text(json.dumps(row), encoding="utf-8")
        message = f"{path}:1: (valid)"
        try:
            list(read_events(path))
        except ValidationError as exc:
            message = str(exc)
        assert message.startswith(f"{path}:1: ")


def test_points_round_trip_through_the_recorder(points: list[Point], points_file: Path) -> None:
    """PointRecorder writes what read_points reads back: same series, counts and quantiles."""
    back = list(read_points(points_file))
    assert len(back) == len(points)
    for a, b in zip(points[:2000], back[:2000], strict=True):
        assert (a.key, a.t, a.interval, a.requests, a.errors, a.served) == (
            b.key,
            b.t,
            b.interval,
            b.requests,
            b.errors,
            b.served,
        )
        for q in ("p50", "p95", "p99"):
            x, y = getattr(a, q), getattr(b, q)
            assert x == y or (math.isnan(x) and math.isnan(y))
        top = sorted(a.clients.items(), key=lambda kv: (-kv[1].requests, kv[0]))[:10]
        assert b.clients == dict(top)


def test_points_csv_reads_service_wide_rows_and_empty_quantiles(tmp_path: Path) -> None:
    """CSV points: ``*`` is the service series, an empty quantile is NaN, interval defaults."""
    path = write_lines(
        tmp_path / "p.csv",
        [
            "ts,service,route,requests,errors,p50,p95,p99,enforced",
            "1764000060,shop,*,10,1,0.01,0.02,0.03,2",
            "1764000060,shop,GET /search,0,0,,,,",
        ],
    )
    first, second = read_points(path, interval=60.0)
    assert first.key == SeriesKey("shop", "*")
    assert (first.requests, first.served, first.errors, first.enforced) == (10, 8, 1, 2)
    assert first.interval == 60.0
    assert math.isnan(second.p95)
    assert sniff_format(path) == "points"


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["ts,service,route,requests"], ":1: (header): missing column(s) errors, p50"),
        (
            ["ts,service,route,requests,errors,p50,p95,p99", "1764000000,shop,*,1,2,,,"],
            ":2: errors: 2 is",
        ),
        (
            ["ts,service,route,requests,errors,p50,p95,p99", "1764000000,shop,search,1,0,,,"],
            ":2: route:",
        ),
        (
            ["ts,service,route,requests,errors,p50,p95,p99", "1764000000,shop,*,x,0,,,"],
            ":2: requests:",
        ),
        (
            [
                "ts,service,route,requests,errors,p50,p95,p99",
                "1764000000,shop,*,1,0,,,",
                "1764000000,2",
            ],
            ":3: (row)",
        ),
        (
            ["ts,service,route,requests,errors,p50,p95,p99", "1764000000,shop,*,1,0,-1,,"],
            ":2: p50: must",
        ),
    ],
)
def test_points_csv_bad_rows_name_line_and_field(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    """A bad CSV row is reported with its line and column."""
    path = write_lines(tmp_path / "p.csv", lines)
    with pytest.raises(ValidationError) as info:
        list(read_points(path))
    assert str(info.value).startswith(f"{path}{expected}")


def test_sniff_format_tells_events_from_points(tmp_path: Path, points_file: Path) -> None:
    """JSONL with ``requests`` holds points; anything else is read as events."""
    assert sniff_format(points_file) == "points"
    assert sniff_format(write_lines(tmp_path / "e.jsonl", ["", GOOD_EVENT])) == "events"


def test_parse_time_takes_epochs_iso_and_naive_times_as_utc() -> None:
    """Epoch numbers and strings, ISO-8601 with offsets, and naive times (UTC) all parse."""
    assert parse_time(60) == parse_time("60") == 60.0
    assert parse_time("1970-01-01T00:01:00") == parse_time("1970-01-01T01:01:00+01:00") == 60.0
    assert parse_history_time("2025-11-24T16:01:00Z") == parse_history_time(T0 + 60) == T0 + 60
    with pytest.raises(ValueError, match="finite"):
        parse_time(float("inf"))


# --------------------------------------------------------------------------- labels


def test_labels_load_from_yaml_and_json(tmp_path: Path) -> None:
    """YAML timestamps, ISO strings and epoch seconds all work; JSON is read the same way."""
    yaml_path = tmp_path / "l.yaml"
    yaml_path.write_text(
        "- service: shop\n  route: GET /search\n  kind: traffic_spike\n"
        "  start: 2025-11-24T16:01:00Z\n  end: 1764000120\n  name: flood\n"
        "- {service: shop, start: '2025-11-24T16:03:00', end: 1.76400018e9}\n",
        encoding="utf-8",
    )
    json_path = tmp_path / "l.json"
    json_path.write_text(json.dumps([{"service": "shop", "start": T0 + 1e2, "end": T0 + 2e2}]))
    flood, whole = load_labels(yaml_path)
    assert flood == Label(
        "shop", T0 + 60, T0 + 120, "GET /search", AlertKind.TRAFFIC_SPIKE, "flood"
    )
    assert (whole.start, whole.end, whole.route, whole.kind) == (T0 + 180, T0 + 180, None, None)
    assert load_labels(json_path) == [Label("shop", T0 + 100, T0 + 200)]
    assert load_labels(write_lines(tmp_path / "empty.yaml", [""])) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- service: shop\n  start: 1\n  end: 2\n  rout: x\n", ":4: [0].rout: unknown field"),
        ("- service: shop\n  start: 1764000005\n  end: 1764000002\n", ":3: [0].end: is before"),
        (
            "- service: shop\n  start: 1764000001\n  end: 1764000002\n  kind: boom\n",
            ":4: [0].kind: expected one",
        ),
        ("- start: 1\n  end: 2\n", ":1: [0].service: required field missing"),
        ("- service: shop\n  start: soon\n  end: 2\n", ":2: [0].start: expected epoch"),
        ("service: shop\n", ":1: (root): expected a list"),
        ("- [unclosed\n", ":2: (yaml):"),
    ],
)
def test_bad_labels_name_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    """A bad label file names the line and field of the problem."""
    path = tmp_path / "labels.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load_labels(path)
    assert str(info.value).startswith(f"{path}{expected}")


def test_label_covers_routes_kinds_and_service_wide_alerts() -> None:
    """Route globs and kinds narrow a label; a service-wide alert covers any of its routes."""
    label = Label("shop", 0.0, 10.0, route="GET /products*", kind=AlertKind.TRAFFIC_SPIKE)
    assert label.covers("shop", "GET /products/{product_id}", AlertKind.TRAFFIC_SPIKE)
    assert label.covers("shop", "*", AlertKind.TRAFFIC_SPIKE)
    assert not label.covers("shop", "GET /search", AlertKind.TRAFFIC_SPIKE)
    assert not label.covers("shop", "*", AlertKind.ERROR_BURST)
    assert not label.covers("other", "*", AlertKind.TRAFFIC_SPIKE)
    assert Label("shop", 0.0, 1.0).covers("shop", "POST /x", AlertKind.LATENCY_SPIKE)


@pytest.mark.parametrize(
    ("at", "matched"),
    [(69.0, ()), (70.0, (0,)), (120.0, (0, 1)), (200.0, (0, 1)), (200.5, (1,)), (300.5, ())],
)
def test_alerts_match_labels_from_start_minus_slack_to_end(
    at: float, matched: tuple[int, ...]
) -> None:
    """The matching window is [start - slack, end], both ends included."""
    labels = [Label("shop", 100.0, 200.0), Label("shop", 150.0, 300.0)]
    assert matching_labels(labels, "shop", "*", AlertKind.ERROR_BURST, at, 30.0) == matched


def test_result_metrics_count_fires_and_first_detections() -> None:
    """Precision counts fires; time to detect is the first matching fire; FP per replayed day."""
    labels = (Label("shop", 100.0, 200.0), Label("shop", 1000.0, 1100.0))
    fires = (
        Fire("shop", "*", AlertKind.ERROR_BURST, 110.0, 107.0, (0,)),
        Fire("shop", "GET /a", AlertKind.ERROR_BURST, 104.0, 101.0, (0,)),
        Fire("shop", "GET /a", AlertKind.TRAFFIC_DROP, 500.0, 497.0, ()),
    )
    candidate = Candidate("c")
    replayed = backtest_points([], [candidate], list(labels))[0]
    assert replayed.precision is None
    assert replayed.recall is None  # nothing replayed: no label could have been detected
    assert replayed.missed == []
    assert replayed.unreplayed == list(labels)
    result = dataclasses.replace(replayed, span_s=43_200.0, fires=fires, outside=frozenset({1}))
    assert (result.alerts, result.true_positives, result.false_positives) == (3, 2, 1)
    assert result.precision == pytest.approx(2 / 3)
    assert result.false_alarms_per_day == 2.0
    assert result.recall == 0.0  # fires alone do not make detections: series rows do
    assert result.missed == [labels[0]]


def test_route_config_prefers_exact_keys_then_globs_in_order() -> None:
    """Exact key, then the first matching glob; ``*`` is the service series, not a glob."""
    defaults = DetectionConfig()
    a, b, star = (dataclasses.replace(defaults, spike_threshold=v) for v in (1.0, 2.0, 3.0))
    routes = {"GET /p*": a, "GET /products": b, "GET /*": b, "*": star}
    assert route_config("GET /products", defaults, routes) is b
    assert route_config("GET /px", defaults, routes) is a
    assert route_config("GET /search", defaults, routes) is b
    assert route_config("*", defaults, routes) is star
    assert route_config("POST /cart", defaults, routes) is defaults


# --------------------------------------------------------------------------- replays


def test_default_settings_find_both_incidents_quickly_and_nothing_else(
    default_result: BacktestResult,
) -> None:
    """The flood and the error burst are detected within 10 s; normal traffic raises nothing."""
    result = default_result
    assert result.recall == 1.0
    assert result.false_positives == 0
    assert result.precision == 1.0
    assert result.max_ttd is not None
    assert 0 <= result.max_ttd <= 10.0
    assert result.days == pytest.approx(DURATION_S / 86_400.0)
    kinds = {(f.route, f.kind) for f in result.fires}
    assert ("GET /search", AlertKind.TRAFFIC_SPIKE) in kinds
    assert ("POST /checkout", AlertKind.ERROR_BURST) in kinds


def test_too_sensitive_settings_show_false_alarms(points: list[Point]) -> None:
    """Low thresholds that fire on one point still find the incidents, and page all day."""
    twitchy = DetectionConfig(spike_threshold=2.0, latency_threshold=2.0, fire_after=1)
    result = backtest_points(points, [Candidate("twitchy", twitchy)], LABELS)[0]
    assert result.recall == 1.0
    assert result.false_positives > 10
    assert result.false_alarms_per_day > 100
    assert result.precision is not None
    assert result.precision < 0.5


def test_events_and_recorded_points_replay_alike(
    events: list[RequestEvent], points_file: Path, default_result: BacktestResult
) -> None:
    """Replaying events aggregates them exactly as the recorded points file holds them."""
    from_events = backtest_events(events, [Candidate("default")], LABELS)[0]
    from_file = backtest_file(points_file, [Candidate("default")], LABELS)[0]
    assert from_events.fires == default_result.fires == from_file.fires
    assert from_events.events == len(events)
    assert from_events.late == 0


def test_runbook_actions_are_counted_per_alert(points: list[Point]) -> None:
    """With the demo runbook, the checkout burst asks for a breaker and a rollback, the flood
    for a client throttle, and no action comes from a false alarm."""
    runbook = load_runbook(DEFAULT_RUNBOOK)
    result = backtest_points(points, [Candidate("d")], LABELS, runbook=runbook)[0]
    assert result.actions["checkout-errors: circuit_break (auto)"] == 1
    assert result.actions["client-flood: throttle_client (approve)"] >= 1
    assert result.actions_on_false_alarms == {}
    assert "| runbook action |" in render_markdown([result])


def test_late_events_are_counted_beyond_the_skew_and_placed_within_it() -> None:
    """An event more than max_skew_s older than a newer one is late (counted, and folded into
    the next open window, as live); within the skew it still lands in its own window."""
    event = RequestEvent(100.2, "shop", "GET", "/a", 200, 0.01)
    stream = [event, *(dataclasses.replace(event, ts=t) for t in (103.5, 97.0, 104.0))]
    tight = backtest_events(stream, [Candidate("d")], [], max_skew_s=2.0)[0]
    assert (tight.events, tight.late, tight.max_lateness_s) == (4, 1, 6.5)
    assert "1 of 4 events (25.0%) came more than 2 s after" in replay_warnings(tight)[0]
    default = backtest_events(stream, [Candidate("d")], [])[0]
    assert (default.events, default.late) == (4, 0)
    assert replay_warnings(default) == []
    windows = EventWindows()
    points = [p for batch in windows.batches(stream) for p in batch if p.key.route == "*"]
    assert {p.t: p.requests for p in points if p.requests} == {
        97.0: 1,
        100.0: 1,
        103.0: 1,
        104.0: 1,
    }


def _skewed(items: list[float], jitter: list[float]) -> list[float]:
    """``items`` reordered so that none comes more than max(jitter) after a larger one."""
    return [
        t
        for _, t in sorted(
            zip((t + j for t, j in zip(items, jitter, strict=True)), items, strict=True)
        )
    ]


@given(
    st.lists(st.floats(0.0, 120.0, allow_nan=False), min_size=1, max_size=60).flatmap(
        lambda ts: st.tuples(
            st.just(sorted(ts)), st.lists(st.floats(0.0, 9.99), min_size=len(ts), max_size=len(ts))
        )
    )
)
@settings(max_examples=150, deadline=None)
def test_events_shuffled_within_the_skew_close_into_the_sorted_points(
    case: tuple[list[float], list[float]],
) -> None:
    """Events out of order by less than max_skew_s give exactly the points of sorted events."""
    times, jitter = case
    routes = ["/a", "/b"]

    def stream(order: list[float]) -> list[RequestEvent]:
        return [
            RequestEvent(
                t, "shop", "GET", routes[int(t * 7) % 2], 200 + 300 * (int(t) % 2), 0.01 + t / 1000
            )
            for t in order
        ]

    def close(events: list[RequestEvent]) -> tuple[list[Point], int]:
        windows = EventWindows(max_skew_s=10.0)
        return [p for batch in windows.batches(events) for p in batch], windows.late

    sorted_points, _ = close(stream(times))
    shuffled_points, late = close(stream(_skewed(times, jitter)))
    assert late == 0
    assert shuffled_points == sorted_points


@given(
    st.lists(st.integers(0, 60), min_size=1, max_size=60).flatmap(
        lambda ts: st.tuples(
            st.just(sorted(ts)), st.lists(st.floats(0.0, 4.99), min_size=len(ts), max_size=len(ts))
        )
    )
)
@settings(max_examples=150, deadline=None)
def test_points_shuffled_within_the_skew_replay_in_window_order(
    case: tuple[list[int], list[float]],
) -> None:
    """PointOrder gives the windows of points out of order by < max_skew_s in time order,
    each whole; a window already released takes no more points (late, dropped)."""
    times, jitter = case
    points = [
        Point(SeriesKey("shop", f"GET /{i}"), float(t), 1.0, 1, 1, 0, 0, 0.1, 0.1, 0.1)
        for i, t in enumerate(times)
    ]
    by_t = {p.key: p.t for p in points}
    order = PointOrder(max_skew_s=5.0)
    jittered = sorted(
        zip(
            (p.t + j for p, j in zip(points, jitter, strict=True)),
            range(len(points)),
            points,
            strict=True,
        )
    )
    batches = list(order.batches(p for _, _, p in jittered))
    assert order.late == 0
    assert [b[0].t for b in batches] == sorted({float(t) for t in times})
    assert sorted(p.key.route for b in batches for p in b) == sorted(p.key.route for p in points)
    assert all(by_t[p.key] == b[0].t for b in batches for p in b)
    tight = PointOrder(max_skew_s=0.0)
    (only,) = tight.batches(reversed(points))  # the newest window; every older one is late
    assert [p.t for p in only] == [float(t) for t in times if t == times[-1]]
    assert tight.late == len(points) - len(only)


def test_points_must_match_the_detection_interval(points: list[Point]) -> None:
    """Points of another window length than the settings' interval_s are refused."""
    ten = DetectionConfig(interval_s=10.0)
    with pytest.raises(ValidationError, match="interval_s=10"):
        backtest_points(points[:10], [Candidate("ten", ten)], [])


def test_markdown_report_lists_candidates_and_missed_labels(points: list[Point]) -> None:
    """The report has a summary row per candidate and names the incidents a candidate missed."""
    # The flood also slows GET /search, which the ensemble's latency signal sees: blind it too.
    blind = DetectionConfig(
        spike_threshold=1e6, error_threshold=1e6, burn_threshold=1e6, latency_threshold=1e6
    )
    results = backtest_points(points[:100_000], [Candidate("a"), Candidate("blind", blind)], LABELS)
    text = render_markdown(results)
    assert "| a |" in text
    assert "| blind |" in text
    assert "Missed: search-flood" in text


# --------------------------------------------------------------------------- CLI


def test_cli_backtest_end_to_end(points_file: Path, tmp_path: Path) -> None:
    """``stanch backtest`` scores the current settings and a grid, and writes Markdown."""
    labels = tmp_path / "labels.json"
    rows = [{k: v for k, v in dataclasses.asdict(lb).items() if v} for lb in LABELS]
    labels.write_text(json.dumps(rows), encoding="utf-8")
    report = tmp_path / "report.md"
    result = CliRunner().invoke(
        backtest_app,
        [
            "backtest",
            str(points_file),
            "--labels",
            str(labels),
            "--grid",
            "spike_threshold=2,6",
            "--grid",
            "fire_after=1",
            "--markdown",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "x real time" in result.output
    text = report.read_text(encoding="utf-8")
    # 5 alerts, none false: with the ensemble the flood's latency rise on GET /search pages too.
    assert "| current | 5 | 5 | 0 |" in text.replace("  ", " ")
    assert "spike_threshold=2 fire_after=1" in text


def test_cli_backtest_without_grid_shows_one_candidate_per_series(
    points_file: Path, tmp_path: Path
) -> None:
    """Without --grid only the current settings run, with their per-series rows and actions."""
    labels = write_lines(tmp_path / "labels.yaml", ["[]"])
    result = CliRunner().invoke(
        backtest_app,
        ["backtest", str(points_file), "--labels", str(labels), "--runbook", str(DEFAULT_RUNBOOK)],
    )
    assert result.exit_code == 0, result.output
    assert "per series" in result.output
    assert result.output.count("│ current") == 1


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("history", "no such history file"),
        ("row", "e.jsonl:2: status: expected an HTTP status"),
        ("labels", "labels.yaml:1: [0].start: required field missing"),
        ("grid", "--grid fire_after=0: must be at least 1"),
        ("runbook", "rb.yaml:1: (root): empty runbook"),
        ("config", "d.yaml:3: detection.defaults.spike: unknown setting"),
    ],
)
def test_cli_backtest_reports_bad_input_with_exit_2(
    tmp_path: Path, bad: str, expected: str
) -> None:
    """Bad files and options end with exit 2 and a message naming file and line, no traceback."""
    history = write_lines(tmp_path / "e.jsonl", [GOOD_EVENT, GOOD_EVENT.replace("200", "9")])
    if bad != "row":
        history = write_lines(tmp_path / "e.jsonl", [GOOD_EVENT])
    labels = write_lines(
        tmp_path / "labels.yaml",
        [
            "- {service: shop, end: 2}"
            if bad == "labels"
            else "- {service: shop, start: 1764000001, end: 1764000002}"
        ],
    )
    args = ["backtest", str(history), "--labels", str(labels)]
    if bad == "history":
        args[1] = str(tmp_path / "missing.jsonl")
    if bad == "grid":
        args += ["--grid", "fire_after=0"]
    if bad == "runbook":
        args += ["--runbook", str(write_lines(tmp_path / "rb.yaml", [""]))]
    if bad == "config":
        config = write_lines(tmp_path / "d.yaml", ["detection:", "  defaults:", "    spike: 3"])
        args += ["--config", str(config)]
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, ValueError)


# --------------------------------------------------------------------------- history problems


def labels_file(path: Path, labels: list[Label]) -> Path:
    rows = [{k: v for k, v in dataclasses.asdict(lb).items() if v} for lb in labels]
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_cli_warns_about_reversed_history_and_says_how_to_fix_it(
    events: list[RequestEvent], tmp_path: Path
) -> None:
    """A reversed events file (``tac``) exits 0 but says, on the terminal, that nearly every
    event came late, why, and how to sort the file; the flood it hides is not "missed"."""
    first_minutes = [e for e in events if e.ts < S + 300]
    history = write_lines(
        tmp_path / "rev.jsonl", [json.dumps(event_row(e)) for e in reversed(first_minutes)]
    )
    labels = labels_file(tmp_path / "labels.json", LABELS)
    result = CliRunner().invoke(backtest_app, ["backtest", str(history), "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "% of the history is out of time order (a reversed or unsorted file?)" in text
    assert f"jq -c -s 'sort_by(.ts)[]' {history} > sorted.jsonl" in text
    assert "came more than 30 s after a newer one" in text
    assert "2 labeled incident(s) lie outside the replayed history" in text
    assert "missed:" not in text


def test_cli_refuses_history_without_rows(tmp_path: Path) -> None:
    """An empty history file is an error naming it (exit 2), for backtest and tune alike."""
    history = write_lines(tmp_path / "e.jsonl", [""])
    labels = labels_file(tmp_path / "labels.json", LABELS)
    for command in ("backtest", "tune"):
        result = CliRunner().invoke(backtest_app, [command, str(history), "--labels", str(labels)])
        assert result.exit_code == 2, result.output
        assert f"{history}:1: (file): no events to replay" in " ".join(result.output.split())


def test_labels_outside_the_history_are_reported_apart(points: list[Point]) -> None:
    """A label the replayed span cannot contain is neither detected nor missed: recall and the
    report leave it out, and a warning names it."""
    tomorrow = Label("shop", S + 86_400.0, S + 86_500.0, name="tomorrow")
    result = backtest_points(points[:20_000], [Candidate("d")], [*LABELS, tomorrow])[0]
    assert result.outside == frozenset({2})
    assert result.unreplayed == [tomorrow]
    assert tomorrow not in result.missed
    assert result.recall == len(result.detections) / 2
    warning = replay_warnings(result)[-1]
    assert warning.startswith("1 labeled incident(s) lie outside the replayed history")
    assert warning.endswith(": tomorrow.")
    report = render_markdown([result])
    assert "Outside the replayed history (not scored): tomorrow" in report
    assert "> **Warning:** 1 labeled incident(s)" in report


def test_duplicated_points_are_counted_and_dropped(points: list[Point]) -> None:
    """A points file that repeats windows replays them once and says how many it dropped."""
    head = points[:700]
    result = backtest_points([*head, *head[-7:]], [Candidate("d")], [])[0]
    assert (result.points, result.duplicates, result.rows) == (700, 7, 707)
    assert "7 points repeated a series' window already replayed" in replay_warnings(result)[0]


def test_cli_backtest_from_the_store_matches_the_file(points: list[Point], tmp_path: Path) -> None:
    """``--db`` replays the points StorePointRecorder wrote: the same report as a file of
    them; ``--since``/``--until`` select windows, and an empty selection is an error."""
    head = [p for p in points if p.t < S + 1200.0]  # the flood, not the checkout burst
    url = f"sqlite:///{tmp_path / 'stanch.db'}"
    with Store.open(url) as store, StorePointRecorder(store) as recorder:
        recorder.write(head)  # the engine writes a step at a time; one call is quicker here
    with PointRecorder(tmp_path / "points.jsonl") as recorder:
        recorder.write(head)
    labels = labels_file(tmp_path / "labels.json", LABELS)
    reports = {}
    for name, source in (("file", [str(tmp_path / "points.jsonl")]), ("db", ["--db", url])):
        report = tmp_path / f"{name}.md"
        result = CliRunner().invoke(
            backtest_app,
            ["backtest", *source, "--labels", str(labels), "--markdown", str(report)],
        )
        assert result.exit_code == 0, result.output
        reports[name] = report.read_text(encoding="utf-8")
    assert reports["db"] == reports["file"]
    assert "Outside the replayed history (not scored): shop POST /checkout" in reports["db"]
    before_flood = datetime.fromtimestamp(FLOOD.start - 60, UTC).isoformat()
    args = ["backtest", "--db", url, "--labels", str(labels)]
    result = CliRunner().invoke(backtest_app, [*args, "--until", before_flood])
    assert result.exit_code == 0, result.output
    assert "2 labeled incident(s) lie outside" in " ".join(result.output.split())
    result = CliRunner().invoke(backtest_app, [*args, "--since", str(S + 7200)])
    assert result.exit_code == 2
    assert f"{url}: no points to replay from" in " ".join(result.output.split())
    assert "it holds 2026-11-25T09:00:00Z to 2026-11-25T09:19:59Z" in result.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["HISTORY", "--db", "DB"], "give a history file or --db URL (one of them)"),
        ([], "give a history file or --db URL (one of them)"),
        (["HISTORY", "--since", "1h"], "--since and --until select points of --db"),
        (["--db", "nowhere.db"], "nowhere.db: no Stanch database there (--db)"),
        (["--db", "DB", "--since", "soon"], "--since soon: expected an ISO-8601 time"),
        (["--db", "DB", "--since", "20", "--until", "10"], "--until 10 is not after --since 20"),
    ],
)
def test_cli_history_options_are_checked(tmp_path: Path, extra: list[str], expected: str) -> None:
    """Conflicting or bad history options end with exit 2 and a message, no traceback."""
    history = write_lines(tmp_path / "e.jsonl", [GOOD_EVENT])
    db = f"sqlite:///{tmp_path / 'stanch.db'}"
    Store.open(db).close()
    labels = labels_file(tmp_path / "labels.json", [])
    swap = {"HISTORY": str(history), "DB": db, "nowhere.db": str(tmp_path / "nowhere.db")}
    args = ["backtest", *(swap.get(a, a) for a in extra), "--labels", str(labels)]
    result = CliRunner().invoke(backtest_app, args)
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
