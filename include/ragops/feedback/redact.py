"""Redaction of what users type, before it is stored: e-mail addresses, credentials and long digit runs become typed
placeholders (`[email]`, `[secret]`, `[number]`, `[redacted]` for the operator's own patterns).

Applied to questions, searched queries and feedback comments on their way to the registry (serving/app.py,
`ragops ask`, votes.py), so the registry never holds them unredacted. It errs on the side of privacy: a long run of
letters and digits that only looks like a key is redacted too. Configured by RAGOPS_REDACT, RAGOPS_REDACT_PATTERNS
and RAGOPS_REDACT_MIN_DIGITS (docs/privacy.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ragops.config import Settings
from ragops.errors import ConfigError

EMAIL, SECRET, NUMBER, CUSTOM = "[email]", "[secret]", "[number]", "[redacted]"

# Each rule: a cheap test that the pattern may be present (so most questions skip the regex), the pattern, and what
# replaces it. Order matters: keys and tokens go before digit runs, since many keys contain digits.
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL)
# Every pattern starts only where its run of characters starts (a lookbehind, not \b), so a long run that fails to
# match is scanned once, not once per position: redaction stays linear in the text (no catastrophic backtracking).
# \w, not [A-Za-z0-9], so internationalised addresses (jürgen@exämple.de) are caught too.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_BEARER = re.compile(r"\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# A name may end an environment variable's (DB_PASSWORD=, ACCESS_TOKEN=, SECRET_KEY=): it starts after anything but a
# letter or digit, so after `_` too.
_ASSIGNED = re.compile(  # password=..., "api_key": "...", secret: ...
    r"(?<![A-Za-z0-9])((?:password|passwd|pwd|pw|passphrase|secret|secret[_-]?key|client[_-]?secret|token|"
    r"api[_-]?key|apikey|access[_-]?key|auth|private[_-]?key)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;]+", re.IGNORECASE)
# the password of a URL's user info (redis://:pw@host, amqp://user:pw@host), bounded so that many "://" stay linear
_URL_PASSWORD = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]{0,256}:)[^\s/?#@]{1,256}@")
_KEYS = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"  # OpenAI, Anthropic, Stripe style
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"  # GitHub
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"  # AWS access key ids
    r"|\bAIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWTs
    r"|\bglpat-[A-Za-z0-9_-]{20}"  # GitLab
    r"|\b[spr]k_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe
    r"|\bhf_[A-Za-z0-9]{30,}")  # Hugging Face
# a long run of key-like characters mixing letters and digits: hex digests, base64 secrets
_OPAQUE = re.compile(r"(?<![A-Za-z0-9+/_=-])(?=[A-Za-z0-9+/_=-]*\d)(?=[A-Za-z0-9+/_=-]*[A-Za-z])"
                     r"[A-Za-z0-9+/_-]{32,}={0,2}")


# Controls that drive a terminal or reorder text (`ragops gaps` prints questions; the page and Slack show them): C0 but
# tab and newline, DEL and C1, invisible spaces, bidirectional embeddings, overrides and isolates. The joiners and
# direction marks (U+200C-U+200F) stay: scripts and emoji need them, and they reorder nothing. Dropped whether
# redaction is on or off.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def printable(text: str) -> str:
    """`text` without the control and formatting characters that could drive a terminal or disguise what it says."""
    return _CONTROLS.sub("", text)


def _digits(min_digits: int) -> re.Pattern:
    """A run of at least `min_digits` digits, allowing the separators of card, phone and account numbers. It starts
    where a number starts (not inside one, not after `_` as in `chunks_20241215103000_repair`) and never at an ISO
    date, so "the refresh at 2024-01-15 10:20" keeps its time."""
    return re.compile(r"(?<![\d_])(?!\d{4}-[01]\d-[0-3]\d(?!\d))\+?\(?\d(?:[ ().-]{0,2}\d){%d,}" % (min_digits - 1))


@dataclass
class Redactor:
    enabled: bool = True
    min_digits: int = 9
    extra: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._numbers = _digits(self.min_digits)
        try:
            self._extra = [re.compile(p) for p in self.extra]
        except re.error as exc:
            raise ConfigError(f"RAGOPS_REDACT_PATTERNS holds an invalid regular expression: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> "Redactor":
        return cls(settings.redact, settings.redact_min_digits, list(settings.redact_patterns))

    def __call__(self, text: str | None) -> str | None:
        if not text:
            return text
        text = printable(text)
        if not self.enabled:
            return text
        if "-----BEGIN" in text:
            text = _PEM.sub(SECRET, text)
        if "://" in text:  # before e-mail addresses, which a URL's "password@host.domain" resembles
            text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{SECRET}@", text)
        if "@" in text:
            text = _EMAIL.sub(EMAIL, text)
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{SECRET}", text)
        text = _ASSIGNED.sub(lambda m: f"{m.group(1)}{SECRET}", text)
        text = _KEYS.sub(SECRET, text)
        text = _OPAQUE.sub(SECRET, text)
        for pattern in self._extra:
            text = pattern.sub(CUSTOM, text)
        return self._numbers.sub(NUMBER, text)
