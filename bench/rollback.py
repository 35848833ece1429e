"""Post-promotion rollback on the shared RHDH docs; prints one JSON document.

In one process: index the 28 guides into the live collection; build a blue/green candidate and promote it (the
live pointer moves to the candidate's collection); edit one guide and refresh (the edit goes into the promoted
collection only); then roll back. The rollback moves the pointer back and catches the old collection up from its
manifest: only the edited guide is read again. For comparison, the same catch-up without a manifest (blank
fingerprints, as before issue 9) re-reads every guide.

    .venv/bin/python bench/rollback.py [--docs $RAGOPS_EVAL_RHDH/docs]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from _rhdh import RHDH, absent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", default=str(RHDH / "docs"))
    args = parser.parse_args()
    docs = Path(args.docs)
    if not docs.exists():
        print(json.dumps({"skipped": absent(docs)}))
        return 0

    from sqlalchemy import update

    from ragops.config import Settings
    from ragops.ingest.candidate import build_candidate, candidate_name
    from ragops.ingest.embedding import Embedder
    from ragops.ingest.refresh import Refresher
    from ragops.registry import Registry
    from ragops.registry.models import Document
    from ragops.releases import create_release
    from ragops.rollout.machine import Rollout

    work = Path(tempfile.mkdtemp(prefix="ragops-bench-rollback-"))
    try:
        corpus = work / "docs"
        shutil.copytree(docs, corpus)
        settings = Settings(home=work / "home", source=corpus.as_uri())
        registry = Registry(settings.registry_url)
        embedder = Embedder(settings.embedding_model, settings.embed_batch_size)
        figures = {}
        started = time.perf_counter()
        Refresher(settings, registry, embedder=embedder).run()
        figures["initial_index_s"] = round(time.perf_counter() - started, 2)
        build = build_candidate(settings, registry=registry, embedder=embedder)
        create_release(registry, candidate_name(build), build.index_version_id, {}, "bench")
        machine = Rollout(settings, registry, embedder=embedder)  # posts to the outbox under home
        machine.start(candidate_name(build), "bench")
        started = time.perf_counter()
        machine._complete(100.0, "promoted by bench/rollback.py", {}, "bench")  # the gate's last step, without traffic
        figures["promotion_s"] = round(time.perf_counter() - started, 2)

        guide = sorted(corpus.glob("*/master.txt"))[0]
        guide.write_text(guide.read_text() + "\n\nA paragraph added after the promotion.\n")
        refreshed = Refresher(settings, registry, embedder=embedder).run()
        figures["refresh_after_promotion"] = refreshed.documents

        started = time.perf_counter()
        undone = machine.rollback("bench", "post-promotion rollback")
        figures["rollback_s"] = round(time.perf_counter() - started, 2)
        figures["rollback_catch_up"] = undone.evidence["switch"]["caught_up"]
        figures["rollback_collection"] = undone.evidence["switch"]["collection"]

        with registry.session() as s:  # what the old adopt_collection left behind: no fingerprints at all
            s.execute(update(Document).values(fingerprint=""))
        started = time.perf_counter()
        blank = Refresher(settings, registry, embedder=embedder).run()
        figures["catch_up_without_manifest_s"] = round(time.perf_counter() - started, 2)
        figures["catch_up_without_manifest"] = blank.documents
        figures["rollback_vs_without_manifest"] = round(figures["rollback_s"] / figures["catch_up_without_manifest_s"], 3)
        print(json.dumps({"docs": str(docs), "documents": len(list(corpus.glob("*/master.txt")))} | figures, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
