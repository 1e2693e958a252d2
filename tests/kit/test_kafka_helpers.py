"""Kafka helpers without a broker: header injection, tolerant extraction, consumer span trees.

Records are real ``aiokafka`` ``ConsumerRecord``s built as ``getone()`` returns them; the
broker round trips are in ``test_kafka_broker.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging

import pydantic
import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.instrumentation.aiokafka.utils import (
    AIOKafkaContextGetter,
    AIOKafkaContextSetter,
)
from opentelemetry.trace import SpanKind, StatusCode

STALE = "00-11111111111111111111111111111111-2222222222222222-01"
UPSTREAM_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
UPSTREAM_SPAN = 0xB7AD6B7169203331
UPSTREAM = f"00-{UPSTREAM_TRACE:032x}-{UPSTREAM_SPAN:016x}-01"


def _traceparents(headers) -> list[bytes]:
    return [value for key, value in headers if key == "traceparent"]


def _ids(ctx: context.Context) -> tuple[int, int]:
    span_context = trace.get_current_span(ctx).get_span_context()
    return span_context.trace_id, span_context.span_id


def _expected(span) -> bytes:
    span_context = span.get_span_context()
    flags = int(span_context.trace_flags)
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}".encode()


# -- inject_headers ------------------------------------------------------------------------


def test_inject_replaces_a_stale_traceparent_and_keeps_other_headers(kit_package, span_exporter):
    original = (("source", b"billing"), ("traceparent", STALE.encode()), ("tracestate", b"a=b"))
    with kit_package.get_tracer().start_as_current_span("send") as span:
        headers = kit_package.inject_headers(original)
    assert headers == [("source", b"billing"), ("traceparent", _expected(span))]
    assert original[1] == ("traceparent", STALE.encode())  # the caller's tuple is untouched


def test_a_reused_header_list_carries_exactly_one_traceparent(kit_package, span_exporter):
    reused: list[tuple[str, bytes]] = [("source", b"billing")]
    tracer = kit_package.get_tracer()
    sent = []
    for name in ("first", "second", "third"):
        with tracer.start_as_current_span(name) as span:
            reused = kit_package.inject_headers(reused)
            sent.append((span, reused))
    for span, headers in sent:
        assert _traceparents(headers) == [_expected(span)]


def test_control_the_contrib_setter_appends_a_second_traceparent(kit_package, span_exporter):
    """What the kit fixes: contrib's setter appends, and readers take the stale first value."""
    reused: list[tuple[str, bytes]] = [("traceparent", STALE.encode())]
    with kit_package.get_tracer().start_as_current_span("send"):
        kit_package.tracing.PROPAGATOR.inject(reused, setter=AIOKafkaContextSetter())
    assert len(_traceparents(reused)) == 2


def test_inject_accepts_none_and_adds_nothing_without_a_span(kit_package):
    assert kit_package.inject_headers(None) == []
    assert kit_package.inject_headers([("traceparent", STALE.encode())]) == []


def test_inject_uses_an_explicit_context_and_sends_only_the_correlation_id(kit_package):
    parent = kit_package.extract_context(headers=[("traceparent", UPSTREAM.encode())])
    parent = baggage.set_baggage("tenant", "t-1", parent)
    parent = baggage.set_baggage("correlation_id", "corr-9", parent)
    headers = kit_package.inject_headers(None, context=parent)
    assert headers == [("traceparent", UPSTREAM.encode()), ("baggage", b"correlation_id=corr-9")]


# -- extract_context -----------------------------------------------------------------------


def test_extract_reads_the_parent_from_headers(kit_package, make_record):
    record = make_record(headers=(("traceparent", UPSTREAM.encode()),))
    assert _ids(kit_package.extract_context(record)) == (UPSTREAM_TRACE, UPSTREAM_SPAN)


def test_with_duplicate_traceparents_the_last_one_wins(kit_package, make_record):
    record = make_record(
        headers=(("traceparent", STALE.encode()), ("traceparent", UPSTREAM.encode()))
    )
    assert _ids(kit_package.extract_context(record)) == (UPSTREAM_TRACE, UPSTREAM_SPAN)


@pytest.mark.parametrize(
    "headers",
    [
        None,
        (),
        (("traceparent", b"\xff\xfe\x00garbage"),),
        (("traceparent", b"not-a-traceparent"),),
        (("traceparent", b"00-00000000000000000000000000000000-0000000000000000-01"),),
        (("traceparent", None),),
        (("traceparent",),),
        (("tracestate", b"\xc3\x28"), ("traceparent", b"\x80")),
    ],
    ids=[
        "none", "empty", "non utf-8", "malformed", "all-zero ids", "null value", "not a pair",
        "every value undecodable",
    ],
)
def test_bad_or_missing_headers_mean_no_parent_and_never_raise(kit_package, make_record, headers):
    ctx = kit_package.extract_context(make_record(headers=headers))
    assert not trace.get_current_span(ctx).get_span_context().is_valid


