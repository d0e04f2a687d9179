"""RCA suspects: changes ranked by time and scope, clients ranked from alert evidence."""

from __future__ import annotations

import pytest

from stanch.core.alerts import AlertKind
from stanch.core.events import ChangeEvent, ChangeKind
from stanch.core.rca.suspects import (
    REMEDIATION_ACTOR,
    rank_changes,
    rank_dimensions,
    rank_suspects,
)

from .factories import make_alert

ONSET = 10_000.0
AFFECTED = {"POST /checkout"}


def change(
    cid: str,
    ago: float,
    *,
    routes: tuple[str, ...] = ("POST /checkout",),
    service: str = "shop",
    actor: str = "dev",
    kind: ChangeKind = ChangeKind.CONFIG,
) -> ChangeEvent:
    return ChangeEvent(cid, ONSET - ago, service, kind, f"change {cid}", actor=actor, routes=routes)


def ranked(*changes: ChangeEvent) -> list[str]:
    return [s.ref for s in rank_changes(changes, onset=ONSET, service="shop", routes=AFFECTED)]


def test_closer_to_the_onset_ranks_higher() -> None:
    """Of two changes touching the affected route, the more recent one ranks first."""
    assert ranked(change("old", 3600.0), change("new", 60.0)) == ["new", "old"]


def test_scope_orders_equal_times() -> None:
    """At equal times: affected route > service-wide > other routes > other service."""
    changes = [
        change("other-svc", 60.0, service="cart"),
        change("other-route", 60.0, routes=("GET /x",)),
        change("service-wide", 60.0, routes=()),
        change("route", 60.0),
    ]
    assert ranked(*changes) == ["route", "service-wide", "other-route", "other-svc"]
    scores = {
        s.ref: s.score for s in rank_changes(changes, onset=ONSET, service="shop", routes=AFFECTED)
    }
    assert scores["service-wide"] == pytest.approx(scores["route"] * 0.5, rel=1e-3)
    assert scores["other-svc"] == pytest.approx(scores["route"] * 0.1, rel=1e-3)


def test_time_score_halves_every_half_life() -> None:
    """A change one half-life before the onset scores half of one right at it."""
    now = rank_changes([change("a", 0.0)], onset=ONSET, service="shop", routes=AFFECTED)
    later = rank_changes([change("a", 900.0)], onset=ONSET, service="shop", routes=AFFECTED)
    assert now[0].score == pytest.approx(1.0)
    assert later[0].score == pytest.approx(0.5)


def test_windows_exclude_too_old_and_too_late_changes() -> None:
    """Changes past the lookback, or after the onset beyond the grace, are not suspects."""
    assert ranked(change("ancient", 6 * 3600.0 + 1)) == []
    assert ranked(change("after", -61.0)) == []
    assert ranked(change("edge", 6 * 3600.0)) == ["edge"]


def test_change_just_after_onset_is_a_weak_suspect() -> None:
    """A change within the grace after onset is kept with a weak score, and says so."""
    (suspect,) = rank_changes([change("late", -30.0)], onset=ONSET, service="shop", routes=AFFECTED)
    assert suspect.score == pytest.approx(0.2)
    assert any("after the onset" in e for e in suspect.evidence)


def test_stanch_remediation_changes_are_excluded() -> None:
    """Stanch's own rollbacks are remedies, never root-cause suspects."""
    assert ranked(change("fix", 10.0, actor=REMEDIATION_ACTOR), change("bad", 600.0)) == ["bad"]


def test_confidence_follows_score_and_shares_the_evidence() -> None:
    """One strong suspect among weak ones is confident; two equal ones split confidence."""
    lone = rank_changes(
        [change("strong", 30.0), change("weak", 5 * 3600.0, routes=("GET /x",))],
        onset=ONSET,
        service="shop",
        routes=AFFECTED,
    )
    assert [s.ref for s in lone] == ["strong", "weak"]
    assert lone[0].confidence > 0.7
    assert lone[1].confidence < 0.01
    pair = rank_changes(
        [change("a", 60.0), change("b", 60.0)], onset=ONSET, service="shop", routes=AFFECTED
    )
    assert pair[0].confidence == pair[1].confidence < 0.5
    for suspects in (lone, pair):
        confidences = [s.confidence for s in suspects]
        assert confidences == sorted(confidences, reverse=True)
        assert sum(confidences) < 1.0


def test_ties_break_by_recency_then_id() -> None:
    """Equal scores rank the later change first, then by id, deterministically."""
    assert ranked(change("b", 60.0), change("a", 60.0)) == ["a", "b"]


def test_evidence_explains_time_scope_and_author() -> None:
    """Each suspect carries human-readable evidence: when, what it touches, who did what."""
    (suspect,) = rank_changes(
        [change("c1", 120.0, actor="alice")], onset=ONSET, service="shop", routes=AFFECTED
    )
    assert suspect.kind == "change"
    assert suspect.summary == "change c1"
    assert suspect.evidence[0] == "landed 2m before the onset"
    assert "touches affected route(s) POST /checkout" in suspect.evidence
    assert suspect.evidence[-1] == "config by alice: change c1"


def test_dimensions_come_from_traffic_spikes_only() -> None:
    """Only traffic-spike alerts implicate clients; a single client is a confident suspect."""
    alerts = [
        make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("bot",)),
        make_alert(AlertKind.ERROR_BURST, clients=("innocent",)),
    ]
    (suspect,) = rank_dimensions(alerts)
    assert suspect.kind == "dimension"
    assert suspect.ref == "client=bot"
    assert suspect.confidence == 0.9
    assert "GET /x" in suspect.evidence[0]


def test_dimension_collects_evidence_from_every_alert() -> None:
    """A client named by several spike alerts carries all their evidence."""
    alerts = [
        make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("bot",)),
        make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /y", clients=("bot",)),
    ]
    (suspect,) = rank_dimensions(alerts)
    assert len(suspect.evidence) == 2


def test_dimensions_keep_the_most_responsible_client_first() -> None:
    """The client an alert names first (most responsible) gets the higher confidence."""
    alert = make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("zz-scraper", "acme"))
    suspects = rank_dimensions([alert])
    assert suspects[0].ref == "client=zz-scraper"
    assert suspects[0].confidence > suspects[1].confidence


def test_rank_suspects_merges_by_confidence() -> None:
    """Changes and dimensions are merged into one list ordered by confidence."""
    alerts = [make_alert(AlertKind.TRAFFIC_SPIKE, route="GET /x", clients=("bot",))]
    merged = rank_suspects(
        [change("c1", 3 * 3600.0, routes=("GET /y",))],
        alerts,
        onset=ONSET,
        service="shop",
        routes=AFFECTED,
    )
    assert [s.ref for s in merged] == ["client=bot", "c1"]
    confidences = [s.confidence for s in merged]
    assert confidences == sorted(confidences, reverse=True)
