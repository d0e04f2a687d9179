"""The audit trail's hash chain: sealing entries and finding where a stored chain was tampered with.

Every state change (who or what, when, before → after, why) becomes one :class:`AuditEntry`.
Entry ``n`` records the hash of entry ``n - 1`` (``prev_hash``; the first records
:data:`GENESIS`), and its own ``hash`` is SHA-256 over a canonical JSON of all its other fields.
So editing an entry breaks its own hash; deleting one leaves a gap in ``seq`` and a link to a
hash that is no longer there; slipping one in breaks the link of the entry after it.

What a bare hash chain cannot show: entries removed from the *end* (the chain left is still
consistent), or a stretch rewritten by someone who recomputes every hash after it. An
:class:`Anchor` closes both: a head (``seq:hash``) recorded somewhere the database's writers
cannot reach (``stanch audit head`` from cron into another system, the server's log).
``verify(entries, anchors)`` then names an anchored entry that is gone from the end
(truncated) or no longer has its anchored hash (rewritten).

Pure: no I/O and no clock. The store seals entries with :func:`seal` inside the transaction
that appends them and reads them back for :func:`verify`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Final

GENESIS: Final = "0" * 64
MAX_DEPTH: Final = 64  # deeper values are refused rather than recursed into


class ProblemKind(StrEnum):
    EDITED = "edited"  # content no longer matches its hash
    DELETED = "deleted"  # a seq is missing from the chain
    INSERTED = "inserted"  # an entry the chain skips over
    RENUMBERED = "renumbered"  # sealed under another seq
    BROKEN_LINK = "broken_link"  # links to a hash no stored entry has
    TRUNCATED = "truncated"  # an anchored entry is gone from the end of the chain
    REWRITTEN = "rewritten"  # an anchored entry no longer has the anchored hash


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One sealed record. ``before``/``after`` are plain JSON values (None when not relevant)."""

    seq: int
    ts: float
    actor: str
    action: str
    target: str
    before: Any
    after: Any
    why: str
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """A chain head recorded outside the store: entry ``seq`` had hash ``hash``."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``"SEQ:HASH"`` as :func:`verify` and ``stanch audit head`` print it."""
        seq_text, sep, digest = text.strip().partition(":")
        digest = digest.strip().lower()
        if not sep or not seq_text.strip().isdigit() or int(seq_text) < 1:
            raise ValueError(
                f"an anchor is SEQ:HASH with SEQ a positive entry number, not {text[:80]!r}"
            )
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"an anchor's hash is 64 hex digits (SHA-256), not {digest[:80]!r}")
        return cls(int(seq_text), digest)

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True, slots=True)
class Problem:
    """What :func:`verify` found wrong at one ``seq``, in words an auditor can act on."""

    seq: int
    kind: ProblemKind
    message: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind}: {self.message}"


