"""The engine's responder side: what humans decide, and what actions do to the world.

Approvals, rejections and reverts; applying approved actions (policy or configuration
rollback); checking whether each one helped; staged lifting once recovery holds; TTL expiry;
publishing the policy. A mixin of :class:`~stanch.engine.Engine`, split out so each module
stays readable; it holds no state of its own.
"""

from __future__ import annotations

from dataclasses import replace

from stanch._engine_state import EngineState, log
from stanch.core.actions import Action, ActionKind, ActionState
from stanch.core.alerts import AlertKind
from stanch.core.errors import NotFound, StanchError
from stanch.core.incidents import Incident, IncidentState
from stanch.core.policy import Policy
from stanch.core.postmortem import render_markdown
from stanch.core.rca.suspects import REMEDIATION_ACTOR
from stanch.core.recovery import StepKind, plan_recovery


class Responder(EngineState):
    # ------------------------------------------------------------------ humans

    def decide(
        self, action_id: str, approve: bool, *, actor: str, now: float, reason: str = ""
    ) -> Action:
        """A human approves or rejects a pending action; it takes effect at once."""
        action = self._action(action_id)
        target = ActionState.APPROVED if approve else ActionState.REJECTED
        action = self._set_action(action.to(target, now, decided_by=actor), now)
        verb = "approved" if approve else "rejected"
        self._incident(action.incident_id).note(
            now,
            f"action_{verb}",
            f"{action.kind} on {action.target} {verb} by {actor}"
            + (f": {reason}" if reason else ""),
            actor,
            action_id=action.id,
        )
        if approve:
            self._apply_approved(now)
            self._publish(now)
        self._persist()
        return self.actions[action_id]

    def revert(self, action_id: str, *, actor: str, now: float, reason: str = "") -> Action:
        """A human lifts an active action immediately."""
        action = self._action(action_id)
        action = self._set_action(action.to(ActionState.REVERTED, now, decided_by=actor), now)
        self._incident(action.incident_id).note(
            now,
            "action_reverted",
            f"{action.kind} on {action.target} reverted by {actor}"
            + (f": {reason}" if reason else ""),
            actor,
            action_id=action.id,
        )
        self._publish(now)
        self._persist()
        return action

    def acknowledge(self, incident_id: str, *, actor: str, now: float) -> Incident:
        incident = self._incident(incident_id)
        incident.acknowledge(now, actor)
        self._dirty_incidents.add(incident_id)
        self._persist()
        return incident

    def comment(self, incident_id: str, text: str, *, actor: str, now: float) -> Incident:
        incident = self._incident(incident_id)
        incident.note(now, "comment", text, actor)
        self._dirty_incidents.add(incident_id)
        self._persist()
        return incident

    def resolve(
        self, incident_id: str, *, actor: str, now: float, resolution: str = ""
    ) -> Incident:
        """A human declares the incident over; active actions are lifted with it."""
        incident = self._incident(incident_id)
        for action in self._actions_of(incident_id):
            if action.is_active:
                self._set_action(action.to(ActionState.REVERTED, now, decided_by=actor), now)
            elif action.state is ActionState.PENDING:
                self._set_action(action.to(ActionState.EXPIRED, now), now)
        incident.resolution = resolution
        self._resolve(incident, now, actor, resolution or "resolved by hand")
        self._publish(now)
        self._persist()
        return incident

    def _take_decisions(self, now: float) -> None:
        """Approvals queued by another process (the CLI, the API) while this engine runs."""
        for decision in self.store.take_decisions():
            try:
                if decision.decision == "revert":
                    self.revert(
                        decision.action_id, actor=decision.actor, now=now, reason=decision.reason
                    )
                else:
                    self.decide(
                        decision.action_id,
                        decision.decision == "approve",
                        actor=decision.actor,
                        now=now,
                        reason=decision.reason,
                    )
            except StanchError as exc:
                log.warning("decision on %s ignored: %s", decision.action_id, exc)

    # ------------------------------------------------------------------ actions

    def _apply_approved(self, now: float) -> None:
        for action in list(self.actions.values()):
            if action.state is ActionState.APPROVED:
                self._apply(action, now)

    def _apply(self, action: Action, now: float) -> None:
        incident = self._incident(action.incident_id)
        if action.kind is ActionKind.ROLLBACK_CONFIG:
            store = self.config_stores.get(action.service)
            try:
                if store is None:
                    raise NotFound(f"no configuration store for service {action.service!r}")
                version, change = store.revert(
                    now,
                    int(action.params["version"]),
                    author=REMEDIATION_ACTOR,
                    reason=f"{incident.id}: {action.rule}",
                )
            except (StanchError, KeyError, ValueError) as exc:
                self._set_action(action.to(ActionState.FAILED, now), now)
                incident.note(now, "action_failed", f"rollback of {action.target} failed: {exc}")
                return
            self.store.add_config_version(action.service, version)
            self.changes[change.id] = change
            self.store.add_change(change)
            text = f"config rolled back: {change.summary}"
        else:
            self._dirty_policy.add(action.service)
            text = f"{action.kind} on {action.target} applied"
        action = self._set_action(action.to(ActionState.APPLIED, now), now)
        incident.note(now, "action_applied", text, action_id=action.id)
        phase = (
            IncidentState.ISOLATED if action.kind.phase == "isolate" else IncidentState.MITIGATED
        )
        incident.advance_to(phase, now, why=text)
        self._emit(
            "action_applied",
            incident=incident.id,
            action=action.id,
            kind=action.kind.value,
            target=action.target,
        )

    def _verify(self, now: float) -> None:
        """Did each applied action help within its window? The answer goes on the timeline."""
        for action in list(self.actions.values()):
            if not action.is_active or action.verified is not None or action.applied_at is None:
                continue
            incident = self._incident(action.incident_id)
            # An SLO burn alert lags by design (its short window is minutes long): it says the
            # budget was spent, not that the trouble goes on, so it does not judge an action.
            firing = [a for a in incident.firing_alerts if a.kind is not AlertKind.SLO_BURN]
            if not firing:
                elapsed = now - action.applied_at
                self._set_action(replace(action, verified=True), now)
                incident.note(
                    now,
                    "verified",
                    f"{action.kind} on {action.target} helped: signals "
                    f"normal {elapsed:.0f}s after it was applied",
                    action_id=action.id,
                )
            elif now - action.applied_at >= action.verify_within_s:
                self._set_action(replace(action, verified=False), now)
                still = "; ".join(a.explanation for a in firing)
                incident.note(
                    now,
                    "not_helping",
                    f"{action.kind} on {action.target} did not help "
                    f"within {action.verify_within_s:.0f}s: {still}",
                    action_id=action.id,
                )

    def _recover(self, now: float) -> None:
        for incident in list(self.incidents.values()):
            if not incident.is_open:
                continue
            actions = self._actions_of(incident.id)
            steps = plan_recovery(
                actions,
                healthy_since=incident.healthy_since,
                now=now,
                config=self.config.recovery,
                flaps=incident.reopens,
            )
            for step in steps:
                if step.kind is StepKind.RESOLVE:
                    self._resolve(incident, now, "stanch", step.text)
                    continue
                action = self.actions[step.action_id]
                if step.kind is StepKind.EXPIRE:
                    self._set_action(action.to(ActionState.EXPIRED, now), now)
                elif step.kind is StepKind.LIFT:
                    self._set_action(action.to(ActionState.LIFTED, now), now)
                    self._emit("action_lifted", incident=incident.id, action=action.id)
                elif step.kind is StepKind.STAGE:
                    moved = (
                        action
                        if action.state is ActionState.LIFTING
                        else action.to(ActionState.LIFTING, now)
                    )
                    self._set_action(replace(moved, stage=step.stage, stage_at=now), now)
                else:  # relapse
                    self._set_action(
                        replace(action.to(ActionState.APPLIED, now), stage=0, stage_at=now), now
                    )
                incident.note(now, f"recovery_{step.kind}", step.text, action_id=action.id)
                self._dirty_policy.add(action.service)

    def _resolve(self, incident: Incident, now: float, actor: str, why: str) -> None:
        incident.transition(IncidentState.RESOLVED, now, actor, why)
        self._dirty_incidents.add(incident.id)
        pm = self.postmortem(incident.id)
        self.store.save_postmortem(incident.id, render_markdown(pm), pm.to_dict(), now)
        self._emit("incident_resolved", incident=incident.id)

    def _expire(self, now: float) -> None:
        for action in list(self.actions.values()):
            if (
                action.is_open
                and action.state is not ActionState.APPROVED
                and now >= action.expires_at()
            ):
                self._set_action(action.to(ActionState.EXPIRED, now), now)
                self._incident(action.incident_id).note(
                    now,
                    "action_expired",
                    f"{action.kind} on {action.target} expired after "
                    f"its TTL of {action.ttl_s:.0f}s",
                    action_id=action.id,
                )

    def _set_action(self, action: Action, now: float) -> Action:
        previous = self.actions.get(action.id)
        self.actions[action.id] = action
        self.store.save_action(action)
        if previous is None or previous.state != action.state:
            self._emit(
                "action_changed",
                action=action.id,
                incident=action.incident_id,
                kind=action.kind.value,
                target=action.target,
                before=previous.state.value if previous else None,
                after=action.state.value,
                actor=action.decided_by or "stanch",
                ts=now,
            )
        self._dirty_incidents.add(action.incident_id)
        if (
            previous is None
            or previous.is_active != action.is_active
            or (previous.stage != action.stage)
        ):
            self._dirty_policy.add(action.service)
        return action

    def _publish(self, now: float) -> None:
        for service in sorted(self._dirty_policy):
            old = self.policies.get(service)
            version = (old.version if old else 0) + 1
            policy = Policy.from_actions(service, version, self.actions.values())
            if old is not None and old.routes == policy.routes and old.clients == policy.clients:
                continue
            self.policies[service] = policy
            self._holder(service).publish(policy, now)
            self.store.save_policy(policy, now=now)
        self._dirty_policy.clear()
