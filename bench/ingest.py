"""Events per second ``stanch serve`` accepts over HTTP on loopback, and proof that none is lost.

The server runs as a subprocess (``stanch serve``, so the load generator does not share its
GIL), with an agent token made by ``stanch token create``. Several load processes post batches
to ``POST /api/v1/events`` for a fixed time, plain JSON and gzip, each variant under its own
service name; every body is rebuilt four times a second with fresh timestamps, as an agent's
would be. A baseline server (the same uvicorn, one FastAPI endpoint that only inflates and
parses the JSON) takes the same POSTs in the same run, and the table prints the ratios.

Zero loss: once the load stops and the engine's step loop has closed the last windows, the
``stanch_requests_total{route="*"}`` of each variant's service, scraped from ``/metrics`` with the
token, must equal the events the server accepted (the sum of its ``202 {"accepted": n}``), and
``stanch_events_late_total`` must be 0. Run from the repository root::

    .venv/bin/python bench/ingest.py [--seconds 10] [--clients 4] [--batch 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from prometheus_client.parser import text_string_to_metric_families

from _report import machine_lines

HOST = "127.0.0.1"
RESULTS = Path(__file__).parent / "results" / "ingest.md"
TARGET_EPS = 50_000
ROUTES = [
    ("GET", "/products"),
    ("GET", "/products/{product_id}"),
    ("POST", "/cart"),
    ("POST", "/checkout"),
    ("GET", "/orders/{order_id}"),
    ("GET", "/search"),
    ("DELETE", "/cart/{item_id}"),
    ("GET", "/"),
]
REBUILD_S = 0.25  # bodies get fresh timestamps this often, like an agent's flushes
NOTES = "## Notes"  # what follows this heading in the results file is kept on a rerun
CAPACITY = 200_000  # the server's ingest queue (STANCH_INGEST_CAPACITY, the default)


# ---------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def stanch_command() -> list[str]:
    script = Path(sys.executable).with_name("stanch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from stanch.cli import main; main()"]


def baseline_app() -> FastAPI:
    """The floor: one endpoint that inflates and parses the body, and counts the events."""
    app = FastAPI()

    @app.post("/api/v1/events", status_code=202)
    async def events(request: Request) -> dict[str, int]:
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        return {"accepted": len(json.loads(body)["events"])}

    return app


def run_baseline(port: int) -> None:
    import uvicorn

    uvicorn.run(baseline_app(), host=HOST, port=port, log_level="warning")


@contextlib.contextmanager
def process(command: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[int]:
    """A server subprocess (its pid), terminated on the way out."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            yield proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code in (200, 404):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up; see {log}:\n{log.read_text()[-2000:]}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- load


def make_body(service: str, batch: int, now: float, rng: random.Random, gz: bool) -> bytes:
    """One batch of ``service``'s events spread over the last half second."""
    events = []
    for i in range(batch):
        method, route = ROUTES[i % len(ROUTES)]
        status = 500 if rng.random() < 0.01 else 200
        latency = round(rng.lognormvariate(-4.0, 0.6), 6)
        client = f"client-{rng.randrange(200)}"
        events.append([now - 0.5 + 0.5 * i / batch, method, route, status, latency, client, ""])
    body = json.dumps({"service": service, "version": "bench", "events": events}).encode()
    return gzip.compress(body, compresslevel=1) if gz else body


def load(
    url: str, token: str, service: str, gz: bool, batch: int, start_at: float, seconds: float
) -> dict[str, Any]:
    """One load process: post batches back to back from ``start_at`` for ``seconds``."""
    rng = random.Random(hash((service, os.getpid())))
    headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    if gz:
        headers["content-encoding"] = "gzip"
    latencies: list[float] = []
    accepted = refused = failed = 0
    problem = ""
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        body, built = make_body(service, batch, start_at, rng, gz), start_at
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + seconds
        finished = time.time()
        while (now := time.time()) < end:
            if now - built >= REBUILD_S:
                body, built = make_body(service, batch, now, rng, gz), now
            sent = time.perf_counter()
            response = client.post("/api/v1/events", content=body)
            took = time.perf_counter() - sent
            finished = time.time()
            if response.status_code == 202:
                accepted += int(response.json()["accepted"])
                latencies.append(took)
            elif response.status_code == 503:
                refused += batch
            else:
                failed += 1
                problem = problem or f"HTTP {response.status_code}: {response.text[:300]}"
    return {
        "accepted": accepted,
        "refused": refused,
        "failed": failed,
        "problem": problem,
        "latencies": latencies,
        "finished": finished,
    }


