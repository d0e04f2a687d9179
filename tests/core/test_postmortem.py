"""Post-mortem drafts and their markdown rendering."""

from __future__ import annotations

import json
import re
from dataclasses import replace

from stanch.core.actions import Action, ActionKind, ActionState
from stanch.core.incidents import Incident, IncidentState
from stanch.core.postmortem import draft_postmortem, durations, render_markdown
from stanch.core.severity import Severity

from .factories import make_action, make_alert, make_incident

SECTIONS = (
    "## Summary",
    "## Root cause",
    "## Impact",
    "## Time to …",
    "## Suspects",
    "## Actions",
    "## Timeline",
    "## Follow-ups",
)


def resolved_incident() -> tuple[Incident, list[Action]]:
    """Onset 1000; opened 1030; ack 1060; isolated 1090; mitigated 1200; resolved 1500."""
    alert = make_alert(route="POST /checkout", started_at=1000.0, severity=Severity.SEV2)
    incident = make_incident("INC-7", opened_at=1030.0, alerts=(alert,))
    incident.acknowledge(1060.0, "alice")
    incident.transition(IncidentState.ISOLATED, 1090.0)
    incident.transition(IncidentState.MITIGATED, 1200.0)
    incident.transition(IncidentState.RESOLVED, 1500.0)
    incident.impact.add(1000, 250, 300)
    incident.impact.see_client("acme", failed=True)
    incident.impact.see_client("globex", failed=False)
    incident.suspects = [
        {
            "kind": "change",
            "ref": "config-v7",
            "summary": "payment timeout 80ms",
            "confidence": 0.8,
            "evidence": ["landed 2m before the onset"],
        }
    ]
    breaker = make_action("B1", state=ActionState.LIFTED, applied_at=1090.0)
    rollback = make_action(
        "R1",
        kind=ActionKind.ROLLBACK_CONFIG,
        target="payment.timeout_ms",
        state=ActionState.LIFTED,
        applied_at=1200.0,
    )
    return incident, [breaker, rollback]


def test_durations_from_onset() -> None:
    """Detection counts onset -> opening; every later stage counts from the onset."""
    incident, _ = resolved_incident()
    assert durations(incident) == {
        "detect": 30.0,
        "acknowledge": 60.0,
        "isolate": 90.0,
        "mitigate": 200.0,
        "resolve": 500.0,
    }


def test_durations_of_stages_never_reached_are_none() -> None:
    """A stage the incident skipped has no duration."""
    incident = make_incident(opened_at=100.0)
    incident.transition(IncidentState.RESOLVED, 200.0)
    result = durations(incident)
    assert result["detect"] == 0.0
    assert result["acknowledge"] is None
    assert result["isolate"] is None
    assert result["resolve"] == 100.0


def test_draft_summarizes_impact_and_fix() -> None:
    """The draft's summary states impact, actions, final state and the rollback that fixed it."""
    incident, actions = resolved_incident()
    pm = draft_postmortem(incident, actions)
    assert pm.incident_id == "INC-7"
    assert pm.severity == "SEV2"
    assert pm.state == "resolved"
    assert "250 requests failed" in pm.summary
    assert "300 were answered by Stanch's protections out of 1000" in pm.summary
    assert "2 action(s) applied" in pm.summary
    assert "Fixed by rolling back payment.timeout_ms" in pm.summary
    assert pm.root_cause == "payment timeout 80ms (confidence 80%)"
    assert pm.impact["users_affected_share"] == 0.5
    assert pm.routes == ("POST /checkout",)
    assert [a["id"] for a in pm.actions] == ["B1", "R1"]
    assert pm.to_dict()["durations"]["resolve"] == 500.0


def test_follow_ups_from_evidence() -> None:
    """A confident config suspect proposes stricter validation; an unhelpful action a rule fix."""
    incident, actions = resolved_incident()
    actions[0] = replace(
        make_action("B1", state=ActionState.LIFTED, rule="break-it"), verified=False
    )
    pm = draft_postmortem(incident, actions)
    text = " ".join(pm.follow_ups)
    assert "Tighten validation" in text
    assert "Runbook rule 'break-it'" in text
    assert "Detection took" not in text  # 30 s is quick enough


def test_slow_detection_and_no_suspect() -> None:
    """Without suspects the root cause says so; detection over a minute asks for tuning."""
    alert = make_alert(started_at=0.0)
    incident = make_incident(opened_at=300.0, alerts=(alert,))
    pm = draft_postmortem(incident, [])
    assert pm.root_cause.startswith("No suspect found")
    assert any("Detection took 300s" in f for f in pm.follow_ups)


