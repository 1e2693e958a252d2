from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace

from legacy_service.events import (
    ESSAY_ANALYSED,
    ESSAY_SUBMITTED,
    EssayAnalysedV1,
    EssaySubmittedV1,
    EventEnvelope,
)
from legacy_service.handlers import HandlerDeps, handle_essay_submitted, project_essay_analysed
from support import outbox_entries, parse_traceparent, record_of, traceparent_of

SUBMITTED = EssaySubmittedV1(
    essay_id="e-1",
    student_id="s-1",
    course_code="BIO101",
    content_id="c-1",
    text="Plants convert light. Photosynthesis matters!",
)


@pytest.fixture
def deps(redis, settings):
    with ThreadPoolExecutor(2) as pool:
        yield HandlerDeps(redis=redis, settings=settings, pool=pool)


def submitted_envelope(metadata=None):
    return EventEnvelope(
        event_type=ESSAY_SUBMITTED,
        correlation_id="corr-1",
        data=SUBMITTED.model_dump(),
        metadata=metadata,
    )


async def test_submitted_essay_is_analysed_and_announced_through_the_outbox(deps, redis, settings):
    await handle_essay_submitted(record_of(submitted_envelope(), "essays"), deps)

    [(topic, announced)] = outbox_entries(await redis.lrange(settings.key("outbox"), 0, -1))
    assert topic == settings.topic(ESSAY_ANALYSED)
    assert announced.event_type == ESSAY_ANALYSED
    assert announced.correlation_id == "corr-1"
    analysed = EssayAnalysedV1.model_validate(announced.data)
    assert (analysed.essay_id, analysed.course_code, analysed.word_count) == ("e-1", "BIO101", 5)
    assert analysed.long_words == ["photosynthesis"]
    essay = await redis.hgetall(settings.key("essay", "e-1"))
    assert essay == {"status": "analysed", "word_count": "5"}


async def test_handling_continues_the_trace_in_the_envelope_metadata(
    deps, redis, settings, span_exporter
):
    tracer = trace.get_tracer("test")
    upstream = tracer.start_span("upstream")
    upstream.end()
    record = record_of(submitted_envelope(metadata=traceparent_of(upstream)), "essays")

    await handle_essay_submitted(record, deps, tracer=tracer)

    [handling] = [s for s in span_exporter.get_finished_spans() if s.name == ESSAY_SUBMITTED]
    assert handling.context.trace_id == upstream.get_span_context().trace_id
    assert handling.parent.span_id == upstream.get_span_context().span_id
    assert handling.attributes["correlation_id"] == "corr-1"
    [(_, announced)] = outbox_entries(await redis.lrange(settings.key("outbox"), 0, -1))
    trace_id, _ = parse_traceparent(announced.metadata["traceparent"])
    assert trace_id == upstream.get_span_context().trace_id


async def test_course_statistics_count_each_analysed_event_once(deps, redis, settings):
    analysed = EventEnvelope(
        event_type=ESSAY_ANALYSED,
        correlation_id="corr-1",
        data=EssayAnalysedV1(
            essay_id="e-1",
            course_code="BIO101",
            word_count=6,
            sentence_count=2,
            average_word_length=6.5,
            long_words=[],
        ).model_dump(),
    )
    record = record_of(analysed, "analysed")

    await project_essay_analysed(record, deps)
    await project_essay_analysed(record, deps)  # a redelivery

    stats = await redis.hgetall(settings.key("course", "BIO101", "stats"))
    assert stats == {"essays": "1", "words": "6"}
