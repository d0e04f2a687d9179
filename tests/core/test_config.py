"""The versioned configuration store: validation, versions, revert, rollback, diff."""

from __future__ import annotations

import math

import pytest

from stanch.core.config import ConfigKeySpec, ConfigStore, ConfigVersion
from stanch.core.errors import NotFound, ValidationError
from stanch.core.events import ChangeKind

SCHEMA = [
    ConfigKeySpec(
        "payment.timeout_ms", "int", 2000, minimum=50, maximum=30_000, routes=("POST /checkout",)
    ),
    ConfigKeySpec("search.boost", "float", 1.0, minimum=0.0, maximum=10.0, routes=("GET /search",)),
    ConfigKeySpec("banner", "str", "hello"),
    ConfigKeySpec("feature.new_cart", "bool", False, routes=("POST /cart", "GET /cart")),
]


def store() -> ConfigStore:
    return ConfigStore("shop", SCHEMA, now=0.0)


def test_initial_version_holds_the_defaults() -> None:
    """A new store starts at v1 with every key's default, authored by stanch."""
    s = store()
    assert s.current.version == 1
    assert s.get("payment.timeout_ms") == 2000
    assert s.current.author == "stanch"
    assert s.current.changed == {}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"nope": 1}, "nope: unknown configuration key"),
        ({"payment.timeout_ms": "fast"}, "payment.timeout_ms: expected int, got str"),
        ({"payment.timeout_ms": 1.5}, "payment.timeout_ms: expected int, got float"),
        ({"payment.timeout_ms": True}, "payment.timeout_ms: expected int, got bool"),
        ({"payment.timeout_ms": 10}, "payment.timeout_ms: 10 is below the minimum 50"),
        ({"search.boost": 11.0}, "search.boost: 11.0 is above the maximum 10.0"),
        ({"feature.new_cart": 1}, "feature.new_cart: expected bool, got int"),
        ({"banner": None}, "banner: expected str, got NoneType"),
    ],
)
def test_validation_errors_name_the_key(changes: dict[str, object], fragment: str) -> None:
    """Each refused value raises ValidationError naming the key and the reason."""
    s = store()
    with pytest.raises(ValidationError) as info:
        s.set(10.0, changes, author="alice")
    assert fragment in str(info.value)
    assert s.current.version == 1  # nothing was written


def test_every_problem_is_reported_at_once() -> None:
    """Several bad keys are all listed in one error."""
    with pytest.raises(ValidationError) as info:
        store().set(10.0, {"nope": 1, "payment.timeout_ms": 1}, author="alice")
    assert "nope" in str(info.value)
    assert "payment.timeout_ms" in str(info.value)


def test_int_is_accepted_for_a_float_key() -> None:
    """An int is a valid float value."""
    version, _ = store().set(10.0, {"search.boost": 3}, author="alice")
    assert version.values["search.boost"] == 3


def test_unknown_type_in_schema_is_reported() -> None:
    """A schema key with an unknown type refuses every value, saying so."""
    assert ConfigKeySpec("x", "decimal", 0).check(1) == "unknown type 'decimal'"


def test_nan_is_refused_for_a_bounded_float_key() -> None:
    """NaN is not a number within [minimum, maximum]: it is refused."""
    with pytest.raises(ValidationError, match=r"search\.boost"):
        store().set(10.0, {"search.boost": math.nan}, author="alice")


def test_no_change_is_refused() -> None:
    """Setting every key to its current value is refused, not recorded as a version."""
    s = store()
    with pytest.raises(ValidationError, match="no change"):
        s.set(10.0, {"banner": "hello"}, author="alice")
    assert len(s.history) == 1


def test_set_creates_a_version_and_a_change_event() -> None:
    """A change is a new version recording old/new values, and a ChangeEvent for RCA."""
    s = store()
    version, event = s.set(
        10.0, {"payment.timeout_ms": 80, "banner": "hello"}, author="alice", reason="speed"
    )
    assert version.version == 2
    assert version.changed == {"payment.timeout_ms": (2000, 80)}  # unchanged keys left out
    assert version.values["banner"] == "hello"
    assert event.id == "config-v2"
    assert event.kind is ChangeKind.CONFIG
    assert event.ts == 10.0
    assert event.actor == "alice"
    assert event.version == "2"
    assert event.key == "payment.timeout_ms"
    assert event.routes == ("POST /checkout",)
    assert event.old_value == "payment.timeout_ms=2000"
    assert event.new_value == "payment.timeout_ms=80"
    assert event.summary == "config v2: payment.timeout_ms=80 (speed)"
    assert s.get("payment.timeout_ms") == 80


