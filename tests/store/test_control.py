"""The control plane's tables on both backends: tokens, the audit log (and tampering with it
in the database directly), and the sources' dedup state."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from stanch.core.audit import ProblemKind, entry_hash, seal, verify
from stanch.core.errors import NotFound, ValidationError
from stanch.store import Store, StoredToken


def token(name: str = "ci", role: str = "agent", token_id: str = "t1") -> StoredToken:
    return StoredToken(token_id, name, role, "ab" * 32, 100.0, "admin")


def fill(store: Store, n: int = 5) -> None:
    for i in range(n):
        store.append_audit(
            ts=1000.0 + i,
            actor="erin (responder)",
            action="api.actions.approve",
            target=f"ACT-{i:04d}",
            before={"state": "pending"},
            after={"state": "applied", "ratio": 0.1 * i},
            why=f"reason {i}",
        )


def problems(store: Store) -> list[tuple[int, ProblemKind]]:
    return [(p.seq, p.kind) for p in verify(store.audit_entries())]


def test_tokens_round_trip_and_revoke(store: Store) -> None:
    """A token is stored, listed, found by id, and revoked once (revoking again keeps the time)."""
    store.add_token(token())
    assert store.get_token("t1") == token()
    assert [t.name for t in store.list_tokens()] == ["ci"]
    assert store.revoke_token("t1", 200.0).revoked_at == 200.0
    assert store.revoke_token("t1", 300.0).revoked_at == 200.0
    stored = store.get_token("t1")
    assert stored is not None
    assert not stored.active


def test_token_names_are_unique_and_unknown_ids_raise(store: Store) -> None:
    """A second token with a taken name is refused; revoking an unknown id is NotFound."""
    store.add_token(token())
    with pytest.raises(ValidationError, match="already exists"):
        store.add_token(token(token_id="t2"))
    with pytest.raises(NotFound):
        store.revoke_token("nope", 1.0)


def test_audit_entries_chain_and_read_back_intact(store: Store) -> None:
    """Appended entries come back in order, equal to what was sealed, and verify clean."""
    fill(store)
    entries = store.audit_entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert all(entry_hash(e) == e.hash for e in entries)
    assert verify(entries) == []
    assert [e.seq for e in store.audit_entries(after_seq=3)] == [4, 5]
    assert [e.seq for e in store.audit_entries(limit=2)] == [1, 2]


def test_appends_from_two_stores_form_one_chain(open_store) -> None:  # type: ignore[no-untyped-def]
    """Two processes appending in turn extend the same chain, never fork it."""
    a, b = open_store(), open_store()
    for i in range(6):
        (a if i % 2 else b).append_audit(ts=float(i), actor="x", action="y")
    assert verify(a.audit_entries()) == []
    assert len(b.audit_entries()) == 6


def test_editing_a_row_in_the_database_is_named(store: Store) -> None:
    """UPDATE of one entry's text is found at that seq."""
    fill(store)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET why = 'nothing happened' WHERE seq = 3"))
    assert problems(store) == [(3, ProblemKind.EDITED)]


def test_deleting_a_row_in_the_database_is_named(store: Store) -> None:
    """DELETE of one entry is reported as that seq deleted."""
    fill(store)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    assert problems(store) == [(2, ProblemKind.DELETED)]


def test_inserting_a_forged_row_in_the_database_is_named(store: Store) -> None:
    """A forged entry written after entry 2 (later rows moved up) is named as inserted."""
    fill(store)
    second = store.audit_entries()[1]
    forged = seal(second, ts=1001.5, actor="mallory", action="api.tokens.create")
    with store.engine.begin() as conn:
        for seq in (5, 4, 3):  # from the top, so the primary key never collides
            conn.execute(text(f"UPDATE audit_log SET seq = {seq + 1} WHERE seq = {seq}"))
        conn.execute(
            text(
                "INSERT INTO audit_log (seq, ts, actor, action, target, before, after, why, "
                "prev_hash, hash) VALUES (3, :ts, 'mallory', 'api.tokens.create', '', "
                "'null', 'null', '', :prev, :hash)"
            ),
            {"ts": forged.ts, "prev": forged.prev_hash, "hash": forged.hash},
        )
    found = problems(store)
    assert (3, ProblemKind.INSERTED) in found
    assert all(seq != 1 and seq != 2 for seq, _ in found)


def test_claiming_a_source_key_succeeds_once(store: Store) -> None:
    """The first claim of a key wins; later ones (another replica, a retry) see it taken."""
    assert store.claim_source_key("alertmanager", "k1", 1.0)
    assert not store.claim_source_key("alertmanager", "k1", 2.0)
    assert store.claim_source_key("pagerduty", "k1", 2.0)


def test_source_state_round_trips_and_lists_by_source(store: Store) -> None:
    """Documents are replaced in place and listed per source."""
    assert store.get_source_state("pd", "k") is None
    store.put_source_state("pd", "k", {"generation": 1, "open": True}, 1.0)
    store.put_source_state("pd", "k", {"generation": 2, "open": False}, 2.0)
    store.put_source_state("reports", "r", {"count": 3}, 2.0)
    assert store.get_source_state("pd", "k") == {"generation": 2, "open": False}
    assert store.list_source_state("pd") == {"k": {"generation": 2, "open": False}}
