"""SQLAlchemy 2 models of the registry. Schema changes go through an Alembic revision in migrations/."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text, Index
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Document(Base):
    """A source document as last indexed. `fingerprint` is the content sha256 of the indexed version."""

    __tablename__ = "documents"
    uri: Mapped[str] = mapped_column(String(1024), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(512), default="")
    n_chunks: Mapped[int] = mapped_column(Integer, default=0)
    indexed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    refresh_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Chunk(Base):
    """A live chunk of an indexed document; the index store holds the same ids with their vectors."""

    __tablename__ = "chunks"
    chunk_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc_uri: Mapped[str] = mapped_column(String(1024), ForeignKey("documents.uri", ondelete="CASCADE"), index=True)
    chunk_hash: Mapped[str] = mapped_column(String(64))
    ordinal: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text, default="")
    n_tokens: Mapped[int] = mapped_column(Integer)


class StagedChunk(Base):
    """A chunk planned by a refresh run and not yet committed to the index."""

    __tablename__ = "staged_chunks"
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("refresh_runs.id", ondelete="CASCADE"), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    doc_uri: Mapped[str] = mapped_column(String(1024))
    chunk_hash: Mapped[str] = mapped_column(String(64))
    ordinal: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(String(512), default="")
    text: Mapped[str] = mapped_column(Text)
    n_tokens: Mapped[int] = mapped_column(Integer)
    batch: Mapped[int] = mapped_column(Integer, default=0)


class EmbeddingCacheEntry(Base):
    """One vector per (model, chunk hash): a paragraph embedded once is never embedded again."""

    __tablename__ = "embedding_cache"
    model: Mapped[str] = mapped_column(String(256), primary_key=True)
    chunk_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RefreshRun(Base):
    __tablename__ = "refresh_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(1024))
    status: Mapped[str] = mapped_column(String(32), default="planned")  # planned|succeeded|failed|blocked
    full: Mapped[bool] = mapped_column(default=False)
    base_index_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    plan: Mapped[dict] = mapped_column(JSON, default=dict)
    report: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Who runs it: a run whose lease owner no longer holds the refresh lease was abandoned (its process died).
    lease_owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IndexVersion(Base):
    """One committed state of the index: the store's table and its version number."""

    __tablename__ = "index_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store: Mapped[str] = mapped_column(String(32))
    collection: Mapped[str] = mapped_column(String(256))
    store_version: Mapped[int] = mapped_column(Integer)
    embedding_model: Mapped[str] = mapped_column(String(256))
    n_documents: Mapped[int] = mapped_column(Integer)
    n_chunks: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="live")  # live|retired|candidate
    refresh_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The shrinkage guard's memory: the most documents indexed since the last override (deletions never lower it).
    doc_baseline: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Its content memory: the most chunks indexed since the last override, so blanking documents is caught too.
    chunk_baseline: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Quarantine(Base):
    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uri: Mapped[str] = mapped_column(String(1024), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    refresh_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Lock(Base):
    """A lease (ragops.registry.lease): renewed by its holder, taken over by anyone once `expires_at` passed."""

    __tablename__ = "locks"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))  # host:pid:token
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    renewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


Index("ix_staged_chunks_run_batch", StagedChunk.run_id, StagedChunk.batch)


class Release(Base):
    """An index version plus an answer configuration; index_version_id None follows the live index."""

    __tablename__ = "releases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    index_version_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("index_versions.id"), nullable=True)
    answer_config: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RolloutState(Base):
    """The single current rollout: which release is stable, and which candidate gets what share of users."""

    __tablename__ = "rollout_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    stable_release_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("releases.id"), nullable=True)
    candidate_release_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("releases.id"), nullable=True)
    candidate_percent: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(32), default="idle")  # idle|running|paused|rolled_back|promoted
    stage: Mapped[int] = mapped_column(Integer, default=0)  # index into the stages, e.g. 10 -> 25 -> 50 -> 100
    stage_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    previous_stable_release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # evidence since
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(256), default="")


