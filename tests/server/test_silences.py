"""Silences, maintenance windows and suppressed alerts over HTTP: create, list, expire, who may,
what is refused, the audit trail, a silence really holding an alert back, and a restart."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stanch.core.noise import DAY_S, MAX_MATCHERS
from stanch.server import ServerContext, create_app
from stanch.server.auth import Role

from .conftest import FAST
from .helpers import T0, Clock, bearer, drive

SILENCE = {
    "matchers": [{"field": "route", "pattern": "POST /pay"}],
    "duration": "1h",
    "comment": "load test on payments",
}


def actions_of(ctx: ServerContext, prefix: str) -> list[Any]:
    return [e for e in ctx.store.audit_entries() if e.action.startswith(prefix)]


async def test_create_list_and_expire_a_silence(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A responder's silence is listed as active under their name; expiring it moves it to
    the ended ones (shown only with ?expired=true); both changes are audited."""
    responder, viewer = bearer(tokens[Role.RESPONDER]), bearer(tokens[Role.VIEWER])
    body = {
        **SILENCE,
        "matchers": [*SILENCE["matchers"], {"field": "kind", "op": "!=", "pattern": "traffic_*"}],
    }
    created = await client.post("/api/v1/silences", json=body, headers=responder)
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["id"] == "S-0001"
    assert silence["created_by"] == "responder"
    assert silence["status"] == "active"
    assert silence["starts_at"] == clock.t
    assert silence["ends_at"] == clock.t + 3600
    assert silence["matchers"][1] == {"field": "kind", "op": "!=", "pattern": "traffic_*"}
    listed = await client.get("/api/v1/silences", headers=viewer)
    assert [s["id"] for s in listed.json()] == ["S-0001"]

    clock.t += 60
    expired = await client.delete("/api/v1/silences/S-0001", headers=responder)
    assert expired.status_code == 200, expired.text
    assert expired.json()["status"] == "expired"
    assert expired.json()["ended_at"] == clock.t
    assert expired.json()["ended_by"] == "responder"
    assert (await client.get("/api/v1/silences", headers=viewer)).json() == []
    history = (await client.get("/api/v1/silences?expired=true", headers=viewer)).json()
    assert [(s["id"], s["status"]) for s in history] == [("S-0001", "expired")]
    again = await client.delete("/api/v1/silences/S-0001", headers=responder)
    assert again.status_code == 409
    missing = await client.delete("/api/v1/silences/S-9999", headers=responder)
    assert missing.status_code == 404

    create, expire = actions_of(ctx, "api.silences.create"), actions_of(ctx, "api.silences.expire")
    assert [(e.actor, e.target, e.why) for e in create] == [
        ("responder (responder)", "S-0001", "load test on payments")
    ]
    assert create[0].after["matchers"] == [["route", "POST /pay"], ["kind", "traffic_*", "!="]]
    assert [(e.actor, e.before, e.after["status"]) for e in expire] == [
        ("responder (responder)", {"status": "active"}, "expired")
    ]


async def test_a_pending_silence_starts_later_and_ends_at_the_given_time(
    client: httpx.AsyncClient, clock: Clock, tokens: dict[Role, str]
) -> None:
    """starts_at in the future makes it pending; a start in the past is taken as now."""
    responder = bearer(tokens[Role.RESPONDER])
    later = {**SILENCE, "starts_at": clock.t + 600, "ends_at": clock.t + 1200}
    del later["duration"]
    pending = await client.post("/api/v1/silences", json=later, headers=responder)
    assert pending.status_code == 201, pending.text
    assert pending.json()["status"] == "pending"
    past = {**SILENCE, "starts_at": clock.t - 600}
    started = await client.post("/api/v1/silences", json=past, headers=responder)
    assert started.json()["starts_at"] == clock.t


