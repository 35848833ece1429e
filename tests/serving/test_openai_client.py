"""The official openai client against a running `ragops serve` (a subprocess on a free 127.0.0.1 port), whose
language model is a fake that speaks the real streaming protocol: answers streamed and not, a follow-up question, a
fallback, a model that stalls mid-answer, and a client that leaves mid-stream."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from support import REPO, FakeLLM, events, free_port, served_latency, stop_group

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]  # the server loads the embedding model
DEADLINE_S = 4  # RAGOPS_LLM_DEADLINE_S of the server: a stalled model is cut off at it
QUESTION = "What blocks a mass delete?"


class Served:
    def __init__(self, base: str, settings, key: str, llm: FakeLLM, pid: int = 0):
        self.base, self.settings, self.key, self.llm, self.pid = base, settings, key, llm, pid

    def client(self, **kw):
        from openai import OpenAI

        return OpenAI(base_url=f"{self.base}/v1", api_key=self.key, max_retries=0, timeout=60, **kw)

    def event(self, request_id: str):
        """The request event of a request, once the server's writer has stored it (it writes in batches)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            rows = events(self.settings, request_id=request_id)
            if rows:
                return rows[0]
            time.sleep(0.2)
        raise AssertionError(f"no request event for {request_id}")


@pytest.fixture(scope="module")
def served(indexed_template, tmp_path_factory):
    from ragops.audit.apikeys import issue
    from ragops.config import Settings

    corpus, template_home, _ = indexed_template
    root = tmp_path_factory.mktemp("openai-client")
    shutil.copytree(template_home, root / "home")
    settings = Settings(home=root / "home", source=corpus.as_uri())
    key, _ = issue(root / "keys.yaml", "chat-ui")
    llm, port = FakeLLM(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGOPS_") or k.startswith("RAGOPS_TEST_")}
    env |= {"RAGOPS_HOME": str(settings.home), "RAGOPS_SOURCE": settings.source, "RAGOPS_API_KEYS": str(root / "keys.yaml"),
            "RAGOPS_LLM_BASE_URL": llm.base_url, "RAGOPS_LLM_MODEL": "test-model",
            "RAGOPS_LLM_DEADLINE_S": str(DEADLINE_S), "RAGOPS_LLM_TIMEOUT_S": str(DEADLINE_S),
            "RAGOPS_RATE_LIMIT": "1000/minute", "RAGOPS_RATE_LIMIT_ADDRESS": "1000/minute",
            "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "include"), env.get("PYTHONPATH", "")])}
    log = (root / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "ragops", "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, (root / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "ragops serve did not start"
            time.sleep(0.5)
        yield Served(base, settings, key, llm, proc.pid)
    finally:
        stop_group(proc)
        log.close()
        llm.close()


@pytest.fixture
def llm(served):
    served.llm.mode, served.llm.released = "ok", __import__("threading").Event()
    served.llm.disconnected.clear()
    yield served.llm
    served.llm.released.set()  # a stalled fake handler returns


def _ask(question=QUESTION):
    return [{"role": "system", "content": "You are Open WebUI's default assistant."},
            {"role": "user", "content": question}]


def test_models_and_a_completion(served, llm):
    client = served.client()
    assert [m.id for m in client.models.list().data] == ["ragops", "live"]  # with a key: the releases too
    reply = client.chat.completions.create(model="ragops", messages=_ask())
    text = reply.choices[0].message.content
    assert text.startswith(llm.reply) and "\n\nSources:\n[1] " in text and reply.choices[0].finish_reason == "stop"
    ext = reply.model_extra["ragops"]
    assert ext["fallback"] is None and ext["citations"][0]["n"] == 1 and ext["variant"] == "stable"
    event = served.event(ext["request_id"])
    assert event.status == 200 and event.verified and event.question == QUESTION and event.endpoint.endswith("completions")


def test_a_streamed_completion(served, llm):
    stream = served.client().chat.completions.create(model="ragops", messages=_ask(), stream=True)
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(pieces).startswith(llm.reply) and pieces[0] == llm.reply.split(" ")[0] + " "  # token by token
    assert pieces[-1].startswith("\n\nSources:\n[1] ")
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop" and final.model_extra["ragops"]["fallback"] is None
    assert served.event(final.model_extra["ragops"]["request_id"]).status == 200


def test_a_follow_up_is_condensed_before_retrieval(served, llm):
    llm.condensed, before = "How do I turn off the guard that blocks a mass delete?", llm.condense_calls
    messages = _ask() + [{"role": "assistant", "content": llm.reply},
                         {"role": "user", "content": "and how do I turn it off?"}]
    reply = served.client().chat.completions.create(model="ragops", messages=messages)
    ext = reply.model_extra["ragops"]
    assert llm.condense_calls == before + 1 and ext["query"] == llm.condensed
    assert f"Question: {llm.condensed}" in llm.last_prompt
    event = served.event(ext["request_id"])
    assert event.question == "and how do I turn it off?" and event.query == llm.condensed


def test_a_model_that_is_down_is_an_ordinary_message_with_its_code(served, llm):
    llm.mode = "error"
    for stream in (False, True):
        reply = served.client().chat.completions.create(model="ragops", messages=_ask(), stream=stream)
        if stream:
            chunks = list(reply)
            text = "".join(c.choices[0].delta.content or "" for c in chunks)
            ext = chunks[-1].model_extra["ragops"]
        else:
            text, ext = reply.choices[0].message.content, reply.model_extra["ragops"]
        assert ext["fallback"] == "llm_unavailable" and "language model is down" in text
        event = served.event(ext["request_id"])
        assert (event.status, event.fallback) == (503, "llm_unavailable")  # an error to the canary gate


def test_a_model_that_stalls_mid_stream_ends_with_a_clear_final_chunk(served, llm):
    llm.mode = "stall"  # three words, then nothing
    chunks = list(served.client().chat.completions.create(model="ragops", messages=_ask(), stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith(" ".join(llm.reply.split(" ")[:3])) and "[The answer was cut off" in text
    final = chunks[-1]
    assert final.choices[0].finish_reason == "length"
    assert final.model_extra["ragops"]["truncated"] is True and final.model_extra["ragops"]["fallback"] == "llm_unavailable"
    event = served.event(final.model_extra["ragops"]["request_id"])
    assert (event.status, event.fallback) == (503, "llm_unavailable") and event.error.startswith("truncated mid-answer")


def test_a_client_that_leaves_cancels_the_model_and_is_recorded(served, llm):
    llm.mode = "stall"
    stream = served.client().chat.completions.create(model="ragops", messages=_ask(), stream=True)
    request_id = stream.response.headers["x-request-id"]
    words = 0
    for chunk in stream:
        words += bool(chunk.choices[0].delta.content)
        if words == 3:  # all the stalled model sent
            break
    stream.close()  # the client leaves mid-answer
    assert llm.disconnected.wait(30), "the upstream call to the model was not closed"
    event = served.event(request_id)
    # 499, not the 503 of the model's deadline: the server saw the client leave and cancelled the answer
    assert event.status == 499 and event.error == "client_disconnected" and event.question == QUESTION
    # counted as a disconnect, not observed as an answer's latency (issue 25 leftover)
    counted, observed = served_latency(httpx.get(served.base + "/metrics", timeout=30).text, "/v1/chat/completions")
    assert counted["499"] >= 1 and observed == sum(n for status, n in counted.items() if not status.startswith("4"))


def test_clients_that_leave_leak_no_thread_of_the_server(served, llm):
    """Attacked after landing (issue 25), found holding: each client that leaves mid-stream closes its upstream and
    the server's threads stay as many as before (its asyncio tasks cannot be counted from outside; its threads can)."""
    llm.mode = "stall"

    def leave():
        llm.disconnected.clear()
        stream = served.client().chat.completions.create(model="ragops", messages=_ask(), stream=True)
        words = 0
        for chunk in stream:
            words += bool(chunk.choices and chunk.choices[0].delta.content)
            if words == 3:
                break
        stream.close()
        assert llm.disconnected.wait(30), "the upstream call to the model was not closed"

    def threads() -> int:
        return len(os.listdir(f"/proc/{served.pid}/task"))

    for _ in range(3):  # the first ones may start the server's worker threads
        leave()
    before = threads()
    for _ in range(10):
        leave()
    # a leak holds one thread per client that left (+10 here); a worker pool that grows on demand on a busy machine
    # (a request's cleanup still in a thread when the next one starts) adds a few at most, and no more
    assert threads() < before + 5
