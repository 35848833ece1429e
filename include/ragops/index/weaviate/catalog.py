"""The Weaviate catalogue: the process's one client, the index versions on the server, and the live alias.

The client is made on first use (from RAGOPS_WEAVIATE_URL, or by an Airflow hook) and closed when the last store
that uses it is closed, or at shutdown (`ragops.index.close_backends`). Promotion and rollback move the alias
`<Prefix>_live` from one version's collection to another's; no object is copied.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Any, Callable, Collection, Iterator
from urllib.parse import urlparse

from pydantic import ValidationError

from ragops.config import mask_url
from ragops.errors import StoreUnavailable
from ragops.index.ann import AnnPolicy
from ragops.index.weaviate.schema import check_collection, check_prefix, live_alias, parse, physical, require_aliases

log = logging.getLogger(__name__)
INDEX_WAIT_S = 600.0  # RAGOPS_WEAVIATE_INDEX_WAIT_S


@contextmanager
def weaviate_errors(what: str) -> Iterator[None]:
    """Translate the client's transport and server errors into StoreUnavailable, naming what failed."""
    import httpx
    from weaviate.exceptions import WeaviateBaseError

    try:
        yield
    except (WeaviateBaseError, httpx.HTTPError) as exc:
        raise StoreUnavailable(f"{what}: {exc}") from exc


def connect_url(url: str, grpc_port: int = 50051, api_key: str | None = None):
    """A connected client for `http(s)://host[:port]`; gRPC on `grpc_port` of the same host."""
    import weaviate
    from weaviate.classes.init import Auth

    parsed, shown = urlparse(url), mask_url(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise StoreUnavailable(f"RAGOPS_WEAVIATE_URL must look like http://host:8080, not {shown!r}")
    secure = parsed.scheme == "https"
    try:
        with weaviate_errors(f"cannot reach Weaviate at {shown}"):
            return weaviate.connect_to_custom(
                http_host=parsed.hostname, http_port=parsed.port or (443 if secure else 8080), http_secure=secure,
                grpc_host=parsed.hostname, grpc_port=grpc_port, grpc_secure=secure,
                auth_credentials=Auth.api_key(api_key) if api_key else None)
    except ValidationError as exc:  # the client validates the parameters before connecting
        raise StoreUnavailable(f"invalid Weaviate connection settings for {shown} (gRPC port {grpc_port}): "
                               f"{exc.errors()[0]['msg']}") from exc


class WeaviateCatalog:
    live_pointer = "alias"

    def __init__(self, connect: Callable[[], Any], prefix: str = "Ragops", index_wait_s: float = INDEX_WAIT_S,
                 ann: AnnPolicy | None = None, read_only: bool = False):
        self._connect = connect
        self.read_only = read_only  # connected with the read-only key (serving): every write is refused here first
        self.ann = ann or AnnPolicy()  # its ef is each new version's HNSW query list size
        self.prefix = check_prefix(prefix)
        self.alias = live_alias(prefix)
        self.index_wait_s = index_wait_s
        self._client = None
        self._users = 0
        self._lock = threading.RLock()
        self.ef_set: dict[str, int] = {}  # the HNSW ef last set per Weaviate collection by a store of this process
        self.ef_lock = threading.Lock()

    # -- the one client ------------------------------------------------------------------------------------------
    def client(self):
        with self._lock:
            if self._client is None:
                with weaviate_errors("cannot connect to Weaviate"):
                    client = self._connect()
                try:
                    with weaviate_errors("cannot read the Weaviate server version"):
                        require_aliases(client.get_meta().get("version", ""))
                except StoreUnavailable:
                    client.close()
                    raise
                self._client = client
            return self._client

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        """One store is done with the client; the last one closes it."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self.close()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            if client is not None:
                client.close()

    @property
    def connected(self) -> bool:
        return self._client is not None

    def writing(self, what: str) -> None:
        """Refuse a write in a read-only process before Weaviate does (it would answer 403), saying why."""
        if self.read_only:
            raise StoreUnavailable(f"cannot {what}: this process reads Weaviate with the read-only key "
                                   "(RAGOPS_WEAVIATE_READER_API_KEY); writes belong to Airflow and the CLI")

    # -- versions and collections --------------------------------------------------------------------------------
    def open(self, collection: str, version: int | None = None):
        from ragops.index.weaviate.store import WeaviateStore

        store = WeaviateStore(self, collection)
        if version is not None:
            try:
                store.checkout(version)
            except StoreUnavailable:
                store.close()
                raise
        return store

    def _layout(self) -> dict[str, list[int]]:
        with self._lock, weaviate_errors("cannot list the Weaviate collections"):
            names = list(self.client().collections.list_all(simple=True))
        found: dict[str, list[int]] = {}
        for name in names:
            parsed = parse(self.prefix, name)
            if parsed:
                found.setdefault(parsed[0], []).append(parsed[1])
        return {c: sorted(v) for c, v in found.items()}

    def versions(self, collection: str) -> list[int]:
        return self._layout().get(check_collection(collection), [])

    def collections(self) -> list[str]:
        return sorted(self._layout())

    def exists(self, collection: str, version: int) -> bool:
        with self._lock, weaviate_errors("cannot read the Weaviate schema"):
            return self.client().collections.exists(physical(self.prefix, collection, version))

    # -- the live pointer ----------------------------------------------------------------------------------------
    def promote(self, collection: str, version: int) -> None:
        target = physical(self.prefix, collection, version)
        self.writing(f"point the alias {self.alias} at {target}")
        with self._lock:
            if not self.exists(collection, version):
                raise StoreUnavailable(f"cannot promote {collection!r} version {version}: {target} does not exist")
            with weaviate_errors(f"cannot point the alias {self.alias} at {target}"):
                aliases = self.client().alias
                if not aliases.update(alias_name=self.alias, new_target_collection=target):  # False: no alias yet
                    aliases.create(alias_name=self.alias, target_collection=target)
        log.info("live alias %s -> %s", self.alias, target)

    def live(self) -> tuple[str, int] | None:
        with self._lock, weaviate_errors(f"cannot read the alias {self.alias}"):
            found = self.client().alias.get(alias_name=self.alias)
        return parse(self.prefix, found.collection) if found else None

    # -- clean-up ------------------------------------------------------------------------------------------------
    def delete(self, collection: str, version: int) -> None:
        self.writing(f"delete version {version} of {collection!r}")
        with self._lock, weaviate_errors(f"cannot delete version {version} of {collection!r}"):
            self.client().collections.delete(physical(self.prefix, collection, version))

    def prune(self, collection: str, keep: Collection[int]) -> list[int]:
        """Delete every version of `collection` outside `keep`, never the newest nor the live one; return them.

        `keep` comes from the one retention policy (ragops.ingest.retention), which reads what releases, the rollout
        and the rollback window can still reach. Only collections under this catalogue's prefix are ever touched.
        """
        self.writing(f"prune {collection!r}")
        with self._lock:
            versions = self.versions(collection)
            kept = set(keep) | set(versions[-1:])
            live = self.live()
            if live and live[0] == collection:
                kept.add(live[1])
            gone = [v for v in versions if v not in kept]
            for version in gone:
                self.delete(collection, version)
        return gone
