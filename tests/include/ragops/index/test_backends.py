"""The process's catalogues: one per configuration (one Weaviate client per process), all closed at shutdown."""

import pytest

from ragops.errors import StoreUnavailable
from ragops.index import close_backends, open_catalog, open_store
from ragops.index.backends import open_catalogs, use_weaviate_client


@pytest.fixture(autouse=True)
def fresh_process_state():
    close_backends()
    yield
    close_backends()


def test_one_catalog_per_configuration(settings, tmp_path):
    assert open_catalog(settings) is open_catalog(settings.model_copy())
    other = settings.model_copy(update={"home": tmp_path / "elsewhere"})
    assert open_catalog(other) is not open_catalog(settings) and len(open_catalogs()) == 2
    close_backends()
    assert open_catalogs() == []


def test_weaviate_needs_a_url_or_a_connection(settings):
    with pytest.raises(StoreUnavailable, match="RAGOPS_WEAVIATE_URL.*weaviate_default"):
        open_catalog(settings.model_copy(update={"store": "weaviate"}))


def test_a_client_factory_takes_precedence_and_is_closed_at_shutdown(settings, client_double):
    made = []

    def factory():
        made.append(client_double(existing={"Ragops_chunks_v3"}))
        return made[-1]

    use_weaviate_client(factory)
    cfg = settings.model_copy(update={"store": "weaviate", "weaviate_url": "http://127.0.0.1:9"})
    store = open_store(cfg, "chunks", read_only_version=3)  # pinned through the protocol
    assert store.version() == 3 and open_catalog(cfg) is open_catalog(cfg)
    assert len(made) == 1 and not made[0].closed
    close_backends()  # serving shutdown, CLI exit, Airflow task end
    assert made[0].closed
    with pytest.raises(StoreUnavailable, match="127.0.0.1:9"):  # the factory is forgotten: back to the URL
        open_store(cfg, "chunks").count()
