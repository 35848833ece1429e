"""The OpenAI-compatible API: `POST /v1/chat/completions` (streamed or not) and `GET /v1/models`, for chat front ends
(Open WebUI, LibreChat, IDE plugins) and code on the OpenAI SDK.

A chat request goes through the same doors as `/v1/ask` (serving/app.py): the API key (`Authorization: Bearer`
or `X-API-Key`), the per-key, per-address and global rate limits, the cost gate, the body limit, metrics and one
request event. The model `ragops` is the routed default (stable or canary, sticky per caller as `/v1/ask` is); a
caller with an API key may also name the stable or the canary release itself, which is recorded as variant `pinned`
and so stays out of the canary gate's comparison. The question is the last user message; a follow-up is condensed
with the earlier user turns (ragops.answer.conversation) and the request event keeps both. Every answer, fallbacks
included, is an assistant message with HTTP 200; `ragops.fallback` tells a fallback apart (openai_schemas.py).
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack, aclosing

import anyio
from fastapi import Request
from fastapi.responses import JSONResponse

from ragops.answer import fallbacks
from ragops.answer.conversation import condense
from ragops.answer.pipeline import AnswerResult
from ragops.answer.streaming import stream_answer
from ragops.errors import StoreUnavailable
from serving.admission import condensing_cost
from serving.openai_schemas import ROUTED, ChatError, ChatRequest, ChunkEncoder, completion, conversation
from serving.schemas import QUESTION_MAX
from serving.streams import Doors, recorder, stream_response

CHAT = "/v1/chat/completions"
MODELS = "/v1/models"
PINNED = "pinned"  # the variant of a request that named its release: the canary gate compares routed traffic only


def register(app, doors: Doors, responses: dict) -> None:
    """`responses`: the error replies the app documents for its routes (and the event-stream content type)."""
    settings = doors.settings
    documented = responses[422]  # the JSON error envelope

    @app.post(CHAT, summary="OpenAI-compatible chat completions, streamed (server-sent events) or not",
              responses=responses | {400: documented, 404: documented})
    async def chat_completions(body: ChatRequest, request: Request):
        try:  # told after the caller and the model are checked: a bad key is 401 and an unknown model 404 first
            (earlier, question), problem = conversation(body, settings.chat_max_turns, settings.chat_max_chars,
                                                        QUESTION_MAX), None
        except ChatError as exc:
            (earlier, question), problem = ([], body.messages[-1].text()[:QUESTION_MAX]), exc
        started, stack = time.perf_counter(), AsyncExitStack()
        # the model's call that condenses a follow-up is charged with the question (serving/admission.py)
        condensing = condensing_cost(earlier, question) if doors.has_model() else 0
        try:
            caller, decision, refusal = await stack.enter_async_context(
                doors.admitted(request, question, body.user, None, condensing))
            if refusal is not None:
                await stack.aclose()
                return refusal
            headers = doors.headers(caller, decision)
            try:
                svc = await doors.ready()
                release = pinned_release(svc, body.model, caller)
            except ChatError as exc:
                problem = exc
            except StoreUnavailable:  # the registry is away: said as an answer too, never an HTTP error
                if problem is None:
                    return await store_unavailable(request, body, caller, question, started, stack, headers)
            if problem is not None:
                await stack.aclose()
                return refused(request, problem, caller)
            condensed = await condense(earlier, question, svc.chat_model, settings.chat_condense_timeout_s)
            rid, query = request.state.request_id, condensed.query
            variant, routed_release, _ = svc.route(caller.route, release)
            asked = {"question": question, "query": query}
            finish = recorder(doors, request, CHAT, caller, asked, (variant, routed_release.id or None), started,
                              PINNED if release is not None else None)
            if body.stream:
                answer = _marked(stream_answer(svc, query, caller.route, release=release, reference=rid), release)
                return await stream_response(answer, ChunkEncoder(body.model, rid, query), finish, stack, rid, headers)
            try:
                result = _mark(await svc.ask(query, caller.route, release=release, reference=rid), release)
            finally:
                with anyio.CancelScope(shield=True):
                    await stack.aclose()
            finish.finished_with(result)
            return JSONResponse(completion(result, body.model, rid, query), headers=headers)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await stack.aclose()
            raise

    @app.get(MODELS, summary="The models (releases) this caller may name: `ragops`, and with an API key the "
             "stable and canary releases", responses={k: v for k, v in responses.items() if k in (401, 429, 503)})
    async def models(request: Request):
        return await listed(request, None)

    @app.get(MODELS + "/{model}", summary="One model this caller may name, else 404 model_not_found",
             responses={k: v for k, v in responses.items() if k in (401, 429, 503)} | {404: documented})
    async def model(model: str, request: Request):
        return await listed(request, model)

    async def listed(request: Request, model: str | None):
        async with doors.admitted(request, "", None, 1) as (caller, _decision, refusal):
            if refusal is not None:
                return refusal
            svc = await doors.ready()
            names = [ROUTED] + (_releases(svc) if caller.verified else [])
            entries = [{"id": name, "object": "model", "created": 0, "owned_by": "ragops"} for name in names]
            if model is not None:
                found = next((e for e in entries if e["id"] == model), None)
                doors.count(MODELS, 200 if found else 404)
                if found is None:
                    return doors.error(request, 404, "model_not_found", f"no model {model[:128]!r} for this caller; "
                                       f"GET {MODELS} lists those it may use")
                return JSONResponse(found, headers=doors.headers(caller, None))
            doors.count(MODELS, 200)
            return JSONResponse({"object": "list", "data": entries}, headers=doors.headers(caller, None))

    def refused(request: Request, exc: ChatError, caller=None) -> JSONResponse:
        doors.record(request.state.request_id, CHAT, exc.status, _elapsed(request), error=exc.code, caller=caller)
        return doors.error(request, exc.status, exc.code, str(exc))

    async def store_unavailable(request, body: ChatRequest, caller, question, started, stack, headers):
        fallback = fallbacks.STORE_UNAVAILABLE
        result = AnswerResult(fallback.message, [], fallback.code, fallback.status, "stable", "", None,
                              (time.perf_counter() - started) * 1000)
        finish = recorder(doors, request, CHAT, caller, {"question": question}, ("stable", None), started)
        rid = request.state.request_id
        if body.stream:
            return await stream_response(_told(result), ChunkEncoder(body.model, rid, question), finish, stack, rid,
                                         headers)
        await stack.aclose()
        finish.finished_with(result)
        return JSONResponse(completion(result, body.model, rid, question), headers=headers)


def pinned_release(svc, model: str, caller):
    """None for the routed default; the named release for a caller with an API key; else 404 model_not_found."""
    if model == ROUTED:
        return None
    rollout, _ = svc.rollout()
    for release in (rollout.stable, rollout.candidate):
        if release is not None and release.name == model and caller.verified:
            return release
    raise ChatError(404, "model_not_found", f"the model {model[:128]!r} does not exist or this caller may not use it; "
                    f"GET /v1/models lists those it may use (`{ROUTED}` always)")


def _releases(svc) -> list[str]:
    rollout, _ = svc.rollout()
    return [r.name for r in (rollout.stable, rollout.candidate) if r is not None and r.name != ROUTED]


def _mark(result: AnswerResult, release) -> AnswerResult:
    if release is not None:
        result.variant = PINNED
    return result


async def _marked(answer, release):
    async with aclosing(answer) as items:  # closed with this one: a client that left closes the upstream at once
        async for item in items:
            yield _mark(item, release) if isinstance(item, AnswerResult) else item


async def _told(result: AnswerResult):
    yield result.answer
    yield result


def _elapsed(request: Request) -> float:
    return (time.perf_counter() - getattr(request.state, "started", time.perf_counter())) * 1000
