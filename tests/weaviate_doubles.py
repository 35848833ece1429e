"""Test doubles at the weaviate-client boundary (no server can run here): only the calls ragops makes.

The objects they hand back (ErrorObject, BatchObject) are the client's own classes, so the code under test reads
exactly what the real client would give it.
"""

import uuid as uuid_package
from contextlib import contextmanager
from types import SimpleNamespace

from weaviate.collections.classes.batch import BatchObject, ErrorObject
from weaviate.collections.classes.config import ShardStatus
from weaviate.collections.classes.internal import MetadataReturn, Object


class FlakyCollection:
    """A collection whose batch rejects chosen objects a number of times, as a server under pressure does."""

    def __init__(self, name: str = "Ragops_chunks_v2", reject: dict | None = None, ready_after: int | None = 0):
        self.name = name
        self.ready_after = ready_after  # polls of the shard status before it reads READY; None: never (a stuck shard)
        self.polls = 0
        self.config = self
        self.reject = dict(reject or {})  # uuid -> how many more times to reject it
        self.stored: dict[str, tuple] = {}
        self.failed_objects: list[ErrorObject] = []
        self.batches = 0
        self.batch = self
        self.aggregate = self
        self.indexed = False

    @contextmanager
    def fixed_size(self, batch_size: int = 100, concurrent_requests: int = 2):
        self.batches += 1
        self.failed_objects = []  # the client resets the failures for every batch context
        yield self

    def add_object(self, properties, uuid, vector):
        if self.reject.get(uuid, 0) > 0:
            self.reject[uuid] -= 1
            obj = BatchObject(collection=self.name, properties=properties, uuid=uuid, vector=vector, index=0)
            self.failed_objects.append(ErrorObject(message=f"shard {self.name} is read-only", object_=obj))
        else:
            self.stored[uuid] = (properties, vector)

    def get_shards(self):
        """`collection.config.get_shards()`: the client's own ShardStatus, as GET /v1/schema/<name>/shards gives."""
        self.polls += 1
        ready = self.ready_after is not None and self.polls > self.ready_after
        self.indexed = self.indexed or ready
        return [ShardStatus(name="shard-0", status="READY" if ready else "INDEXING",
                            vector_queue_size=0 if ready else len(self.stored), per_node_status=None)]

    def iterator(self, include_vector=False, return_metadata=None, *, return_properties=None):
        for uuid, (properties, vector) in sorted(self.stored.items()):
            yield Object(uuid=uuid_package.UUID(uuid), metadata=MetadataReturn(), references=None,
                         properties={p: properties.get(p) for p in return_properties or properties},
                         vector=vector if include_vector else {}, collection=self.name)

    def over_all(self, total_count=False):
        return SimpleNamespace(total_count=len(self.stored))


class AliasDouble:
    """`client.alias` as weaviate-client 4.24 behaves: update answers False when the alias does not exist."""

    def __init__(self):
        self.targets: dict[str, str] = {}

    def get(self, *, alias_name):
        target = self.targets.get(alias_name)
        return SimpleNamespace(alias=alias_name, collection=target) if target else None

    def update(self, *, alias_name, new_target_collection):
        if alias_name not in self.targets:
            return False
        self.targets[alias_name] = new_target_collection
        return True

    def create(self, *, alias_name, target_collection):
        assert alias_name not in self.targets, "Weaviate refuses to create an alias twice"
        self.targets[alias_name] = target_collection


class ClientDouble:
    """The client surface the catalogue and a write use: meta, collections create/delete/list, alias, close."""

    def __init__(self, version="1.32.4", reject: dict | None = None, existing=(), ready_after: int | None = 0):
        self.version = version
        self.ready_after = ready_after
        self.closed = False
        self.reject = reject or {}
        self.stored: dict[str, FlakyCollection] = {}
        self.names = set(existing)
        self.deleted: list[str] = []
        self.collections = self
        self.alias = AliasDouble()

    def get_meta(self):
        return {"version": self.version}

    def close(self):
        self.closed = True

    def list_all(self, simple=True):
        return {n: None for n in sorted(self.names)}

    def exists(self, name):
        return name in self.names

    def create(self, name, **config):
        assert name not in self.names, "Weaviate refuses to create a collection twice"
        self.names.add(name)
        self.stored[name] = FlakyCollection(name, self.reject, self.ready_after)
        return self.stored[name]

    def use(self, name):
        return self.stored[name]

    def delete(self, name):
        self.names.discard(name)
        self.deleted.append(name)


