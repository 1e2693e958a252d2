"""Token discipline, envelope metadata carriers and the queue capture/restore pair."""

from __future__ import annotations

import asyncio
import contextvars
import json

import pytest
import redis.asyncio as aioredis
from opentelemetry import baggage, context, trace
from opentelemetry.trace import SpanKind, StatusCode

UPSTREAM_TRACE = 0x0AF7651916CD43DD8448EB211C80319C
UPSTREAM_SPAN = 0xB7AD6B7169203331
UPSTREAM = f"00-{UPSTREAM_TRACE:032x}-{UPSTREAM_SPAN:016x}-01"
STALE = "00-11111111111111111111111111111111-2222222222222222-01"


def _span_context():
    return trace.get_current_span().get_span_context()


# -- tokens --------------------------------------------------------------------------------


def test_attached_restores_the_previous_context_even_when_the_block_raises(kit_package):
    before = context.get_current()
    ctx = baggage.set_baggage("correlation_id", "c-1")
    with pytest.raises(RuntimeError):
        with kit_package.attached(ctx) as inside:
            assert context.get_current() is inside is ctx
            raise RuntimeError
    assert context.get_current() is before
    with kit_package.attached(None):
        assert context.get_current() is before


def test_span_scope_is_a_child_of_the_current_span_by_default(kit_package, span_exporter):
    tracer = kit_package.get_tracer()
    with tracer.start_as_current_span("outer") as outer:
        with kit_package.SpanScope("inner", attributes={"k": "v"}) as inner:
            assert trace.get_current_span() is inner
        assert trace.get_current_span() is outer
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert spans["inner"].parent.span_id == spans["outer"].context.span_id
    assert spans["inner"].attributes["k"] == "v"


# -- envelope metadata ---------------------------------------------------------------------


def test_inject_metadata_creates_the_dict_when_it_is_none(kit_package, span_exporter):
    with kit_package.get_tracer().start_as_current_span("publish") as span:
        metadata = kit_package.inject_metadata(None)
    assert isinstance(metadata, dict)
    extracted = kit_package.extract_trace_context(metadata)
    assert trace.get_current_span(extracted).get_span_context().span_id == (
        span.get_span_context().span_id
    )
    json.dumps(metadata)  # it travels inside a JSON body


def test_inject_trace_context_replaces_stale_keys_in_place(kit_package, span_exporter):
    metadata = {"traceparent": STALE, "tracestate": "x=y", "schema": 2}
    with kit_package.get_tracer().start_as_current_span("publish"):
        returned = kit_package.inject_trace_context(metadata)
    assert returned is metadata
    assert metadata["traceparent"] != STALE and "tracestate" not in metadata
    assert metadata["schema"] == 2
    outside = kit_package.inject_trace_context({"traceparent": STALE})
    assert outside == {}  # no span now: a stale parent is removed, not forwarded


@pytest.mark.parametrize(
    "carrier",
    [
        None, {}, "not a dict", {"traceparent": 5}, {"traceparent": "00-zz"},
        [("traceparent", UPSTREAM)],
    ],
    ids=["none", "empty", "string", "non-string value", "malformed", "list"],
)
def test_unusable_carriers_give_an_empty_context(kit_package, carrier):
    ctx = kit_package.extract_trace_context(carrier)
    assert not trace.get_current_span(ctx).get_span_context().is_valid


def test_use_trace_context_attaches_for_the_block_only(kit_package):
    before = context.get_current()
    with kit_package.use_trace_context({"traceparent": UPSTREAM}):
        assert _span_context().trace_id == UPSTREAM_TRACE
    assert context.get_current() is before


@pytest.mark.parametrize("metadata", [None, {}], ids=["none", "empty"])
def test_restore_span_starts_a_span_even_without_metadata(kit_package, span_exporter, metadata):
    """HuleEdu restores only ``if envelope.metadata``: empty metadata then means no span at all."""
    with kit_package.restore_span(metadata, "essay.submitted") as span:
        assert trace.get_current_span() is span
    (restored,) = span_exporter.get_finished_spans()
    assert restored.name == "essay.submitted"
    assert restored.kind is SpanKind.CONSUMER and restored.parent is None


