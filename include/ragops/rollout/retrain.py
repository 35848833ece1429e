"""Trained models into the release path: each artefact becomes a candidate, is evaluated, and is registered or not.

A reranker becomes a release on the live index with the stable answer config plus `rerank: trained:reranker/<n>`;
an adapted embedder becomes a blue/green candidate index (the reindex use case, with the artefact as the
embedding model). Either is evaluated against the stable release on the test set by the same paired tests as
every evaluation, and registered as a candidate release only when it is no worse. Nothing reaches users until an
operator starts its canary (`ragops rollout start --release <name>` or the canary_rollout DAG).
"""

from __future__ import annotations

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.evaluation.candidate import evaluate_candidate
from ragops.models.artifacts import ModelStore
from ragops.notify import build_notifier
from ragops.notify.slack import Message
from ragops.registry import Registry
from ragops.releases import create_release, current_rollout


def propose(settings: Settings, refs: list[str], *, actor: str, testset: str | None = None,
            registry: Registry | None = None, service=None, notifier=None) -> list[dict]:
    """Evaluate each trained model as a candidate; returns, per model, the release registered or why not."""
    from ragops.rollout.reindex import reindex

    registry = registry or Registry(settings.registry_url)
    notifier = notifier or build_notifier(settings)
    store = ModelStore(settings.home)
    outcomes = []
    for ref in refs:
        artifact = store.resolve(ref)
        ref = artifact.ref  # latest -> its number: a release records which model it runs
        try:
            if artifact.kind == "reranker":
                stable = current_rollout(registry).stable
                from ragops.registry.db import live_index_version

                with registry.session() as s:
                    live = live_index_version(s)
                    live_id = live.id if live else None
                if live_id is None:
                    raise RagopsError("there is no live index to rerank")
                name = f"rerank-{artifact.version}-on-v{live_id}"
                config = dict(stable.answer_config) | {"rerank": ref}
                evaluation = evaluate_candidate(settings, live_id, name, answer_config=config, testset=testset,
                                                registry=registry, service=service)
                release = create_release(registry, name, live_id, config, actor)
                outcome = {"ref": ref, "release": release.name,
                           "evaluation": {"stable": evaluation["stable"]["metrics"],
                                          "candidate": evaluation["candidate"]["metrics"]}}
            else:
                result = reindex(settings, actor=actor, overrides={"embedding_model": artifact.ref},
                                 testset=testset, registry=registry, service=service, notifier=notifier)
                outcome = {"ref": ref, "release": result["release"], "evaluation": result["evaluation"]}
        except RagopsError as exc:
            outcomes.append({"ref": ref, "rejected": str(exc)})
            notifier.send(Message(f"Model training: {ref} not registered: {exc}", kind="report"))
            continue
        notifier.send(Message(f"Model training: {ref} registered as candidate release {outcome['release']}; "
                              "start its canary when ready", kind="report"))
        outcomes.append(outcome)
    return outcomes
