"""bootstrap, executed: tracing starts at start-up (not at import) and is flushed at shutdown.

Each scenario runs in a child process (a tracer provider can be installed once per process),
importing a small package ``service`` that holds a fixture's ``before`` or ``after`` module and
the kit as rendered. The kit's OTLP exporter is swapped for an in-memory one and the batch
processor's schedule is pushed out of reach, so a span is exported only when something
flushes. The unrewritten modules, run the same way, show the breaks (the control).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scaffold.kit import render_kit
from tests.codemods.conftest import FIXTURES

PACKAGE = {
    "__init__.py": 'SERVICE_NAME = "essays"\n',
    "api.py": "from quart import Blueprint\n\nbp = Blueprint('api', __name__)\n",
    "services.py": textwrap.dedent("""\
        class _Services:
            async def aclose(self):
                pass


        def build_services():
            return _Services()
        """),
    "logging_setup.py": "def configure_logging():\n    pass\n",
    # the service's own set-up, as in HuleEdu: a provider with its own batch exporter
    "observability.py": textwrap.dedent("""\
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        EXPORTER = InMemorySpanExporter()


        def init_tracing(service_name):
            provider = TracerProvider()
            provider.add_span_processor(BatchSpanProcessor(EXPORTER))
            trace.set_tracer_provider(provider)
            return trace.get_tracer(service_name)
        """),
}

# Runs in the child before the service is imported: the kit exports in memory, and counts
# its init_tracing calls; the report says what was installed when, and what got exported.
_PRELUDE = """
import asyncio, json, runpy
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
import service.tracekit
import service.tracekit.tracing as kit_tracing
from service import observability

exporter = InMemorySpanExporter()
kit_tracing.build_otlp_exporter = lambda: exporter
calls = []
real_init = service.tracekit.init_tracing
service.tracekit.init_tracing = lambda *a, **k: calls.append(a) or real_init(*a, **k)
report = {}

def sdk_installed():
    return isinstance(trace.get_tracer_provider(), TracerProvider)

def exported():
    return len(exporter.get_finished_spans()) + len(observability.EXPORTER.get_finished_spans())
"""

_QUART_APP = _PRELUDE + """
import service.app
report["installed_by_import"] = sdk_installed()
app = service.app.create_app()

async def serve_one_request():
    async with app.test_app():
        report["installed_at_start_up"] = sdk_installed()
        with trace.get_tracer("probe").start_as_current_span("request"):
            pass
        report["exported_while_serving"] = exported()
    report["exported_after_shutdown"] = exported()

asyncio.run(serve_one_request())
report["init_calls"] = len(calls)
print(json.dumps(report))
"""

_WORKER = _PRELUDE + """
import service.worker
report["installed_by_import"] = sdk_installed()
runpy.run_module("service.worker", run_name="__main__")
report["exported_after_main"] = exported()
report["init_calls"] = len(calls)
print(json.dumps(report))
"""


def _run(tmp_path: Path, case: str, version: str, module: str, script: str) -> dict:
    package = tmp_path / "service"
    package.mkdir()
    for name, text in PACKAGE.items():
        (package / name).write_text(text)
    render_kit(package / "tracekit", package_name="service")
    source = (FIXTURES / "bootstrap" / case / f"{version}.py").read_text()
    (package / module).write_text(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env |= {"PYTHONPATH": str(tmp_path), "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_rewritten_app_initialises_at_start_up_and_flushes_at_shutdown(tmp_path):
    report = _run(tmp_path, "quart_factory_import", "after", "app.py", _QUART_APP)
    assert report == {
        "installed_by_import": False,
        "installed_at_start_up": True,
        "exported_while_serving": 0,
        "exported_after_shutdown": 1,
        "init_calls": 1,
    }


def test_unrewritten_app_initialises_at_import_and_never_flushes(tmp_path):
    """The control: the same scenario on the module as it was."""
    report = _run(tmp_path, "quart_factory_import", "before", "app.py", _QUART_APP)
    assert report["installed_by_import"] is True
    assert report["exported_after_shutdown"] == 0
    assert report["init_calls"] == 0


@pytest.mark.parametrize("version", ["before", "after"])
def test_worker_main_initialises_and_flushes_only_when_rewritten(tmp_path, version):
    report = _run(tmp_path, "worker_main", version, "worker.py", _WORKER)
    assert report["installed_by_import"] is False
    if version == "before":  # the control: spans go to the no-op provider
        assert report == {"installed_by_import": False, "exported_after_main": 0,
                          "init_calls": 0}
    else:
        assert report == {"installed_by_import": False, "exported_after_main": 1,
                          "init_calls": 1}
