"""The tamper-evident MCP access log: each row carries a sha256 chained to the row before it (mcpgate's model).

Writers serialise on the chain's head row (an UPDATE takes its row lock on PostgreSQL and the write lock on SQLite),
so concurrent writers and several serving replicas on one database extend one chain. `verify` recomputes it: an
edited row no longer matches its hash, a deleted row leaves a gap in `seq`, and a deleted tail falls short of the head.

The chain alone cannot stop someone who can write the database: they can rehash what they rewrote. Two things from
outside it can (ragops.audit.anchor): a key the writers hold and the registry never does, with which each row gets a
MAC (`row_mac`), and anchors, chain heads published elsewhere, which the chain must still contain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from ragops.registry.models import AuditChainHead, McpAccessLog

CHAIN = "mcp_access_log"
GENESIS = "0" * 64
MAX_PROBLEMS = 100  # kept in detail; the rest only counted (a rotated key makes every row of millions a problem)
FIELDS = ("seq", "ts", "client", "tool", "decision", "reason", "latency_ms", "status", "request_id", "args_hash")


def _moment(ts: datetime) -> str:
    aware = ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def digest(prev_hash: str, row: dict) -> str:
    """The hash of one row as stored: its fields in a canonical JSON form, after the previous row's hash."""
    canonical = {k: _moment(row[k]) if k == "ts" else repr(float(row[k])) if k == "latency_ms" else row[k]
                 for k in FIELDS}
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def row_mac(key: bytes, row_hash: str) -> str:
    """The row's MAC: only a holder of the key can make a row that verifies, however well it is linked."""
    return hmac.new(key, f"row\n{row_hash}".encode(), hashlib.sha256).hexdigest()


def _lock_head(session: Session) -> tuple[int, str]:
    """Take the head row's lock for this transaction and read it (creating the head of an empty chain)."""
    taken = session.execute(update(AuditChainHead).where(AuditChainHead.name == CHAIN)
                            .values(seq=AuditChainHead.seq)).rowcount
    if not taken:  # the migration seeds the head; this covers a schema made without it (a second writer retries)
        session.execute(insert(AuditChainHead).values(name=CHAIN, seq=0, head_hash=GENESIS))
    seq, head = session.execute(select(AuditChainHead.seq, AuditChainHead.head_hash)
                                .where(AuditChainHead.name == CHAIN)).one()
    return seq, head


def append(session: Session, rows: list[dict], key: bytes | None = None) -> None:
    """Insert access-log rows (already bounded, each with `ts`) at the end of the chain, in this transaction; with
    the key, each row also gets its MAC."""
    seq, head = _lock_head(session)
    chained = []
    for row in rows:
        seq += 1
        row = {"reason": "", "latency_ms": 0.0, "request_id": "", "args_hash": ""} | row | {"seq": seq, "prev_hash": head}
        head = digest(head, row)
        chained.append(row | {"row_hash": head, "row_mac": row_mac(key, head) if key else ""})
    session.execute(insert(McpAccessLog), chained)
    session.execute(update(AuditChainHead).where(AuditChainHead.name == CHAIN).values(seq=seq, head_hash=head))


@dataclass
class Verification:
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    anchors: int = 0  # the anchors the chain was held against
    macs_from: int | None = None  # from this row on, every row must carry its MAC
    unmaced_rows: int = 0  # rows before `macs_from`, written before the key existed
    problems: list[dict] = field(default_factory=list)  # the first MAX_PROBLEMS in detail
    problem_counts: dict[str, int] = field(default_factory=dict)  # every problem, by kind
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def total_problems(self) -> int:
        return sum(self.problem_counts.values())

    def add(self, problem: dict) -> None:
        """Count a problem; keep its detail while fewer than MAX_PROBLEMS are kept, so memory stays bounded."""
        self.problem_counts[problem["kind"]] = self.problem_counts.get(problem["kind"], 0) + 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def to_dict(self) -> dict:
        return {"ok": self.ok} | asdict(self)


def _check_mac(result: Verification, row: McpAccessLog, key: bytes) -> None:
    """A MAC that is present must be right; past `macs_from`, a row without one is forged too."""
    if row.row_mac:
        if not hmac.compare_digest(row.row_mac, row_mac(key, row.row_hash)):
            result.add({"kind": "forged_row", "seq": row.seq, "id": row.id,
                        "message": f"row {row.seq} (id {row.id}) carries a MAC that the key did not make"})
        elif result.macs_from is None:
            result.macs_from = row.seq
    elif result.macs_from is not None and row.seq >= result.macs_from:
        result.add({"kind": "forged_row", "seq": row.seq, "id": row.id,
                    "message": f"row {row.seq} (id {row.id}) carries no MAC, though every row from "
                               f"{result.macs_from} on must (written without the key)"})
    else:
        result.unmaced_rows += 1