@pytest.mark.parametrize("metadata", [None, {}, {"correlation_id": "c-1"}],
                         ids=["none", "empty", "no traceparent"])
def test_restore_span_without_a_parent_in_metadata_stays_under_the_current_span(
        kit_package, span_exporter, metadata):
    """A handler under the record's CONSUMER span (context from the headers) must not leave
    that trace because the envelope itself carries no context."""
    tracer = kit_package.get_tracer("consumer")
    with tracer.start_as_current_span("process orders") as consumer:
        with kit_package.restore_span(metadata, "essay.submitted"):
            pass
    restored = next(s for s in span_exporter.get_finished_spans() if s.name == "essay.submitted")
    assert restored.context.trace_id == consumer.get_span_context().trace_id
    assert restored.parent.span_id == consumer.get_span_context().span_id


def test_restore_span_with_a_malformed_traceparent_starts_a_new_trace(kit_package, span_exporter):
    tracer = kit_package.get_tracer("consumer")
    with tracer.start_as_current_span("process orders") as consumer:
        with kit_package.restore_span({"traceparent": "00-zz-yy-01"}, "essay.submitted"):
            pass
    restored = next(s for s in span_exporter.get_finished_spans() if s.name == "essay.submitted")
    assert restored.parent is None
    assert restored.context.trace_id != consumer.get_span_context().trace_id


def test_restore_span_under_a_consumer_span_of_the_same_trace_is_its_child(
        kit_package, span_exporter):
    """The record's CONSUMER span was parented on the producer's context (its headers); the
    envelope carries that trace too. The handler's span must be the CONSUMER span's child, as
    the messaging conventions draw it, not its sibling under the producer."""
    upstream = kit_package.extract_trace_context({"traceparent": UPSTREAM})
    tracer = kit_package.get_tracer("consumer")
    with tracer.start_as_current_span("process orders", context=upstream) as consumer:
        assert not kit_package.should_restore({"traceparent": UPSTREAM})
        with kit_package.restore_span({"traceparent": UPSTREAM}, "essay.submitted"):
            pass
    restored = next(s for s in span_exporter.get_finished_spans() if s.name == "essay.submitted")
    assert restored.context.trace_id == UPSTREAM_TRACE
    assert restored.parent.span_id == consumer.get_span_context().span_id


def test_restore_span_under_a_span_of_another_trace_restores_the_envelope(
        kit_package, span_exporter):
    tracer = kit_package.get_tracer("consumer")
    with tracer.start_as_current_span("poll"):
        assert kit_package.should_restore({"traceparent": UPSTREAM})
        with kit_package.restore_span({"traceparent": UPSTREAM}, "essay.submitted"):
            pass
    restored = next(s for s in span_exporter.get_finished_spans() if s.name == "essay.submitted")
    assert (restored.context.trace_id, restored.parent.span_id) == (UPSTREAM_TRACE, UPSTREAM_SPAN)


@pytest.mark.parametrize(("metadata", "expected"), [
    (None, False), ({}, False), ({"correlation_id": "c-1"}, False), ("00-x", False),
    ({"traceparent": UPSTREAM}, True), ({"traceparent": "00-zz-yy-01"}, True),
], ids=["none", "empty", "no traceparent", "not a mapping", "context", "malformed"])
def test_should_restore_outside_any_span(kit_package, metadata, expected):
    assert kit_package.should_restore(metadata) is expected


def test_restore_span_continues_the_trace_and_records_failures(kit_package, span_exporter):
    before = context.get_current()
    with pytest.raises(ValueError):
        with kit_package.restore_span({"traceparent": UPSTREAM}, "essay.submitted"):
            raise ValueError("bad essay")
    assert context.get_current() is before
    (restored,) = span_exporter.get_finished_spans()
    assert (restored.context.trace_id, restored.parent.span_id) == (UPSTREAM_TRACE, UPSTREAM_SPAN)
    assert restored.status.status_code is StatusCode.ERROR


