"""`ragops privacy purge`: the retention purge from the command line, with --dry-run and --json."""

import json
from datetime import datetime, timedelta, timezone

from ragops.feedback.votes import store_vote
from ragops.monitoring.events import EventWriter, request_event
from ragops.registry import Registry
from ragops.releases import hash_user


def test_privacy_purge_counts_then_clears(cli, settings):
    settings.ensure_home()
    registry = Registry(settings.registry_url)
    writer = EventWriter(registry)
    old = datetime.now(timezone.utc) - timedelta(days=400)
    for i in range(2):
        writer.record("request", **request_event(f"ancient{i}", "/v1/ask", "u", 200, 5.0, question="q"), ts=old)
    writer.close()
    for i in range(2):
        store_vote(registry, f"ancient{i}", hash_user("u"), "down", "wrong", "a comment", now=old)
    registry.dispose()

    dry = json.loads(cli(settings, "privacy", "purge", "--dry-run", "--json").stdout)
    assert (dry["events"], dry["comments"], dry["dry_run"]) == (2, 2, True)
    done = json.loads(cli(settings, "privacy", "purge", "--json", env={"RAGOPS_QUESTION_RETENTION_DAYS": "30"}).stdout)
    assert (done["events"], done["comments"], done["dry_run"]) == (2, 2, False)
    again = cli(settings, "privacy", "purge")
    assert "cleared the text of 0 request events and 0 feedback comments" in again.stdout
