"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_LABELS = ("api", "workload", "version")


class Metrics:
    """Requests, errors, latency, time to first token, tokens and engine queue depth."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loragate_requests", "Generation requests answered", [*_LABELS, "status"], registry=r
        )
        self.errors = Counter(
            "loragate_errors", "Generation requests that failed", [*_LABELS, "type"], registry=r
        )
        self.latency = Histogram(
            "loragate_request_latency_seconds",
            "Request start to last byte",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "loragate_time_to_first_token_seconds",
            "Request start to first generated output",
            _LABELS,
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "loragate_tokens",
            "Prompt (in) and completion (out) tokens",
            ["direction", "workload", "version"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "loragate_engine_queue_depth",
            "Requests waiting for the engine",
            ["version"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["CONTENT_TYPE", "Metrics"]
