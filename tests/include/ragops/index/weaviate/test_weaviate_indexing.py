"""The bounded wait for Weaviate's vector index, and a refresh that meets a shard which never becomes ready."""

import pytest
from sqlalchemy import select
from weaviate.collections.classes.config import ShardStatus

from ragops.errors import IndexingTimeout, StoreUnavailable
from ragops.index.backends import close_all, use_weaviate_client
from ragops.index.weaviate.indexing import wait_until_indexed
from ragops.ingest.refresh import Refresher
from ragops.registry import Registry
from ragops.registry.models import IndexVersion, Lock, RefreshRun


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Shards:
    def __init__(self, *answers):
        self.name = "Ragops_chunks_v1"
        self.answers = list(answers)
        self.config = self

    def get_shards(self):
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def _shard(status="READY", queued=0, per_node=None):
    return ShardStatus(name="s0", status=status, vector_queue_size=queued, per_node_status=per_node)


def test_the_wait_ends_when_every_shard_is_ready_with_an_empty_queue():
    fake = FakeTime()
    shards = Shards([_shard("INDEXING", 40)], [_shard("READY", 3)], [_shard(), _shard()])
    assert wait_until_indexed(shards, 60, clock=fake.clock, sleep=fake.sleep) == 3
    assert fake.sleeps == [0.25, 0.5]  # a growing pause


def test_a_shard_ready_on_one_node_only_is_not_ready():
    fake = FakeTime()
    shards = Shards([_shard(per_node={"n1": "READY", "n2": "INDEXING"})], [_shard(per_node={"n1": "READY"})])
    assert wait_until_indexed(shards, 60, clock=fake.clock, sleep=fake.sleep) == 2


def test_a_shard_that_never_becomes_ready_ends_the_wait_at_its_deadline():
    fake = FakeTime()
    with pytest.raises(IndexingTimeout, match=r"within 30 s .*s0: INDEXING with 7 vectors queued") as caught:
        wait_until_indexed(Shards([_shard("INDEXING", 7)]), 30, clock=fake.clock, sleep=fake.sleep)
    assert fake.now == 30 and max(fake.sleeps) <= 5.0  # never sleeps past the deadline, polls at least every 5 s
    assert isinstance(caught.value, StoreUnavailable) and caught.value.code == "index_wait_timeout"


def test_a_failed_status_request_is_asked_again_but_never_past_the_deadline():
    from weaviate.exceptions import WeaviateConnectionError

    fake = FakeTime()
    shards = Shards(WeaviateConnectionError("connection reset"), [_shard()])
    assert wait_until_indexed(shards, 60, clock=fake.clock, sleep=fake.sleep) == 2
    down = Shards(WeaviateConnectionError("connection refused"))
    with pytest.raises(IndexingTimeout, match="the last status request failed: .*connection refused"):
        wait_until_indexed(down, 10, clock=fake.clock, sleep=fake.sleep)


def test_an_empty_shard_list_is_not_taken_for_ready():
    fake = FakeTime()
    with pytest.raises(IndexingTimeout, match="no shards reported"):
        wait_until_indexed(Shards([]), 1, clock=fake.clock, sleep=fake.sleep)


@pytest.fixture
def weaviate_settings(tiny_remote_settings, client_double):
    client = client_double(ready_after=None)  # its shards never become ready
    use_weaviate_client(lambda: client)
    yield tiny_remote_settings.model_copy(update={"store": "weaviate", "weaviate_index_wait_s": 0.3}), client
    close_all()


def test_a_stuck_shard_ends_the_refresh_releases_the_lease_and_the_next_refresh_runs(weaviate_settings):
    cfg, client = weaviate_settings
    with pytest.raises(IndexingTimeout, match="RAGOPS_WEAVIATE_INDEX_WAIT_S"):
        Refresher(cfg).run()
    registry = Registry(cfg.registry_url)
    with registry.session() as s:
        run = s.scalars(select(RefreshRun)).one()
        assert run.status == "failed" and "did not finish indexing" in run.error
        assert s.scalars(select(Lock)).all() == []  # the lease is released: nothing waits for its expiry
        assert s.scalars(select(IndexVersion)).all() == []  # no reader is sent to the half-built version
    assert client.deleted == ["Ragops_chunks_v1"] and client.alias.targets == {}
    assert client.stored["Ragops_chunks_v1"].polls >= 2  # it did wait, and then stopped

    client.ready_after = 1  # the shard recovers: the next refresh goes through
    report = Refresher(cfg).run()
    assert report.changed and report.index_version is not None
    assert client.alias.targets == {"Ragops_live": "Ragops_chunks_v1"} and client.stored["Ragops_chunks_v1"].indexed


def test_an_airflow_execution_timeout_during_the_wait_releases_the_lease(weaviate_settings, monkeypatch):
    """Airflow ends a task past its execution_timeout by raising AirflowTaskTimeout (a BaseException) in it."""
    from airflow.sdk.exceptions import AirflowTaskTimeout

    from weaviate_doubles import FlakyCollection

    cfg, client = weaviate_settings

    def alarm(self):
        raise AirflowTaskTimeout("Timeout, PID: 4242")

    monkeypatch.setattr(FlakyCollection, "get_shards", alarm)
    with pytest.raises(AirflowTaskTimeout):
        Refresher(cfg.model_copy(update={"weaviate_index_wait_s": 600.0})).run()
    with Registry(cfg.registry_url).session() as s:
        assert s.scalars(select(Lock)).all() == []
        assert s.scalars(select(RefreshRun)).one().status == "failed"
    assert client.deleted == ["Ragops_chunks_v1"]  # the half-built version went with it
