"""Trace context over a real Kafka-compatible broker (Tansu), through the kit as rendered.

Every propagation test has an uninstrumented or contrib-style control that fails the same
assertion, so a broken helper cannot pass by accident.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import TopicPartition
from opentelemetry import context, trace
from opentelemetry.instrumentation.aiokafka.utils import (
    AIOKafkaContextGetter,
    AIOKafkaContextSetter,
)
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

pytestmark = [pytest.mark.slow, pytest.mark.broker]

# Bounds a hung broker, not a performance expectation.
RECEIVE_TIMEOUT = 60


@pytest.fixture
def new_topic(tansu: str, kit_package):
    """Create a fresh single-partition topic, so records come back in the order they were sent."""

    async def create() -> str:
        return await importlib.import_module(f"{kit_package.__name__}.testing").new_topic(
            tansu, "kit")

    return create


@pytest.fixture
async def producer(tansu: str) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(bootstrap_servers=tansu)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def _read(bootstrap: str, topic: str, count: int, **options) -> list:
    """The first ``count`` records of partition 0, read by a consumer without a group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        return [
            await asyncio.wait_for(consumer.getone(), RECEIVE_TIMEOUT) for _ in range(count)
        ]
    finally:
        await consumer.stop()


def _spans(exporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def _ancestors(span, exporter) -> list[str]:
    """Names from ``span`` up its parent chain, as far as the exported spans reach."""
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    names = [span.name]
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


@pytest.mark.parametrize("instrumented", [True, False], ids=["kit", "control: plain send"])
async def test_the_handler_span_descends_from_the_producer_span_over_headers(
    kit_package, new_topic, tansu, producer, span_exporter, instrumented
):
    topic = await new_topic()
    tracer = kit_package.get_tracer()
    with tracer.start_as_current_span("request"):
        if instrumented:
            await kit_package.traced_send(producer, topic, b"order-1")
        else:
            await producer.send_and_wait(topic, b"order-1")
    (record,) = await _read(tansu, topic, 1)
    with kit_package.consume_span(record):
        with tracer.start_as_current_span("handle"):
            pass

    spans = _spans(span_exporter)
    tree = kit_package.testing.render_span_tree(spans.values())
    handle = spans["handle"]
    follows = handle.context.trace_id == spans["request"].context.trace_id
    assert follows is instrumented, tree
    if instrumented:
        assert _ancestors(handle, span_exporter) == [
            "handle", f"process {topic}", f"send {topic}", "request"
        ], tree
        assert spans[f"send {topic}"].kind is SpanKind.PRODUCER
        assert [k for k, _ in record.headers].count("traceparent") == 1


@pytest.mark.parametrize("instrumented", [True, False], ids=["kit", "control: no metadata"])
async def test_the_trace_crosses_in_envelope_metadata_without_headers(
    kit_package, new_topic, tansu, producer, span_exporter, instrumented
):
    topic = await new_topic()
    tracer = kit_package.get_tracer()
    with tracer.start_as_current_span("request"):
        envelope = {"event_type": "essay.submitted", "payload": {"id": 1}, "metadata": None}
        if instrumented:
            envelope["metadata"] = kit_package.inject_metadata(envelope["metadata"])
        await producer.send_and_wait(topic, json.dumps(envelope).encode())
    (record,) = await _read(tansu, topic, 1, value_deserializer=json.loads)
    assert not record.headers

    with kit_package.consume_span(record):  # finds record.value["metadata"] by itself
        pass
    with kit_package.restore_span(record.value["metadata"], record.value["event_type"]):
        pass

    spans = _spans(span_exporter)
    tree = kit_package.testing.render_span_tree(spans.values())
    request_trace = spans["request"].context.trace_id
    for name in (f"process {topic}", "essay.submitted"):
        assert (spans[name].context.trace_id == request_trace) is instrumented, tree
        assert (spans[name].parent is not None) is instrumented, tree


@pytest.mark.parametrize("kit_inject", [True, False], ids=["kit", "control: contrib setter"])
async def test_forwarding_a_consumed_header_list_keeps_exactly_one_traceparent(
    kit_package, new_topic, tansu, producer, span_exporter, kit_inject
):
    inbound, outbound = await new_topic(), await new_topic()
    tracer = kit_package.get_tracer()
    with tracer.start_as_current_span("upstream"):
        await kit_package.traced_send(producer, inbound, b"x", headers=[("source", b"a")])
    (received,) = await _read(tansu, inbound, 1)

    with kit_package.consume_span(received):
        forwarded = list(received.headers)  # reused as is, as forwarding code does
        with tracer.start_as_current_span("forward") as forward:
            if kit_inject:
                await kit_package.traced_send(producer, outbound, b"x", headers=forwarded)
            else:
                kit_package.tracing.PROPAGATOR.inject(forwarded, setter=AIOKafkaContextSetter())
                await producer.send_and_wait(outbound, b"x", headers=forwarded)
    (second,) = await _read(tansu, outbound, 1)

    traceparents = [value for key, value in second.headers if key == "traceparent"]
    assert (len(traceparents) == 1) is kit_inject, second.headers
    assert ("source", b"a") in second.headers
    # Most readers (contrib's getter, other languages' clients) take the first value.
    first_wins = TraceContextTextMapPropagator().extract(
        second.headers, getter=AIOKafkaContextGetter()
    )
    seen_parent = trace.get_current_span(first_wins).get_span_context().span_id
    spans = _spans(span_exporter)
    fresh_parent = (spans[f"send {outbound}"] if kit_inject else spans["forward"]).context.span_id
    assert (seen_parent == fresh_parent) is kit_inject, kit_package.testing.render_span_tree(
        spans.values()
    )
    if not kit_inject:
        assert seen_parent == spans[f"send {inbound}"].context.span_id  # the stale upstream hop
    assert forward.get_span_context().trace_id == spans["upstream"].context.trace_id


async def test_bad_or_missing_traceparents_start_new_roots_and_processing_goes_on(
    kit_package, new_topic, tansu, producer, span_exporter
):
    topic = await new_topic()
    await producer.send_and_wait(topic, b"0", headers=[("traceparent", b"\xff\xfe\xfd")])
    await producer.send_and_wait(topic, b"1", headers=[("traceparent", b"00-zz-yy-01")])
    await producer.send_and_wait(topic, b"2")
    with kit_package.get_tracer().start_as_current_span("request") as request:
        await kit_package.traced_send(producer, topic, b"3")
    records = await _read(tansu, topic, 4)

    before = context.get_current()
    handled = []
    for record in records:
        with kit_package.consume_span(record) as span:
            handled.append(record.value)
            assert trace.get_current_span() is span
    assert context.get_current() is before
    assert handled == [b"0", b"1", b"2", b"3"]

    process = sorted(
        (s for s in span_exporter.get_finished_spans() if s.name == f"process {topic}"),
        key=lambda s: s.attributes["messaging.kafka.offset"],
    )
    assert [s.parent is None for s in process] == [True, True, True, False]
    assert process[3].context.trace_id == request.get_span_context().trace_id


async def test_a_failing_handler_is_recorded_and_the_next_record_still_processed(
    kit_package, new_topic, tansu, producer, span_exporter
):
    topic = await new_topic()
    tracer = kit_package.get_tracer()
    senders = []
    for value in (b"ok-1", b"boom", b"ok-2"):
        with tracer.start_as_current_span(f"request {value.decode()}") as request:
            await kit_package.traced_send(producer, topic, value)
            senders.append(request.get_span_context().trace_id)
    records = await _read(tansu, topic, 3)

    async def handle(record) -> None:
        if record.value == b"boom":
            raise ValueError("cannot grade")

    before = context.get_current()
    outcomes = []
    for record in records:  # the loop of a consumer: log, move on
        try:
            with kit_package.consume_span(record):
                await handle(record)
            outcomes.append("ok")
        except ValueError:
            outcomes.append("failed")
        assert context.get_current() is before
    assert outcomes == ["ok", "failed", "ok"]

    process = sorted(
        (s for s in span_exporter.get_finished_spans() if s.name == f"process {topic}"),
        key=lambda s: s.attributes["messaging.kafka.offset"],
    )
    assert [s.context.trace_id for s in process] == senders
    assert [s.status.status_code for s in process] == [
        StatusCode.UNSET, StatusCode.ERROR, StatusCode.UNSET
    ]
    assert process[1].events[0].attributes["exception.type"] == "ValueError"


async def test_a_send_without_waiting_ends_its_span_on_delivery(
    kit_package, new_topic, tansu, producer, span_exporter
):
    topic = await new_topic()
    await producer.send_and_wait(topic, b"first")  # offset 0
    delivery = await kit_package.traced_send(producer, topic, b"second", key=b"k-1", wait=False)
    assert isinstance(delivery, asyncio.Future)
    metadata = await delivery
    await asyncio.sleep(0)  # let every done callback of the delivery future run
    (send,) = [s for s in span_exporter.get_finished_spans() if s.name == f"send {topic}"]
    assert metadata.offset == 1
    assert send.attributes["messaging.kafka.offset"] == 1
    assert send.attributes["messaging.destination.partition.id"] == "0"
    assert send.attributes["messaging.kafka.message.key"] == "k-1"
    assert send.end_time is not None


async def test_a_failing_send_is_recorded_on_the_producer_span_and_reraised(
    kit_package, new_topic, tansu, span_exporter
):
    small = AIOKafkaProducer(bootstrap_servers=tansu, max_request_size=1024)
    await small.start()
    try:
        with pytest.raises(MessageSizeTooLargeError):
            await kit_package.traced_send(small, await new_topic(), b"x" * 4096)
    finally:
        await small.stop()
    (send,) = span_exporter.get_finished_spans()
    assert send.status.status_code is StatusCode.ERROR
    assert send.events[0].attributes["exception.type"].endswith(".MessageSizeTooLargeError")


async def test_traced_producer_wraps_send_and_send_and_wait(
    kit_package, new_topic, tansu, span_exporter
):
    topic = await new_topic()
    async with kit_package.TracedProducer(AIOKafkaProducer(bootstrap_servers=tansu)) as producer:
        with kit_package.get_tracer().start_as_current_span("request") as request:
            await producer.send_and_wait(topic, b"a")
            await (await producer.send(topic, b"b"))
        assert producer.client is producer.wrapped.client  # everything else is delegated
    records = await _read(tansu, topic, 2)
    for record in records:
        parent = kit_package.extract_context(record)
        assert (
            trace.get_current_span(parent).get_span_context().trace_id
            == request.get_span_context().trace_id
        )


async def test_getmany_batches_in_a_consumer_group_get_a_span_per_record(
    kit_package, new_topic, tansu, producer, span_exporter
):
    topic, group = await new_topic(), f"group-{uuid.uuid4().hex[:8]}"
    tracer = kit_package.get_tracer()
    expected = {}
    for index in range(3):
        with tracer.start_as_current_span(f"request {index}") as request:
            await kit_package.traced_send(producer, topic, str(index).encode())
            expected[str(index).encode()] = request.get_span_context().trace_id

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=tansu, group_id=group, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = {}
    try:
        async with asyncio.timeout(RECEIVE_TIMEOUT):
            while len(seen) < 3:
                batch = await consumer.getmany(timeout_ms=500)
                for record, scope in kit_package.consume_batch(batch, group_id=group):
                    with scope as span:
                        seen[record.value] = span.get_span_context().trace_id
    finally:
        await consumer.stop()
    assert seen == expected
    groups = {
        s.attributes["messaging.consumer.group.name"]
        for s in span_exporter.get_finished_spans() if s.name == f"process {topic}"
    }
    assert groups == {group}


def test_messaging_attributes_are_visible_to_the_sampler(run_with_kit, tansu):
    """Set at span creation, the attributes reach ``should_sample`` (they cannot be added later)."""
    topic = f"sampled-{uuid.uuid4().hex[:8]}"
    report = run_with_kit(
        """
        import asyncio, json
        from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
        from aiokafka.structs import TopicPartition
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler
        import kitpkg.tracekit as kit

        seen = {}

        class Recording(Sampler):
            def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None,
                              links=None, trace_state=None):
                seen[name] = dict(attributes or {})
                return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes,
                                               links, trace_state)

            def get_description(self):
                return "Recording"

        trace.set_tracer_provider(TracerProvider(sampler=Recording()))

        async def main():
            producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP)
            await producer.start()
            await kit.traced_send(producer, "TOPIC", b"v", key=b"k", partition=0)
            await producer.stop()
            consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
            await consumer.start()
            consumer.assign([TopicPartition("TOPIC", 0)])
            await consumer.seek_to_beginning()
            record = await asyncio.wait_for(consumer.getone(), 60)
            await consumer.stop()
            with kit.consume_span(record, group_id="g"):
                pass

        asyncio.run(main())
        print(json.dumps(seen))
        """.replace("BOOTSTRAP", repr(tansu)).replace("TOPIC", topic)
    )
    assert report[f"send {topic}"] == {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.partition.id": "0",
        "messaging.kafka.message.key": "k",
    }
    process = report[f"process {topic}"]
    assert process["messaging.operation.type"] == "process"
    assert process["messaging.consumer.group.name"] == "g"
    assert process["messaging.kafka.offset"] == 0