class RequestEvent(Base):
    """One served request: monitoring and the canary gates are computed from these rows."""

    __tablename__ = "request_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    user_hash: Mapped[str] = mapped_column(String(64))
    variant: Mapped[str] = mapped_column(String(16))  # stable|canary
    release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float] = mapped_column(Float)
    status: Mapped[int] = mapped_column(Integer)
    fallback: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(String(256), nullable=True)
    chunk_ids: Mapped[list] = mapped_column(JSON, default=list)
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)  # probe traffic, a stratum of its own in the gate
    # the caller proved who it is (an API key); RAGOPS_ROLLOUT_ANONYMOUS says what the gate makes of the others
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # What was asked, redacted before storage and cleared after the retention period (issue 23): the content-gap
    # analysis and the grown test set read it. `query` is what retrieval searched for (a condensed follow-up).
    question: Mapped[str | None] = mapped_column(Text, nullable=True)
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    similarity: Mapped[float | None] = mapped_column(Float, nullable=True)  # the best dense similarity
    coverage: Mapped[float | None] = mapped_column(Float, nullable=True)  # share of distinctive terms in the passages


class Feedback(Base):
    """A user's vote on one served answer (issue 23). One row per request: a second vote replaces the first."""

    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64), unique=True)
    user_hash: Mapped[str] = mapped_column(String(64))
    rating: Mapped[str] = mapped_column(String(8))  # up|down
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)  # wrong|incomplete|outdated|no_answer
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)  # redacted; cleared with the question text
    cited_followed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # the client says a citation was opened


class QualityCheck(Base):
    """One drift check of one live quality signal for one release and variant: the current window against the accepted
    baseline, the always-valid verdict, and since when the shift has lasted (issue 23; monitoring/drift.py)."""

    __tablename__ = "quality_checks"
    __table_args__ = (Index("ix_quality_checks_key", "window_end", "signal", "release", "variant", unique=True),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)  # when the check ran
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    signal: Mapped[str] = mapped_column(String(32))
    release: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(16))
    current: Mapped[float | None] = mapped_column(Float, nullable=True)  # the signal's value in the window
    baseline: Mapped[float | None] = mapped_column(Float, nullable=True)
    difference: Mapped[float | None] = mapped_column(Float, nullable=True)  # in the direction of decline
    at_least: Mapped[float | None] = mapped_column(Float, nullable=True)  # always-valid lower bound of the decline
    requests: Mapped[int] = mapped_column(Integer, default=0)
    users: Mapped[int] = mapped_column(Integer, default=0)
    crossed: Mapped[bool] = mapped_column(Boolean, default=False)  # the test crossed its boundary at this check
    streak: Mapped[int] = mapped_column(Integer, default=0)  # consecutive checks crossed, this one included
    shifted: Mapped[bool] = mapped_column(Boolean, default=False)  # crossed for RAGOPS_QUALITY_SUSTAIN_CHECKS checks
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # the streak's first window
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)  # baseline window, threshold, verdict in words


class McpAccessLog(Base):
    """Every MCP tool call, allowed or denied. Never the token: only the client name and an argument hash."""

    __tablename__ = "mcp_access_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    client: Mapped[str] = mapped_column(String(128))
    tool: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))  # allowed|denied
    reason: Mapped[str] = mapped_column(String(256), default="")
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16))  # ok|error|denied|unauthenticated
    request_id: Mapped[str] = mapped_column(String(64), default="")
    args_hash: Mapped[str] = mapped_column(String(64), default="")
    # The hash chain (ragops.audit.chain): editing or deleting a row breaks it, and `ragops audit verify` says where.
    seq: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64), default="")
    row_hash: Mapped[str] = mapped_column(String(64), default="")
    # HMAC of row_hash with a key kept outside the registry (ragops.audit.anchor); empty for rows written without it.
    row_mac: Mapped[str] = mapped_column(String(64), default="")


class AuditChainHead(Base):
    """The newest link of a hash chain: writers serialise on this row, and a deleted tail shows against it."""

    __tablename__ = "audit_chain_heads"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    head_hash: Mapped[str] = mapped_column(String(64))


