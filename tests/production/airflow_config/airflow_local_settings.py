"""Airflow cluster policy of the test cluster (tests/production only; never on the tests' own sys.path).

Retries come 2 seconds after a failure instead of the DAG's minute, so the task of a killed worker is retried within
the test's time bound. Nothing else about the DAG changes.
"""

from datetime import timedelta


def task_policy(task) -> None:
    task.retry_delay = timedelta(seconds=2)