def test_trace_operation_accepts_a_tracer_or_none(kit_package, span_exporter):
    tracer = kit_package.get_tracer("grading.handlers")
    with kit_package.trace_operation(tracer, "api.grade", {"essay.id": 3}):
        with pytest.raises(KeyError), kit_package.trace_operation(None, "lookup"):
            raise KeyError("essay")
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert spans["api.grade"].instrumentation_scope.name == "grading.handlers"
    assert spans["lookup"].parent.span_id == spans["api.grade"].context.span_id
    assert spans["lookup"].status.status_code is StatusCode.ERROR
    assert spans["api.grade"].status.status_code is StatusCode.UNSET


# -- queue capture / restore ---------------------------------------------------------------


def test_capture_writes_trace_context_and_correlation_id(kit_package, span_exporter):
    item = {"essay_id": 1, "traceparent": STALE}
    with kit_package.correlation_context("corr-3"):
        with kit_package.get_tracer().start_as_current_span("enqueue") as span:
            captured = kit_package.capture_for_queue(item)
    assert captured is item
    assert captured["correlation_id"] == "corr-3"
    assert captured["traceparent"].split("-")[2] == f"{span.get_span_context().span_id:016x}"
    assert kit_package.capture_for_queue(None, correlation_id="explicit") == {
        "correlation_id": "explicit"
    }
    own = kit_package.capture_for_queue({"correlation_id": "the item's own"})
    assert own == {"correlation_id": "the item's own"}


@pytest.mark.parametrize(
    "item",
    [
        json.dumps({"essay_id": 1, "traceparent": UPSTREAM}),
        json.dumps({"essay_id": 1, "traceparent": UPSTREAM}).encode(),
        {b"essay_id": b"1", b"traceparent": UPSTREAM.encode()},
    ],
    ids=["json text", "json bytes", "stream fields with bytes keys"],
)
def test_restore_reads_an_item_as_redis_returns_it(kit_package, span_exporter, item):
    with kit_package.restore_from_queue(item):
        pass
    (processed,) = span_exporter.get_finished_spans()
    assert processed.context.trace_id == UPSTREAM_TRACE
    assert processed.parent is not None and processed.parent.span_id == UPSTREAM_SPAN


@pytest.mark.parametrize(
    "item", [None, {}, {"traceparent": "garbage", "correlation_id": "has space"}, "not json",
             b"[1, 2]"],
    ids=["none", "empty", "malformed", "text that is no JSON", "JSON that is no object"],
)
def test_restore_from_an_item_without_context_starts_a_root(kit_package, span_exporter, item):
    before = context.get_current()
    with kit_package.restore_from_queue(item) as span:
        assert trace.get_current_span() is span
    assert context.get_current() is before
    (processed,) = span_exporter.get_finished_spans()
    assert processed.name == "queue_processing" and processed.parent is None
    assert "correlation_id" not in processed.attributes


@pytest.mark.slow
@pytest.mark.parametrize("captured", [True, False], ids=["kit", "control: no capture"])
async def test_a_redis_queue_carries_the_trace_and_correlation_id(
    kit_package, span_exporter, redis_url, captured
):
    client = aioredis.from_url(redis_url)
    queue = f"kit-queue-{captured}"
    tracer = kit_package.get_tracer()
    try:
        with kit_package.correlation_context("corr-queue"):
            with tracer.start_as_current_span("api.submit") as producer_span:
                item = {"essay_id": 7}
                if captured:
                    item = kit_package.capture_for_queue(item)
                await client.rpush(queue, json.dumps(item))

        async def worker() -> None:  # starts from an empty context, as a worker process does
            _, raw = await client.blpop([queue], timeout=30)
            with kit_package.restore_from_queue(json.loads(raw), attributes={"essay.id": 7}):
                with tracer.start_as_current_span("grade"):
                    pass

        await asyncio.create_task(worker(), context=contextvars.Context())
    finally:
        await client.aclose()

    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    tree = kit_package.testing.render_span_tree(spans.values())
    processing = spans["queue_processing"]
    same_trace = processing.context.trace_id == producer_span.get_span_context().trace_id
    assert same_trace is captured, tree
    assert spans["grade"].parent.span_id == processing.context.span_id, tree
    assert (processing.attributes.get("correlation_id") == "corr-queue") is captured, tree
    assert processing.kind is SpanKind.CONSUMER