async def test_viewers_read_but_may_not_silence(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    viewer = bearer(tokens[Role.VIEWER])
    assert (await client.post("/api/v1/silences", json=SILENCE, headers=viewer)).status_code == 403
    assert (await client.get("/api/v1/silences", headers=viewer)).status_code == 200
    assert (await client.get("/api/v1/suppressed", headers=viewer)).status_code == 200
    agent = bearer(tokens[Role.AGENT])
    assert (await client.get("/api/v1/silences", headers=agent)).status_code == 403


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"matchers": [{"field": "team", "pattern": "x"}]}, 400, "matcher field 'team'"),
        ({"matchers": [{"field": "route", "op": "!=", "pattern": "GET /x"}]}, 400, "positive"),
        ({"matchers": [{"field": "service", "pattern": "*"}]}, 400, "every alert"),
        ({"matchers": [{"field": "route", "pattern": "a"}] * (MAX_MATCHERS + 1)}, 422, "most"),
        ({"matchers": []}, 422, "at least 1"),
        ({"duration": "9000h"}, 400, "at most 365 days"),
        ({"duration": "soon"}, 400, "duration: expected a duration"),
        ({"duration": None, "ends_at": T0 - 10}, 400, "future"),
        ({"duration": None, "starts_at": T0 + 600, "ends_at": T0 + 300}, 400, "end after"),
        ({"duration": None}, 400, "either ends_at or duration"),
        ({"ends_at": T0 + 600}, 400, "not both"),
        ({"starts_at": T0 + 400 * DAY_S}, 400, "days ahead"),
        ({"comment": "   "}, 422, "at least 1 character"),
        ({"comment": None}, 422, "Field required"),
        ({"matchers": [{"field": "route", "pattern": "x", "regex": True}]}, 422, "Extra"),
        (
            {"matchers": [{"field": "route", "pattern": "/checkout"}]},
            400,
            "route names include the method, e.g. 'POST /checkout' or '* /checkout'",
        ),
        ({"matchers": [{"field": "route", "pattern": "/api/*"}]}, 400, "'* /api/*'"),
        (
            {"matchers": [*SILENCE["matchers"], {"field": "kind", "pattern": "error_burts"}]},
            400,
            "kind 'error_burts' matches no alert kind; the kinds are: traffic_spike",
        ),
        (
            {"matchers": [*SILENCE["matchers"], {"field": "kind", "op": "!=", "pattern": "x*"}]},
            400,
            "error_burst",
        ),
    ],
)
async def test_bad_silences_are_refused_with_a_reason(
    client: httpx.AsyncClient,
    ctx: ServerContext,
    tokens: dict[Role, str],
    change: dict[str, Any],
    status: int,
    says: str,
) -> None:
    """Each refusal says what is wrong; nothing is created or audited."""
    body = {k: v for k, v in {**SILENCE, **change}.items() if v is not None}
    answer = await client.post("/api/v1/silences", json=body, headers=bearer(tokens[Role.ADMIN]))
    assert answer.status_code == status, answer.text
    assert says in str(answer.json()["detail"])
    assert ctx.engine.noise.silences == {}
    assert actions_of(ctx, "api.silences") == []


