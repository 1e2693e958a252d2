"""envelope-inject + envelope-restore, executed: a trace crosses an envelope round trip.

The producer fixture publishes an envelope through a bus; the message body is what travels;
the handler fixture parses it and does its work. Rewritten, the handler's span continues the
producer's trace, and a span exists even for an envelope without metadata; the unrewritten
pair, run the same way, loses the trace (the control).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from opentelemetry import trace

from tests.codemods.conftest import load_fixture

EVENT = "essay.submitted"


class _Bus:
    """Keeps what was published, as the message value a consumer would receive."""

    def __init__(self) -> None:
        self.messages: list[SimpleNamespace] = []

    async def publish(self, topic, envelope, key=None, headers=None):
        self.messages.append(SimpleNamespace(topic=topic, value=envelope.model_dump_json()))


async def _round_trip(producer, handler, handler_kwargs) -> dict:
    """Publish under a request span, then handle the message and start a span in the work."""
    tracer = trace.get_tracer("round-trip")
    bus = _Bus()
    with tracer.start_as_current_span("request") as request:
        await producer.announce(bus, "essays", "e-1", "corr-1")
    seen = {}

    async def process(envelope):
        with tracer.start_as_current_span("work") as work:
            seen["work"] = work

    [message] = bus.messages
    await handler(message, process, **handler_kwargs)
    return {"request": request, "work": seen["work"]}


def _spans(exporter) -> dict:
    return {span.name: span for span in exporter.get_finished_spans()}


def _handler(version: str, case: str):
    module = load_fixture("envelope-restore", case, version)
    return module.handle_essay_submitted


HANDLERS = [
    pytest.param("guarded_kit", {"tracer": trace.get_tracer("handler")}, id="guarded handler"),
    pytest.param("unrestored_handler", {}, id="handler that never restores"),
]


@pytest.mark.parametrize(("case", "kwargs"), HANDLERS)
async def test_rewritten_pair_continues_the_producers_trace(case, kwargs, span_exporter,
                                                           context_leak_guard):
    producer = load_fixture("envelope-inject", "bus_publish", "after")
    hop = await _round_trip(producer, _handler("after", case), kwargs)
    spans = _spans(span_exporter)
    request, handling, work = spans["request"], spans[EVENT], spans["work"]
    assert handling.context.trace_id == request.context.trace_id
    assert handling.parent.span_id == request.context.span_id
    assert work.parent.span_id == handling.context.span_id
    assert hop["work"].get_span_context().trace_id == request.context.trace_id


@pytest.mark.parametrize(("case", "kwargs"), HANDLERS)
async def test_unrewritten_pair_loses_the_trace(case, kwargs, span_exporter, context_leak_guard):
    """The control: the same round trip without the rewrites."""
    producer = load_fixture("envelope-inject", "bus_publish", "before")
    await _round_trip(producer, _handler("before", case), kwargs)
    spans = _spans(span_exporter)
    assert EVENT not in spans  # no metadata, so the guarded handler starts no span at all
    assert spans["work"].context.trace_id != spans["request"].context.trace_id
    assert spans["work"].parent is None


@pytest.mark.parametrize(("case", "kwargs"), HANDLERS)
async def test_rewritten_handler_spans_an_envelope_without_metadata(case, kwargs, span_exporter,
                                                                    context_leak_guard):
    """A producer that injects nothing still gets a handler span: a new root, parent of the work."""
    producer = load_fixture("envelope-inject", "bus_publish", "before")
    await _round_trip(producer, _handler("after", case), kwargs)
    spans = _spans(span_exporter)
    handling, work = spans[EVENT], spans["work"]
    assert handling.parent is None
    assert handling.context.trace_id != spans["request"].context.trace_id
    assert work.parent.span_id == handling.context.span_id

