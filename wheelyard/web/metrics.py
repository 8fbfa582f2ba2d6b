"""``/metrics`` and the middleware that counts requests by route template."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wheelyard.telemetry.metrics import LATENCY, REGISTRY, REQUESTS


async def metrics(request: Request) -> Response:
    """Prometheus text format; names no project or user."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


_CHILDREN: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
"""The labelled series of each (method, route template, status), looked up once."""


def observe_request(method: str, template: str, status: int, seconds: float) -> None:
    """Count one answered request and its latency, labelled by route template."""
    key = (method, template, str(status))
    children = _CHILDREN.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), LATENCY.labels(template))
        _CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


class MetricsMiddleware:
    """Counts requests and their latency, labelled by route template, never by path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            observe_request(scope["method"], template, status, time.perf_counter() - started)
