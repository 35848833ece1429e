"""Airflow glue shared by the ragops DAGs: assets, default args, settings from connections, the failure alert.

Nothing here runs at parse time beyond building small objects: connections are looked up inside tasks.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Asset

# Later DAGs (evaluation, reindex) schedule on the index asset; the watcher emits SOURCE_CHANGED.
INDEX_ASSET = Asset(name="ragops_index", uri="x-ragops://index/live")
SOURCE_CHANGED = Asset(name="ragops_source_changed", uri="x-ragops://source/changed")


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
    weaviate = _connection("weaviate_default")
    if weaviate is not None and weaviate.host:
        overrides["weaviate_url"] = f"{weaviate.schema or 'http'}://{weaviate.host}:{weaviate.port or 8080}"
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


def default_args(**extra) -> dict:
    return {
        "owner": "ragops",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": 2.0,  # a multiplier in Airflow 3 (True is 1.0: a constant delay)
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": alert_on_failure,
    } | extra
