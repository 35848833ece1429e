"""Admission by cost (issue 22, finding 5): expensive questions beyond a bound get 429 with Retry-After, counted under
scope `cost`, while cheap ones are admitted. Slots are held by the test, never by timing."""

import asyncio

import anyio

from ragops.answer.pipeline import DEFAULTS
from ragops.config import Settings
from serving.admission import CostGate, cost

LONG = "x" * 2000  # a random 2,000-character question: no spaces, many wordpieces


def test_cost_grows_with_length_and_k_and_the_defaults_split_long_from_normal():
    assert cost("how do I add a plugin?", 5) < cost("how do I add a plugin?", 20) < cost(LONG, 20)
    assert cost(LONG, 5) == 500 * 5
    threshold = Settings().expensive_cost
    assert cost("How do I configure the GitHub integration in Developer Hub?", DEFAULTS["k"]) < threshold
    assert cost(LONG, 1) >= threshold  # even at k=1 a maximal question is expensive


def test_expensive_beyond_slots_and_queue_is_refused_while_cheap_is_admitted():
    async def scenario():
        gate = CostGate(threshold=100, concurrency=1, queue=1)
        outcomes = []
        holding, release, queued_done = anyio.Event(), anyio.Event(), anyio.Event()

        async def holder():
            async with gate.admit(1000) as refused:
                outcomes.append(("holder", refused))
                holding.set()
                await release.wait()

        async def queued():
            async with gate.admit(1000) as refused:
                outcomes.append(("queued", refused))
            queued_done.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await holding.wait()
            tg.start_soon(queued)
            while gate._waiting == 0:  # the second expensive question is now in the queue
                await anyio.sleep(0)
            async with gate.admit(1000) as refused:
                outcomes.append(("third", refused))
            async with gate.admit(99) as refused:
                outcomes.append(("cheap", refused))
            assert not queued_done.is_set()
            release.set()
            await queued_done.wait()
        return outcomes

    outcomes = dict(asyncio.run(scenario()))
    assert outcomes["holder"] is None and outcomes["queued"] is None and outcomes["cheap"] is None
    third = outcomes["third"]
    assert third is not None and not third.allowed and third.scope == "cost"
    assert int(third.headers()["Retry-After"]) >= 1


def test_a_refused_expensive_question_gets_the_json_429_and_its_metric(make_client, indexed):
    client = make_client(indexed.model_copy(update={"expensive_concurrency": 1, "expensive_queue": 0}))
    gate = client.app.state.cost_gate
    client.portal.call(gate._slots.acquire)  # an expensive question in flight, for as long as the test says
    try:
        refused = client.post("/v1/search", json={"question": LONG})
        cheap = client.post("/v1/search", json={"question": "guards"})
    finally:
        client.portal.call(gate._slots.release)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    body = refused.json()
    assert body["error"]["code"] == "rate_limited" and body["fallback"] == "rate_limited" and body["request_id"]
    assert cheap.status_code == 200
    assert client.post("/v1/search", json={"question": LONG}).status_code != 429  # the slot is free again
    assert 'ragops_rate_limited_total{scope="cost"} 1.0' in client.get("/metrics").text


def test_a_follow_up_is_charged_for_the_model_call_that_condenses_it(make_client, fake_llm, indexed):
    """Issue 25 leftover: a chat request was admitted by its last question alone, so a short follow-up after long
    earlier turns, which the model condenses in an extra call that reads them, was cheap. Now the condensing call's
    tokens are added to the question's cost; a question that stands alone, or is condensed by the rule (no model),
    is not charged for a call that is not made."""
    from ragops.answer.llm import CircuitBreaker, OpenAIChatModel

    def chat(question, earlier=()):
        messages = [m for turn in earlier for m in ({"role": "user", "content": turn},
                                                    {"role": "assistant", "content": "An earlier answer."})]
        return {"model": "ragops", "messages": messages + [{"role": "user", "content": question}]}

    earlier = ["How do I configure the guard that blocks refreshes deleting too many documents? " * 20] * 3
    follow_up, standalone = "And how do I turn it off?", "How are documents validated before indexing?"
    settings = indexed.model_copy(update={"expensive_concurrency": 1, "expensive_queue": 0})
    model = OpenAIChatModel(fake_llm.base_url, "test-model", max_retries=0, breaker=CircuitBreaker(threshold=50))
    with_model, rule_only = make_client(settings, chat_model=model), make_client(settings)
    gates = [client.app.state.cost_gate for client in (with_model, rule_only)]
    for client, gate in zip((with_model, rule_only), gates):
        client.portal.call(gate._slots.acquire)  # an expensive question in flight, for as long as the test says
    try:
        refused = with_model.post("/v1/chat/completions", json=chat(follow_up, earlier))
        alone = with_model.post("/v1/chat/completions", json=chat(standalone, earlier))
        first = with_model.post("/v1/chat/completions", json=chat(follow_up))
        by_rule = rule_only.post("/v1/chat/completions", json=chat(follow_up, earlier))
    finally:
        for client, gate in zip((with_model, rule_only), gates):
            client.portal.call(gate._slots.release)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert fake_llm.condense_calls == 0  # refused before the condensing call
    assert (alone.status_code, first.status_code, by_rule.status_code) == (200, 200, 200)
    assert 'ragops_rate_limited_total{scope="cost"} 1.0' in with_model.get("/metrics").text

    admitted = with_model.post("/v1/chat/completions", json=chat(follow_up, earlier))
    assert admitted.status_code == 200 and fake_llm.condense_calls == 1  # the slot is free again


def test_a_follow_up_is_not_charged_for_a_condensing_call_an_open_circuit_will_not_make(make_client, fake_llm, indexed):
    """The same long follow-up with the model's circuit open: the model is not called (the rule condenses it), so the
    cost gate charges the question alone, which a busy gate still admits."""
    from ragops.answer.llm import CircuitBreaker, OpenAIChatModel

    earlier = ["How do I configure the guard that blocks refreshes deleting too many documents? " * 20] * 3
    messages = [m for turn in earlier for m in ({"role": "user", "content": turn},
                                                {"role": "assistant", "content": "An earlier answer."})]
    body = {"model": "ragops", "messages": messages + [{"role": "user", "content": "And how do I turn it off?"}]}
    settings = indexed.model_copy(update={"expensive_concurrency": 1, "expensive_queue": 0})
    model = OpenAIChatModel(fake_llm.base_url, "test-model", max_retries=0, breaker=CircuitBreaker(threshold=1))
    client = make_client(settings, chat_model=model)
    gate = client.app.state.cost_gate
    client.portal.call(gate._slots.acquire)
    try:
        assert client.post("/v1/chat/completions", json=body).status_code == 429  # closed circuit: charged, refused
        model.breaker.failure()  # one failure opens it (threshold 1)
        assert model.breaker.state == "open"
        reply = client.post("/v1/chat/completions", json=body)
    finally:
        client.portal.call(gate._slots.release)
    assert reply.status_code != 429 and fake_llm.condense_calls == 0
