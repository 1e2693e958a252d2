"""The kit's direct traceparent handling gives exactly what its ``PROPAGATOR`` gives.

The hot paths format and parse a canonical version-00 ``traceparent`` themselves instead of going
through the composite propagator; everything else falls back to the propagator. These tests hold
both paths to the propagator's own results over values on either side of that line.
"""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
CANONICAL = f"00-{TRACE_ID:032x}-{SPAN_ID:016x}-01"

TRACEPARENTS = {
    "canonical sampled": CANONICAL,
    "canonical unsampled": CANONICAL[:-2] + "00",
    "unknown flags": CANONICAL[:-2] + "ff",
    "future version": "01" + CANONICAL[2:],
    "future version with more fields": "cc" + CANONICAL[2:] + "-what-comes-next",
    "version ff": "ff" + CANONICAL[2:],
    "version 00 with an extra field": CANONICAL + "-extra",
    "upper-case hex": CANONICAL.upper(),
    "padded with blanks": f" \t{CANONICAL}\t ",
    "zero trace id": f"00-{0:032x}-{SPAN_ID:016x}-01",
    "zero span id": f"00-{TRACE_ID:032x}-{0:016x}-01",
    "too short": CANONICAL[:-1],
    "plus sign in an id": "00-+" + CANONICAL[4:],
    "garbage": "not-a-traceparent",
}
COMPANIONS = {
    "alone": {},
    "with tracestate": {"tracestate": "vendor=abc,other=1"},
    "with a correlation id": {"baggage": "correlation_id=corr-7"},
    "with other baggage": {"baggage": "tenant=t-1,correlation_id=corr-8"},
    "with an unbounded correlation id": {"baggage": "correlation_id=" + "x" * 300},
}


def _observed(ctx: Context) -> tuple:
    span_context = trace.get_current_span(ctx).get_span_context()
    return (
        span_context.trace_id, span_context.span_id, span_context.is_remote,
        int(span_context.trace_flags), span_context.trace_state.to_header(),
        dict(baggage.get_all(ctx)),
    )


def _carrier_params():
    for tp_name, traceparent in TRACEPARENTS.items():
        for companion_name, companion in COMPANIONS.items():
            yield pytest.param({"traceparent": traceparent, **companion},
                               id=f"{tp_name}, {companion_name}")


@pytest.mark.parametrize("carrier", list(_carrier_params()))
def test_header_extraction_matches_the_propagator(kit_package, carrier):
    expected = kit_package.tracing.PROPAGATOR.extract(carrier, Context())
    headers = [(key, value.encode()) for key, value in carrier.items()]
    assert _observed(kit_package.extract_context(headers=headers)) == _observed(expected)


@pytest.mark.parametrize("carrier", list(_carrier_params()))
def test_mapping_extraction_matches_the_propagator(kit_package, carrier):
    expected = kit_package.tracing.PROPAGATOR.extract(carrier, Context())
    assert _observed(kit_package.extract_trace_context(carrier)) == _observed(expected)


def test_the_fast_parser_takes_exactly_the_canonical_values(kit_package):
    """Otherwise the comparisons above could pass with every value on the propagator's path."""
    parse = kit_package.tracing.context_from_traceparent
    taken = {
        name for name, value in TRACEPARENTS.items()
        if parse(value) is not None and parse(value.encode()) is not None
    }
    assert taken == {"canonical sampled", "canonical unsampled", "unknown flags"}


def _context_params():
    sampled = SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    unsampled = SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(0))
    with_state = SpanContext(
        TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "abc"), ("other", "1")]),
    )
    for name, span_context in {
        "sampled": sampled, "unsampled": unsampled, "with tracestate": with_state,
    }.items():
        ctx = trace.set_span_in_context(NonRecordingSpan(span_context), Context())
        yield pytest.param(ctx, id=name)
        yield pytest.param(baggage.set_baggage("correlation_id", "a:b/c@d+e=f", ctx),
                           id=f"{name}, correlation id needing quoting")
        yield pytest.param(baggage.set_baggage("tenant", "t-1", ctx), id=f"{name}, other baggage")
    yield pytest.param(Context(), id="no span")
    yield pytest.param(baggage.set_baggage("correlation_id", "corr-1", Context()),
                       id="no span, correlation id")
    yield pytest.param(baggage.set_baggage("correlation_id", "has space", Context()),
                       id="no span, unbounded correlation id")


@pytest.mark.parametrize("ctx", list(_context_params()))
def test_injection_writes_what_the_propagator_writes(kit_package, ctx):
    expected: dict[str, str] = {}
    kit_package.tracing.PROPAGATOR.inject(expected, ctx)
    as_headers = [(key, value.encode()) for key, value in expected.items()]
    assert kit_package.inject_headers([("traceparent", b"stale")], context=ctx) == as_headers
    assert kit_package.inject_trace_context({"tracestate": "stale=1"}, ctx) == expected


def test_an_undecodable_baggage_header_keeps_the_parent_and_is_logged(kit_package, caplog):
    headers = [("traceparent", CANONICAL.encode()), ("baggage", b"correlation_id=\xff")]
    with caplog.at_level("DEBUG", logger="kitpkg.tracekit.kafka"):
        ctx = kit_package.extract_context(headers=headers)
    assert _observed(ctx)[:2] == (TRACE_ID, SPAN_ID)
    assert baggage.get_all(ctx) == {}
    assert ["baggage header is not UTF-8" in r.getMessage() for r in caplog.records] == [True]
