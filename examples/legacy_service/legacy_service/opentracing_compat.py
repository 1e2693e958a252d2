"""What is left of the OpenTracing era: ``tracer.scope_manager.activate(span, finish_on_close)``
kept working on top of OpenTelemetry so old call sites did not have to change.

Modelled on the official OpenTracing shim, which enters ``trace.use_span`` on activation and
leaves it when the scope closes.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import TracebackType

from opentelemetry import trace


class Scope:
    def __init__(self, span: trace.Span, span_cm: AbstractContextManager[trace.Span]) -> None:
        self.span = span
        self._span_cm = span_cm

    def close(self) -> None:
        self._span_cm.__exit__(None, None, None)

    def __enter__(self) -> Scope:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._span_cm.__exit__(exc_type, exc, tb)


class ScopeManager:
    def activate(self, span: trace.Span, finish_on_close: bool) -> Scope:
        span_cm = trace.use_span(span, end_on_exit=finish_on_close)
        span_cm.__enter__()
        return Scope(span, span_cm)


class CompatTracer:
    """An OpenTelemetry tracer that also answers ``scope_manager``."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self.scope_manager = ScopeManager()

    def __getattr__(self, name: str) -> object:
        return getattr(self._tracer, name)
