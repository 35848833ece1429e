"""The process's backend catalogues: one per configuration, so a process holds one Weaviate client.

In Airflow the Weaviate client comes from the `weaviate_default` connection: the task hands a factory (the provider
hook's `get_conn`) to `use_weaviate_client`, and the client is made on first use and closed at the task's end.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from ragops.errors import StoreUnavailable
from ragops.index import IndexCatalog

log = logging.getLogger(__name__)
_lock = threading.Lock()
_catalogs: dict[tuple, IndexCatalog] = {}
_weaviate_factory: Callable | None = None


def use_weaviate_client(factory: Callable | None) -> None:
    """Make Weaviate clients with `factory` (an Airflow hook's `get_conn`) instead of from RAGOPS_WEAVIATE_URL."""
    global _weaviate_factory
    with _lock:
        _weaviate_factory = factory


def catalog_for(settings) -> IndexCatalog:
    with _lock:
        if settings.store == "weaviate":
            key, make = _weaviate(settings)
        else:
            key = ("lance", str(settings.lance_dir.resolve()))

            def make():
                from ragops.index.ann import AnnPolicy
                from ragops.index.lance import LanceCatalog

                return LanceCatalog(settings.lance_dir, AnnPolicy.from_settings(settings))
        catalog = _catalogs.get(key)
        if catalog is None:
            catalog = _catalogs[key] = make()
        return catalog


def _weaviate(settings) -> tuple[tuple, Callable[[], IndexCatalog]]:
    from ragops.index.ann import AnnPolicy
    from ragops.index.weaviate import WeaviateCatalog, connect_url

    factory, ann = _weaviate_factory, AnnPolicy.from_settings(settings)
    options = {"prefix": settings.weaviate_prefix, "index_wait_s": settings.weaviate_index_wait_s,
               "read_only": settings.weaviate_read_only}
    if factory is not None:
        return ("weaviate", "connection", *options.values()), lambda: WeaviateCatalog(factory, ann=ann, **options)
    if not settings.weaviate_url:
        raise StoreUnavailable("RAGOPS_STORE=weaviate needs RAGOPS_WEAVIATE_URL (or, in Airflow, the weaviate_default "
                               "connection)")
    url, grpc_port = settings.weaviate_url, settings.weaviate_grpc_port
    secret = weaviate_key(settings)
    return (("weaviate", url, grpc_port, *options.values()),
            lambda: WeaviateCatalog(lambda: connect_url(url, grpc_port, secret.get_secret_value() if secret else None),
                                    ann=ann, **options))


def weaviate_key(settings):
    """The key this process sends: the read-only one where it only reads (serving), else the writer's."""
    if not settings.weaviate_read_only:
        return settings.weaviate_api_key
    if settings.weaviate_reader_api_key is None and settings.weaviate_api_key is not None:
        log.warning("RAGOPS_WEAVIATE_READER_API_KEY is not set: this reader connects to Weaviate with the writer key "
                    "RAGOPS_WEAVIATE_API_KEY, which can delete the index (docs/production.md, Weaviate's keys)")
        return settings.weaviate_api_key
    return settings.weaviate_reader_api_key


def open_catalogs() -> list[IndexCatalog]:
    """The catalogues this process holds (for tests and shutdown checks)."""
    with _lock:
        return list(_catalogs.values())


def close_all() -> None:
    """Close every catalogue's connections and forget them; the next use starts afresh."""
    global _weaviate_factory
    with _lock:
        catalogs, _weaviate_factory = list(_catalogs.values()), None
        _catalogs.clear()
    for catalog in catalogs:
        catalog.close()
