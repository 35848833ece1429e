"""The refresh plan: which documents were added, changed, deleted or left unchanged since the last index."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from ragops.errors import RefreshBlocked
from ragops.registry import Registry
from ragops.registry.models import Document, Quarantine


@dataclass
class RefreshPlan:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def to_process(self) -> list[str]:
        return self.added + self.changed

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.deleted)

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("added", "changed", "deleted", "unchanged")}


def plan_refresh(listed: dict[str, str], indexed: dict[str, str], *, full: bool = False) -> RefreshPlan:
    """Compare source fingerprints {uri: sha256} with the indexed ones; `full` treats every document as changed."""
    plan = RefreshPlan()
    for uri in sorted(listed):
        if uri not in indexed:
            plan.added.append(uri)
        elif full or listed[uri] != indexed[uri]:
            plan.changed.append(uri)
        else:
            plan.unchanged.append(uri)
    plan.deleted = sorted(set(indexed) - set(listed))
    return plan


def check_guards(plan: RefreshPlan, n_listed: int, n_indexed: int, ratio: float, allow_mass_delete: bool) -> None:
    """Refuse a plan that would empty or gut the index unless the operator explicitly allowed it."""
    if allow_mass_delete:
        return
    override = "re-run with --allow-mass-delete (DAG Param allow_mass_delete=true) if this is intended"
    if n_listed == 0:
        raise RefreshBlocked(f"the source lists no documents; refusing to delete all {n_indexed} indexed documents: {override}")
    if n_indexed and len(plan.deleted) > ratio * n_indexed:
        raise RefreshBlocked(
            f"the plan would delete {len(plan.deleted)} of {n_indexed} indexed documents "
            f"(more than {ratio:.0%}); the index was not touched: {override}"
        )


def indexed_fingerprints(registry: Registry) -> dict[str, str]:
    with registry.session() as s:
        return dict(s.execute(select(Document.uri, Document.fingerprint)).all())


def known_bad(registry: Registry) -> set[tuple[str, str]]:
    """(uri, fingerprint) pairs already quarantined: the change detector ignores them until they change."""
    with registry.session() as s:
        return set(s.execute(select(Quarantine.uri, Quarantine.fingerprint)).all())
