"""Tracing setup: idempotent init, sampler, propagators, correlation id, OTLP export."""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

# -- init_tracing: every case in its own interpreter (the global provider is set once) -------

_PROVIDER_STATE = """
    import json
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from kitpkg.tracekit import tracing

    def processors():
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            return None
        return [type(p).__name__ for p in provider._active_span_processor._span_processors]

    def sampler():
        provider = trace.get_tracer_provider()
        return provider.sampler.get_description() if isinstance(provider, TracerProvider) else None
"""


def test_init_tracing_twice_returns_the_same_tracer_and_adds_no_processor(run_with_kit):
    report = run_with_kit(
        _PROVIDER_STATE + """
    exporter = InMemorySpanExporter()
    first = tracing.init_tracing(
        "grading", service_version="1.4.0", service_namespace="huleedu", environment="staging",
        exporter=exporter,
    )
    after_first = processors()
    provider = trace.get_tracer_provider()
    second = tracing.init_tracing("grading", exporter=InMemorySpanExporter())
    with second.start_as_current_span("work"):
        pass
    tracing.shutdown_tracing()
    print(json.dumps({
        "same_tracer": first is second,
        "same_provider": provider is trace.get_tracer_provider(),
        "after_first": after_first,
        "after_second": processors(),
        "resource": dict(provider.resource.attributes),
        "exported": [s.name for s in exporter.get_finished_spans()],
        "textmap_is_kit": propagate.get_global_textmap() is tracing.PROPAGATOR,
    }))
    """
    )
    assert report["same_tracer"] and report["same_provider"]
    assert report["after_first"] == ["BaggageSpanProcessor", "BatchSpanProcessor"]
    assert report["after_second"] == report["after_first"]
    assert report["exported"] == ["work"]
    assert report["textmap_is_kit"]
    resource = report["resource"]
    assert resource["service.name"] == "grading"
    assert resource["service.version"] == "1.4.0"
    assert resource["service.namespace"] == "huleedu"
    assert resource["deployment.environment"] == "staging"
    assert resource["deployment.environment.name"] == "staging"


def test_sdk_disabled_makes_init_a_no_op(run_with_kit):
    report = run_with_kit(
        _PROVIDER_STATE + """
    tracer = tracing.init_tracing("grading", exporter=InMemorySpanExporter())
    with tracer.start_as_current_span("work") as span:
        recording = span.is_recording()
    print(json.dumps({
        "processors": processors(),
        "recording": recording,
        "textmap_is_kit": propagate.get_global_textmap() is tracing.PROPAGATOR,
    }))
    """,
        env={"OTEL_SDK_DISABLED": "true"},
    )
    assert report == {"processors": None, "recording": False, "textmap_is_kit": False}


def test_an_sdk_provider_installed_before_init_is_adopted_unchanged(run_with_kit):
    report = run_with_kit(
        _PROVIDER_STATE + """
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = tracing.init_tracing("grading", exporter=InMemorySpanExporter())
    with tracer.start_as_current_span("work"):
        pass
    print(json.dumps({
        "processors": processors(),
        "exported": [s.name for s in exporter.get_finished_spans()],
    }))
    """
    )
    assert report == {"processors": ["SimpleSpanProcessor"], "exported": ["work"]}


@pytest.mark.parametrize(
    ("env", "code_ratio", "expected"),
    [
        ({}, None, "ParentBased{root:TraceIdRatioBased{1.0}"),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.25"}, None, "ParentBased{root:TraceIdRatioBased{0.25}"),
        ({"OTEL_TRACES_SAMPLER_ARG": "0.25"}, 0.1, "ParentBased{root:TraceIdRatioBased{0.1}"),
        ({"OTEL_TRACES_SAMPLER_ARG": "lots"}, None, "ParentBased{root:TraceIdRatioBased{1.0}"),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, None, "AlwaysOffSampler"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
            None,
            "TraceIdRatioBased{0.5}",
        ),
    ],
    ids=[
        "ratio defaults to one",
        "ratio from OTEL_TRACES_SAMPLER_ARG",
        "explicit ratio wins over env",
        "unparsable ratio falls back to one",
        "OTEL_TRACES_SAMPLER honoured",
        "standard sampler with its arg",
    ],
)
def test_sampler_comes_from_code_or_standard_env(run_with_kit, env, code_ratio, expected):
    report = run_with_kit(
        _PROVIDER_STATE + f"""
    tracing.init_tracing("grading", sampler_ratio={code_ratio!r}, exporter=InMemorySpanExporter())
    print(json.dumps({{"sampler": sampler()}}))
    """,
        env=env,
    )
    assert report["sampler"].startswith(expected), report["sampler"]


