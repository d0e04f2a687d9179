"""The audit hash chain: sealing links entries; verify names edits, deletions and insertions."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanch.core.audit import (
    GENESIS,
    AuditEntry,
    ProblemKind,
    canonical,
    entry_hash,
    plain,
    seal,
    verify,
)


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(n):
        entries.append(
            seal(
                entries[-1] if entries else None,
                ts=1000.0 + i,
                actor="erin (responder)",
                action="api.actions.approve",
                target=f"ACT-{i:04d}",
                before={"state": "pending"},
                after={"state": "applied"},
                why=f"reason {i}",
            )
        )
    return entries


def kinds(problems: list) -> list[tuple[int, ProblemKind]]:  # type: ignore[type-arg]
    return [(p.seq, p.kind) for p in problems]


def test_seal_links_each_entry_to_the_previous_hash() -> None:
    """The first entry links to GENESIS, each next one to its predecessor's hash."""
    entries = chain(3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS
    assert entries[1].prev_hash == entries[0].hash
    assert all(entry_hash(e) == e.hash for e in entries)
    assert verify(entries) == []


def test_an_edited_entry_is_named() -> None:
    """Changing any field but the hash makes that entry (and only it) fail."""
    entries = chain(5)
    entries[2] = replace(entries[2], why="nothing to see here")
    assert kinds(verify(entries)) == [(3, ProblemKind.EDITED)]


def test_a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    """Recomputing the edited entry's hash moves the evidence to the link after it."""
    entries = chain(5)
    forged = replace(entries[2], actor="mallory")
    entries[2] = replace(forged, hash=entry_hash(forged))
    assert kinds(verify(entries)) == [(4, ProblemKind.BROKEN_LINK)]


def test_a_deleted_entry_is_named_by_its_seq() -> None:
    """Removing entries 2 and 3 reports both as deleted, nothing else."""
    entries = chain(5)
    del entries[1:3]
    assert kinds(verify(entries)) == [(2, ProblemKind.DELETED), (3, ProblemKind.DELETED)]


def test_a_deleted_first_entry_is_named() -> None:
    """A chain that starts past 1 lost its head."""
    entries = chain(3)[1:]
    assert kinds(verify(entries)) == [(1, ProblemKind.DELETED)]


def test_an_inserted_entry_is_named_even_with_correct_hashes() -> None:
    """An entry slipped in after entry 2 (later ones renumbered) is named as inserted."""
    entries = chain(4)
    forged = seal(entries[1], ts=1001.5, actor="mallory", action="api.tokens.create")
    shifted = [replace(e, seq=e.seq + 1) for e in entries[2:]]
    problems = verify([*entries[:2], forged, *shifted])
    assert (3, ProblemKind.INSERTED) in kinds(problems)
    assert {(4, ProblemKind.RENUMBERED), (5, ProblemKind.RENUMBERED)} <= set(kinds(problems))


def test_an_appended_forgery_with_a_made_up_link_is_named() -> None:
    """An entry at the end that links to no stored hash is reported at its own seq."""
    entries = chain(3)
    forged = seal(entries[-1], ts=2000.0, actor="mallory", action="x")
    forged = replace(forged, prev_hash="f" * 64)
    forged = replace(forged, hash=entry_hash(forged))
    assert kinds(verify([*entries, forged])) == [(4, ProblemKind.BROKEN_LINK)]


def test_problem_renders_with_its_seq() -> None:
    """A problem prints as 'entry N: kind: message'."""
    entries = chain(2)
    entries[1] = replace(entries[1], target="ACT-9999")
    (problem,) = verify(entries)
    assert str(problem).startswith("entry 2: edited: ")


def test_plain_turns_values_into_json_data() -> None:
    """Sets, tuples, non-finite floats and objects become canonical JSON data."""
    value = plain({"b": {3, 1}, "a": (1, math.inf), 2: object})
    assert value["b"] == [1, 3]
    assert value["a"] == [1, "inf"]
    assert isinstance(value["2"], str)
    assert canonical({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_plain_refuses_absurd_nesting() -> None:
    """Values nested deeper than the limit raise ValueError instead of recursing."""
    deep: list[object] = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        plain(deep)


@given(st.integers(min_value=0, max_value=7), st.integers(min_value=1, max_value=8))
def test_any_single_edit_is_found_at_its_seq(index: int, size: int) -> None:
    """Whatever entry of whatever chain is edited, verify names exactly that one."""
    entries = chain(size)
    index %= size
    entries[index] = replace(entries[index], why="edited")
    assert kinds(verify(entries)) == [(index + 1, ProblemKind.EDITED)]
