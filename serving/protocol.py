"""uvicorn's HTTP/1.1 protocols, except that a request they cannot parse gets the API's JSON error, not plain text.

Such a request never reaches the app: a body longer than its Content-Length leaves bytes that are parsed as a
malformed next request, and uvicorn answers 400 itself. `ragops serve` runs with `HTTP_PROTOCOL`, chosen as uvicorn's
"auto" does: httptools when it is installed, else h11.
"""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol

from serving.callers import request_id
from serving.guards import error_body


class JsonBadRequest:
    """Mixin over a uvicorn protocol: its 400 for an unparsable request, as the JSON error envelope."""

    def send_400_response(self, msg: str) -> None:
        body = error_body("bad_request", f"the HTTP request could not be parsed: {msg}", request_id(None))
        head = [b"HTTP/1.1 400 Bad Request"] + [name + b": " + value for name, value in
                                                 self.server_state.default_headers]
        head += [b"content-type: application/json", b"content-length: " + str(len(body)).encode(), b"connection: close"]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()


class JsonH11Protocol(JsonBadRequest, H11Protocol):
    pass


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional for uvicorn
    HTTP_PROTOCOL: type = JsonH11Protocol
else:
    class JsonHttpToolsProtocol(JsonBadRequest, HttpToolsProtocol):
        pass

    HTTP_PROTOCOL = JsonHttpToolsProtocol