def test_control_the_contrib_getter_raises_on_non_utf8(make_record):
    record = make_record(headers=(("traceparent", b"\xff\xfe"),))
    with pytest.raises(UnicodeDecodeError):
        AIOKafkaContextGetter().get(record.headers, "traceparent")


def test_a_bad_value_is_logged_once_at_debug(kit_package, make_record, caplog):
    record = make_record(headers=(("traceparent", b"\xff"), ("tracestate", b"\xfe")), offset=7)
    with caplog.at_level(logging.DEBUG, logger="kitpkg.tracekit.kafka"):
        kit_package.extract_context(record)
    messages = [r for r in caplog.records if r.name == "kitpkg.tracekit.kafka"]
    assert len(messages) == 1
    assert messages[0].levelno == logging.DEBUG and "orders/0@7" in messages[0].getMessage()


class EventEnvelope(pydantic.BaseModel):
    """The HuleEdu envelope shape: trace context rides in ``metadata``."""

    event_type: str
    payload: dict
    correlation_id: str
    metadata: dict | None = None


def test_envelope_metadata_is_the_fallback_carrier(kit_package, make_record):
    as_dict = make_record(value={"event_type": "x", "metadata": {"traceparent": UPSTREAM}})
    as_model = make_record(
        value=EventEnvelope(
            event_type="x", payload={}, correlation_id="c", metadata={"traceparent": UPSTREAM}
        )
    )
    explicit = make_record(value=b"raw bytes")
    cases = ((as_dict, None), (as_model, None), (explicit, {"traceparent": UPSTREAM}))
    for record, metadata in cases:
        ctx = kit_package.extract_context(record, metadata=metadata)
        assert _ids(ctx) == (UPSTREAM_TRACE, UPSTREAM_SPAN)


@pytest.mark.parametrize("value", [
    json.dumps({"event_type": "x", "metadata": {"traceparent": UPSTREAM}}).encode(),
    json.dumps({"event_type": "x", "metadata": {"traceparent": UPSTREAM}}),
    b'  {"metadata": {"traceparent": "%s"}}' % UPSTREAM.encode(),
], ids=["JSON bytes", "JSON text", "leading whitespace"])
def test_an_envelope_read_without_a_deserializer_is_the_fallback_carrier(
        kit_package, make_record, value):
    """Consumers that parse ``msg.value`` themselves: the envelope is still in the bytes."""
    ctx = kit_package.extract_context(make_record(value=value))
    assert _ids(ctx) == (UPSTREAM_TRACE, UPSTREAM_SPAN)


@pytest.mark.parametrize("value", [b"\xff\xfe{", b"{not json", b"[1, 2]", b"plain", "",
                                   json.dumps({"metadata": "traceparent"}).encode()],
                         ids=["not UTF-8", "not JSON", "a list", "plain", "empty",
                              "metadata not a dict"])
def test_values_without_a_json_envelope_give_no_parent(kit_package, make_record, value):
    ctx = kit_package.extract_context(make_record(value=value))
    assert not trace.get_current_span(ctx).get_span_context().is_valid


def test_headers_win_over_metadata_and_their_correlation_id_survives(kit_package, make_record):
    record = make_record(
        headers=(("traceparent", UPSTREAM.encode()),),
        value={"metadata": {"traceparent": STALE}},
    )
    assert _ids(kit_package.extract_context(record)) == (UPSTREAM_TRACE, UPSTREAM_SPAN)

    only_baggage_in_headers = make_record(
        headers=(("baggage", b"correlation_id=corr-5"),),
        value={"metadata": {"traceparent": UPSTREAM}},
    )
    ctx = kit_package.extract_context(only_baggage_in_headers)
    assert _ids(ctx) == (UPSTREAM_TRACE, UPSTREAM_SPAN)
    assert baggage.get_baggage("correlation_id", ctx) == "corr-5"


def test_extraction_ignores_whatever_context_is_current(kit_package, make_record, span_exporter):
    with kit_package.get_tracer().start_as_current_span("poll loop"):
        ctx = kit_package.extract_context(make_record())
    assert not trace.get_current_span(ctx).get_span_context().is_valid


# -- consume_span --------------------------------------------------------------------------


