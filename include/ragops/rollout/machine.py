"""The staged rollout: start -> (gate: promote | hold | rollback)* -> stable at 100%; manual pause/resume/abort/rollback.

Every decision is recorded in rollout_decisions with its evidence and posted to Slack. The serving router reads
the rollout_state row, so it follows each decision within its refresh interval (5 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.monitoring.aggregate import load_events
from ragops.notify import build_notifier
from ragops.notify.blocks import rollout_decision
from ragops.registry import Registry
from ragops.registry.models import EvalRun, Release, RolloutDecision, RolloutState
from ragops.releases import ensure_default_release, find_release
from ragops.rollout.gate import GatePolicy, analyze
from ragops.rollout.releases import adopt_collection


class RolloutError(RagopsError):
    code = "rollout_error"


@dataclass
class Decision:
    decision: str
    from_percent: float
    to_percent: float
    reason: str
    evidence: dict
    candidate: str | None

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=timezone.utc) if moment is not None and moment.tzinfo is None else moment


class Rollout:
    def __init__(self, settings: Settings, registry: Registry | None = None, notifier=None):
        self.settings = settings
        self.registry = registry or Registry(settings.registry_url)
        self.notifier = notifier
        self.stages = [float(p) for p in settings.rollout_stages]
        ensure_default_release(self.registry)

    # -- reading ------------------------------------------------------------------------------------
    def status(self) -> dict:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            names = {r.id: r.name for r in s.scalars(select(Release))}
            recent = s.scalars(select(RolloutDecision).order_by(RolloutDecision.id.desc()).limit(5)).all()
            return {"status": state.status, "stable": names.get(state.stable_release_id),
                    "candidate": names.get(state.candidate_release_id), "percent": state.candidate_percent,
                    "stage": state.stage, "stages": self.stages,
                    "stage_started_at": state.stage_started_at.isoformat() if state.stage_started_at else None,
                    "decisions": [{"ts": d.ts.isoformat(), "decision": d.decision, "to_percent": d.to_percent,
                                   "reason": d.reason, "actor": d.actor} for d in recent]}

    # -- manual actions -----------------------------------------------------------------------------
    def start(self, release_name: str, actor: str) -> Decision:
        release = find_release(self.registry, release_name)
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            if state.status in ("running", "paused") and state.candidate_release_id:
                raise RolloutError("a rollout is already in progress; finish, abort or roll it back first")
            if release.id == state.stable_release_id:
                raise RolloutError(f"{release_name} is already the stable release")
            state.candidate_release_id, state.candidate_percent, state.stage = release.id, self.stages[0], 0
            state.status, state.stage_started_at, state.updated_by, state.updated_at = "running", _now(), actor, _now()
        return self._record("start", 0.0, self.stages[0], f"canary of {release_name} started at {self.stages[0]:g}%",
                            {}, actor)

    def pause(self, actor: str) -> Decision:
        return self._set_status("paused", "pause", actor, expect=("running",))

    def resume(self, actor: str) -> Decision:
        return self._set_status("running", "resume", actor, expect=("paused",), restart_window=True)

    def abort(self, actor: str, reason: str = "aborted by an operator") -> Decision:
        return self._rollback(actor, reason, decision="abort")

    def rollback(self, actor: str, reason: str = "rolled back by an operator") -> Decision:
        """At any stage: the canary goes to 0%. After a completed rollout: the previous stable comes back."""
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            completed = state.status == "promoted" and state.previous_stable_release_id
        if completed:
            return self._undo_promotion(actor, reason)
        return self._rollback(actor, reason)

    # -- the gate -----------------------------------------------------------------------------------
    def step(self, now: datetime | None = None, actor: str = "gate") -> Decision:
        """Evaluate the current stage: promote to the next one, hold, or roll back."""
        now = now or _now()
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            if state.status != "running" or not state.candidate_release_id:
                return Decision("noop", state.candidate_percent, state.candidate_percent,
                                f"no running rollout (status {state.status})", {}, None)
            started, percent, stage = _aware(state.stage_started_at), state.candidate_percent, state.stage
            candidate = s.get(Release, state.candidate_release_id)
            evaluation = s.scalars(select(EvalRun).where(EvalRun.release == candidate.name)
                                   .order_by(EvalRun.id.desc()).limit(1)).first()
            evaluation = {"run_id": evaluation.id, "regressed": evaluation.status == "regressed",
                          "metrics": evaluation.metrics} if evaluation else None
        events = load_events(self.registry, started, now + timedelta(seconds=1))
        verdict, reasons, evidence = analyze([e for e in events if e["variant"] == "stable"],
                                             [e for e in events if e["variant"] == "canary"], evaluation,
                                             GatePolicy(min_requests=self.settings.rollout_min_requests))
        window = timedelta(minutes=self.settings.rollout_min_window_minutes)
        evidence["window"] = {"started": started.isoformat(), "now": now.isoformat(), "minimum_minutes": window.total_seconds() / 60}
        if verdict == "promote" and now - started < window:
            verdict, reasons = "hold", [f"the observation window of {window} has not passed (started {started:%H:%M})"]
        if verdict == "rollback":
            return self._rollback(actor, "; ".join(reasons), evidence=evidence)
        if verdict == "hold":
            return self._record("hold", percent, percent, "; ".join(reasons), evidence, actor)
        if stage + 1 < len(self.stages):
            nxt = self.stages[stage + 1]
            with self.registry.session() as s:
                state = s.get(RolloutState, 1)
                state.stage, state.candidate_percent, state.stage_started_at = stage + 1, nxt, now
                state.updated_by, state.updated_at = actor, _now()
            if nxt < 100:
                return self._record("promote", percent, nxt, "; ".join(reasons), evidence, actor)
        return self._complete(percent, "; ".join(reasons), evidence, actor)

    # -- transitions --------------------------------------------------------------------------------
    def _complete(self, percent: float, reason: str, evidence: dict, actor: str) -> Decision:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            candidate = s.get(Release, state.candidate_release_id)
            version = candidate.index_version_id
        if version is not None:
            adopt_collection(self.settings, self.registry, version)  # refreshes now keep the new collection fresh
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            state.previous_stable_release_id, state.stable_release_id = state.stable_release_id, state.candidate_release_id
            state.candidate_release_id, state.candidate_percent, state.status = None, 0.0, "promoted"
            state.updated_by, state.updated_at = actor, _now()
        return self._record("complete", percent, 100.0, f"{candidate.name} is the stable release now; {reason}",
                            evidence, actor, candidate=candidate.name)

    def _rollback(self, actor: str, reason: str, *, evidence: dict | None = None, decision: str = "rollback") -> Decision:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            if not state.candidate_release_id:
                raise RolloutError("there is no candidate to roll back")
            candidate = s.get(Release, state.candidate_release_id).name
            percent = state.candidate_percent
            state.candidate_percent, state.status, state.updated_by, state.updated_at = 0.0, "rolled_back", actor, _now()
        return self._record(decision, percent, 0.0, reason, evidence or {}, actor, candidate=candidate)

    def _undo_promotion(self, actor: str, reason: str) -> Decision:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            back = s.get(Release, state.previous_stable_release_id)
            undone = s.get(Release, state.stable_release_id).name
        if back.index_version_id:
            adopt_collection(self.settings, self.registry, back.index_version_id)
        else:
            self._adopt_live_release()
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            state.stable_release_id, state.previous_stable_release_id = back.id, None
            state.status, state.updated_by, state.updated_at = "rolled_back", actor, _now()
        return self._record("rollback", 100.0, 0.0, f"{back.name} is stable again instead of {undone}: {reason}", {},
                            actor, candidate=undone)

    def _adopt_live_release(self) -> None:
        """The `live` release follows whatever is live; the collection before the promotion is the newest retired."""
        from ragops.registry.models import IndexVersion

        with self.registry.session() as s:
            live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live")).first()
            previous = s.scalars(select(IndexVersion).where(IndexVersion.status == "retired",
                                                            IndexVersion.collection != (live.collection if live else ""))
                                 .order_by(IndexVersion.id.desc())).first()
        if previous is not None:
            adopt_collection(self.settings, self.registry, previous.id)

    def _set_status(self, status: str, decision: str, actor: str, expect: tuple, restart_window: bool = False) -> Decision:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            if state.status not in expect:
                raise RolloutError(f"cannot {decision}: the rollout is {state.status}")
            state.status, state.updated_by, state.updated_at = status, actor, _now()
            if restart_window:
                state.stage_started_at = _now()  # evidence from before the pause does not count twice
            percent = state.candidate_percent
        return self._record(decision, percent, percent, f"{decision} by {actor}", {}, actor)

    def _record(self, decision: str, from_pct: float, to_pct: float, reason: str, evidence: dict, actor: str,
                candidate: str | None = None) -> Decision:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            release_id = state.candidate_release_id or state.stable_release_id
            name = candidate or (s.get(Release, release_id).name if release_id else None)
            s.add(RolloutDecision(candidate_release_id=state.candidate_release_id, decision=decision, from_percent=from_pct,
                                  to_percent=to_pct, reason=reason, evidence=_jsonable(evidence), actor=actor))
        result = Decision(decision, from_pct, to_pct, reason, _jsonable(evidence), name)
        (self.notifier or build_notifier(self.settings)).send(rollout_decision(result.to_dict()))
        return result


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def act(settings: Settings, action: str, *, release: str | None = None, actor: str = "gate",
        probe_requests: int = 0, reason: str | None = None) -> dict:
    """One rollout action (the canary_rollout DAG's single call). `gate` with probes tops up a quiet canary."""
    machine = Rollout(settings)
    if action == "start":
        if not release:
            raise RolloutError("start needs the name of the candidate release")
        return machine.start(release, actor).to_dict()
    if action in ("pause", "resume"):
        return getattr(machine, action)(actor).to_dict()
    if action in ("abort", "rollback"):
        return getattr(machine, action)(actor, reason or f"{action} requested by {actor}").to_dict()
    if action != "gate":
        raise RolloutError(f"unknown rollout action {action!r}")
    decision = machine.step(actor=actor)
    if decision.decision == "hold" and probe_requests and "canary requests" in decision.reason:
        from ragops.rollout.probe import send_probes

        key = settings.api_key.get_secret_value() if settings.api_key else None
        sent = send_probes(settings.public_url, decision.to_percent, probe_requests, api_key=key)
        return decision.to_dict() | {"probes": sent}
    return decision.to_dict()
