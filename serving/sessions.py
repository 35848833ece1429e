"""Sticky sessions for callers without an API key: the server issues an `X-Ragops-Session` token and believes only
tokens it signed, so a caller cannot choose its session (and with it its variant) by naming one.

A token is `<id>.<signature>`: 128 random bits and their HMAC-SHA256 under RAGOPS_SESSION_SECRET. Anyone may ask for
as many sessions as they like, so a session keeps routing sticky but is not an identity the canary gate trusts
(RAGOPS_ROLLOUT_ANONYMOUS decides what the gate makes of anonymous traffic).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets

from ragops.config import Settings

log = logging.getLogger(__name__)
HEADER = "X-Ragops-Session"
MAX_TOKEN = 80  # an id and a signature are 66 characters; a longer header is not read further


class Sessions:
    def __init__(self, settings: Settings):
        if settings.session_secret is None:
            log.warning("RAGOPS_SESSION_SECRET is not set: sessions are signed with a random secret and end with this "
                        "process (and differ between replicas)")
        secret = settings.session_secret.get_secret_value() if settings.session_secret else secrets.token_hex(32)
        self._key = secret.encode()

    def issue(self) -> str:
        """The token of a new session."""
        session = secrets.token_urlsafe(16)
        return f"{session}.{self._sign(session)}"

    def verify(self, token: str | None) -> str | None:
        """The session id of a token this server signed, else None."""
        session, _, signature = (token or "")[:MAX_TOKEN].partition(".")
        if not session or not hmac.compare_digest(signature.encode(), self._sign(session).encode()):
            return None
        return session

    def _sign(self, session: str) -> str:
        # the stdlib's HMAC is all this needs; a signing library would add a dependency for one call
        digest = hmac.new(self._key, session.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
