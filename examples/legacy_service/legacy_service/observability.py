"""Tracing set-up, written against the OpenTelemetry API directly."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import set_global_textmap
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import __version__


def init_tracing(service_name: str) -> trace.Tracer:
    """Export spans to the collector over OTLP/gRPC and propagate W3C headers."""
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.namespace": "huleedu",
            "service.version": __version__,
            "deployment.environment": os.getenv("ENVIRONMENT", "development"),
        }
    )
    ratio = float(os.getenv("TRACE_SAMPLE_RATIO", "1.0"))
    provider = TracerProvider(resource=resource, sampler=TraceIdRatioBased(ratio))  # planted: sampler-root:init-tracing
    endpoint = os.getenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4317")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    set_global_textmap(CompositePropagator([W3CBaggagePropagator(), TraceContextTextMapPropagator()]))  # planted: propagator-overlap:init-tracing
    return trace.get_tracer(service_name)
