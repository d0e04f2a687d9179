"""The control plane's part of the store: API tokens, the audit log, and sources' state.

Mixed into :class:`~stanch.store.repository.Store`, so callers still see one repository. The
audit log has two operations only, append and read: nothing here updates or deletes an entry.
Appending reads the last entry and seals the new one in the same transaction, serialized
across processes (SQLite's ``BEGIN IMMEDIATE``; a PostgreSQL advisory lock), so two writers
never chain onto the same entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from stanch.core.audit import AuditEntry, seal
from stanch.core.errors import NotFound, ValidationError
from stanch.store.models import AuditRow, ConfigVersionRow, SourceStateRow, TokenRow

_AUDIT_LOCK_KEY = 0x5354_4144  # "STAD": one appender at a time on PostgreSQL


@dataclass(frozen=True, slots=True)
class StoredToken:
    """An API token as stored: the secret itself is never kept, only its SHA-256."""

    id: str
    name: str
    role: str
    secret_hash: str
    created_at: float
    created_by: str
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ControlPlaneStore:
    """Tokens, audit log and source state; see the module docstring."""

    _write: sessionmaker[Session]
    _read: sessionmaker[Session]
    _postgres: bool

    # -- tokens -----------------------------------------------------------------------------

    def add_token(self, token: StoredToken) -> None:
        """Store a new token; ValidationError if its name or id is taken."""
        try:
            with self._write.begin() as s:
                s.add(
                    TokenRow(
                        id=token.id,
                        name=token.name,
                        role=token.role,
                        secret_hash=token.secret_hash,
                        created_at=token.created_at,
                        created_by=token.created_by,
                        revoked_at=token.revoked_at,
                    )
                )
        except IntegrityError:
            raise ValidationError(f"a token named {token.name!r} already exists") from None

    def get_token(self, token_id: str) -> StoredToken | None:
        with self._read.begin() as s:
            row = s.get(TokenRow, token_id)
            return None if row is None else _token(row)

    def list_tokens(self) -> list[StoredToken]:
        """Every token, revoked ones too, oldest first."""
        with self._read.begin() as s:
            rows = s.scalars(select(TokenRow).order_by(TokenRow.created_at, TokenRow.id))
            return [_token(row) for row in rows]

    def revoke_token(self, token_id: str, now: float) -> StoredToken:
        """Revoke a token (idempotent: an already revoked one keeps its first revocation)."""
        with self._write.begin() as s:
            row = s.get(TokenRow, token_id)
            if row is None:
                raise NotFound(f"token {token_id} does not exist")
            if row.revoked_at is None:
                s.execute(update(TokenRow).where(TokenRow.id == token_id).values(revoked_at=now))
                row.revoked_at = now
            return _token(row)

    # -- audit log --------------------------------------------------------------------------

    def append_audit(
        self,
        *,
        ts: float,
        actor: str,
        action: str,
        target: str = "",
        before: Any = None,
        after: Any = None,
        why: str = "",
    ) -> AuditEntry:
        """Seal and append one entry after the current last one; returns it."""
        with self._write.begin() as s:
            if self._postgres:
                s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK_KEY})
            last = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).first()
            entry = seal(
                None if last is None else _entry(last),
                ts=ts,
                actor=actor,
                action=action,
                target=target,
                before=before,
                after=after,
                why=why,
            )
            s.add(
                AuditRow(
                    seq=entry.seq,
                    ts=entry.ts,
                    actor=entry.actor,
                    action=entry.action,
                    target=entry.target,
                    before=entry.before,
                    after=entry.after,
                    why=entry.why,
                    prev_hash=entry.prev_hash,
                    hash=entry.hash,
                )
            )
            return entry

    def audit_entries(self, *, after_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """Entries with ``seq > after_seq``, in chain order, at most ``limit`` of them."""
        query = select(AuditRow).where(AuditRow.seq > after_seq).order_by(AuditRow.seq)
        if limit is not None:
            query = query.limit(limit)
        with self._read.begin() as s:
            return [_entry(row) for row in s.scalars(query)]

    def audit_head(self) -> AuditEntry | None:
        """The last entry of the chain (None while it is empty): what an anchor records."""
        query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)
        with self._read.begin() as s:
            row = s.scalars(query).first()
            return None if row is None else _entry(row)

    def config_services(self) -> list[str]:
        """Services with a stored configuration history, sorted."""
        query = select(ConfigVersionRow.service).distinct().order_by(ConfigVersionRow.service)
        with self._read.begin() as s:
            return list(s.scalars(query))

    # -- sources' state ---------------------------------------------------------------------

    def claim_source_key(self, source: str, key: str, now: float, doc: Any = None) -> bool:
        """Record ``key`` as seen; True only for the first claim (atomic across processes)."""
        insert = postgresql.insert if self._postgres else sqlite.insert
        stmt = (
            insert(SourceStateRow)
            .values(source=source, key=key, doc=doc if doc is not None else {}, updated_at=now)
            .on_conflict_do_nothing(index_elements=["source", "key"])
            .returning(SourceStateRow.key)
        )
        with self._write.begin() as s:
            return s.execute(stmt).first() is not None

    def get_source_state(self, source: str, key: str) -> Any:
        """The document stored under (source, key), or None."""
        with self._read.begin() as s:
            row = s.get(SourceStateRow, (source, key))
            return None if row is None else row.doc

    def put_source_state(self, source: str, key: str, doc: Any, now: float) -> None:
        """Store (or replace) the document under (source, key)."""
        insert = postgresql.insert if self._postgres else sqlite.insert
        stmt = insert(SourceStateRow).values(source=source, key=key, doc=doc, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["source", "key"],
            set_={"doc": stmt.excluded.doc, "updated_at": stmt.excluded.updated_at},
        )
        with self._write.begin() as s:
            s.execute(stmt)

    def list_source_state(self, source: str) -> dict[str, Any]:
        """Every (key → document) of ``source``."""
        query = select(SourceStateRow).where(SourceStateRow.source == source)
        with self._read.begin() as s:
            return {row.key: row.doc for row in s.scalars(query)}


def _token(row: TokenRow) -> StoredToken:
    return StoredToken(
        id=row.id,
        name=row.name,
        role=row.role,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
    )


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
        why=row.why,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