def test_shutdown_tracing_flushes_spans_the_batch_processor_still_holds(run_with_kit):
    report = run_with_kit(
        _PROVIDER_STATE + """
    exporter = InMemorySpanExporter()
    tracer = tracing.init_tracing("grading", exporter=exporter)
    for name in ("a", "b", "c"):
        with tracer.start_as_current_span(name):
            pass
    before = len(exporter.get_finished_spans())
    tracing.shutdown_tracing()
    print(json.dumps({"before": before, "after": len(exporter.get_finished_spans())}))
    """,
        # The batch processor would otherwise export on its own schedule.
        env={"OTEL_BSP_SCHEDULE_DELAY": "600000"},
    )
    assert report == {"before": 0, "after": 3}


@pytest.mark.parametrize(
    ("protocol", "module"),
    [
        (None, "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"),
        ("grpc", "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"),
        ("http/protobuf", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
    ],
    ids=["grpc by default", "grpc asked", "http/protobuf asked"],
)
def test_otlp_exporter_follows_the_protocol_variable(kit_package, monkeypatch, protocol, module):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    if protocol is None:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    exporter = kit_package.tracing.build_otlp_exporter()
    try:
        assert type(exporter).__module__ == module
    finally:
        exporter.shutdown()


def test_an_unknown_otlp_protocol_is_refused_with_the_variable_named(kit_package, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        kit_package.tracing.build_otlp_exporter()


@pytest.mark.slow
def test_spans_reach_a_real_otlp_receiver_over_http_protobuf(run_with_kit, kit_package):
    """init_tracing's exporter, configured only by standard env vars, delivers to a receiver."""
    from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

    port = kit_package.testing._free_port()

    async def scenario() -> tuple[dict, object]:
        settings = OtelTapHttpProtobufReceiverSettings(http_port=port)
        async with OtelTapHttpProtobufReceiver(settings) as receiver:
            # The receiver only notifies awaiters registered before the span arrives.
            waiting = asyncio.ensure_future(
                receiver.await_trace(lambda s: s.name == "otlp-probe", timeout=60)
            )
            await asyncio.sleep(0)
            report = await asyncio.to_thread(
                run_with_kit,
                _PROVIDER_STATE + """
    tracer = tracing.init_tracing("grading")
    with tracer.start_as_current_span("otlp-probe") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    tracing.shutdown_tracing()
    print(json.dumps({"trace_id": trace_id}))
    """,
                {
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                },
            )
            return report, await waiting

    report, received = asyncio.run(scenario())
    assert received.trace_id.hex() == report["trace_id"]


# -- sampler decisions ----------------------------------------------------------------------


def _decide(sampler, trace_id: int, parent: context.Context | None = None) -> Decision:
    return sampler.should_sample(parent, trace_id, "op").decision


def test_the_same_trace_id_always_gets_the_same_decision(kit_package):
    sampler = kit_package.tracing.build_sampler(0.5)
    rng = random.Random(7)
    for _ in range(200):
        trace_id = rng.getrandbits(128)
        decisions = {_decide(sampler, trace_id) for _ in range(5)}
        assert len(decisions) == 1


def test_the_decision_depends_only_on_the_low_64_bits(kit_package):
    sampler = kit_package.tracing.build_sampler(0.5)
    rng = random.Random(11)
    decisions = []
    for _ in range(200):
        low = rng.getrandbits(64)
        first = _decide(sampler, (rng.getrandbits(64) << 64) | low)
        second = _decide(sampler, (rng.getrandbits(64) << 64) | low)
        assert first == second
        decisions.append(first)
    # Both outcomes occurred, so the equality above compared real decisions.
    assert set(decisions) == {Decision.RECORD_AND_SAMPLE, Decision.DROP}


def _parent(sampled: bool) -> context.Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    span_context = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(span_context), context.Context())


def test_a_sampled_parent_forces_sampling_and_an_unsampled_one_forbids_it(kit_package):
    never = kit_package.tracing.build_sampler(0.0)
    always = kit_package.tracing.build_sampler(1.0)
    assert _decide(never, 0x1234, _parent(sampled=True)) == Decision.RECORD_AND_SAMPLE
    assert _decide(always, 0x1234, _parent(sampled=False)) == Decision.DROP
    assert _decide(never, 0x1234) == Decision.DROP  # control: without a parent the ratio rules


def test_a_ratio_outside_zero_to_one_is_refused(kit_package):
    with pytest.raises(ValueError, match="ratio"):
        kit_package.tracing.build_sampler(1.5)


# -- propagators and correlation id ---------------------------------------------------------


def test_the_propagator_set_is_trace_context_then_correlation_baggage(kit_package):
    propagator = kit_package.tracing.PROPAGATOR
    names = [type(p).__name__ for p in propagator._propagators]
    assert names == ["TraceContextTextMapPropagator", "CorrelationIdPropagator"]
    assert set(propagator.fields) == {"traceparent", "tracestate", "baggage"}


def test_only_the_correlation_id_leaves_the_process_as_baggage(kit_package, span_exporter):
    tracing = kit_package.tracing
    ctx = baggage.set_baggage("user_email", "someone@example.com")
    ctx = baggage.set_baggage(tracing.CORRELATION_ID_KEY, "corr-1", ctx)
    tracer = tracing.get_tracer()
    with kit_package.attached(ctx), tracer.start_as_current_span("op"):
        carrier: dict[str, str] = {}
        tracing.PROPAGATOR.inject(carrier)
    assert carrier["baggage"] == "correlation_id=corr-1"
    assert carrier["traceparent"].startswith("00-")


def test_extraction_keeps_the_correlation_id_and_drops_other_or_unbounded_baggage(kit_package):
    tracing = kit_package.tracing
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    extracted = tracing.PROPAGATOR.extract(
        {"traceparent": traceparent, "baggage": "correlation_id=abc-123,tenant=huge-value"}
    )
    assert baggage.get_all(extracted) == {"correlation_id": "abc-123"}
    assert trace.get_current_span(extracted).get_span_context().trace_id == int(
        "0af7651916cd43dd8448eb211c80319c", 16
    )
    unbounded = tracing.PROPAGATOR.extract({"baggage": "correlation_id=" + "x" * 500})
    assert baggage.get_all(unbounded) == {}


def test_every_span_carries_the_correlation_id_and_no_other_baggage(kit_package, span_exporter):
    tracing = kit_package.tracing
    tracer = tracing.get_tracer()
    token = context.attach(baggage.set_baggage("tenant", "t-9"))
    try:
        with tracing.correlation_context("req-42"):
            with tracer.start_as_current_span("outer"):
                with tracer.start_as_current_span("inner"):
                    assert tracing.get_correlation_id() == "req-42"
        with tracer.start_as_current_span("outside"):
            pass
    finally:
        context.detach(token)
    attributes = {span.name: dict(span.attributes) for span in span_exporter.get_finished_spans()}
    assert attributes["outer"] == {"correlation_id": "req-42"}
    assert attributes["inner"] == {"correlation_id": "req-42"}
    assert attributes["outside"] == {}
    assert tracing.get_correlation_id() is None


@pytest.mark.parametrize(
    "value", ["", "has space", "x" * 129, "semi;colon", "new\nline"],
    ids=["empty", "whitespace", "too long", "separator", "newline"],
)
def test_correlation_context_refuses_values_unfit_for_baggage(kit_package, value):
    with pytest.raises(ValueError, match="correlation id"):
        with kit_package.tracing.correlation_context(value):
            pass


def test_log_records_get_correlation_and_trace_ids(kit_package, span_exporter, caplog):
    tracing = kit_package.tracing
    logger = logging.getLogger("kit-test-logger")
    logger.addFilter(tracing.CorrelationIdFilter())
    try:
        with caplog.at_level(logging.INFO, logger="kit-test-logger"):
            logger.info("outside")
            with tracing.correlation_context("req-7"):
                with tracing.get_tracer().start_as_current_span("op") as span:
                    logger.info("inside")
    finally:
        logger.filters.clear()
    outside, inside = caplog.records
    assert (outside.correlation_id, outside.trace_id) == ("-", "-")
    assert inside.correlation_id == "req-7"
    assert inside.trace_id == format(span.get_span_context().trace_id, "032x")
    assert inside.span_id == format(span.get_span_context().span_id, "016x")


def test_importing_the_kit_does_not_need_pytest(kit_root):
    code = (
        "import sys; sys.modules['pytest'] = None; sys.modules['_pytest'] = None\n"
        "import kitpkg.tracekit, kitpkg.tracekit.testing as t\n"
        "assert t.pytest is None and callable(t.render_span_tree)\n"
    )
    env = {"PYTHONPATH": str(kit_root)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
