"""Pages and tickets of one series' SLO alert: which burn-rate tiers it answers to.

The burn-rate detector (:class:`~stanch.core.detectors.BurnRateDetector`) scores the most
urgent of its tiers: the workbook's two page tiers (14.4x over 1 h, 6x over 6 h) and its ticket
tier (1x over 3 days). One SLO alert per series carries all three, which raises questions the
detector alone cannot answer, because they depend on the alert's own history:

* **A page clears on the page tiers alone.** Otherwise it stays open until the ticket tier's
  6 h short window forgets the outage, hours after the fix.
* **The burn an outage leaves behind files no ticket.** After a page clears, the ticket tier
  still burns on the outage's errors; the page said it all, so no ticket is filed until the
  ticket tier has stopped burning once. A slow burn that was there *before* the outage (a
  ticket escalated to a page) files its ticket again.
* **A ticket escalates in place.** A slow burn that turns fast makes its open ticket a page
  (never back: an open page stays one until it clears).

Pure: no I/O, no clock. Its two flags are not snapshotted: after a restart an open alert is
re-armed as it was, and at worst one ticket is filed again.
"""

from __future__ import annotations

from dataclasses import replace

from stanch.core.alerts import Alert
from stanch.core.detectors import BurnRateDetector, Score
from stanch.core.severity import Severity


class SloPaging:
    """The SLO alert's tier bookkeeping, beside the series' burn-rate detector."""

    __slots__ = ("_escalated", "_ticket_covered", "burn")

    def __init__(self, burn: BurnRateDetector) -> None:
        self.burn = burn
        self._ticket_covered = False  # a page cleared while the ticket tier still burns
        self._escalated = False  # the open page began as a ticket

    def gate_score(self, score: Score, open_alert: Alert | None) -> Score:
        """The score the SLO alert's gate sees (a judged score of ``burn``): the page tiers'
        alone while a page is open or its leftover burn is covered (see the module
        docstring)."""
        if self.burn.value_of(pages=False) < 0.5:
            self._ticket_covered = False
        paging = open_alert is not None and open_alert.severity > Severity.SEV4
        if paging or self._ticket_covered:
            return replace(score, value=self.burn.value_of(pages=True))
        return score

    def cleared(self, alert: Alert) -> None:
        """The SLO alert ``alert`` resolved: if it was a page, the burn it leaves behind is
        its own, unless it began as a ticket (that slow burn is filed again)."""
        if alert.severity > Severity.SEV4:
            self._ticket_covered = not self._escalated
            self._escalated = False

    def escalates(self, current: Severity, now: Severity) -> bool:
        """Whether an open SLO alert graded ``current`` becomes ``now`` (only ever upwards)."""
        if now <= current:
            return False
        self._escalated = current <= Severity.SEV4
        return True

    def ticket_only(self) -> bool:
        """Whether the latest score comes from a tier that files a ticket rather than pages
        (False while unknown: the safe side)."""
        tier = self.burn.driving_tier()
        return tier is not None and not tier.pages
