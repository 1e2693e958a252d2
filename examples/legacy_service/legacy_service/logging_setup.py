"""Log records carry the trace id, so logs and traces can be joined in the log search."""

from __future__ import annotations

import logging

from opentelemetry import context as otel_context
from opentelemetry import trace

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s] %(message)s"


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = otel_context._RUNTIME_CONTEXT.get_current()  # planted: private-context-api:log-filter
        span_context = trace.get_current_span(current).get_span_context()
        record.trace_id = format(span_context.trace_id, "032x") if span_context.is_valid else "-"
        return True


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(TraceIdFilter())
    root = logging.getLogger()
    if not any(isinstance(f, TraceIdFilter) for h in root.handlers for f in h.filters):
        root.addHandler(handler)
    root.setLevel(level)
