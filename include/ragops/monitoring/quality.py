"""Live quality signals of the assistant's answers, per release and variant, against the accepted baseline.

Five signals, each reduced to a share of "bad" answers so that one test serves them all (docs/monitoring.md):
- `refusal_rate`: questions refused with `no_results` (abstention or a declining model) among those answered or
  refused (tool and model failures, 4xx, 429 and 5xx are other alerts' business);
- `evidence`: answered questions whose evidence (coverage + sim_weight x similarity, answer/abstention.py) is below
  the baseline's `quantile` (10% of baseline answers by construction), so a slide of the whole distribution shows;
- `similarity`: the same for the best dense similarity;
- `downvote_share`: down-votes among the questions (answered or refused) that got a vote;
- `citation_followed`: among answers whose client reported it, the share where no citation was opened (the signal
  shows the followed share; the test watches its decline).

The test is the canary gate's (monitoring/sequential.py): `compare_rates` with each user one cluster, so one heavy
user can neither raise nor hide a shift, and the always-valid mSPRT boundary at `alpha` split over the signals. It
is one-sided: only a decline alarms. Synthetic (probe) traffic never counts.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from ragops.monitoring.sequential import Counts, compare_rates
from ragops.registry import Registry
from ragops.registry.models import Feedback, Release, RequestEvent

log = logging.getLogger(__name__)
SIGNALS = ("refusal_rate", "evidence", "similarity", "downvote_share", "citation_followed")
REFUSED = "no_results"  # answer/fallbacks.py: "No matching information was found in the knowledge base"
SIM_WEIGHT = 2.0  # AbstentionPolicy's default (answer/abstention.py); a release's `abstain_sim_weight` overrides it
LIVE = "live"  # the name events without a release id are shown under (the default release follows the live index)


@dataclass(frozen=True)
class QualityPolicy:
    alpha: float = 0.01
    tau: float = 0.05
    quantile: float = 0.10
    min_users: int = 20
    user_answers_per_day: float | None = 20.0  # a user counts as at most this many answers a day of a window

    @classmethod
    def from_settings(cls, settings) -> QualityPolicy:
        return cls(settings.quality_alpha, settings.quality_tau, settings.quality_score_quantile,
                   settings.quality_min_users, settings.quality_user_answers_per_day)

    def cap(self, hours: float | None) -> float | None:
        """The most answers one user counts as in a window of `hours` (None: no cap)."""
        if self.user_answers_per_day is None or hours is None:
            return None
        return max(1.0, self.user_answers_per_day * hours / 24)


@dataclass(frozen=True)
class Answer:
    """One question the assistant answered or refused, with the vote it got (if any)."""

    ts: datetime
    release: str
    variant: str
    user: str
    refused: bool
    evidence: float | None
    similarity: float | None
    vote: str | None = None  # up | down
    followed: bool | None = None  # the client reported whether a citation was opened


@dataclass
class SignalResult:
    signal: str
    release: str
    variant: str
    current: float | None  # the signal's value now: a share (citation_followed: followed; scores: below threshold)
    baseline: float | None
    difference: float  # the decline, in share points (current bad share - baseline bad share)
    at_least: float | None  # always-valid lower bound of the decline; > 0: the test crossed its boundary
    requests: int
    users: int
    baseline_requests: int
    baseline_users: int
    threshold: float | None  # evidence and similarity: the baseline's quantile
    verdict: str  # shifted | steady | too_little

    @property
    def crossed(self) -> bool:
        return self.verdict == "shifted"


def load_answers(registry: Registry, start: datetime, end: datetime, endpoints: list[str],
                 variant: str | None = None, limit: int | None = None) -> list[Answer]:
    """Real users' answered or refused questions served in [start, end), with their votes.

    `limit`: when more were served, every k-th event by registry id (the order the registry stored them in, which
    no caller chooses), so memory and time stay bounded on a large `request_events` table."""
    query = (select(RequestEvent.ts, RequestEvent.release_id, RequestEvent.variant, RequestEvent.user_hash,
                    RequestEvent.fallback, RequestEvent.coverage, RequestEvent.similarity, Feedback.rating,
                    Feedback.cited_followed, RequestEvent.request_id)
             # the vote's own caller: request ids are client-chosen, so another caller may have used the same one
             .outerjoin(Feedback, (Feedback.request_id == RequestEvent.request_id)
                        & (Feedback.user_hash == RequestEvent.user_hash))
             .where(RequestEvent.ts >= start, RequestEvent.ts < end, RequestEvent.endpoint.in_(endpoints),
                    RequestEvent.synthetic.is_(False), RequestEvent.status == 200,
                    (RequestEvent.fallback.is_(None)) | (RequestEvent.fallback == REFUSED)))
    if variant:
        query = query.where(RequestEvent.variant == variant)
    with registry.session() as s:
        if limit is not None:
            served = s.execute(select(func.count()).select_from(query.subquery())).scalar() or 0
            if served > limit:
                every = math.ceil(served / limit)
                log.info("quality: %d answers in [%s, %s); reading every %d-th", served, start, end, every)
                query = query.where(RequestEvent.id % every == 0)
        rows = s.execute(query).all()
        releases = {r.id: (r.name, (r.answer_config or {}).get("abstain_sim_weight", SIM_WEIGHT))
                    for r in s.execute(select(Release)).scalars()}
    out, voted = [], set()
    for ts, release_id, var, user, fallback, coverage, similarity, rating, followed, request_id in rows:
        if rating is not None or followed is not None:  # a caller's retries share their id: its vote counts once
            if (request_id, user) in voted:
                rating = followed = None
            voted.add((request_id, user))
        name, weight = releases.get(release_id, (LIVE if release_id is None else str(release_id), SIM_WEIGHT))
        score = coverage + weight * similarity if coverage is not None and similarity is not None else None
        out.append(Answer(ts, name, var, user, fallback == REFUSED, score, similarity, rating, followed))
    return out


def baseline_release(current: list[Answer]) -> str | None:
    """The accepted release: the one that served most of the window's stable answers."""
    stable = Counter(a.release for a in current if a.variant == "stable")
    return stable.most_common(1)[0][0] if stable else None


