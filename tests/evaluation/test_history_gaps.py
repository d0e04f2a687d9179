"""Implausible times and gaps in recorded history: refused, or skipped, never stepped through."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from stanch.core.alerts import AlertKind
from stanch.core.errors import ValidationError
from stanch.core.events import RequestEvent
from stanch.core.series import SeriesKey
from stanch.core.windows import Point
from stanch.demo.scenario import DEMO_START
from stanch.demo.synthetic import synthetic_events
from stanch.demo.traffic import TrafficProfile
from stanch.evaluation.backtest import backtest_events, backtest_points
from stanch.evaluation.backtest_cli import backtest_app
from stanch.evaluation.backtest_results import Candidate, render_markdown, replay_warnings
from stanch.evaluation.history import (
    MAX_TIME,
    MIN_TIME,
    format_utc,
    parse_history_time,
    read_events,
    read_points,
)
from stanch.evaluation.labels import Label, load_labels
from stanch.evaluation.replay_batches import DEFAULT_MAX_GAP_S, EventWindows

S = DEMO_START
DAY = 86_400.0
MS_HINT = "looks like milliseconds since the epoch; Stanch expects seconds"


def event(ts: float, route: str = "/search") -> RequestEvent:
    return RequestEvent(ts, "shop", "GET", route, 200, 0.04, "c1")


def event_line(ts: object) -> str:
    row = {"service": "shop", "method": "GET", "route": "/search", "status": 200}
    return json.dumps({"ts": ts, **row, "latency_s": 0.04})


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def quiet_minutes() -> list[RequestEvent]:
    """Ten minutes of the shop's ordinary traffic: past the detectors' warm-up."""
    return [e for batch in synthetic_events(S, 600.0, TrafficProfile(), seed=5) for e in batch]


# --------------------------------------------------------------------------- implausible times


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (1_732_500_000_000, MS_HINT),
        ("1732500000000", MS_HINT),
        (1.7325e15, "looks like microseconds since the epoch"),
        (1.7325e18, "looks like nanoseconds since the epoch"),
        (1e13, MS_HINT),  # year 318857, which once hung the replay
        (100.5, "outside 2000-01-01..2200-01-01 UTC (expected epoch seconds)"),
        (-1.0, "outside 2000-01-01..2200-01-01 UTC"),
        ("2201-01-01T00:00:00Z", "outside 2000-01-01..2200-01-01 UTC"),
        ("NaN", "time must be finite"),
    ],
)
def test_events_with_implausible_times_are_refused(
    tmp_path: Path, ts: object, expected: str
) -> None:
    """A time outside 2000..2200 is a ValidationError naming file, line and ts, with a hint
    when it looks like milli-, micro- or nanoseconds; never a datetime traceback."""
    path = write(tmp_path / "e.jsonl", [event_line(S), event_line(ts)])
    with pytest.raises(ValidationError) as info:
        list(read_events(path))
    message = str(info.value)
    assert message.startswith(f"{path}:2: ts: ")
    assert expected in message
    assert "\n" not in message


def test_points_with_millisecond_times_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        ["ts,service,route,requests,errors,p50,p95,p99", "1732500000000,shop,*,1,0,,,"],
    )
    with pytest.raises(ValidationError, match=rf"^{path}:2: ts: .*{MS_HINT}"):
        list(read_points(path))


@pytest.mark.parametrize("field", ["start", "end"])
def test_labels_with_millisecond_times_are_refused(tmp_path: Path, field: str) -> None:
    times = {"start": S, "end": S + 60, field: 1_732_500_000_000}
    path = write(
        tmp_path / "labels.yaml",
        ["- service: shop", f"  start: {times['start']}", f"  end: {times['end']}"],
    )
    line = 2 if field == "start" else 3
    with pytest.raises(ValidationError) as info:
        load_labels(path)
    assert str(info.value).startswith(f"{path}:{line}: [0].{field}: time 1732500000000 is")
    assert MS_HINT in str(info.value)


def test_plausible_range_is_2000_to_2200() -> None:
    assert parse_history_time(MIN_TIME) == MIN_TIME
    assert parse_history_time("2199-12-31T23:59:59Z") == MAX_TIME - 1
    for bad in (MIN_TIME - 1, MAX_TIME, float("inf")):
        with pytest.raises(ValueError, match=r"outside 2000|finite"):
            parse_history_time(bad)


def test_dates_of_any_float_format_without_raising() -> None:
    """Points from a store and labels built in code are not range-checked: showing them as
    dates must not raise."""
    assert format_utc(S) == "2026-11-25 09:00:00 UTC"
    for ts in (1e13, -1e20, float("nan"), float("inf")):
        assert format_utc(ts)
    assert "@" in Label("shop", 1e13, 1e13 + 1).title


@pytest.mark.parametrize("where", ["history", "labels"])
def test_cli_refuses_millisecond_times_with_exit_2_and_one_line(tmp_path: Path, where: str) -> None:
    history = write(tmp_path / "e.jsonl", [event_line(S), event_line(S + 1)])
    labels = write(tmp_path / "labels.yaml", [f"- {{service: shop, start: {S}, end: {S}}}"])
    if where == "history":
        write(history, [event_line(S), event_line(1_732_500_000_000)])
        expected = f"{history}:2: ts: time 1732500000000 is outside"
    else:
        write(labels, ["- {service: shop, start: 1732500000000, end: 1732500060000}"])
        expected = f"{labels}:1: [0].start: time 1732500000000 is outside"
    result = CliRunner().invoke(backtest_app, ["backtest", str(history), "--labels", str(labels)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert expected in text
    assert MS_HINT in text
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, ValueError)


# --------------------------------------------------------------------------- gaps


def test_event_windows_skip_a_long_gap_instead_of_closing_every_empty_window() -> None:
    """Two minutes of events, then one 30 days later: the windows of the gap are not closed
    one by one (that took minutes and gigabytes); the gap is counted."""
    events = [event(S + i * 0.5) for i in range(240)] + [event(S + 30 * DAY)]
    windows = EventWindows()
    started = time.perf_counter()
    batches = list(windows.batches(events))
    assert time.perf_counter() - started < 5.0
    starts = [batch[0].t for batch in batches]
    assert starts == [*(S + i for i in range(120)), S + 30 * DAY]
    assert windows.gaps == 1
    assert windows.events == 241


def test_a_short_silence_is_still_replayed_as_silence() -> None:
    """Up to max_gap_s without rows is silence, not missing history: zero points fill it."""
    quiet = DEFAULT_MAX_GAP_S - 60
    events = [event(S), event(S + 1), event(S + 2 + quiet)]
    windows = EventWindows()
    points = [p for batch in windows.batches(events) for p in batch]
    assert windows.gaps == 0
    route = [p for p in points if p.key == SeriesKey("shop", "GET /search")]
    assert [p.t for p in route] == [S + i for i in range(int(quiet) + 3)]
    assert sum(p.requests for p in route) == 3


def test_an_old_event_after_a_gap_is_late_and_does_not_reopen_the_gap() -> None:
    events = [event(S), event(S + 1), event(S + DAY), event(S + 0.5), event(S + DAY + 1)]
    windows = EventWindows()
    batches = list(windows.batches(events))
    assert [b[0].t for b in batches] == [S, S + 1, S + DAY, S + DAY + 1]
    assert (windows.gaps, windows.late) == (1, 1)
    assert sum(p.requests for b in batches for p in b if p.key.route == "*") == 5


def test_a_gap_in_events_is_missing_history_not_an_outage(
    quiet_minutes: list[RequestEvent],
) -> None:
    """Hours without events between two stretches raise no traffic-drop alert, and the
    replayed days count only the stretches with events."""
    later = [dataclasses.replace(e, ts=e.ts + 6 * 3600.0) for e in quiet_minutes]
    result = backtest_events([*quiet_minutes, *later], [Candidate("d")], [])[0]
    assert not [f for f in result.fires if f.kind is AlertKind.TRAFFIC_DROP]
    assert result.gaps == 1
    assert result.span_s == pytest.approx(1200.0, abs=3.0)
    assert result.longest_gap_s == pytest.approx(6 * 3600.0 - 600.0, abs=3.0)
    assert result.end is not None
    assert result.start is not None
    assert result.end - result.start == pytest.approx(6 * 3600.0 + 600.0, abs=3.0)


def points_of(events: list[RequestEvent]) -> list[Point]:
    return [p for batch in EventWindows().batches(events) for p in batch]


def test_one_stray_row_years_ahead_does_not_inflate_the_replayed_days(
    quiet_minutes: list[RequestEvent],
) -> None:
    """Ten minutes of points and one row dated 2029: 10 minutes (and a window) replayed, not
    three years; false alarms per day divide by that; the gap is reported."""
    points = points_of(quiet_minutes)
    stray = dataclasses.replace(points[-1], t=1_861_920_000.0)  # 2029-01-01
    label = Label("shop", S + 3600.0, S + 3700.0, name="in-the-gap")
    result = backtest_points([*points, stray], [Candidate("d")], [label])[0]
    assert result.span_s == pytest.approx(601.0)
    assert result.days < 0.01
    assert result.false_alarms_per_day == result.false_positives / (601.0 / DAY)
    assert (result.gaps, result.longest_gap_s) == (1, pytest.approx(1_861_920_000.0 - S - 600))
    assert result.outside == frozenset({0})  # a label inside the gap cannot be detected
    warning = next(w for w in replay_warnings(result) if "gap" in w)
    assert warning.startswith("the history has 1 gap(s) of more than 30 min without rows")
    assert "0.01 covered of 767.63 from first to last row" in warning
    assert "0.01 days (covered, of 767.63 from first to last row" in render_markdown([result])


def test_cli_replays_a_gap_quickly_and_reports_it(
    quiet_minutes: list[RequestEvent], tmp_path: Path
) -> None:
    """One event 30 days after the rest once made ``stanch backtest`` run for minutes and
    grow to gigabytes; now it replays in seconds and prints the covered span and the gap."""
    rows = [event_line(e.ts) for e in quiet_minutes[:20_000]]
    history = write(tmp_path / "e.jsonl", [*rows, event_line(quiet_minutes[-1].ts + 30 * DAY)])
    labels = write(tmp_path / "labels.yaml", ["[]"])
    started = time.perf_counter()
    result = CliRunner().invoke(backtest_app, ["backtest", str(history), "--labels", str(labels)])
    assert time.perf_counter() - started < 30.0
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 gap(s) skipped, the longest 30 d" in text
    assert "the history has 1 gap(s) of more than 30 min without rows" in text


def test_max_gap_option_sets_what_counts_as_missing_history(
    quiet_minutes: list[RequestEvent], tmp_path: Path
) -> None:
    """Ten minutes without a row is silence by default; with --max-gap 300 it is missing
    history, skipped and reported. The help says why gaps are skipped at all."""
    rows = [event_line(e.ts) for e in quiet_minutes[:5_000]]
    history = write(tmp_path / "e.jsonl", [*rows, event_line(quiet_minutes[4_999].ts + 600)])
    labels = write(tmp_path / "labels.yaml", ["[]"])
    args = ["backtest", str(history), "--labels", str(labels)]
    default = CliRunner().invoke(backtest_app, args)
    assert default.exit_code == 0, default.output
    assert "gap(s)" not in default.output
    lowered = CliRunner().invoke(backtest_app, [*args, "--max-gap", "300"])
    assert lowered.exit_code == 0, lowered.output
    text = " ".join(lowered.output.split())
    assert "the history has 1 gap(s) of more than 5 min without rows" in text
    refused = CliRunner().invoke(backtest_app, [*args, "--max-gap", "10", "--max-skew", "30"])
    assert refused.exit_code == 2
    assert "--max-gap 10 must be more than --max-skew 30" in " ".join(refused.output.split())
    group = typer.main.get_command(backtest_app)
    assert isinstance(group, TyperGroup)
    for name in ("backtest", "tune"):
        option = next(p for p in group.commands[name].params if p.name == "max_gap")
        assert isinstance(option, TyperOption)
        assert "missing history, not silence" in (option.help or "")
