"""Who is calling: a verified API key, or else the client address (an IPv6 one by its /64). A body's `user_id` is
never an identity: it only sub-keys routing within a verified key. Callers without a key are routed by a session the
server issued (sessions.py).

The address is the socket's peer, or, when that peer is one of RAGOPS_TRUSTED_PROXIES, the nearest untrusted
address of X-Forwarded-For (uvicorn's ProxyHeadersMiddleware does that rewrite; nothing else believes the header).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from ragops.audit.apikeys import ApiKeys
from ragops.config import Settings
from ragops.errors import RagopsError
from ragops.releases import routing_key
from serving.sessions import HEADER, Sessions

IPV6_NETWORK = 64  # the prefix one IPv6 subscriber commonly holds whole: one caller, one budget, one user
REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII; stored bounded to its column (ragops.registry.bounds)


class InvalidApiKey(RagopsError):
    code = "invalid_api_key"


@dataclass(frozen=True)
class Caller:
    bucket: str  # the rate-limit bucket: key:<name> or addr:<address>
    limit: str  # that bucket's limit
    key: str | None = None  # the API key's name when one was presented and verified
    route: str = ""  # what the router hashes into a variant (ragops.releases.routing_key)
    synthetic: bool = False  # the platform's probe credential (RAGOPS_PROBE_KEY) sent it
    session: str | None = None  # a session token issued with this response

    @property
    def verified(self) -> bool:
        return self.key is not None

    @property
    def user(self) -> str:
        """Who the request events (and so the canary gate) count: the routed user behind a verified key, else the
        address, because anyone can start as many sessions as they like."""
        return self.route if self.verified else self.bucket


class Callers:
    def __init__(self, settings: Settings):
        self.keys = ApiKeys.load(settings.api_keys)
        self.key_limit = settings.rate_limit
        self.address_limit = settings.rate_limit_address
        self.probe_key = settings.probe_key
        self.sessions = Sessions(settings)

    def identify(self, request: Request, user_id: str | None = None) -> Caller:
        """A verified key routes by itself, sub-keyed by the `user_id` of the user it fronts; a caller without a key
        by the session it was issued, else (issuing one) by its address. Its own `user_id` is ignored."""
        presented = presented_key(request)
        if presented is not None:
            key = self.keys.verify(presented)
            if key is None:
                raise InvalidApiKey("the API key is not valid (unknown or revoked); send a valid key or none")
            bucket = f"key:{key.name}"
            return Caller(bucket, key.rate_limit or self.key_limit, key.name, routing_key(bucket, user_id),
                          synthetic=key.name == self.probe_key)
        bucket = f"addr:{address_key(request.client.host if request.client else 'unknown')}"
        session = self.sessions.verify(request.headers.get(HEADER))
        if session is not None:
            return Caller(bucket, self.address_limit, route=f"session:{session}")
        return Caller(bucket, self.address_limit, route=bucket, session=self.sessions.issue())


def address_key(host: str) -> str:
    """The caller an address stands for: an IPv4 address itself (an IPv4-mapped IPv6 one too), an IPv6 address its
    /64, since one host may use any address of it. A host that is not an address (a test client) stays as it is."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/{IPV6_NETWORK}", strict=False)) if ip.version == 6 else str(ip)


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth is not None:
        token = bearer_token(auth)
        return auth if token is None else token
    return request.headers.get("x-api-key")


def bearer_token(header: str | None) -> str | None:
    """The credential of an `Authorization: Bearer` header, else None. The scheme is case-insensitive (RFC 7235),
    so `bearer` must name the same client for /v1 and for MCP alike."""
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    return header if header and REQUEST_ID.fullmatch(header) else uuid.uuid4().hex
