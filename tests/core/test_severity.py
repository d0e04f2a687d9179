"""Severity levels and the impact-based grading rule."""

from __future__ import annotations

import pytest

from stanch.core.severity import Severity, assess_severity


def test_severity_order_follows_urgency() -> None:
    """SEV1 is the most urgent: it sorts highest and max() picks it."""
    assert Severity.SEV1 > Severity.SEV2 > Severity.SEV3 > Severity.SEV4
    assert Severity.SEV4 < Severity.SEV1
    assert Severity.SEV2 <= Severity.SEV2 >= Severity.SEV2
    assert max([Severity.SEV3, Severity.SEV1, Severity.SEV4]) is Severity.SEV1
    assert [s.rank for s in Severity] == [4, 3, 2, 1]


def test_severity_does_not_compare_with_numbers() -> None:
    """Comparing a Severity with a non-string is a TypeError, not a silent answer."""
    with pytest.raises(TypeError):
        _ = Severity.SEV1 < 3


def test_no_impact_is_sev4() -> None:
    """Without any measured impact the grade is the lowest, SEV4."""
    assert assess_severity() is Severity.SEV4


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"failing_share": 0.10}, Severity.SEV1),
        ({"failing_share": 0.0999}, Severity.SEV2),
        ({"lost_share": 0.10}, Severity.SEV1),
        ({"failing_share": 0.01}, Severity.SEV2),
        ({"failing_share": 0.0099}, Severity.SEV3),
        ({"lost_share": 0.01}, Severity.SEV2),
        ({"failing_share": 0.001}, Severity.SEV3),
        ({"failing_share": 0.00099}, Severity.SEV4),
        ({"lost_share": 0.001}, Severity.SEV3),
        ({"burn": 14.4}, Severity.SEV2),
        ({"burn": 14.3}, Severity.SEV3),
        ({"burn": 6.0}, Severity.SEV3),
        ({"burn": 5.9}, Severity.SEV4),
        ({"slow_share": 0.10}, Severity.SEV3),
        ({"slow_share": 0.099}, Severity.SEV4),
        ({"excess_load": 0.5}, Severity.SEV3),
        ({"excess_load": 0.49}, Severity.SEV4),
        ({"excess_load": 100.0}, Severity.SEV3),
        ({"slow_share": 1.0}, Severity.SEV3),
    ],
)
def test_thresholds(kwargs: dict[str, float], expected: Severity) -> None:
    """Each impact measure grades at its documented threshold, inclusive, and not below it."""
    assert assess_severity(**kwargs) is expected


def test_worst_measure_wins() -> None:
    """With several measures the most urgent grade applies."""
    assert assess_severity(failing_share=0.002, lost_share=0.2) is Severity.SEV1
    assert assess_severity(failing_share=0.002, burn=20.0) is Severity.SEV2
    assert assess_severity(slow_share=0.5, excess_load=5.0, burn=1.0) is Severity.SEV3