def test_default_follow_up_when_nothing_else() -> None:
    """With nothing to learn from, the one follow-up is to record the cause and fix."""
    pm = draft_postmortem(make_incident(opened_at=100.0), [])
    assert pm.follow_ups == ("Record the root cause and fix in the knowledge base.",)


def test_markdown_has_every_section_and_durations() -> None:
    """The rendered markdown carries every section, formatted durations and relative times."""
    incident, actions = resolved_incident()
    md = render_markdown(draft_postmortem(incident, actions))
    positions = [md.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert md.startswith("# Post-mortem INC-7: checkout failing\n")
    assert "| detect | 30 s |" in md
    assert "| isolate | 90 s |" in md
    assert "| mitigate | 3.3 min |" in md
    assert "| resolve | 8.3 min |" in md
    assert "| requests failed | 250 |" in md
    assert "| share of users who saw a failure | 50.0% |" in md
    assert "| T+01:00 | alice |" in md  # the acknowledgement, one minute after the onset
    assert "| circuit\\_break |" not in md  # kinds are enum values, rendered as is
    assert "| circuit_break | POST /checkout | auto |" in md
    assert md.endswith("\n")


def test_markdown_marks_missing_stages_and_empty_lists() -> None:
    """Stages never reached show a dash; no suspects or actions are said plainly."""
    md = render_markdown(draft_postmortem(make_incident(opened_at=100.0), []))
    assert "| acknowledge | — |" in md
    assert "None found." in md
    assert "\n## Actions\n\nNone.\n" in md


def test_markdown_times_before_onset_are_negative() -> None:
    """A clock origin after an event renders it as T−mm:ss."""
    incident, actions = resolved_incident()
    md = render_markdown(draft_postmortem(incident, actions), clock_origin=1100.0)
    assert "| T−00:40 | alice |" in md


def test_markdown_escapes_html_and_markdown_in_user_strings() -> None:
    """Titles, routes, clients, actors and texts cannot inject HTML or markdown structure."""
    alert = make_alert(route="GET /a|b", clients=("<b>x</b>",), started_at=100.0)
    incident = make_incident(
        opened_at=100.0, alerts=(alert,), title="<script>alert(1)</script> *bold* [x](y)"
    )
    incident.acknowledge(110.0, "`mallory`_")
    incident.note(120.0, "comment", "see <img src=x onerror=alert(1)> | cell", actor="bob")
    md = render_markdown(draft_postmortem(incident, []))
    assert re.search(r"(?<!\\)[<>]", md) is None  # no unescaped angle bracket anywhere
    assert "\\<script\\>alert(1)\\</script\\> \\*bold\\* \\[x\\](y)" in md
    assert "GET /a\\|b" in md
    assert "\\`mallory\\`\\_" in md
    # Every timeline row still has exactly four unescaped pipes.
    rows = [line for line in md.splitlines() if line.startswith("| T+")]
    assert rows
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 4


def test_markdown_escapes_backslashes_first() -> None:
    """A user backslash is doubled, so it cannot un-escape the next metacharacter."""
    incident = make_incident(title="a\\*b")
    md = render_markdown(draft_postmortem(incident, []))
    assert "a\\\\\\*b" in md


def test_markdown_user_newlines_cannot_break_out_of_a_table_row() -> None:
    """A newline in a timeline text stays inside its row instead of starting a new block."""
    incident = make_incident(opened_at=100.0)
    incident.note(110.0, "comment", "ok\n# Root cause: the intern\n- [x] done", actor="eve")
    md = render_markdown(draft_postmortem(incident, []))
    assert "\n# Root cause: the intern" not in md
    assert "\n- " not in md.split("## Timeline", 1)[1].split("## Follow-ups", 1)[0]


def test_to_dict_is_plain_data() -> None:
    """to_dict holds lists and plain values only (what the store serializes)."""
    incident, actions = resolved_incident()
    doc = draft_postmortem(incident, actions).to_dict()
    assert isinstance(doc["suspects"], list)
    assert isinstance(doc["actions"], list)
    assert doc["routes"] == ["POST /checkout"]
    assert set(doc) >= {"summary", "root_cause", "durations", "impact", "follow_ups"}
    assert json.loads(json.dumps(doc)) == doc
