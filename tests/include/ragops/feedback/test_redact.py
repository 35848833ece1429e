"""Redaction before storage: each kind of secret becomes its placeholder, and planted secrets never survive."""

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from ragops.config import Settings
from ragops.errors import ConfigError
from ragops.feedback.redact import Redactor

KINDS = [
    ("write to jane.doe+ops@example.co.uk today", "jane.doe+ops@example.co.uk", "[email]"),
    ("my key is sk-proj-Abcdefghijklmnop1234567", "sk-proj-Abcdefghijklmnop1234567", "[secret]"),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "[secret]"),
    ("slack xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl", "[secret]"),
    ("aws AKIAIOSFODNN7EXAMPLE key", "AKIAIOSFODNN7EXAMPLE", "[secret]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fw", "eyJhbGciOiJIUzI1NiJ9", "[secret]"),
    ("Authorization: Bearer abc123.def456-ghi", "abc123.def456-ghi", "[secret]"),
    ("login with password=hunter2!", "hunter2", "password=[secret]"),
    ('config {"api_key": "q1w2e3r4"}', "q1w2e3r4", "[secret]"),
    ("digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d081884c7d65", "[secret]"),
    ("card 4111 1111 1111 1111 expired", "4111 1111 1111 1111", "[number]"),
    ("call +1 (555) 123-4567 now", "123-4567", "[number]"),
    ("account 123456789", "123456789", "[number]"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "MIIEow", "[secret]"),
]


@pytest.mark.parametrize("text,secret,placeholder", KINDS)
def test_each_kind_becomes_its_placeholder(text, secret, placeholder):
    out = Redactor()(text)
    assert secret not in out and placeholder in out


def test_ordinary_questions_pass_untouched():
    for text in ("How does the refresh DAG handle 20% deletions in 2024?", "What is RAGOPS_RATE_LIMIT?",
                 "port 5432 and 8 workers", "docs/serving.md#fallbacks"):
        assert Redactor()(text) == text


def test_settings_switch_it_off_set_the_digit_length_and_add_patterns():
    assert Redactor.from_settings(Settings(redact="off"))("a@b.io 123456789") == "a@b.io 123456789"
    assert Redactor.from_settings(Settings(redact="on", redact_min_digits=12))("id 123456789") == "id 123456789"
    custom = Redactor.from_settings(Settings(redact_patterns=[r"EMP-\d{4}"]))
    assert custom("ticket for EMP-1234") == "ticket for [redacted]"
    with pytest.raises(ConfigError):
        Redactor(extra=["(unclosed"])


def test_none_and_empty_stay():
    assert Redactor()(None) is None and Redactor()("") == ""


_words = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz ?.,"), max_size=40)
_secrets = st.one_of(
    st.from_regex(r"[a-z][a-z0-9._]{0,15}@[a-z]{1,10}\.(com|org|io|de)", fullmatch=True),
    st.from_regex(r"sk-[A-Za-z0-9]{20,40}", fullmatch=True),
    st.from_regex(r"ghp_[A-Za-z0-9]{36}", fullmatch=True),
    st.from_regex(r"xox[bp]-[0-9]{10,12}-[A-Za-z0-9]{10,24}", fullmatch=True),
    st.from_regex(r"AKIA[A-Z0-9]{16}", fullmatch=True),
    st.from_regex(r"eyJ[A-Za-z0-9_-]{10,30}\.[A-Za-z0-9_-]{10,30}\.[A-Za-z0-9_-]{10,30}", fullmatch=True),
    st.from_regex(r"[0-9a-f]{40,64}", fullmatch=True).filter(lambda s: any(c.isalpha() for c in s)
                                                             and any(c.isdigit() for c in s)),
    st.from_regex(r"[0-9]{9,19}", fullmatch=True),
    st.from_regex(r"[0-9]{4}( [0-9]{4}){3}", fullmatch=True),
)


@hsettings(max_examples=300, deadline=None)
@given(before=_words, secret=_secrets, after=_words)
def test_planted_secrets_never_survive(before, secret, after):
    out = Redactor()(f"{before} {secret} {after}")
    assert secret not in out
    assert Redactor()(out) == out  # redacting twice changes nothing more


def test_configured_from_the_environment(monkeypatch):
    monkeypatch.setenv("RAGOPS_REDACT", "off")
    assert Settings().redact is False
    monkeypatch.setenv("RAGOPS_REDACT", "on")
    monkeypatch.setenv("RAGOPS_REDACT_PATTERNS", '["INC-\\\\d{5}"]')
    monkeypatch.setenv("RAGOPS_REDACT_MIN_DIGITS", "6")
    redact = Redactor.from_settings(Settings())
    assert redact("INC-12345 from 654321") == "[redacted] from [number]"
