"""The content-gaps Slack post carries questions users typed (found holding in the attack round on issue 23): a
mention or a disguised link in a question pings no one and links nowhere."""

import json

from ragops.notify.blocks import content_gaps_report

HOSTILE = "<!channel> see <https://evil.example|the docs> & *urgent* `x`"


def test_questions_cannot_mention_or_link_in_the_gaps_post():
    cluster = {"rank": 1, "name": "<!here> billing", "terms": ["billing"], "users": 5, "questions": 9, "refused": 9,
               "down_voted": 0, "representatives": [{"question": HOSTILE}], "belongs_in": None, "new_page": True,
               "previous": 0, "trend": "new"}
    report = {"period_start": "2026-11-01T00:00:00", "period_end": "2026-12-01T00:00:00", "questions": 9,
              "refused": 9, "down_voted": 0, "users": 5, "capped": False, "clusters": [cluster]}
    message = content_gaps_report(report)
    sent = json.dumps(message.blocks) + message.text
    assert "<!channel>" not in sent and "<!here>" not in sent and "<https://" not in sent
    assert "&lt;!channel&gt;" in sent
