"""What is left of the OpenTracing era: ``tracer.scope_manager.activate(span, finish_on_close)``
kept working on top of OpenTelemetry so old call sites did not have to change.
"""

from __future__ import annotations

from types import TracebackType

from opentelemetry import context, trace


class Scope:
    def __init__(self, span: trace.Span, token: object, finish_on_close: bool) -> None:
        self.span = span
        self._token = token
        self._finish_on_close = finish_on_close

    def close(self) -> None:
        context.detach(self._token)
        if self._finish_on_close:
            self.span.end()

    def __enter__(self) -> Scope:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ScopeManager:
    def activate(self, span: trace.Span, finish_on_close: bool) -> Scope:
        token = context.attach(trace.set_span_in_context(span))
        return Scope(span, token, finish_on_close)


class CompatTracer:
    """An OpenTelemetry tracer that also answers ``scope_manager``."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self.scope_manager = ScopeManager()

    def __getattr__(self, name: str) -> object:
        return getattr(self._tracer, name)
