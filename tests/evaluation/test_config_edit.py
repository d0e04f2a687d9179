"""Tune's diff: the proposal written into the user's own detection.yaml, so ``patch`` applies it."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stanch.core.detection_config import DetectionConfig
from stanch.evaluation.config_edit import edited_config_text, minimal_edit
from stanch.evaluation.detection_file import (
    config_diff,
    parse_detection_config,
    render_detection_config,
)

USER_FILE = """\
# Detector settings for the shop (reviewed by on-call).
detection:
  defaults:
    fire_after: 2   # two points in a row
    warmup_s: 2m
    spike_threshold: 5
  routes:
    "GET /search":
      spike_threshold: 4.0  # floods come here first
    "GET /products*":
      latency_threshold: 8.0
    "*":
      fire_after: 4
other_section: {kept: out}
"""
ROUTES = ("GET /search", "GET /products*", "*", "POST /checkout", "GET /cart")
THRESHOLDS = {
    "spike_threshold": (3.0, 4.0, 6.0, 13.0),
    "latency_threshold": (3.0, 8.0, 10.0),
    "error_threshold": (5.0, 7.0, 9.0),
    "burn_threshold": (14.4, 20.0),
}


def patch_applies(tmp_path: Path, before: str, diff: str, after: str) -> None:
    """``patch`` takes ``diff`` on a file holding ``before`` and leaves exactly ``after``."""
    target = tmp_path / "detection.yaml"
    target.write_bytes(before.encode())
    (tmp_path / "p.diff").write_bytes(diff.encode())
    run = subprocess.run(
        ["patch", "--dry-run", str(target), str(tmp_path / "p.diff")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    subprocess.run(
        ["patch", "--quiet", str(target), str(tmp_path / "p.diff")], check=True, timeout=10
    )
    assert target.read_bytes().decode() == after


needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="needs GNU patch")


def proposal_for(text: str) -> tuple[DetectionConfig, dict[str, DetectionConfig]]:
    """A proposal of every kind: a default raised, a route dropped, one changed, one added."""
    defaults, routes = parse_detection_config(text)
    new_defaults = dataclasses.replace(defaults, spike_threshold=6.0, error_threshold=9.0)
    new_routes = {
        "GET /products*": dataclasses.replace(
            routes["GET /products*"], latency_threshold=10.0, fire_after=3
        ),
        "*": dataclasses.replace(new_defaults, fire_after=4),
        "POST /checkout": dataclasses.replace(new_defaults, burn_threshold=20.0),
    }
    return new_defaults, new_routes


@needs_patch
def test_the_diff_applies_to_the_users_file_and_keeps_its_comments(tmp_path: Path) -> None:
    """Values are replaced in place, entries added and removed as lines; comments, quoting and
    other sections stay; ``patch`` applies the diff and the result loads as the proposal."""
    proposed = proposal_for(USER_FILE)
    after = edited_config_text(USER_FILE, proposed, filename="detection.yaml")
    diff = config_diff(USER_FILE, after, before_name="detection.yaml", after_name="proposed.yaml")
    assert "# Detector settings for the shop" in after
    assert "    fire_after: 2   # two points in a row\n" in after
    assert "other_section: {kept: out}" in after
    # GET /products* spells out the old spike and error defaults it keeps: they moved.
    changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
    assert changed == [
        "-    spike_threshold: 5",
        "+    spike_threshold: 6.0",
        "+    error_threshold: 9.0",
        '-    "GET /search":',
        "-      spike_threshold: 4.0  # floods come here first",
        "-      latency_threshold: 8.0",
        "+      latency_threshold: 10.0",
        "+      fire_after: 3",
        "+      spike_threshold: 5.0",
        "+      error_threshold: 7.0",
        '+    "POST /checkout":',
        "+      burn_threshold: 20.0",
    ]
    patch_applies(tmp_path, USER_FILE, diff, after)
    assert parse_detection_config(after) == proposed


@needs_patch
def test_crlf_files_without_a_final_newline_still_patch(tmp_path: Path) -> None:
    """Windows line endings are kept, and a last line without newline is marked in the diff."""
    before = USER_FILE.replace("\n", "\r\n").removesuffix("\r\n")
    proposed = proposal_for(before)
    after = edited_config_text(before, proposed)
    assert "\r\n" in after
    assert "\n" not in after.replace("\r\n", "")
    diff = config_diff(before, after, before_name="detection.yaml", after_name="detection.yaml")
    assert "\\ No newline at end of file" in diff
    patch_applies(tmp_path, before, diff, after)


def test_missing_sections_are_created_in_the_files_indentation() -> None:
    """A file with only defaults gains a ``routes:`` section, indented like its other keys."""
    text = "detection:\n    defaults:\n        fire_after: 3\n"
    defaults, _ = parse_detection_config(text)
    wanted = {"GET /search": dataclasses.replace(defaults, spike_threshold=4.0)}
    after = minimal_edit(text, (defaults, wanted))
    assert after == (
        "detection:\n    defaults:\n        fire_after: 3\n"
        "    routes:\n        GET /search:\n            spike_threshold: 4.0\n"
    )
    text = "detection:\n  routes:\n    '*': {fire_after: 2}\n"
    raised = DetectionConfig(spike_threshold=8.0)
    after = minimal_edit(text, (raised, {"*": dataclasses.replace(raised, fire_after=2)}))
    assert after == (
        "detection:\n  routes:\n    '*': {fire_after: 2}\n  defaults:\n    spike_threshold: 8.0\n"
    )


def test_the_normal_forms_empty_routes_are_filled_in_place() -> None:
    """``routes: {}``, as ``stanch tune --out`` writes it, becomes a block of the new entries."""
    defaults = DetectionConfig(fire_after=2)
    text = render_detection_config(defaults, {})
    assert "  routes: {}\n" in text
    wanted = {"GET /search": dataclasses.replace(defaults, spike_threshold=4.0)}
    after = minimal_edit(text, (defaults, wanted))
    assert after == text.replace(
        "  routes: {}\n", "  routes:\n    GET /search:\n      spike_threshold: 4.0\n"
    )


def test_layouts_the_line_editor_cannot_touch_fall_back_to_the_section() -> None:
    """A flow-style section needs a new key: the section is re-rendered, the rest kept."""
    text = "# top\ndetection: {defaults: {fire_after: 2}}\nother: [1, 2]  # kept\n"
    defaults, routes = parse_detection_config(text)
    proposed = (dataclasses.replace(defaults, spike_threshold=9.0), routes)
    assert minimal_edit(text, proposed) is None
    after = edited_config_text(text, proposed)
    assert after.startswith("# top\ndetection:\n")
    assert after.endswith("other: [1, 2]  # kept\n")
    assert parse_detection_config(after) == proposed


def test_no_change_returns_the_text_untouched() -> None:
    """Settings equal to the file's give the file back byte for byte (and an empty diff)."""
    proposed = parse_detection_config(USER_FILE)
    assert edited_config_text(USER_FILE, proposed) == USER_FILE
    assert config_diff(USER_FILE, USER_FILE, before_name="a", after_name="b") == ""