@dataclass(frozen=True, slots=True)
class Run:
    target: str
    encoding: str
    service: str
    seconds: float
    accepted: int
    refused: int
    failed: int
    batches: int
    p50_ms: float
    p99_ms: float
    server_cpu_s: float
    probe_p50_ms: float
    probe_max_ms: float
    problem: str

    @property
    def eps(self) -> float:
        return self.accepted / self.seconds

    @property
    def sustained_eps(self) -> float:
        """A floor on what the engine took in during the run: at its end at most ``CAPACITY``
        accepted events can still wait in the server's queue (baseline: nothing queues)."""
        waiting = CAPACITY if self.target == "stanch" else 0
        return max(0, self.accepted - waiting) / self.seconds

    @property
    def cpu_us_per_event(self) -> float:
        return self.server_cpu_s / self.accepted * 1e6 if self.accepted else float("nan")


def drive(
    pool: ProcessPoolExecutor,
    args: argparse.Namespace,
    target: str,
    url: str,
    pid: int,
    token: str,
    service: str,
    gz: bool,
) -> Run:
    start_at = time.time() + 0.5  # every process builds its first body before the start
    cpu_before = cpu_seconds(pid)
    futures = [
        pool.submit(load, url, token, service, gz, args.batch, start_at, args.seconds)
        for _ in range(args.clients)
    ]
    probes = probe_while(url, futures)
    results = [f.result() for f in futures]
    cpu = cpu_seconds(pid) - cpu_before
    elapsed = max(r["finished"] for r in results) - start_at
    latencies = [x for r in results for x in r["latencies"]]
    return Run(
        target=target,
        encoding="gzip" if gz else "json",
        service=service,
        seconds=elapsed,
        accepted=sum(r["accepted"] for r in results),
        refused=sum(r["refused"] for r in results),
        failed=sum(r["failed"] for r in results),
        batches=len(latencies),
        p50_ms=_quantile(latencies, 0.5) * 1e3,
        p99_ms=_quantile(latencies, 0.99) * 1e3,
        server_cpu_s=cpu,
        probe_p50_ms=_quantile(probes, 0.5) * 1e3,
        probe_max_ms=max(probes, default=math.nan) * 1e3,
        problem=next((r["problem"] for r in results if r["problem"]), ""),
    )


def probe_while(url: str, futures: list[Future[dict[str, Any]]]) -> list[float]:
    """Seconds each ``GET /api/v1/health`` took, one every 20 ms while the load runs: how long
    the server's event loop makes any other request (a long-poll, an approval) wait."""
    took: list[float] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while not all(f.done() for f in futures):
            sent = time.perf_counter()
            client.get("/api/v1/health")
            took.append(time.perf_counter() - sent)
            time.sleep(0.02)
    return took


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---------------------------------------------------------------------------- the proof


def scrape(url: str, token: str) -> tuple[dict[str, float], float]:
    """(``stanch_requests_total{route="*"}`` per service, ``stanch_events_late_total``)."""
    text = httpx.get(
        f"{url}/metrics", headers={"authorization": f"Bearer {token}"}, timeout=10
    ).text
    totals: dict[str, float] = {}
    late = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "stanch_requests_total" and sample.labels.get("route") == "*":
                totals[sample.labels["service"]] = sample.value
            elif sample.name == "stanch_events_late_total":
                late = sample.value
    return totals, late


