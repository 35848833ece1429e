"""The fault matrix, "document source" row: an http(s) source served from a local server that goes down, hangs past
the source timeout, answers 500, or answers garbage. The documented outcome: the refresh fails cleanly
(`source_unavailable`, or `refresh_blocked` when the source seems empty), the run records it, an alert is sent,
and the live index does not change."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from support import serve_in_thread

from ragops.cli.main import main


class FlakySource:
    """Serves a folder over HTTP; `mode` injects the fault: ok, error, hang, garbage, truncated (or stop() it)."""

    def __init__(self, folder):
        self.mode = "ok"
        self.release = threading.Event()
        source = self

        class Handler(SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def log_message(self, *args):
                pass

            def do_GET(self):
                if source.mode == "hang":
                    source.release.wait(120)  # never answers within the source timeout
                    return
                if source.mode == "error":
                    self.send_error(500, "boom")
                    return
                if source.mode == "garbage" and self.path.endswith("/"):
                    self._reply(b"\x00\xff\x13 not an index page \x89PNG" * 200, "text/html")
                    return
                if source.mode == "truncated" and not self.path.endswith("/"):
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"# cut short")  # then the connection closes
                    return
                super().do_GET()

            def _reply(self, body, ctype):
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        serve_in_thread(self.server)

    def stop(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(settings, corpus, monkeypatch, embedder):
    """The corpus behind a local HTTP server, indexed once through it; the CLI's settings come from the env."""
    source = FlakySource(corpus)
    monkeypatch.setenv("RAGOPS_HOME", str(settings.home))
    monkeypatch.setenv("RAGOPS_SOURCE", source.url)
    monkeypatch.setenv("RAGOPS_SOURCE_TIMEOUT_S", "1")
    code, report = _refresh()
    assert code == 0 and report["documents"]["added"] == 6, report
    yield source, settings
    source.stop()


def _refresh():
    """`ragops refresh --json` in this process (the embedding model stays loaded): (exit code, its JSON)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["refresh", "--json"])
    return code, json.loads(out.getvalue())


def _index(settings):
    from ragops.index import open_store
    from ragops.registry import Registry
    from ragops.registry.db import live_index_version

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        live = live_index_version(s).id
    registry.dispose()
    return live, sorted(r["chunk_id"] for r in open_store(settings).rows(["chunk_id"]))


def _last_run(settings):
    from ragops.registry import Registry
    from ragops.registry.models import RefreshRun

    registry = Registry(settings.registry_url)
    with registry.session() as s:
        run = s.scalars(select(RefreshRun).order_by(RefreshRun.id.desc())).first()
        status, error = run.status, run.error
    registry.dispose()
    return status, error


def _alerts(settings):
    lines = (settings.home / "outbox.jsonl").read_text().splitlines()
    return [m for m in map(json.loads, lines) if m["kind"] == "alert"]


def _fails_cleanly(source, settings, mode, code, exit_code, words):
    before = _index(settings)
    if mode == "down":
        source.stop()
    else:
        source.mode = mode
    got, payload = _refresh()
    assert got == exit_code, payload
    assert payload["error"]["code"] == code and words in payload["error"]["message"], payload
    status, error = _last_run(settings)
    assert status in ("failed", "blocked") and words in error
    assert _index(settings) == before  # a failed refresh changes nothing in the index
    [alert] = _alerts(settings)
    assert code in alert["text"] or "refresh" in alert["text"].lower()
    return payload["error"]["message"]


@pytest.mark.fault("document source", "down")
def test_source_down(served, matrix):
    source, settings = served
    _fails_cleanly(source, settings, "down", "source_unavailable", 1, "cannot read")
    matrix.record("refresh fails with source_unavailable (exit 1, one JSON error), the run is recorded failed, "
                  "an alert is sent, the index is unchanged")


@pytest.mark.fault("document source", "slow past its timeout")
def test_source_hangs(served, matrix):
    source, settings = served
    message = _fails_cleanly(source, settings, "hang", "source_unavailable", 1, "did not answer")
    assert "within 1 s" in message
    matrix.record("after RAGOPS_SOURCE_TIMEOUT_S: source_unavailable (exit 1, JSON), run recorded failed, alert sent, "
                  "index unchanged")


@pytest.mark.fault("document source", "error status")
def test_source_answers_500(served, matrix):
    source, settings = served
    _fails_cleanly(source, settings, "error", "source_unavailable", 1, "HTTP 500")
    matrix.record("source_unavailable naming the HTTP status (exit 1, JSON), run recorded failed, alert sent, "
                  "index unchanged")


@pytest.mark.fault("document source", "malformed reply")
def test_source_sends_truncated_documents(served, matrix):
    source, settings = served
    _fails_cleanly(source, settings, "truncated", "source_unavailable", 1, "cannot read")
    matrix.record("a body shorter than its Content-Length: source_unavailable (exit 1, JSON), run recorded failed, "
                  "alert sent, index unchanged")


@pytest.mark.fault("document source", "malformed reply (garbage index page)")
def test_source_lists_garbage(served, matrix):
    source, settings = served
    _fails_cleanly(source, settings, "garbage", "refresh_blocked", 2, "lists no documents")
    matrix.record("no documents can be listed: refresh_blocked by the guard (exit 2, JSON), run recorded blocked, "
                  "alert sent, index unchanged")
