"""Votes on served answers: one row per request and caller in `feedback`, a caller's second vote replacing its first
(an upsert, safe under concurrency on PostgreSQL and SQLite), accepted only from the caller the request event names.
Request ids are client-chosen (X-Request-ID), so two callers may share one: each keeps its own vote.

Request events are written in batches off the request path, possibly by another replica, so a vote that arrives
before its event is stored waits for it, a bounded while (`wait_s`, polled with growing pauses on the event loop,
never holding a thread). An unknown id and an id that belongs to someone else get the same `UnknownRequest`, so ids
cannot be probed. `votes_with_events` is the read the quality signals and the content-gap analysis join on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import anyio
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from ragops.errors import UnknownRequest
from ragops.feedback.redact import Redactor
from ragops.registry import Registry
from ragops.registry.bounds import bound_text
from ragops.registry.models import Feedback, Release, RequestEvent
from ragops.releases import hash_user

RATINGS = ("up", "down")
REASONS = ("wrong", "incomplete", "outdated", "no_answer")
COMMENT_MAX = 2000
ID_MAX = RequestEvent.__table__.c.request_id.type.length
UNKNOWN = "no request with this id was answered for you (unknown, not yet stored, or asked by another caller)"


@dataclass(frozen=True)
class Vote:
    request_id: str
    rating: str
    reason: str | None
    comment: str | None  # as stored: redacted
    cited_followed: bool | None
    ts: datetime
    replaced: bool  # an earlier vote on this request was replaced

    def to_dict(self) -> dict:
        return asdict(self) | {"ts": self.ts.isoformat()}


def stored_id(request_id: str) -> str:
    """The request id as the event writer stored it (ids over the column keep a prefix and a digest)."""
    return bound_text(request_id, ID_MAX)


class WaitSlots:
    """At most `cap` votes wait for their events at once, whichever way they came (`POST /v1/feedback` or the MCP
    tool `rate_answer` share one); the others are answered at once, so unknown ids cannot pile up waiting calls.
    Used on one event loop, so the count needs no lock."""

    def __init__(self, cap: int = 32):
        self.cap, self.taken = cap, 0

    @contextmanager
    def wait(self, wait_s: float) -> Iterator[float]:
        """The wait this vote may spend: `wait_s` while a slot is free, else 0."""
        if wait_s <= 0 or self.taken >= self.cap:
            yield 0.0
            return
        self.taken += 1
        try:
            yield wait_s
        finally:
            self.taken -= 1


def owns_event(registry: Registry, request_id: str, user_hash: str) -> bool:
    """The caller's request was answered: not refused before any answer (4xx: rate-limited, invalid, too large), so
    a vote never counts against a release that did not answer. A fallback, 503 included, was an answer."""
    with registry.session() as s:
        found = s.execute(select(RequestEvent.id).where(RequestEvent.request_id == request_id,
                                                        RequestEvent.user_hash == user_hash,
                                                        ~RequestEvent.status.between(400, 499)).limit(1)).first()
    return found is not None


async def wait_for_event(registry: Registry, request_id: str, user_hash: str, wait_s: float) -> bool:
    """True once the caller's event for `request_id` is stored; polls until `wait_s` has passed."""
    pause, waited = 0.05, 0.0
    while True:
        if await anyio.to_thread.run_sync(owns_event, registry, request_id, user_hash):
            return True
        if waited >= wait_s:
            return False
        step = min(pause, wait_s - waited)
        await anyio.sleep(step)
        waited, pause = waited + step, pause * 2


def store_vote(registry: Registry, request_id: str, user_hash: str, rating: str, reason: str | None = None,
               comment: str | None = None, cited_followed: bool | None = None, *, now: datetime | None = None) -> Vote:
    """Upsert the caller's vote on its request. The slot is the request id and the caller together: a request id
    another caller also sent (ids are client-chosen through X-Request-ID) holds that caller's vote apart."""
    if rating not in RATINGS:
        raise ValueError(f"rating must be one of {RATINGS}")
    if reason is not None and reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    row = {"ts": now or datetime.now(timezone.utc), "request_id": request_id, "user_hash": user_hash,
           "rating": rating, "reason": reason, "comment": bound_text(comment, COMMENT_MAX) if comment else None,
           "cited_followed": cited_followed}
    with registry.session() as s:
        dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
        mine = (Feedback.request_id == request_id) & (Feedback.user_hash == user_hash)
        previous = s.execute(select(Feedback.id).where(mine)).first()
        statement = dialect.insert(Feedback).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=[Feedback.request_id, Feedback.user_hash],
            set_={k: statement.excluded[k] for k in ("ts", "rating", "reason", "comment")}
            # a citation once opened stays opened: a later vote that does not say keeps it
            | {"cited_followed": func.coalesce(statement.excluded.cited_followed, Feedback.cited_followed)})
        s.execute(statement)
        stored = s.execute(select(Feedback.cited_followed).where(mine)).scalar_one()
    return Vote(request_id, rating, reason, row["comment"], stored, row["ts"], previous is not None)


async def submit_vote(registry: Registry, request_id: str, user: str, rating: str, *, reason: str | None = None,
                      comment: str | None = None, cited_followed: bool | None = None,
                      redact: Redactor | None = None, wait_s: float = 0.0) -> Vote:
    """A caller's vote on one of its own requests. `user` is the identity its request event was recorded under
    (the serving app's `Caller.user`, or `mcp:<client>`); the comment is redacted before it is stored."""
    request_id, user_hash = stored_id(request_id), hash_user(user)
    if not await wait_for_event(registry, request_id, user_hash, wait_s):
        raise UnknownRequest(UNKNOWN)
    comment = (redact or Redactor(enabled=False))(comment.strip() if comment else None) or None
    return await anyio.to_thread.run_sync(
        lambda: store_vote(registry, request_id, user_hash, rating, reason, comment, cited_followed))


def votes_with_events(registry: Registry, start: datetime, end: datetime) -> list[dict]:
    """Votes cast in [start, end) joined to their request event: the question, release, variant, fallback and the
    retrieval evidence. A vote whose event is gone (pruned) keeps its own fields and None for the event's."""
    event = (select(RequestEvent.request_id, RequestEvent.user_hash, RequestEvent.question, RequestEvent.endpoint,
                    RequestEvent.variant, RequestEvent.release_id, RequestEvent.fallback, RequestEvent.similarity,
                    RequestEvent.coverage).subquery())
    columns = (Feedback.ts, Feedback.request_id, Feedback.user_hash, Feedback.rating, Feedback.reason, Feedback.comment,
               Feedback.cited_followed, event.c.question, event.c.endpoint, event.c.variant, Release.name,
               event.c.fallback, event.c.similarity, event.c.coverage)
    names = ("ts", "request_id", "user_hash", "rating", "reason", "comment", "cited_followed", "question", "endpoint",
             "variant", "release", "fallback", "similarity", "coverage")
    query = (select(*columns)
             .outerjoin(event, (event.c.request_id == Feedback.request_id) & (event.c.user_hash == Feedback.user_hash))
             .outerjoin(Release, Release.id == event.c.release_id)
             .where(Feedback.ts >= start, Feedback.ts < end).order_by(Feedback.ts, Feedback.id))
    with registry.session() as s:
        rows = s.execute(query).all()
    seen, out = set(), []
    for row in rows:  # a request logged twice (a retried id) joins once; another caller's same id is another vote
        if (row.request_id, row.user_hash) not in seen:
            seen.add((row.request_id, row.user_hash))
            out.append(dict(zip(names, row)))
    return out