class EvalRun(Base):
    __tablename__ = "eval_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    testset: Mapped[str] = mapped_column(String(1024))
    testset_hash: Mapped[str] = mapped_column(String(64), index=True)
    release: Mapped[str] = mapped_column(String(128))
    variant: Mapped[str] = mapped_column(String(16), default="stable")  # stable|candidate
    index_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    embedding_model: Mapped[str] = mapped_column(String(256))
    generator: Mapped[str] = mapped_column(String(256))
    n: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    comparison: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default="ok")  # ok|regressed
    duration_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # A baseline for later runs: passed its gate ("gate") or accepted by a person (`ragops eval accept`).
    accepted_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EvalResult(Base):
    __tablename__ = "eval_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[str] = mapped_column(String(128))
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text, default="")
    fallback: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    retrieved: Mapped[list] = mapped_column(JSON, default=list)


class HealthCheck(Base):
    """One probe of one component; monitoring_review and the health alerts read these."""

    __tablename__ = "health_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    component: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column()
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    detail: Mapped[str] = mapped_column(Text, default="")


class ComponentState(Base):
    """The last known state of a component, so an outage alerts once when it starts and once when it ends."""

    __tablename__ = "component_state"
    component: Mapped[str] = mapped_column(String(64), primary_key=True)
    ok: Mapped[bool] = mapped_column()
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    detail: Mapped[str] = mapped_column(Text, default="")


class RolloutDecision(Base):
    """Every gate verdict and manual action, with the evidence it was taken on."""

    __tablename__ = "rollout_decisions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    candidate_release_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision: Mapped[str] = mapped_column(String(32))  # start|promote|raise|hold|rollback|pause|resume|abort|complete
    from_percent: Mapped[float] = mapped_column(Float, default=0.0)
    to_percent: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(256), default="gate")


class AuditRun(Base):
    __tablename__ = "audit_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    permissions_snapshot: Mapped[dict] = mapped_column(JSON, default=dict)
    counts: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditFinding(Base):
    __tablename__ = "audit_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("audit_runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))  # info|low|medium|high|critical
    client: Mapped[str] = mapped_column(String(128), default="")
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)


class CollectionDocument(Base):
    """What a collection holds, per document, with the fingerprint it was built from: switching the live pointer back
    to a collection re-reads only the documents whose fingerprint changed since (a cheap rollback)."""

    __tablename__ = "collection_documents"
    collection: Mapped[str] = mapped_column(String(256), primary_key=True)
    uri: Mapped[str] = mapped_column(String(1024), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    title: Mapped[str] = mapped_column(String(512), default="")
    n_chunks: Mapped[int] = mapped_column(Integer, default=0)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class McpToolPin(Base):
    """An approved definition of a connected MCP tool; the newest row per (server, tool) is the pin in force."""

    __tablename__ = "mcp_tool_pins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_url: Mapped[str] = mapped_column(String(1024), index=True)
    tool: Mapped[str] = mapped_column(String(128))
    fingerprint: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(16))  # pin|approve
    actor: Mapped[str] = mapped_column(String(256))
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class McpToolCheck(Base):
    """One look at one connected tool: its definition against the pin, and its contract probes."""

    __tablename__ = "mcp_tool_checks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    run: Mapped[str] = mapped_column(String(64))  # groups the tools of one check run
    server_url: Mapped[str] = mapped_column(String(1024))
    tool: Mapped[str] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16))  # unchanged|changed|unpinned|missing|down
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    diff: Mapped[list] = mapped_column(JSON, default=list)
    contract: Mapped[str] = mapped_column(String(16), default="none")  # passed|failed|none
    probes: Mapped[list] = mapped_column(JSON, default=list)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # median probe latency
    detail: Mapped[str] = mapped_column(Text, default="")


class McpToolReview(Base):
    """Who looked at a tool's change (diff) or approved it, and when."""

    __tablename__ = "mcp_tool_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    server_url: Mapped[str] = mapped_column(String(1024))
    tool: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))  # pin|diff|approve
    actor: Mapped[str] = mapped_column(String(256))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
