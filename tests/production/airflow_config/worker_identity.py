"""`[core] hostname_callable` of the test's Celery workers: two workers on one machine, each recording its own name.

Only the worker processes are configured with it; each gets RAGOPS_TEST_WORKER_HOSTNAME in its environment.
"""

import os


def hostname() -> str:
    return os.environ["RAGOPS_TEST_WORKER_HOSTNAME"]