def _check_anchors(result: Verification, anchors: Sequence, last_seq: int) -> None:
    """An anchor past the end of the chain means rows it once held are gone."""
    beyond = max((a.seq for a in anchors if a.seq > last_seq), default=None)
    if beyond is None:
        return
    if result.rows == 0:
        result.add({"kind": "wiped", "seq": [1, beyond],
                    "message": f"the access log is empty but an anchor recorded {beyond} rows: "
                               f"the log and its head were wiped"})
    else:
        result.add({"kind": "truncated", "seq": [last_seq + 1, beyond],
                    "message": f"the chain ends at row {last_seq} but an anchor recorded row {beyond}: "
                               f"the newest rows were cut off"})


def verify(session: Session, key: bytes | None = None, anchors: Sequence = (), batch: int = 5000) -> Verification:
    """Recompute the whole chain; every edited, deleted or unchained row becomes a problem with its seq and id.

    With the key, every row's MAC is checked too. Each anchor (trusted already: an object with `seq`, `head_hash`
    and `macs_from`) must still be in the chain: its row with the hash it had when it was published.
    """
    head = session.execute(select(AuditChainHead.seq, AuditChainHead.head_hash)
                           .where(AuditChainHead.name == CHAIN)).first()
    result = Verification(head_seq=head.seq if head else 0, head_hash=head.head_hash if head else GENESIS,
                          anchors=len(anchors),
                          macs_from=min((a.macs_from for a in anchors if a.macs_from is not None), default=None))
    anchored: dict[int, set[str]] = {}  # every anchor of a row counts: one appended later never overrides another
    for a in anchors:
        anchored.setdefault(a.seq, set()).add(a.head_hash)
    unchained = session.scalars(select(McpAccessLog.id).where(McpAccessLog.seq.is_(None)).limit(100)).all()
    if unchained:
        result.add({"kind": "unchained", "ids": list(unchained),
                    "message": f"{len(unchained)} row(s) carry no link of the chain (inserted around it)"})
    expected_seq, prev = 1, GENESIS
    # Only up to the head read above: rows the app commits meanwhile (with a later head) are the next run's to check
    query = select(McpAccessLog).where(McpAccessLog.seq <= result.head_seq).order_by(McpAccessLog.seq)
    for row in session.scalars(query.execution_options(yield_per=batch)):
        result.rows += 1
        if row.seq != expected_seq:
            result.add({"kind": "deleted", "seq": [expected_seq, row.seq - 1],
                        "message": f"rows {expected_seq}..{row.seq - 1} of the chain are missing"})
        elif row.prev_hash != prev:
            result.add({"kind": "relinked", "seq": row.seq, "id": row.id,
                        "message": f"row {row.seq} does not follow the row before it"})
        if digest(row.prev_hash, {k: getattr(row, k) for k in FIELDS}) != row.row_hash:
            result.add({"kind": "edited", "seq": row.seq, "id": row.id,
                        "message": f"row {row.seq} (id {row.id}) was edited after it was written"})
        if anchored.get(row.seq, {row.row_hash}) != {row.row_hash}:
            result.add({"kind": "anchor_mismatch", "seq": row.seq, "id": row.id,
                        "message": f"row {row.seq} is not the row an anchor recorded: the log was "
                                   f"rewritten up to it and rehashed"})
        if key is not None:
            _check_mac(result, row, key)
        expected_seq, prev = row.seq + 1, row.row_hash
    if expected_seq - 1 != result.head_seq or prev != result.head_hash:
        result.add({"kind": "truncated", "seq": [expected_seq, result.head_seq],
                    "message": f"the chain ends at row {expected_seq - 1} but its head is row "
                               f"{result.head_seq}: the newest rows were deleted or the head was changed"})
    _check_beyond_head(session, result)
    _check_anchors(result, anchors, expected_seq - 1)
    return result


def _check_beyond_head(session: Session, result: Verification) -> None:
    """Rows past the head as it is now (read after them: an append commits its rows and its head together) were
    written around the head: the head was moved back, or rows were added without it."""
    beyond = session.scalar(select(func.max(McpAccessLog.seq)).where(McpAccessLog.seq > result.head_seq))
    if beyond is None:
        return
    head_now = session.scalar(select(AuditChainHead.seq).where(AuditChainHead.name == CHAIN)) or 0
    if beyond > head_now:
        result.add({"kind": "truncated", "seq": [head_now + 1, beyond],
        "message": f"rows up to {beyond} lie beyond the chain's head, row {head_now}: the head was "
                   f"moved back or rows were added around it"})
