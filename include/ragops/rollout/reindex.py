"""The reindex use case, one function for the CLI and the DAG: build -> validate -> evaluate -> register -> post.

Building and validating the candidate collection is ingest's job, comparing it with stable is evaluation's; this
module only chains them and records the outcome. A rejected candidate is marked `rejected` and posted.
"""

from __future__ import annotations

from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.evaluation.candidate import evaluate_candidate
from ragops.ingest.candidate import build_candidate, candidate_name, reject, validate_candidate
from ragops.notify import build_notifier
from ragops.notify.blocks import alert
from ragops.notify.slack import Message
from ragops.registry import Registry
from ragops.releases import create_release


def reindex(settings: Settings, *, actor: str, source: str | None = None, overrides: dict | None = None,
            testset: str | None = None, registry: Registry | None = None, embedder=None, service=None,
            notifier=None) -> dict:
    """Build a candidate collection beside the live one and register it as a release when it is no worse."""
    registry = registry or Registry(settings.registry_url)
    notifier = notifier or build_notifier(settings)
    build = build_candidate(settings, source=source, overrides=overrides, registry=registry, embedder=embedder)
    name = candidate_name(build)
    try:
        checks = validate_candidate(settings, build, registry)
        evaluation = evaluate_candidate(settings, build.index_version_id, name, testset=testset, registry=registry,
                                        service=service)
    except RagopsError as exc:
        reject(registry, build.index_version_id)
        notifier.send(alert(f"Reindex: candidate {name} rejected", str(exc),
                            "read the reason; the live index was not touched"))
        raise
    release = create_release(registry, name, build.index_version_id, {}, actor)
    notifier.send(Message(f"Reindex: candidate release {release.name} registered ({build.n_chunks} chunks, "
                          f"{build.n_documents} documents); start its canary when ready", kind="report"))
    return {"build": build.to_dict(), "validation": checks, "release": release.name,
            "evaluation": {"stable": evaluation["stable"]["metrics"], "candidate": evaluation["candidate"]["metrics"],
                           "candidate_run_id": evaluation["candidate"]["run_id"]}}
