"""``stanch eval nab``: a tiny synthetic corpus in NAB's layout, end to end."""

from __future__ import annotations

import csv
import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stanch.evaluation.cli import eval_app

START = datetime(2024, 1, 1)
STEP = timedelta(minutes=5)


def make_corpus(root: Path, rows: int = 900) -> None:
    """Two files: one with a spike inside its labeled window, one without anomalies."""
    rng = random.Random(4)
    windows: dict[str, list[list[str]]] = {}
    for category, name, spike in [("synthA", "spiky.csv", 700), ("synthB", "calm.csv", None)]:
        folder = root / "data" / category
        folder.mkdir(parents=True)
        stamps = [(START + i * STEP).strftime("%Y-%m-%d %H:%M:%S") for i in range(rows)]
        with (folder / name).open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value"])
            for i, ts in enumerate(stamps):
                w.writerow([ts, 50 + rng.gauss(0, 2) + (60 if i == spike else 0)])
        key = f"{category}/{name}"
        windows[key] = []
        if spike is not None:
            windows[key] = [[stamps[spike - 20] + ".000000", stamps[spike + 20] + ".000000"]]
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


def test_eval_nab_prints_scores_and_writes_nab_layout(tmp_path: Path) -> None:
    """Three profiles printed; one CSV per file under <out>/<detector>/<category>/."""
    make_corpus(tmp_path / "nab")
    out = tmp_path / "results"
    result = CliRunner().invoke(eval_app, ["nab", str(tmp_path / "nab"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    for profile in ("standard", "reward_low_FP_rate", "reward_low_FN_rate"):
        assert profile in result.output
    assert "synthA/spiky.csv" in result.output
    assert "1/1" in result.output  # the spike's window was hit
    written = out / "ensemble" / "synthA" / "ensemble_spiky.csv"
    with written.open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "label"]
    assert len(rows) == 900
    assert sum(int(r["label"]) for r in rows) == 41
    assert (out / "ensemble" / "synthB" / "ensemble_calm.csv").is_file()


def test_eval_nab_with_fixed_threshold_and_other_detector(tmp_path: Path) -> None:
    """--threshold skips optimization; --detector picks another suite member."""
    make_corpus(tmp_path / "nab")
    args = ["nab", str(tmp_path / "nab"), "--detector", "robust", "--threshold", "0.5"]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code == 0, result.output
    assert "0.5000" in result.output
    assert "robust" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nab", "/no/such/dir"], "no NAB directory"),
        (["nab", "{tmp}", "--detector", "nope"], "unknown detector"),
        (["nab", "{tmp}", "--threshold", "7"], "--threshold"),
        (["nab", "{empty}"], "combined_windows.json is missing"),
    ],
)
def test_eval_nab_bad_input_exits_2_with_a_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """A missing or invalid DIR or option is a one-line error and exit code 2, no traceback."""
    make_corpus(tmp_path / "nab")
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path / "nab", empty=tmp_path / "empty") for a in args]
    result = CliRunner().invoke(eval_app, argv)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_per_file_table_fits_80_columns_without_cutting_names(tmp_path: Path) -> None:
    """CI logs are 80 columns wide: no line is longer, and a long file name is folded onto a
    second line, never cut, so it can be read back whole from the first column."""
    make_corpus(tmp_path / "nab")
    long_name = "synthA/iio_us-east-1_i-a2eb1cd9_NetworkIn_with_a_much_longer_tail.csv"
    data = tmp_path / "nab" / "data"
    (data / "synthA" / "spiky.csv").rename(data / long_name)
    labels_path = tmp_path / "nab" / "labels" / "combined_windows.json"
    labels = json.loads(labels_path.read_text())
    labels[long_name] = labels.pop("synthA/spiky.csv")
    labels_path.write_text(json.dumps(labels))
    result = CliRunner().invoke(eval_app, ["nab", str(tmp_path / "nab")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    first_column = "".join(
        line.split("│")[1].strip() for line in lines if line.startswith("│") and "│" in line[1:]
    )
    assert long_name in first_column
    assert "…" not in result.output
