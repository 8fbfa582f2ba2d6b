"""Prometheus metrics. Labels never name a project or a user."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "wheelyard_http_requests",
    "HTTP requests answered",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "wheelyard_http_request_duration_seconds",
    "Time to answer a request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    registry=REGISTRY,
)
BYTES_SERVED = Counter(
    "wheelyard_bytes_served", "Bytes of distribution files served", registry=REGISTRY
)
UPLOADS = Counter("wheelyard_uploads", "Upload attempts by result", ["result"], registry=REGISTRY)
CACHE_EVENTS = Counter(
    "wheelyard_cache_events",
    "Proxy cache hits, misses and stale serves",
    ["kind", "event"],
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "wheelyard_upstream_errors",
    "Failed requests to upstream indexes",
    ["reason"],
    registry=REGISTRY,
)
