"""Registry models of life after launch (issue 23): users' votes, the live quality checks, the content-gap reports.

Importable from `ragops.registry.models` like every other model.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ragops.registry.base import Base, utcnow


class Feedback(Base):
    """A user's vote on one served answer (issue 23). One row per request and caller: request ids are client-chosen
    (X-Request-ID), so two callers may share one, and each keeps its own vote; a caller's second vote replaces its
    first (migration 0016_vote_per_caller)."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("request_id", "user_hash", name="uq_feedback_request_caller"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
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


class ContentGapReport(Base):
    """The content-gap analysis of one period (issue 23): the RAG Ops page shows the newest. Re-running a period
    replaces its row."""

    __tablename__ = "content_gap_reports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    period_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period_end: Mapped[datetime] = mapped_column(DateTime(timezone=True), unique=True)
    report: Mapped[dict] = mapped_column(JSON, default=dict)  # ragops.gaps.report.GapReport.to_dict()
