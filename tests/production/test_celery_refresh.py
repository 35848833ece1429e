"""document_refresh on Airflow's CeleryExecutor with two workers, on this machine's PostgreSQL and Redis.

One DAG run of the repo's document_refresh over a synthetic corpus of at least four embedding batches. A gate makes
the run deterministic without touching ragops or the DAG: the test holds the registry's embedding_cache table in SHARE
mode, so an embed batch computes its vectors and then waits to store them, holding its task. The run goes:
  1. two batches wait at the gate, one on each worker (each takes one task at a time); the gate opens and closes;
  2. those two succeed and two more wait, again one per worker; worker-b's whole process group is killed (SIGKILL);
  3. the gate opens; Airflow fails worker-b's task when its heartbeats stop and retries it on worker-a.
The final index must equal a single-process `Refresher.run()` of the same corpus: same documents, chunk ids, vectors.
"""

from __future__ import annotations

import random
import signal
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text

from airflow_cluster import AirflowCluster
from production_support import attach_logs, wait_for
from support import DAGS, throwaway_database

pytestmark = [pytest.mark.celery, pytest.mark.airflow, pytest.mark.model, pytest.mark.timeout(1800)]

DAG = "document_refresh"
WORKERS = ("worker-a", "worker-b")
BATCH_CHUNKS = 8
DOCUMENTS = 8  # an intro and four sections each: 40 chunks, five embedding batches
WORDS = ("index", "refresh", "worker", "batch", "vector", "lease", "replica", "queue", "broker", "retry", "heartbeat",
         "schema", "rollout", "canary", "gateway", "latency", "cache", "shard", "backup", "restore", "quota", "token",
         "alert", "digest", "pipeline", "source", "chunk", "embedding", "release", "audit", "permission", "limit")


@dataclass
class Observed:
    run_state: str
    first_pair: dict[str, int]      # hostname -> map index: the two batches held together at the gate first
    second_pair: dict[str, int]     # the two held when worker-b was killed
    embed: list[dict]               # the embed task instances at the end of the run
    victim_tries: list[dict]        # every try of the batch worker-b held when it was killed
    index: dict                     # what the Celery run left in the registry and the index
    source: str


class Gate:
    """Holds the registry's embedding_cache table in SHARE mode: embed batches compute, then wait to store."""

    WAITING = text("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                   "WHERE c.relname = 'embedding_cache' AND NOT l.granted "
                   "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")

    def __init__(self, url: str):
        self.engine = create_engine(url)
        self.holder = self.engine.connect()
        self.holder.execute(text("SET lock_timeout = '300s'"))
        self.holder.commit()

    def close(self) -> None:
        self.holder.execute(text("LOCK TABLE embedding_cache IN SHARE MODE"))

    def open(self) -> None:
        self.holder.commit()

    def waiting(self) -> int:
        with self.engine.connect() as c:
            return c.execute(self.WAITING).scalar_one()

    def dispose(self) -> None:
        self.holder.close()
        self.engine.dispose()


def write_corpus(root: Path, documents: int = DOCUMENTS, sections: int = 4) -> Path:
    """Runbooks with distinct sections; the same text on every run."""
    rng = random.Random(10)
    for d in range(documents):
        lines = [f"# Runbook {d}", "", f"How the platform handles area {d}.", ""]
        for s in range(sections):
            body = " ".join(rng.choice(WORDS) for _ in range(50))
            lines += [f"## Step {s} of runbook {d}", "", f"Step {s} of runbook {d}: {body}.", ""]
        path = root / f"runbook-{d:02d}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines), encoding="utf-8")
    return root


def index_contents(settings) -> dict:
    """Documents and chunk ids from the registry, and every chunk's document, hash and vector from the live index."""
    from ragops.index import open_store
    from ragops.registry import Registry
    from ragops.registry.db import live_index_version
    from ragops.registry.models import Chunk, Document

    registry = Registry(settings.registry_url)
    try:
        with registry.session() as s:
            live = live_index_version(s)
            documents = dict(s.execute(select(Document.uri, Document.fingerprint)).all())
            chunk_ids = set(s.scalars(select(Chunk.chunk_id)))
        store = open_store(settings, live.collection)
        rows = store.rows(["chunk_id", "doc_uri", "chunk_hash", "vector"])
        store.close()
    finally:
        registry.dispose()
    index = {r["chunk_id"]: (r["doc_uri"], r["chunk_hash"], np.asarray(r["vector"], dtype=np.float32)) for r in rows}
    return {"documents": documents, "chunk_ids": chunk_ids, "index": index}


def _held(cluster: AirflowCluster, gate: Gate, run_id: str, done: dict[str, int] | None = None) -> dict | None:
    """hostname -> map index of the running embed batches once one per worker waits at the gate (and `done` is done)."""
    tis = cluster.task_instances(DAG, run_id, "embed")
    if done and not all(ti["state"] == "success" for ti in tis if ti["map_index"] in done.values()):
        return None
    running = {ti["hostname"]: ti["map_index"] for ti in tis if ti["state"] == "running"}
    if set(running) == set(WORKERS) and gate.waiting() == 2:
        return running
    return None


