"""Credentials as users paste them from config files and connection strings (attack round on issue 23): an
environment variable's value, a Stripe or Hugging Face key, a password in a URL. Ordinary questions naming the same
settings keep their meaning."""

import pytest

from ragops.feedback.redact import Redactor

PASTED = [
    ("export DB_PASSWORD=hunter2x and retry", "hunter2x"),
    ("my_password: hunter2x", "hunter2x"),
    ("ACCESS_TOKEN=abcd1234efgh in the env", "abcd1234efgh"),
    ('"refresh_token": "abcdEFGH1234"', "abcdEFGH1234"),
    ("SECRET_KEY=django-insecure-abc123", "django-insecure-abc123"),
    ("RAGOPS_SESSION_SECRET=q1w2e3r4t5 is set", "q1w2e3r4t5"),
    ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7 fails", "4eC39HqLyjWDarjtT1zdp7"),
    ("rk_test_51HabcdefghijklmnOP", "51HabcdefghijklmnOP"),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH as HF token", "abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    ("redis://:s3cretpass@cache:6379/0 refuses me", "s3cretpass"),
    ("amqp://guest:guestpw@rabbit/vhost", "guestpw"),
    ("postgresql+psycopg://app:pa55word@db.internal:5432/ragops", "pa55word"),
]


@pytest.mark.parametrize("text,secret", PASTED, ids=[p[1] for p in PASTED])
def test_pasted_credentials_do_not_survive(text, secret):
    out = Redactor()(text)
    assert secret not in out and "[secret]" in out
    assert Redactor()(out) == out


def test_questions_about_the_same_settings_pass_untouched():
    for text in ("What is RAGOPS_SESSION_SECRET for?", "how do I set RAGOPS_SLACK_TOKEN", "max_tokens is 512",
                 "what does token_budget do", "connect to redis://cache:6379/0", "see https://docs.example.com/a:b",
                 "the skip_level_rollout flag"):
        assert Redactor()(text) == text


def test_many_url_schemes_stay_linear():
    """Each "://" starts a URL whose password is scanned at most 256 characters: 120 KB of them take milliseconds (CPU
    time, with the same two orders of margin as test_redact.py's adversarial inputs)."""
    import time

    started = time.process_time()
    Redactor()("x://y:" * 20_000)
    assert time.process_time() - started < 3.0
