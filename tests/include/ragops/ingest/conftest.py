import pytest

from ragops.ingest.refresh import Refresher


@pytest.fixture
def refresher(settings, corpus, embedder):
    return Refresher(settings, embedder=embedder)