def drive(cluster: AirflowCluster, registry_url: str, source: str, settings) -> Observed:
    gate = Gate(registry_url)
    try:
        def alive():
            cluster.check_alive()
            for worker in cluster.workers.values():
                worker.check_alive()

        gate.close()
        run_id = cluster.trigger(DAG, {"source": source})
        first = wait_for("one embed batch per worker waiting at the gate", lambda: _held(cluster, gate, run_id),
                         600, interval=1.0, alive=alive)
        gate.open()
        gate.close()  # the two held inserts were granted when the gate opened: the next batches wait again
        second = wait_for("the first two batches done and the next two waiting, one per worker",
                          lambda: _held(cluster, gate, run_id, done=first), 600, interval=1.0, alive=alive)
        victim = cluster.workers["worker-b"]
        victim.kill(signal.SIGKILL)
        wait_for("every process of worker-b to be gone", lambda: not victim.members(), 30)
        gate.open()
        state = wait_for("the refresh run to finish", lambda: _finished(cluster.dag_run(DAG, run_id)["state"]),
                         900, interval=2.0, alive=cluster.check_alive)
    finally:
        gate.dispose()
    return Observed(state, first, second, cluster.task_instances(DAG, run_id, "embed"),
                    cluster.tries(DAG, run_id, "embed", second["worker-b"]), index_contents(settings), source)


def _finished(state: str) -> str | None:
    return state if state in ("success", "failed") else None


@pytest.fixture(scope="module")
def celery_refresh(request, pg_base, redis_base, tmp_path_factory) -> Observed:
    from ragops.config import Settings
    from ragops.registry import Registry

    root = tmp_path_factory.mktemp("celery")
    source = write_corpus(root / "corpus").as_uri()
    dags = root / "dags"
    dags.mkdir()
    for name in (f"{DAG}.py", "_ragops_airflow.py", ".airflowignore"):  # the real DAG file, nothing else to parse
        (dags / name).symlink_to(DAGS / name)
    with throwaway_database(pg_base, "ragops_af_meta") as metadata_url, \
            throwaway_database(pg_base, "ragops_af_registry") as registry_url:
        settings = Settings(home=root / "home", source=source, database_url=registry_url, store="lance",
                            dag_batch_chunks=BATCH_CHUNKS)
        Registry(registry_url).dispose()  # migrated before the gate locks one of its tables
        cluster = AirflowCluster(root, metadata_url, redis_base, dags, {
            "RAGOPS_HOME": str(settings.home), "RAGOPS_SOURCE": source, "RAGOPS_DATABASE_URL": registry_url,
            "RAGOPS_STORE": "lance", "RAGOPS_DAG_BATCH_CHUNKS": str(BATCH_CHUNKS),
            # float32, like the reference run's embedder: "auto" is bfloat16 on a CPU that has it natively, whose
            # vectors differ from float32's in the third decimal, and a bit-for-bit comparison needs one precision.
            "RAGOPS_EMBEDDING_PRECISION": "float32"})
        attach_logs(request.node, [cluster.logs, cluster.home / "logs"])
        try:
            cluster.start()
            for name in WORKERS:
                cluster.start_worker(name, {})
            observed = drive(cluster, registry_url, source, settings)
        finally:
            cluster.stop()
    return observed


def test_mapped_embedding_batches_run_on_both_workers(celery_refresh):
    obs = celery_refresh
    assert obs.run_state == "success"
    assert len(obs.embed) >= 4, f"the corpus must make at least 4 embedding batches, it made {len(obs.embed)}"
    assert all(ti["state"] == "success" for ti in obs.embed), [(ti["map_index"], ti["state"]) for ti in obs.embed]
    by_index = {ti["map_index"]: ti for ti in obs.embed}
    for host, map_index in obs.first_pair.items():  # held at the gate together, so each ran on its own worker
        assert by_index[map_index]["hostname"] == host
        assert by_index[map_index]["try_number"] == 1
    assert {ti["hostname"] for ti in obs.embed} == set(WORKERS)


def test_a_killed_workers_batch_is_retried_on_the_other_worker(celery_refresh):
    obs = celery_refresh
    victim = obs.second_pair["worker-b"]
    tries = sorted(obs.victim_tries, key=lambda t: t["try_number"])
    assert tries[0]["hostname"] == "worker-b" and tries[0]["state"] in ("failed", "up_for_retry"), tries
    final = next(ti for ti in obs.embed if ti["map_index"] == victim)
    assert final["state"] == "success" and final["hostname"] == "worker-a" and final["try_number"] >= 2, final
    assert all(t["hostname"] == "worker-a" for t in tries[1:]), tries


def test_index_equals_a_single_process_refresh(celery_refresh, settings, embedder):
    from ragops.ingest.refresh import Refresher

    reference = settings.model_copy(update={"source": celery_refresh.source, "dag_batch_chunks": BATCH_CHUNKS})
    report = Refresher(reference, embedder=embedder).run()
    assert report.documents["added"] == DOCUMENTS and report.documents["quarantined"] == 0
    expected, got = index_contents(reference), celery_refresh.index
    assert got["documents"] == expected["documents"]
    assert got["chunk_ids"] == expected["chunk_ids"] == set(expected["index"])
    assert set(got["index"]) == set(expected["index"])
    for chunk_id, (doc_uri, chunk_hash, vector) in expected["index"].items():
        assert got["index"][chunk_id][:2] == (doc_uri, chunk_hash)
        assert np.array_equal(got["index"][chunk_id][2], vector), f"vector of {chunk_id} differs"
