"""content_gaps end to end with dag.test(): traffic sent through the real app, the planted gap found on top, the
report stored for the RAG Ops page and posted to Slack (the outbox)."""

import pytest
from gaps_traffic import BILLING, BILLING_USERS, send
from support import task_states

from ragops.gaps import latest_report
from ragops.registry import Registry


@pytest.mark.slow
def test_the_dag_finds_the_planted_gap_on_top(dagbag, indexed, ragops_env, embedder, outbox, tmp_path):
    traffic = send(indexed, embedder, tmp_path)
    run = dagbag.dags["content_gaps"].test()
    assert run.state == "success", task_states(run)
    report = latest_report(Registry(indexed.registry_url))
    top = report.clusters[0]
    assert {"billing", "invoice"} <= set(top.terms[:3]) and top.rank == 1
    assert (top.users, top.questions) == (len(BILLING_USERS), len(BILLING))
    assert set(top.request_ids) == set(traffic.request_ids["billing"])
    [posted] = [m for m in outbox() if m["text"].startswith("Content gaps")]
    assert posted["kind"] == "report" and f"1. {top.name}" in str(posted["blocks"])


@pytest.mark.slow
def test_the_dag_skips_before_the_first_refresh(dagbag, ragops_env, outbox):
    run = dagbag.dags["content_gaps"].test()
    assert task_states(run)["find_and_post"] == "skipped"
    assert not [m for m in outbox() if m["text"].startswith("Content gaps")]
