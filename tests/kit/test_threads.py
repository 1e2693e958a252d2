"""Context reaches every kind of thread work; plain threading loses it (the controls)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext


def _current() -> SpanContext:
    return trace.get_current_span().get_span_context()


def _thread_target(kit, traced: bool, work) -> None:
    thread_type = kit.TracedThread if traced else threading.Thread
    thread = thread_type(target=work)
    thread.start()
    thread.join()


def _thread_subclass_overriding_run(kit, traced: bool, work) -> None:
    class Worker(kit.TracedThread if traced else threading.Thread):
        def run(self) -> None:
            work()

    worker = Worker()
    worker.start()
    worker.join()


def _timer(kit, traced: bool, work) -> None:
    timer = (kit.TracedTimer if traced else threading.Timer)(0, work)
    timer.start()
    timer.join()


def _with_context(kit, traced: bool, work) -> None:
    thread = threading.Thread(target=kit.with_context(work) if traced else work)
    thread.start()
    thread.join()


def _executor_submit(kit, traced: bool, work) -> None:
    with ThreadPoolExecutor(max_workers=2) as executor:
        future = kit.submit(executor, work) if traced else executor.submit(work)
        future.result()


def _executor_map(kit, traced: bool, work) -> None:
    def call(_item: int) -> None:
        work()

    with ThreadPoolExecutor(max_workers=2) as executor:
        if traced:
            list(kit.executor_map(executor, call, range(3)))
        else:
            list(executor.map(call, range(3)))


def _traced_pool_submit(kit, traced: bool, work) -> None:
    pool_type = kit.TracedThreadPoolExecutor if traced else ThreadPoolExecutor
    with pool_type(max_workers=2) as executor:
        executor.submit(work).result()


def _traced_pool_map(kit, traced: bool, work) -> None:
    pool_type = kit.TracedThreadPoolExecutor if traced else ThreadPoolExecutor
    with pool_type(max_workers=2) as executor:
        list(executor.map(lambda _item: work(), range(3)))


def _run_in_executor(kit, traced: bool, work) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as executor:
            if traced:
                await kit.run_in_executor(None, executor, work)
            else:
                await loop.run_in_executor(executor, work)

    # A fresh loop in a copy of this context: asyncio carries the span into main() by itself.
    contextvars.copy_context().run(asyncio.run, main())


KINDS = {
    "Thread target": _thread_target,
    "Thread subclass overriding run": _thread_subclass_overriding_run,
    "Timer": _timer,
    "with_context wrapper": _with_context,
    "executor submit": _executor_submit,
    "executor map": _executor_map,
    "TracedThreadPoolExecutor submit": _traced_pool_submit,
    "TracedThreadPoolExecutor map": _traced_pool_map,
    "loop.run_in_executor": _run_in_executor,
}


@pytest.mark.parametrize("traced", [True, False], ids=["kit", "control: plain threading"])
@pytest.mark.parametrize("kind", KINDS.values(), ids=KINDS.keys())
def test_the_submitting_span_is_current_in_the_worker(kit_package, span_exporter, kind, traced):
    seen: list[SpanContext] = []
    lock = threading.Lock()

    def work() -> None:
        with lock:
            seen.append(_current())

    with kit_package.get_tracer().start_as_current_span("submit") as span:
        kind(kit_package, traced, work)
    assert seen
    expected = span.get_span_context()
    assert all(context == expected for context in seen) is traced, seen
    if not traced:
        assert all(context == INVALID_SPAN_CONTEXT for context in seen)


def test_a_thread_takes_the_context_of_start_not_of_construction(kit_package, span_exporter):
    seen: list[SpanContext] = []
    thread = kit_package.TracedThread(target=lambda: seen.append(_current()))
    with kit_package.get_tracer().start_as_current_span("start here") as span:
        thread.start()
    thread.join()
    assert seen == [span.get_span_context()]


def test_spans_started_in_the_worker_are_children_of_the_submitter(kit_package, span_exporter):
    tracer = kit_package.get_tracer()

    def work() -> None:
        with tracer.start_as_current_span("in thread"):
            pass

    with tracer.start_as_current_span("request"), ThreadPoolExecutor(1) as executor:
        kit_package.submit(executor, work).result()
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert spans["in thread"].parent.span_id == spans["request"].context.span_id


_marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="clean")


@pytest.mark.parametrize("traced", [True, False], ids=["kit", "control: plain pool"])
def test_each_submission_runs_in_its_own_copy(kit_package, traced):
    """What one task leaves in its context never reaches the next task on the same thread."""
    pool_type = kit_package.TracedThreadPoolExecutor if traced else ThreadPoolExecutor
    with pool_type(max_workers=1) as executor:
        executor.submit(_marker.set, "left by the first task").result()
        second = executor.submit(_marker.get).result()
    assert (second == "clean") is traced


def test_one_wrapped_function_can_run_in_many_threads_at_once(kit_package, span_exporter):
    """A shared Context cannot be entered twice concurrently; every call gets its own copy."""
    barrier = threading.Barrier(4)
    seen: list[SpanContext] = []

    def work() -> None:
        barrier.wait()
        seen.append(_current())

    with kit_package.get_tracer().start_as_current_span("fan out") as span:
        wrapped = kit_package.with_context(work)
    threads = [threading.Thread(target=wrapped) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == [span.get_span_context()] * 4
