"""
### canary_rollout

Moves a candidate release through the stages 10% -> 25% -> 50% -> 100% of users (`RAGOPS_ROLLOUT_STAGES`). Every
15 minutes the gate compares canary with stable, by user, on every request since the rollout started: error rate,
fallback rate and the share of requests over the latency limit, each with an always-valid sequential test, so
looking every 15 minutes never inflates the error rates (`RAGOPS_ROLLOUT_FALSE_ROLLBACK`, 1%, and
`RAGOPS_ROLLOUT_FALSE_PROMOTION`, 5%, over the whole rollout). It rolls back as soon as a metric is worse with
confidence; promotes once the data rule out a regression larger than allowed (`RAGOPS_ROLLOUT_ERROR_MDE` +2 points,
`RAGOPS_ROLLOUT_FALLBACK_MDE` +5, latency 1.2x and +100 ms over stable's p95), the stage's bake time
(`RAGOPS_ROLLOUT_MIN_WINDOW_MINUTES`) has passed and the candidate's evaluation passed; and holds otherwise. At
100% the candidate becomes the stable release. See docs/releases.md.

**Params** (manual runs): `action` = gate | start | pause | resume | abort | rollback, `release` (for start),
`probe_requests` (when holding for lack of evidence, send this many test-set questions to each variant, with
the probe key in `RAGOPS_PROBE_API_KEY`; only that key's requests count as probes).

**Slack**: every decision with what it ruled out.
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

        from ragops.rollout.actions import act
        from ragops.rollout.machine import RolloutError

        try:
            return act(settings(), params["action"], release=params["release"] or None, actor=f"airflow:{run_id}",
                       probe_requests=params["probe_requests"])
        except RolloutError as exc:
            raise AirflowFailException(str(exc)) from exc  # a refused action: retrying it changes nothing

    rollout_step()


canary_rollout()
