"""One YAML reading step for the settings file and the labels: the same mistake, the same
message, naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from stanch.core.errors import ValidationError
from stanch.evaluation.detection_file import load_detection_config
from stanch.evaluation.labels import load_labels
from stanch.evaluation.yaml_document import read_yaml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\n  b: 2\n", ":2: (yaml): mapping values are not allowed here"),
        ("- [1, 2\n- 3\n", ":3: (yaml): expected ',' or ']', but got '<stream end>'"),
        ("x: !!python/object:os.system 1\n", ":1: (yaml): could not determine a constructor"),
        (
            "a: 1\n---\nb: 2\n",
            ":2: (yaml): expected a single document in the stream, but found another",
        ),
        ("[" * 5000 + "]" * 5000, ":1: (yaml): maximum recursion depth exceeded"),
    ],
)
def test_settings_and_labels_report_a_yaml_error_alike(
    tmp_path: Path, text: str, expected: str
) -> None:
    settings, labels = tmp_path / "detection.yaml", tmp_path / "labels.yaml"
    settings.write_text(text, encoding="utf-8")
    labels.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as from_settings:
        load_detection_config(settings)
    with pytest.raises(ValidationError) as from_labels:
        load_labels(labels)
    assert str(from_settings.value).startswith(f"{settings}{expected}")
    assert str(from_labels.value).startswith(f"{labels}{expected}")


def test_an_empty_document_is_no_node_and_no_data() -> None:
    assert read_yaml("", "x.yaml") == (None, None)
    root, data = read_yaml("- 1\n", "x.yaml")
    assert data == [1]
    assert root is not None
    assert root.start_mark.line == 0
