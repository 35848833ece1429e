"""The content-gap analysis on traffic sent through the real app: the planted gap comes out on top, named by its
words, with its users, the documents nearest to it and its trend."""

from datetime import datetime, timedelta, timezone

import pytest
from gaps_traffic import BILLING, BILLING_USERS, SSO, SSO_USERS, send

from ragops.gaps import analyse, latest_report, run_gaps
from ragops.registry import Registry

PLANTED = BILLING[:7]  # fewer questions than the SSO cluster's eight, from more users: ranked first by its reach


@pytest.fixture
def traffic(indexed, embedder, tmp_path):
    return send(indexed, embedder, tmp_path, billing=PLANTED)


def _period():
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    return end - timedelta(days=30), end


def test_the_planted_gap_is_the_top_cluster(indexed, embedder, traffic):
    assert all(f == "no_results" for f in traffic.fallbacks["noise"])  # the mix is what it claims to be
    assert not any(traffic.fallbacks["answered"])
    report = analyse(indexed, *_period(), embedder=embedder)
    top, second = report.clusters[:2]
    assert {"billing", "invoice"} <= set(top.terms) and top.name.startswith(top.terms[0])
    assert (top.users, top.questions) == (len(BILLING_USERS), len(PLANTED))
    assert {"saml", "sso"} <= set(second.terms)
    assert (second.users, second.questions) == (len(SSO_USERS), len(SSO)) and second.questions > top.questions
    assert top.refused + top.down_voted == top.questions
    assert top.down_voted == len([r for r in traffic.down_voted if r in traffic.request_ids["billing"]])
    assert len(top.representatives) == 3 and all(r["question"] in PLANTED for r in top.representatives)
    assert set(top.request_ids) == set(traffic.request_ids["billing"])
    assert top.documents and top.belongs_in == top.documents[0]["doc_uri"]
    assert top.new_page  # nothing in the corpus is about billing
    assert top.trend == "new" and top.previous == 0
    assert report.questions == report.refused + report.down_voted
    assert report.index_version is not None and not report.capped
    noise_clustered = report.clustered - top.questions - second.questions
    assert noise_clustered == 0


def test_probe_traffic_and_cleared_questions_are_left_out(indexed, embedder, traffic):
    from sqlalchemy import update

    from ragops.registry.models import RequestEvent

    registry = Registry(indexed.registry_url)
    before = analyse(indexed, *_period(), registry=registry, embedder=embedder)
    probes, cleared = traffic.request_ids["sso"][:2], traffic.request_ids["sso"][2:3]
    with registry.session() as s:  # the probe key's traffic, and a question the retention period cleared
        s.execute(update(RequestEvent).where(RequestEvent.request_id.in_(probes)).values(synthetic=True))
        s.execute(update(RequestEvent).where(RequestEvent.request_id.in_(cleared)).values(question=None))
    report = analyse(indexed, *_period(), registry=registry, embedder=embedder)
    assert report.questions == before.questions - 3
    [sso] = [c for c in report.clusters if "saml" in c.terms]
    assert sso.questions == len(SSO) - 3 and not set(sso.request_ids) & {*probes, *cleared}


def test_the_trend_counts_the_same_questions_in_the_previous_period(indexed, embedder, traffic):
    from sqlalchemy import update

    from ragops.registry.models import RequestEvent

    registry = Registry(indexed.registry_url)
    month_ago = datetime.now(timezone.utc) - timedelta(days=40)
    with registry.session() as s:  # three of the SSO questions were asked last period, not this one
        s.execute(update(RequestEvent).where(RequestEvent.request_id.in_(traffic.request_ids["sso"][:3]))
                  .values(ts=month_ago))
    report = analyse(indexed, *_period(), registry=registry, embedder=embedder)
    [sso] = [c for c in report.clusters if "saml" in c.terms]
    assert (sso.questions, sso.previous) == (5, 3) and sso.trend == "growing"
    billing = report.clusters[0]
    assert billing.previous == 0 and billing.trend == "new"


def test_a_run_is_stored_once_per_period_and_posted(indexed, embedder, traffic):
    from ragops.notify import Outbox

    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    first = run_gaps(indexed, timedelta(days=30), end, embedder=embedder)
    again = run_gaps(indexed, timedelta(days=30), end, embedder=embedder)  # a retry of the same interval
    registry = Registry(indexed.registry_url)
    stored = latest_report(registry)
    assert stored is not None and stored.clusters[0].name == again.clusters[0].name == first.clusters[0].name
    from sqlalchemy import func, select

    from ragops.registry.models import ContentGapReport

    with registry.session() as s:
        assert s.scalar(select(func.count()).select_from(ContentGapReport)) == 1
    posted = [m for m in Outbox(indexed.outbox_path).read() if m["text"].startswith("Content gaps")]
    assert len(posted) == 2 and "billing" in str(posted[-1]["blocks"])


def test_no_failed_questions_is_an_empty_report(indexed, embedder):
    report = analyse(indexed, *_period(), embedder=embedder)
    assert report.questions == 0 and report.clusters == []


def test_a_follow_up_is_read_by_the_query_it_was_condensed_to(tmp_path):
    from ragops.gaps.questions import failed_questions
    from ragops.monitoring.events import request_event
    from ragops.registry.models import RequestEvent

    registry = Registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    now = datetime.now(timezone.utc)
    rows = [request_event("r1", "/v1/chat/completions", "u1", 200, 5.0, fallback="no_results",
                          question="and how do I turn it off?", query="billing export: how do I turn it off"),
            request_event("r2", "/v1/ask", "u2", 200, 5.0, fallback="no_results", question="Where is my invoice?")]
    with registry.session() as s:
        s.add_all(RequestEvent(ts=now, **row) for row in rows)
        s.commit()
    found, capped = failed_questions(registry, now - timedelta(hours=1), now + timedelta(hours=1), 10)
    assert sorted(q.question for q in found) == ["Where is my invoice?", "billing export: how do I turn it off"]
    assert not capped
