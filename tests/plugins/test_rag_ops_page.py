"""The RAG Ops page as HTML: registry values escaped, links built under any prefix, regressions marked, no script."""

import re
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest

from support import populate_registry

HOSTILE = '"><script>alert(1)</script>'


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


@pytest.fixture(scope="module")
def summary(tmp_path_factory, embedder):
    from ragops.config import Settings
    from ragops.overview import ops_summary

    root = tmp_path_factory.mktemp("page")
    for rel, text in {"a.md": "# A\n\nThe refresh DAG runs weekly.\n", "b/c.md": "# C\n\nServing answers.\n"}.items():
        (root / "corpus" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / rel).write_text(text)
    settings = Settings(home=root / "home", source=(root / "corpus").as_uri())
    now = datetime.now(timezone.utc).replace(microsecond=0)
    populate_registry(settings, embedder, now)
    return ops_summary(settings, now=now)


def _page(summary, runs=None, base=""):
    import copy

    from ragops_ops_app import with_links
    from ragops_ops_page import render

    return render(with_links(copy.deepcopy(summary), runs or {}, base))


def test_registry_strings_are_escaped_everywhere(summary):
    html = _page(summary, {"document_refresh": {"exists": True, "paused": False, "latest_run": {
        "run_id": HOSTILE, "state": HOSTILE, "run_type": "manual", "run_after": summary["generated_at"],
        "end_date": None}}})
    assert "<b>bot</b>" not in html and "&lt;b&gt;bot&lt;/b&gt;" in html  # the audit's hostile client name
    assert "<b>tool</b>" not in html and "now says &lt;b&gt;tool&lt;/b&gt;" in html  # a tool's diff, as text
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    parsed = Tags()
    parsed.feed(html)
    assert "script" not in parsed.tags
    hrefs = [v for k, v in parsed.attrs if k == "href"]
    assert "/dags/document_refresh/runs/%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E" in hrefs
    assert all(not re.match(r"(https?:)?//|javascript:", h) for h in hrefs)  # nothing leaves the Airflow UI


def test_links_follow_the_ui_prefix_and_open_in_the_whole_window(summary):
    html = _page(summary, {"evaluation": {"exists": True, "paused": True, "latest_run": {
        "run_id": "manual__2026-11-25T21:06:59+00:00", "state": "failed", "run_type": "manual",
        "run_after": "2026-11-25T21:06:59+00:00", "end_date": None}}}, base="/airflow")
    assert 'href="/airflow/dags/evaluation/runs/manual__2026-11-25T21%3A06%3A59%2B00%3A00" target="_top"' in html
    assert 'href="/airflow/dags/evaluation" target="_top"' in html and "(paused)" in html
    assert 'class="state state-failed"' in html
    assert "canary_rollout <span class=\"warn\">(not in Airflow)</span>" in html  # a DAG Airflow does not know


def test_figures_charts_and_regressions(summary):
    html = _page(summary)
    assert html.count('class="regressed"') == 1  # one regressed run in the trend
    assert html.count('<svg class="spark"') == 2 + 5  # p95, error rate and each of the five fallback codes
    for figure in ("Documents", "Chunks", "Quarantined documents", "Requests", "Hit rate", "Answer recall"):
        assert f'<div class="label">{figure}</div>' in html
    assert "https://" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_connected_tools_card(summary):
    html = _page(summary)
    card = html[html.index('id="tools"'):]
    assert "Connected MCP tools" in card and "wiki" in card and "12 ms" in card
    assert card.index("wiki") < card.index("tickets")  # the changed tool first
    empty = _page({**summary, "sections": {**summary["sections"], "tools": {"tools": [], "dag_id": "mcp_tool_contracts"}}})
    assert "No tool check yet" in empty


def test_a_section_without_a_renderer_still_shows_its_data(summary):
    import copy

    from ragops_ops_page import render

    data = copy.deepcopy(summary)
    data["sections"]["tool_contracts"] = {"dag_id": "mcp_tool_contracts", "held": ["<i>search</i>"]}
    html = render(data)
    assert 'id="tool_contracts"' in html and "&lt;i&gt;search&lt;/i&gt;" in html and "<i>search" not in html


def test_the_error_page_escapes_the_message():
    from ragops_ops_page import error_page

    html = error_page(f"the registry at sqlite:///x cannot be read: {HOSTILE}")
    assert "<script" not in html and "cannot be read" in html


def test_sparkline_leaves_gaps_for_hours_without_requests():
    from ragops_ops_charts import sparkline

    svg = sparkline([1.0, 2.0, None, None, 3.0, None, 4.0, 5.0], limit=4.5)
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 1 and "stroke-dasharray" in svg


def test_a_rollout_short_of_traffic_says_so_and_what_it_does(summary):
    import copy

    data = copy.deepcopy(summary)
    release = data["sections"]["release"]
    assert release["candidate"]  # the populated registry has a canary running
    low = {"action": "ask_a_person", "users": 10, "requests": 30, "min_users": 20, "min_requests": 50,
           "percent": 25.0, "horizon": "2026-01-07T08:15:00+00:00", "projected_users": 10.0, "projected_requests": 30.0}
    release["decisions"][0]["evidence"] = {"low_traffic": low}
    html = _page(data)
    assert ('<p class="bad">Low traffic: 10 real canary users so far, about 10 projected by 2026-01-07T08:15 where 20 '
            'are needed; it needs a person.</p>') in html
    low |= {"action": "raise_share", "to_percent": 25.0}
    assert '<p class="warn">Low traffic' in _page(data) and "share was raised to 25%" in _page(data)
    assert "Low traffic" not in _page(summary)  # the populated decision had traffic enough
    low |= {"short": "evidence", "unsure": ["latency_typical"], "held_hours": 24.0, "action": "ask_a_person"}
    assert ('<p class="bad">Slow evidence: 10 real canary users, 24 hours at 25%, and still unsure: latency typical; '
            'it needs a person.</p>') in _page(data)
