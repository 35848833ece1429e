"""
### model_training

Trains the reader from the corpus and from its users: weak pairs that the documents provide (a section's heading
against its text, a title against its passages, a sentence against the neighbouring passage), and pairs from the
votes of callers with a key (an up-voted question against its answer's first passage; a "wrong" vote's passages as
negatives; `RAGOPS_TRAIN_VOTES`), with BM25 hard negatives and in-batch negatives. From them, a cross-encoder
reranker (initialised from the embedding model's weights) and a contrastively adapted embedding model. No question
that any evaluation set asks is used. Each model is stored as a
versioned artefact under `RAGOPS_HOME/models/<kind>/<n>/` with its manifest: the index version trained from, the
hash of the training pairs, the parameters and the held-out ranking metrics before and after.

A trained model reaches users only through the release path: with `propose` on, each one becomes a candidate (a
reranker: a release on the live index whose answer config names it; an embedder: a blue/green candidate index),
is evaluated against the stable release by the same paired tests as every evaluation, and is registered as a
candidate release only when it is no worse. Start its canary with the `canary_rollout` DAG.

**When**: monthly (15th, 03:00 UTC) and on demand. **Params**: `kinds` (reranker, embedder or both),
`max_seconds` (the budget of the whole run; the default, 840, fits 15 minutes on 2 cores), `propose`, `testset`.
**Slack**: the models registered as candidates, or why not.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from _ragops_airflow import cron, default_args, optional_text, settings, timeout


@dag(
    schedule=cron("0 3 15 * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "release"],
    doc_md=__doc__,
    params={
        "kinds": Param("reranker,embedder", type="string", enum=["reranker,embedder", "reranker", "embedder"],
                       title="Models to train"),
        "max_seconds": Param(840, type="integer", minimum=10, maximum=7200, title="Training budget (seconds)"),
        "propose": Param(True, type="boolean", title="Evaluate each model as a candidate release"),
        "testset": optional_text("Test set", "empty = the default set"),
    },
)
def model_training():
    @task(execution_timeout=timeout("training.train"))
    def train(params=None) -> list[str]:
        from airflow.sdk.exceptions import AirflowSkipException

        from ragops.errors import StoreUnavailable
        from ragops.evaluation.growth import evaluation_questions
        from ragops.training.run import train_models

        s = settings()
        try:
            result = train_models(s, kinds=tuple(params["kinds"].split(",")), max_seconds=float(params["max_seconds"]),
                                  evaluation_questions=evaluation_questions(s))
        except StoreUnavailable as exc:
            raise AirflowSkipException(str(exc)) from exc  # no index yet: nothing to train from
        return [m["ref"] for m in result["models"].values()]

    @task
    def propose(refs: list[str], params=None, run_id=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowSkipException

        from ragops.rollout.retrain import propose as propose_models

        if not params["propose"]:
            raise AirflowSkipException("propose is off: the models are stored, no candidate was made")
        return propose_models(settings(), refs, actor=f"model_training DAG run {run_id}",
                              testset=params["testset"] or None)

    propose(train())


model_training()
