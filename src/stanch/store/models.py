"""The tables: SQLAlchemy declarative models, the one source the migrations are checked against.

Each aggregate is stored whole in a ``doc`` JSON column (the codec's dict), which is what gets
loaded back; the other columns are copies of the fields that queries filter and sort on. So a new
domain field needs no migration, only a new column when something must query it.

Only the generic ``JSON`` type is used, so the same models run on SQLite and PostgreSQL (there it
is ``json``, which keeps key order and float text as written). Times are ``DOUBLE`` seconds since
the epoch, as in the core, so no timezone conversion can creep in. Foreign keys exist only where
the store itself writes the parent first (timeline rows, queued decisions); actions, changes and
post-mortems may reach the store before or without their incident.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so migrations can name what they alter on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(200)  # incident, action, change ids; service names; actors
ENUM = String(32)  # enum values (states, kinds, severities)

DECISIONS = ("approve", "reject", "revert")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IncidentRow(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    service: Mapped[str] = mapped_column(ID, index=True)
    state: Mapped[str] = mapped_column(ENUM, index=True)
    severity: Mapped[str] = mapped_column(ENUM)
    title: Mapped[str] = mapped_column(Text)
    opened_at: Mapped[float] = mapped_column(Double, index=True)
    resolved_at: Mapped[float | None] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    # The codec's dict without the timeline, which lives in `timeline` (rewriting every entry on
    # every save would make a long incident quadratic to persist).
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)


class TimelineRow(Base):
    """Append-only. ``seq`` is the entry's index in ``Incident.timeline``; the unique pair makes
    two writers that both think entry 7 is new fail loudly instead of storing it twice."""

    __tablename__ = "timeline"
    __table_args__ = (UniqueConstraint("incident_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ID, ForeignKey("incidents.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    ts: Mapped[float] = mapped_column(Double)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(ID)
    text: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class ActionRow(Base):
    __tablename__ = "actions"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    incident_id: Mapped[str] = mapped_column(ID, index=True)
    service: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(ENUM)
    state: Mapped[str] = mapped_column(ENUM, index=True)
    target: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(ENUM)
    created_at: Mapped[float] = mapped_column(Double)
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)


class DecisionRow(Base):
    """A human's approve/reject/revert, queued so a CLI in another process can decide while the
    engine runs; the engine takes unconsumed rows and marks them consumed."""

    __tablename__ = "action_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('approve', 'reject', 'revert')", name="decision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[str] = mapped_column(ID, ForeignKey("actions.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(ID)
    reason: Mapped[str] = mapped_column(Text)
    ts: Mapped[float] = mapped_column(Double)
    consumed: Mapped[bool] = mapped_column(Boolean, index=True)


class PolicyRow(Base):
    __tablename__ = "policies"

    service: Mapped[str] = mapped_column(ID, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Double)


class ConfigVersionRow(Base):
    __tablename__ = "config_versions"

    service: Mapped[str] = mapped_column(ID, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[float] = mapped_column(Double)
    author: Mapped[str] = mapped_column(ID)
    reason: Mapped[str] = mapped_column(Text)
    values: Mapped[dict[str, Any]] = mapped_column(JSON)
    changed: Mapped[dict[str, Any]] = mapped_column(JSON)


class ChangeRow(Base):
    __tablename__ = "changes"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    service: Mapped[str] = mapped_column(ID, index=True)
    ts: Mapped[float] = mapped_column(Double, index=True)
    kind: Mapped[str] = mapped_column(ENUM)
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)


class PostmortemRow(Base):
    __tablename__ = "postmortems"

    incident_id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[float] = mapped_column(Double)
    markdown: Mapped[str] = mapped_column(Text)
    doc: Mapped[dict[str, Any]] = mapped_column(JSON)


class MetaRow(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(ID, primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class CounterRow(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(ID, primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


# -- control plane (revision 0002) -----------------------------------------------------------


class TokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept; ``id`` is the public half."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Double)
    created_by: Mapped[str] = mapped_column(ID)
    revoked_at: Mapped[float | None] = mapped_column(Double)


class AuditRow(Base):
    """Append-only and hash-chained (see ``stanch.core.audit``); the store never updates or
    deletes a row, and ``seq`` is the entry's place in the chain."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[float] = mapped_column(Double)
    actor: Mapped[str] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(Text)
    before: Mapped[Any] = mapped_column(JSON, nullable=True)
    after: Mapped[Any] = mapped_column(JSON, nullable=True)
    why: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class SourceStateRow(Base):
    """What the ingestion sources must remember across restarts and replicas: webhook
    deliveries already taken (Alertmanager), dedup keys and their generation (PagerDuty),
    user-report groups. ``key`` is a hash of the source's own identity tuple."""

    __tablename__ = "source_state"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Double, index=True)


# -- recorded history (revision 0003) --------------------------------------------------------

ROUTE = String(1000)  # "METHOD /template"; longer routes are not recorded (see Store.write_points)


class PointRow(Base):
    """One closed window of one series, as ``PointRecorder`` writes it to JSONL: what
    ``stanch backtest --db`` replays. The key is (ts, service, route), so writing a window
    again changes nothing and reading a time range in order needs no other index; rows older
    than the retention are deleted by ``Store.prune_points``."""

    __tablename__ = "points"

    ts: Mapped[float] = mapped_column(Double, primary_key=True)  # the window's start
    service: Mapped[str] = mapped_column(ID, primary_key=True)
    route: Mapped[str] = mapped_column(ROUTE, primary_key=True)  # or "*": the whole service
    interval: Mapped[float] = mapped_column(Double)
    requests: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    enforced: Mapped[int] = mapped_column(Integer)
    p50: Mapped[float | None] = mapped_column(Double)  # NULL: no latency measured
    p95: Mapped[float | None] = mapped_column(Double)
    p99: Mapped[float | None] = mapped_column(Double)
    # The heaviest clients: {"client-007": [requests, errors, enforced]}, or NULL for none.
    clients: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
