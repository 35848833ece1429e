"""Fault matrix, index store (LanceDB): gone, stuck, missing collection, wrong schema, truncated files.
Outcome: 503 store_unavailable JSON (and a JSON error on the CLI), /readyz not ready, every request event stored."""

import json
import os
import shutil
import subprocess
import sys
import threading

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from support import events

Q = {"question": "What blocks a mass delete?"}


def _client(cfg, embedder):
    from ragops.answer.pipeline import AnswerService
    from serving.app import create_app

    return TestClient(create_app(cfg, service=AnswerService(cfg, embedder=embedder)))


def _unavailable(reply):
    body = reply.json()
    return reply.status_code == 503 and body["error"]["code"] == "store_unavailable" and body["fallback"] == "store_unavailable"


def _outage(cfg, embedder, break_it):
    with _client(cfg, embedder) as client:
        assert client.post("/v1/search", json=Q).status_code == 200
        break_it()
        client.app.state.service._retrievers.clear()  # as a restarted replica would: nothing of the index cached
        replies = [client.post("/v1/search", json=Q), client.post("/v1/ask", json=Q)]
        ready = client.get("/readyz")
        assert client.app.state.events.flush(timeout_s=60)
    assert all(_unavailable(r) for r in replies), [r.text for r in replies]
    assert ready.status_code == 503 and "index" in ready.json()["not_ready"]
    assert [r.status for r in events(cfg)] == [200, 503, 503]


@pytest.mark.fault("index store", "down (the index directory is gone)")
def test_index_directory_gone(indexed, embedder, matrix):
    _outage(indexed, embedder, lambda: shutil.rmtree(indexed.lance_dir))
    matrix.record("503 store_unavailable JSON on /v1/search and /v1/ask; /readyz 503 naming the index; 3 of 3 events")


@pytest.mark.fault("index store", "error status (the collection is missing)")
def test_index_collection_missing(indexed, embedder, matrix):
    _outage(indexed, embedder, lambda: shutil.rmtree(indexed.lance_dir / "chunks.lance"))
    matrix.record("503 store_unavailable JSON; /readyz 503; 3 of 3 events")


@pytest.mark.fault("index store", "malformed reply (a collection without the expected columns)")
def test_index_with_a_foreign_schema(indexed, embedder, matrix):
    import lancedb

    def replace():  # the live version now names a collection whose rows lack the columns ragops wrote
        from sqlalchemy import update

        from ragops.registry import Registry
        from ragops.registry.models import IndexVersion

        db = lancedb.connect(str(indexed.lance_dir))
        table = db.create_table("foreign", pa.table({"chunk_id": ["x"], "vector": pa.array([[0.0] * 384],
                                                                                            pa.list_(pa.float32(), 384))}))
        registry = Registry(indexed.registry_url)
        with registry.session() as s:
            s.execute(update(IndexVersion).values(collection="foreign", store_version=table.version))
        registry.dispose()

    with _client(indexed, embedder) as client:
        replace()
        client.app.state.service._retrievers.clear()
        reply = client.post("/v1/search", json=Q)
        assert client.app.state.events.flush(timeout_s=60)
    assert _unavailable(reply), reply.text
    assert [r.status for r in events(indexed)] == [503]
    matrix.record("503 store_unavailable JSON (the schema error from the store is translated, never a 500); event stored")


@pytest.mark.fault("index store", "slow past its timeout (a search that never returns)")
def test_index_search_stuck(indexed, embedder, matrix):
    cfg = indexed
    release = threading.Event()
    with _client(cfg, embedder) as client:
        service = client.app.state.service
        _, _, version = service.route("anyone")
        store = service.retriever(version).store
        real, settings = store.search, service.settings

        def stuck(*args, **kwargs):
            release.wait(60)
            return real(*args, **kwargs)

        store.search = stuck
        service.settings = settings.model_copy(update={"store_timeout_s": 0.5})  # only this request is held to 0.5 s
        try:
            reply = client.post("/v1/search", json=Q)
        finally:
            release.set()
            store.search, service.settings = real, settings
        assert client.post("/v1/search", json=Q).status_code == 200
        assert client.app.state.events.flush(timeout_s=60)
    assert _unavailable(reply), reply.text
    assert [r.status for r in events(cfg)] == [503, 200]
    matrix.record("503 store_unavailable at the 0.5 s store deadline while the search still hangs; served again "
                  "after; events stored")


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


def _cli_search(cfg):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")} | {
        "RAGOPS_HOME": str(cfg.home), "RAGOPS_SOURCE": cfg.source}
    done = subprocess.run([sys.executable, "-m", "ragops", "search", "guards", "--json"], env=env, capture_output=True,
                          text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.fault("index store", "corrupted files (a truncated manifest)")
def test_truncated_manifest(indexed, embedder, matrix):
    manifests = sorted((indexed.lance_dir / "chunks.lance" / "_versions").glob("*.manifest"))
    _outage(indexed, embedder, lambda: [_truncate(m) for m in manifests])
    code, out, err = _cli_search(indexed)
    assert code != 0 and json.loads(out)["error"]["code"] == "store_unavailable" and "Traceback" not in err
    matrix.record("503 store_unavailable JSON on the API (was a 500), /readyz 503; `ragops search` exits 1 with a "
                  "JSON store_unavailable error; 3 of 3 events")


@pytest.mark.fault("index store", "corrupted files (a truncated data file)")
def test_truncated_data_file(indexed, embedder, matrix):
    data = next((indexed.lance_dir / "chunks.lance" / "data").glob("*.lance"))
    _outage(indexed, embedder, lambda: _truncate(data))
    code, out, err = _cli_search(indexed)
    assert code != 0 and json.loads(out)["error"]["code"] == "store_unavailable" and "Traceback" not in err
    matrix.record("503 store_unavailable JSON; /readyz 503 (it used to say ready: readiness now runs a real search); "
                  "CLI JSON error; 3 of 3 events")
