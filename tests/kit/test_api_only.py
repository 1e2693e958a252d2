"""The kit modules that rewritten library code imports need ``opentelemetry-api`` alone.

Retrofit rewrites library code to call ``threads``, ``tokens``, ``envelope`` and ``kafka``; a
library declares at most the API, so importing and using those modules must not pull in the
SDK, the exporters, the semantic conventions or the baggage processor (only ``init_tracing``
does). Proved in fresh venvs holding nothing but the API: at the kit's pinned version, and at
the floor retrofit declares.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from scaffold.dependencies import API_FLOOR, SETUP_FLOORS, floors_for, kit_requirements

pytestmark = pytest.mark.slow

API = "opentelemetry-api"


def _api_pin() -> str:
    return next(spec for spec in kit_requirements() if spec.startswith(f"{API}=="))


# The version the kit is tested with, and the floor retrofit declares in a repo that lacks the
# API (scaffold.dependencies.API_FLOOR): the kit's library modules must work on both.
@pytest.fixture(scope="session", params=[_api_pin(), f"{API}=={API_FLOOR}"],
                ids=["pinned api", "floor api"])
def api_only_python(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a new venv where ``pip install opentelemetry-api==<version>`` is all."""
    folder = tmp_path_factory.mktemp("api-only-venv")
    venv.EnvBuilder(with_pip=True, symlinks=sys.platform != "win32").create(folder)
    python = folder / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         request.param],
        capture_output=True, text=True, timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    version = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({API!r}))"],
        capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    assert version == request.param.partition("==")[2]
    return python


def _run(python: Path, kit_root: Path, code: str) -> dict:
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(code)],
        capture_output=True, text=True, cwd=kit_root, timeout=120,
        env={"PYTHONPATH": str(kit_root), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_venv_has_the_api_and_not_the_sdk(api_only_python, kit_root):
    result = _run(api_only_python, kit_root, """
        import importlib.util, json
        print(json.dumps({
            "api": importlib.util.find_spec("opentelemetry.trace") is not None,
            "sdk": importlib.util.find_spec("opentelemetry.sdk") is not None,
        }))
    """)
    assert result == {"api": True, "sdk": False}


def test_library_modules_import_and_work_with_the_api_alone(api_only_python, kit_root):
    result = _run(api_only_python, kit_root, """
        import asyncio, json, sys
        from kitpkg.tracekit.threads import TracedThread, submit, TracedThreadPoolExecutor
        from kitpkg.tracekit.tokens import attached, capture_for_queue, restore_from_queue
        from kitpkg.tracekit.envelope import inject_trace_context, extract_trace_context
        from kitpkg.tracekit.kafka import consume_span, inject_headers
        import contextvars
        from types import SimpleNamespace

        var = contextvars.ContextVar("var", default="unset")
        var.set("carried")
        seen = []
        thread = TracedThread(target=lambda: seen.append(var.get()))
        thread.start()
        thread.join()
        with TracedThreadPoolExecutor(1) as pool:
            seen.append(submit(pool, var.get).result())

        item = capture_for_queue({"job": 1})
        with restore_from_queue(item) as restored:
            pass
        with attached(extract_trace_context({"traceparent": "junk"})):
            pass
        carrier = inject_trace_context({})
        headers = inject_headers([("other", b"1")])
        record = SimpleNamespace(topic="orders", partition=0, offset=1, headers=headers,
                                 value=b"{}")
        with consume_span(record, group_id="g"):
            pass
        try:
            import opentelemetry.sdk  # noqa: F401
            sdk = True
        except ImportError:
            sdk = False
        loaded = sorted(
            name for name in sys.modules
            if name.startswith(("opentelemetry.sdk", "opentelemetry.semconv",
                                "opentelemetry.processor", "opentelemetry.exporter")))
        print(json.dumps({"seen": seen, "carrier": carrier, "headers": headers[0][0],
                          "sdk": sdk, "loaded": loaded}))
    """)

    assert result == {"seen": ["carried", "carried"], "carrier": {}, "headers": "other",
                      "sdk": False, "loaded": []}


def test_the_package_exposes_its_names_without_loading_them(api_only_python, kit_root):
    result = _run(api_only_python, kit_root, """
        import json, sys
        import kitpkg.tracekit as kit
        from kitpkg.tracekit import TracedThread  # noqa: F401
        threads_only = sorted(name.rpartition(".")[2] for name in sys.modules
                              if name.startswith("kitpkg.tracekit."))
        missing = [name for name in kit.__all__ if name not in dir(kit)]
        try:
            kit.init_tracing("svc")
            setup = "ran"
        except ImportError as exc:
            setup = exc.name
        print(json.dumps({"threads_only": threads_only, "missing": missing, "setup": setup}))
    """)

    assert result == {"threads_only": ["threads"], "missing": [],
                      "setup": "opentelemetry.sdk"}


def test_tracing_set_up_runs_on_the_floors_retrofit_declares(tmp_path, kit_root):
    """What a set-up file gets declared (scaffold.dependencies.floors_for) runs init_tracing."""
    folder = tmp_path / "set-up-venv"
    venv.EnvBuilder(with_pip=True, symlinks=sys.platform != "win32").create(folder)
    python = folder / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    floors = [f"{name}=={version}" for name, version in floors_for({API, *SETUP_FLOORS}).items()]
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *floors], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr

    result = _run(python, kit_root, """
        import json
        from kitpkg.tracekit import correlation_context, init_tracing, shutdown_tracing
        from kitpkg.tracekit.tracing import build_otlp_exporter
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        exporter = InMemorySpanExporter()
        tracer = init_tracing("svc", environment="dev", exporter=exporter)
        with correlation_context("c-1"), tracer.start_as_current_span("work"):
            pass
        shutdown_tracing()
        span, = exporter.get_finished_spans()
        print(json.dumps({
            "attributes": dict(span.attributes),
            "environment": span.resource.attributes["deployment.environment.name"],
            "exporter": type(build_otlp_exporter()).__module__,
        }))
    """)

    assert result == {"attributes": {"correlation_id": "c-1"}, "environment": "dev",
                      "exporter": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"}
