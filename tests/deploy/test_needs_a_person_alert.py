"""RagopsRolloutNeedsAPerson pages for both causes of ask_a_person: too few users, and slow evidence."""

import yaml

from support import REPO


def test_the_needs_a_person_alert_and_its_runbook_cover_slow_evidence():
    # slow evidence sets ragops_rollout_low_traffic{action="ask_a_person"} too, with the minimum of users met: the
    # page must not only tell the person to lower the minimum, which changes nothing then
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "ragops.yml").read_text())["groups"]
    alert = next(r for g in rules for r in g["rules"] if r.get("alert") == "RagopsRolloutNeedsAPerson")
    assert "unsure" in alert["annotations"]["description"]
    runbooks = (REPO / "docs" / "monitoring.md").read_text()
    runbook = runbooks.split("### RagopsRolloutNeedsAPerson", 1)[1].split("\n### ", 1)[0]
    assert "unsure" in runbook
