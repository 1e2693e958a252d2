"""The test support the kit ships: span trees, the leak guard (also as a pytest plugin), servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from opentelemetry import context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags


def test_the_span_tree_shows_nesting_kinds_status_and_ids(kit_package, span_exporter):
    tracer = kit_package.get_tracer()
    remote = SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(1))
    with tracer.start_as_current_span("request") as request:
        with tracer.start_as_current_span("send", kind=trace.SpanKind.PRODUCER):
            pass
        with pytest.raises(KeyError), tracer.start_as_current_span("fails"):
            raise KeyError
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span("continued", context=parent):
        pass

    rendered = kit_package.testing.render_span_tree(span_exporter.get_finished_spans())
    trace_id = format(request.get_span_context().trace_id, "032x")
    lines = rendered.splitlines()
    assert lines[0].startswith(f"request [INTERNAL] UNSET trace={trace_id} span=")
    assert lines[0].endswith(" root")
    assert lines[1].startswith("  send [PRODUCER] UNSET")
    assert lines[2].startswith("  fails [INTERNAL] ERROR")
    assert lines[3].startswith("continued [INTERNAL] UNSET trace=" + "0" * 30 + "ab")
    assert lines[3].endswith("parent=00000000000000cd (not in this list)")
    assert kit_package.testing.render_span_tree([]) == "(no spans)"


def test_no_context_leak_passes_balanced_blocks(kit_package):
    with kit_package.testing.no_context_leak():
        with kit_package.get_tracer().start_as_current_span("balanced"):
            pass


def test_no_context_leak_fails_a_block_that_leaves_a_span_current(kit_package, span_exporter):
    before = context.get_current()
    with pytest.raises(AssertionError, match="left a context attached .*leaky"):
        with kit_package.testing.no_context_leak():
            span = kit_package.get_tracer().start_span("leaky")
            context.attach(trace.set_span_in_context(span))
    assert context.get_current() is before  # restored for whatever runs next


def test_out_of_order_detach_is_silent_but_the_guard_catches_it(kit_package, caplog):
    """The OpenTelemetry fact behind the kit: wrong-order detach raises and logs nothing."""
    first = trace.set_span_in_context(NonRecordingSpan(SpanContext(1, 1, False)))
    second = trace.set_span_in_context(NonRecordingSpan(SpanContext(2, 2, False)))
    with pytest.raises(AssertionError, match="left a context attached"):
        with kit_package.testing.no_context_leak():
            token_first = context.attach(first)
            token_second = context.attach(second)
            context.detach(token_first)  # wrong order: no exception
            context.detach(token_second)
            assert context.get_current() is first  # stale context silently current
    assert not [r for r in caplog.records if "detach" in r.getMessage()]


def test_the_test_exporter_is_installed_once(kit_package, span_exporter):
    provider = trace.get_tracer_provider()
    processors = list(provider._active_span_processor._span_processors)
    assert kit_package.testing.install_test_exporter() is span_exporter
    assert list(provider._active_span_processor._span_processors) == processors


_PLUGIN_TESTS = '''
import asyncio
from opentelemetry import context, trace
import kitpkg.tracekit as kit

def test_sync_clean(context_leak_guard, span_exporter):
    with kit.get_tracer().start_as_current_span("ok"):
        pass
    assert [s.name for s in span_exporter.get_finished_spans()] == ["ok"]

def test_sync_leak(context_leak_guard):
    context.attach(trace.set_span_in_context(kit.get_tracer().start_span("sync-leak")))

async def test_async_clean(context_leak_guard):
    with kit.get_tracer().start_as_current_span("ok"):
        await asyncio.sleep(0)

async def test_async_leak(context_leak_guard):
    await asyncio.sleep(0)
    context.attach(trace.set_span_in_context(kit.get_tracer().start_span("async-leak")))

def test_runs_after_a_leak_in_a_clean_context(span_exporter):
    assert not trace.get_current_span().get_span_context().is_valid
'''


def test_the_pytest_plugin_fails_leaking_sync_and_async_tests(kit_root, tmp_path: Path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["kitpkg.tracekit.testing"]\n')
    (tmp_path / "test_plugin.py").write_text(textwrap.dedent(_PLUGIN_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env["PYTHONPATH"] = str(kit_root)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "test_plugin.py"],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )
    outcomes = {
        line.split("::")[1].split()[0]: line.split()[0]
        for line in result.stdout.splitlines()
        if line.startswith(("PASSED", "FAILED", "ERROR"))
    }
    assert outcomes == {
        "test_sync_clean": "PASSED",
        "test_sync_leak": "FAILED",
        "test_async_clean": "PASSED",
        "test_async_leak": "FAILED",
        "test_runs_after_a_leak_in_a_clean_context": "PASSED",
    }, result.stdout + result.stderr
    assert "test test_sync_leak left a context attached (current span: sync-leak" in result.stdout
    assert "test test_async_leak left a context attached (current span: async-leak" in (
        result.stdout
    )


def _accepts(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
def test_tansu_broker_listens_on_loopback_and_is_gone_after_exit(kit_package):
    with kit_package.testing.tansu_broker() as bootstrap:
        assert bootstrap.startswith("127.0.0.1:")
        assert _accepts(bootstrap)
    assert not _accepts(bootstrap)


@pytest.mark.slow
def test_redis_server_answers_and_is_gone_after_exit(kit_package):
    with kit_package.testing.redis_server() as url:
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
    address = url.removeprefix("redis://").removesuffix("/0")
    assert not _accepts(address)


def test_the_test_exporter_needs_no_baggage_processor(run_with_kit):
    """A repo whose own library sets up tracing may lack opentelemetry-processor-baggage; its
    generated tests still get spans, only without the correlation_id copy."""
    report = run_with_kit("""
        import json, sys
        sys.modules["opentelemetry.processor.baggage"] = None  # as if not installed
        from kitpkg.tracekit import correlation_context, get_tracer
        from kitpkg.tracekit.testing import install_test_exporter
        exporter = install_test_exporter()
        with correlation_context("c-1"), get_tracer().start_as_current_span("work"):
            pass
        spans = exporter.get_finished_spans()
        print(json.dumps({"names": [s.name for s in spans],
                          "attributes": [dict(s.attributes or {}) for s in spans]}))
    """)
    assert report == {"names": ["work"], "attributes": [{}]}


def test_with_the_baggage_processor_the_test_exporter_copies_the_correlation_id(run_with_kit):
    report = run_with_kit("""
        import json
        from kitpkg.tracekit import correlation_context, get_tracer
        from kitpkg.tracekit.testing import install_test_exporter
        exporter = install_test_exporter()
        with correlation_context("c-1"), get_tracer().start_as_current_span("work"):
            pass
        print(json.dumps([dict(s.attributes or {}) for s in exporter.get_finished_spans()]))
    """)
    assert report == [{"correlation_id": "c-1"}]
