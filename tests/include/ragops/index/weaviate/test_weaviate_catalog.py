"""The Weaviate catalogue without a server: one client per process, closed with the last store; the live alias."""

import socket

import pytest

from ragops.errors import StoreUnavailable
from ragops.index.weaviate import WeaviateCatalog, connect_url


class Factory:
    def __init__(self, client_double, **kwargs):
        self.made = []
        self._make = lambda: client_double(**kwargs)

    def __call__(self):
        self.made.append(self._make())
        return self.made[-1]


def test_one_client_shared_by_stores_and_closed_with_the_last(client_double):
    factory = Factory(client_double, existing={"Ragops_chunks_v1"})
    catalog = WeaviateCatalog(factory)
    first, second = catalog.open("chunks"), catalog.open("chunks", 1)
    assert first.exists() and second.version() == 1
    assert len(factory.made) == 1  # one client, however many stores
    first.close()
    assert not factory.made[0].closed
    second.close()
    assert factory.made[0].closed and not catalog.connected
    first.close()  # closing twice changes nothing
    assert catalog.open("chunks").exists() and len(factory.made) == 2  # opened again on demand
    catalog.close()
    assert factory.made[1].closed


def test_a_server_without_aliases_is_refused_and_its_client_closed(client_double):
    factory = Factory(client_double, version="1.30.0")
    store = WeaviateCatalog(factory).open("chunks")
    with pytest.raises(StoreUnavailable, match="1.32"):
        store.exists()
    assert factory.made[0].closed


def test_an_unreachable_server_is_a_clear_store_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    store = WeaviateCatalog(lambda: connect_url(f"http://127.0.0.1:{port}", port + 1)).open("chunks")
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        store.count()


def test_clashing_ports_are_a_clear_configuration_error():
    with pytest.raises(StoreUnavailable, match="gRPC port 8080"):
        connect_url("http://weaviate:8080", 8080)


@pytest.mark.parametrize("url", ["weaviate:8080", "ftp://host", "http://", "ftp://svc:hunter2@host"])
def test_a_malformed_url_is_refused_before_connecting(url):
    with pytest.raises(StoreUnavailable, match="RAGOPS_WEAVIATE_URL") as refused:
        connect_url(url)
    assert "hunter2" not in str(refused.value)


def test_the_url_in_an_error_is_masked():
    with pytest.raises(StoreUnavailable, match=r"svc:\*\*\*@weaviate") as refused:
        connect_url("http://svc:hunter2@weaviate:8080", 8080)
    assert "hunter2" not in str(refused.value)


def test_promotion_and_rollback_move_the_alias(client_double):
    factory = Factory(client_double, existing={"Ragops_chunks_v4", "Ragops_candidate_v1"})
    catalog = WeaviateCatalog(factory)
    assert catalog.live() is None
    catalog.promote("chunks", 4)  # the first promotion creates the alias
    assert catalog.live() == ("chunks", 4)
    catalog.promote("candidate", 1)
    assert factory.made[0].alias.targets == {"Ragops_live": "Ragops_candidate_v1"}
    catalog.promote("chunks", 4)  # rollback
    assert catalog.live() == ("chunks", 4)
    with pytest.raises(StoreUnavailable, match="does not exist"):
        catalog.promote("chunks", 3)  # never to a version that is gone
    assert catalog.live() == ("chunks", 4)
    assert factory.made[0].deleted == []  # moving the pointer deleted and copied nothing


def test_pruning_keeps_what_the_policy_names_the_newest_and_the_live_one(client_double):
    names = {f"Ragops_chunks_v{v}" for v in range(1, 7)} | {"Ragops_other_v1", "Unrelated", "Other_chunks_v1"}
    factory = Factory(client_double, existing=names)
    catalog = WeaviateCatalog(factory)
    catalog.promote("chunks", 2)  # e.g. a rollback target still live
    assert catalog.prune("chunks", keep={4, 5}) == [1, 3]
    assert catalog.versions("chunks") == [2, 4, 5, 6] and catalog.collections() == ["chunks", "other"]
    assert "Other_chunks_v1" not in factory.made[0].deleted  # another deployment's prefix is never touched


def test_two_prefixes_share_one_weaviate_without_touching_each_other(client_double):
    server = client_double(existing={"Blue_chunks_v1", "Blue_chunks_v2", "Green_chunks_v1", "Green_chunks_v2",
                                     "Green_chunks_v3"})  # one Weaviate, two deployments
    blue, green = WeaviateCatalog(lambda: server, prefix="Blue"), WeaviateCatalog(lambda: server, prefix="Green")
    assert blue.versions("chunks") == [1, 2] and green.versions("chunks") == [1, 2, 3]
    assert green.prune("chunks", keep=set()) == [1, 2] and server.deleted == ["Green_chunks_v1", "Green_chunks_v2"]
    assert blue.versions("chunks") == [1, 2] and blue.alias == "Blue_live" and green.alias == "Green_live"


def test_a_live_collection_cannot_be_dropped(client_double):
    factory = Factory(client_double, existing={"Ragops_chunks_v1", "Ragops_chunks_v2", "Ragops_old_v1"})
    catalog = WeaviateCatalog(factory)
    catalog.promote("chunks", 2)
    with pytest.raises(StoreUnavailable, match="is live"):
        catalog.open("chunks").drop()
    assert catalog.versions("chunks") == [1, 2]
    catalog.open("old").drop()
    assert catalog.collections() == ["chunks"]