def _by_name(exporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def test_the_process_span_descends_from_the_creation_context_and_is_current_for_the_handler(
    kit_package, make_record, span_exporter
):
    record = make_record(
        headers=(("traceparent", UPSTREAM.encode()), ("baggage", b"correlation_id=corr-1")),
        offset=42, partition=3,
    )
    before = context.get_current()
    with kit_package.consume_span(record, group_id="graders") as span:
        assert trace.get_current_span() is span
        with kit_package.get_tracer().start_as_current_span("handle"):
            pass
    assert context.get_current() is before

    spans = _by_name(span_exporter)
    tree = kit_package.testing.render_span_tree(spans.values())
    process, handle = spans["process orders"], spans["handle"]
    assert process.kind is SpanKind.CONSUMER, tree
    assert process.context.trace_id == UPSTREAM_TRACE, tree
    assert process.parent.span_id == UPSTREAM_SPAN, tree
    assert handle.parent.span_id == process.context.span_id, tree
    # semantic conventions: the creation context is linked as well as being the parent
    assert [link.context.span_id for link in process.links] == [UPSTREAM_SPAN], tree
    assert dict(process.attributes) == {
        "messaging.system": "kafka",
        "messaging.destination.name": "orders",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.partition.id": "3",
        "messaging.kafka.offset": 42,
        "messaging.consumer.group.name": "graders",
        "correlation_id": "corr-1",
    }
    assert handle.attributes["correlation_id"] == "corr-1"


def test_link_only_starts_a_root_that_links_to_the_creation_context(
    kit_package, make_record, span_exporter
):
    record = make_record(
        headers=(("traceparent", UPSTREAM.encode()), ("baggage", b"correlation_id=corr-2"))
    )
    with kit_package.consume_span(record, link_only=True):
        pass
    (process,) = span_exporter.get_finished_spans()
    assert process.parent is None
    assert process.context.trace_id != UPSTREAM_TRACE
    assert [link.context.trace_id for link in process.links] == [UPSTREAM_TRACE]
    assert process.attributes["correlation_id"] == "corr-2"


def test_a_record_without_trace_context_gets_a_root_span(kit_package, make_record, span_exporter):
    with kit_package.consume_span(make_record(headers=(("traceparent", b"\xff"),))):
        pass
    (process,) = span_exporter.get_finished_spans()
    assert process.parent is None and not process.links


def test_a_handler_exception_is_recorded_reraised_and_the_context_restored(
    kit_package, make_record, span_exporter
):
    before = context.get_current()
    with pytest.raises(KeyError):
        with kit_package.consume_span(make_record()):
            raise KeyError("missing field")
    assert context.get_current() is before
    (process,) = span_exporter.get_finished_spans()
    assert process.status.status_code is StatusCode.ERROR
    assert process.status.description == "KeyError: 'missing field'"
    assert [event.name for event in process.events] == ["exception"]


async def test_cancellation_is_not_an_error_and_the_context_is_restored(
    kit_package, make_record, span_exporter
):
    before = context.get_current()
    started = asyncio.Event()

    async def consume_one() -> None:
        with kit_package.consume_span(make_record()):
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(consume_one())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert context.get_current() is before
    (process,) = span_exporter.get_finished_spans()
    assert process.status.status_code is StatusCode.UNSET
    assert [event.name for event in process.events] == ["cancelled"]


def test_consume_batch_gives_each_record_of_a_getmany_result_its_own_span(
    kit_package, make_record, span_exporter
):
    from aiokafka.structs import TopicPartition

    other = "00-" + "3" * 32 + "-" + "4" * 16 + "-01"
    batch = {
        TopicPartition("orders", 0): [
            make_record(headers=(("traceparent", UPSTREAM.encode()),), offset=0),
            make_record(offset=1),
        ],
        TopicPartition("orders", 1): [
            make_record(headers=(("traceparent", other.encode()),), partition=1, offset=0),
        ],
    }
    before = context.get_current()
    handled = []
    for record, scope in kit_package.consume_batch(batch, group_id="g"):
        with scope as span:
            handled.append((record.partition, record.offset))
            assert trace.get_current_span() is span
    assert context.get_current() is before
    assert handled == [(0, 0), (0, 1), (1, 0)]
    spans = sorted(span_exporter.get_finished_spans(), key=lambda s: s.start_time)
    assert [s.context.trace_id == UPSTREAM_TRACE for s in spans] == [True, False, False]
    assert spans[1].parent is None
    assert spans[2].context.trace_id == int("3" * 32, 16)


def test_breaking_out_of_a_batch_leaves_no_context_behind(kit_package, make_record, span_exporter):
    before = context.get_current()
    for _record, scope in kit_package.consume_batch([make_record(offset=i) for i in range(5)]):
        with scope:
            break
    assert context.get_current() is before
    assert len(span_exporter.get_finished_spans()) == 1


# -- traced_publish ------------------------------------------------------------------------


async def test_traced_publish_hands_a_wrapper_pairs_with_the_send_span(kit_package, span_exporter):
    seen = []

    async def publish(topic, value, key=None, headers=None):
        seen.append(headers)

    await kit_package.traced_publish(publish, "orders", b"{}", headers=[("source", b"billing")])
    (span,) = span_exporter.get_finished_spans()
    assert span.kind is SpanKind.PRODUCER
    assert seen == [[("source", b"billing"), ("traceparent", _expected(span))]]


async def test_traced_publish_hands_a_dict_wrapper_a_new_dict_of_strings(
    kit_package, span_exporter
):
    """A bus declaring ``headers: dict[str, str]`` calls ``.items()`` on what it gets."""
    seen = []

    async def publish(topic, envelope, key=None, headers: dict[str, str] | None = None):
        seen.append([(name, value.encode()) for name, value in (headers or {}).items()])

    given = {"source": "billing", "traceparent": STALE}
    await kit_package.traced_publish(publish, "orders", {}, headers=given, headers_as=dict)
    await kit_package.traced_publish(publish, "orders", {}, headers_as=dict)
    first, second = span_exporter.get_finished_spans()
    assert seen == [[("source", b"billing"), ("traceparent", _expected(first))],
                    [("traceparent", _expected(second))]]
    assert given["traceparent"] == STALE  # the caller's dict is untouched


def test_the_spelled_out_messaging_keys_are_the_semantic_conventions(kit_package):
    """kafka.py writes the keys as strings (it needs only the API); they are semconv's."""
    from opentelemetry.semconv._incubating.attributes import messaging_attributes as semconv

    kafka = kit_package.kafka
    names = [name for name in vars(kafka) if name.startswith("MESSAGING_")]

    assert len(names) == 8
    assert {name: getattr(kafka, name) for name in names} == {
        name: getattr(semconv, name) for name in names}
    assert (kafka._KAFKA, kafka._SEND, kafka._PROCESS) == (
        semconv.MessagingSystemValues.KAFKA.value,
        semconv.MessagingOperationTypeValues.SEND.value,
        semconv.MessagingOperationTypeValues.PROCESS.value)


# -- a relayed message keeps the trace stored in its envelope ---------------------------------

RELAY_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
RELAY_SPAN = 0x00F067AA0BA902B7
RELAY_PARENT = f"00-{RELAY_TRACE:032x}-{RELAY_SPAN:016x}-01"


class _RecordingProducer:
    """Only what traced_send calls: ``send`` returning an already-delivered future."""

    def __init__(self):
        self.sent = []

    async def send(self, topic, value=None, key=None, *, partition=None, timestamp_ms=None,
                   headers=None):
        self.sent.append((topic, value, headers))
        delivered = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


async def test_traced_send_outside_any_trace_continues_the_context_stored_in_the_envelope(
        kit_package, span_exporter):
    """An outbox relay runs with no span: the send span continues the stored trace."""
    producer = _RecordingProducer()
    value = {"event_type": "essay.submitted", "metadata": {"traceparent": RELAY_PARENT}}
    await kit_package.traced_send(producer, "essays", value)
    (span,) = span_exporter.get_finished_spans()
    assert (span.context.trace_id, span.parent.span_id) == (RELAY_TRACE, RELAY_SPAN)
    ((_, _, headers),) = producer.sent
    assert dict(headers)["traceparent"] == _expected(span)


async def test_traced_send_outside_any_trace_reads_the_stored_context_in_json_bytes(
        kit_package, span_exporter):
    """A relay that serialises the stored envelope itself sends bytes: the context is there."""
    producer = _RecordingProducer()
    value = json.dumps({"metadata": {"traceparent": RELAY_PARENT}}).encode("utf-8")
    await kit_package.traced_send(producer, "essays", value)
    (span,) = span_exporter.get_finished_spans()
    assert (span.context.trace_id, span.parent.span_id) == (RELAY_TRACE, RELAY_SPAN)
    ((_, sent, _),) = producer.sent
    assert sent is value  # sent as given


async def test_traced_send_under_a_span_keeps_the_current_parent(kit_package, span_exporter):
    producer = _RecordingProducer()
    value = {"metadata": {"traceparent": RELAY_PARENT}}
    with kit_package.get_tracer("api").start_as_current_span("api.submit") as current:
        await kit_package.traced_send(producer, "essays", value)
    send = next(s for s in span_exporter.get_finished_spans() if s.name == "send essays")
    assert send.parent.span_id == current.get_span_context().span_id


async def test_traced_publish_outside_any_trace_continues_the_envelope_object_s_context(
        kit_package, span_exporter):
    class Envelope:
        metadata = {"traceparent": RELAY_PARENT}

    seen = []

    async def publish(topic, envelope, key=None, headers=None):
        seen.append(headers)

    await kit_package.traced_publish(publish, "essays", Envelope())
    (span,) = span_exporter.get_finished_spans()
    assert (span.context.trace_id, span.parent.span_id) == (RELAY_TRACE, RELAY_SPAN)
