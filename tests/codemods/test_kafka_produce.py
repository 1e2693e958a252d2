"""kafka-produce, executed over a real broker: what the consumer sees descends from the sender.

Each fixture's ``produce(bootstrap, topic, value)`` runs under a ``request`` span; a plain
consumer then reads the record and handles it inside the kit's ``consume_span``. Rewritten,
the consumer span descends from the PRODUCER span (from the request itself for batches,
which have no span per record); the unrewritten fixture fails the same assertion.
"""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from scaffold.codemods.kafka_produce import KafkaProduce
from scaffold.engine import Settings, Status, process_source
from tests.codemods.conftest import FIXTURES, load_fixture
from tests.codemods.kafka_helpers import descends_from, first_record, new_topic

CASES = [
    "bus_attribute",
    "local_send_positional_headers",
    "annotated_parameter_and_alias",
    "wrapper_taking_pairs",
    "send_batch",
    "producer_of_a_held_bus",
]
NO_SPAN_PER_RECORD = {"send_batch"}


async def _produce_and_consume(module, bootstrap, kit, exporter):
    """Send through the fixture under a request span; read the record back and handle it."""
    topic = await new_topic(bootstrap, "produce")
    tracer = trace.get_tracer("kafka-produce-test")
    with tracer.start_as_current_span("request"):
        await module.produce(bootstrap, topic, b"essay")
    record = await first_record(bootstrap, topic)
    with kit.consume_span(record):
        pass
    spans = exporter.get_finished_spans()
    by_name = {span.name: span for span in spans}
    return record, by_name["request"], by_name.get(f"send {topic}"), by_name[f"process {topic}"]


def _sender(request, producer, case):
    return request if case in NO_SPAN_PER_RECORD else producer


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.replace("_", " "))
async def test_unrewritten_records_start_a_new_trace_at_the_consumer(
    case, tansu, kit_package, span_exporter
):
    """The control: without the rewrite the consumer span is a root of its own trace."""
    module = load_fixture("kafka-produce", case, "before")
    _, request, producer, consumed = await _produce_and_consume(
        module, tansu, kit_package, span_exporter)

    assert producer is None
    assert consumed.parent is None
    assert not descends_from(consumed, request, span_exporter.get_finished_spans())


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.replace("_", " "))
async def test_rewritten_records_carry_the_sender_into_the_consumer_span(
    case, tansu, kit_package, span_exporter
):
    module = load_fixture("kafka-produce", case, "after")
    record, request, producer, consumed = await _produce_and_consume(
        module, tansu, kit_package, span_exporter)
    spans = span_exporter.get_finished_spans()

    assert descends_from(consumed, _sender(request, producer, case), spans)
    if case not in NO_SPAN_PER_RECORD:
        assert producer.kind is SpanKind.PRODUCER
        assert consumed.parent.span_id == producer.context.span_id
        assert descends_from(producer, request, spans)
    traceparents = [key for key, _ in record.headers if key == "traceparent"]
    assert traceparents == ["traceparent"]


@pytest.mark.slow
@pytest.mark.broker
async def test_existing_headers_are_kept_beside_the_trace_context(
    tansu, kit_package, span_exporter
):
    record, *_ = await _produce_and_consume(
        load_fixture("kafka-produce", "bus_attribute", "after"), tansu, kit_package,
        span_exporter)

    assert ("origin", b"fixture") in list(record.headers)
    assert record.key == b"essay-1"


@pytest.mark.parametrize("path", ["tests/support.py", "service/test_bus.py", "conftest.py"])
def test_test_code_is_left_alone(path):
    """Tests send records by hand, often with a chosen traceparent: rewriting them would hide
    what they observe."""
    before = (FIXTURES / "kafka-produce" / "bus_attribute" / "before.py").read_bytes()
    settings = Settings(kit="service.tracekit")

    assert process_source(before, path, [KafkaProduce], settings).status is Status.UNCHANGED
    assert process_source(before, "service/bus.py", [KafkaProduce],
                          settings).status is Status.CHANGED


# -- an outbox relay publishes under the context stored with the event ------------------------

STORED_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
STORED_SPAN = 0x00F067AA0BA902B7


