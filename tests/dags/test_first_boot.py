"""A fresh install's first hour: which DAG runs when, and trigger forms that submit with their defaults."""

from datetime import datetime, timezone

import pytest

def _first_run(dag):
    """Where the scheduler puts a DAG's first run: the serialized DAG, asked with no run before it."""
    from airflow.serialization.serialized_objects import DagSerialization

    info = DagSerialization.from_dict(DagSerialization.to_dict(dag)).next_dagrun_info(last_automated_run_info=None)
    return info.run_after if info else None


def test_no_dag_runs_a_slot_that_passed_before_it_was_installed(dagbag):
    """The weekly refresh, the monthly evaluation and audit, the daily review: each waits for its next slot, so
    the one document_refresh at first boot is the one `make up` triggers (source_watch waits for it, see below)."""
    now = datetime.now(timezone.utc)
    for dag_id, dag in dagbag.dags.items():
        first = _first_run(dag)
        if first is None:  # reindex: on demand only
            continue
        assert first > now, f"{dag_id} would run its past slot {first:%Y-%m-%d %H:%M} at first boot"


def test_params_with_an_empty_default_accept_what_an_empty_form_field_sends(dagbag):
    """Airflow's trigger form sends null for a text field left empty: a Param whose default is empty must accept it,
    or the form stays red and its Trigger button disabled until something is typed."""
    from airflow.sdk.definitions.param import Param

    empty_defaults = []
    for dag_id, dag in dagbag.dags.items():
        for name in dag.params:
            param = dag.params.get_param(name)
            param.resolve(suppress_exception=False)  # every default validates against its own schema
            if param.value in (None, ""):
                empty_defaults.append(f"{dag_id}.{name}")
                for sent in (None, ""):
                    Param(sent, **param.schema).resolve(suppress_exception=False)
    assert len(empty_defaults) >= 7, empty_defaults  # source (3 DAGs), testset (2), embedding_model, release


@pytest.mark.slow
def test_first_refresh_lets_the_watcher_and_the_probe_start(dagbag, ragops_env, corpus, monkeypatch):
    """Before it: both skip with the reason. After it: both run for real."""
    monkeypatch.setenv("RAGOPS_PUBLIC_URL", "http://127.0.0.1:9")  # no serving app: probed as down, nothing else
    from support import task_states

    from ragops.errors import FirstRefreshPending
    from ragops.ingest.refresh import detect_changes

    with pytest.raises(FirstRefreshPending, match="first successful document_refresh"):
        detect_changes(ragops_env)
    assert task_states(dagbag.dags["source_watch"].test(run_conf={"source": None}))["source_changed"] == "skipped"
    assert dagbag.dags["document_refresh"].test(run_conf={"source": None, "full_rebuild": False,
                                                          "allow_mass_delete": False}).state == "success"
    assert task_states(dagbag.dags["source_watch"].test(run_conf={"source": None}))["source_changed"] == "success"
    assert task_states(dagbag.dags["health_probe"].test())["probe"] == "success"
