"""``stanch eval nab`` on hostile corpora: every bad input is a one-line error naming the file and,
where there is one, the line; exit code 2 and no traceback. Fixtures are built in tmp_path."""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from stanch.evaluation.cli import eval_app
from stanch.evaluation.corpus import CorpusError, load_corpus, load_windows, read_scores

START = datetime(2024, 1, 1)
ROWS = 300


def stamp(i: int) -> str:
    return (START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S")


def good_rows(n: int = ROWS) -> list[str]:
    return [f"{stamp(i)},{50 + i % 7}" for i in range(n)]


def write_corpus(
    root: Path,
    rows: list[str] | None = None,
    windows: object = None,
    *,
    header: str = "timestamp,value",
    raw: bytes | None = None,
) -> Path:
    """``root/data/cat/f.csv`` (``header`` then ``rows``, or ``raw`` bytes) and a labels file
    written one key per line, so the entry of ``cat/f.csv`` is on line 2."""
    folder = root / "data" / "cat"
    folder.mkdir(parents=True)
    rows = good_rows() if rows is None else rows
    text = "\n".join([header, *rows]) + "\n"
    (folder / "f.csv").write_bytes(raw if raw is not None else text.encode())
    labels = {"cat/f.csv": [] if windows is None else windows}
    (root / "labels").mkdir()
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels, indent=1))
    return root


def invoke(*args: str) -> Result:
    return CliRunner().invoke(eval_app, ["nab", *args])


def assert_clean_error(result: Result, *fragments: str) -> None:
    """Exit 2, a message with every fragment, and no traceback or stray exception."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert "error:" in result.output
    for fragment in fragments:
        assert fragment in result.output


def replace_row(index: int, text: str) -> list[str]:
    rows = good_rows()
    rows[index] = text
    return rows


# Row index i sits on line i + 2 of the file (line 1 is the header).
DATA_CASES: dict[str, tuple[dict[str, object], tuple[str, ...]]] = {
    "too few columns": ({"rows": replace_row(5, stamp(5))}, ("f.csv:7:", "1 field(s)")),
    "too many columns": ({"rows": replace_row(5, f"{stamp(5)},1,2")}, ("f.csv:7:", "3 field")),
    "value not a number": (
        {"rows": replace_row(5, f"{stamp(5)},abc")},
        ("f.csv:7:", "value 'abc' is not a number"),
    ),
    "bad timestamp": (
        {"rows": replace_row(5, "notatime,5")},
        ("f.csv:7:", "bad timestamp 'notatime'"),
    ),
    "inf value": (
        {"rows": replace_row(200, f"{stamp(200)},inf")},
        ("f.csv:202:", "'inf' is not a finite number"),
    ),
    "minus inf value": (
        {"rows": replace_row(200, f"{stamp(200)},-inf")},
        ("f.csv:202:", "'-inf' is not a finite number"),
    ),
    "nan value": (
        {"rows": replace_row(9, f"{stamp(9)},nan")},
        ("f.csv:11:", "'nan' is not a finite number"),
    ),
    "rows out of time order": (
        {"rows": replace_row(9, f"{stamp(2)},5")},
        ("f.csv:11:", "earlier than the row before"),
    ),
    "no value column": ({"header": "timestamp,val"}, ("f.csv:1:", "no 'value' column")),
    "empty file": ({"raw": b""}, ("f.csv:1:", "empty file")),
    "not utf-8": (
        {"raw": b"timestamp,value\n" + f"{stamp(0)},1\n".encode() + b"\xff\xfe,1\n"},
        ("f.csv:3:", "not valid UTF-8"),
    ),
    "text after a quoted timestamp": (
        {"raw": b'timestamp,value\n"2024-01-01 00:00:00"x,1\n'},
        ("f.csv:2:", "bad timestamp"),
    ),
    "field over the csv size limit": (
        {"raw": b"timestamp,value\n" + f"{stamp(0)},1\n".encode() + b"x" * 200_000 + b",1\n"},
        ("f.csv:3:", "field larger than field limit"),
    ),
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_bad_data_file_names_file_and_line(tmp_path: Path, case: str) -> None:
    kwargs, fragments = DATA_CASES[case]
    root = write_corpus(tmp_path / "nab", **kwargs)  # type: ignore[arg-type]
    assert_clean_error(invoke(str(root)), *fragments)


LABEL_CASES: dict[str, tuple[object, tuple[str, ...]]] = {
    "window with one edge": ([["2024-01-01"]], ("window 1 must be [start, end]",)),
    "windows not a list": (5, ("expected a list of [start, end] windows, got 5",)),
    "window edges not strings": ([[1, 2]], ("window 1 must be [start, end]",)),
    "bad window timestamp": ([[stamp(10), "soon"]], ("window 1: bad timestamp 'soon'",)),
    "window ends before it starts": ([[stamp(20), stamp(10)]], ("before it starts",)),
    "window covers no row": (
        [["2030-01-01 00:00:00", "2030-01-02 00:00:00"]],
        ("window 1", "covers no row", "f.csv"),
    ),
}


@pytest.mark.parametrize("case", sorted(LABEL_CASES))
def test_bad_label_window_names_labels_file_and_line(tmp_path: Path, case: str) -> None:
    windows, fragments = LABEL_CASES[case]
    root = write_corpus(tmp_path / "nab", windows=windows)
    assert_clean_error(invoke(str(root)), "combined_windows.json:2: 'cat/f.csv'", *fragments)


def test_labels_not_json_names_the_line(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "nab")
    (root / "labels" / "combined_windows.json").write_text('{\n "cat/f.csv": [\n]\n,}')
    assert_clean_error(invoke(str(root)), "combined_windows.json:4: not valid JSON")


def test_label_key_without_category_is_refused(tmp_path: Path) -> None:
    """A key must be ``<category>/<file>.csv``: results are written under the category."""
    root = write_corpus(tmp_path / "nab")
    (root / "labels" / "combined_windows.json").write_text('{\n "f.csv": []\n}')
    assert_clean_error(invoke(str(root)), "combined_windows.json:2: 'f.csv'", "a key must be")


def test_corpus_without_a_single_row_is_an_error(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "nab", rows=[])
    assert_clean_error(invoke(str(root)), "no data rows")


def test_header_only_file_is_warned_about_and_the_rest_scored(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "nab")
    (root / "data" / "cat" / "empty.csv").write_text("timestamp,value\n")
    labels = {"cat/f.csv": [], "cat/empty.csv": []}
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    result = invoke(str(root))
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output
    assert "empty.csv has a header but no rows" in result.output
    assert "cat/f.csv" in result.output


def test_data_file_without_labels_and_labels_without_file_are_warned_about(
    tmp_path: Path,
) -> None:
    """Neither silently shrinks the corpus: both are named, and the labeled file is scored."""
    root = write_corpus(tmp_path / "nab")
    (root / "data" / "cat" / "new.csv").write_text("\n".join(["timestamp,value", *good_rows()]))
    labels = {"cat/f.csv": [], "cat/gone.csv": []}
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    result = invoke(str(root))
    assert result.exit_code == 0, result.output
    assert "new.csv has no entry in" in result.output
    assert "1 file(s) named in" in result.output
    assert "cat/gone.csv" in result.output
    assert "cat/f.csv" in result.output


def test_a_complete_corpus_has_no_coverage_warning(tmp_path: Path) -> None:
    result = invoke(str(write_corpus(tmp_path / "nab")))
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output


def test_out_keeps_only_this_runs_result_files(tmp_path: Path) -> None:
    """A result CSV from an earlier run over another corpus is removed (NAB's scorer would read
    it beside this run's); files outside our layout are left alone."""
    root = write_corpus(tmp_path / "nab")
    out = tmp_path / "out"
    stale = out / "ensemble" / "other" / "ensemble_old.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("timestamp,value,anomaly_score,label\n")
    foreign = out / "ensemble" / "other" / "notes.txt"
    foreign.write_text("mine")
    result = invoke(str(root), "--out", str(out), "--no-files")
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert foreign.read_text() == "mine"
    assert (out / "ensemble" / "cat" / "ensemble_f.csv").is_file()
    assert "removed 1 result CSV(s) of an earlier run" in result.output
    again = invoke(str(root), "--out", str(out), "--no-files")
    assert again.exit_code == 0
    assert "removed" not in again.output
    assert (out / "ensemble" / "cat" / "ensemble_f.csv").is_file()


@pytest.mark.parametrize(
    ("out", "message"),
    [("taken", "is a file, not a directory"), ("taken/sub", "cannot create the directory")],
)
def test_out_that_cannot_be_a_directory_fails_before_scoring(
    tmp_path: Path, out: str, message: str
) -> None:
    root = write_corpus(tmp_path / "nab")
    (tmp_path / "taken").write_text("an existing file")
    assert_clean_error(invoke(str(root), "--out", str(tmp_path / out)), message)


def test_timestamps_with_zones_compare_with_naive_rows(tmp_path: Path) -> None:
    """Labels in UTC with an offset pick the same rows as naive ones; a BOM is not a name."""
    windows = [[f"{stamp(100)}+00:00", f"{stamp(120)}Z"]]
    text = "\ufefftimestamp,value\n" + "\n".join(good_rows()) + "\n"
    root = write_corpus(tmp_path / "nab", windows=windows, raw=text.encode())
    (file,) = load_corpus(root)
    assert (file.windows[0].start, file.windows[0].end) == (100, 120)


def test_truncated_gzip_result_file_is_a_corpus_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.gz"
    data = gzip.compress(b"timestamp,anomaly_score\n" + b"2024-01-01 00:00:00,0.5\n" * 500)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorpusError, match=r"r\.csv\.gz: cannot read"):
        read_scores(path)


