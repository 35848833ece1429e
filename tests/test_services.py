"""The test run finds the local PostgreSQL and Redis by itself, and names what it could not find."""

import os

import services


def test_a_service_that_does_not_answer_is_named_with_the_reason(monkeypatch):
    monkeypatch.delenv("RAGOPS_TEST_REDIS_URL", raising=False)
    monkeypatch.setattr(services, "DEFAULTS", {"RAGOPS_TEST_REDIS_URL": ("Redis", "redis://127.0.0.1:9/15", 9)})
    assert services.detect() == {"Redis": "nothing answers on 127.0.0.1:9 and RAGOPS_TEST_REDIS_URL is unset"}
    assert "RAGOPS_TEST_REDIS_URL" not in os.environ


def test_an_explicit_url_is_never_replaced(monkeypatch):
    monkeypatch.setenv("RAGOPS_TEST_DATABASE_URL", "postgresql+psycopg://ci@db:5432/test")
    monkeypatch.setattr(services, "DEFAULTS", {"RAGOPS_TEST_DATABASE_URL": ("PostgreSQL", "postgresql://x@127.0.0.1:9/p", 9)})
    assert services.detect() == {}
    assert os.environ["RAGOPS_TEST_DATABASE_URL"] == "postgresql+psycopg://ci@db:5432/test"