def test_change_event_lists_routes_of_every_changed_key() -> None:
    """Routes of all changed keys are merged, sorted and de-duplicated."""
    _, event = store().set(5.0, {"feature.new_cart": True, "payment.timeout_ms": 100}, author="bob")
    assert event.routes == ("GET /cart", "POST /cart", "POST /checkout")
    assert "no reason given" in event.summary


def test_versions_and_not_found() -> None:
    """Versions are numbered from 1 and looked up by number; unknown ones raise NotFound."""
    s = store()
    s.set(1.0, {"banner": "a"}, author="x")
    s.set(2.0, {"banner": "b"}, author="x")
    assert [v.version for v in s.history] == [1, 2, 3]
    assert s.version(2).values["banner"] == "a"
    with pytest.raises(NotFound, match="version 9"):
        s.version(9)


def test_history_is_a_copy() -> None:
    """Mutating the returned history does not rewrite the store's."""
    s = store()
    s.history.clear()
    assert len(s.history) == 1


def test_revert_undoes_only_the_keys_of_one_version() -> None:
    """revert(v) restores v's keys and keeps later unrelated changes."""
    s = store()
    s.set(1.0, {"payment.timeout_ms": 80}, author="alice")  # v2: the bad one
    s.set(2.0, {"banner": "sale"}, author="bob")  # v3: unrelated
    version, event = s.revert(3.0, 2, author="stanch")
    assert version.version == 4
    assert s.get("payment.timeout_ms") == 2000
    assert s.get("banner") == "sale"
    assert version.changed == {"payment.timeout_ms": (80, 2000)}
    assert version.reason == "revert v2"
    assert event.actor == "stanch"


def test_revert_skips_keys_changed_again_later() -> None:
    """A key overwritten after the bad version keeps its newer value."""
    s = store()
    s.set(1.0, {"payment.timeout_ms": 80, "banner": "x"}, author="alice")  # v2
    s.set(2.0, {"payment.timeout_ms": 500}, author="bob")  # v3 fixes timeout its own way
    version, _ = s.revert(3.0, 2, author="stanch")
    assert s.get("payment.timeout_ms") == 500
    assert s.get("banner") == "hello"
    assert set(version.changed) == {"banner"}


def test_revert_when_nothing_is_current_any_more() -> None:
    """Reverting a version whose changes were all overwritten is refused."""
    s = store()
    s.set(1.0, {"banner": "x"}, author="alice")
    s.set(2.0, {"banner": "y"}, author="bob")
    with pytest.raises(ValidationError, match="no longer current"):
        s.revert(3.0, 2, author="stanch")
    with pytest.raises(ValidationError, match="no longer current"):
        s.revert(3.0, 1, author="stanch")  # the initial version changed nothing


def test_rollback_restores_every_value_of_a_version() -> None:
    """rollback(v) makes all of v's values current again, as a new version."""
    s = store()
    s.set(1.0, {"payment.timeout_ms": 80}, author="alice")
    s.set(2.0, {"banner": "sale", "search.boost": 2.5}, author="bob")
    version, _ = s.rollback(3.0, 1, author="carol")
    assert version.version == 4
    assert dict(version.values) == dict(s.version(1).values)
    assert version.reason == "rollback to v1"
    assert len(s.history) == 4  # history is never rewritten
    assert s.version(2).values["payment.timeout_ms"] == 80


def test_rollback_to_the_current_values_is_no_change() -> None:
    """Rolling back to a version equal to the current one is refused as no change."""
    s = store()
    with pytest.raises(ValidationError, match="no change"):
        s.rollback(1.0, 1, author="carol")


def test_diff_between_versions() -> None:
    """diff lists keys whose values differ, sorted, as (a, b) pairs."""
    s = store()
    s.set(1.0, {"payment.timeout_ms": 80, "banner": "x"}, author="alice")
    assert ConfigStore.diff(s.version(1), s.version(2)) == {
        "banner": ("hello", "x"),
        "payment.timeout_ms": (2000, 80),
    }
    assert list(ConfigStore.diff(s.version(1), s.version(2))) == ["banner", "payment.timeout_ms"]
    assert ConfigStore.diff(s.version(2), s.version(2)) == {}
    extra = ConfigVersion(9, 0.0, {"only": 1}, "x", "")
    assert ConfigStore.diff(s.version(1), extra)["only"] == (None, 1)


def test_store_resumes_from_history() -> None:
    """A store built from saved history continues numbering after its last version."""
    first = store()
    first.set(1.0, {"banner": "x"}, author="alice")
    resumed = ConfigStore("shop", SCHEMA, history=first.history)
    version, _ = resumed.set(2.0, {"banner": "y"}, author="bob")
    assert version.version == 3
    assert resumed.version(2).values["banner"] == "x"