async def _relay_and_consume(module, bootstrap, kit, exporter):
    """Relay one stored event outside any trace; read the record back and handle it."""
    topic = await new_topic(bootstrap, "relay")
    row = {"topic": topic, "event_type": "essay.submitted", "event_key": "essay-1",
           "event_data": {"data": {"essay_id": "essay-1"},
                          "metadata": {"traceparent": f"00-{STORED_TRACE:032x}-"
                                                      f"{STORED_SPAN:016x}-01"},
                          "headers": {"event_id": "e-1"}}}
    assert not trace.get_current_span().get_span_context().is_valid  # a background worker
    await module.relay(bootstrap, row)
    record = await first_record(bootstrap, topic)
    with kit.consume_span(record):
        pass
    by_name = {span.name: span for span in exporter.get_finished_spans()}
    return record, by_name.get(f"send {topic}"), by_name[f"process {topic}"]


@pytest.mark.slow
@pytest.mark.broker
async def test_unrewritten_relay_has_no_send_span_between_stored_context_and_consumer(
    tansu, kit_package, span_exporter
):
    _, producer, consumed = await _relay_and_consume(
        load_fixture("kafka-produce", "outbox_relay", "before"), tansu, kit_package,
        span_exporter)

    assert producer is None  # no send span: the consumer only has the envelope's fallback
    assert (consumed.context.trace_id, consumed.parent.span_id) == (STORED_TRACE, STORED_SPAN)


@pytest.mark.slow
@pytest.mark.broker
async def test_rewritten_relay_sends_under_the_stored_context_and_the_consumer_follows(
    tansu, kit_package, span_exporter
):
    record, producer, consumed = await _relay_and_consume(
        load_fixture("kafka-produce", "outbox_relay", "after"), tansu, kit_package,
        span_exporter)

    assert producer.kind is SpanKind.PRODUCER
    assert (producer.context.trace_id, producer.parent.span_id) == (STORED_TRACE, STORED_SPAN)
    assert (consumed.context.trace_id, consumed.parent.span_id) == (
        STORED_TRACE, producer.context.span_id)
    assert ("event_id", b"e-1") in list(record.headers)  # the stored headers are kept


# -- a fallback queue replays a record under the context its envelope carries ---------------


async def _replay_and_consume(module, bootstrap, kit, exporter):
    """Publish under a request span while the bus is down (queued), replay from a task with
    a fresh context (a recovery loop), then read the record back and handle it."""
    topic = await new_topic(bootstrap, "replay")
    bus = module.KafkaBus(bootstrap)
    resilient = module.ResilientKafkaBus(bus)
    with trace.get_tracer("replay-test").start_as_current_span("request"):
        envelope = {"event_type": "essay.submitted", "metadata": kit.inject_metadata(None)}
        await resilient.publish(topic, envelope)
    assert len(resilient.queued) == 1
    await bus.producer.start()
    bus.started = True
    try:
        await asyncio.create_task(resilient.process_queued_messages(),
                                  context=contextvars.Context())
    finally:
        await bus.producer.stop()
    record = await first_record(bootstrap, topic)
    with kit.consume_span(record):
        pass
    by_name = {span.name: span for span in exporter.get_finished_spans()}
    return by_name["request"], by_name.get(f"send {topic}"), by_name[f"process {topic}"]


@pytest.mark.slow
@pytest.mark.broker
async def test_unrewritten_replay_has_no_send_span_between_request_and_consumer(
    tansu, kit_package, span_exporter
):
    request, producer, consumed = await _replay_and_consume(
        load_fixture("kafka-produce", "fallback_queue_replay", "before"), tansu, kit_package,
        span_exporter)

    assert producer is None  # no send span: the consumer only has the envelope's fallback
    assert consumed.parent.span_id == request.context.span_id


@pytest.mark.slow
@pytest.mark.broker
async def test_rewritten_replay_sends_under_the_request_that_published_it(
    tansu, kit_package, span_exporter
):
    request, producer, consumed = await _replay_and_consume(
        load_fixture("kafka-produce", "fallback_queue_replay", "after"), tansu, kit_package,
        span_exporter)

    assert (producer.context.trace_id, producer.parent.span_id) == (
        request.context.trace_id, request.context.span_id)
    assert consumed.parent.span_id == producer.context.span_id
