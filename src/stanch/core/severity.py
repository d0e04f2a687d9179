"""Severity levels shared by alerts, incidents and runbook rules."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """SEV1 is the worst. Ordering follows urgency, so ``max()`` picks the most urgent."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @property
    def rank(self) -> int:
        """4 for SEV1 down to 1 for SEV4: bigger is more urgent."""
        return 5 - int(self.value[-1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


def assess_severity(
    *,
    failing_share: float = 0.0,
    lost_share: float = 0.0,
    excess_load: float = 0.0,
    slow_share: float = 0.0,
    burn: float = 0.0,
) -> Severity:
    """Severity from impact, so the same rule grades every kind of alert.

    ``failing_share``: fraction of the service's requests failing; ``lost_share``: fraction of
    its traffic that vanished; ``excess_load``: extra load as a fraction of normal service load
    (a risk, not yet harm); ``slow_share``: fraction of requests far slower than usual;
    ``burn``: the service's SLO burn rate. A fast budget burn alone is at least SEV2, as in the
    SRE workbook's paging rule.
    """
    harm = max(failing_share, lost_share)
    if harm >= 0.10:
        severity = Severity.SEV1
    elif harm >= 0.01 or burn >= 14.4:
        severity = Severity.SEV2
    elif harm >= 0.001 or burn >= 6.0 or slow_share >= 0.10 or excess_load >= 0.5:
        severity = Severity.SEV3
    else:
        severity = Severity.SEV4
    return severity


def worst(severities: list[Severity]) -> Severity:
    """The most urgent of ``severities``; SEV4 when there are none."""
    return max(severities) if severities else Severity.SEV4
