"""The staged rollout: start -> (gate: promote | hold | rollback)* -> stable at 100%; manual pause/resume/abort/rollback.

Every decision is recorded in rollout_decisions with its evidence and posted to Slack. The serving router reads
the rollout_state row, so it follows each decision within its refresh interval (5 s). The gate reads every request
since the rollout started (a canary user stays in the canary from stage to stage), each labelled with the stage it
was served in, read from the promotions in rollout_decisions, and compares stage by stage; each stage must also last at
least `RAGOPS_ROLLOUT_MIN_WINDOW_MINUTES` (its bake time). A stage that cannot gather the gate's minimum of users in
time raises the canary's share (a new stratum, like a promotion), extends its horizon or asks a person
(rollout/traffic.py), and says so. Promotion and a rollback after it move the live pointer between collections
(ingest/collections.py), which re-reads only the documents that changed meanwhile.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.evaluation.testset import current_testset_hash
from ragops.ingest.collections import switch_live
from ragops.notify import build_notifier
from ragops.notify.blocks import rollout_decision
from ragops.registry import Registry
from ragops.registry.models import EvalRun, IndexVersion, Release, RequestEvent, RolloutDecision, RolloutState
from ragops.releases import ensure_default_release, find_release
from ragops.rollout.gate import GatePolicy, analyze, samples_from_events
from ragops.rollout.traffic import Seen, TrafficPolicy, describe, low_traffic


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
    def __init__(self, settings: Settings, registry: Registry | None = None, notifier=None, embedder=None):
        self.settings = settings
        self.registry = registry or Registry(settings.registry_url)
        self.notifier = notifier
        self.embedder = embedder  # reused by the catch-up refresh of a collection switch, when its model matches
        self.stages = [float(p) for p in settings.rollout_stages]
        self.policy = GatePolicy.from_settings(settings)
        self.traffic = TrafficPolicy.from_settings(settings)
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
            state.started_at = state.stage_started_at
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
        """Evaluate the current stage on all the evidence since the rollout began: promote, hold, or roll back."""
        now = now or _now()
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            if state.status != "running" or not state.candidate_release_id:
                return Decision("noop", state.candidate_percent, state.candidate_percent,
                                f"no running rollout (status {state.status})", {}, None)
            started, percent, stage = _aware(state.stage_started_at), state.candidate_percent, state.stage
            since = _aware(state.started_at) or started
            candidate = s.get(Release, state.candidate_release_id)
            run = s.scalars(select(EvalRun).where(EvalRun.release == candidate.name,  # on the current test set
                                                  EvalRun.testset_hash == current_testset_hash(self.settings))
                            .order_by(EvalRun.id.desc()).limit(1)).first()
            evaluation = {"run_id": run.id, "regressed": run.status == "regressed",
                          "baseline_run_id": (run.comparison or {}).get("baseline_run_id")} if run else None
        stable, canary = samples_from_events(self._events(since, now + timedelta(seconds=1)),
                                             self.settings.rollout_anonymous, self.settings.rollout_anonymous_cap)
        analysis = analyze(stable, canary, evaluation, self.policy)
        verdict, reasons, evidence = analysis.verdict, analysis.reasons, analysis.evidence
        window = timedelta(minutes=self.settings.rollout_min_window_minutes)
        evidence["window"] = {"rollout_started": since.isoformat(), "stage_started": started.isoformat(),
                              "now": now.isoformat(), "minimum_minutes": window.total_seconds() / 60}
        if verdict == "promote" and now - started < window:
            verdict, reasons = "hold", reasons + [f"the stage's bake time of {window} has not passed (since {started:%H:%M})"]
        if verdict == "rollback":
            return self._rollback(actor, "; ".join(reasons), evidence=evidence)
        low = None
        if verdict == "hold":
            counted = evidence["counted"]
            seen = Seen(counted["users"], counted["requests"], self.policy.min_users, self.policy.min_requests)
            ceiling = self.stages[stage + 1] if stage + 1 < len(self.stages) else percent
            # slow evidence raises the share only for a candidate whose evaluation passed: more users are exposed
            unsure = analysis.unsure() if evaluation is not None else ()
            low = low_traffic(seen, percent, ceiling, since, started, now, self.traffic, unsure)
        evidence["low_traffic"] = low
        if low and low["action"] == "raise_share":
            return self._raise_share(percent, low, evidence, actor, now)
        if low:
            reasons = reasons + [describe(low)]
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
    def _raise_share(self, percent: float, low: dict, evidence: dict, actor: str, now: datetime) -> Decision:
        """A larger share within the same stage: a new stratum for the gate, and the stage's clock starts again."""
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            state.candidate_percent, state.stage_started_at = low["to_percent"], now
            state.updated_by, state.updated_at = actor, _now()
        return self._record("raise", percent, low["to_percent"], describe(low), evidence, actor)

    def _complete(self, percent: float, reason: str, evidence: dict, actor: str) -> Decision:
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            candidate = s.get(Release, state.candidate_release_id)
            version = candidate.index_version_id
        if version is not None:  # refreshes now keep the new collection fresh; the old one keeps its manifest
            evidence = evidence | {"switch": switch_live(self.settings, self.registry, version, embedder=self.embedder)}
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
        target = back.index_version_id or self._previous_live_version()
        switch = switch_live(self.settings, self.registry, target, embedder=self.embedder) if target else None
        with self.registry.session() as s:
            state = s.get(RolloutState, 1)
            state.stable_release_id, state.previous_stable_release_id = back.id, None
            state.status, state.updated_by, state.updated_at = "rolled_back", actor, _now()
        caught_up = ""
        if switch and switch.get("caught_up"):
            d = switch["caught_up"]
            caught_up = (f" (collection {switch['collection']} caught up in {switch['duration_s']} s: {d['added']} added, "
                         f"{d['changed']} changed, {d['deleted']} deleted, {d['unchanged']} unchanged)")
        elif switch and switch.get("catch_up_error"):
            caught_up = f" (the catch-up refresh failed and will be retried by the next refresh: {switch['catch_up_error']})"
        return self._record("rollback", 100.0, 0.0, f"{back.name} is stable again instead of {undone}: {reason}"
                            + caught_up, {"switch": switch} if switch else {}, actor, candidate=undone)

    def _previous_live_version(self) -> int | None:
        """The `live` release follows whatever is live; the collection before the promotion is the newest retired."""
        with self.registry.session() as s:
            live = s.scalars(select(IndexVersion).where(IndexVersion.status == "live")).first()
            previous = s.scalars(select(IndexVersion).where(IndexVersion.status == "retired",
                                                            IndexVersion.collection != (live.collection if live else ""))
                                 .order_by(IndexVersion.id.desc())).first()
            return previous.id if previous else None

    def _events(self, start: datetime, end: datetime) -> list[dict]:
        """Request events, oldest first, with `stratum`: the share in force when each was served (the gate compares
        within strata)."""
        columns = (RequestEvent.variant, RequestEvent.user_hash, RequestEvent.status, RequestEvent.fallback,
                   RequestEvent.latency_ms, RequestEvent.synthetic, RequestEvent.verified, RequestEvent.ts)
        with self.registry.session() as s:
            rows = s.execute(select(*columns).where(RequestEvent.ts >= start, RequestEvent.ts < end,
                                                    RequestEvent.variant.in_(("stable", "canary")))
                             .order_by(RequestEvent.ts, RequestEvent.id)).all()
            changes = s.scalars(select(RolloutDecision.ts).where(RolloutDecision.ts >= start, RolloutDecision.ts < end,
                                                                 RolloutDecision.decision.in_(("promote", "raise")))
                                .order_by(RolloutDecision.ts)).all()
        changes = [_aware(t) for t in changes]
        names = ("variant", "user_hash", "status", "fallback", "latency_ms", "synthetic", "verified")
        return [dict(zip(names, r[:7]), stratum=bisect_right(changes, _aware(r[7]))) for r in rows]

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