# ----------------------------------------------------------------------------- fuzzing


def error_of(load: Callable[[], object]) -> str | None:
    """None when ``load`` succeeds, the message when it raises CorpusError; any other exception
    propagates and fails the test."""
    try:
        load()
    except CorpusError as exc:
        return str(exc)
    return None


CELLS = st.one_of(
    st.sampled_from(["2024-01-01 00:00:00", "2024-01-01T00:05:00+01:00", "5", "inf", "", '"']),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
)
LINES = st.lists(st.lists(CELLS, min_size=0, max_size=4).map(",".join), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES, windows=st.recursive(st.none() | st.text(max_size=20), st.lists, max_leaves=6))
def test_any_corpus_loads_or_fails_with_a_corpus_error(lines: list[str], windows: object) -> None:
    """Whatever the data rows and label windows hold, reading gives a corpus or a CorpusError,
    never another exception (which the CLI would show as a traceback)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = write_corpus(Path(tmp), rows=lines, windows=windows)
        assert error_of(lambda: load_corpus(root)) != ""


@settings(max_examples=100, deadline=None)
@given(
    labels=st.recursive(
        st.none() | st.booleans() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(max_size=10), inner),
        max_leaves=8,
    )
)
def test_any_labels_json_loads_or_fails_with_a_corpus_error(labels: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "labels").mkdir()
        (Path(tmp) / "labels" / "combined_windows.json").write_text(json.dumps(labels))
        assert error_of(lambda: load_windows(Path(tmp))) != ""
