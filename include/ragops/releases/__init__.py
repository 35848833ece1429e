"""Release state, below answer and evaluation: the release records, the current rollout and the sticky user hash."""

from ragops.releases.records import VIEWS, ReleaseError, create_release, find_release, release_for_view
from ragops.releases.state import (DEFAULT_RELEASE, ReleaseInfo, Rollout, bucket, current_rollout,
                                   ensure_default_release, hash_user, routing_key)

__all__ = ["DEFAULT_RELEASE", "VIEWS", "ReleaseError", "ReleaseInfo", "Rollout", "bucket", "create_release", "current_rollout",
           "ensure_default_release", "find_release", "hash_user", "release_for_view", "routing_key"]
