"""sampler-root: the env-file form, and the reason (a ratio sampler ignores its parent)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from scaffold.checks.sampler_root import SamplerRoot

# a sampled remote parent whose trace id's low 64 bits are above every ratio bound below 1
_PARENT = trace.NonRecordingSpan(
    trace.SpanContext(
        trace_id=0xFFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF_FFFF,
        span_id=0x1,
        is_remote=True,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
    )
)


def _child_is_sampled(sampler) -> bool:
    tracer = TracerProvider(sampler=sampler).get_tracer("test")
    with tracer.start_as_current_span("child", context=trace.set_span_in_context(_PARENT)) as span:
        return span.get_span_context().trace_flags.sampled


def test_a_bare_ratio_sampler_drops_the_child_of_a_sampled_parent():
    assert not _child_is_sampled(TraceIdRatioBased(0.5))


def test_parent_based_keeps_the_child_of_a_sampled_parent():
    assert _child_is_sampled(ParentBased(TraceIdRatioBased(0.5)))


def test_traceidratio_in_an_env_file_is_reported():
    text = "OTEL_TRACES_SAMPLER=traceidratio\nOTEL_TRACES_SAMPLER_ARG=0.1\n"
    findings = SamplerRoot.check_config_file("service.env", text)
    assert [(f.line, f.rule_id) for f in findings] == [(1, "sampler-root")]
    assert SamplerRoot.check_config_file(
        "service.env", "OTEL_TRACES_SAMPLER=parentbased_traceidratio\n"
    ) == []
