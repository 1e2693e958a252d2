"""kafka-consume, executed over a real broker: the handler's work descends from the sender.

A record is sent through the kit's ``traced_send`` under a ``request`` span; each fixture's
``consume(bootstrap, topics, handle, group)`` reads it and calls ``handle``, which starts a
``handle`` span. Rewritten, that span descends from the PRODUCER span (through the CONSUMER
span ``process {topic}``); the unrewritten fixture fails the same assertion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from opentelemetry import trace
from opentelemetry.semconv._incubating.attributes import messaging_attributes as messaging
from opentelemetry.trace import SpanKind

from scaffold.codemods.kafka_consume import KafkaConsume
from scaffold.engine import Settings, Status, process_source
from tests.codemods.conftest import FIXTURES, load_fixture
from tests.codemods.kafka_helpers import RECEIVE_TIMEOUT, descends_from, new_topic

CASES = ["async_for_loop", "getone_attribute", "getmany_values", "getmany_items",
         "consumer_from_a_factory"]
# The fixtures whose consumer construction names a group the rewrite can repeat at the span.
GROUP_SUFFIX = {"async_for_loop": "", "getone_attribute": ".worker", "getmany_values": "",
                "consumer_from_a_factory": ""}


async def _send_then_consume(module, bootstrap, kit, exporter):
    """One record sent under a request span, consumed by the fixture until it is handled."""
    topic = await new_topic(bootstrap, "consume")
    tracer = trace.get_tracer("kafka-consume-test")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        with tracer.start_as_current_span("request"):
            await kit.traced_send(producer, topic, b"essay")
    finally:
        await producer.stop()

    handled: asyncio.Queue = asyncio.Queue()

    async def handle(record):
        with tracer.start_as_current_span("handle"):
            handled.put_nowait(record)

    group = f"group-{uuid.uuid4().hex[:8]}"
    consuming = asyncio.create_task(module.consume(bootstrap, [topic], handle, group))
    try:
        await asyncio.wait_for(handled.get(), RECEIVE_TIMEOUT)
    finally:
        consuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consuming
    spans = exporter.get_finished_spans()
    by_name = {span.name: span for span in spans}
    return group, spans, by_name, topic


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.replace("_", " "))
async def test_unrewritten_handlers_start_a_new_trace(case, tansu, kit_package, span_exporter):
    """The control: without the rewrite the handler's span is a root of its own trace."""
    module = load_fixture("kafka-consume", case, "before")
    _, spans, by_name, topic = await _send_then_consume(
        module, tansu, kit_package, span_exporter)

    assert by_name["handle"].parent is None
    assert not descends_from(by_name["handle"], by_name[f"send {topic}"], spans)


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.replace("_", " "))
async def test_rewritten_handlers_run_inside_a_consumer_span_of_the_sender(
    case, tansu, kit_package, span_exporter
):
    module = load_fixture("kafka-consume", case, "after")
    group, spans, by_name, topic = await _send_then_consume(
        module, tansu, kit_package, span_exporter)
    handled, sent = by_name["handle"], by_name[f"send {topic}"]
    consumed = by_name[f"process {topic}"]

    assert descends_from(handled, sent, spans)
    assert handled.parent.span_id == consumed.context.span_id
    assert consumed.kind is SpanKind.CONSUMER
    assert consumed.parent.span_id == sent.context.span_id
    assert consumed.attributes[messaging.MESSAGING_DESTINATION_NAME] == topic
    if case in GROUP_SUFFIX:
        assert consumed.attributes[messaging.MESSAGING_CONSUMER_GROUP_NAME] == (
            group + GROUP_SUFFIX[case])


@pytest.mark.parametrize("path", ["tests/support.py", "service/test_worker.py", "conftest.py"])
def test_test_code_is_left_alone(path):
    """Tests read records by hand to look at what arrived, not to handle it."""
    before = (FIXTURES / "kafka-consume" / "async_for_loop" / "before.py").read_bytes()
    settings = Settings(kit="service.tracekit")

    assert process_source(before, path, [KafkaConsume], settings).status is Status.UNCHANGED
    assert process_source(before, "service/worker.py", [KafkaConsume],
                          settings).status is Status.CHANGED


@pytest.mark.slow
@pytest.mark.broker
async def test_a_record_without_context_headers_continues_the_trace_in_its_json_envelope(
    tansu, kit_package, span_exporter
):
    """A producer that puts the context only in the envelope (no headers): the consumer
    reads raw bytes, and the CONSUMER span is parented on the envelope's metadata."""
    module = load_fixture("kafka-consume", "async_for_loop", "after")
    topic = await new_topic(tansu, "envelope")
    tracer = trace.get_tracer("kafka-consume-test")
    producer = AIOKafkaProducer(bootstrap_servers=tansu)
    await producer.start()
    try:
        with tracer.start_as_current_span("request") as request:
            envelope = {"event_type": "essay.submitted",
                        "metadata": kit_package.inject_metadata(None)}
        await producer.send_and_wait(topic, json.dumps(envelope).encode("utf-8"))
    finally:
        await producer.stop()

    handled: asyncio.Queue = asyncio.Queue()

    async def handle(record):
        with tracer.start_as_current_span("handle"):
            handled.put_nowait(record)

    consuming = asyncio.create_task(
        module.consume(tansu, [topic], handle, f"group-{uuid.uuid4().hex[:8]}"))
    try:
        record = await asyncio.wait_for(handled.get(), RECEIVE_TIMEOUT)
    finally:
        consuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consuming
    assert not [key for key, _ in record.headers if key == "traceparent"]
    by_name = {span.name: span for span in span_exporter.get_finished_spans()}
    consumed = by_name[f"process {topic}"]
    assert (consumed.context.trace_id, consumed.parent.span_id) == (
        request.get_span_context().trace_id, request.get_span_context().span_id)
    assert by_name["handle"].parent.span_id == consumed.context.span_id
