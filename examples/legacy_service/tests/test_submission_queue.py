import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace

from legacy_service.events import ESSAY_SUBMITTED, EssaySubmittedV1
from legacy_service.submission_queue import QueueWorker, SubmissionQueue
from support import parse_traceparent

JOB = {
    "essay_id": "e-1",
    "content_id": "c-1",
    "student_id": "s-1",
    "course_code": "BIO101",
    "text": "  Plants \n grow. ",
}


class RecordingBus:
    """Stands in for the Kafka bus; stops the worker once it has seen ``expected`` calls."""

    def __init__(self, stop: asyncio.Event, fail: bool = False) -> None:
        self.published = []
        self._stop = stop
        self._fail = fail

    async def publish(self, topic, envelope, key=None, headers=None):
        self._stop.set()
        if self._fail:
            raise ConnectionError("broker unavailable")
        self.published.append((topic, envelope, key, headers))


@pytest.fixture
def pool():
    with ThreadPoolExecutor(2) as executor:
        yield executor


async def test_worker_announces_the_normalised_essay_on_kafka(redis, settings, pool):
    stop = asyncio.Event()
    bus = RecordingBus(stop)
    await SubmissionQueue(redis, settings).enqueue(JOB, correlation_id="corr-1")

    await asyncio.wait_for(QueueWorker(redis, bus, settings, pool).run(stop), timeout=30)

    [(topic, envelope, key, headers)] = bus.published
    assert (topic, key) == (settings.topic(ESSAY_SUBMITTED), "e-1")
    assert headers == [("correlation_id", b"corr-1")]
    assert envelope.correlation_id == "corr-1"
    assert EssaySubmittedV1.model_validate(envelope.data).text == "Plants grow."


async def test_worker_continues_the_trace_captured_at_enqueue(redis, settings, pool, span_exporter):
    stop = asyncio.Event()
    with trace.get_tracer("test").start_as_current_span("request") as request_span:
        await SubmissionQueue(redis, settings).enqueue(JOB, correlation_id="corr-1")
    [queued] = await redis.lrange(settings.key("queue", "submissions"), 0, -1)

    await asyncio.wait_for(QueueWorker(redis, RecordingBus(stop), settings, pool).run(stop), 30)

    [processing] = [s for s in span_exporter.get_finished_spans() if s.name == "queue_processing"]
    assert parse_traceparent(json.loads(queued)["traceparent"]) == (
        request_span.get_span_context().trace_id,
        request_span.get_span_context().span_id,
    )
    assert processing.parent.span_id == request_span.get_span_context().span_id
    assert processing.attributes["correlation_id"] == "corr-1"


async def test_job_that_cannot_be_published_goes_to_the_dead_letter_list(redis, settings, pool):
    stop = asyncio.Event()
    await SubmissionQueue(redis, settings).enqueue(JOB, correlation_id="corr-1")

    await asyncio.wait_for(
        QueueWorker(redis, RecordingBus(stop, fail=True), settings, pool).run(stop), 30
    )

    [dead] = await redis.lrange(settings.key("queue", "dead"), 0, -1)
    assert json.loads(dead)["essay_id"] == "e-1"
    assert await redis.llen(settings.key("queue", "submissions")) == 0
