"""
### reindex

Blue/green re-indexing for a new embedding model, chunking or parser. Builds the whole source into a new
collection beside the live one, validates it (document and chunk counts against the live version, Great
Expectations on the chunks), evaluates it against the stable release on the test set (question by question, with
the same paired tests as every evaluation), and registers it as a candidate release (`reindex-v<N>`) only when it
is no worse. One call, `ragops.rollout.reindex.reindex`, which `ragops reindex` makes too. The live index is never
touched; every collection keeps its manifest, so a later rollback re-reads only what changed. Start the canary with the
`canary_rollout` DAG (action `start`) or `ragops rollout start --release reindex-v<N>`.

**When**: on demand. **Params**: `source`, `embedding_model`, `chunk_max_tokens` (0 = the setting's default),
`embedding_precision` (empty = the setting's), `testset`. **Slack**: the registered release, or the rejection with
its reason (the run then fails).
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from _ragops_airflow import default_args, optional_text, settings, timeout


@dag(
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "release"],
    doc_md=__doc__,
    params={
        "source": optional_text("Source URI", "empty = RAGOPS_SOURCE"),
        "embedding_model": optional_text("Embedding model", "empty = the current one"),
        "chunk_max_tokens": Param(0, type="integer", minimum=0, title="Chunk token limit", description="0 = default"),
        "embedding_precision": Param("", type=["null", "string"], enum=[None, "", "auto", "float32", "bfloat16", "int8"],
                                     title="Embedding precision", description="empty = RAGOPS_EMBEDDING_PRECISION"),
        "testset": optional_text("Test set", "empty = the default set"),
    },
)
def reindex():
    @task(execution_timeout=timeout("reindex.build"))
    def build_evaluate_register(params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.evaluation.candidate import CandidateWorse
        from ragops.ingest.candidate import CandidateRejected
        from ragops.rollout.reindex import reindex as run_reindex

        overrides = {k: params[k] for k in ("embedding_model", "chunk_max_tokens", "embedding_precision")
                     if params[k]}
        try:
            return run_reindex(settings(), actor=f"reindex DAG run {run_id}", source=params["source"] or None,
                               overrides=overrides, testset=params["testset"] or None)
        except (CandidateRejected, CandidateWorse) as exc:
            raise AirflowFailException(str(exc)) from exc  # a verdict, posted already: retrying changes nothing

    build_evaluate_register()


reindex()
