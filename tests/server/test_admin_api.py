"""Runbook, configuration store and audit endpoints."""

from __future__ import annotations

import logging
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from stanch.core.config import ConfigKeySpec, ConfigStore
from stanch.server import ServerContext
from stanch.server.auth import Role

from .conftest import FAST
from .helpers import T0, Clock, bearer

NEW_RUNBOOK = """
version: 1
rules:
  - name: reports-page
    match: {kinds: [user_report]}
    actions: []
"""


async def test_runbook_get_validate_and_replace(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """The runbook in force is readable; a broken candidate is refused with its problems; a
    valid one replaces it in the engine at once and is audited."""
    admin = bearer(tokens[Role.ADMIN])
    current = await client.get("/api/v1/runbook", headers=bearer(tokens[Role.VIEWER]))
    assert [r["name"] for r in current.json()["rules"]] == ["pay-errors"]
    broken = {"text": "version: 1\nrules:\n  - name: Bad Name\n    match: {}\n"}
    checked = await client.post("/api/v1/runbook/validate", json=broken, headers=admin)
    assert checked.json()["valid"] is False
    assert any("name" in p for p in checked.json()["problems"])
    refused = await client.put("/api/v1/runbook", json=broken, headers=admin)
    assert refused.status_code == 400
    assert refused.json()["problems"]
    replaced = await client.put(
        "/api/v1/runbook", json={"text": NEW_RUNBOOK, "source": "git:abc123"}, headers=admin
    )
    assert replaced.status_code == 200
    assert replaced.json()["updated_by"] == "admin (admin)"
    assert [rule.name for rule in ctx.engine.runbook.rules] == ["reports-page"]
    (entry,) = [e for e in ctx.store.audit_entries() if e.why == "runbook replaced"]
    assert entry.before == {"rules": ["pay-errors"]}
    assert entry.after == {"rules": ["reports-page"]}


async def test_runbook_survives_a_restart_without_a_file(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A runbook replaced through the API is the one a restarted server (no --runbook) uses."""
    await client.put(
        "/api/v1/runbook", json={"text": NEW_RUNBOOK}, headers=bearer(tokens[Role.ADMIN])
    )
    again = ServerContext.open(replace(ctx.settings, runbook=None), clock=clock)
    try:
        assert [rule.name for rule in again.engine.runbook.rules] == ["reports-page"]
    finally:
        again.close()


@pytest.fixture
def configured(ctx: ServerContext) -> ServerContext:
    spec = ConfigKeySpec("timeout_ms", "int", 800, minimum=10, routes=("POST /pay",))
    ctx.engine.add_config_store(ConfigStore("api", [spec], now=T0))
    return ctx


async def test_config_change_diff_and_rollback(
    client: httpx.AsyncClient, configured: ServerContext, tokens: dict[Role, str]
) -> None:
    """An admin changes a value (v2), the diff shows it, a rollback to v1 makes v3; each is a
    change event and in the audit log."""
    admin, viewer = bearer(tokens[Role.ADMIN]), bearer(tokens[Role.VIEWER])
    changed = await client.post(
        "/api/v1/config/api", json={"values": {"timeout_ms": 80}, "reason": "tune"}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    refused = await client.post(
        "/api/v1/config/api", json={"values": {"timeout_ms": 1}}, headers=admin
    )
    assert refused.status_code == 400
    assert "below the minimum" in refused.json()["detail"]
    diff = await client.get("/api/v1/config/api/diff?from=1&to=2", headers=viewer)
    assert diff.json()["changes"] == {"timeout_ms": [800, 80]}
    rolled = await client.post(
        "/api/v1/config/api/rollback", json={"to_version": 1, "reason": "bad"}, headers=admin
    )
    assert rolled.json()["version"] == 3
    assert rolled.json()["values"] == {"timeout_ms": 800}
    versions = await client.get("/api/v1/config/api/versions", headers=viewer)
    assert [v["version"] for v in versions.json()] == [1, 2, 3]
    assert {c.id for c in configured.store.list_changes(service="api")} == {
        "config-v2",
        "config-v3",
    }
    actions = [e.action for e in configured.store.audit_entries()]
    assert actions.count("engine.config") == 2
    assert "api.config.rollback" in actions
    missing = await client.get("/api/v1/config/nope/versions", headers=viewer)
    assert missing.status_code == 404


async def test_stored_config_is_manageable_after_a_restart(
    client: httpx.AsyncClient, configured: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A restarted server infers a config store from the stored history and can roll back."""
    await client.post(
        "/api/v1/config/api",
        json={"values": {"timeout_ms": 80}},
        headers=bearer(tokens[Role.ADMIN]),
    )
    again = ServerContext.open(configured.settings, clock=clock, engine_config=FAST)
    try:
        change = again.engine.rollback_config("api", T0 + 5, 1, author="erin")
        assert change.new_value == "timeout_ms=800"
    finally:
        again.close()


async def test_audit_endpoints_list_and_verify(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """The audit log reads in chain order, verifies intact, and names an edited entry."""
    admin = bearer(tokens[Role.ADMIN])
    await client.post("/api/v1/tokens", json={"name": "ci", "role": "agent"}, headers=admin)
    listed = await client.get("/api/v1/audit?limit=5", headers=admin)
    seqs = [e["seq"] for e in listed.json()]
    assert seqs == sorted(seqs)
    assert seqs[0] == 1
    clean = await client.get("/api/v1/audit/verify", headers=admin)
    assert clean.json()["intact"] is True
    assert clean.json()["head_seq"] == clean.json()["entries"]
    head = f"{clean.json()['head_seq']}:{clean.json()['head_hash']}"
    anchored = await client.get("/api/v1/audit/verify", params={"anchor": head}, headers=admin)
    assert anchored.json()["intact"] is True
    ahead = f"{clean.json()['head_seq'] + 50}:{clean.json()['head_hash']}"
    cut = await client.get("/api/v1/audit/verify", params={"anchor": ahead}, headers=admin)
    assert [p["kind"] for p in cut.json()["problems"]] == ["truncated"]
    bad = await client.get("/api/v1/audit/verify", params={"anchor": "1:xyz"}, headers=admin)
    assert bad.status_code == 400
    assert "64 hex digits" in bad.json()["detail"]
    with ctx.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'nobody' WHERE seq = 1"))
    broken = await client.get("/api/v1/audit/verify", headers=admin)
    assert broken.json()["intact"] is False
    assert [(p["seq"], p["kind"]) for p in broken.json()["problems"]] == [(1, "edited")]


def test_the_server_logs_the_audit_head_when_it_moved(
    ctx: ServerContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Each logged head is an anchor kept outside the database; an unchanged head is not
    logged again."""
    caplog.set_level(logging.INFO, logger="stanch.server")
    ctx.audit.record("erin", "api.test", "T1")
    ctx.log_audit_head()
    ctx.log_audit_head()
    head = ctx.store.audit_head()
    assert head is not None
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit head")]
    assert lines == [f"audit head {head.seq}:{head.hash}"]
    ctx.audit.record("erin", "api.test", "T2")
    ctx.log_audit_head()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit head")]
    assert len(lines) == 2
    assert lines[1].startswith(f"audit head {head.seq + 1}:")
