"""Batch writes: failed objects are retried, then reported and the write fails; nothing is dropped silently."""

import pytest

from ragops.errors import StoreUnavailable
from ragops.index.weaviate.batch import write_objects


def _objects(n):
    return [(f"00000000-0000-0000-0000-{i:012d}", {"chunk_id": f"c{i}"}, [0.1, 0.2]) for i in range(n)]


def test_rejected_objects_are_sent_again_until_they_land(flaky):
    objects = _objects(5)
    collection = flaky(reject={objects[1][0]: 1, objects[3][0]: 2})
    pauses = []
    assert write_objects(collection, objects, sleep=pauses.append) == 5
    assert set(collection.stored) == {uuid for uuid, _, _ in objects}
    assert collection.stored[objects[3][0]] == (objects[3][1], objects[3][2])  # the retried object is unchanged
    assert collection.batches == 3 and pauses == [1.0, 2.0]


def test_objects_that_keep_failing_fail_the_write_with_the_reason(flaky):
    objects = _objects(4)
    collection = flaky(reject={objects[2][0]: 99})
    pauses = []
    with pytest.raises(StoreUnavailable) as failure:
        write_objects(collection, objects, attempts=3, sleep=pauses.append)
    assert "1 objects could not be written" in str(failure.value) and "read-only" in str(failure.value)
    assert collection.batches == 3 and pauses == [1.0, 2.0]
    assert len(collection.stored) == 3 and objects[2][0] not in collection.stored  # reported, not dropped
