"""
### reindex

Blue/green re-indexing for a new embedding model, chunking or parser. Builds the whole source into a new
collection beside the live one, validates it (document and chunk counts against the live version, Great
Expectations on the chunks), evaluates it against the stable release on the test set, and registers it as a
candidate release (`reindex-v<N>`) only when it is no worse beyond `RAGOPS_EVAL_TOLERANCE`. The live index is
never touched; the previous collection is kept for a one-step rollback. Start the canary with the
`canary_rollout` DAG (action `start`) or `ragops rollout start --release reindex-v<N>`.

**When**: on demand. **Params**: `source`, `embedding_model`, `chunk_max_tokens` (0 = the model's limit),
`testset`. **Slack**: the outcome; a rejected candidate fails the run with the reason.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from _ragops_airflow import default_args, optional_text, settings


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
        "chunk_max_tokens": Param(0, type="integer", minimum=0, title="Chunk token limit", description="0 = model limit"),
        "testset": optional_text("Test set", "empty = the default set"),
    },
)
def reindex():
    @task
    def build(params=None) -> dict:
        from ragops.rollout.reindex import build_candidate

        overrides = {k: params[k] for k in ("embedding_model", "chunk_max_tokens") if params[k]}
        return build_candidate(settings(), source=params["source"] or None, overrides=overrides).to_dict()

    @task
    def validate(candidate: dict) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.rollout.reindex import CandidateBuild, CandidateRejected, validate_candidate

        try:
            return validate_candidate(settings(), CandidateBuild(**candidate))
        except CandidateRejected as exc:
            raise AirflowFailException(str(exc)) from exc

    @task
    def evaluate(candidate: dict, params=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.rollout.reindex import CandidateBuild, CandidateRejected, evaluate_candidate

        try:
            result = evaluate_candidate(settings(), CandidateBuild(**candidate), testset=params["testset"] or None)
        except CandidateRejected as exc:
            raise AirflowFailException(str(exc)) from exc
        return {"stable": result["stable"]["metrics"], "candidate": result["candidate"]["metrics"]}

    @task
    def register(candidate: dict, run_id=None) -> str:
        from ragops.notify import build_notifier
        from ragops.notify.slack import Message
        from ragops.rollout.reindex import CandidateBuild, register_candidate

        cfg = settings()
        release = register_candidate(cfg, CandidateBuild(**candidate), {}, f"reindex DAG run {run_id}")
        build_notifier(cfg).send(Message(f"Reindex: candidate release {release.name} registered "
                                         f"({candidate['n_chunks']} chunks); start its canary when ready"))
        return release.name

    candidate = build()
    validate(candidate) >> evaluate(candidate) >> register(candidate)


reindex()
