"""The audit hash chain: sealing links entries; verify names edits, deletions and insertions."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stanch.core.audit import (
    GENESIS,
    Anchor,
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


def test_an_anchor_finds_entries_cut_from_the_end() -> None:
    """Without an anchor a chain cut back is still consistent; with one it is named."""
    entries = chain(6)
    head = Anchor(entries[-1].seq, entries[-1].hash)
    assert verify(entries, [head]) == []
    cut = entries[:4]
    assert verify(cut) == []  # what a bare chain cannot see
    (problem,) = verify(cut, [head])
    assert (problem.seq, problem.kind) == (6, ProblemKind.TRUNCATED)
    assert "ends at entry 4" in problem.message
    assert kinds(verify([], [head])) == [(6, ProblemKind.TRUNCATED)]


def test_an_anchor_finds_a_rewrite_with_recomputed_hashes() -> None:
    """Rewriting entry 3 and re-sealing everything after it leaves a consistent chain; an
    anchor at or after 3 names the rewrite, an older anchor cannot."""
    entries = chain(6)
    anchors = [Anchor(e.seq, e.hash) for e in entries]
    forged = entries[:2]
    for e in entries[2:]:
        why = "nothing to see" if e.seq == 3 else e.why
        forged.append(
            seal(
                forged[-1],
                ts=e.ts,
                actor=e.actor,
                action=e.action,
                target=e.target,
                before=e.before,
                after=e.after,
                why=why,
            )
        )
    assert verify(forged) == []
    assert verify(forged, anchors[:2]) == []
    assert kinds(verify(forged, anchors[4:5])) == [(5, ProblemKind.REWRITTEN)]
    assert kinds(verify(forged, anchors)) == [(s, ProblemKind.REWRITTEN) for s in (3, 4, 5, 6)]


@given(st.integers(1, 30), st.data())
def test_any_cut_of_an_anchored_chain_is_found(size: int, data: st.DataObject) -> None:
    entries = chain(size)
    keep = data.draw(st.integers(0, size - 1))
    anchor = Anchor(entries[-1].seq, entries[-1].hash)
    problems = verify(entries[:keep], [anchor])
    assert kinds(problems) == [(size, ProblemKind.TRUNCATED)]


@pytest.mark.parametrize(
    "text", ["", "12", "0:" + "a" * 64, "x:" + "a" * 64, "3:abc", "3:" + "g" * 64]
)
def test_malformed_anchors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="anchor"):
        Anchor.parse(text)


def test_anchor_round_trips_as_text() -> None:
    anchor = Anchor(7, "AB" * 32)
    parsed = Anchor.parse(f" 7:{'AB' * 32} ")
    assert parsed == Anchor(7, "ab" * 32)
    assert Anchor.parse(str(parsed)) == parsed
    assert str(anchor).startswith("7:")
