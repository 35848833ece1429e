"""The Airflow glue: the Weaviate client comes from `weaviate_default` through the provider's hook, resolved inside
the task, and every task's end closes it."""

import json
import socket

import pytest

from ragops.errors import StoreUnavailable


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens here once the socket is closed


@pytest.fixture
def glue(ragops_env, monkeypatch):
    import _ragops_airflow
    from ragops.index import close_backends

    monkeypatch.setenv("RAGOPS_STORE", "weaviate")
    close_backends()
    yield _ragops_airflow
    close_backends()


def test_the_connection_builds_the_client_through_the_hook(glue, monkeypatch):
    from ragops.index import open_store

    conn_port, url_port = _free_port(), _free_port()
    monkeypatch.setenv("AIRFLOW_CONN_WEAVIATE_DEFAULT", json.dumps(
        {"conn_type": "weaviate", "host": "127.0.0.1", "port": conn_port, "extra": {"grpc_port": conn_port + 1}}))
    monkeypatch.setenv("RAGOPS_WEAVIATE_URL", f"http://127.0.0.1:{url_port}")
    cfg = glue.settings()
    from airflow.providers.weaviate.hooks.weaviate import WeaviateHook

    from ragops.index import backends

    hook = backends._weaviate_factory.__self__  # the client factory is the provider hook's get_conn
    assert isinstance(hook, WeaviateHook) and hook.conn_id == "weaviate_default"
    with pytest.raises(StoreUnavailable) as failure:
        open_store(cfg, "chunks").count()
    assert f"127.0.0.1:{conn_port}" in str(failure.value)  # the connection, not RAGOPS_WEAVIATE_URL


def test_without_the_connection_the_url_is_used(glue, monkeypatch):
    from ragops.index import open_store

    monkeypatch.delenv("AIRFLOW_CONN_WEAVIATE_DEFAULT", raising=False)
    url_port = _free_port()
    monkeypatch.setenv("RAGOPS_WEAVIATE_URL", f"http://127.0.0.1:{url_port}")
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{url_port}"):
        open_store(glue.settings(), "chunks").count()


def test_every_task_end_closes_the_index_client(glue, dagbag):
    from ragops.index import open_catalog
    from ragops.index.backends import open_catalogs

    for task in dagbag.dags["document_refresh"].tasks:
        ends = [task.on_success_callback, task.on_retry_callback, task.on_skipped_callback, task.on_failure_callback]
        assert all(glue.release_connections in (c if isinstance(c, list) else [c]) for c in ends), task.task_id
    open_catalog(glue.settings().model_copy(update={"store": "lance"}))
    glue.release_connections({})
    assert open_catalogs() == []
