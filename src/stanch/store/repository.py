"""The store: where incidents, actions, policies, configuration history, changes and recorded
points persist (the points: :mod:`.points`).

A port with a SQLAlchemy adapter: the engine and the CLI talk to :class:`Store` in domain
objects, never in rows. It runs on one SQLite file (the single-service setup, where ``stanch
demo`` writes while ``stanch approve`` in another terminal reads and queues decisions) or on
PostgreSQL (the control plane). Every method is one short transaction, so a crash never leaves
half an incident behind and no lock is held between engine steps.

Reads run in read-only transactions, which on SQLite take no lock (see :mod:`.engine`).

Human decisions travel through a queue (``queue_decision`` / ``take_decisions``) rather than by
editing actions directly: the engine owns action state, and applies decisions at its next step.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from stanch.core.actions import OPEN_STATES, Action, ActionState
from stanch.core.config import ConfigVersion
from stanch.core.errors import NotFound, ValidationError
from stanch.core.events import ChangeEvent
from stanch.core.incidents import OPEN_INCIDENT_STATES, Incident, IncidentState, TimelineEntry
from stanch.core.policy import Policy
from stanch.store import codec
from stanch.store.control import ControlPlaneStore
from stanch.store.decisions import DECISION_NEEDS, Decision, DecisionKind
from stanch.store.engine import READ_ONLY, create_store_engine
from stanch.store.migrate import upgrade
from stanch.store.models import (
    ActionRow,
    Base,
    ChangeRow,
    ConfigVersionRow,
    CounterRow,
    DecisionRow,
    IncidentRow,
    MetaRow,
    PolicyRow,
    PostmortemRow,
    TimelineRow,
)
from stanch.store.points import PointStore

DEFAULT_URL = "sqlite:///stanch.db"

E = TypeVar("E", bound=StrEnum)


class Store(ControlPlaneStore, PointStore):
    """Persistence for one Stanch deployment. Open with :meth:`open`; close when done."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose database is already migrated (:meth:`open` does both)."""
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._write = sessionmaker(engine, expire_on_commit=False)
        reader = engine.execution_options(**{READ_ONLY: True})
        self._read = sessionmaker(reader, expire_on_commit=False)

    @classmethod
    def open(cls, url: str = DEFAULT_URL) -> Store:
        """Connect to ``url`` (SQLite or PostgreSQL) and migrate its schema to the latest."""
        engine = create_store_engine(url)
        try:
            with engine.begin() as connection:
                upgrade(connection)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- counters and meta ------------------------------------------------------------------

    def next_id(self, counter: str) -> int:
        """The next number of ``counter`` (1, 2, ...), unique across processes."""
        stmt = (
            self._insert(CounterRow)
            .values(name=counter, value=1)
            .on_conflict_do_update(index_elements=["name"], set_={"value": CounterRow.value + 1})
            .returning(CounterRow.value)
        )
        with self._write.begin() as s:
            return int(s.execute(stmt).scalar_one())

    def get_meta(self, key: str, default: Any = None) -> Any:
        with self._read.begin() as s:
            row = s.get(MetaRow, key)
            return default if row is None else codec.from_json(row.value)

    def set_meta(self, key: str, value: Any) -> None:
        with self._write.begin() as s:
            self._upsert(s, MetaRow, {"key": key, "value": codec.to_json(value, f"meta {key}")})

    # -- incidents --------------------------------------------------------------------------

    def save_incident(self, incident: Incident) -> None:
        """Upsert the incident and append the timeline entries not stored yet.

        The timeline is append-only: entries are matched by position, so the ones past the
        count already stored are new. Editing or removing stored entries is not supported.
        """
        doc = codec.incident_to_dict(incident, timeline=False)
        last = [incident.opened_at, *incident.entered.values()]
        last += [entries[-1].ts for entries in (incident.timeline, incident.comments) if entries]
        resolved = incident.state in (IncidentState.RESOLVED, IncidentState.CLOSED)
        row = {
            "id": incident.id,
            "service": incident.service,
            "state": incident.state.value,
            "severity": incident.severity.value,
            "title": incident.title,
            "opened_at": incident.opened_at,
            "resolved_at": incident.entered.get(IncidentState.RESOLVED.value) if resolved else None,
            # Domain time of the latest recorded event, not the wall clock: replays stay exact.
            "updated_at": max(last),
            "doc": doc,
        }
        with self._write.begin() as s:
            # The upsert comes first: on PostgreSQL it locks the row, so a concurrent save of the
            # same incident waits here and then counts the entries this one added.
            self._upsert(s, IncidentRow, row)
            count = select(func.count()).where(TimelineRow.incident_id == incident.id)
            stored = int(s.execute(count).scalar_one())
            new = [
                _timeline_row(incident.id, seq, entry)
                for seq, entry in enumerate(incident.timeline[stored:], start=stored)
            ]
            if new:
                s.execute(insert(TimelineRow), new)

    def get_incident(self, incident_id: str) -> Incident | None:
        """The incident, its timeline read from the timeline table (the authoritative copy)."""
        with self._read.begin() as s:
            row = s.get(IncidentRow, incident_id)
            return None if row is None else _incidents(s, [row])[0]

    def list_incidents(
        self,
        *,
        state: str | None = None,
        service: str | None = None,
        open_only: bool = False,
        limit: int | None = 100,
    ) -> list[Incident]:
        """Incidents newest first (by ``opened_at``), filtered; ``limit=None`` for all."""
        query = select(IncidentRow).order_by(IncidentRow.opened_at.desc(), IncidentRow.id.desc())
        if state is not None:
            query = query.where(IncidentRow.state == _enum(IncidentState, state, "incident state"))
        if service is not None:
            query = query.where(IncidentRow.service == service)
        if open_only:
            query = query.where(IncidentRow.state.in_(_values(OPEN_INCIDENT_STATES)))
        if limit is not None:
            query = query.limit(limit)
        with self._read.begin() as s:
            return _incidents(s, s.scalars(query).all())

    def open_incidents(self) -> list[Incident]:
        """Every incident not yet resolved, newest first: what a restarted engine resumes."""
        return self.list_incidents(open_only=True, limit=None)

    # -- actions and decisions --------------------------------------------------------------

    def save_action(self, action: Action) -> None:
        row = {
            "id": action.id,
            "incident_id": action.incident_id,
            "service": action.service,
            "kind": action.kind.value,
            "state": action.state.value,
            "target": action.target,
            "mode": action.mode.value,
            "created_at": action.created_at,
            "doc": codec.action_to_dict(action),
        }
        with self._write.begin() as s:
            self._upsert(s, ActionRow, row)

    def get_action(self, action_id: str) -> Action | None:
        with self._read.begin() as s:
            row = s.get(ActionRow, action_id)
            return None if row is None else codec.action_from_dict(row.doc)

    def list_actions(
        self,
        *,
        state: str | None = None,
        incident_id: str | None = None,
        open_only: bool = False,
    ) -> list[Action]:
        """Actions oldest first (by ``created_at``): the order the engine applies them in."""
        query = select(ActionRow.doc).order_by(ActionRow.created_at, ActionRow.id)
        if state is not None:
            query = query.where(ActionRow.state == _enum(ActionState, state, "action state"))
        if incident_id is not None:
            query = query.where(ActionRow.incident_id == incident_id)
        if open_only:
            query = query.where(ActionRow.state.in_(_values(OPEN_STATES)))
        with self._read.begin() as s:
            return [codec.action_from_dict(doc) for doc in s.scalars(query)]

    def queue_decision(
        self, action_id: str, decision: str, actor: str, reason: str, ts: float
    ) -> Decision:
        """Queue a human's approve, reject or revert for the engine to take at its next step.

        Raises NotFound for an unknown action, and ValidationError for an unknown decision, one
        the action's stored state does not allow, or an action that already has a decision
        waiting (two people deciding at once should hear about it, not race).
        """
        kind = _enum(DecisionKind, decision, "decision")
        with self._write.begin() as s:
            query = select(ActionRow.state).where(ActionRow.id == action_id).with_for_update()
            state = s.execute(query).scalar_one_or_none()
            if state is None:
                raise NotFound(f"action {action_id} does not exist")
            needs = DECISION_NEEDS[kind]
            if ActionState(state) not in needs:
                allowed = " or ".join(sorted(needs))
                raise ValidationError(
                    f"cannot {kind.value} action {action_id}: it is {state}, "
                    f"and {kind.value} needs it {allowed}"
                )
            waiting = s.scalars(
                select(DecisionRow).where(
                    DecisionRow.action_id == action_id, DecisionRow.consumed.is_(False)
                )
            ).first()
            if waiting is not None:
                raise ValidationError(
                    f"action {action_id} already has a {waiting.decision} by {waiting.actor} "
                    "waiting for the engine"
                )
            row = DecisionRow(
                action_id=action_id,
                decision=kind.value,
                actor=actor,
                reason=reason,
                ts=ts,
                consumed=False,
            )
            s.add(row)
            s.flush()
            return _decision(row)

    def take_decisions(self) -> list[Decision]:
        """The decisions not taken yet, oldest first, marked taken in the same statement.

        One ``UPDATE ... RETURNING``, so two engines polling at once never take the same one.
        """
        stmt = (
            update(DecisionRow)
            .where(DecisionRow.consumed.is_(False))
            .values(consumed=True)
            .returning(DecisionRow)
            .execution_options(synchronize_session=False)
        )
        with self._write.begin() as s:
            rows = s.scalars(stmt).all()
            return sorted((_decision(row) for row in rows), key=lambda d: d.id)

    # -- policies, configuration, changes ---------------------------------------------------

    def save_policy(self, policy: Policy, *, now: float | None = None) -> None:
        """Store the service's current policy; ``now`` stamps it (wall clock when omitted)."""
        row = {
            "service": policy.service,
            "version": policy.version,
            "doc": codec.to_json(policy.to_dict(), f"policy {policy.service}"),
            "updated_at": time.time() if now is None else now,
        }
        with self._write.begin() as s:
            self._upsert(s, PolicyRow, row)

    def load_policies(self) -> dict[str, Policy]:
        with self._read.begin() as s:
            docs = s.scalars(select(PolicyRow.doc).order_by(PolicyRow.service))
            policies = (Policy.from_dict(codec.from_json(doc)) for doc in docs)
            return {policy.service: policy for policy in policies}

    def add_config_version(self, service: str, version: ConfigVersion) -> None:
        """Record a configuration version; adding the same one again changes nothing.

        A different version under a number already stored raises ValidationError: history
        is never rewritten.
        """
        doc = codec.config_version_to_dict(version)
        with self._write.begin() as s:
            existing = s.get(ConfigVersionRow, (service, version.version))
            if existing is not None:
                if _config_doc(existing) != doc:
                    raise ValidationError(
                        f"config version {version.version} of {service} is already stored "
                        "with different contents"
                    )
                return
            s.add(
                ConfigVersionRow(
                    service=service,
                    version=version.version,
                    ts=version.ts,
                    author=version.author,
                    reason=version.reason,
                    values=doc["values"],
                    changed=doc["changed"],
                )
            )

    def config_history(self, service: str) -> list[ConfigVersion]:
        """Every stored version of ``service``'s configuration, oldest first."""
        query = (
            select(ConfigVersionRow)
            .where(ConfigVersionRow.service == service)
            .order_by(ConfigVersionRow.version)
        )
        with self._read.begin() as s:
            return [codec.config_version_from_dict(_config_doc(row)) for row in s.scalars(query)]

    def add_change(self, change: ChangeEvent) -> None:
        """Record a change event; one already stored under the same id is left as it is."""
        stmt = (
            self._insert(ChangeRow)
            .values(
                id=change.id,
                service=change.service,
                ts=change.ts,
                kind=change.kind.value,
                doc=codec.change_to_dict(change),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        with self._write.begin() as s:
            s.execute(stmt)

    def list_changes(
        self,
        *,
        service: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> list[ChangeEvent]:
        """Changes with ``since <= ts <= until`` (both inclusive, both optional), oldest first."""
        query = select(ChangeRow.doc).order_by(ChangeRow.ts, ChangeRow.id)
        if service is not None:
            query = query.where(ChangeRow.service == service)
        if since is not None:
            query = query.where(ChangeRow.ts >= since)
        if until is not None:
            query = query.where(ChangeRow.ts <= until)
        with self._read.begin() as s:
            return [codec.change_from_dict(doc) for doc in s.scalars(query)]

    # -- post-mortems -----------------------------------------------------------------------

    def save_postmortem(
        self, incident_id: str, markdown: str, doc: Mapping[str, Any], created_at: float
    ) -> None:
        """Store (or redraft) the post-mortem of an incident."""
        row = {
            "incident_id": incident_id,
            "created_at": created_at,
            "markdown": markdown,
            "doc": codec.to_json(doc, f"post-mortem {incident_id}"),
        }
        with self._write.begin() as s:
            self._upsert(s, PostmortemRow, row)

    def get_postmortem(self, incident_id: str) -> tuple[str, dict[str, Any]] | None:
        """The post-mortem's markdown and structured document, or None if none is stored."""
        with self._read.begin() as s:
            row = s.get(PostmortemRow, incident_id)
            return None if row is None else (row.markdown, codec.from_json(row.doc))

    # -- helpers ----------------------------------------------------------------------------

    def _insert(self, model: type[Base]) -> sqlite.Insert | postgresql.Insert:
        """An INSERT that knows ``ON CONFLICT``: both supported backends spell it alike."""
        return postgresql.insert(model) if self._postgres else sqlite.insert(model)

    def _upsert(self, s: Session, model: type[Base], values: dict[str, Any]) -> None:
        keys = [column.name for column in model.__table__.primary_key]
        stmt = self._insert(model).values(**values)
        changes = {name: stmt.excluded[name] for name in values if name not in keys}
        s.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changes))


# -- module helpers -------------------------------------------------------------------------


def _enum(enum: type[E], value: str, what: str) -> E:
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise ValidationError(f"unknown {what} {value!r}: expected one of {choices}") from None


def _values(states: Iterable[StrEnum]) -> list[str]:
    return sorted(state.value for state in states)


def _timeline_row(incident_id: str, seq: int, entry: TimelineEntry) -> dict[str, Any]:
    encoded = codec.timeline_entry_to_dict(entry, f"incident {incident_id} timeline[{seq}]")
    return {
        "incident_id": incident_id,
        "seq": seq,
        "ts": entry.ts,
        "kind": entry.kind,
        "actor": entry.actor,
        "text": entry.text,
        "data": encoded["data"],
    }


def _incidents(s: Session, rows: Sequence[IncidentRow]) -> list[Incident]:
    """Incidents from their rows, each with its timeline from the timeline table."""
    if not rows:
        return []
    query = (
        select(TimelineRow)
        .where(TimelineRow.incident_id.in_([row.id for row in rows]))
        .order_by(TimelineRow.incident_id, TimelineRow.seq)
    )
    timelines: dict[str, list[TimelineEntry]] = defaultdict(list)
    for entry in s.scalars(query):
        timelines[entry.incident_id].append(
            TimelineEntry(
                entry.ts, entry.kind, entry.text, entry.actor, codec.from_json(entry.data)
            )
        )
    incidents = []
    for row in rows:
        incident = codec.incident_from_dict(row.doc)
        incident.timeline = timelines[row.id]
        incidents.append(incident)
    return incidents


def _decision(row: DecisionRow) -> Decision:
    return Decision(
        id=row.id,
        action_id=row.action_id,
        decision=DecisionKind(row.decision),
        actor=row.actor,
        reason=row.reason,
        ts=row.ts,
    )


def _config_doc(row: ConfigVersionRow) -> dict[str, Any]:
    return {
        "version": row.version,
        "ts": codec.to_json(row.ts),
        "values": row.values,
        "author": row.author,
        "reason": row.reason,
        "changed": row.changed,
    }
