"""Fault matrix, registry DB: PostgreSQL through a proxy that can cut or garble the link, a lock that stalls reads,
refused writes, and a corrupt SQLite file. Outcome: 503 store_unavailable (JSON on the CLI), recovery on its own,
and every request event stored in the end."""

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from faults import TcpProxy
from support import events

Q = {"question": "What blocks a mass delete?"}


@pytest.fixture
def pg(settings, corpus, embedder, postgres_url):
    """The corpus indexed with a PostgreSQL registry; the app reaches that database through a proxy."""
    from ragops.ingest.refresh import Refresher

    direct = settings.model_copy(update={"database_url": postgres_url})
    Refresher(direct, embedder=embedder).run()
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    yield direct, direct.model_copy(update={"database_url": proxied, "store_timeout_s": 5.0, "registry_retry_s": 0.0}), proxy
    proxy.close()


def _app(cfg, embedder, service=True):
    from ragops.answer.pipeline import AnswerService
    from ragops.registry import Registry
    from serving.app import create_app

    svc = None
    if service:
        registry = Registry(cfg.registry_url, statement_timeout_s=cfg.store_timeout_s)
        svc = AnswerService(cfg, registry=registry, embedder=embedder, rollout_ttl_s=0)  # read the rollout each time
    return create_app(cfg, service=svc)


def _unavailable(reply):
    body = reply.json()
    return reply.status_code == 503 and body["error"]["code"] == "store_unavailable" and body["fallback"] == "store_unavailable"


@pytest.mark.fault("registry DB", "down (PostgreSQL lost at runtime, then back)")
def test_registry_lost_at_runtime(pg, embedder, matrix):
    direct, cfg, proxy = pg
    with TestClient(_app(cfg, embedder)) as client:
        assert client.post("/v1/search", json=Q).status_code == 200
        proxy.set("down")
        replies = [client.post("/v1/search", json=Q), client.post("/v1/ask", json=Q)]
        assert all(_unavailable(r) for r in replies), [r.text for r in replies]
        assert client.get("/readyz").status_code == 503
        proxy.set("up")
        assert client.post("/v1/search", json=Q).status_code == 200  # the pool reconnects by itself
        assert client.app.state.events.flush(timeout_s=60)
    rows = events(direct)
    assert [r.status for r in rows] == [200, 503, 503, 200]  # the events of the outage were kept, then written
    matrix.record("503 store_unavailable JSON on /v1/search and /v1/ask, /readyz 503; serves again as soon as the "
                  "database is back; all 4 request events stored (the outage's kept in memory until then)")


@pytest.mark.fault("registry DB", "down when `serve` starts")
def test_serve_starts_with_the_registry_down_and_recovers(pg, embedder, matrix):
    direct, cfg, proxy = pg
    proxy.set("down")
    with TestClient(_app(cfg, embedder, service=False)) as client:  # the app's own builder: nothing pre-built
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["not_ready"] == ["registry", "index"]
        assert _unavailable(client.post("/v1/search", json=Q))
        proxy.set("up")
        client.app.state.readiness.forget()  # readiness is cached for a second; ask again now
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/search", json=Q).status_code == 200
        assert client.app.state.events.flush(timeout_s=60)
    assert [r.status for r in events(direct)] == [503, 200]
    matrix.record("the app starts not ready (/readyz 503 naming registry and index), answers 503 store_unavailable, "
                  "and recovers by itself when the database returns; both events stored")


@pytest.mark.fault("registry DB", "slow past its timeout (a lock held on the rollout state)")
def test_registry_stalled_by_a_lock(pg, embedder, matrix):
    direct, cfg, proxy = pg
    with TestClient(_app(cfg, embedder)) as client:
        assert client.post("/v1/search", json=Q).status_code == 200
        locker = create_engine(direct.database_url)
        with locker.connect() as c:
            c.execute(text("BEGIN"))
            c.execute(text("LOCK TABLE rollout_state IN ACCESS EXCLUSIVE MODE"))
            reply = client.post("/v1/search", json=Q)
            c.execute(text("ROLLBACK"))
        locker.dispose()
        assert _unavailable(reply), reply.text
        assert client.post("/v1/search", json=Q).status_code == 200
        assert client.app.state.events.flush(timeout_s=60)
    assert [r.status for r in events(direct)] == [200, 503, 200]
    matrix.record("503 store_unavailable once the 5 s statement timeout passes (never a hang); served again when the "
                  "lock is released; all events stored")


@pytest.mark.fault("registry DB", "error status (the database refuses the event writes)")
def test_registry_refuses_event_writes(pg, embedder, matrix):
    direct, cfg, proxy = pg
    admin = create_engine(direct.database_url)
    with TestClient(_app(cfg, embedder)) as client:
        with admin.begin() as c:
            c.execute(text("ALTER TABLE request_events RENAME TO request_events_away"))
        codes = [client.post("/v1/search", json=Q).status_code for _ in range(5)]
        assert codes == [200] * 5  # reads are fine: requests are served
        assert client.app.state.events.flush(timeout_s=1) is False and client.app.state.events.pending == 5
        with admin.begin() as c:
            c.execute(text("ALTER TABLE request_events_away RENAME TO request_events"))
        assert client.app.state.events.flush(timeout_s=60) and client.app.state.events.dropped == 0
    admin.dispose()
    assert len(events(direct)) == 5
    matrix.record("requests keep being served (200); the 5 events wait in memory while inserts fail and are all "
                  "written when the table is back; none dropped")


@pytest.mark.fault("registry DB", "malformed reply (the link answers noise)")
def test_registry_link_answers_garbage(pg, embedder, matrix):
    direct, cfg, proxy = pg
    with TestClient(_app(cfg, embedder)) as client:
        proxy.set("garbage")
        reply = client.post("/v1/ask", json=Q)
        assert _unavailable(reply), reply.text
        proxy.set("up")
        assert client.post("/v1/ask", json=Q).status_code == 200
        assert client.app.state.events.flush(timeout_s=60)
    assert [r.status for r in events(direct)] == [503, 200]
    matrix.record("503 store_unavailable (the driver's protocol error is translated, never a 500); recovers when "
                  "the link is sane; events stored")


def _cli(cfg, *argv):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_")} | {
        "RAGOPS_HOME": str(cfg.home), "RAGOPS_SOURCE": cfg.source}
    done = subprocess.run([sys.executable, "-m", "ragops", *argv, "--json"], env=env, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.fault("registry DB", "corrupted files (a truncated SQLite file)")
def test_truncated_sqlite_registry(indexed, embedder, matrix):
    import sqlite3

    path = indexed.home / "registry.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file, none left in the WAL
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    for argv in (["search", "guards"], ["ask", "guards"], ["monitor"]):
        code, out, err = _cli(indexed, *argv)
        assert code != 0 and json.loads(out)["error"]["code"] == "store_unavailable", (argv, out, err[-2000:])
        assert "Traceback" not in err
    with TestClient(_app(indexed, embedder, service=False)) as client:
        assert client.get("/readyz").status_code == 503
        assert _unavailable(client.post("/v1/search", json=Q))
    matrix.record("CLI search/ask/monitor: exit 1 with {\"error\": {\"code\": \"store_unavailable\"}}, no traceback; "
                  "the app starts not ready and answers 503 store_unavailable")
