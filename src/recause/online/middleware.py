"""What wraps every request: the body-size limit and the Prometheus metrics (requests, latency, errors, model).

Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task per request). Routes are labelled by their
first path segment from a fixed set, so a fuzzer's random paths cannot grow the metrics without bound.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTES = ("recommendations", "explanations", "events", "health", "ready", "metrics", "docs", "openapi.json")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ApiMetrics:
    """The server's Prometheus metrics, in a registry of its own (two apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recause_requests", "HTTP requests by route and status", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "recause_request_seconds", "Request latency", ["route"], buckets=LATENCY_BUCKETS, registry=self.registry
        )
        self.errors = Counter("recause_errors", "Responses with a 5xx status", ["route"], registry=self.registry)
        self.model = Gauge(
            "recause_model_info", "The served model (1: live)", ["model", "version"], registry=self.registry
        )
        self.swaps = Counter("recause_model_swaps", "Models that went live", registry=self.registry)

    def model_live(self, model: str, version: str) -> None:
        self.model.clear()
        self.model.labels(model, version).set(1)
        self.swaps.inc()


def route_of(path: str) -> str:
    first = path.strip("/").split("/", 1)[0]
    return first if first in ROUTES else "other"


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a request body over ``limit`` bytes, whether it declares its length or streams it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _reply(send, 413, f"request body over {self.limit} bytes (serving.max_body_bytes)")
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await _reply(send, 413, f"request body over {self.limit} bytes (serving.max_body_bytes)")


class BodyTooLarge(Exception):
    pass


class Measured:
    """Counts every response by route and status and times it; 5xx responses are counted as errors too."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route, started, status = route_of(scope.get("path", "")), time.perf_counter(), 500

        async def recorded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            self.metrics.requests.labels(route, str(status)).inc()
            if status >= 500:
                self.metrics.errors.labels(route).inc()
