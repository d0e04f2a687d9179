"""A real Prometheus and Alertmanager (Debian's packages) in front of ``stanch serve``.

Prometheus scrapes the live demo shop's ``/metrics`` every second and evaluates a checkout
error-ratio rule; Alertmanager routes what fires to Stanch's webhook with an agent token.
An injected fault (the payment timeout set below the provider's latency) must open an
incident in Stanch from the ``alertmanager`` source, and undoing it must reach that incident
as a resolved alert. Everything listens on 127.0.0.1, on ports the kernel picked, and every
process is stopped at the end.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from stanch.core.severity import Severity
from stanch.server.auth import issue_token
from stanch.store import Store

from .conftest import LOOPBACK, Process, Processes, free_port, peer_binaries, wait_for
from .live_shop import LiveShop

pytestmark = pytest.mark.integration

ALERT = "CheckoutErrorBurst"
ROUTE = "POST /checkout"
RATIO = (
    f'sum(rate(stanch_errors_total{{route="{ROUTE}"}}[15s]))'
    f' / sum(rate(stanch_requests_total{{route="{ROUTE}"}}[15s]))'
)
DEADLINE_S = 60.0  # each of: incident opened, alert resolved


def prometheus_config(shop_port: int, alertmanager_port: int, rules: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules)],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{LOOPBACK}:{alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": [
            {"job_name": "shop", "static_configs": [{"targets": [f"{LOOPBACK}:{shop_port}"]}]}
        ],
    }


def alert_rules() -> dict[str, Any]:
    return {
        "groups": [
            {
                "name": "shop",
                "rules": [
                    {
                        "alert": ALERT,
                        "expr": f"{RATIO} > 0.2",
                        "for": "0s",
                        "labels": {"severity": "critical", "service": "shop", "route": ROUTE},
                        "annotations": {
                            "summary": "checkout errors at {{ $value | humanizePercentage }}"
                        },
                    }
                ],
            }
        ]
    }


def alertmanager_config(stanch_port: int, token_file: Path) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "stanch",
            "group_by": ["alertname", "service"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1m",
        },
        "receivers": [
            {
                "name": "stanch",
                "webhook_configs": [
                    {
                        "url": f"http://{LOOPBACK}:{stanch_port}/api/v1/alertmanager",
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": str(token_file)}
                        },
                    }
                ],
            }
        ],
    }


def write_json(path: Path, doc: dict[str, Any]) -> Path:
    """Prometheus and Alertmanager read YAML, and JSON is YAML."""
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


class Stack:
    """Stanch, the shop, Alertmanager and Prometheus, started by :func:`stack`."""

    def __init__(self, processes: Processes, shop: LiveShop, tokens: dict[str, str]) -> None:
        self.processes = processes
        self.shop = shop
        self.tokens = tokens
        self.urls: dict[str, str] = {}

    def client(self, name: str, role: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.urls[name], headers=headers, timeout=5.0, trust_env=False)

    def why(self) -> str:
        """What each process logged, and what the shop answered: for failure messages."""
        return f"shop answers: {dict(self.shop.counts())}\n{self.processes.report()}"


def _ready(process: Process, url: str) -> bool | None:
    if not process.alive():
        raise AssertionError(f"{process.name} exited:\n{process.tail()}")
    response = httpx.get(url, timeout=1.0, trust_env=False)
    return True if response.status_code == 200 else None


@pytest.fixture
def stack(tmp_path: Path, processes: Processes) -> Iterator[Stack]:
    """Everything started and ready; stopped in reverse order at teardown."""
    binaries = peer_binaries("prometheus", "prometheus-alertmanager")
    ports = {name: free_port() for name in ("stanch", "shop", "alertmanager", "prometheus")}

    db_url = f"sqlite:///{tmp_path / 'stanch.db'}"
    with Store.open(db_url) as store:
        tokens = {
            role: issue_token(store, name, role, created_by="integration-test", now=time.time())[1]
            for name, role in (("alertmanager", "agent"), ("watcher", "viewer"), ("ops", "admin"))
        }
    token_file = tmp_path / "alertmanager.token"
    token_file.write_text(tokens["agent"], encoding="utf-8")
    token_file.chmod(0o600)

    shop = LiveShop(f"sqlite:///{tmp_path / 'shop.db'}", ports["shop"])
    built = Stack(processes, shop, tokens)
    built.urls = {name: f"http://{LOOPBACK}:{port}" for name, port in ports.items()}
    stanch = processes.start(
        "stanch",
        [
            *(sys.executable, "-c", "from stanch.cli import main; main()", "serve"),
            *("--host", LOOPBACK, "--port", str(ports["stanch"]), "--db", db_url),
        ],
    )
    am_config = write_json(tmp_path / "am.yml", alertmanager_config(ports["stanch"], token_file))
    alertmanager = processes.start(
        "alertmanager",
        [
            binaries["prometheus-alertmanager"],
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address={LOOPBACK}:{ports['alertmanager']}",
            "--cluster.listen-address=",  # no gossip: its default listens on every interface
            "--log.level=debug",
        ],
    )
    rules = write_json(tmp_path / "rules.yml", alert_rules())
    config = prometheus_config(ports["shop"], ports["alertmanager"], rules)
    prometheus = processes.start(
        "prometheus",
        [
            binaries["prometheus"],
            f"--config.file={write_json(tmp_path / 'prometheus.yml', config)}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address={LOOPBACK}:{ports['prometheus']}",
            "--log.level=info",
        ],
    )
    shop.start()
    try:
        for process, url in (
            (stanch, f"{built.urls['stanch']}/api/v1/health"),
            (alertmanager, f"{built.urls['alertmanager']}/-/ready"),
            (prometheus, f"{built.urls['prometheus']}/-/ready"),
        ):
            wait_for(partial(_ready, process, url), timeout=30, what=process.name)
        yield built
    finally:
        shop.stop()


def _query(prometheus: httpx.Client, expr: str) -> float | None:
    """The single value of ``expr`` now, or None while it has none."""
    result = prometheus.get("/api/v1/query", params={"query": expr}).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _alertmanager_alert(stanch: httpx.Client) -> tuple[str, dict[str, Any]] | None:
    """(incident id, alert) of the first incident holding an alert from Alertmanager."""
    for summary in stanch.get("/api/v1/incidents").raise_for_status().json():
        incident = stanch.get(f"/api/v1/incidents/{summary['id']}").raise_for_status().json()
        for alert in incident["alerts"]:
            if alert["source"] == "alertmanager":
                return incident["id"], alert
    return None


def test_alert_from_prometheus_opens_an_incident_and_its_resolution_is_recorded(
    stack: Stack,
) -> None:
    """Shop /metrics → Prometheus rule → Alertmanager → Stanch: a checkout error burst opens
    an incident from the alertmanager source, and the rule's resolution is recorded on it."""
    prometheus = stack.client("prometheus")
    stanch = stack.client("stanch", "viewer")
    admin = stack.client("stanch", "admin")
    with prometheus, stanch, admin:
        # Healthy first: Prometheus sees checkout traffic, the rule is quiet, no incident.
        wait_for(
            lambda: (_query(prometheus, RATIO) is not None) or None,
            timeout=30,
            what=f"Prometheus to compute {RATIO}\n{stack.why()}",
        )
        assert _query(prometheus, f"ALERTS{{alertname='{ALERT}'}}") is None, stack.why()
        assert stanch.get("/api/v1/incidents").json() == []

        stack.shop.set_config({"payments.timeout_ms": 80}, "inject: below the provider's p50")
        injected = time.monotonic()
        incident_id, alert = wait_for(
            lambda: _alertmanager_alert(stanch),
            timeout=DEADLINE_S,
            what=f"an incident from Alertmanager\n{stack.why()}",
        )
        opened_after = time.monotonic() - injected
        assert alert["status"] == "firing"
        assert alert["labels"]["alertname"] == ALERT
        assert (alert["service"], alert["route"]) == ("shop", ROUTE)
        assert alert["severity"] == Severity.SEV1.value  # severity: critical
        assert alert["explanation"].startswith("checkout errors at ")
        incident = stanch.get(f"/api/v1/incidents/{incident_id}").json()
        assert incident["service"] == "shop"
        assert ROUTE in incident["routes"]
        assert any(e["kind"] == "opened" for e in incident["timeline"])

        stack.shop.set_config({"payments.timeout_ms": 3000}, "fix: back to the default")
        fixed = time.monotonic()

        def resolved() -> dict[str, Any] | None:
            found = stanch.get(f"/api/v1/incidents/{incident_id}").raise_for_status().json()
            mine = [a for a in found["alerts"] if a["fingerprint"] == alert["fingerprint"]]
            return found if mine and mine[0]["status"] == "resolved" else None

        incident = wait_for(
            resolved,
            timeout=DEADLINE_S,
            what=f"the resolved alert on {incident_id}\n{stack.why()}",
        )
        resolved_after = time.monotonic() - fixed
        cleared = next(a for a in incident["alerts"] if a["fingerprint"] == alert["fingerprint"])
        assert cleared["ended_at"] is not None
        assert cleared["ended_at"] >= cleared["started_at"]
        assert any(e["kind"] == "alert_cleared" for e in incident["timeline"])

        # Both notifications came in over the agent token Alertmanager was given.
        audit = admin.get("/api/v1/audit", params={"limit": 1000}).raise_for_status().json()
        actions = {(e["action"], e["actor"]) for e in audit}
        assert ("ingest.alertmanager.firing", "alertmanager (agent)") in actions
        assert ("ingest.alertmanager.resolved", "alertmanager (agent)") in actions
        counts = stack.shop.counts()
        assert counts[ROUTE, 504] > 0, counts  # the fault really hit checkout
        assert counts[ROUTE, 200] > 0, counts
        print(
            f"incident {incident_id} opened {opened_after:.1f} s after the fault; "
            f"its alert resolved {resolved_after:.1f} s after the fix"
        )