def prove(
    url: str, token: str, expected: dict[str, int], timeout: float
) -> tuple[dict[str, float], float, float]:
    """Wait until the engine aggregated every accepted event (or ``timeout``); what it has,
    the late count, and how long the drain took after the load stopped."""
    start = time.monotonic()
    while True:
        totals, late = scrape(url, token)
        seen = sum(totals.get(s, 0.0) for s in expected) + late
        if seen >= sum(expected.values()) or time.monotonic() - start > timeout:
            return totals, late, time.monotonic() - start
        time.sleep(0.2)


# ---------------------------------------------------------------------------- report


def render(
    args: argparse.Namespace,
    runs: list[Run],
    proof: list[tuple[Run, float]],
    late: float,
    drain_s: float,
    command: str,
) -> str:
    baseline = {r.encoding: r for r in runs if r.target == "baseline"}
    lines = [
        "# Ingest throughput: `POST /api/v1/events` over HTTP on loopback",
        "",
        f"- date: {dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()}",
        *machine_lines(),
        f"- load average when the run started (1/5/15 min): {args.loadavg}",
        f"- command: `$ {command}`",
        f"- method: `stanch serve` as a subprocess (uvicorn, one process, SQLite), an agent "
        f"token from `stanch token create`; {args.clients} load processes post batches of "
        f"{args.batch:,} events back to back for {args.seconds:g} s per variant, bodies rebuilt "
        f"every {REBUILD_S:g} s with fresh timestamps (8 routes, 200 clients, 1% errors); they "
        "do not back off on 503, so the server runs saturated (a 503 refuses a batch whole: "
        "refused events were never accepted). `events/s aggregated, floor` is "
        f"(accepted − the {CAPACITY:,}-event ingest queue) ÷ time: what the engine took in "
        "for certain during the run. `health` is a `GET /api/v1/health` every 20 ms during the "
        "load: how long any other request (a long-poll, an approval) waits. "
        "Baseline: the same uvicorn serving one FastAPI endpoint that only inflates and parses "
        "the JSON. Latency is per batch, client side; server CPU from `/proc`.",
        "",
        "| target | body | events/s accepted | vs baseline | events/s aggregated, floor "
        "| batches | batch p50 ms | batch p99 ms | server CPU µs/event | 503 refused "
        "| health p50 / max ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        base = baseline.get(r.encoding)
        ratio = f"{r.eps / base.eps:.2f}" if base and base.eps else "-"
        lines.append(
            f"| {r.target} | {r.encoding} | {r.eps:,.0f} | {ratio} | {r.sustained_eps:,.0f} "
            f"| {r.batches:,} "
            f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.cpu_us_per_event:.1f} | {r.refused:,} "
            f"| {r.probe_p50_ms:.1f} / {r.probe_max_ms:.0f} |"
        )
    lines += [
        "",
        'Zero loss: events accepted (sum of `202 {"accepted": n}`) against the engine\'s '
        '`stanch_requests_total{route="*"}` of the variant\'s service, scraped from `/metrics` '
        f"once the step loop had closed the last windows ({drain_s:.1f} s after the gzip load).",
        "",
        "| variant | events accepted | events aggregated | lost |",
        "|---|---:|---:|---:|",
    ]
    for r, aggregated in proof:
        lost = r.accepted - aggregated
        lines.append(f"| {r.encoding} | {r.accepted:,} | {aggregated:,.0f} | {lost:,.0f} |")
    lines += ["", f"`stanch_events_late_total` (accepted, then too late for a window): {late:.0f}"]
    stanch = [r for r in runs if r.target == "stanch"]
    lost = sum(r.accepted for r, _ in proof) - sum(a for _, a in proof) + late
    verdict = (
        "met"
        if stanch and min(r.sustained_eps for r in stanch) >= TARGET_EPS and lost == 0 and late == 0
        else "NOT met"
    )
    lines += ["", f"Target ≥ {TARGET_EPS:,} events/s with zero loss: **{verdict}**.", ""]
    return "\n".join(lines)


