"""Release records: an index version plus an answer configuration, created once and found by name."""

from __future__ import annotations

from sqlalchemy import select

from ragops.errors import RagopsError
from ragops.registry import Registry
from ragops.registry.models import IndexVersion, Release
from ragops.releases.state import ReleaseInfo, _info


class ReleaseError(RagopsError):
    code = "release_error"


def create_release(registry: Registry, name: str, index_version_id: int | None, answer_config: dict | None,
                   created_by: str) -> ReleaseInfo:
    with registry.session() as s:
        if s.scalars(select(Release).where(Release.name == name)).first():
            raise ReleaseError(f"a release named {name!r} exists already")
        # locked: retention marks a version pruned before deleting it (ingest/retention.py), never under a new release
        version = s.get(IndexVersion, index_version_id, with_for_update=True) if index_version_id is not None else None
        if index_version_id is not None and version is None:
            raise ReleaseError(f"index version {index_version_id} does not exist")
        if version is not None and version.status == "pruned":
            raise ReleaseError(f"index version {index_version_id} was pruned by the retention policy "
                               "(RAGOPS_RETENTION_DAYS); pick a newer one")
        release = Release(name=name, index_version_id=index_version_id, answer_config=answer_config or {},
                          created_by=created_by)
        s.add(release)
        s.flush()
        return _info(release)


def find_release(registry: Registry, name: str) -> ReleaseInfo:
    with registry.session() as s:
        release = s.scalars(select(Release).where(Release.name == name)).first()
        if release is None:
            raise ReleaseError(f"no release named {name!r}")
        return _info(release)


VIEWS = ("live", "candidate")  # besides release names, what an MCP `collection` argument (and a grant) may name


def release_for_view(registry: Registry, rollout, name: str) -> ReleaseInfo:
    """`live`: the stable release of the rollout; `candidate`: its candidate; anything else: the release so named."""
    if name == "live":
        return rollout.stable
    if name == "candidate":
        if rollout.candidate is None:
            raise ReleaseError("no candidate release is being rolled out")
        return rollout.candidate
    return find_release(registry, name)
