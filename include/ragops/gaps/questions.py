"""The failed questions of a period: refused (`no_results`) or down-voted, with their text still kept.

Probe traffic (synthetic) is left out, and so are events whose question was never stored or was cleared by the
retention period. One user asking the same thing twice (say /v1/search then /v1/ask) counts once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from ragops.registry import Registry
from ragops.registry.models import Feedback, RequestEvent

REFUSED = ("no_results",)  # answer/fallbacks.py: nothing relevant was found, the assistant abstained
QUESTION_CHARS = 1000  # a question is embedded and shown up to this many characters (the model reads ~256 tokens)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class FailedQuestion:
    request_id: str
    ts: datetime
    user_hash: str
    question: str
    kind: str  # refused | down_voted
    reason: str | None = None  # the down-vote's reason: wrong | incomplete | outdated | no_answer
    comment: str | None = None  # the down-vote's comment (redacted before it was stored)

    def to_dict(self) -> dict:
        return {"request_id": self.request_id, "ts": self.ts.isoformat(), "question": self.question,
                "kind": self.kind, "reason": self.reason}


def failed_questions(registry: Registry, start: datetime, end: datetime, limit: int) -> tuple[list[FailedQuestion], bool]:
    """The newest `limit` failed questions asked in [start, end), and whether there were more (capped)."""
    down = and_(Feedback.rating == "down", Feedback.request_id.is_not(None))
    # a follow-up ("and how do I turn it off?") is clustered by what retrieval searched for: its condensed query
    asked = func.coalesce(RequestEvent.query, RequestEvent.question)
    query = (select(RequestEvent.request_id, RequestEvent.ts, RequestEvent.user_hash, asked,
                    RequestEvent.fallback, Feedback.rating, Feedback.reason, Feedback.comment)
             # the vote's own caller: request ids are client-chosen, so another caller may have used the same one
             .outerjoin(Feedback, (Feedback.request_id == RequestEvent.request_id)
                        & (Feedback.user_hash == RequestEvent.user_hash))
             .where(RequestEvent.ts >= start, RequestEvent.ts < end, RequestEvent.synthetic.is_(False),
                    RequestEvent.question.is_not(None), RequestEvent.question != "",
                    or_(RequestEvent.fallback.in_(REFUSED), down))
             .order_by(RequestEvent.ts.desc(), RequestEvent.id.desc())
             .limit(limit + 1))
    with registry.session() as s:
        rows = s.execute(query).all()
    capped = len(rows) > limit
    seen, voted, out = set(), set(), []
    for request_id, ts, user_hash, question, fallback, rating, reason, comment in rows[:limit]:
        text = _SPACE.sub(" ", question).strip()[:QUESTION_CHARS]
        key = (user_hash, text.casefold())
        voted_down = rating == "down" and (request_id, user_hash) not in voted  # retries share an id: one vote
        if not text or key in seen or not (voted_down or fallback in REFUSED):
            continue
        seen.add(key)
        if voted_down:
            voted.add((request_id, user_hash))
        out.append(FailedQuestion(request_id, ts, user_hash, text, "down_voted" if voted_down else "refused",
                                  reason if voted_down else None, comment if voted_down else None))
    return out, capped
