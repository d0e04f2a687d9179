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


DEFAULT_MAX_SERIES = 500
"""Route series for the whole control plane. Each series costs detector state, a totals entry
and (with history on) a row per window, so the cap is about memory and CPU per step; with the
per-service cap below, one service can take at most 40% of it."""

DEFAULT_MAX_ROUTES_PER_SERVICE = 200
"""Route series of one service: a service whose routes explode (ids in its templates) folds its
own excess, and cannot starve the other services of the global budget."""


class CardinalityGuard:
    """Admits a bounded number of route series; later newcomers share their service's overflow.

    Two caps, checked in order: ``max_routes_per_service`` route series per service, then
    ``max_series`` route series in all. A route past either cap is folded into its own service's
    ``__other__`` series, so one service's explosion never renames another service's routes
    (until the global budget is spent, which bounds memory whatever the services do). Each
    service has at most one overflow series beside its routes, as it has one service-wide series
    (which the guard never folds: it always exists).

    The overflow series is still measured (its traffic is not lost); ``overflowed`` counts the
    events folded into overflow series, ``folded`` the same per service, so the operator can see
    which service hit a cap. The first fold of each service leaves a notice in ``notices`` (the
    core does no I/O: the engine drains and logs them, see :meth:`take_notices`).
    """

    def __init__(
        self,
        max_series: int = DEFAULT_MAX_SERIES,
        max_routes_per_service: int = DEFAULT_MAX_ROUTES_PER_SERVICE,
    ) -> None:
        if max_series < 2:
            raise ValueError("max_series must be at least 2")
        if max_routes_per_service < 1:
            raise ValueError("max_routes_per_service must be at least 1")
        self.max_series = max_series
        # A per-service cap above the global one would never bind: the global one does.
        self.max_routes_per_service = min(max_routes_per_service, max_series)
        self._admitted: set[SeriesKey] = set()
        self._routes = 0  # admitted route series, overflow series excluded
        self._per_service: dict[str, int] = {}
        self.folded: dict[str, int] = {}
        self.overflowed = 0
        self.notices: list[str] = []  # first fold of each service, for the log

    def take_notices(self) -> list[str]:
        """The notices since the last call (the engine logs them as warnings)."""
        notices, self.notices = self.notices, []
        return notices

    def admit(self, key: SeriesKey) -> SeriesKey:
        if key in self._admitted:
            return key
        if key.is_service_wide:
            return key  # one per service, never folded (and not counted against the caps)
        own = self._per_service.get(key.service, 0)
        if own < self.max_routes_per_service and self._routes < self.max_series:
            self._admitted.add(key)
            self._per_service[key.service] = own + 1
            self._routes += 1
            return key
        return self._fold(key, own)

    def _fold(self, key: SeriesKey, own: int) -> SeriesKey:
        self.overflowed += 1
        count = self.folded.get(key.service, 0)
        self.folded[key.service] = count + 1
        if count == 0:
            if own >= self.max_routes_per_service:
                why = f"its {self.max_routes_per_service} route series (max_routes_per_service)"
            else:
                why = f"the {self.max_series} route series of all services (max_series)"
            self.notices.append(
                f"service {key.service!r} reached {why}: new routes such as {key.route!r} are "
                f"folded into {OVERFLOW_ROUTE!r}; raise the cap or use route templates instead "
                "of raw paths"
            )
        overflow = SeriesKey(key.service, OVERFLOW_ROUTE)
        self._admitted.add(overflow)
        return overflow

    def __len__(self) -> int:
        return len(self._admitted)
