"""Crash points: a refresh killed with SIGKILL during embedding, during the index write and between the index commit
and the registry commit converges, on rerun, to the same documents, chunk ids and vectors as one clean run; the
rerun takes over the dead holder's lease at once, fails the killed run and removes its staged rows.

The killed refresh runs as a real `ragops refresh` process; the rerun runs the same command in-process. With
RAGOPS_PAUSE_AT the killed one stops at the named point and says so on stderr; the test then kills it by its pid.
No sleeps decide where the kill lands.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from sqlalchemy import func, select, update

pytestmark = pytest.mark.model  # the clean run, the killed run and the rerun embed


@pytest.fixture(scope="module")
def bulk(tmp_path_factory):
    """Twelve documents, about fifty chunks: several embedding batches of eight."""
    root = tmp_path_factory.mktemp("bulk")
    for i in range(12):
        paragraphs = "\n\n".join(f"Paragraph {j} of document {i}. " + "words " * 100 for j in range(4))
        (root / f"doc{i:02d}.md").write_text(f"# Document {i}\n\n{paragraphs}\n")
    return root


@pytest.fixture(scope="module")
def clean(bulk, tmp_path_factory, embedder):
    """One clean run of the same corpus, in its own home: the state every crashed-then-rerun refresh must reach."""
    from ragops.config import Settings
    from ragops.ingest.refresh import Refresher

    settings = Settings(home=tmp_path_factory.mktemp("clean") / "home", source=bulk.as_uri())
    Refresher(settings, embedder=embedder).run()
    return _state(settings)


def _state(settings) -> dict:
    """{chunk_id: (doc_uri, chunk_hash, vector)} of the live index, and the registry's documents and chunk ids."""
    from ragops.index import open_store
    from ragops.registry import Registry
    from ragops.registry.models import Chunk, Document

    rows = open_store(settings).rows(["chunk_id", "doc_uri", "chunk_hash", "vector"])
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        documents = dict(s.execute(select(Document.uri, Document.fingerprint)).all())
        chunk_ids = set(s.scalars(select(Chunk.chunk_id)))
    registry.dispose()
    return {"index": {r["chunk_id"]: (r["doc_uri"], r["chunk_hash"], np.asarray(r["vector"])) for r in rows},
            "documents": documents, "chunk_ids": chunk_ids}


