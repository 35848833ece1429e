"""The refresh plan: which documents were added, changed, deleted or left unchanged since the last index."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import select

from ragops.errors import RefreshBlocked
from ragops.registry import Registry
from ragops.registry.models import Document, Quarantine


@dataclass
class RefreshPlan:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0  # a count: a refresh never touches them, so the plan never lists them

    @property
    def to_process(self) -> list[str]:
        return self.added + self.changed

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.deleted)

    def counts(self) -> dict[str, int]:
        return {k: len(getattr(self, k)) for k in ("added", "changed", "deleted")} | {"unchanged": self.unchanged}


def plan_refresh(listed: dict[str, str], indexed: dict[str, str], *, full: bool = False) -> RefreshPlan:
    """Compare source fingerprints {uri: sha256} with the indexed ones; `full` treats every document as changed.

    The (uri, fingerprint) pairs are compared as sets, in C, so the Python work and the plan's size grow with the
    changes, not with the corpus (bench/scale.py, `planner`)."""
    plan = RefreshPlan()
    moved = listed.keys() if full else {uri for uri, _ in listed.items() - indexed.items()}
    for uri in sorted(moved):
        (plan.changed if uri in indexed else plan.added).append(uri)
    plan.deleted = sorted(indexed.keys() - listed.keys())
    plan.unchanged = len(listed) - len(plan.added) - len(plan.changed)
    return plan


class ChunkTally(NamedTuple):
    """The index's chunks now, after the plan, and the most held since the last override (the content memory)."""

    current: int
    after: int
    baseline: int


def check_guards(plan: RefreshPlan, *, n_listed: int, n_current: int, n_after: int, baseline: int, chunks: ChunkTally,
                 ratio: float, allow_mass_delete: bool) -> bool:
    """Refuse a plan that would empty or gut the index unless the operator allowed it; True when it needed the override.

    `baseline` is the guard's memory: the most documents indexed since the last override. The documents left after
    this plan are compared with it, not with the count before this run, so several small deletions that add up past
    the ratio are refused like one large one. `chunks` applies the same rule to content, so documents blanked in
    place ("This page moved.") are refused like deleted ones.
    """
    problems = []
    if n_listed == 0:
        problems.append(f"the source lists no documents; refusing to delete all {n_current} indexed documents")
    elif _shrinks(baseline, n_after, ratio):
        problems.append(
            f"the plan would delete {len(plan.deleted)} of {n_current} indexed documents, leaving {n_after}: "
            f"{baseline - n_after} fewer than the {baseline} the index held since the last override "
            f"(more than {ratio:.0%})")
    elif _shrinks(chunks.baseline, chunks.after, ratio):
        problems.append(
            f"the plan would cut the index from {chunks.current} to {chunks.after} chunks ({n_current} documents before, "
            f"{n_after} after, {len(plan.changed)} changed, {len(plan.deleted)} deleted): "
            f"{chunks.baseline - chunks.after} fewer than the {chunks.baseline} chunks the index held since the last "
            f"override (more than {ratio:.0%} of its content lost)")
    if problems and not allow_mass_delete:
        raise RefreshBlocked(f"{problems[0]}; the index was not touched: re-run with --allow-mass-delete "
                             "(DAG Param allow_mass_delete=true) if this is intended")
    return bool(problems)


def _shrinks(baseline: int, after: int, ratio: float) -> bool:
    return bool(baseline) and baseline - after > ratio * baseline


def guard_baseline(stored: int | None, n_current: int) -> int:
    """A baseline in force (documents or chunks): the stored one (set at the last commit), never below what the index
    holds now."""
    return max(stored or 0, n_current)


def next_baseline(baseline: int, n_after: int, overridden: bool) -> int:
    """An override resets the memory to what is left; otherwise deletions never lower it and additions raise it."""
    return n_after if overridden else max(baseline, n_after)


def indexed_fingerprints(registry: Registry) -> dict[str, str]:
    with registry.session() as s:
        return dict(s.execute(select(Document.uri, Document.fingerprint)).all())


def known_bad(registry: Registry) -> set[tuple[str, str]]:
    """(uri, fingerprint) pairs already quarantined: the change detector ignores them until they change."""
    with registry.session() as s:
        return set(s.execute(select(Quarantine.uri, Quarantine.fingerprint)).all())
