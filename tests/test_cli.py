"""The command line, as a person uses it: real commands against a real demo database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stanch.cli import app
from stanch.core.actions import ActionKind, ActionState
from stanch.demo.scenario import DemoReport, DemoWorld, Scenario

pytestmark = pytest.mark.integration
runner = CliRunner()


def _db(demo_run: tuple[DemoReport, str]) -> str:
    return demo_run[1].removeprefix("sqlite:///")


def test_runbook_check_accepts_the_demo_runbook() -> None:
    """A valid runbook is reported OK with its rules."""
    result = runner.invoke(app, ["runbook", "check", "src/stanch/demo/runbook.yaml"])
    assert result.exit_code == 0, result.output
    assert "OK, 3 rule(s)" in result.output
    assert "client-flood" in result.output


def test_runbook_check_names_file_line_and_field(tmp_path: Path) -> None:
    """A bad runbook fails with exit 1 and each problem as file:line: field: message."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nrules:\n  - name: r1\n    match: {kinds: [error_burst]}\n"
        "    actions:\n      - kind: circuit_brake\n        mode: auto\n"
    )
    result = runner.invoke(app, ["runbook", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:6:" in result.output
    assert "circuit_brake" in result.output


def test_incidents_list_and_show(demo_run: tuple[DemoReport, str]) -> None:
    """Both demo incidents are listed; `show` gives suspects, actions and the timeline."""
    db = _db(demo_run)
    listed = runner.invoke(app, ["incidents", "list", "--db", db])
    assert listed.exit_code == 0, listed.output
    assert "INC-0001" in listed.output
    assert "INC-0002" in listed.output
    shown = runner.invoke(app, ["incidents", "show", "INC-0001", "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "payments.timeout_ms" in shown.output
    assert "circuit_break" in shown.output
    assert "recovery verified" in shown.output


def test_unknown_incident_and_missing_database_are_clear_errors(
    demo_run: tuple[DemoReport, str], tmp_path: Path
) -> None:
    """Asking for what does not exist exits non-zero with a message, not a traceback."""
    missing = runner.invoke(app, ["incidents", "show", "INC-9999", "--db", _db(demo_run)])
    assert missing.exit_code == 1
    assert "INC-9999 does not exist" in missing.output
    assert "Traceback" not in missing.output
    nodb = runner.invoke(app, ["incidents", "list", "--db", str(tmp_path / "nope.db")])
    assert nodb.exit_code == 2
    assert "no Stanch database" in nodb.output


def test_postmortem_written_to_file(demo_run: tuple[DemoReport, str], tmp_path: Path) -> None:
    """`stanch postmortem ID --out FILE` writes the incident's Markdown post-mortem."""
    out = tmp_path / "pm.md"
    result = runner.invoke(
        app, ["postmortem", "INC-0002", "--db", _db(demo_run), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# Post-mortem INC-0002")
    assert "scraper-7" in text


def test_deciding_on_an_action_that_is_not_pending_is_refused(
    demo_run: tuple[DemoReport, str],
) -> None:
    """Approving a lifted action explains why it cannot be approved."""
    listed = runner.invoke(app, ["actions", "list", "--db", _db(demo_run)])
    assert listed.exit_code == 0
    assert "ACT-0003" in listed.output
    result = runner.invoke(app, ["actions", "approve", "ACT-0001", "--db", _db(demo_run)])
    assert result.exit_code == 1
    assert "ACT-0001" in result.output


def test_cli_approval_reaches_the_running_engine(tmp_path: Path) -> None:
    """An approval queued from the CLI (another process's view of the store) is applied by the
    engine on its next step, with the approver on the record."""
    scenario = Scenario(operator_delay_s=1e9)  # the demo's own operator never gets to it
    db_url = f"sqlite:///{tmp_path / 'approve.db'}"
    world = DemoWorld(scenario, db_url=db_url)
    detected = scenario.start + scenario.flood_start_s + 30
    asyncio.run(world.run(detected))
    pending = [a for a in world.engine.actions.values() if a.state is ActionState.PENDING]
    assert [a.kind for a in pending] == [ActionKind.THROTTLE_CLIENT]
    result = runner.invoke(
        app,
        [
            "actions",
            "approve",
            pending[0].id,
            "--db",
            str(tmp_path / "approve.db"),
            "--as",
            "dana",
            "--reason",
            "one scraper",
        ],
    )
    assert result.exit_code == 0, result.output
    asyncio.run(world.run(detected + 5))
    action = world.engine.actions[pending[0].id]
    assert action.state is ActionState.APPLIED
    assert action.decided_by == "dana"
    world.close()
