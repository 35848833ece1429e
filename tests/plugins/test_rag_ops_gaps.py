"""The RAG Ops page's content-gaps section: the newest stored report, escaped, largest reach first; and Chromium's
screenshot of it on traffic sent through the real app (saved to test-artifacts/rag-ops-gaps.png)."""

from datetime import datetime, timedelta, timezone

import pytest
from gaps_traffic import send
from support import REPO, chromium, chromium_missing

from ragops.gaps.report import GapCluster, GapReport, store_report
from ragops.registry import Registry

HOSTILE = '"><script>alert(1)</script>'
ARTIFACTS = REPO / "test-artifacts"


def _cluster(rank, name, users, trend="new"):
    return GapCluster(rank=rank, name=name, terms=name.split(", "), users=users, questions=users * 2, refused=users,
                      down_voted=users, representatives=[{"request_id": "r1", "ts": "2026-12-01T00:00:00",
                                                          "question": f"a question about {name} {HOSTILE}",
                                                          "kind": "refused", "reason": None}],
                      request_ids=[f"r{i}" for i in range(60)], documents=[], belongs_in="file:///docs/serving.md",
                      new_page=rank == 1, previous=0 if trend == "new" else 3, trend=trend)


def _page(settings):
    from ragops_ops_page import render

    from ragops.overview import ops_summary

    return ops_summary(settings), render(ops_summary(settings))


def test_the_section_shows_the_newest_report_escaped(settings):
    registry = Registry(settings.registry_url)
    end = datetime(2026, 12, 1, tzinfo=timezone.utc)
    for when, top in ((end - timedelta(days=30), "older, report"), (end, "billing, invoice")):
        store_report(registry, GapReport(
            period_start=(when - timedelta(days=30)).isoformat(), period_end=when.isoformat(),
            generated_at=when.isoformat(), questions=40, refused=30, down_voted=10, users=12, capped=False,
            clustered=30, index_version=1, embedding_model="all-MiniLM-L6-v2",
            clusters=[_cluster(1, top, 5), _cluster(2, "saml, sso", 2, "growing")]))
    summary, html = _page(settings)
    section = summary["sections"]["gaps"]
    assert section["dag_id"] == "content_gaps" and section["report"]["period_end"].startswith("2026-12-01")
    assert [c["name"] for c in section["clusters"]] == ["billing, invoice", "saml, sso"]
    assert len(section["clusters"][0]["request_ids"]) == 5  # bounded for the page
    assert 'id="gaps"' in html and "billing, invoice" in html and "older" not in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "new page?" in html and html.index("billing, invoice") < html.index("saml, sso")


def test_the_section_says_when_there_is_no_report_yet(settings):
    Registry(settings.registry_url)  # migrated, as the DAGs and the CLI leave it; the page itself only reads
    _, html = _page(settings)
    assert "No content-gap report yet" in html


@pytest.mark.browser
def test_chromium_shows_the_planted_gap(indexed, embedder, tmp_path):
    if chromium_missing():
        pytest.skip(chromium_missing())
    from selenium.webdriver.common.by import By

    from ragops.gaps import run_gaps

    send(indexed, embedder, tmp_path, down={"billing": (slice(0, 3), "no_answer")})  # users who said so, too
    run_gaps(indexed, timedelta(days=30), embedder=embedder, post=False)
    _, html = _page(indexed)
    page = tmp_path / "rag-ops.html"
    page.write_text(html, encoding="utf-8")
    driver = chromium(tmp_path, "1100,1400")
    try:
        driver.get(page.as_uri())
        section = driver.find_element(By.ID, "gaps")
        first = section.find_elements(By.CSS_SELECTOR, "tr.gap")[0]
        assert "billing" in first.find_element(By.CLASS_NAME, "gap-terms").text
        cells = first.find_elements(By.TAG_NAME, "td")
        assert cells[2].text == "5" and "3 down" in cells[3].text  # five users, three of whom voted
        ARTIFACTS.mkdir(exist_ok=True)
        assert section.screenshot(str(ARTIFACTS / "rag-ops-gaps.png"))
    finally:
        driver.quit()
