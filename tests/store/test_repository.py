"""The store round-trips every kind of record, on SQLite and PostgreSQL, and across a restart."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from stanch.core.actions import ActionKind, ActionState
from stanch.core.errors import ValidationError
from stanch.core.incidents import Incident, IncidentState
from stanch.core.policy import Policy
from stanch.store import Store
from stanch.store.models import IncidentRow, TimelineRow

from . import samples

OpenStore = Callable[[], Store]


def same_incident(a: Incident | None, b: Incident) -> None:
    """Equal, including the payloads dataclass equality skips."""
    assert a == b
    assert a is not None
    assert [e.data for e in a.timeline] == [e.data for e in b.timeline]
    assert [e.data for e in a.comments] == [e.data for e in b.comments]
    assert [x.labels for x in a.alerts.values()] == [x.labels for x in b.alerts.values()]


def timeline_rows(store: Store, incident_id: str) -> int:
    with store.engine.connect() as conn:
        query = select(func.count()).where(TimelineRow.incident_id == incident_id)
        return int(conn.execute(query).scalar_one())


# -- counters and meta ----------------------------------------------------------------------


def test_next_id_counts_each_counter_from_one(store: Store) -> None:
    """Each counter starts at 1 and increments independently."""
    assert [store.next_id("incident") for _ in range(3)] == [1, 2, 3]
    assert store.next_id("action") == 1


def test_next_id_is_unique_across_threads_and_stores(open_store: OpenStore) -> None:
    """Two stores (two processes) drawing ids from many threads never get the same number."""
    first, second = open_store(), open_store()
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: (first, second)[i % 2].next_id("incident"), range(80)))
    assert sorted(ids) == list(range(1, 81))


def test_meta_round_trips_values_and_defaults(store: Store) -> None:
    """Meta values round-trip (None and infinity too); a missing key gives the default."""
    assert store.get_meta("missing", default="dflt") == "dflt"
    store.set_meta("cursor", {"offset": 12, "at": [1.5, math.inf]})
    store.set_meta("nothing", None)
    assert store.get_meta("cursor") == {"offset": 12, "at": [1.5, math.inf]}
    assert store.get_meta("nothing", default="dflt") is None
    store.set_meta("cursor", 13)
    assert store.get_meta("cursor") == 13


# -- incidents ------------------------------------------------------------------------------


def test_incident_round_trips(store: Store) -> None:
    """A saved incident loads back equal: alerts, timeline, comments, impact, suspects, entered."""
    incident = samples.incident()
    store.save_incident(incident)
    same_incident(store.get_incident(incident.id), incident)
    assert store.get_incident("INC-9999") is None


def test_incident_with_non_finite_floats_round_trips(store: Store) -> None:
    """An alert scored at infinity and a NaN in timeline data are stored (PostgreSQL included)."""
    incident = samples.incident()
    incident.add_alert(samples.alert("fp-inf", score=math.inf, expected=0.0), 1005.0)
    incident.note(1006.0, "probe", "ratio undefined", ratio=math.nan)
    store.save_incident(incident)
    back = store.get_incident(incident.id)
    assert back is not None
    assert back.alerts["fp-inf"].score == math.inf
    assert math.isnan(back.timeline[-1].data["ratio"])


def test_saving_twice_does_not_duplicate_the_timeline(store: Store) -> None:
    """Timeline entries are appended once: saving again inserts only the entries added since."""
    incident = samples.incident()
    store.save_incident(incident)
    store.save_incident(incident)
    assert timeline_rows(store, incident.id) == len(incident.timeline)
    incident.transition(IncidentState.MITIGATED, 1010.0, "stanch", "throttled acme")
    store.save_incident(incident)
    store.save_incident(incident)
    assert timeline_rows(store, incident.id) == len(incident.timeline)
    same_incident(store.get_incident(incident.id), incident)


def test_timeline_table_is_authoritative(store: Store) -> None:
    """A stale copy saved later does not shorten the timeline: the stored entries stay."""
    incident = samples.incident()
    store.save_incident(incident)
    stale = store.get_incident(incident.id)
    assert stale is not None
    incident.note(1020.0, "note", "more evidence")
    store.save_incident(incident)
    store.save_incident(stale)
    back = store.get_incident(incident.id)
    assert back is not None
    assert back.timeline == incident.timeline


def test_incident_row_columns_follow_the_incident(store: Store) -> None:
    """The queryable columns copy the incident: state, resolved_at, and updated_at (domain time)."""
    incident = samples.incident()
    store.save_incident(incident)
    samples.resolved(incident, 1100.0)
    store.save_incident(incident)
    with store.engine.connect() as conn:
        row = conn.execute(select(IncidentRow).where(IncidentRow.id == incident.id)).one()
    assert (row.state, row.severity, row.resolved_at, row.updated_at) == (
        "resolved",
        "SEV2",
        1100.0,
        1100.0,
    )
    assert "timeline" not in row.doc


def test_list_incidents_filters_newest_first(store: Store) -> None:
    """Listing is newest first and filters by state, service and openness, with a limit."""
    a = samples.incident("INC-0001", opened_at=100.0)
    b = samples.incident("INC-0002", service="auth", opened_at=200.0)
    c = samples.resolved(samples.incident("INC-0003", opened_at=300.0), 400.0)
    for incident in (a, b, c):
        store.save_incident(incident)

    def ids(incidents: list[Incident]) -> list[str]:
        return [i.id for i in incidents]

    assert ids(store.list_incidents()) == ["INC-0003", "INC-0002", "INC-0001"]
    assert ids(store.list_incidents(limit=2)) == ["INC-0003", "INC-0002"]
    assert ids(store.list_incidents(state="resolved")) == ["INC-0003"]
    assert ids(store.list_incidents(service="auth")) == ["INC-0002"]
    assert ids(store.list_incidents(open_only=True, service="shop")) == ["INC-0001"]
    assert ids(store.open_incidents()) == ["INC-0002", "INC-0001"]
    same_incident(store.list_incidents(state="resolved")[0], c)


def test_list_incidents_rejects_an_unknown_state(store: Store) -> None:
    """An unknown state filter is a ValidationError listing the valid states."""
    with pytest.raises(ValidationError, match=r"unknown incident state 'burning'.*detected"):
        store.list_incidents(state="burning")


# -- actions --------------------------------------------------------------------------------


def test_action_round_trips_and_updates(store: Store) -> None:
    """A saved action loads back equal (params too); saving a later state replaces it."""
    action = samples.action()
    store.save_action(action)
    back = store.get_action(action.id)
    assert back == action
    assert back is not None
    assert back.params == action.params
    approved = action.to(ActionState.APPROVED, 1003.0, decided_by="bob")
    store.save_action(approved)
    assert store.get_action(action.id) == approved
    assert store.get_action("ACT-9999") is None


def test_list_actions_filters_oldest_first(store: Store) -> None:
    """Actions list oldest first, filtered by state, incident and openness."""
    store.save_action(samples.action("ACT-0002", created_at=20.0, state=ActionState.APPLIED))
    store.save_action(samples.action("ACT-0001", created_at=10.0))
    store.save_action(
        samples.action("ACT-0003", incident_id="INC-0002", state=ActionState.REJECTED)
    )
    assert [a.id for a in store.list_actions()] == ["ACT-0001", "ACT-0002", "ACT-0003"]
    assert [a.id for a in store.list_actions(state="applied")] == ["ACT-0002"]
    assert [a.id for a in store.list_actions(incident_id="INC-0002")] == ["ACT-0003"]
    assert [a.id for a in store.list_actions(open_only=True)] == ["ACT-0001", "ACT-0002"]
    with pytest.raises(ValidationError, match="unknown action state"):
        store.list_actions(state="done")


# -- policies, configuration, changes, post-mortems -----------------------------------------


def test_policies_round_trip_per_service(store: Store) -> None:
    """Policies load back equal, keyed by service; saving a newer one replaces the older."""
    active = [
        samples.action("ACT-1", state=ActionState.APPLIED),
        samples.action("ACT-2", state=ActionState.APPLIED, kind=ActionKind.CIRCUIT_BREAK),
        samples.action("ACT-3", state=ActionState.APPLIED, kind=ActionKind.BLOCK_CLIENT),
    ]
    shop = Policy.from_actions("shop", 3, active)
    assert not shop.is_empty
    store.save_policy(shop, now=1000.0)
    store.save_policy(Policy("auth", 1), now=1000.0)
    assert store.load_policies() == {"shop": shop, "auth": Policy("auth", 1)}
    store.save_policy(Policy("shop", 4))
    assert store.load_policies()["shop"] == Policy("shop", 4)


def test_config_history_round_trips_and_never_rewrites(store: Store) -> None:
    """Config versions list oldest first; re-adding one is a no-op, a different one is refused."""
    v3, v2 = samples.config_version(3, ts=999.0), samples.config_version(2)
    store.add_config_version("shop", v3)
    store.add_config_version("shop", v2)
    store.add_config_version("shop", v2)
    store.add_config_version("auth", samples.config_version(2))
    assert store.config_history("shop") == [v2, v3]
    with pytest.raises(ValidationError, match="config version 2 of shop is already stored"):
        store.add_config_version("shop", replace(v2, author="mallory"))


def test_changes_are_idempotent_and_filter_by_window(store: Store) -> None:
    """A change added twice is stored once; listing filters by service and an inclusive window."""
    store.add_change(samples.change("c1", ts=10.0))
    store.add_change(samples.change("c2", ts=20.0))
    store.add_change(samples.change("c3", ts=30.0, service="auth"))
    store.add_change(replace(samples.change("c1", ts=10.0), summary="resent"))
    assert [c.id for c in store.list_changes()] == ["c1", "c2", "c3"]
    assert store.list_changes()[0] == samples.change("c1", ts=10.0)
    assert [c.id for c in store.list_changes(since=20.0)] == ["c2", "c3"]
    assert [c.id for c in store.list_changes(until=20.0)] == ["c1", "c2"]
    assert [c.id for c in store.list_changes(service="shop", since=15.0)] == ["c2"]
    assert store.list_changes()[0].details == {"commit": "abc123"}


def test_postmortem_round_trips_and_redrafts(store: Store) -> None:
    """A post-mortem's markdown and document round-trip; saving again replaces the draft."""
    assert store.get_postmortem("INC-0001") is None
    store.save_postmortem("INC-0001", "# Checkout", {"ttd": 3.5, "actions": ["ACT-1"]}, 1200.0)
    assert store.get_postmortem("INC-0001") == ("# Checkout", {"ttd": 3.5, "actions": ["ACT-1"]})
    store.save_postmortem("INC-0001", "# Checkout v2", {}, 1300.0)
    assert store.get_postmortem("INC-0001") == ("# Checkout v2", {})


