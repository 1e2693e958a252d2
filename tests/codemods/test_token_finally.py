"""token-finally, executed: after a handler raises, the context it attached is gone again."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import context, trace

from tests.codemods.conftest import load_fixture


def _next_span_after_failing_handler(module, tracer, exporter):
    """Attach a request context, let the handler raise, then start the next unit of work."""
    before = context.get_current()
    request = tracer.start_span("request")
    with pytest.raises(RuntimeError):
        module.handle(trace.set_span_in_context(request), fail=True)
    restored = context.get_current() == before
    with tracer.start_as_current_span("next message"):
        pass
    request.end()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    return restored, spans["request"], spans["next message"]


@pytest.mark.parametrize("version", ["before", "after"])
def test_context_is_restored_after_an_exception(version, tracer, exporter, isolated):
    module = load_fixture("token-finally", "exception_restores_context", version)
    restored, request, following = isolated(
        _next_span_after_failing_handler, module, tracer, exporter
    )
    leaked = following.parent is not None and following.parent.span_id == request.context.span_id
    if version == "before":  # the control: the unrewritten handler leaks its context
        assert not restored
        assert leaked and following.context.trace_id == request.context.trace_id
    else:
        assert restored
        assert following.parent is None and not leaked
        assert following.context.trace_id != request.context.trace_id


@pytest.mark.parametrize("version", ["before", "after"])
def test_the_success_path_is_unchanged(version, tracer, exporter, isolated):
    module = load_fixture("token-finally", "exception_restores_context", version)

    def scenario():
        before = context.get_current()
        request = tracer.start_span("request")
        module.handle(trace.set_span_in_context(request), fail=False)
        request.end()
        return context.get_current() == before

    assert isolated(scenario)


@pytest.mark.parametrize("version", ["before", "after"])
def test_out_of_order_detaches_leave_no_stale_context(version, tracer, isolated):
    """detach(parent) before detach(baggage) silently leaves the baggage context current."""
    module = load_fixture("token-finally", "detached_out_of_order", version)
    module.work = lambda item: None

    def scenario():
        before = context.get_current()
        parent = trace.set_span_in_context(tracer.start_span("parent"))
        module.restore(parent, context.set_value("correlation_id", "c-1", parent), "item")
        return context.get_current() == before

    assert isolated(scenario) is (version == "after")


@pytest.mark.parametrize("manager", ["KeptToken", "StackedTokens", "AsyncScope"])
def test_enter_exit_pairs_left_alone_restore_the_context_after_an_exception(
    manager, tracer, isolated
):
    """Why token-finally leaves __enter__/__exit__ pairs alone: the with statement detaches."""
    module = load_fixture("token-finally", "context_manager_forms", "before")
    span = tracer.start_span("request")
    ctx = trace.set_span_in_context(span)
    arguments = {"KeptToken": span, "StackedTokens": ctx, "AsyncScope": ctx}

    async def enter_async_and_fail():
        async with module.AsyncScope(ctx):
            assert trace.get_current_span() is span
            raise RuntimeError("handler failed")

    def scenario():
        before = context.get_current()
        with pytest.raises(RuntimeError):
            with getattr(module, manager)(arguments[manager]):
                assert trace.get_current_span() is span
                raise RuntimeError("handler failed")
        return context.get_current() == before

    async def async_scenario():  # inside the task: asyncio.run copies the caller's context
        before = context.get_current()
        with pytest.raises(RuntimeError):
            await enter_async_and_fail()
        return context.get_current() == before

    if manager == "AsyncScope":
        assert isolated(asyncio.run, async_scenario())
    else:
        assert isolated(scenario)


def test_an_attach_outside_enter_leaks_when_the_work_after_it_fails(tracer, isolated):
    """The control: the reported start()/__exit__ pair leaves the context attached."""
    module = load_fixture("token-finally", "context_manager_forms", "before")
    span = tracer.start_span("request")

    def scenario():
        before = context.get_current()
        scope = module.StartedElsewhere()
        with pytest.raises(RuntimeError):
            scope.start(trace.set_span_in_context(span))
            raise RuntimeError("failed before anyone called __exit__")
        return context.get_current() == before

    assert not isolated(scenario)
