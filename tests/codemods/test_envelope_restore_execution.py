"""envelope-restore's output, executed: an envelope without metadata keeps the current trace.

The handler of a record already runs under the record's CONSUMER span (kafka-consume, context
from the headers). Restoring from an envelope that carries no context must not detach that
span: the handler's span stays in the record's trace. With metadata, it continues the stored
trace. Both rewritten forms run here: plain OpenTelemetry and a configured helper module.
"""

from __future__ import annotations

import json
import sys
import types

import pytest
from opentelemetry import context, propagate, trace

from scaffold.codemods import all_codemods
from scaffold.engine import Settings, Status, process_source

UNRESTORED = """\
import json

from events import EventEnvelope


async def handle(raw, process):
    envelope = EventEnvelope.model_validate(json.loads(raw))
    await process(envelope)
"""

GUARDED_HELPER = """\
import json

from events import EventEnvelope
from helpers import trace_operation, use_trace_context


async def handle(raw, process, tracer=None):
    envelope = EventEnvelope.model_validate(json.loads(raw))
    if envelope.metadata and tracer:
        with use_trace_context(envelope.metadata):
            with trace_operation(tracer, "handle", {}):
                await process(envelope)
    else:
        await process(envelope)
"""

# the untraced branch is the traced one with its span None: the traced branch runs in both cases
SPAN_PASSED_HELPER = """\
import json

from events import EventEnvelope
from helpers import trace_operation, use_trace_context


async def handle(raw, process, tracer=None):
    envelope = EventEnvelope.model_validate(json.loads(raw))
    if hasattr(envelope, "metadata") and envelope.metadata and tracer:
        with use_trace_context(envelope.metadata):
            with trace_operation(tracer, "handle", {}) as span:
                try:
                    return await process(envelope, span=span)
                except Exception as e:
                    if span:
                        span.record_exception(e)
                    raise
    else:
        try:
            return await process(envelope, span=None)
        except Exception:
            raise
"""

FORMS = [
    pytest.param(UNRESTORED, {}, id="plain OpenTelemetry"),
    pytest.param(GUARDED_HELPER, {"helper_module": "helpers"}, id="helper module"),
    pytest.param(SPAN_PASSED_HELPER, {"helper_module": "helpers"}, id="helper module, span passed"),
]


class EventEnvelope:
    def __init__(self, metadata):
        self.metadata = metadata
        self.event_type = "essay.submitted"

    @classmethod
    def model_validate(cls, data):
        return cls(data.get("metadata"))


def _helpers() -> types.ModuleType:
    """A helper library shaped like HuleEdu's (extract, attach, detach in finally)."""
    from contextlib import contextmanager

    module = types.ModuleType("helpers")

    @contextmanager
    def use_trace_context(carrier):
        token = context.attach(propagate.extract(carrier))
        try:
            yield
        finally:
            context.detach(token)

    @contextmanager
    def trace_operation(tracer, name, attributes):
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            yield span

    module.use_trace_context = use_trace_context
    module.trace_operation = trace_operation
    return module


@pytest.fixture
def modules(monkeypatch):
    events = types.ModuleType("events")
    events.EventEnvelope = EventEnvelope
    monkeypatch.setitem(sys.modules, "events", events)
    monkeypatch.setitem(sys.modules, "helpers", _helpers())


def _rewritten(source: str, **settings) -> dict:
    restore = [c for c in all_codemods() if c.ID == "envelope-restore"]
    result = process_source(source.encode(), "service/handlers.py", restore, Settings(**settings))
    assert result.status is Status.CHANGED, result
    namespace: dict = {}
    exec(compile(result.updated, "handlers.py", "exec"), namespace)
    return namespace


STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(("source", "settings"), FORMS)
@pytest.mark.parametrize("metadata", [None, {}, {"partition_key": "batch-1"}],
                         ids=["no metadata", "empty metadata", "metadata without context"])
async def test_without_metadata_the_handler_stays_in_the_records_trace(
        modules, span_exporter, source, settings, metadata):
    handle = _rewritten(source, **settings)["handle"]
    tracer = trace.get_tracer("test")
    seen = []

    async def process(envelope, span=None):
        seen.append(trace.get_current_span().get_span_context())

    with tracer.start_as_current_span("process essays") as consumer:
        await handle(json.dumps({"metadata": metadata}), process, **(
            {"tracer": tracer} if settings else {}))
    (inside,) = seen
    assert inside.trace_id == consumer.get_span_context().trace_id
    assert inside.span_id != consumer.get_span_context().span_id  # the handler's own span


@pytest.mark.parametrize(("source", "settings"), FORMS)
async def test_with_metadata_the_handler_continues_the_stored_trace(
        modules, span_exporter, source, settings):
    handle = _rewritten(source, **settings)["handle"]
    tracer = trace.get_tracer("test")
    seen = []

    async def process(envelope, span=None):
        seen.append(trace.get_current_span().get_span_context())

    await handle(json.dumps({"metadata": {"traceparent": STORED}}), process, **(
        {"tracer": tracer} if settings else {}))
    (inside,) = seen
    assert inside.trace_id == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    (handler,) = [span for span in span_exporter.get_finished_spans()
                  if span.context.span_id == inside.span_id]
    assert handler.parent.span_id == 0x00F067AA0BA902B7  # a child of the stored span itself