# -- restarts, other processes, setup --------------------------------------------------------


def test_restart_sees_everything(url: str) -> None:
    """Closing and reopening the store (a restart) loses nothing and re-runs no migration."""
    incident = samples.incident()
    with Store.open(url) as before:
        before.next_id("incident")
        before.save_incident(incident)
        before.save_action(samples.action())
        before.save_policy(Policy("shop", 2), now=1.0)
        before.add_config_version("shop", samples.config_version())
        before.add_change(samples.change())
        before.save_postmortem(incident.id, "# pm", {"a": 1}, 5.0)
        before.set_meta("replay_cursor", 42)
    with Store.open(url) as after:
        same_incident(after.get_incident(incident.id), incident)
        assert after.open_incidents() == [incident]
        assert after.get_action("ACT-0001") == samples.action()
        assert after.load_policies() == {"shop": Policy("shop", 2)}
        assert after.config_history("shop") == [samples.config_version()]
        assert after.list_changes() == [samples.change()]
        assert after.get_postmortem(incident.id) == ("# pm", {"a": 1})
        assert after.get_meta("replay_cursor") == 42
        assert after.next_id("incident") == 2


def test_a_second_open_store_sees_writes_at_once(open_store: OpenStore) -> None:
    """A store open in another process (the CLI) reads what the engine's store just wrote."""
    engine_side, cli_side = open_store(), open_store()
    assert cli_side.list_incidents() == []
    incident = samples.incident()
    engine_side.save_incident(incident)
    same_incident(cli_side.get_incident(incident.id), incident)


