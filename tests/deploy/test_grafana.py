"""The provisioned Grafana dashboard: what it shows, and that every query names the provisioned datasource.
(test_live_prometheus.py runs the same queries against a real Prometheus.)"""

import json

import yaml

from support import REPO

GRAFANA = REPO / "deploy" / "grafana"


def _panels():
    def walk(panels):
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    return list(walk(json.loads((GRAFANA / "dashboards" / "ragops-service.json").read_text())["panels"]))


def test_the_dashboard_shows_what_the_brief_asks_for():
    dashboard = json.loads((GRAFANA / "dashboards" / "ragops-service.json").read_text())
    assert dashboard["title"] == "RAG & MCP service" and dashboard["uid"]
    exprs = " ".join(t["expr"] for p in _panels() for t in p.get("targets", []))
    assert "rate(ragops_requests_total" in exprs  # traffic
    assert all(f"histogram_quantile({q}" in exprs for q in ("0.50", "0.95", "0.99"))  # latency percentiles
    assert "ragops:request_errors:ratio_rate5m" in exprs and "sum by (code) (rate(ragops_fallbacks_total" in exprs
    assert "sum by (scope) (rate(ragops_rate_limited_total" in exprs  # rate limiting
    assert "ragops_last_success_timestamp_seconds" in exprs and "ragops_quarantined_documents" in exprs  # freshness
    assert "sum by (client, decision) (rate(ragops_mcp_calls_total" in exprs  # MCP calls by client and decision


def test_every_panel_queries_the_provisioned_datasource_and_fits_the_grid():
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    assert datasource["type"] == "prometheus" and datasource["url"] == "http://prometheus:9090"
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in [panel] + panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]


def test_the_dashboard_provider_reads_the_mounted_folder():
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "ragops.yml").read_text())["providers"][0]
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
