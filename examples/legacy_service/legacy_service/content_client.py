"""Client of the content service, which stores essay texts and hands back their ids."""

from __future__ import annotations

import httpx
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .opentracing_compat import CompatTracer

tracer = CompatTracer(trace.get_tracer(__name__))


class ContentServiceError(RuntimeError):
    pass


class ContentServiceClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def store(self, text: str, *, correlation_id: str) -> str:
        """Store ``text`` and return its content id."""
        headers = {"X-Correlation-ID": correlation_id}
        span = tracer.start_span("content.store", kind=SpanKind.CLIENT)
        with tracer.scope_manager.activate(span, True):  # planted: opentracing-scope:content-store
            response = await self._client.post("/v1/content", json={"text": text}, headers=headers)  # planted: http-inject:content-store
            span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code != 201:
            raise ContentServiceError(f"content service answered {response.status_code}")
        return response.json()["content_id"]
