"""User reports: "checkout fails for me" from a person or a support tool, as alerts.

Reports about the same service and route belong together: they form one :class:`ReportGroup`
with one fingerprint, so three reports make one alert with a count, not three alerts. The
alert's severity grows with the number of *distinct* reporters (one person reporting three
times is still one): a lone report is SEV4, two to four make SEV3, five or more SEV2 (never
SEV1: that takes evidence beyond people's words). A group with no new report for
``quiet_s`` resolves its alert, so an incident opened by reports alone can recover.

Pure: the server keeps the groups (in the store) and feeds the alerts to the engine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from stanch.core.alerts import Alert, AlertKind, AlertStatus, fingerprint
from stanch.core.events import UserReport
from stanch.core.severity import Severity
from stanch.sources._common import MAX_ID, MAX_ROUTE, clip

SOURCE: Final = "user_report"
MAX_REPORTERS: Final = 100  # distinct reporters remembered per group (enough to grade it)
QUIET_S: Final = 30 * 60.0

_Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]


class ReportIn(BaseModel):
    """``POST /api/v1/reports``: what a person says is broken."""

    model_config = ConfigDict(extra="forbid")

    service: _Name
    text: str = Field(min_length=1, max_length=2000, description="What the person saw")
    route: str | None = Field(
        None, max_length=MAX_ROUTE, description='"METHOD /template" if known, e.g. "POST /checkout"'
    )
    client: str | None = Field(None, max_length=MAX_ID, description="The affected client id")
    reporter: str | None = Field(None, max_length=MAX_ID, description="Who reports it")


@dataclass(frozen=True, slots=True)
class ReportGroup:
    """The open reports about one service and route."""

    fingerprint: str
    service: str
    route: str
    count: int
    reporters: tuple[str, ...]
    first_ts: float
    last_ts: float
    last_text: str
    open: bool = True

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["reporters"] = list(self.reporters)
        return doc

    @classmethod
    def from_doc(cls, doc: Any) -> ReportGroup | None:
        if not isinstance(doc, dict):
            return None
        return cls(**{**doc, "reporters": tuple(doc.get("reporters", ()))})


def group_fingerprint(service: str, route: str) -> str:
    return fingerprint(SOURCE, service, route)


def to_report(body: ReportIn, report_id: str, now: float) -> UserReport:
    return UserReport(
        id=report_id,
        ts=now,
        service=body.service,
        text=body.text,
        route=body.route or "",
        client=body.client or "",
        reporter=body.reporter or "",
    )


def add(group: ReportGroup | None, report: UserReport) -> ReportGroup:
    """``group`` with ``report`` counted in (a new group if there is none open)."""
    route = report.route.strip() or "*"
    who = report.reporter or report.client or "anonymous"
    if group is None or not group.open:
        return ReportGroup(
            fingerprint=group_fingerprint(report.service, route),
            service=report.service,
            route=route,
            count=1,
            reporters=(who,),
            first_ts=report.ts,
            last_ts=report.ts,
            last_text=clip(report.text, 300),
        )
    reporters = group.reporters
    if who not in reporters and len(reporters) < MAX_REPORTERS:
        reporters = (*reporters, who)
    return replace(
        group,
        count=group.count + 1,
        reporters=reporters,
        last_ts=max(group.last_ts, report.ts),
        last_text=clip(report.text, 300),
    )


def severity(distinct_reporters: int) -> Severity:
    if distinct_reporters >= 5:
        return Severity.SEV2
    if distinct_reporters >= 2:
        return Severity.SEV3
    return Severity.SEV4


def alert(group: ReportGroup, now: float) -> Alert:
    """The group's alert: firing while open, resolved once it closed."""
    people = len(group.reporters)
    where = group.route if group.route != "*" else f"service {group.service}"
    plural = "s" if group.count != 1 else ""
    explanation = (
        f"{group.count} user report{plural} from {people} "
        f"{'person' if people == 1 else 'people'} on {where}: latest “{group.last_text}”"
    )
    return Alert(
        fingerprint=group.fingerprint,
        kind=AlertKind.USER_REPORT,
        service=group.service,
        route=group.route,
        signal="reports",
        severity=severity(people),
        status=AlertStatus.FIRING if group.open else AlertStatus.RESOLVED,
        started_at=group.first_ts,
        updated_at=now,
        observed=float(people),
        expected=0.0,
        score=float(group.count),
        explanation=explanation,
        source=SOURCE,
        ended_at=None if group.open else now,
    )


def is_quiet(group: ReportGroup, now: float, quiet_s: float = QUIET_S) -> bool:
    """True when an open group has had no report for ``quiet_s`` seconds."""
    return group.open and now - group.last_ts >= quiet_s
