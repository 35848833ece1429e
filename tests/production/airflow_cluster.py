"""A throw-away Airflow 3 on the CeleryExecutor, run on this machine's PostgreSQL and Redis.

The api-server, scheduler, dag-processor and Celery workers are subprocesses, each in its own process group, with its
log under the cluster's directory. The metadata database (also the Celery result backend) is a throw-away PostgreSQL
database; the broker is Redis, with every key under a prefix of this cluster's own (deleted when it stops). Workers
reach the api-server's execution API with tokens signed by the shared JWT secret, as in production.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import uuid
from pathlib import Path

import httpx

from production_support import Service, clean_env, wait_for
from support import free_port

CONFIG = Path(__file__).resolve().with_name("airflow_config")  # hostname_callable and the cluster policy


class AirflowCluster:
    def __init__(self, root: Path, metadata_url: str, redis_url: str, dags_folder: Path, env: dict[str, str]):
        self.root = root
        self.home = root / "airflow"
        self.logs = root / "logs"
        self.home.mkdir(parents=True)
        self.logs.mkdir()
        self.redis_url = redis_url
        self.key_prefix = f"ragops-test-{uuid.uuid4().hex[:8]}:"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.services: dict[str, Service] = {}  # must stay up for as long as the cluster runs
        self.workers: dict[str, Service] = {}
        self.started: list[Service] = []  # everything started, stopped at the end
        password = secrets.token_urlsafe(16)
        passwords = self.home / "passwords.json"
        passwords.write_text(json.dumps({"ragops": password}))
        self._login = {"username": "ragops", "password": password}
        self.env = clean_env(
            AIRFLOW_HOME=str(self.home),
            PYTHONPATH=os.pathsep.join(p for p in (str(CONFIG), os.environ.get("PYTHONPATH")) if p),
            AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base_url}/execution/",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="ragops:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(passwords),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_urlsafe(32),
            AIRFLOW__API__SECRET_KEY=secrets.token_urlsafe(32),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=metadata_url,  # psycopg 3 also drives asyncio (no asyncpg here)
            AIRFLOW__CELERY__BROKER_URL=redis_url,
            AIRFLOW__CELERY__RESULT_BACKEND=f"db+{metadata_url}",
            AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
            # Every broker key of this cluster lives under its own prefix; a long visibility timeout (Airflow's
            # default) leaves a killed worker's unacknowledged message alone: Airflow's heartbeat check retries it.
            AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=self.key_prefix,
            AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT="86400",
            # A task whose worker died is failed (and retried) 30 s after its last heartbeat instead of 300 s.
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="30",
            AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="600",
            AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",  # only the runs a test triggers, never the weekly one
            **env,
        )
        self._client: httpx.Client | None = None

    # -- processes ----------------------------------------------------------------------------------
    def airflow(self, name: str, *args: str, env: dict[str, str] | None = None) -> Service:
        service = Service(name, [sys.executable, "-m", "airflow", *args], self.env | (env or {}), self.logs, self.root)
        self.started.append(service)
        return service

    def start(self, timeout: float = 420) -> None:
        migrate = self.airflow("db-migrate", "db", "migrate")
        code = migrate.proc.wait(timeout=timeout)
        assert code == 0, f"airflow db migrate failed ({code}); see {migrate.log}"
        self.services["api-server"] = self.airflow("api-server", "api-server", "--host", "127.0.0.1",
                                                   "--port", str(self.port), "--workers", "1")
        self.services["scheduler"] = self.airflow("scheduler", "scheduler")
        self.services["dag-processor"] = self.airflow("dag-processor", "dag-processor")
        wait_for("the api-server's health endpoint", self._healthy, timeout, interval=1.0, alive=self.check_alive)
        token = httpx.post(f"{self.base_url}/auth/token", json=self._login, timeout=30)
        assert token.status_code == 201, token.text
        self._client = httpx.Client(base_url=f"{self.base_url}/api/v2", timeout=30,
                                    headers={"Authorization": f"Bearer {token.json()['access_token']}"})

    def start_worker(self, name: str, env: dict[str, str]) -> Service:
        """A Celery worker that takes one task at a time and records `name` as the hostname of its task instances.

        Its log server is skipped (it would bind every interface): the api-server reads the shared log folder."""
        worker = self.airflow(f"worker-{name}", "celery", "worker", "--celery-hostname", f"{name}@ragops-test",
                              "--concurrency", "1", "--skip-serve-logs",
                              env=env | {"AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_identity.hostname",
                                         "RAGOPS_TEST_WORKER_HOSTNAME": name})
        self.workers[name] = worker
        return worker

    def check_alive(self) -> None:
        for service in self.services.values():
            service.check_alive()

    def log_files(self) -> list[Path]:
        return sorted(self.logs.glob("*.log"))

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        for service in reversed(self.started):  # workers first, the api-server last
            service.stop()
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            keys = list(client.scan_iter(match=f"{self.key_prefix}*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    # -- the REST API ------------------------------------------------------------------------------
    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, method: str, path: str, **kwargs):
        reply = self._client.request(method, path, **kwargs)
        assert reply.status_code < 400, f"{method} {path}: {reply.status_code} {reply.text[:500]}"
        return reply.json()

    def dag_parsed(self, dag_id: str) -> bool:
        errors = self.api("GET", "/importErrors")["import_errors"]
        assert not errors, "the dag-processor could not import:\n" + "\n".join(str(e.get("stack_trace", e))
                                                                            for e in errors)
        return self._client.get(f"/dags/{dag_id}").status_code == 200

    def trigger(self, dag_id: str, conf: dict, timeout: float = 300) -> str:
        wait_for(f"the dag-processor to parse {dag_id}", lambda: self.dag_parsed(dag_id), timeout, interval=1.0,
                 alive=self.check_alive)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf})["dag_run_id"]

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str, task_id: str | None = None) -> list[dict]:
        tis = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})["task_instances"]
        return [ti for ti in tis if task_id is None or ti["task_id"] == task_id]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return self.api("GET", path)["task_instances"]
