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


def test_audit_head_then_verify_finds_entries_cut_from_the_end(db_url: str, tmp_path: Path) -> None:
    """`audit head` prints SEQ:HASH; kept in a file, it lets `verify --anchors` name a tail
    deletion the bare chain cannot show."""
    assert runner.invoke(app, ["audit", "head", "--db", db_url]).exit_code == 1  # empty log
    _entries(db_url, 3)
    early = runner.invoke(app, ["audit", "head", "--db", db_url]).stdout.strip()
    _entries(db_url, 2)
    head = runner.invoke(app, ["audit", "head", "--db", db_url]).stdout.strip()
    assert early.startswith("3:")
    assert head.startswith("5:")
    anchors = tmp_path / "anchors"
    anchors.write_text(f"# from cron\n{early}\n{head}  # after deploy\n")
    intact = runner.invoke(app, ["audit", "verify", "--db", db_url, "--anchors", str(anchors)])
    assert intact.exit_code == 0, intact.output
    assert "5 entries, chain intact, 2 anchor(s) match" in intact.stdout
    with Store.open(db_url) as store, store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    bare = runner.invoke(app, ["audit", "verify", "--db", db_url])
    assert bare.exit_code == 0  # a consistent chain, three entries long
    cut = runner.invoke(app, ["audit", "verify", "--db", db_url, "--anchor", head])
    assert cut.exit_code == 1
    assert "entry 5: truncated" in cut.output
    assert "chain ends at entry 3" in cut.output


def test_audit_verify_refuses_a_bad_anchor_naming_file_and_line(
    db_url: str, tmp_path: Path
) -> None:
    _entries(db_url)
    anchors = tmp_path / "anchors"
    anchors.write_text("# ok\n\n4:" + "a" * 63 + "\n")
    from_file = runner.invoke(app, ["audit", "verify", "--db", db_url, "--anchors", str(anchors)])
    assert from_file.exit_code == 2
    assert f"{anchors}:3:" in from_file.output
    assert "64 hex digits" in from_file.output
    inline = runner.invoke(app, ["audit", "verify", "--db", db_url, "--anchor", "four"])
    assert inline.exit_code == 2
    assert "--anchor: an anchor is SEQ:HASH" in inline.output
    missing = runner.invoke(
        app, ["audit", "verify", "--db", db_url, "--anchors", str(tmp_path / "none")]
    )
    assert missing.exit_code == 2
    assert "cannot read anchors" in missing.output
    assert "Traceback" not in from_file.output + inline.output + missing.output


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


