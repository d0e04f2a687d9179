"""Server settings: read once, from arguments or ``STANCH_*`` environment variables.

=================================  ==========================================  =============
setting                            environment                                 default
=================================  ==========================================  =============
db                                 ``STANCH_DB``                               sqlite:///stanch.db
runbook                            ``STANCH_RUNBOOK``                          stored, else empty
host / port                        ``STANCH_HOST`` / ``STANCH_PORT``           127.0.0.1 / 8080
interval_s                         ``STANCH_INTERVAL``                         1.0
step_lag_s                         ``STANCH_STEP_LAG``                         2.0
max_body_bytes                     ``STANCH_MAX_BODY``                         1 MiB
max_decoded_bytes                  ``STANCH_MAX_DECODED_BODY``                 8 MiB
ingest_capacity                    ``STANCH_INGEST_CAPACITY``                  200000 events
max_series                         ``STANCH_MAX_SERIES``                       500 route series
max_routes_per_service             ``STANCH_MAX_ROUTES_PER_SERVICE``           200 route series
webhook_secrets[source]            ``STANCH_WEBHOOK_SECRET_<SOURCE>``          none
report_quiet_s                     ``STANCH_REPORT_QUIET``                     1800
webhooks                           ``STANCH_WEBHOOKS`` (JSON list)             none
public_url                         ``STANCH_PUBLIC_URL``                       ""
=================================  ==========================================  =============

``STANCH_WEBHOOKS`` is a JSON list of outgoing notification targets:
``[{"name": "ops", "url": "https://hooks.slack.com/...", "kind": "slack", "secret": "..."}]``.

``step_lag_s``: the engine runs that far behind the wall clock, so a time window closes only
after agents (which ship every second or so) had the chance to deliver its events. Webhook
secrets are per source: ``alertmanager``, ``pagerduty``, ``reports``, ``changes``.

``max_series`` bounds the route series of all services, ``max_routes_per_service`` those of one
service: a service past its cap (raw ids in its route templates) folds its new routes into its
own ``__other__`` series, without touching the other services' routes; the service-wide series
always exists. Left unset, the engine's defaults (500 and 200) apply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from stanch.core.errors import ValidationError
from stanch.core.series import DEFAULT_MAX_SERIES
from stanch.notify import WebhookTarget

DEFAULT_DB: Final = "sqlite:///stanch.db"
WEBHOOK_SOURCES: Final = ("alertmanager", "pagerduty", "reports", "changes")
_SECRET_PREFIX: Final = "STANCH_WEBHOOK_SECRET_"
_MAX_SERIES_LIMIT: Final = 100_000  # a sanity bound: each series has detectors and totals


@dataclass(frozen=True, slots=True)
class Settings:
    db: str = DEFAULT_DB
    runbook: Path | None = None
    detection: Path | None = None  # detector settings (detection.yaml, as `stanch tune` writes)
    host: str = "127.0.0.1"
    port: int = 8080
    interval_s: float = 1.0
    step_lag_s: float = 2.0
    max_body_bytes: int = 1024 * 1024
    max_decoded_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32
    ingest_capacity: int = 200_000
    max_event_age_s: float = 300.0  # older events are refused (the window is long closed)
    max_event_ahead_s: float = 60.0  # events this far in the future are refused (clock skew)
    report_quiet_s: float = 1800.0
    token_cache_s: float = 5.0  # how long a checked token is trusted before the store again
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)
    run_loop: bool = True  # tests drive ServerContext.step themselves
    webhooks: tuple[WebhookTarget, ...] = ()  # outgoing notifications (STANCH_WEBHOOKS, JSON)
    public_url: str = ""  # where people reach this server, for links in notifications
    max_series: int | None = None  # route series in all; None: the engine's (500)
    max_routes_per_service: int | None = None  # route series per service; None: engine's (200)
    history_days: float = 0.0  # days of closed points kept for `backtest --db`; 0: none (opt-in:
    # every series every window is a row, about 0.5 KB: 500 routes at 1 s is ~20 GB a day)

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValidationError("interval must be positive")
        if self.step_lag_s < 0:
            raise ValidationError("step lag must not be negative")
        if not 0 <= self.history_days <= 3650:
            raise ValidationError("history days must be between 0 and 3650")
        if min(self.max_body_bytes, self.max_decoded_bytes, self.ingest_capacity) < 1:
            raise ValidationError("body limits and ingest capacity must be positive")
        for name, var, value, low in (
            ("max_series", "STANCH_MAX_SERIES", self.max_series, 2),
            (
                "max_routes_per_service",
                "STANCH_MAX_ROUTES_PER_SERVICE",
                self.max_routes_per_service,
                1,
            ),
        ):
            if value is not None and not low <= value <= _MAX_SERIES_LIMIT:
                raise ValidationError(
                    f"{name} ({var}) must be between {low} and {_MAX_SERIES_LIMIT}, not {value}"
                )
        total = self.max_series if self.max_series is not None else DEFAULT_MAX_SERIES
        if self.max_routes_per_service is not None and self.max_routes_per_service > total:
            raise ValidationError(
                f"max_routes_per_service (STANCH_MAX_ROUTES_PER_SERVICE, "
                f"{self.max_routes_per_service}) must not exceed max_series (STANCH_MAX_SERIES, "
                f"{total})"
            )
        unknown = sorted(set(self.webhook_secrets) - set(WEBHOOK_SOURCES))
        if unknown:
            raise ValidationError(f"webhook secrets for unknown sources: {', '.join(unknown)}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``env`` (default ``os.environ``); non-None ``overrides`` win."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        simple = {
            "db": ("STANCH_DB", str),
            "runbook": ("STANCH_RUNBOOK", Path),
            "detection": ("STANCH_DETECTION", Path),
            "host": ("STANCH_HOST", str),
            "port": ("STANCH_PORT", int),
            "interval_s": ("STANCH_INTERVAL", float),
            "step_lag_s": ("STANCH_STEP_LAG", float),
            "max_body_bytes": ("STANCH_MAX_BODY", int),
            "max_decoded_bytes": ("STANCH_MAX_DECODED_BODY", int),
            "ingest_capacity": ("STANCH_INGEST_CAPACITY", int),
            "report_quiet_s": ("STANCH_REPORT_QUIET", float),
            "public_url": ("STANCH_PUBLIC_URL", str),
            "history_days": ("STANCH_HISTORY_DAYS", float),
            "max_series": ("STANCH_MAX_SERIES", int),
            "max_routes_per_service": ("STANCH_MAX_ROUTES_PER_SERVICE", int),
        }
        for name, (var, kind) in simple.items():
            raw = env.get(var)
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise ValidationError(f"{var}: cannot read {raw!r}") from None
        secrets = {
            var.removeprefix(_SECRET_PREFIX).lower(): value
            for var, value in env.items()
            if var.startswith(_SECRET_PREFIX) and value
        }
        if secrets:
            values["webhook_secrets"] = secrets
        if env.get("STANCH_WEBHOOKS"):
            values["webhooks"] = _webhooks(env["STANCH_WEBHOOKS"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        db = str(values.get("db", DEFAULT_DB))
        if "://" not in db:  # a plain path is a SQLite file, as in the CLI
            values["db"] = f"sqlite:///{db}"
        return cls(**values)  # type: ignore[arg-type]


def _webhooks(raw: str) -> tuple[WebhookTarget, ...]:
    """``STANCH_WEBHOOKS``: a JSON list of {name, url, kind?, events?, secret?}."""
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"STANCH_WEBHOOKS: not JSON: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValidationError("STANCH_WEBHOOKS: expected a JSON list of objects")
    targets = []
    for index, item in enumerate(items):
        try:
            events = item.pop("events", None)
            if events is not None:
                item["events"] = frozenset(events)
            targets.append(WebhookTarget(**item))
        except TypeError as exc:
            raise ValidationError(f"STANCH_WEBHOOKS[{index}]: {exc}") from None
    return tuple(targets)
