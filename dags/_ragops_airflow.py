"""Airflow glue shared by the ragops DAGs: assets, default args, settings from connections, the failure alert.

Nothing here runs at parse time beyond building small objects: connections are looked up inside tasks.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import timedelta

from airflow.sdk import Asset, CronTriggerTimetable, Param

# Later DAGs (evaluation, reindex) schedule on the index asset; the watcher emits SOURCE_CHANGED.
INDEX_ASSET = Asset(name="ragops_index", uri="x-ragops://index/live")
SOURCE_CHANGED = Asset(name="ragops_source_changed", uri="x-ragops://source/changed")


def cron(expression: str) -> CronTriggerTimetable:
    """A UTC cron schedule whose first run is its next slot: a fresh install never runs the slot just past.

    The ragops DAGs have no start_date, so Airflow asks the timetable where to begin. `run_immediately=False` would
    still run a slot that passed less than a tenth of a period ago; a zero buffer waits for the next one.
    """
    return CronTriggerTimetable(expression, timezone="UTC", run_immediately=timedelta(0))


def optional_text(title: str, description: str) -> Param:
    """A free-text Param that may stay empty: the trigger form then submits its defaults as they are."""
    return Param(None, type=["null", "string"], title=title, description=description)


@contextmanager
def skipped_until_first_refresh():
    """Before the first refresh has succeeded there is nothing to watch or probe: the task skips, with the reason."""
    from airflow.sdk.exceptions import AirflowSkipException

    from ragops.errors import FirstRefreshPending

    try:
        yield
    except FirstRefreshPending as exc:
        raise AirflowSkipException(str(exc)) from exc


def settings():
    """ragops Settings from the env, with Airflow connections taking precedence (looked up at run time)."""
    from ragops.config import Settings

    overrides = {}
    slack = _connection("slack_api_default")
    if slack is not None and slack.password:
        overrides["slack_token"] = slack.password
        channel = (slack.extra_dejson or {}).get("channel")
        if channel:
            overrides["slack_channel"] = channel
    if _connection("weaviate_default") is not None:
        from airflow.providers.weaviate.hooks.weaviate import WeaviateHook

        from ragops.index.backends import use_weaviate_client

        # The provider's hook builds the client (host, gRPC port, auth from the connection's extras) when the
        # weaviate store is used: on first use, closed at the task's end. Without the connection: RAGOPS_WEAVIATE_URL.
        use_weaviate_client(WeaviateHook("weaviate_default").get_conn)
    return Settings(**overrides)


def _connection(conn_id: str):
    """The Airflow connection, or None when it is not defined (the env then configures ragops)."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def alert_on_failure(context) -> None:
    """Post one Slack alert (or outbox entry) for a task that failed after its retries."""
    from ragops.notify import build_notifier
    from ragops.notify.blocks import alert

    ti = context["ti"]
    exc = context.get("exception")
    detail = f"`{ti.dag_id}.{ti.task_id}` failed (run `{context['run_id']}`, try {ti.try_number}): {exc}"
    build_notifier(settings()).send(alert(f"Airflow task failed: {ti.dag_id}", detail, "open the task log in the Airflow UI"))


def release_connections(context) -> None:
    """At a task's end (success, retry, failure, skip): close the index client the task opened."""
    from ragops.index import close_backends

    close_backends()


# Every task has an execution_timeout: a task past it is stopped (its lease released on the way out) and retried, so
# one hang never blocks the runs after it. Sized from docs/benchmarks.md on 2 cores, where a busy machine ran 12x
# slower than a quiet one, with room for a corpus ten times the RHDH guides; a row per task that needs more than
# the default. docs/reliability.md ("Issue 24") lists the reasoning for each.
TIMEOUTS = {
    "default": timedelta(minutes=30),
    # one batch of RAGOPS_DAG_BATCH_CHUNKS (512) chunks: about 18 s quiet, 60 s busy (1,451 chunks in 52 s / 310 s)
    "refresh.embed": timedelta(minutes=20),
    # the index write, Weaviate's indexing wait (RAGOPS_WEAVIATE_INDEX_WAIT_S, 10 min) and any batch embedded late:
    # a whole corpus took 1,098 s on a saturated machine (bench/rollback.py)
    "refresh.commit": timedelta(hours=1),
    # 140 questions: 13 s extractive; with an LLM each answer may take RAGOPS_LLM_DEADLINE_S (15 s): 35 min at worst
    "evaluation.evaluate": timedelta(hours=2),
    # a full candidate build (as refresh.commit) and that evaluation
    "reindex.build": timedelta(hours=3),
    # the max_seconds Param (at most 7,200 s; 840 s by default, 11 min 49 s measured) plus loading and saving
    "training.train": timedelta(hours=2, minutes=30),
    # 3 probes per tool, each after a pause of up to RAGOPS_MCP_TOOL_PROBE_SPACING_S (30 s) plus the tool's timeout
    "tools.check": timedelta(hours=1),
    # every probe has RAGOPS_READY_CHECK_TIMEOUT_S (10 s); the DAG run itself is bounded at 4 minutes
    "health.probe": timedelta(minutes=3),
}


def timeout(name: str) -> timedelta:
    """The execution_timeout of a task from the one table above (KeyError on a typo, at parse time)."""
    return TIMEOUTS[name]


def default_args(**extra) -> dict:
    return {
        "owner": "ragops",
        "execution_timeout": TIMEOUTS["default"],
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3 (True is 1.0: a constant delay)
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": [alert_on_failure, release_connections],
        "on_success_callback": release_connections,
        "on_retry_callback": release_connections,
        "on_skipped_callback": release_connections,
    } | extra
