"""The rollout actions, one function for the CLI and the canary_rollout DAG."""

from __future__ import annotations

from ragops.config import Settings
from ragops.rollout.machine import Rollout, RolloutError

ACTIONS = ("status", "gate", "start", "pause", "resume", "abort", "rollback")


def act(settings: Settings, action: str, *, actor: str, release: str | None = None, reason: str | None = None,
        probe_requests: int = 0, machine: Rollout | None = None) -> dict:
    """Run one action and return its decision (or the status). `gate` with probes tops up a canary short of evidence."""
    machine = machine or Rollout(settings)
    if action == "status":
        return machine.status()
    if action == "start":
        if not release:
            raise RolloutError("start needs the name of the candidate release (--release NAME)")
        return machine.start(release, actor).to_dict()
    if action in ("pause", "resume"):
        return getattr(machine, action)(actor).to_dict()
    if action in ("abort", "rollback"):
        return getattr(machine, action)(actor, reason or f"{action} requested by {actor}").to_dict()
    if action != "gate":
        raise RolloutError(f"unknown rollout action {action!r}; one of {', '.join(ACTIONS)}")
    decision = machine.step(actor=actor)
    if decision.decision == "hold" and probe_requests and decision.evidence.get("needs_traffic"):
        from ragops.rollout.probe import send_probes

        if settings.probe_api_key is None:  # without the probe credential, probes would count as real users
            raise RolloutError("probes need the probe key's secret in RAGOPS_PROBE_API_KEY (issue it with "
                               f"`ragops keys issue {settings.probe_key}`); the gate's decision is recorded")
        sent = send_probes(settings.public_url, decision.to_percent, probe_requests,
                           settings.probe_api_key.get_secret_value(), key=settings.probe_key)
        return decision.to_dict() | {"probes": sent}
    return decision.to_dict()
