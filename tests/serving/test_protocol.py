"""A request uvicorn cannot parse gets the API's JSON error envelope, over a raw socket to a real server."""

import json
import socket

import pytest
from fastapi import FastAPI

from support import live_server
from serving.protocol import HTTP_PROTOCOL, JsonH11Protocol


def _raw(url: str, request: bytes) -> bytes:
    """Send bytes as they are (no client library would send a body longer than its Content-Length) and read to EOF."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _responses(stream: bytes) -> list[tuple[bytes, dict]]:
    """Each (head, JSON body) of a stream of HTTP/1.1 responses framed by Content-Length."""
    answers = []
    while stream:
        head, _, rest = stream.partition(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.lower().split(b"\r\n")
                          if line.startswith(b"content-length:")))
        answers.append((head, json.loads(rest[:length])))
        stream = rest[length:]
    return answers


@pytest.mark.parametrize("protocol", sorted({HTTP_PROTOCOL, JsonH11Protocol}, key=lambda p: p.__name__))
def test_a_body_longer_than_its_content_length_gets_the_json_error(protocol):
    app = FastAPI()

    @app.post("/v1/search")
    async def search(body: dict):
        return body

    with live_server(app, http=protocol) as url:
        body = b'{"question":"x"}'
        fine = _raw(url, b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                         b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert fine.startswith(b"HTTP/1.1 200") and fine.endswith(body)  # a well-formed request still reaches the app
        response = _raw(url, b"POST /v1/search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 5\r\n\r\n" + body + b"\x00 trailing bytes\r\n\r\n")
    answers = _responses(response)  # h11 answers the 5 declared bytes (422) before it meets the surplus
    assert all(b"content-type: application/json" in head.lower() for head, _ in answers)
    head, error = answers[-1]
    assert head.startswith(b"HTTP/1.1 400") and error["error"]["code"] == "bad_request"
    assert len(error["request_id"]) == 32
