"""The server's composition root: one engine, its store, and what the API adds around them.

:class:`ServerContext` is what every handler reaches through ``request.app.state.stanch``,
and what later additions (agent mode, notifications, metrics) plug into: it holds the
:class:`~stanch.engine.Engine`, the :class:`~stanch.store.Store`, the :class:`Settings`, the
ingest queue, the audit trail, the token checker and the policy watch.

Concurrency. The engine is not thread-safe. Every handler that touches it is ``async def``
and calls it without awaiting in between, and the step loop runs on the same event loop, so
engine calls never overlap. (Store calls block the loop briefly; they are short transactions.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from stanch.core.audit import Anchor
from stanch.core.config import ConfigKeySpec, ConfigStore
from stanch.core.events import UserReport
from stanch.core.policy import Policy
from stanch.core.runbook import Runbook, load_runbook, load_runbook_text
from stanch.engine import Engine, EngineConfig
from stanch.metrics import build_registry
from stanch.notify import Notifier
from stanch.server import detection_audit
from stanch.server.agents import AgentCollector, AgentRegistry
from stanch.server.audit import AuditTrail
from stanch.server.auth import TokenChecker
from stanch.server.ingest import IngestQueue
from stanch.server.settings import Settings
from stanch.sources import reports
from stanch.store import Store

log = logging.getLogger("stanch.server")

EMPTY_RUNBOOK = "version: 1\nrules: []\n"
RUNBOOK_META = "runbook"
DETECTION_META = "detection_config"
SERVE_ACTOR = "stanch serve"
INGEST_SLICE = 5_000  # events per engine.ingest call in the loop: ~50 ms of aggregation
INGEST_BUDGET_S = 5.0  # slicing stops after this: under overload the step must still run
AUDIT_ANCHOR_S = 300.0  # how often the loop logs the audit chain's head when it moved


class PolicyWatch:
    """Lets long-polling agents wait for their service's policy to change."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._versions: dict[str, int] = {}

    def notify(self, policies: dict[str, Policy]) -> None:
        """Wake the waiters if any policy's version moved since the last call."""
        versions = {service: p.version for service, p in policies.items()}
        if versions != self._versions:
            self._versions = versions
            self._event.set()
            self._event = asyncio.Event()

    async def wait(self, version: Callable[[], int], known: int, timeout: float) -> bool:
        """Wait until ``version()`` differs from ``known``; False when ``timeout`` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while version() == known:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)
        return True


class ReportTracker:
    """Open user-report groups, kept in memory and in the store (``source_state``)."""

    SOURCE = "reports"

    def __init__(self, store: Store) -> None:
        self.store = store
        self.groups: dict[str, reports.ReportGroup] = {}
        for doc in store.list_source_state(self.SOURCE).values():
            group = reports.ReportGroup.from_doc(doc)
            if group is not None and group.open:
                self.groups[group.fingerprint] = group

    def add(self, report: UserReport) -> reports.ReportGroup:
        route = report.route.strip() or "*"
        fp = reports.group_fingerprint(report.service, route)
        group = reports.add(self.groups.get(fp), report)
        self.groups[fp] = group
        self.store.put_source_state(self.SOURCE, fp, group.to_doc(), report.ts)
        return group

    def close_quiet(self, now: float, quiet_s: float) -> list[reports.ReportGroup]:
        closed = []
        for fp, group in list(self.groups.items()):
            if reports.is_quiet(group, now, quiet_s):
                done = replace(group, open=False)
                self.store.put_source_state(self.SOURCE, fp, done.to_doc(), now)
                del self.groups[fp]
                closed.append(done)
        return closed


class ServerContext:
    """Everything a request handler needs; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        engine: Engine,
        *,
        clock: Callable[[], float] = time.time,
        owns_store: bool = False,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.clock = clock
        self.owns_store = owns_store
        self.queue = IngestQueue(settings.ingest_capacity)
        self.audit = AuditTrail(store, clock)
        self.tokens = TokenChecker(store, clock, settings.token_cache_s)
        self.policy_watch = PolicyWatch()
        self.reports = ReportTracker(store)
        self.extensions: dict[str, Any] = {}  # for later additions: notifiers, collectors
        self._anchored_seq = 0  # the audit head last logged (see log_audit_head)
        engine.listeners.append(self.audit.on_engine_event)
        self.metrics = build_registry(engine, clock=self.now)
        self.agents = AgentRegistry()
        self.metrics.register(AgentCollector(self.agents, clock))
        self.notifier = Notifier(list(settings.webhooks), base_url=settings.public_url)
        self.notifier.attach(engine)

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        engine_config: EngineConfig | None = None,
    ) -> ServerContext:
        """Open the store, load the runbook, build the engine: the one bootstrap."""
        detection_text = ""
        if settings.detection is not None:  # read first: a bad file opens nothing
            engine_config, detection_text = _with_detection(engine_config, settings.detection)
        engine_config = _with_series_caps(engine_config, settings)
        store = Store.open(settings.db)
        try:
            runbook, text, source = _initial_runbook(store, settings)
            now = clock() - settings.step_lag_s
            recorder = None
            if settings.history_days > 0:  # for `stanch backtest --db` and `stanch tune --db`
                from stanch.evaluation.recorders import StorePointRecorder

                recorder = StorePointRecorder(store, retention_s=settings.history_days * 86_400)
            engine = Engine(
                store,
                runbook,
                config=engine_config,
                now=now,
                record=recorder.write if recorder else None,
            )
            for service in store.config_services():
                engine.add_config_store(_inferred_config_store(store, service))
            ctx = cls(settings, store, engine, clock=clock, owns_store=True)
            ctx.save_runbook(runbook, text, source=source, actor=SERVE_ACTOR, startup=True)
            if settings.detection is not None:
                ctx.record_detection(detection_text, str(settings.detection))
        except BaseException:
            store.close()
            raise
        return ctx

    def close(self) -> None:
        self.notifier.close(timeout=5.0)
        if self.owns_store:
            self.store.close()

    # -- time and the loop ------------------------------------------------------------------

    def now(self) -> float:
        """The engine's clock: the wall clock less ``step_lag_s`` (see Settings)."""
        return self.clock() - self.settings.step_lag_s

    def step(self, now: float | None = None, *, all_queued: bool = True) -> None:
        """One turn of the loop: queued events in, quiet report groups out, engine step.

        ``all_queued=False`` (the live loop) takes in first only the queued batches that hold
        an event of a window this step closes; the others wait for the next turn, where
        ``ingest_queued`` takes them in slices instead of in one long block."""
        now = self.now() if now is None else now
        if all_queued:
            self.engine.ingest(self.queue.drain())
        else:
            interval = self.engine.windows.interval
            # WindowAggregator.close(now) closes the windows before index floor(now / interval);
            # the 1e-9 covers an event a rounding error from that edge.
            closing_before = (math.floor(now / interval) + 1e-9) * interval
            self.engine.ingest(self.queue.drain(before=closing_before))
        for group in self.reports.close_quiet(now, self.settings.report_quiet_s):
            self.engine.ingest_alert(reports.alert(group, now), now)
        self.engine.step(now)
        self.changed()

    def changed(self) -> None:
        """Call after anything that may have changed a policy: long-polls wake up."""
        self.policy_watch.notify(self.engine.policies)

    async def run(self) -> None:
        """The step loop; runs until cancelled. A failing step is logged, never fatal."""
        anchored_at = -math.inf
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.ingest_queued()
                self.step(all_queued=False)
            except Exception:
                log.exception("engine step failed")
            if self.clock() - anchored_at >= AUDIT_ANCHOR_S:
                anchored_at = self.clock()
                self.log_audit_head()

    def log_audit_head(self) -> None:
        """Log the audit chain's head (``audit head SEQ:HASH``) when it moved since last time.

        Logs usually leave the host for a system the database's writers cannot rewrite, which
        makes each line an anchor for ``stanch audit verify --anchor``: it then finds entries
        cut from the end of the chain, which the chain alone cannot show."""
        try:
            head = self.store.audit_head()
        except Exception:
            log.exception("reading the audit head failed")
            return
        if head is not None and head.seq != self._anchored_seq:
            self._anchored_seq = head.seq
            log.info("audit head %s", Anchor(head.seq, head.hash))

    async def ingest_queued(self) -> None:
        """Move queued events into the engine a slice at a time, letting the loop run other
        handlers in between. Taking a big backlog in one call blocked every request for as
        long (~1 s per 100,000 events): long-polls, approvals, the dashboard. It stops once
        at most one slice is left, or after ``INGEST_BUDGET_S`` (so the step runs on time
        under overload); the step then takes in at once only what the windows it closes
        need, so every event accepted before a step is in before its window closes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + INGEST_BUDGET_S
        while len(self.queue) > INGEST_SLICE and loop.time() < deadline:
            self.engine.ingest(self.queue.drain(INGEST_SLICE))
            await asyncio.sleep(0)

    # -- runbook and detector settings -----------------------------------------------------

    def record_detection(self, text: str, source: str) -> None:
        """Audit the detector settings in force when they differ from the last ones recorded,
        so "who loosened the thresholds, when, and from what to what" has an answer: the
        entry carries the values set and each change (see ``server.detection_audit``)."""
        stored = self.store.get_meta(DETECTION_META) or {}
        if stored.get("text") == text:
            return
        config = self.engine.config
        settings = detection_audit.settings_of(config.detection, dict(config.detection_routes))
        previous = detection_audit.stored_settings(stored.get("text")) if stored else None
        changed = detection_audit.changes(previous, settings)
        self.store.set_meta(
            DETECTION_META, {"text": text, "source": source, "updated_at": self.clock()}
        )
        self.audit.record(
            SERVE_ACTOR,
            "detection.replace",
            source,
            before={"source": stored.get("source"), "settings": previous} if stored else None,
            after={
                "interval_s": config.interval_s,
                "routes": sorted(config.detection_routes),
                "settings": settings,
                "changed": changed,
            },
            why="detector settings loaded at startup: " + detection_audit.summary(changed),
        )

    def save_runbook(
        self, runbook: Runbook, text: str, *, source: str, actor: str, startup: bool = False
    ) -> None:
        """Make ``runbook`` the engine's, store its text, and audit the replacement."""
        stored = self.store.get_meta(RUNBOOK_META) or {}
        self.engine.runbook = runbook
        if stored.get("text") == text:
            return
        self.store.set_meta(
            RUNBOOK_META,
            {"text": text, "source": source, "updated_at": self.clock(), "updated_by": actor},
        )
        self.audit.record(
            actor,
            "runbook.replace",
            source,
            before={"rules": _rule_names(stored.get("text"))} if stored else None,
            after={"rules": [rule.name for rule in runbook.rules]},
            why="runbook loaded at startup" if startup else "runbook replaced",
        )


