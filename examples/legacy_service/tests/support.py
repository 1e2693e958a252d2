"""Helpers shared by the tests."""

from __future__ import annotations

import json

from aiokafka import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from legacy_service.events import EventEnvelope


def traceparent_of(span: trace.Span) -> dict[str, str]:
    """A W3C carrier naming ``span`` as the parent."""
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def parse_traceparent(value: str) -> tuple[int, int]:
    """(trace id, parent span id) of a ``traceparent`` value."""
    _version, trace_id, span_id, _flags = value.split("-")
    return int(trace_id, 16), int(span_id, 16)


def record_of(envelope: EventEnvelope, topic: str, offset: int = 0) -> ConsumerRecord:
    """The record a consumer would hand over for ``envelope``."""
    value = envelope.model_dump_json().encode()
    return ConsumerRecord(
        topic=topic,
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=len(value),
        headers=(),
    )


def outbox_entries(raw_entries: list[str]) -> list[tuple[str, EventEnvelope]]:
    return [
        (entry["topic"], EventEnvelope.model_validate_json(entry["envelope"]))
        for entry in map(json.loads, raw_entries)
    ]
