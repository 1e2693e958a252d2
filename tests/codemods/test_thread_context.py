"""thread-context, executed: spans started in the worker are children of the submitting span."""

from __future__ import annotations

import pytest

from tests.codemods.conftest import load_fixture

CASES = [
    "thread_target", "timer", "thread_subclass", "thread_subclass_given_target",
    "executor_submit_and_map", "run_in_executor", "annotated_dataclass_field",
    "annotated_constructor_pool", "annotated_parameters",
]


def _worker_spans(module, tracer, exporter):
    with tracer.start_as_current_span("submit") as submitting:
        module.run_in_thread(tracer)
    workers = [s for s in exporter.get_finished_spans() if s.name != "submit"]
    return submitting.get_span_context(), workers


def _all_children_of(parent, spans) -> bool:
    return bool(spans) and all(
        span.parent is not None
        and span.parent.span_id == parent.span_id
        and span.context.trace_id == parent.trace_id
        for span in spans
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.replace("_", " "))
def test_unrewritten_worker_spans_start_new_traces(case, tracer, exporter, isolated):
    """The control: without the rewrite the same assertion fails."""
    parent, workers = isolated(_worker_spans, load_fixture("thread-context", case, "before"),
                               tracer, exporter)
    assert workers and not _all_children_of(parent, workers)
    assert all(span.parent is None for span in workers)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.replace("_", " "))
def test_rewritten_worker_spans_are_children_of_the_submitting_span(
    case, tracer, exporter, isolated
):
    parent, workers = isolated(_worker_spans, load_fixture("thread-context", case, "after"),
                               tracer, exporter)
    assert _all_children_of(parent, workers), [(s.name, s.parent) for s in workers]
