"""propagator-overlap: its key table matches OpenTelemetry, its reason holds, env files are read."""

from __future__ import annotations

from textwrap import dedent

import pytest
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from scaffold.checks import propagator_overlap
from scaffold.checks.propagator_overlap import PropagatorOverlap


@pytest.mark.parametrize(
    ("name", "propagator"),
    [("tracecontext", TraceContextTextMapPropagator()), ("baggage", W3CBaggagePropagator())],
)
def test_key_table_matches_the_installed_propagators_fields(name, propagator):
    assert propagator_overlap._KEYS_BY_NAME[name] == propagator.fields
    assert propagator_overlap._NAME_BY_CLASS[type(propagator).__name__] == name


def _parent_after_extracting_an_empty_carrier(propagators):
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("surrounding") as surrounding:
        extracted = CompositePropagator(propagators).extract({})
        parent = trace.get_current_span(extracted).get_span_context()
        return parent, surrounding.get_span_context()


def test_baggage_first_makes_a_carrier_without_traceparent_inherit_the_current_span():
    parent, surrounding = _parent_after_extracting_an_empty_carrier(
        [W3CBaggagePropagator(), TraceContextTextMapPropagator()]
    )
    assert parent == surrounding
    assert propagator_overlap.problems_in(["baggage", "tracecontext"])


def test_trace_context_first_starts_a_new_trace_for_a_carrier_without_traceparent():
    parent, _ = _parent_after_extracting_an_empty_carrier(
        [TraceContextTextMapPropagator(), W3CBaggagePropagator()]
    )
    assert not parent.is_valid
    assert propagator_overlap.problems_in(["tracecontext", "baggage"]) == []


@pytest.mark.parametrize(
    ("file_name", "text", "lines"),
    [
        (".env", "OTEL_SERVICE_NAME=x\nOTEL_PROPAGATORS=baggage,tracecontext\n", [2]),
        ("prod.env", "export OTEL_PROPAGATORS='tracecontext,tracecontext'  # twice\n", [1]),
        (".env", "OTEL_PROPAGATORS=tracecontext,baggage\n", []),
        (
            "docker-compose.yml",
            """
            services:
              app:
                environment:
                  - OTEL_PROPAGATORS=baggage,tracecontext
              worker:
                environment:
                  OTEL_PROPAGATORS: "tracecontext,baggage"
              other:
                environment:
                  OTEL_PROPAGATORS: "b3multi, b3multi"
            """,
            [4, 10],
        ),
    ],
    ids=["env-file-baggage-first", "named-env-file-duplicate", "env-file-correct", "compose"],
)
def test_env_and_compose_files_are_read(file_name, text, lines):
    assert PropagatorOverlap.reads_config_file(f"deploy/{file_name}")
    source = dedent(text).lstrip("\n")
    findings = PropagatorOverlap.check_config_file(f"deploy/{file_name}", source)
    assert [f.line for f in findings] == lines
    assert all(f.rule_id == "propagator-overlap" for f in findings)


def test_other_files_are_not_read():
    assert not PropagatorOverlap.reads_config_file("settings.yaml")
    assert not PropagatorOverlap.reads_config_file("app.py")


def test_a_propagator_listed_twice_is_named_once():
    assert propagator_overlap.problems_in(["tracecontext", "tracecontext"]) == [
        "`tracecontext` is listed twice"
    ]
