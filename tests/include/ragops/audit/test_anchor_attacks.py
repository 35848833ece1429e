"""The anchored access log attacked a second time (docs/reliability.md, "Attack round on issue 21, second pass"):
an anchor appended to an append-only anchor file, a verify that runs while the app writes, and a log so large or so
broken that every row is a problem.
"""

import json
from dataclasses import asdict

import pytest
from sqlalchemy import delete, event, insert, select, update

from ragops.audit import chain
from ragops.audit.anchor import Anchor, AuditLogTampered, publish, read_anchors, verify_anchored
from ragops.registry.models import AuditChainHead, McpAccessLog
from support import AUDIT_KEY as KEY, access_row as _row, audit_settings, rehash_access_log as _rehash


@pytest.fixture
def settings(settings, registry):
    return audit_settings(settings, registry)


@pytest.mark.parametrize("key", [KEY, None], ids=["key", "anchors-only"])
def test_an_unsigned_anchor_appended_for_the_same_row_does_not_override_the_real_one(registry, settings, key):
    """The anchor file is append-only (`chattr +a`), so the insider cannot remove the real anchor, but may append.
    Rows written before the key (no MACs) were anchored; the insider rewrites one, rehashes, and appends an unsigned
    anchor of the same row with the new hash."""
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 13)])  # before the serving app had the key
    publish(settings, registry=registry)  # the DAG already has it: a signed anchor of row 12
    with registry.session() as s:
        s.execute(update(McpAccessLog).where(McpAccessLog.seq == 4).values(client="someone-else"))
        _rehash(s)
        new_head = s.scalar(select(McpAccessLog.row_hash).where(McpAccessLog.seq == 12))
    [real] = read_anchors(settings.audit_anchor_path)
    with open(settings.audit_anchor_path, "a") as f:
        f.write(json.dumps(asdict(Anchor(12, new_head, real.ts, None))) + "\n")
    with registry.session() as s:
        result = verify_anchored(s, key, read_anchors(settings.audit_anchor_path))
    assert "anchor_mismatch" in {p["kind"] for p in result.problems}


def test_rows_appended_while_verify_reads_are_not_a_truncation(registry, settings):
    """The serving app keeps writing while the daily DAG verifies: rows committed after verify read the head are
    not rows beyond the head (a false `truncated` would fail the DAG and page someone at 03:30)."""
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 6)], KEY)
    appended = []

    def app_writes(conn, cursor, statement, params, context, executemany):
        if not appended and "FROM mcp_access_log" in statement and "ORDER BY mcp_access_log.seq" in statement:
            appended.append(True)
            with registry.session() as other:  # another connection, committed before the scan starts
                chain.append(other, [_row(i) for i in range(6, 9)], KEY)

    event.listen(registry.engine, "before_cursor_execute", app_writes)
    try:
        anchor, result = publish(settings, registry=registry)
    finally:
        event.remove(registry.engine, "before_cursor_execute", app_writes)
    assert appended and result.ok, result.problems
    assert anchor.seq == 5 and result.rows == 5
    with registry.session() as s:  # the next run sees all eight, held against the anchor of five
        later = verify_anchored(s, KEY, read_anchors(settings.audit_anchor_path))
    assert later.ok and later.rows == 8


def test_a_row_beyond_the_head_is_still_caught(registry):
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 4)], KEY)
    with registry.session() as s:  # a linked row inserted past the head, the head left where it was
        seq, head = s.execute(select(McpAccessLog.seq, McpAccessLog.row_hash)
                              .order_by(McpAccessLog.seq.desc()).limit(1)).one()
        row = _row(9) | {"seq": seq + 1, "prev_hash": head}
        row |= {"row_hash": chain.digest(head, row), "row_mac": ""}
        s.execute(insert(McpAccessLog), [row])
    with registry.session() as s:
        result = chain.verify(s, KEY)
    assert "truncated" in {p["kind"] for p in result.problems}


def test_a_log_where_every_row_is_a_problem_keeps_a_bounded_list_and_counts_the_rest(registry):
    """A rotated key (or a wholesale rewrite) makes every row a problem: `verify` must not hold, print or post one
    entry per row of a log of millions."""
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 1201)], KEY)
    with registry.session() as s:
        result = chain.verify(s, b"another key, 32 bytes long......")
    assert not result.ok
    assert len(result.problems) == chain.MAX_PROBLEMS < 1200
    assert result.problem_counts == {"forged_row": 1200}
    assert result.to_dict()["problem_counts"] == {"forged_row": 1200}


@pytest.fixture
def two_anchors(registry, settings):
    """Rows 1-12 anchored, rows 13-15 anchored, then rows 16-17: what the daily DAG leaves after two runs."""
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 13)], KEY)
    publish(settings, registry=registry)
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(13, 16)], KEY)
    publish(settings, registry=registry)
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(16, 18)], KEY)
    return registry


def test_a_backup_from_before_the_last_anchor_restored_and_written_on_is_caught(two_anchors, settings):
    """A restore to the state at the first anchor (every row and MAC genuine), then the app writes on: row 15 exists
    again, but it is not the row the second anchor recorded."""
    with two_anchors.session() as s:
        s.execute(delete(McpAccessLog).where(McpAccessLog.seq > 12))
        s.execute(update(AuditChainHead).values(
            seq=12, head_hash=s.scalar(select(McpAccessLog.row_hash).where(McpAccessLog.seq == 12))))
    with two_anchors.session() as s:
        chain.append(s, [_row(i, client="after-restore") for i in range(13, 19)], KEY)
    with two_anchors.session() as s:
        result = verify_anchored(s, KEY, read_anchors(settings.audit_anchor_path))
    assert {p["kind"] for p in result.problems} == {"anchor_mismatch"}
    assert [p["seq"] for p in result.problems] == [15]


@pytest.mark.parametrize("key", [KEY, None], ids=["key", "anchors-only"])
def test_rows_between_two_anchors_rewritten_then_the_dag_run_by_hand_anchors_nothing(two_anchors, settings, key):
    settings = settings.model_copy(update={"audit_signing_key": None if key is None else settings.audit_signing_key})
    with two_anchors.session() as s:
        s.execute(update(McpAccessLog).where(McpAccessLog.seq == 14).values(decision="allowed", client="alibi"))
        _rehash(s)
    with pytest.raises(AuditLogTampered):
        publish(settings, registry=two_anchors)
    assert [a.seq for a in read_anchors(settings.audit_anchor_path)] == [12, 15]


def test_an_unsigned_anchor_after_a_signed_one_is_a_forged_anchor_not_a_cut_log(registry, settings):
    """Once the DAG signs, an unsigned anchor appended after its anchors was written by someone else: the pager must
    be told the anchor file was written to, not that the database lost its newest rows."""
    with registry.session() as s:
        chain.append(s, [_row(i) for i in range(1, 6)], KEY)
    [real] = [publish(settings, registry=registry)[0]]
    with open(settings.audit_anchor_path, "a") as f:
        f.write(json.dumps(asdict(Anchor(10**9, "f" * 64, real.ts, None))) + "\n")
    with registry.session() as s:
        result = verify_anchored(s, KEY, read_anchors(settings.audit_anchor_path))
    assert [p["kind"] for p in result.problems] == ["forged_anchor"]
    assert "unsigned" in result.problems[0]["message"]