def test_open_refuses_an_unsupported_database() -> None:
    """Only SQLite and PostgreSQL are supported, and the error says so."""
    with pytest.raises(ValidationError, match="unsupported database 'mysql'"):
        Store.open("mysql://localhost/stanch")


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    """SQLite runs in WAL mode with a busy timeout and foreign keys, so a CLI can work alongside."""
    pragmas = ("journal_mode", "busy_timeout", "foreign_keys")
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as store, store.engine.connect() as conn:
        values = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in pragmas]
    assert values == ["wal", 5000, 1]


def test_in_memory_sqlite_keeps_its_data_between_calls() -> None:
    """``sqlite://`` (tests, demos) shares one connection, so data survives between calls."""
    with Store.open("sqlite://") as store:
        store.save_incident(samples.incident())
        assert [i.id for i in store.list_incidents()] == ["INC-0001"]


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """While another process holds SQLite's write lock, reads still answer at once (WAL)."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as engine_side, Store.open(url) as cli_side:
        engine_side.save_incident(samples.incident())
        with engine_side.engine.begin() as writer:  # BEGIN IMMEDIATE: holds the write lock
            writer.exec_driver_sql("UPDATE counters SET value = value + 1")
            started = time.monotonic()
            assert [i.id for i in cli_side.list_incidents()] == ["INC-0001"]
            assert time.monotonic() - started < 1.0