def _with_series_caps(config: EngineConfig | None, settings: Settings) -> EngineConfig | None:
    """``config`` with the series caps ``settings`` set (``STANCH_MAX_SERIES``, ...)."""
    caps = {
        "max_series": settings.max_series,
        "max_routes_per_service": settings.max_routes_per_service,
    }
    caps = {name: value for name, value in caps.items() if value is not None}
    if not caps:
        return config
    return replace(config or EngineConfig(), **caps)  # type: ignore[arg-type]


def _with_detection(config: EngineConfig | None, path: Path) -> tuple[EngineConfig, str]:
    """``config`` with the detector settings of ``path`` (``detection.yaml``) and that file's
    text. Its ``interval_s`` is the aggregation window, so it sets the engine's too."""
    from stanch.evaluation.detection_file import load_detection_config

    defaults, routes = load_detection_config(path)
    base = config or EngineConfig()
    merged = replace(
        base, interval_s=defaults.interval_s, detection=defaults, detection_routes=routes
    )
    return merged, path.read_text(encoding="utf-8-sig")


def _initial_runbook(store: Store, settings: Settings) -> tuple[Runbook, str, str]:
    if settings.runbook is not None:
        runbook = load_runbook(settings.runbook)
        return runbook, settings.runbook.read_text(encoding="utf-8-sig"), str(settings.runbook)
    stored = store.get_meta(RUNBOOK_META)
    if stored:
        text, source = str(stored["text"]), str(stored.get("source", "<stored>"))
        return load_runbook_text(text, source), text, source
    return load_runbook_text(EMPTY_RUNBOOK, "<empty>"), EMPTY_RUNBOOK, "<empty>"


def _rule_names(text: Any) -> list[str]:
    if not isinstance(text, str):
        return []
    try:
        return [rule.name for rule in load_runbook_text(text).rules]
    except Exception:  # an old stored text that no longer parses: the audit says so
        return ["<unparseable>"]


def _inferred_config_store(store: Store, service: str) -> ConfigStore:
    """A config store for a service whose schema the server was not given: types are
    inferred from the latest values (numbers as float, no bounds); values of other types are
    kept but cannot be changed through the API."""
    history = store.config_history(service)
    specs = []
    for key, value in history[-1].values.items():
        kind = next(
            (
                name
                for name, t in (("bool", bool), ("float", int | float), ("str", str))
                if isinstance(value, t)
            ),
            None,
        )
        if kind is not None:
            specs.append(ConfigKeySpec(key, kind, value))
    return ConfigStore(service, specs, history=history)
