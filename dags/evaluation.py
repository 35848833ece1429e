"""
### evaluation

Re-runs the evaluation test set through the same answer pipeline the serving app uses, for the stable release
and, during a rollout, the candidate. Scores with ragas (its non-LLM metrics without a language model; its
LLM-judged faithfulness, answer relevancy and context recall when `RAGOPS_LLM_BASE_URL` is set) and with
containment measures (answer-token recall, hit rate, doc and context MRR). Each run is stored in the registry and
compared, question by question (paired tests), with the last accepted run of the stable release on the same test
set, and with the configured floors. While there is no index yet, the run is skipped with that reason.

**When**: monthly (1st, 05:00 UTC), after every refresh that changed the index (the `ragops_index` asset, a
"major change"), and on demand.

**Params**: `testset` (path to a JSONL test set; empty = `RAGOPS_EVAL_TESTSET` or the bundled set).

**Slack**: a report per release with headline metrics and deltas, a trend chart and the worst regressions.
A regression fails the `gate` task, so the run shows red and the failure alert names the metrics and questions.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, dag, task

from _ragops_airflow import INDEX_ASSET, cron, default_args, optional_text, settings, timeout


@dag(
    schedule=AssetOrTimeSchedule(timetable=cron("0 5 1 * *"), assets=INDEX_ASSET),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "evaluation"],
    doc_md=__doc__,
    params={"testset": optional_text("Test set", "JSONL path; empty = the default set")},
)
def evaluation():
    @task(execution_timeout=timeout("evaluation.evaluate"))
    def evaluate(params=None) -> list[dict]:
        from airflow.sdk.exceptions import AirflowSkipException

        from ragops.evaluation.runner import NoIndexYet, run_evaluation

        try:
            return [r.to_dict() for r in run_evaluation(settings(), params["testset"] or None)]
        except NoIndexYet as exc:
            raise AirflowSkipException(str(exc)) from exc  # nothing to evaluate yet is not a result

    @task
    def post_report(reports: list[dict]) -> list[str]:
        from ragops.evaluation.report import post_reports
        from ragops.evaluation.runner import EvalReport

        return post_reports(settings(), [EvalReport(**{k: v for k, v in r.items() if k != "regressed"}) for r in reports])

    @task
    def gate(reports: list[dict]) -> None:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.evaluation.report import gate as fail_on_regression
        from ragops.evaluation.runner import EvalReport, EvaluationRegression

        try:
            fail_on_regression([EvalReport(**{k: v for k, v in r.items() if k != "regressed"}) for r in reports])
        except EvaluationRegression as exc:
            raise AirflowFailException(str(exc)) from exc  # a verdict, not a glitch: retrying changes nothing

    reports = evaluate()
    post_report(reports) >> gate(reports)


evaluation()
