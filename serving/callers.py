"""Who is calling: a verified API key, or else the client address. A body's `user_id` is never an identity.

The address is the socket's peer, or, when that peer is one of RAGOPS_TRUSTED_PROXIES, the nearest untrusted
address of X-Forwarded-For (uvicorn's ProxyHeadersMiddleware does that rewrite; nothing else believes the header).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from starlette.requests import Request

from ragops.audit.apikeys import ApiKeys
from ragops.config import Settings
from ragops.errors import RagopsError

REQUEST_ID = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII; stored bounded to its column (ragops.registry.bounds)


class InvalidApiKey(RagopsError):
    code = "invalid_api_key"


@dataclass(frozen=True)
class Caller:
    bucket: str  # the rate-limit bucket: key:<name> or addr:<address>
    limit: str  # that bucket's limit
    key: str | None = None  # the API key's name when one was presented and verified


class Callers:
    def __init__(self, settings: Settings):
        self.keys = ApiKeys.load(settings.api_keys)
        self.key_limit = settings.rate_limit
        self.address_limit = settings.rate_limit_address

    def identify(self, request: Request) -> Caller:
        presented = presented_key(request)
        if presented is not None:
            key = self.keys.verify(presented)
            if key is None:
                raise InvalidApiKey("the API key is not valid (unknown or revoked); send a valid key or none")
            return Caller(f"key:{key.name}", key.rate_limit or self.key_limit, key.name)
        return Caller(f"addr:{request.client.host if request.client else 'unknown'}", self.address_limit)


def presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else auth
    return request.headers.get("x-api-key")


def request_id(header: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    return header if header and REQUEST_ID.fullmatch(header) else uuid.uuid4().hex
