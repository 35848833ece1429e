"""The alert rules: promtool's checks and unit tests, the compose configs of Prometheus and Alertmanager, and what
every alert must carry for the person it pages."""

import re
import shutil
import subprocess

import pytest
import yaml

from support import REPO

DEPLOY = REPO / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "ragops.yml"
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "ragops_test.yml"
FALLBACK_CODES = ("no_results", "tool_failed", "llm_unavailable", "rate_limited", "store_unavailable")


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package {package}; .ci/run installs it)")
    return path


def _run(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=REPO)


def alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules():
    result = _run(_tool("promtool", "prometheus"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = _run(_tool("promtool", "prometheus"), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_prometheus_config_is_valid():
    result = _run(_tool("promtool", "prometheus"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_the_compose_alertmanager_config_is_valid():
    result = _run(_tool("amtool", "prometheus-alertmanager"), "check-config",
                  str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_tells_a_person_what_to_do():
    runbooks = (REPO / "docs" / "monitoring.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", runbooks, re.MULTILINE)}
    for rule in alerts():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name} has no `for:` duration"
        notes = rule["annotations"]
        assert notes["summary"] and len(notes["description"]) > 80, name
        assert notes["runbook"] == f"docs/monitoring.md#{name.lower()}", name
        assert name.lower() in anchors, f"docs/monitoring.md has no section for {name}"


def test_the_alerts_cover_the_product_brief():
    exprs = {rule["alert"]: rule["expr"] for rule in alerts()}
    text = " ".join(exprs.values())
    for code in FALLBACK_CODES:  # each fallback code's rate has an alert of its own
        assert sum(f'code="{code}"' in e for e in exprs.values()) == 1, code
    assert "ragops:request_errors:ratio_rate" in text and "ragops_slo_error_ratio" in text  # error rate
    assert "p95" in text and "ragops_slo_p95_latency_seconds" in text  # p95 latency
    assert 'scope="global"' in text  # rate-limit rejections
    assert "ragops_ready == 0" in text and 'up{job="ragops-serving"}' in text  # readiness
    assert 'ragops_last_success_timestamp_seconds{pipeline="refresh"}' in exprs["RagopsDocumentsStale"]
    assert "ragops_freshness_window_seconds" in exprs["RagopsDocumentsStale"]  # the configured window


def test_every_alert_has_a_unit_test_that_fires_it():
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {check["alertname"] for case in cases for check in case.get("alert_rule_test", []) if check["exp_alerts"]}
    quiet = {check["alertname"] for case in cases for check in case.get("alert_rule_test", []) if not check["exp_alerts"]}
    names = {rule["alert"] for rule in alerts()}
    assert names <= fired, f"no unit test fires {sorted(names - fired)}"
    assert names <= quiet, f"no unit test shows these staying quiet: {sorted(names - quiet)}"


def test_the_receivers_documented_for_paging_are_valid(tmp_path):
    amtool = _tool("amtool", "prometheus-alertmanager")
    guide = (REPO / "docs" / "production.md").read_text()
    example = re.search(r"### Paging people.*?```yaml\n(.*?)```", guide, re.DOTALL).group(1)
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["receivers"] = yaml.safe_load(example)["receivers"]
    assert {r["name"] for r in config["receivers"]} == {"pager", "team"}  # the names the routes use
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    result = _run(amtool, "check-config", str(tmp_path / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
