"""Run fixture code for real under an SDK tracer with an in-memory exporter."""

from __future__ import annotations

import contextvars
import sys
import types
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def load_fixture(codemod_id: str, case: str, version: str) -> types.ModuleType:
    """``before`` or ``after`` of a fixture case, executed as a fresh module."""
    path = FIXTURES / codemod_id / case / f"{version}.py"
    module = types.ModuleType(f"fixture_{case}_{version}")
    sys.modules[module.__name__] = module  # dataclasses look their module up while executing
    try:
        exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    finally:
        del sys.modules[module.__name__]
    return module


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter):
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("codemod-execution")
    provider.shutdown()


@pytest.fixture
def isolated():
    """Run a scenario in a copy of the context, so a leaking 'before' cannot leak into others."""
    return lambda scenario, *args: contextvars.copy_context().run(scenario, *args)
