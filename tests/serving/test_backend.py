"""Readiness (serving/backend.py): a total deadline per check, so a slow dependency fails only its own check and
leaves no thread behind (issue 22, finding 3); a registry check that reads a table (a truncated SQLite file)."""

import os
import threading

from support import samples


def _value(metrics: dict, name: str, **labels):
    return metrics.get((name, tuple(sorted(labels.items()))))


def _threads() -> set[str]:
    """The process's threads, less the fake LLM's request threads (each ends at its next byte after the client left)
    and readiness workers that are done (joined first: a worker still running after 10 s is a leak)."""
    for thread in threading.enumerate():
        if thread.name.startswith("ragops-ready-"):
            thread.join(timeout=10)
    return {f"{t.name}:{t.ident}" for t in threading.enumerate() if "process_request_thread" not in t.name}


def _first_status_reading(client) -> None:
    """The status thread reads readiness once at start; wait for that reading so it is not counted as a probe's."""
    status = client.app.state.status
    for _ in range(600):
        if status._checked_at is not None:
            return
        threading.Event().wait(0.05)
    raise AssertionError("the status thread never read readiness")


def _warm(client) -> None:
    """Probe until every check passes: the first probes load the embedder, which a busy machine stretches past a
    small deadline."""
    for _ in range(20):
        client.app.state.readiness.forget()
        if client.get("/readyz").json() == {"ready": True, "not_ready": [], "degraded": []}:
            return
    raise AssertionError("readiness never passed with the LLM answering")


def test_a_dripping_llm_degrades_only_the_llm_and_leaves_no_thread(make_client, indexed, fake_llm):
    """The LLM sends its headers, then a byte a second, forever: no per-read timeout trips. Only its own deadline
    ends its check; registry and index stay ready, ten probes leave no thread, and /metrics agrees."""
    client = make_client(indexed.model_copy(update={"llm_base_url": fake_llm.base_url, "ready_check_timeout_s": 2.0}))
    _first_status_reading(client)
    _warm(client)
    fake_llm.mode, fake_llm.gets = "drip", 0
    before = _threads()

    replies = []
    for _ in range(10):
        client.app.state.readiness.forget()
        replies.append(client.get("/readyz"))

    assert [r.status_code for r in replies] == [200] * 10
    assert all(r.json() == {"ready": True, "not_ready": [], "degraded": ["llm"]} for r in replies)
    assert fake_llm.gets == 10  # each probe asked, and each gave up on its own
    assert _threads() == before
    verdict = client.app.state.readiness.check()  # the status thread's way, blocking
    assert verdict["checks"]["llm"] == {"ok": False, "error": "no complete answer within 2 s"}
    client.app.state.status.refresh()
    metrics = samples(client.get("/metrics").text)
    assert _value(metrics, "ragops_ready") == 1 and _value(metrics, "ragops_registry_up") == 1
    assert _value(metrics, "ragops_ready_check", check="llm") == 0
    assert _value(metrics, "ragops_ready_check", check="registry") == 1
    assert _value(metrics, "ragops_ready_check", check="index") == 1


def test_a_stuck_registry_fails_its_check_on_one_thread(make_client, indexed, monkeypatch):
    """A registry read that never returns: each probe gives up at the deadline, and all of them wait on the same
    run, so the stuck read holds one thread, not one per probe."""
    client = make_client(indexed.model_copy(update={"ready_check_timeout_s": 0.2}))
    _first_status_reading(client)
    readiness, release = client.app.state.readiness, threading.Event()
    calls = []

    def stuck():
        calls.append(1)
        release.wait(60)

    monkeypatch.setattr(readiness, "_registry", stuck)
    try:
        replies = []
        for _ in range(3):
            readiness.forget()
            replies.append(client.get("/readyz"))
        stuck_workers = [t for t in threading.enumerate() if t.name == "ragops-ready-registry"]
    finally:
        release.set()
    assert [r.status_code for r in replies] == [503] * 3
    assert replies[0].json() == {"ready": False, "not_ready": ["registry", "index"], "degraded": []}
    assert len(calls) == 1 and len(stuck_workers) == 1


def test_a_truncated_sqlite_registry_is_not_ready(make_client, indexed):
    """`SELECT 1` passed on a registry file cut short; the check reads a table."""
    client = make_client()
    assert client.get("/readyz").status_code == 200
    database = indexed.registry_url.removeprefix("sqlite:///")
    with open(database, "r+b") as f:  # while the app holds its pooled connections, as a disk fault would
        f.truncate(os.path.getsize(database) // 2)
    client.app.state.readiness.forget()
    reply = client.get("/readyz")
    assert reply.status_code == 503 and reply.json() == {"ready": False, "not_ready": ["registry", "index"],
                                                         "degraded": []}
