"""User-report groups and CI/CD change bodies."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from stanch.core.events import ChangeKind, UserReport
from stanch.core.severity import Severity
from stanch.sources import reports
from stanch.sources.changes import ChangeIn, to_change

NOW = 1_800_000_000.0


def rep(who: str, route: str = "POST /checkout", ts: float = NOW) -> UserReport:
    return UserReport(f"r-{who}-{ts}", ts, "shop", "fails for me", route=route, reporter=who)


def test_groups_count_reports_and_distinct_reporters() -> None:
    """Reports add up in one group; severity follows distinct reporters (4, 3, 2)."""
    group = None
    for who in ("a", "a", "b"):
        group = reports.add(group, rep(who))
    assert group is not None
    assert (group.count, group.reporters) == (3, ("a", "b"))
    assert reports.alert(group, NOW).severity is Severity.SEV3
    assert reports.severity(1) is Severity.SEV4
    assert reports.severity(7) is Severity.SEV2


def test_groups_round_trip_and_close_when_quiet() -> None:
    """A group survives to_doc/from_doc; it is quiet after quiet_s; a closed group restarts."""
    group = reports.add(None, rep("a"))
    assert reports.ReportGroup.from_doc(group.to_doc()) == group
    assert not reports.is_quiet(group, NOW + 10, 60)
    assert reports.is_quiet(group, NOW + 60, 60)
    closed = replace(group, open=False)
    assert not reports.alert(closed, NOW).is_firing
    assert reports.add(closed, rep("b")).count == 1


def test_route_less_reports_are_service_wide() -> None:
    """A report without a route groups on the whole service ('*')."""
    group = reports.add(None, rep("a", route=""))
    assert group.route == "*"
    assert group.fingerprint == reports.group_fingerprint("shop", "*")


def test_change_bodies_are_strict_and_ids_stable() -> None:
    """Unknown fields are refused; the derived id is stable; ts is capped at now."""
    body = ChangeIn(service="api", kind=ChangeKind.DEPLOY, summary="v2", ts=NOW + 999)
    change = to_change(body, NOW)
    assert change.ts == NOW
    assert change.id == to_change(body, NOW + 1).id
    with pytest.raises(ValidationError):
        ChangeIn.model_validate({"service": "api", "kind": "deploy", "summary": "x", "who": 1})
    with pytest.raises(ValidationError):
        ChangeIn.model_validate({"service": "api", "kind": "deploy", "summary": "x", "ts": "nan"})
