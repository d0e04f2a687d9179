"""Series identity and the cardinality guard that keeps the number of series bounded.

A series is one service, or one route of one service. Routes are the app's route *templates*
(``GET /products/{id}``) so a scan of ``/products/1..10**6`` stays one series; the guard is the
second line of defence for apps that put ids in their templates anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_WIDE = "*"
OVERFLOW_ROUTE = "__other__"


@dataclass(frozen=True, slots=True, order=True)
class SeriesKey:
    """``route`` is ``"METHOD /template"``, or ``"*"`` for the whole service."""

    service: str
    route: str = SERVICE_WIDE

    @property
    def is_service_wide(self) -> bool:
        return self.route == SERVICE_WIDE

    def __str__(self) -> str:
        return f"{self.service} {self.route}"


def route_key(method: str, template: str) -> str:
    """The canonical route name used in series, runbooks and policies: ``"POST /checkout"``."""
    return f"{method.upper()} {template}"


class CardinalityGuard:
    """Admits at most ``max_series`` distinct series; later newcomers share one overflow series.

    The overflow series is still measured (its traffic is not lost), and ``overflowed`` counts
    how many events were folded into it so the operator can see the cap was hit.
    """

    def __init__(self, max_series: int = 500) -> None:
        if max_series < 2:
            raise ValueError("max_series must be at least 2")
        self.max_series = max_series
        self._admitted: set[SeriesKey] = set()
        self.overflowed = 0

    def admit(self, key: SeriesKey) -> SeriesKey:
        if key in self._admitted:
            return key
        if len(self._admitted) < self.max_series:
            self._admitted.add(key)
            return key
        self.overflowed += 1
        overflow = SeriesKey(key.service, OVERFLOW_ROUTE)
        self._admitted.add(overflow)
        return overflow

    def __len__(self) -> int:
        return len(self._admitted)