async def test_maintenance_windows_one_off_and_weekly(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A one-off window and a weekly one are listed with their schedule, end on request,
    and each change is audited; a weekly window given one-off fields is refused."""
    responder, viewer = bearer(tokens[Role.RESPONDER]), bearer(tokens[Role.VIEWER])
    one_off = {"service": "api", "routes": ["POST /pay"], "duration": "2h", "comment": "db move"}
    weekly = {
        "service": "api",
        "weekdays": [6, 2],
        "start_minute": 23 * 60,
        "end_minute": 60,
        "comment": "backups",
    }
    first = await client.post("/api/v1/maintenance", json=one_off, headers=responder)
    second = await client.post("/api/v1/maintenance", json=weekly, headers=responder)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["status"] == "active"
    assert first.json()["ends_at"] == clock.t + 7200
    assert second.json()["schedule"] == "Wed, Sun 23:00-01:00 UTC"
    assert second.json()["created_by"] == "responder"
    listed = (await client.get("/api/v1/maintenance", headers=viewer)).json()
    assert [w["id"] for w in listed] == [second.json()["id"], first.json()["id"]]

    ended = await client.delete(f"/api/v1/maintenance/{second.json()['id']}", headers=responder)
    assert ended.status_code == 200
    assert ended.json()["ended_by"] == "responder"
    assert len((await client.get("/api/v1/maintenance", headers=viewer)).json()) == 1
    assert len((await client.get("/api/v1/maintenance?expired=true", headers=viewer)).json()) == 2
    assert [e.action for e in actions_of(ctx, "api.maintenance")] == [
        "api.maintenance.create",
        "api.maintenance.create",
        "api.maintenance.expire",
    ]
    for bad, says in (
        ({**weekly, "duration": "1h"}, "not starts_at"),
        ({**weekly, "end_minute": None}, "needs start_minute"),
        ({**weekly, "end_minute": 23 * 60}, "another minute"),
        ({**one_off, "start_minute": 5}, "weekly windows"),
        ({**one_off, "duration": "400d"}, "duration"),
    ):
        body = {k: v for k, v in bad.items() if v is not None}
        refused = await client.post("/api/v1/maintenance", json=body, headers=responder)
        assert refused.status_code == 400, (bad, refused.text)
        assert says in refused.json()["detail"]


async def test_a_silence_holds_back_a_matching_alert_with_its_reason(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """An error burst the silence matches (the service, any route but GET /ping) opens no
    incident; each suppression is listed with the silence and its comment and is in the audit
    trail; expiring the silence lets the still-firing alerts page at the next step, which is
    audited too."""
    agent, viewer = tokens[Role.AGENT], bearer(tokens[Role.VIEWER])
    responder = bearer(tokens[Role.RESPONDER])
    await drive(client, ctx, clock, agent, 40)
    body = {
        **SILENCE,
        "matchers": [
            {"field": "service", "pattern": "api"},
            {"field": "route", "op": "!=", "pattern": "GET /ping"},
        ],
    }
    created = await client.post("/api/v1/silences", json=body, headers=responder)
    assert created.status_code == 201
    await drive(client, ctx, clock, agent, 8, error_ratio={"POST /pay": 0.5})
    assert ctx.engine.incidents == {}

    listed = (await client.get("/api/v1/suppressed", headers=viewer)).json()
    (held,) = [s for s in listed if s["route"] == "POST /pay" and s["kind"] == "error_burst"]
    assert held["service"] == "api"
    assert held["rule"] == "S-0001"
    assert held["cause"] == "silence"
    assert held["reason"] == "silenced by S-0001 (responder: load test on payments)"
    assert held["held"] is True
    assert all(s["route"] != "GET /ping" for s in listed)
    filtered = await client.get("/api/v1/suppressed?cause=inhibition", headers=viewer)
    assert filtered.json() == []
    entries = {e.target: e for e in actions_of(ctx, "engine.alert_suppressed")}
    assert len(entries) == len(listed)
    entry = entries[held["fingerprint"]]
    assert entry.why == held["reason"]
    assert entry.after == {
        "kind": "error_burst",
        "service": "api",
        "route": "POST /pay",
        "rule": "S-0001",
        "cause": "silence",
    }

    await client.delete("/api/v1/silences/S-0001", headers=responder)
    await drive(client, ctx, clock, agent, 2, error_ratio={"POST /pay": 0.5})
    assert ["POST /pay" in i.routes for i in ctx.engine.incidents.values()] == [True]
    released = {e.target: e for e in actions_of(ctx, "engine.alert_suppressed_released")}
    assert "S-0001 no longer holds it back" in released[held["fingerprint"]].why
    again = (await client.get("/api/v1/suppressed", headers=viewer)).json()
    assert not any(s["held"] for s in again)


async def test_rules_and_the_record_survive_a_restart(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A server context opened again on the same store has the silences and windows in force
    and the ended ones, and the audit trail still says what was held back and why."""
    agent, responder = tokens[Role.AGENT], bearer(tokens[Role.RESPONDER])
    await drive(client, ctx, clock, agent, 40)
    await client.post("/api/v1/silences", json=SILENCE, headers=responder)
    second = {**SILENCE, "matchers": [{"field": "route", "pattern": "GET /*"}]}
    await client.post("/api/v1/silences", json=second, headers=responder)
    await client.delete("/api/v1/silences/S-0002", headers=responder)
    window = {"service": "api", "duration": "30m", "comment": "deploy"}
    await client.post("/api/v1/maintenance", json=window, headers=responder)
    await drive(client, ctx, clock, agent, 8, error_ratio={"POST /pay": 0.5})

    again = ServerContext.open(ctx.settings, clock=clock, engine_config=FAST)
    try:
        noise = again.engine.noise
        assert list(noise.silences) == ["S-0001"]
        assert list(noise.windows) == ["M-0001"]
        assert [e.rule.id for e in noise.ended] == ["S-0002"]
        transport = httpx.ASGITransport(app=create_app(again))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as restarted:
            viewer = bearer(tokens[Role.VIEWER])
            listed = await restarted.get("/api/v1/silences?expired=true", headers=viewer)
            assert [(s["id"], s["status"]) for s in listed.json()] == [
                ("S-0001", "active"),
                ("S-0002", "expired"),
            ]
        reasons = [
            e.why for e in again.store.audit_entries() if e.action == "engine.alert_suppressed"
        ]
        assert "silenced by S-0001 (responder: load test on payments)" in reasons
        assert "maintenance window M-0001 (deploy)" in reasons
    finally:
        again.close()


async def test_a_window_on_a_route_without_its_method_is_refused(
    client: httpx.AsyncClient, ctx: ServerContext, tokens: dict[Role, str]
) -> None:
    """``--route /search`` can never cover a series (they are named "GET /search")."""
    body = {"service": "api", "routes": ["/search"], "duration": "1h", "comment": "x"}
    refused = await client.post(
        "/api/v1/maintenance", json=body, headers=bearer(tokens[Role.RESPONDER])
    )
    assert refused.status_code == 400, refused.text
    assert "route names include the method" in refused.json()["detail"]
    assert ctx.engine.noise.windows == {}


async def test_a_rule_matching_no_series_seen_is_created_with_a_warning(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """A route may not have had traffic yet: the rule is made, and the answer says it matches
    nothing seen so far; one that matches a series has no warning. Lists carry none."""
    responder = bearer(tokens[Role.RESPONDER])
    await drive(client, ctx, clock, tokens[Role.AGENT], 1)  # api: POST /pay, GET /ping
    matching = await client.post("/api/v1/silences", json=SILENCE, headers=responder)
    assert matching.status_code == 201, matching.text
    assert matching.json()["warnings"] == []

    body = {**SILENCE, "matchers": [{"field": "route", "pattern": "POST /checkout"}]}
    unseen = await client.post("/api/v1/silences", json=body, headers=responder)
    assert unseen.status_code == 201, unseen.text
    (warning,) = unseen.json()["warnings"]
    assert "route=POST /checkout matches no series seen so far" in warning
    assert "service=api route=GET /ping" in warning  # what series are named like
    assert set(ctx.engine.noise.silences) == {"S-0001", "S-0002"}
    listed = (await client.get("/api/v1/silences", headers=responder)).json()
    assert all("warnings" not in s for s in listed)

    window = {"service": "api", "routes": ["* /pay", "GET /nope"], "duration": "1h", "comment": "x"}
    made = await client.post("/api/v1/maintenance", json=window, headers=responder)
    assert made.status_code == 201, made.text
    (warning,) = made.json()["warnings"]
    assert "route 'GET /nope' of service 'api' matches no series seen so far" in warning
    other = {"service": "shop", "duration": "1h", "comment": "x"}
    made = await client.post("/api/v1/maintenance", json=other, headers=responder)
    assert made.status_code == 201, made.text
    assert "service 'shop' matches no series seen so far" in made.json()["warnings"][0]


async def test_held_is_said_of_the_current_hold_only(
    client: httpx.AsyncClient, ctx: ServerContext, clock: Clock, tokens: dict[Role, str]
) -> None:
    """Each record of an alert held back says whether *that* hold is still on, not whether
    an alert with its fingerprint is held now: a burst that ended under the silence and came
    back is two holds, the first over. And when the silence ends while a window still
    covers the alert, a new record names the window; the silence's is no longer held."""
    agent, viewer = tokens[Role.AGENT], bearer(tokens[Role.VIEWER])
    responder = bearer(tokens[Role.RESPONDER])
    await drive(client, ctx, clock, agent, 40)
    await client.post("/api/v1/silences", json=SILENCE, headers=responder)
    await drive(client, ctx, clock, agent, 8, error_ratio={"POST /pay": 0.5})
    await drive(client, ctx, clock, agent, 40)  # the burst clears, never paged
    await drive(client, ctx, clock, agent, 8, error_ratio={"POST /pay": 0.5})

    def pay_bursts(listed: list[dict[str, Any]]) -> list[tuple[str, bool]]:
        return [
            (s["rule"], s["held"])
            for s in listed
            if s["route"] == "POST /pay" and s["kind"] == "error_burst"
        ]

    listed = (await client.get("/api/v1/suppressed", headers=viewer)).json()
    assert pay_bursts(listed) == [("S-0001", True), ("S-0001", False)]  # newest first

    window = {"service": "api", "duration": "30m", "comment": "deploy"}
    await client.post("/api/v1/maintenance", json=window, headers=responder)
    await client.delete("/api/v1/silences/S-0001", headers=responder)
    await drive(client, ctx, clock, agent, 2, error_ratio={"POST /pay": 0.5})
    assert ctx.engine.incidents == {}
    listed = (await client.get("/api/v1/suppressed", headers=viewer)).json()
    assert pay_bursts(listed) == [("M-0001", True), ("S-0001", False), ("S-0001", False)]
    (now_held,) = [s for s in listed if s["rule"] == "M-0001" and s["route"] == "POST /pay"]
    assert now_held["reason"] == "maintenance window M-0001 (deploy)"

    await client.delete("/api/v1/maintenance/M-0001", headers=responder)
    await drive(client, ctx, clock, agent, 2, error_ratio={"POST /pay": 0.5})
    assert ["POST /pay" in i.routes for i in ctx.engine.incidents.values()] == [True]
    released = actions_of(ctx, "engine.alert_suppressed_released")
    assert [e.after.get("rule") for e in released if "POST /pay" in str(e.after)] == ["M-0001"]
    listed = (await client.get("/api/v1/suppressed", headers=viewer)).json()
    assert not any(s["held"] for s in listed)
