import asyncio
import json

import httpx
import pytest
from opentelemetry import trace

from legacy_service.app import create_app
from legacy_service.services import build_services
from support import parse_traceparent, traceparent_of

SUBMISSION = {"student_id": "s-1", "course_code": "BIO101", "text": "Plants grow."}


class ContentService:
    """Answers for the content service and remembers what it was sent."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(201, json={"content_id": f"content-{len(self.requests)}"})


@pytest.fixture
def content_service():
    return ContentService()


@pytest.fixture
async def client(settings, content_service):
    app = create_app(settings)
    services = build_services(settings, content_transport=httpx.MockTransport(content_service))
    app.extensions["legacy_service"] = services
    yield app.test_client()
    # the submission counter runs as a background task; let it finish before Redis closes
    pending = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "count_submission"]
    await asyncio.gather(*pending)
    await services.aclose()


async def test_submission_is_stored_sent_to_content_service_and_queued(
    client, redis, settings, content_service
):
    response = await client.post(
        "/v1/essays", json=SUBMISSION, headers={"X-Correlation-ID": "corr-1"}
    )

    assert response.status_code == 202
    body = await response.get_json()
    essay = await redis.hgetall(settings.key("essay", body["essay_id"]))
    assert essay == {
        "status": "submitted",
        "student_id": "s-1",
        "course_code": "BIO101",
        "content_id": "content-1",
    }
    [sent] = content_service.requests
    assert json.loads(sent.content) == {"text": "Plants grow."}
    assert sent.headers["X-Correlation-ID"] == "corr-1"
    [queued] = await redis.lrange(settings.key("queue", "submissions"), 0, -1)
    job = json.loads(queued)
    assert (job["essay_id"], job["correlation_id"], job["text"]) == (
        body["essay_id"],
        "corr-1",
        "Plants grow.",
    )


async def test_queued_job_carries_the_request_span_as_parent(client, redis, settings, span_exporter):
    await client.post("/v1/essays", json=SUBMISSION)

    [queued] = await redis.lrange(settings.key("queue", "submissions"), 0, -1)
    [request_span] = [s for s in span_exporter.get_finished_spans() if s.name == "api.submit_essay"]
    assert parse_traceparent(json.loads(queued)["traceparent"]) == (
        request_span.context.trace_id,
        request_span.context.span_id,
    )


async def test_request_continues_the_callers_trace(client, span_exporter):
    caller = trace.get_tracer("test").start_span("caller")
    headers = traceparent_of(caller)
    caller.end()

    await client.post("/v1/essays", json=SUBMISSION, headers=headers)

    [request_span] = [s for s in span_exporter.get_finished_spans() if s.name == "api.submit_essay"]
    assert request_span.context.trace_id == caller.get_span_context().trace_id
    assert request_span.parent.span_id == caller.get_span_context().span_id
    assert request_span.attributes["correlation_id"]


async def test_invalid_submission_is_rejected_and_nothing_is_queued(client, redis, settings):
    response = await client.post("/v1/essays", json={"student_id": "s-1"})

    assert response.status_code == 400
    assert await redis.llen(settings.key("queue", "submissions")) == 0


async def test_submission_is_counted_per_course(client, redis, settings):
    await client.post("/v1/essays", json=SUBMISSION)
    await client.post("/v1/essays", json=SUBMISSION)
    pending = [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "count_submission"]
    await asyncio.gather(*pending)

    assert await redis.hget(settings.key("metrics", "submissions"), "BIO101") == "2"


async def test_stored_essay_is_returned_and_unknown_essay_is_404(client):
    created = await (await client.post("/v1/essays", json=SUBMISSION)).get_json()

    found = await client.get(f"/v1/essays/{created['essay_id']}")
    missing = await client.get("/v1/essays/no-such-essay")

    assert (await found.get_json())["status"] == "submitted"
    assert missing.status_code == 404


async def test_course_stats_read_the_projection(client, redis, settings):
    await redis.hset(settings.key("course", "BIO101", "stats"), mapping={"essays": 2, "words": 9})

    response = await client.get("/v1/courses/BIO101/stats")

    assert await response.get_json() == {"course_code": "BIO101", "essays": 2, "words": 9}


async def test_dead_letters_are_requeued_oldest_first(client, redis, settings):
    await redis.lpush(settings.key("queue", "dead"), "first", "second")

    response = await client.post("/admin/requeue-dead")

    assert await response.get_json() == {"requeued": 2}
    assert await redis.lrange(settings.key("queue", "submissions"), 0, -1) == ["second", "first"]
