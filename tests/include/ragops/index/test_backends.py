"""The process's catalogues: one per configuration (one Weaviate client per process), all closed at shutdown."""

import pytest
from pydantic import SecretStr

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


@pytest.fixture
def keys_sent(monkeypatch, client_double):
    """Every Weaviate connection made from a URL, by the key it sends; each gets a stand-in client."""
    sent = []

    def connect(url, grpc_port=50051, api_key=None):
        sent.append(api_key)
        return client_double(existing={"Ragops_chunks_v1"})

    monkeypatch.setattr("ragops.index.weaviate.connect_url", connect)
    return sent


def _two_keys(settings, **update):
    return settings.model_copy(update={"store": "weaviate", "weaviate_url": "http://weaviate:8080",
                                       "weaviate_api_key": SecretStr("writer-key"),
                                       "weaviate_reader_api_key": SecretStr("reader-key"), **update})


def test_a_writer_sends_the_writer_key_and_a_reader_the_read_only_one(settings, keys_sent):
    open_catalog(_two_keys(settings)).client()
    open_catalog(_two_keys(settings, weaviate_read_only=True)).client()
    assert keys_sent == ["writer-key", "reader-key"]  # two catalogues: the role is part of the configuration


def test_a_reader_refuses_every_write_before_weaviate_sees_it(settings, keys_sent):
    cfg = _two_keys(settings, weaviate_read_only=True)
    catalog, store = open_catalog(cfg), open_store(cfg, "chunks")
    assert store.version() == 1  # reads work
    for write in (lambda: store.apply([], ["file:///a.md"], []), lambda: store.drop(),
                  lambda: catalog.promote("chunks", 1), lambda: catalog.prune("chunks", set()),
                  lambda: catalog.delete("chunks", 1)):
        with pytest.raises(StoreUnavailable, match="read-only key"):
            write()
    assert catalog.client().deleted == [] and catalog.client().alias.targets == {}


def test_a_reader_without_its_own_key_uses_the_writer_key_and_says_so(settings, keys_sent, caplog):
    open_catalog(_two_keys(settings, weaviate_read_only=True, weaviate_reader_api_key=None)).client()
    assert keys_sent == ["writer-key"] and "RAGOPS_WEAVIATE_READER_API_KEY is not set" in caplog.text


def test_the_serving_app_reads_weaviate_with_the_read_only_key(settings, keys_sent):
    from serving.app import create_app

    app = create_app(_two_keys(settings))
    served = app.state.backend.settings
    assert served.weaviate_read_only and not settings.weaviate_read_only  # the caller's settings are untouched
    open_catalog(served).client()
    assert keys_sent == ["reader-key"]
