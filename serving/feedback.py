"""`POST /v1/feedback`: a user's vote on an answer it was given (ragops.feedback.votes holds the rules).

The caller is identified and rate-limited exactly as for /v1/ask (the same key or address budget), and may vote only
on its own requests: the identity its request event was recorded under must be the one voting. A vote that arrives
while its event is still on its way to the registry waits for it, at most RAGOPS_FEEDBACK_WAIT_S, and only a bounded
number of votes wait at once (the rest are answered at once), so unknown ids cannot pile up waiting requests.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ragops.config import Settings
from ragops.errors import UnknownRequest
from ragops.feedback.redact import Redactor
from ragops.feedback.votes import submit_vote
from serving.schemas import ErrorBody, FeedbackBody, FeedbackResponse

PATH = "/v1/feedback"
MAX_WAITING = 32  # votes allowed to wait for their event at once


def add_feedback_route(app: FastAPI, settings: Settings, *, callers, limiter, backend, metrics, redact: Redactor,
                       refuse, error) -> None:
    """`refuse(request, caller, decision)` and `error(request, status, code, message)` are the app's own 429 and
    error answers, so a vote is refused in the same words as a question."""
    waiting = [0]
    problem = {"model": ErrorBody}

    @app.post(PATH, response_model=FeedbackResponse, summary="Vote on an answer (up or down, with a reason)",
              responses={400: problem, 401: problem, 404: problem, 413: problem, 422: problem, 429: problem,
                         503: problem})
    async def feedback(body: FeedbackBody, request: Request):
        caller = callers.identify(request, body.user_id)
        request.state.caller = caller
        decision = await limiter.hit(caller.bucket, caller.limit)
        if decision is not None and not decision.allowed:
            metrics.requests.labels(PATH, "429").inc()
            return refuse(request, caller, decision)
        svc = await backend.ready_service()
        wait_s = settings.feedback_wait_s if waiting[0] < MAX_WAITING else 0.0
        waiting[0] += 1
        try:
            vote = await submit_vote(svc.registry, body.request_id, caller.user, body.rating, reason=body.reason,
                                     comment=body.comment, cited_followed=body.cited_followed, redact=redact,
                                     wait_s=wait_s)
        except UnknownRequest as exc:
            metrics.requests.labels(PATH, "404").inc()
            return error(request, 404, exc.code, str(exc))
        finally:
            waiting[0] -= 1
        metrics.requests.labels(PATH, "200").inc()
        metrics.feedback.labels(vote.rating, vote.reason or "none").inc()
        if vote.replaced:
            metrics.feedback_replaced.inc()
        headers = decision.headers() if decision else {}
        return JSONResponse(vote.to_dict(), headers=headers)