def first_served(registry: Registry, release: str, endpoints: list[str]) -> datetime | None:
    """When `release` first answered a real user as stable: the start of its accepted baseline."""
    with registry.session() as s:
        release_id = s.execute(select(Release.id).where(Release.name == release)).scalar()
        if release_id is None and release != LIVE:
            return None
        match = RequestEvent.release_id.is_(None) if release_id is None else RequestEvent.release_id == release_id
        return s.execute(select(func.min(RequestEvent.ts)).where(
            match, RequestEvent.variant == "stable", RequestEvent.synthetic.is_(False),
            RequestEvent.endpoint.in_(endpoints))).scalar()


def thresholds(baseline: list[Answer], quantile: float) -> dict[str, float | None]:
    """The baseline's `quantile` of evidence and of similarity over answered questions (None when none were)."""
    out = {}
    for name in ("evidence", "similarity"):
        values = [getattr(a, name) for a in baseline if not a.refused and getattr(a, name) is not None]
        out[name] = float(np.quantile(values, quantile)) if values else None
    return out


def _flags(signal: str, answers: list[Answer], limits: dict) -> tuple[list[str], np.ndarray]:
    """(users, bad flags) of the answers the signal is measured on."""
    if signal == "refusal_rate":
        kept = [(a.user, a.refused) for a in answers]
    elif signal in ("evidence", "similarity"):
        limit = limits.get(signal)
        kept = [] if limit is None else [(a.user, getattr(a, signal) < limit) for a in answers
                                         if not a.refused and getattr(a, signal) is not None]
    elif signal == "downvote_share":
        kept = [(a.user, a.vote == "down") for a in answers if a.vote in ("up", "down")]
    else:
        kept = [(a.user, not a.followed) for a in answers if a.followed is not None and not a.refused]
    return [u for u, _ in kept], np.array([b for _, b in kept], dtype=bool)


def _counts(users: list[str], bad: np.ndarray, cap: float | None = None) -> Counts:
    codes = np.unique(np.array(users, dtype=object).astype(str), return_inverse=True)[1] if users else np.zeros(0, int)
    return Counts.of(codes, bad, cap)


def compare(baseline: list[Answer], current: list[Answer], policy: QualityPolicy, *,
            baseline_hours: float | None = None, current_hours: float | None = None) -> list[SignalResult]:
    """Every signal of every (release, variant) in `current` against `baseline`, oldest group names first.

    With the windows' lengths, each user counts as at most `policy.cap(hours)` answers of a window (at their own bad
    share): one address flooding refusals cannot page anyone, nor can one user's many good answers hide a decline."""
    base_cap, now_cap = policy.cap(baseline_hours), policy.cap(current_hours)
    limits = thresholds(baseline, policy.quantile)
    groups: dict[tuple[str, str], list[Answer]] = {}
    for a in current:
        groups.setdefault((a.release, a.variant), []).append(a)
    alpha = policy.alpha / len(SIGNALS)
    results = []
    for (release, variant), answers in sorted(groups.items()):
        for signal in SIGNALS:
            base_flags, now_flags = _flags(signal, baseline, limits), _flags(signal, answers, limits)
            base, now = _counts(*base_flags, base_cap), _counts(*now_flags, now_cap)
            c = compare_rates(signal, [(now, base)], allowed=policy.tau, alpha_rollback=alpha,
                              alpha_promote=policy.alpha, tau=policy.tau)
            enough = min(now.users, base.users) >= policy.min_users
            verdict = "too_little" if not enough else "shifted" if c.verdict == "worse" else "steady"
            flip = signal == "citation_followed"  # shown as the followed share

            def shown(counts: Counts) -> float | None:
                return None if not counts.requests else round(1 - counts.rate if flip else counts.rate, 5)

            results.append(SignalResult(
                signal, release, variant, shown(now), shown(base), round(now.rate - base.rate, 5),
                round(c.at_least, 5) if math.isfinite(c.at_least) else None, len(now_flags[0]), now.users,
                len(base_flags[0]), base.users, limits.get(signal), verdict))
    return results
