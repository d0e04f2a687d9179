"""How fast a backtest replays history: events/s and x real time, from events and from points.

History is the demo shop at 25 req/s on average (``synthetic_events``, seed 11: daily cycle, slow
noise, client skew), with one search flood and one burst of failing checkouts, labeled. It is
written to a JSONL events file, and recorded as points (JSONL by ``PointRecorder``, and CSV);
each form is replayed with the default detector settings, one candidate, in a fresh pass. The
events replay is also timed straight from the generator (generation included, as the issue's
yardstick "24 h of synthetic events in < 86 s" reads). Last, ``tune``'s default sweep runs
over the first ``--tune-hours`` of the points. Run from the repository root::

    .venv/bin/python bench/backtest.py [--hours 24] [--tune-hours 2]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as dt
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _report import machine_lines, publish
from stanch.core.alerts import AlertKind
from stanch.core.events import RequestEvent
from stanch.demo.scenario import DEMO_START
from stanch.demo.synthetic import synthetic_events
from stanch.demo.traffic import Flood, TrafficProfile
from stanch.evaluation.backtest import backtest_events, backtest_file, backtest_points
from stanch.evaluation.backtest_results import BacktestResult, Candidate
from stanch.evaluation.history import read_points
from stanch.evaluation.labels import Label
from stanch.evaluation.recorders import PointRecorder
from stanch.evaluation.replay_batches import EventWindows
from stanch.evaluation.sweep import make_sweep
from stanch.evaluation.tune import propose

RESULTS = Path(__file__).parent / "results" / "backtest.md"
S = DEMO_START


def scenario(hours: float) -> tuple[float, Flood, tuple[float, float], list[Label]]:
    duration = hours * 3600.0
    # Early enough to fall inside the tune window too.
    flood_at, burst_at = S + min(3000.0, duration * 0.4), S + min(5400.0, duration * 0.7)
    flood = Flood("scraper-7", "GET", "/search?q=lamp", flood_at, flood_at + 240.0, 20.0)
    burst = (burst_at, burst_at + 120.0)
    labels = [
        Label("shop", flood.start, flood.end, route="GET /search", name="search flood"),
        Label("shop", *burst, route="POST /checkout", kind=AlertKind.ERROR_BURST, name="checkout"),
    ]
    return duration, flood, burst, labels


def events(duration: float, flood: Flood, burst: tuple[float, float]) -> Iterator[RequestEvent]:
    for batch in synthetic_events(S, duration, TrafficProfile(), seed=11, floods=[flood]):
        for event in batch:
            if event.route == "/checkout" and burst[0] <= event.ts < burst[1]:
                event = dataclasses.replace(event, status=503)
            yield event


def write_events(path: Path, stream: Iterator[RequestEvent]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for e in stream:
            row = {
                "ts": e.ts,
                "service": e.service,
                "method": e.method,
                "route": e.route,
                "status": e.status,
                "latency_s": e.latency_s,
                "client": e.client,
            }
            fh.write(json.dumps(row, separators=(",", ":")) + "\n")
            count += 1
    return count


def write_csv(path: Path, source: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["ts", "service", "route", "requests", "errors", "p50", "p95", "p99"])
        for p in read_points(source):
            qs = ["" if math.isnan(q) else repr(q) for q in (p.p50, p.p95, p.p99)]
            out.writerow([repr(p.t), p.key.service, p.key.route, p.requests, p.errors, *qs])


def timed(
    label: str, run: Callable[..., list[BacktestResult]], *args: Any
) -> tuple[BacktestResult, float]:
    print(f"{label} ...", flush=True, file=sys.stderr)
    started = time.perf_counter()
    result = run(*args)[0]
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours replayed")
    parser.add_argument("--tune-hours", type=float, default=2.0, help="hours in the tune sweep")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    duration, flood, burst, labels = scenario(args.hours)
    default = [Candidate("default")]
    rows: list[tuple[str, float, int, str, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        events_file, points_file, csv_file = (
            Path(tmp) / n for n in ("e.jsonl", "p.jsonl", "p.csv")
        )
        print("generating ...", flush=True, file=sys.stderr)
        started = time.perf_counter()
        n_events = sum(1 for _ in events(duration, flood, burst))
        generation = time.perf_counter() - started
        write_events(events_file, events(duration, flood, burst))
        windows = EventWindows()
        with PointRecorder(points_file) as recorder:
            for batch in windows.batches(events(duration, flood, burst)):
                recorder.write(batch)
        write_csv(csv_file, points_file)
        sizes = {p.name: p.stat().st_size / 1e6 for p in (events_file, points_file, csv_file)}

        result, wall = timed("events file", backtest_file, events_file, default, labels)
        rows.append(("events, JSONL file", wall, result.events, "events", result.span_s))
        quality = result
        stream = events(duration, flood, burst)
        gen_result, wall = timed("events generator", backtest_events, stream, default, labels)
        rows.append(("events, straight from synthetic_events", wall, n_events, "events", duration))
        assert gen_result.fires == quality.fires
        for name, path in (
            ("points, JSONL (PointRecorder)", points_file),
            ("points, CSV", csv_file),
        ):
            result, wall = timed(name, backtest_file, path, default, labels)
            assert result.fires == quality.fires, name
            rows.append((name, wall, result.points, "points", result.span_s))

        tune_end = S + args.tune_hours * 3600.0
        tune_points = [p for p in read_points(points_file) if p.t_end <= tune_end]
        sweep = make_sweep(Candidate("default"))
        print(f"tune sweep ({len(sweep.candidates)} candidates) ...", flush=True, file=sys.stderr)
        started = time.perf_counter()
        proposal = propose(sweep, backtest_points(tune_points, sweep.candidates, labels))
        tune_wall = time.perf_counter() - started

    fire_changed = {s.route for s in proposal.signals if s.fire_after != s.current_fire_after}
    command = "$ .venv/bin/python bench/backtest.py " + " ".join(sys.argv[1:])
    lines = [
        "# Backtest replay speed",
        "",
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        *machine_lines(),
        f"- load average (1 min) before / after: {load_before:.1f} / {os.getloadavg()[0]:.1f}"
        " (other work shares the machine; on a quiet one the speeds are higher)",
        f"- command: `{command.strip()}`",
        f"- history: {args.hours:g} simulated hours of the demo shop, {n_events:,} requests "
        f"({n_events / duration:.1f} req/s), 7 series (6 routes and the service), one search "
        "flood and one checkout error burst, labeled. Files: "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in sizes.items())
        + f". Generating the events alone takes {generation:.1f} s.",
        "- method: one pass per row, default detector settings, one candidate; wall time of the "
        "whole replay (reading, parsing, aggregating, detecting, scoring).",
        "",
        "| input | wall s | rows/s | x real time |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {wall:.1f} | {count / wall:,.0f} {unit}/s | {span / wall:,.0f} |"
            for name, wall, count, unit, span in rows
        ),
        "",
        f"Tune: the default sweep ({len(sweep.candidates)} candidates) over the first "
        f"{args.tune_hours:g} h of points took {tune_wall:.1f} s "
        f"({args.tune_hours * 3600.0 / tune_wall:,.0f}x real time; "
        f"{tune_wall / len(sweep.candidates) / args.tune_hours:.2f} s per candidate-hour).",
        "",
        f"Default settings over the {args.hours:g} h: {quality.alerts} alerts, "
        f"{quality.false_positives} false alarms ({quality.false_alarms_per_day:.2f}/day), "
        f"recall {quality.recall:.0%}, max time to detect {quality.max_ttd or 0:.0f} s. "
        f"Tuned on the first {args.tune_hours:g} h: "
        f"{sum(s.current != s.proposed for s in proposal.signals)} route+kind thresholds and "
        f"fire_after on {len(fire_changed)} route(s) changed; "
        f"proposal {proposal.result.false_positives} false alarms, "
        f"recall {proposal.result.recall or 0:.0%}, max time to detect "
        f"{proposal.result.max_ttd or 0:.0f} s.",
        "",
    ]
    publish("\n".join(lines), RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
