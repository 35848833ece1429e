"""The rollout state the serving router follows, and the sticky user-to-variant assignment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ragops.registry import Registry
from ragops.registry.models import Release, RolloutState

DEFAULT_RELEASE = "live"  # follows the live index version with the default answer configuration


@dataclass(frozen=True)
class ReleaseInfo:
    id: int
    name: str
    index_version_id: int | None
    answer_config: dict


@dataclass(frozen=True)
class Rollout:
    stable: ReleaseInfo
    candidate: ReleaseInfo | None = None
    percent: float = 0.0
    status: str = "idle"

    def variant_for(self, user_key: str) -> tuple[str, ReleaseInfo]:
        """Stable hash of the user into 10,000 buckets: the same user always lands in the same variant."""
        if self.candidate is None or self.percent <= 0 or self.status not in ("running",):
            return "stable", self.stable
        if bucket(user_key) < self.percent * 100:
            return "canary", self.candidate
        return "stable", self.stable


def routing_key(identity: str, user_id: str | None = None) -> str:
    """The key a caller is routed by: its verified identity (`key:<name>`, `session:<id>` or
    `addr:<address>`), sub-keyed by the `user_id` it names only when the identity is an API key that fronts many users.
    Anyone else's `user_id` would let the caller pick its variant."""
    return f"{identity}\0{user_id}" if user_id and identity.startswith("key:") else identity


def bucket(user_key: str) -> int:
    return int.from_bytes(hashlib.sha256(user_key.encode()).digest()[:8], "big") % 10_000


def hash_user(user_key: str) -> str:
    return hashlib.sha256(f"ragops-user\0{user_key}".encode()).hexdigest()[:32]


def _info(release: Release) -> ReleaseInfo:
    return ReleaseInfo(release.id, release.name, release.index_version_id, dict(release.answer_config or {}))


def ensure_default_release(registry: Registry) -> ReleaseInfo:
    """Create the `live` release and a rollout row pointing at it when none exist yet.

    Serving replicas starting together on a fresh registry race to insert them; the loser reads the winner's rows."""
    try:
        return _ensure_default_release(registry)
    except IntegrityError:
        return _ensure_default_release(registry)


def _ensure_default_release(registry: Registry) -> ReleaseInfo:
    with registry.session() as s:
        release = s.scalars(select(Release).where(Release.name == DEFAULT_RELEASE)).first()
        if release is None:
            release = Release(name=DEFAULT_RELEASE, index_version_id=None, answer_config={}, created_by="ragops")
            s.add(release)
            s.flush()
        if s.get(RolloutState, 1) is None:
            s.add(RolloutState(id=1, stable_release_id=release.id, status="idle", updated_by="ragops"))
            s.flush()
        return _info(release)


def current_rollout(registry: Registry) -> Rollout:
    with registry.session() as s:
        state = s.get(RolloutState, 1)
        stable = s.get(Release, state.stable_release_id) if state and state.stable_release_id else None
        candidate = s.get(Release, state.candidate_release_id) if state and state.candidate_release_id else None
        if stable is None:
            stable = s.scalars(select(Release).where(Release.name == DEFAULT_RELEASE)).first()
        if stable is None:
            stable_info = ReleaseInfo(0, DEFAULT_RELEASE, None, {})
        else:
            stable_info = _info(stable)
        return Rollout(stable_info, _info(candidate) if candidate else None,
                       float(state.candidate_percent) if state else 0.0, state.status if state else "idle")
