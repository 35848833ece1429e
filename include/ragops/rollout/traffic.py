"""Low traffic, handled openly: a gate that holds for want of users must say whether it can ever stop holding.

From a quarter of the stage's horizon on, the real canary users and requests seen so far are projected to the
horizon (a linear projection of the canary's arrival rate since the rollout began). When the gate's minimum cannot
be reached in time, the policy of docs/releases.md applies, in this order:

1. `raise_share`: the canary's share rises to `RAGOPS_ROLLOUT_LOW_TRAFFIC_MAX_PERCENT` (25%), never beyond the next
   stage, before the stage's normal step; the stage's clock (horizon and bake time) starts again at the new share;
2. `extend_horizon`: at that bound, the gate holds while the minimum is reachable within the horizon stretched by
   `RAGOPS_ROLLOUT_LOW_TRAFFIC_EXTENSION` (2x);
3. `ask_a_person`: otherwise it holds with "needs a person" and never promotes on thin evidence.

Slow evidence is the same problem one step later: the minimum is met, nothing is worse, but some metric is still
unsure after a quarter of the horizon at this share (a regression confined to a few light users, users who each have
their own speed). At 10% there are only so many canary users, and waiting adds requests from the same users, not new
users; a larger share does. So the share is raised the same way, to the same bound (`short` is "evidence" rather
than "users"); a stage still unsure at the bound (or above it) when its horizon ends extends it, and past that asks a
person. A harmful candidate is then
rolled back within hours at 25% instead of held for days at 10%: fewer users see it, not more.

Every such decision carries `evidence["low_traffic"]`, which the RAG Ops page, the Slack message and the gauge
`ragops_rollout_low_traffic` show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from ragops.registry import Registry
from ragops.registry.models import Release, RolloutDecision, RolloutState

ACTIONS = ("raise_share", "extend_horizon", "ask_a_person")


@dataclass(frozen=True)
class TrafficPolicy:
    horizon_hours: float = 24.0  # a stage is expected to gather its minimum within this
    max_percent: float = 25.0  # the share may rise to this for want of users (at most the next stage's share)
    extension: float = 2.0  # ... and then the horizon may stretch by this factor

    @classmethod
    def from_settings(cls, settings) -> TrafficPolicy:
        return cls(settings.rollout_stage_horizon_hours, settings.rollout_low_traffic_max_percent,
                   settings.rollout_low_traffic_extension)


@dataclass(frozen=True)
class Seen:
    """What the gate has counted so far (real canary users and requests, probes excluded) and what it needs."""

    users: int
    requests: int
    min_users: int
    min_requests: int

    def short(self) -> bool:
        return self.users < self.min_users or self.requests < self.min_requests


def low_traffic(seen: Seen, percent: float, ceiling: float, rollout_started: datetime, stage_started: datetime,
                now: datetime, policy: TrafficPolicy, unsure: tuple[str, ...] = ()) -> dict | None:
    """None while the minimum is on course within the horizon, or met with nothing `unsure` (or not for long); else
    the facts and the action.

    `ceiling` is the highest share a raise may reach (the next stage's). A rate needs time to be measured (a quiet
    night is not a quiet service), so nothing is judged before a quarter of the stage's horizon has passed.
    `unsure`: the metrics that hold the gate (none worse); with the minimum met they are slow evidence."""
    elapsed = (now - rollout_started).total_seconds()
    if now - stage_started < timedelta(hours=policy.horizon_hours / 4):
        return None
    if not seen.short():
        return _slow_evidence(seen, percent, ceiling, stage_started, now, policy, unsure) if unsure else None

    def projected(hours: float) -> tuple[float, float]:
        left = max((stage_started + timedelta(hours=hours) - now).total_seconds(), 0.0)
        return seen.users * (1 + left / elapsed), seen.requests * (1 + left / elapsed)

    def reached(users: float, requests: float) -> bool:
        return users >= seen.min_users and requests >= seen.min_requests

    users, requests = projected(policy.horizon_hours)
    if reached(users, requests):
        return None
    facts = {"short": "users", "users": seen.users, "requests": seen.requests, "min_users": seen.min_users,
             "min_requests": seen.min_requests, "percent": percent,
             "horizon": (stage_started + timedelta(hours=policy.horizon_hours)).isoformat(),
             "projected_users": round(users, 1), "projected_requests": round(requests, 1)}
    raised = min(policy.max_percent, ceiling)
    if raised > percent:
        return facts | {"action": "raise_share", "to_percent": raised}
    stretched = policy.horizon_hours * policy.extension
    users, requests = projected(stretched)
    if policy.extension > 1 and reached(users, requests):
        return facts | {"action": "extend_horizon",
                        "extended_horizon": (stage_started + timedelta(hours=stretched)).isoformat(),
                        "extended_projected_users": round(users, 1)}
    return facts | {"action": "ask_a_person"}


def _slow_evidence(seen: Seen, percent: float, ceiling: float, stage_started: datetime, now: datetime,
                   policy: TrafficPolicy, unsure: tuple[str, ...]) -> dict | None:
    """Raise the share while the bound allows; at the bound, hold until the horizon, then say that it is extended
    (by `extension`: evidence that is slow is still evidence), and past that, ask a person."""
    horizon = stage_started + timedelta(hours=policy.horizon_hours)
    facts = {"short": "evidence", "unsure": list(unsure), "users": seen.users, "requests": seen.requests,
             "min_users": seen.min_users, "min_requests": seen.min_requests, "percent": percent,
             "held_hours": round((now - stage_started).total_seconds() / 3600, 2), "horizon": horizon.isoformat(),
             "projected_users": seen.users, "projected_requests": seen.requests}
    raised = min(policy.max_percent, ceiling)
    if raised > percent:
        return facts | {"action": "raise_share", "to_percent": raised}
    if now < horizon:
        return None
    extended = stage_started + timedelta(hours=policy.horizon_hours * policy.extension)
    if now < extended:
        return facts | {"action": "extend_horizon", "extended_horizon": extended.isoformat(),
                        "extended_projected_users": seen.users}
    return facts | {"action": "ask_a_person"}


def describe(low: dict) -> str:
    """The decision's reason, in words an on-call engineer can act on."""
    if low.get("short") == "evidence":
        head = (f"slow evidence: {low['held_hours']:g} hours at {low['percent']:g}% with {low['users']} real canary "
                f"users, and still unsure: {', '.join(m.replace('_', ' ') for m in low['unsure'])}")
        if low["action"] == "raise_share":
            return (f"{head}; nothing is worse, and more users, not more time, tell faster: the canary's share rises "
                    f"to {low['to_percent']:g}% before the stage's normal step")
        if low["action"] == "extend_horizon":
            return (f"{head}, with no higher share to raise to and past the horizon ({low['horizon'][:16]}): the "
                    f"horizon extends to {low['extended_horizon'][:16]}; holding")
        return (f"{head}, with no higher share to raise to and past the extended horizon: needs a person. The gate "
                "will not promote on this evidence; it keeps watching. Abort, roll back, or wait")
    head = (f"low traffic: {low['users']} real canary users and {low['requests']} requests so far at "
            f"{low['percent']:g}%, about {low['projected_users']:g} users and {low['projected_requests']:g} requests "
            f"projected by {low['horizon'][:16]}, where {low['min_users']} and {low['min_requests']} are needed")
    if low["action"] == "raise_share":
        return f"{head}: the canary's share rises to {low['to_percent']:g}% before the stage's normal step"
    if low["action"] == "extend_horizon":
        return (f"{head}: the horizon extends to {low['extended_horizon'][:16]}, by when about "
                f"{low['extended_projected_users']:g} users are projected; holding")
    return (f"{head} even at the raised share and the extended horizon: needs a person. The gate will not promote "
            "on this evidence; abort, roll back, or lower RAGOPS_ROLLOUT_MIN_USERS / RAGOPS_ROLLOUT_MIN_REQUESTS")


def current_low_traffic(registry: Registry) -> dict | None:
    """The running (or paused) rollout's newest gate decision's low-traffic evidence, with the candidate's name."""
    with registry.session() as s:
        state = s.get(RolloutState, 1)
        if state is None or state.candidate_release_id is None or state.status not in ("running", "paused"):
            return None
        latest = s.scalars(select(RolloutDecision).where(RolloutDecision.candidate_release_id
                                                         == state.candidate_release_id)
                           .order_by(RolloutDecision.id.desc()).limit(1)).first()
        low = (latest.evidence or {}).get("low_traffic") if latest else None
        return low and low | {"release": s.get(Release, state.candidate_release_id).name}
