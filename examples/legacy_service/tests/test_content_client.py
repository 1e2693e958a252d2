import httpx
import pytest
from opentelemetry import trace

from legacy_service.content_client import ContentServiceClient, ContentServiceError


async def test_store_sends_the_text_and_returns_the_content_id(span_exporter):
    seen = []

    def content_service(request):
        seen.append(request)
        return httpx.Response(201, json={"content_id": "c-9"})

    async with httpx.AsyncClient(
        base_url="http://content.test", transport=httpx.MockTransport(content_service)
    ) as http:
        with trace.get_tracer("test").start_as_current_span("caller") as caller:
            content_id = await ContentServiceClient(http).store("text", correlation_id="corr-1")

    assert content_id == "c-9"
    assert seen[0].url.path == "/v1/content"
    assert seen[0].headers["X-Correlation-ID"] == "corr-1"
    [store] = [s for s in span_exporter.get_finished_spans() if s.name == "content.store"]
    assert store.parent.span_id == caller.get_span_context().span_id
    assert store.attributes["http.response.status_code"] == 201


async def test_store_raises_when_the_content_service_refuses():
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    async with httpx.AsyncClient(base_url="http://content.test", transport=transport) as http:
        with pytest.raises(ContentServiceError):
            await ContentServiceClient(http).store("text", correlation_id="corr-1")
