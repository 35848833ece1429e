"""A fake OpenAI-compatible language model server for the tests, streaming included (re-exported by support.py)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeLLM:
    """Speaks the OpenAI chat-completions protocol; `mode` injects outages: ok, slow, error, malformed, empty, and
    hang (no answer until `released` is set, which close() does); `decline` answers that the passages do not hold
    the answer; `drip` answers GET /models with its headers and then one byte a second, never finishing.

    A request with `stream: true` is answered as the real API streams: `chat.completion.chunk` server-sent events, a
    word each, then `data: [DONE]`; mode `stall` sends the first words and then nothing until released or the
    client leaves (`disconnected` is set then). `finish_reason` is what an answer ends with ("length": the model's
    own token limit stopped it), streamed or not. A request to condense a follow-up (its system prompt asks for a
    standalone query) is answered with `condensed` and counted in `condense_calls`."""

    def __init__(self):
        self.mode = "ok"
        self.calls = 0
        self.gets = 0  # GET requests (/models)
        self.last_prompt = ""
        self.last_system = ""
        self.reply = "Refreshes that delete too much are blocked by a guard [1]."
        self.released = threading.Event()
        self.disconnected = threading.Event()
        self.streams = 0  # streamed requests
        self.condensed = "How do I turn off the refresh guard?"
        self.condense_calls = 0
        self.finish_reason = "stop"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, ctype="application/json"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                fake.gets += 1
                if fake.mode == "drip":
                    return self._drip()
                self._send(200, json.dumps({"object": "list", "data": [{"id": "test-model", "object": "model"}]}).encode())

            def _drip(self):
                """Headers at once, then a byte a second until released or the client leaves."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    while True:
                        self.wfile.write(b" ")
                        self.wfile.flush()
                        if fake.released.wait(1.0):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up

            def do_POST(self):
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if "standalone search query" in payload["messages"][0]["content"]:
                    fake.condense_calls += 1
                    return self._reply(payload, fake.condensed, "stop")
                fake.calls += 1
                fake.last_prompt = payload["messages"][-1]["content"]
                fake.last_system = payload["messages"][0]["content"]
                if payload.get("stream") and fake.mode in ("ok", "stall", "decline"):
                    return self._stream(payload)
                if fake.mode == "hang":
                    fake.released.wait(120)
                if fake.mode == "slow":
                    time.sleep(2.0)
                if fake.mode == "error":
                    return self._send(500, b'{"error": {"message": "boom"}}')
                if fake.mode == "malformed":
                    return self._send(200, b'{"choices": [ {"message": ')
                content = "" if fake.mode == "empty" else fake.reply
                if fake.mode == "decline":
                    content = "No matching information was found in the provided passages."
                self._reply(payload, content, fake.finish_reason)

            def _reply(self, payload, content, finish):
                self._send(200, json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": payload.get("model"),
                    "choices": [{"index": 0, "finish_reason": finish,
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode())

            def _stream(self, payload):
                fake.streams += 1
                content = ("No matching information was found in the provided passages." if fake.mode == "decline"
                           else fake.reply)
                words = [w + " " for w in content.split(" ")]
                words[-1] = words[-1].rstrip()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()

                def event(delta, finish=None):
                    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": payload.get("model"),
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                try:
                    event({"role": "assistant", "content": ""})
                    for n, word in enumerate(words):
                        if fake.mode == "stall" and n == 3:
                            return self._stall()
                        event({"content": word})
                    event({}, fake.finish_reason)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    fake.disconnected.set()

            def _stall(self):
                """Nothing more until released, or until the client closes the connection (then `disconnected`)."""
                import select

                while not fake.released.is_set():
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                    if readable and not self.connection.recv(1):
                        fake.disconnected.set()
                        return
                self.close_connection = True

        from support import serve_in_thread

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        serve_in_thread(self.server)

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
