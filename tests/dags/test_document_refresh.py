"""document_refresh and source_watch run end to end with Airflow's dag.test() on a temporary corpus."""

import json

import pytest


# dag.test() keeps the last run_conf in the DAG's params, so every run passes all of them explicitly
DEFAULTS = {"source": "", "full_rebuild": False, "allow_mass_delete": False}


def _states(run):
    return {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}


def _outbox(settings):
    path = settings.home / "outbox.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.slow
def test_document_refresh_end_to_end(dagbag, ragops_env, corpus):
    (corpus / "broken.md").write_bytes(b"\x00\x01\x02")
    run = dagbag.dags["document_refresh"].test(run_conf=DEFAULTS)
    states = _states(run)
    assert run.state == "success", states
    assert states[("embed", 0)] == "success" and states[("publish_index", -1)] == "success"
    [report] = [m for m in _outbox(ragops_env) if m["kind"] == "report"]
    assert "6 added" in report["text"] and "1 quarantined" in report["text"]
    from ragops.index.backends import open_catalogs

    assert open_catalogs() == []  # every task's end closed the index backend it opened

    from ragops.answer.retrieval import Retriever

    hits = Retriever(ragops_env).search("what does the serving app do under heavy traffic", k=1)
    assert hits[0].doc_uri.endswith("page.html")

    again = dagbag.dags["document_refresh"].test(run_conf=DEFAULTS)
    states = _states(again)
    assert again.state == "success"
    assert states[("publish_index", -1)] == "skipped"  # nothing changed: no index asset event
    assert ("embed", 0) not in states or states[("embed", 0)] == "skipped"


@pytest.mark.slow
def test_blocked_refresh_fails_and_alerts(dagbag, ragops_env, corpus):
    assert dagbag.dags["document_refresh"].test(run_conf=DEFAULTS).state == "success"
    for p in list(corpus.rglob("*.*"))[:3]:
        p.unlink()
    run = dagbag.dags["document_refresh"].test(run_conf=DEFAULTS)
    assert run.state == "failed"
    assert _states(run)[("prepare", -1)] == "failed"
    alerts = [m for m in _outbox(ragops_env) if m["kind"] == "alert"]
    assert len(alerts) == 1 and "allow-mass-delete" in alerts[0]["text"]
    run = dagbag.dags["document_refresh"].test(run_conf=DEFAULTS | {"allow_mass_delete": True})
    assert run.state == "success"


@pytest.mark.slow
def test_source_watch_starts_a_refresh_only_on_change(dagbag, ragops_env, corpus):
    watch = dagbag.dags["source_watch"]
    first = watch.test(run_conf={"source": ""})
    # first boot: the first document_refresh indexes everything, so the watcher waits for it instead of
    # starting a second refresh (with the reason in its log)
    assert first.state == "success"
    assert _states(first) == {("source_changed", -1): "skipped", ("announce_change", -1): "skipped"}
    assert dagbag.dags["document_refresh"].test(run_conf=DEFAULTS).state == "success"
    quiet = watch.test(run_conf={"source": ""})
    assert _states(quiet)[("announce_change", -1)] == "skipped"
    (corpus / "notes.txt").write_text("# Slack\n\nReports go elsewhere now.\n")
    assert _states(watch.test(run_conf={"source": ""}))[("announce_change", -1)] == "success"