@st.composite
def settings_file(draw: st.DrawFn) -> str:
    """A block-style detection.yaml: some defaults, some route entries, comments between."""
    lines = ["# generated", "detection:", "  defaults:"]
    lines.append(f"    fire_after: {draw(st.sampled_from([1, 2, 3, 5]))}  # comment")
    for name, values in THRESHOLDS.items():
        if draw(st.booleans()):
            lines.append(f"    {name}: {draw(st.sampled_from(values))}")
    routes = draw(st.lists(st.sampled_from(ROUTES[:3]), unique=True, max_size=3))
    if routes:
        lines.append("  routes:")
    for route in routes:
        lines.append(f'    "{route}":')
        lines.append(f"      fire_after: {draw(st.sampled_from([1, 2, 3, 5]))}")
        if draw(st.booleans()):
            lines.append(f"      spike_threshold: {draw(st.sampled_from([4.0, 8.0]))}")
    return "\n".join(lines) + "\n"


@st.composite
def proposals(draw: st.DrawFn, text: str) -> tuple[DetectionConfig, dict[str, DetectionConfig]]:
    """Any settings a proposal could hold: thresholds and fire_after moved in the defaults
    and per route, routes dropped and added (file order kept, new ones last)."""
    defaults, routes = parse_detection_config(text)

    def moved(config: DetectionConfig) -> DetectionConfig:
        changes = {
            n: draw(st.sampled_from(v)) for n, v in THRESHOLDS.items() if draw(st.booleans())
        }
        if draw(st.booleans()):
            changes["fire_after"] = draw(st.sampled_from([1, 2, 3, 5]))
        return dataclasses.replace(config, **changes)

    new_defaults = moved(defaults)
    kept = {r: moved(c) for r, c in routes.items() if draw(st.booleans())}
    for route in ROUTES[3:]:
        if draw(st.booleans()):
            kept[route] = moved(new_defaults)
    return new_defaults, kept


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_every_proposal_is_a_line_edit_that_parses_back(data: st.DataObject) -> None:
    """On block-style files the line editor alone yields exactly the proposed settings, and
    only the lines it had to change differ."""
    text = data.draw(settings_file())
    proposed = data.draw(proposals(text))
    after = minimal_edit(text, proposed)
    assert after is not None
    defaults, routes = parse_detection_config(after)
    assert (defaults, list(routes.items())) == (proposed[0], list(proposed[1].items()))
    assert after.splitlines()[:3] == ["# generated", "detection:", "  defaults:"]
    assert after.splitlines()[3].endswith("  # comment")