def plain(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain JSON data (dicts with str keys, lists, str, int, float, bool, None).

    Tuples and sets become lists (sets sorted), enums their values, other objects their
    ``str``; non-finite floats become strings, so the canonical JSON is always valid JSON.
    Raises ValueError for values nested deeper than :data:`MAX_DEPTH`.
    """
    if _depth > MAX_DEPTH:
        raise ValueError(f"audit value nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, StrEnum) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((plain(v, _depth + 1) for v in value), key=_sort_key)
    if isinstance(value, list | tuple):
        return [plain(v, _depth + 1) for v in value]
    return str(value)


def _sort_key(value: Any) -> str:
    return canonical(value)


def canonical(value: Any) -> str:
    """The one JSON text of ``value``: sorted keys, no spaces, UTF-8 kept, NaN refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def entry_hash(entry: AuditEntry) -> str:
    """SHA-256 (hex) of the canonical JSON of every field of ``entry`` but ``hash`` itself."""
    body = {
        "seq": entry.seq,
        "ts": entry.ts,
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
        "why": entry.why,
        "prev_hash": entry.prev_hash,
    }
    return hashlib.sha256(canonical(body).encode("utf-8", "surrogatepass")).hexdigest()


def seal(
    previous: AuditEntry | None,
    *,
    ts: float,
    actor: str,
    action: str,
    target: str = "",
    before: Any = None,
    after: Any = None,
    why: str = "",
) -> AuditEntry:
    """The entry that follows ``previous`` (None for the first one), hashed and linked."""
    if not math.isfinite(ts):
        raise ValueError("audit timestamps must be finite")
    entry = AuditEntry(
        seq=1 if previous is None else previous.seq + 1,
        ts=float(ts),
        actor=actor,
        action=action,
        target=target,
        before=plain(before),
        after=plain(after),
        why=why,
        prev_hash=GENESIS if previous is None else previous.hash,
        hash="",
    )
    return replace(entry, hash=entry_hash(entry))


def verify(entries: Iterable[AuditEntry], anchors: Iterable[Anchor] = ()) -> list[Problem]:
    """Every problem in the chain, by seq, in order; an empty list means the chain is intact.

    Walks the entries in ``seq`` order checking three things: each entry's content against its
    own hash (an edit), each ``seq`` against the previous one plus one (a deletion), and each
    ``prev_hash`` against the previous entry's hash. A broken link whose ``prev_hash`` names an
    earlier entry means the entries in between were inserted; one naming no entry at all means
    the link itself was forged. Then each anchor: its entry must still be there, with its hash.
    """
    ordered: Sequence[AuditEntry] = sorted(entries, key=lambda e: e.seq)
    problems: list[Problem] = []
    seen: dict[str, int] = {}  # stored hash -> seq, of the entries walked so far
    previous: AuditEntry | None = None
    for entry in ordered:
        if entry_hash(entry) != entry.hash:
            problems.append(_content_problem(entry))
        expected_seq = 1 if previous is None else previous.seq + 1
        expected_link = GENESIS if previous is None else previous.hash
        if entry.seq > expected_seq:
            problems.extend(
                Problem(
                    missing,
                    ProblemKind.DELETED,
                    "missing from the chain" + _between(previous, entry),
                )
                for missing in range(expected_seq, entry.seq)
            )
        elif entry.prev_hash != expected_link:
            problems.extend(_link_problems(entry, previous, seen))
        seen.setdefault(entry.hash, entry.seq)
        previous = entry
    problems.extend(_anchor_problems(ordered, anchors))
    return sorted(problems, key=lambda p: p.seq)


def _anchor_problems(ordered: Sequence[AuditEntry], anchors: Iterable[Anchor]) -> list[Problem]:
    by_seq = {entry.seq: entry for entry in ordered}
    last = ordered[-1].seq if ordered else 0
    problems: list[Problem] = []
    for anchor in sorted(set(anchors), key=lambda a: a.seq):
        stored = by_seq.get(anchor.seq)
        if stored is None and anchor.seq > last:
            problems.append(
                Problem(
                    anchor.seq,
                    ProblemKind.TRUNCATED,
                    f"anchored, but the chain ends at entry {last}: "
                    f"entries {last + 1}-{anchor.seq} at least were removed from its end",
                )
            )
        elif stored is not None and stored.hash != anchor.hash:
            problems.append(
                Problem(
                    anchor.seq,
                    ProblemKind.REWRITTEN,
                    f"its hash is not the anchored {anchor.hash[:12]}...: the chain was "
                    "rewritten at or before this entry and re-hashed after it",
                )
            )
        # An anchored entry missing from the middle is already named as deleted.
    return problems


def _content_problem(entry: AuditEntry) -> Problem:
    for other in (entry.seq - 1, entry.seq + 1):
        if other > 0 and entry_hash(replace(entry, seq=other)) == entry.hash:
            return Problem(entry.seq, ProblemKind.RENUMBERED, f"it was sealed as entry {other}")
    return Problem(
        entry.seq,
        ProblemKind.EDITED,
        f"its content no longer matches its hash ({entry.action} on {entry.target or '-'} "
        f"by {entry.actor})",
    )


def _link_problems(
    entry: AuditEntry, previous: AuditEntry | None, seen: Mapping[str, int]
) -> list[Problem]:
    linked = seen.get(entry.prev_hash)
    if entry.prev_hash == GENESIS:
        linked = 0
    if previous is not None and linked is not None and linked < previous.seq:
        # The entry links past the ones before it: those were slipped in afterwards.
        return [
            Problem(
                seq,
                ProblemKind.INSERTED,
                f"not part of the chain: entry {entry.seq} links to entry {linked} before it",
            )
            for seq in range(linked + 1, previous.seq + 1)
        ]
    where = f"entry {previous.seq}" if previous is not None else "the start of the chain"
    return [
        Problem(
            entry.seq,
            ProblemKind.BROKEN_LINK,
            f"does not link to {where}: it records a hash no stored entry has "
            "(forged, or the entry before it was replaced)",
        )
    ]


def _between(previous: AuditEntry | None, entry: AuditEntry) -> str:
    if previous is None:
        return f" (the chain starts at entry {entry.seq})"
    return f" (between entries {previous.seq} and {entry.seq})"


__all__ = [
    "GENESIS",
    "AuditEntry",
    "Problem",
    "ProblemKind",
    "canonical",
    "entry_hash",
    "plain",
    "seal",
    "verify",
]
