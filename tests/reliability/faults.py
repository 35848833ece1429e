"""Fault injectors for the matrix: a TCP proxy that can cut or garble a database link, a fake Slack Web API."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support import serve_in_thread


class TcpProxy:
    """127.0.0.1:<port> -> target. mode: up (forward), down (every connection is cut), garbage (answers noise)."""

    def __init__(self, target_host: str, target_port: int, mode: str = "up"):
        self.target = (target_host, target_port)
        self.mode = mode
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str) -> None:
        self.mode = mode
        if mode != "up":
            with self._lock:
                for s in list(self._open):
                    _close(s)
                self._open.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "down":
                _close(client)
            elif self.mode == "garbage":
                try:
                    client.sendall(b"\x00\xffNOT POSTGRES\x17" * 64)
                except OSError:
                    pass
                _close(client)
            else:
                try:
                    upstream = socket.create_connection(self.target, timeout=10)
                except OSError:
                    _close(client)
                    continue
                with self._lock:
                    self._open |= {client, upstream}
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                _close(s)
                with self._lock:
                    self._open.discard(s)

    def close(self) -> None:
        self._closed = True
        self.set("down")
        _close(self.listener)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


class FakeSlack:
    """The Slack Web API (chat.postMessage) on loopback; `mode`: ok, hang, error (HTTP 500), ratelimited (429 with
    Retry-After), not_ok ({"ok": false}), malformed (not JSON). `posted` lists the texts it accepted, in order."""

    def __init__(self):
        self.mode = "ok"
        self.posted: list[str] = []
        self.released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body: bytes, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if fake.mode == "hang":
                    fake.released.wait(60)
                    return
                if fake.mode == "error":
                    return self._send(500, b"upstream error")
                if fake.mode == "ratelimited":
                    return self._send(429, b'{"ok": false, "error": "ratelimited"}', {"Retry-After": "30"})
                if fake.mode == "not_ok":
                    return self._send(200, b'{"ok": false, "error": "channel_not_found"}')
                if fake.mode == "malformed":
                    return self._send(200, b'{"ok": tru')
                try:
                    payload = json.loads(raw or b"{}")
                except ValueError:
                    from urllib.parse import parse_qs

                    payload = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                fake.posted.append(payload.get("text", ""))
                self._send(200, json.dumps({"ok": True, "channel": "C1", "ts": f"{time.time():.6f}"}).encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        serve_in_thread(self.server)

    def close(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
