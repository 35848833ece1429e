"""Prometheus metrics of the app, on a registry per app (tests build several apps in one process).

With several uvicorn workers, `ragops serve` sets PROMETHEUS_MULTIPROC_DIR and /metrics aggregates all workers'
counters and histograms (and the held-tool gauge, the max over workers); collectors added with `add_collector` (the registry-backed gauges of status.py) are
rendered from the worker that answers the scrape.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for the route)

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram("ragops_request_latency_seconds", "Request latency", ["endpoint", "variant"],
                                 buckets=BUCKETS, registry=self.registry)
        self.requests = Counter("ragops_requests_total", "Requests by endpoint and HTTP status", ["endpoint", "status"],
                                registry=self.registry)
        self.fallbacks = Counter("ragops_fallbacks_total", "Fallback answers by code", ["code"], registry=self.registry)
        self.first_token = Histogram("ragops_time_to_first_token_seconds", "Streamed answers: time from the request "
                                     "to the first piece of answer text", ["endpoint"], buckets=BUCKETS,
                                     registry=self.registry)
        self.rate_limited = Counter("ragops_rate_limited_total", "Requests refused by the rate limiter, or by cost "
                                    "(scope cost: serving/admission.py)", ["scope"], registry=self.registry)
        # client names come from the permissions file (plus "unknown" and "anonymous"), so the label stays bounded
        self.mcp_calls = Counter("ragops_mcp_calls_total", "MCP tool calls by client, tool and decision",
                                 ["client", "tool", "decision"], registry=self.registry)
        self.tool_held = Gauge("ragops_mcp_tool_held", "1 while a connected MCP tool is held (changed, unapproved, "
                               "or failing its contract)", ["tool"], registry=self.registry, multiprocess_mode="max")
        self.tool_held_calls = Counter("ragops_mcp_tool_held_calls_total", "Calls not made because the tool is held",
                                       ["tool"], registry=self.registry)
        self.events_dropped = Counter("ragops_events_dropped_total", "Request events and access-log rows that could "
                                      "not be stored, by reason", ["kind", "reason"], registry=self.registry)
        self.events_written = Counter("ragops_events_written_total", "Request events and access-log rows stored",
                                      ["kind"], registry=self.registry)
        # one vote per request is stored (a second replaces the first); these count what was submitted
        self.feedback = Counter("ragops_feedback_total", "Votes on answers accepted, by rating and reason (none: no "
                                "reason given)", ["rating", "reason"], registry=self.registry)
        self.feedback_replaced = Counter("ragops_feedback_replaced_total", "Votes that replaced an earlier vote on "
                                         "the same request", registry=self.registry)
        self._collectors: list = []
        for code in ("no_results", "tool_failed", "llm_unavailable", "rate_limited", "store_unavailable"):
            self.fallbacks.labels(code)  # every code shows in /metrics from the start, at 0

    def add_collector(self, collector) -> None:
        self.registry.register(collector)
        self._collectors.append(collector)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            for collector in self._collectors:
                registry.register(collector)
            return generate_latest(registry)
        return generate_latest(self.registry)
