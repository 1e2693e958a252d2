"""The tracing kit's public names, as the rules, test generation and mutation testing spell them.

The kit (``templates/kit``) is rendered into a service as ``<package>.tracekit``; codemods write
calls to these names, ``scaffold.testgen`` finds sites by them and ``scaffold.mutation`` reverts
them. ``tests/kit/test_api_names.py`` checks that the rendered kit exports every one of them.
Plain constants, no imports: every layer may read them.
"""

from __future__ import annotations

KIT_PACKAGE = "tracekit"  # the kit's package name, the last part of its import path

# the kit's modules that rewrites import by name
THREADS_MODULE = "threads"

# envelope: trace context carried in a message's metadata
INJECT_TRACE_CONTEXT = "inject_trace_context"
INJECT_METADATA = "inject_metadata"
EXTRACT_TRACE_CONTEXT = "extract_trace_context"
USE_TRACE_CONTEXT = "use_trace_context"
RESTORE_SPAN = "restore_span"
TRACE_OPERATION = "trace_operation"

# kafka: produce and consume with the context in the record headers
TRACED_SEND = "traced_send"
TRACED_PUBLISH = "traced_publish"
TRACED_PRODUCER = "TracedProducer"
INJECT_HEADERS = "inject_headers"
CONSUME_SPAN = "consume_span"
CONSUME_BATCH = "consume_batch"

# threads: the context carried into threads and executors
TRACED_THREAD = "TracedThread"
TRACED_TIMER = "TracedTimer"
SUBMIT = "submit"
EXECUTOR_MAP = "executor_map"
RUN_IN_EXECUTOR = "run_in_executor"
WITH_CONTEXT = "with_context"

# tokens: attach/detach and queues
ATTACHED = "attached"
CAPTURE_FOR_QUEUE = "capture_for_queue"
RESTORE_FROM_QUEUE = "restore_from_queue"

# tracing: set-up
INIT_TRACING = "init_tracing"

# every public name above (the package's own name and module names aside)
NAMES = frozenset({
    INJECT_TRACE_CONTEXT, INJECT_METADATA, EXTRACT_TRACE_CONTEXT, USE_TRACE_CONTEXT, RESTORE_SPAN,
    TRACE_OPERATION, TRACED_SEND, TRACED_PUBLISH, TRACED_PRODUCER, INJECT_HEADERS, CONSUME_SPAN,
    CONSUME_BATCH, TRACED_THREAD, TRACED_TIMER, SUBMIT, EXECUTOR_MAP, RUN_IN_EXECUTOR,
    WITH_CONTEXT, ATTACHED, CAPTURE_FOR_QUEUE, RESTORE_FROM_QUEUE, INIT_TRACING,
})
MODULES = frozenset({THREADS_MODULE})
