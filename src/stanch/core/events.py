"""What the outside world tells the core: requests served, changes made, people's reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class RequestEvent:
    """One request's outcome, as the middleware (or an access log, or an agent) saw it.

    ``route`` is the route *template* (``/products/{id}``), never the raw path, so series stay
    bounded. ``enforced`` names the Stanch policy that answered instead of the app (``breaker``,
    ``disabled``, ``throttle``, ``block``, ``shed``), empty when the app answered itself: those
    requests were protected, not failed, and detectors must not read them as the app's errors.
    """

    ts: float
    service: str
    method: str
    route: str
    status: int
    latency_s: float
    client: str = ""
    version: str = ""
    enforced: str = ""

    @property
    def is_error(self) -> bool:
        """A server-side failure of the app itself (5xx not produced by Stanch's own policy)."""
        return self.status >= 500 and not self.enforced


class ChangeKind(StrEnum):
    CONFIG = "config"
    DEPLOY = "deploy"
    FEATURE_FLAG = "feature_flag"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A change made to the system: the raw material of root-cause analysis.

    ``routes`` lists the route keys (``"POST /checkout"``) the change is known to touch; empty
    means the whole service.
    """

    id: str
    ts: float
    service: str
    kind: ChangeKind
    summary: str
    key: str = ""
    old_value: str = ""
    new_value: str = ""
    actor: str = ""
    version: str = ""
    routes: tuple[str, ...] = ()
    details: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class UserReport:
    """A person (or a support tool) saying something is broken for them."""

    id: str
    ts: float
    service: str
    text: str
    route: str = ""
    client: str = ""
    reporter: str = ""
