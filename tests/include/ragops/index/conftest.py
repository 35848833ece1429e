"""Fixtures for the index tests: the weaviate-client doubles of tests/weaviate_doubles.py."""

import pytest

from weaviate_doubles import ClientDouble, FlakyCollection


@pytest.fixture
def flaky():
    return FlakyCollection


@pytest.fixture
def client_double():
    return ClientDouble