def kept_notes(path: Path) -> str:
    """The hand-written part of a previous results file (from ``NOTES`` on), kept on rewrite."""
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    at = text.find(NOTES)
    return "\n" + text[at:] if at >= 0 else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per variant")
    parser.add_argument("--clients", type=int, default=4, help="load processes")
    parser.add_argument("--batch", type=int, default=5_000, help="events per POST")
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown results file")
    parser.add_argument("--no-write", action="store_true", help="print, do not write --out")
    parser.add_argument("--keep", action="store_true", help="keep the database and server logs")
    parser.add_argument("--baseline-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        run_baseline(args.baseline_server)
        return 0

    command = " ".join([".venv/bin/python", "bench/ingest.py", *sys.argv[1:]])
    args.loadavg = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="stanch-ingest-"))
    try:
        db = f"sqlite:///{tmp / 'bench.db'}"
        created = subprocess.run(
            [
                *stanch_command(),
                "token",
                "create",
                "--role",
                "agent",
                "--name",
                "bench",
                "--db",
                db,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        token = created.stdout.strip().splitlines()[-1]
        stanch_port, base_port = free_port(), free_port()
        stanch_url, base_url = f"http://{HOST}:{stanch_port}", f"http://{HOST}:{base_port}"
        serve = [*stanch_command(), "serve", "--db", db, "--host", HOST]
        serve += ["--port", str(stanch_port)]
        baseline = [sys.executable, __file__, "--baseline-server", str(base_port)]
        runs: list[Run] = []
        env = {**os.environ, "STANCH_INGEST_CAPACITY": str(CAPACITY)}
        with (
            process(serve, tmp / "serve.log", env) as stanch_pid,
            process(baseline, tmp / "baseline.log") as base_pid,
            ProcessPoolExecutor(args.clients) as pool,
        ):
            wait_ready(stanch_url, tmp / "serve.log")
            wait_ready(base_url, tmp / "baseline.log")
            for gz in (False, True):
                encoding = "gzip" if gz else "json"
                for target, url, pid in (
                    ("baseline", base_url, base_pid),
                    ("stanch", stanch_url, stanch_pid),
                ):
                    run = drive(pool, args, target, url, pid, token, f"bench-{encoding}", gz)
                    runs.append(run)
                    print(
                        f"{target:8} {encoding:4}: {run.eps:10,.0f} events/s "
                        f"(aggregated ≥ {run.sustained_eps:,.0f}/s), "
                        f"p50 {run.p50_ms:6.1f} ms, p99 {run.p99_ms:6.1f} ms, "
                        f"{run.cpu_us_per_event:5.1f} µs CPU/event, refused {run.refused:,}, "
                        f"health p50 {run.probe_p50_ms:.1f} max {run.probe_max_ms:.0f} ms"
                        + (f", failed {run.failed} ({run.problem})" if run.failed else ""),
                        flush=True,
                    )
                    if target == "stanch" and not gz:
                        time.sleep(3.0)  # let the step loop catch up before the next variant
            stanch_runs = [r for r in runs if r.target == "stanch"]
            expected = {r.service: r.accepted for r in stanch_runs}
            totals, late, drain_s = prove(stanch_url, token, expected, timeout=60.0)
        proof = [(r, totals.get(r.service, 0.0)) for r in stanch_runs]
        for r, aggregated in proof:
            print(f"zero loss {r.encoding}: accepted {r.accepted:,}, aggregated {aggregated:,.0f}")
        print(f"late events: {late:.0f}; drained {drain_s:.1f} s after the load")
        report = render(args, runs, proof, late, drain_s, command)
        if not args.no_write:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(report + kept_notes(args.out), encoding="utf-8")
            print(f"wrote {args.out}")
        lost = sum(r.accepted for r, _ in proof) - sum(a for _, a in proof)
        return 0 if lost == 0 and late == 0 else 1
    finally:
        if args.keep:
            print(f"kept {tmp} (database, server logs)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