def test_serve_applies_the_series_caps_and_refuses_bad_ones(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STANCH_MAX_SERIES / STANCH_MAX_ROUTES_PER_SERVICE reach the engine's guard; a bad value
    stops serve with a message naming the variable, not a traceback."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(app=app))
    monkeypatch.setenv("STANCH_MAX_SERIES", "1000")
    monkeypatch.setenv("STANCH_MAX_ROUTES_PER_SERVICE", "100")
    result = runner.invoke(app, ["serve", "--db", db_url])
    assert result.exit_code == 0, result.output
    ctx = seen["app"].state.stanch
    assert (ctx.engine.guard.max_series, ctx.engine.guard.max_routes_per_service) == (1000, 100)
    ctx.close()
    monkeypatch.setenv("STANCH_MAX_ROUTES_PER_SERVICE", "0")
    bad = runner.invoke(app, ["serve", "--db", db_url])
    assert bad.exit_code == 2
    assert "STANCH_MAX_ROUTES_PER_SERVICE" in bad.output
    assert "Traceback" not in bad.output


def test_serve_runs_the_engine_on_the_detector_settings_given(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--detection (what `stanch tune` proposes) sets the engine's detector settings, its
    window and per-route overrides, and is audited once per distinct file content."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(app=app))
    detection = tmp_path / "detection.yaml"
    detection.write_text(
        "detection:\n  defaults:\n    interval_s: 10s\n    spike_threshold: 7.5\n"
        "  routes:\n    'GET /search':\n      fire_after: 5\n"
    )
    for _ in range(2):  # a restart on the same file
        result = runner.invoke(app, ["serve", "--db", db_url, "--detection", str(detection)])
        assert result.exit_code == 0, result.output
        ctx = seen["app"].state.stanch
        config = ctx.engine.config
        assert config.interval_s == 10.0
        assert config.detection.spike_threshold == 7.5
        assert config.detection_routes["GET /search"].fire_after == 5
        entries = [e for e in ctx.store.audit_entries() if e.action == "detection.replace"]
        ctx.close()
    assert len(entries) == 1
    assert entries[0].target == str(detection)
    after = entries[0].after
    assert (after["interval_s"], after["routes"]) == (10.0, ["GET /search"])
    assert after["settings"] == {
        "defaults": {"interval_s": 10.0, "spike_threshold": 7.5},
        "routes.GET /search": {"fire_after": 5},
    }
    assert {(c["scope"], c["setting"], c["old"], c["new"]) for c in after["changed"]} == {
        ("defaults", "interval_s", 1.0, 10.0),
        ("defaults", "spike_threshold", 6.0, 7.5),
        ("routes.GET /search", "fire_after", None, 5),
    }
    assert "defaults.spike_threshold 6 → 7.5" in entries[0].why


def test_changed_detector_settings_are_audited_old_to_new(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Serving on an edited detection file records each setting that moved, old → new, and
    the settings before and after: the audit trail alone says what was loosened."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(app=app))
    detection = tmp_path / "detection.yaml"
    texts = [
        "detection:\n  defaults:\n    spike_threshold: 7.5\n"
        "  routes:\n    'GET /search':\n      fire_after: 5\n",
        "detection:\n  defaults:\n    spike_threshold: 9\n    drop_threshold: 5\n"
        "  routes:\n    'POST /pay':\n      error_min_ratio: 0.1\n",
    ]
    for content in texts:
        detection.write_text(content)
        result = runner.invoke(app, ["serve", "--db", db_url, "--detection", str(detection)])
        assert result.exit_code == 0, result.output
        ctx = seen["app"].state.stanch
        entries = [e for e in ctx.store.audit_entries() if e.action == "detection.replace"]
        ctx.close()
    assert len(entries) == 2
    latest = entries[-1]
    assert latest.before["settings"]["defaults"] == {"spike_threshold": 7.5}
    assert latest.after["settings"]["defaults"] == {"spike_threshold": 9.0, "drop_threshold": 5.0}
    assert [(c["scope"], c["setting"], c["old"], c["new"]) for c in latest.after["changed"]] == [
        ("defaults", "spike_threshold", 7.5, 9.0),
        ("defaults", "drop_threshold", 4.0, 5.0),
        ("routes.GET /search", "fire_after", 5, None),
        ("routes.POST /pay", "error_min_ratio", None, 0.1),
    ]
    assert "defaults.spike_threshold 7.5 → 9" in latest.why
    assert "routes.GET /search.fire_after 5 → (unset)" in latest.why


def test_serve_reports_bad_detector_settings_with_file_and_line(
    db_url: str, tmp_path: Path
) -> None:
    detection = tmp_path / "detection.yaml"
    detection.write_text("detection:\n  defaults:\n    spike_threshold: lots\n")
    result = runner.invoke(app, ["serve", "--db", db_url, "--detection", str(detection)])
    assert result.exit_code == 2
    assert f"{detection}:3" in result.output
    assert "Traceback" not in result.output


def test_serve_reports_a_bad_runbook(db_url: str, tmp_path: Path) -> None:
    """A runbook that does not validate stops serve with exit 2 and the problem."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 2\nrules: []\n")
    result = runner.invoke(app, ["serve", "--db", db_url, "--runbook", str(bad)])
    assert result.exit_code == 2
    assert "unsupported runbook version" in result.output
