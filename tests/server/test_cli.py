"""The control plane's commands, registered on a Typer app the way stanch.cli will."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from stanch.server import cli as server_cli
from stanch.server.auth import parse_token
from stanch.store import Store

app = typer.Typer()
app.command("serve")(server_cli.serve)
app.add_typer(server_cli.token_app, name="token")
app.add_typer(server_cli.audit_app, name="audit")
runner = CliRunner()


def test_token_create_prints_the_secret_once_and_stores_a_hash(db_url: str) -> None:
    """The secret is printed; the store holds its hash only; list shows the token."""
    result = runner.invoke(
        app, ["token", "create", "--role", "agent", "--name", "ci", "--db", db_url]
    )
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    parsed = parse_token(secret)
    assert parsed is not None
    with Store.open(db_url) as store:
        (stored,) = store.list_tokens()
        assert stored.id == parsed[0]
        assert parsed[1] not in stored.secret_hash
    listed = runner.invoke(app, ["token", "list", "--db", db_url])
    assert "ci" in listed.stdout
    assert "agent" in listed.stdout


def test_token_create_refuses_an_unknown_role(db_url: str) -> None:
    """A role that does not exist exits 1 naming the roles there are."""
    result = runner.invoke(
        app, ["token", "create", "--role", "root", "--name", "x", "--db", db_url]
    )
    assert result.exit_code == 1
    assert "viewer" in result.output


def test_token_revoke_marks_the_token(db_url: str) -> None:
    """Revoking by id marks it revoked; an unknown id exits 1."""
    created = runner.invoke(
        app, ["token", "create", "--role", "viewer", "--name", "v", "--db", db_url]
    )
    token_id = (parse_token(created.stdout.strip().splitlines()[-1]) or ("", ""))[0]
    assert runner.invoke(app, ["token", "revoke", token_id, "--db", db_url]).exit_code == 0
    with Store.open(db_url) as store:
        assert store.list_tokens()[0].revoked_at is not None
    assert runner.invoke(app, ["token", "revoke", "nope", "--db", db_url]).exit_code == 1


def _entries(db_url: str, n: int = 4) -> None:
    with Store.open(db_url) as store:
        for i in range(n):
            store.append_audit(ts=float(i), actor="erin", action="api.x", target=f"T{i}")


def test_audit_verify_says_intact(db_url: str) -> None:
    """An untouched chain exits 0 with the count and 'chain intact'."""
    _entries(db_url)
    result = runner.invoke(app, ["audit", "verify", "--db", db_url])
    assert result.exit_code == 0
    assert "4 entries, chain intact" in result.stdout


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE audit_log SET target = 'T9' WHERE seq = 2", "entry 2: edited"),
        ("DELETE FROM audit_log WHERE seq = 3", "entry 3: deleted"),
        (
            "INSERT INTO audit_log (seq, ts, actor, action, target, before, after, why, "
            "prev_hash, hash) VALUES (5, 9.0, 'mallory', 'api.x', '', 'null', 'null', '', "
            "'" + "0" * 64 + "', '" + "1" * 64 + "')",
            "entry 5: edited",
        ),
    ],
)
def test_audit_verify_names_the_tampered_entry(db_url: str, tamper: str, expected: str) -> None:
    """Edited, deleted and forged rows make verify exit 1 naming the entry."""
    _entries(db_url)
    with Store.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(text(tamper))
    result = runner.invoke(app, ["audit", "verify", "--db", db_url])
    assert result.exit_code == 1
    assert expected in result.output


def test_serve_builds_the_app_and_runs_uvicorn(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve reads options and env, opens the context, and hands the app to uvicorn."""
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["app"] = app
        seen.update(kwargs)

    monkeypatch.setattr("uvicorn.run", fake_run)
    monkeypatch.setenv("STANCH_PORT", "9123")
    result = runner.invoke(app, ["serve", "--db", db_url, "--host", "127.0.0.2"])
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("127.0.0.2", 9123)
    assert seen["app"].state.stanch.settings.db == db_url
    seen["app"].state.stanch.close()


def test_serve_reports_a_bad_runbook(db_url: str, tmp_path: Path) -> None:
    """A runbook that does not validate stops serve with exit 2 and the problem."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\nrules: []\n")
    result = runner.invoke(app, ["serve", "--db", db_url, "--runbook", str(bad)])
    assert result.exit_code == 2
    assert "unsupported runbook version" in result.output
