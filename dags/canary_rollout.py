"""
### canary_rollout

Moves a candidate release through the stages 10% -> 25% -> 50% -> 100% of users (`RAGOPS_ROLLOUT_STAGES`). Every
15 minutes the gate compares canary with stable on the request events since the stage began: error rate and
fallback rate (a one-sided two-proportion test, not a raw difference on a handful of requests), p95 latency
ratio, and the candidate's evaluation. It promotes to the next stage, holds (too little evidence: fewer than
`RAGOPS_ROLLOUT_MIN_REQUESTS` canary requests or a window shorter than `RAGOPS_ROLLOUT_MIN_WINDOW_MINUTES`), or
rolls back to 0% automatically. At 100% the candidate becomes the stable release.

**Params** (manual runs): `action` = gate | start | pause | resume | abort | rollback, `release` (for start),
`probe_requests` (when holding for lack of traffic, send this many test-set questions as canary users).

**Slack**: every decision with its evidence.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, task

from _ragops_airflow import cron, default_args, optional_text, settings


@dag(
    schedule=cron("*/15 * * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["ragops", "release"],
    doc_md=__doc__,
    params={
        "action": Param("gate", type="string", enum=["gate", "start", "pause", "resume", "abort", "rollback"],
                        title="Action"),
        "release": optional_text("Candidate release", "for start; empty = none"),
        "probe_requests": Param(0, type="integer", minimum=0, maximum=1000, title="Probe requests when quiet"),
    },
)
def canary_rollout():
    @task
    def rollout_step(params=None, run_id=None) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from ragops.rollout.machine import RolloutError, act

        try:
            return act(settings(), params["action"], release=params["release"] or None, actor=f"airflow:{run_id}",
                       probe_requests=params["probe_requests"])
        except RolloutError as exc:
            raise AirflowFailException(str(exc)) from exc  # a refused action: retrying it changes nothing

    rollout_step()


canary_rollout()