def _env(settings, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_PAUSE_AT")}
    # float32 like the clean run's embedder: bfloat16 ("auto" where the CPU has it) differs from float32 in the third
    # decimal, and its last bits depend on the batch a text is encoded in, which a rerun after a crash changes.
    return env | {"RAGOPS_HOME": str(settings.home), "RAGOPS_SOURCE": settings.source, "RAGOPS_DAG_BATCH_CHUNKS": "8",
                  "RAGOPS_EMBED_BATCH_SIZE": "8", "RAGOPS_EMBEDDING_PRECISION": "float32"} | extra


def _kill_at(settings, point: str, *, command=("refresh", "--json"), **extra) -> None:
    """Start `ragops refresh` (or `command`), wait until it reports the pause point, and SIGKILL it by its pid."""
    proc = subprocess.Popen([sys.executable, "-m", "ragops", *command],
                            env=_env(settings, RAGOPS_PAUSE_AT=point, **extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    reached, log = threading.Event(), []

    def watch():
        for line in proc.stderr:
            log.append(line)
            if f"paused at {point} (pid {proc.pid})" in line:
                reached.set()

    threading.Thread(target=watch, daemon=True).start()
    if not reached.wait(600):  # a bound, not a timing: the point is reached or the run failed
        proc.kill()
        proc.wait()
        pytest.fail(f"the refresh never reached {point}:\n{''.join(log)[-3000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


@pytest.fixture
def rerun(cli):
    """The rerun after the crash: `ragops refresh` in this process (only the killed run needs a process of its own)."""
    def run(settings, **extra) -> subprocess.CompletedProcess:
        env = {k: v for k, v in _env(settings, **extra).items() if k.startswith("RAGOPS_")}
        return cli(None, "refresh", "--json", env=env, check=False)

    return run


def _assert_converged(settings, clean: dict) -> None:
    state = _state(settings)
    assert state["documents"] == clean["documents"]
    assert set(state["index"]) == set(clean["index"]) == state["chunk_ids"] == clean["chunk_ids"]
    for chunk_id, (uri, chunk_hash, vector) in clean["index"].items():
        got_uri, got_hash, got_vector = state["index"][chunk_id]
        assert (got_uri, got_hash) == (uri, chunk_hash)
        np.testing.assert_allclose(got_vector, vector, atol=1e-5)


def _runs_and_staged(settings):
    from ragops.registry import Registry
    from ragops.registry.models import IndexVersion, RefreshRun, StagedChunk

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        runs = [(r.status, r.error or "") for r in s.scalars(select(RefreshRun).order_by(RefreshRun.id))]
        staged = s.scalar(select(func.count()).select_from(StagedChunk))
        versions = s.scalar(select(func.count()).select_from(IndexVersion))
    registry.dispose()
    return runs, staged, versions


@pytest.mark.parametrize("point", ["embedding", "index_write", "index_committed"])
def test_a_refresh_killed_at_a_crash_point_converges_on_rerun(point, bulk, clean, settings, rerun):
    settings = settings.model_copy(update={"source": bulk.as_uri()})
    _kill_at(settings, point)

    runs, staged, _ = _runs_and_staged(settings)
    assert runs == [("planned", "")] and staged > 0  # what a killed refresh leaves behind
    committed = _state(settings)["index"]
    if point == "index_committed":
        assert set(committed) == set(clean["index"])  # the index holds the run; the registry does not know it
    else:
        assert committed == {}  # nothing reached the index

    again = rerun(settings)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "took over the 'refresh' lock" in again.stderr  # at once: no waiting for the lease to expire
    report = json.loads(again.stdout)
    assert report["documents"]["added"] == len(clean["documents"])
    _assert_converged(settings, clean)
    runs, staged, versions = _runs_and_staged(settings)
    assert runs[0][0] == "failed" and "abandoned" in runs[0][1] and runs[1] == ("succeeded", "")
    assert staged == 0 and versions == 1


def test_a_lease_left_on_another_host_is_taken_over_when_it_expires(bulk, clean, settings, rerun):
    """The killed holder lived on another host: no pid can be checked, so the lease must simply run out."""
    from ragops.registry import Registry
    from ragops.registry.models import Lock, RefreshRun

    settings = settings.model_copy(update={"source": bulk.as_uri()})
    lease = {"RAGOPS_LOCK_TTL_S": "10", "RAGOPS_LOCK_HEARTBEAT_S": "2"}
    _kill_at(settings, "embedding", **lease)
    registry = Registry(settings.registry_url)
    with registry.session() as s:
        s.execute(update(Lock).values(owner="another-host:4242:0badf00d"))
        s.execute(update(RefreshRun).values(lease_owner="another-host:4242:0badf00d"))
    registry.dispose()

    first = rerun(settings, **lease)
    attempts = [first]
    while attempts[-1].returncode == 3 and len(attempts) < 100:  # refresh_conflict until the 10 s lease runs out
        assert "another-host:4242" in json.loads(attempts[-1].stdout)["error"]["message"]
        threading.Event().wait(2)
        attempts.append(rerun(settings, **lease))
    assert attempts[-1].returncode == 0, attempts[-1].stderr[-3000:]
    assert "took over the 'refresh' lock from another-host:4242" in attempts[-1].stderr
    _assert_converged(settings, clean)
    runs, staged, _ = _runs_and_staged(settings)
    assert runs[0][0] == "failed" and "another-host:4242" in runs[0][1] and staged == 0


def _live(settings):
    from ragops.registry import Registry
    from ragops.registry.db import live_index_version

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        live = live_index_version(s)
        found = (live.id, live.collection)
    registry.dispose()
    return found


def test_a_repair_killed_between_the_index_write_and_the_registry_commit_leaves_the_damage_and_a_second_one_works(
        bulk, clean, settings, cli, embedder):
    """`ragops doctor --repair` killed after the rebuilt collection is written and before the registry commit: the
    registry still names the damaged collection as live, nothing was set aside, and a second repair takes over the
    lease, rebuilds into its own collection and converges to what one clean run gives."""
    from ragops.index import open_catalog, open_store
    from ragops.ingest.refresh import Refresher

    settings = settings.model_copy(update={"source": bulk.as_uri(), "embedding_precision": "float32"})
    Refresher(settings, embedder=embedder).run()
    data = sorted((settings.lance_dir / "chunks.lance" / "data").glob("*.lance"))
    with open(data[0], "r+b") as f:  # damage the live collection
        f.truncate(data[0].stat().st_size // 2)
    damaged = _live(settings)
    assert damaged[1] == "chunks"

    _kill_at(settings, "index_committed", command=("doctor", "--repair", "--json"))
    assert _live(settings) == damaged  # the registry never learnt of the half-done repair
    assert (settings.lance_dir / "chunks.lance").is_dir()  # the damaged collection was not moved
    leftover = [c for c in open_catalog(settings).collections() if c.endswith("_repair")]
    assert len(leftover) == 1  # the killed repair's collection, written but never made live

    env = {k: v for k, v in _env(settings).items() if k.startswith("RAGOPS_")}
    again = cli(None, "doctor", "--repair", "--json", env=env, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads(again.stdout)
    rebuilt = report["repaired"]["rebuild"]
    assert rebuilt["collection"] != leftover[0] and _live(settings)[1] == rebuilt["collection"]
    live = open_store(settings, rebuilt["collection"]).rows(["chunk_id", "doc_uri", "chunk_hash"])
    assert {r["chunk_id"] for r in live} == set(clean["index"]) == set(clean["chunk_ids"])
    runs, staged, _ = _runs_and_staged(settings)
    assert [r[0] for r in runs] == ["succeeded", "failed", "succeeded"] and "abandoned" in runs[1][1]
    assert staged == 0
