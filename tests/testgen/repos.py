"""Repositories the test-generator tests run on: codemod fixtures as modules of one repo.

Every fixture case with an ``after.py`` becomes the module ``service.fx_<codemod>_<case>`` of
a temporary repository that also holds the kit twice (``service.tracekit`` and
``kitpkg.tracekit``, the import paths the fixtures use), the envelope model some fixtures
import (``service.events``) and a HuleEdu-style helper library
(``huleedu_service_libs.observability``) re-exporting the kit's functions under its names.
The same repository with each ``before.py`` in place of its ``after.py`` is the control.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from scaffold.kit import render_kit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PYPROJECT = """\
[project]
name = "fixture-repo"
version = "0"

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""
EVENTS = """\
\"\"\"The event envelope of the platform.\"\"\"

from pydantic import BaseModel


class EventEnvelope(BaseModel):
    event_type: str
    correlation_id: str
    data: dict
    metadata: dict | None = None
"""
HELPER = """\
\"\"\"A shared observability library in the HuleEdu style, backed by the kit.\"\"\"

from kitpkg.tracekit import extract_trace_context as extract_trace_context
from kitpkg.tracekit import init_tracing as init_tracing
from kitpkg.tracekit import inject_trace_context as inject_trace_context
from kitpkg.tracekit import trace_operation as trace_operation
from kitpkg.tracekit import use_trace_context as use_trace_context
"""


def fixture_cases() -> list[Path]:
    """Every fixture case with an ``after.py`` (a rewrite, so something to test)."""
    return sorted(path.parent for path in FIXTURES.glob("*/*/after.py"))


def module_name(case: Path) -> str:
    return f"fx_{case.parent.name.replace('-', '_')}_{case.name}"


def fixture_repo(dest: Path, version: str = "after") -> Path:
    """The repository of every fixture case's ``version`` (``after`` or ``before``)."""
    dest.mkdir(parents=True)
    (dest / "pyproject.toml").write_text(PYPROJECT)
    for package in ("service", "kitpkg"):
        (dest / package).mkdir()
        (dest / package / "__init__.py").write_text("")
        render_kit(dest / package / "tracekit", package_name=package)
    helper = dest / "huleedu_service_libs"
    helper.mkdir()
    (helper / "__init__.py").write_text("")
    (helper / "observability.py").write_text(HELPER)
    (dest / "service" / "events.py").write_text(EVENTS)
    for case in fixture_cases():
        shutil.copyfile(case / f"{version}.py", dest / "service" / f"{module_name(case)}.py")
    return dest


def swap_in_before(repo: Path) -> None:
    """The control: each fixture module replaced by its ``before.py``."""
    for case in fixture_cases():
        shutil.copyfile(case / "before.py", repo / "service" / f"{module_name(case)}.py")


def run_pytest(repo: Path, *paths: str) -> dict[str, str]:
    """Outcome (passed, failed, skipped) per test id of a pytest run in a subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             f"--junitxml={junit}", *paths],
            cwd=repo, env=env, capture_output=True, text=True, timeout=900,
        )
        assert junit.exists(), done.stdout + done.stderr
        outcomes = {}
        for testcase in ElementTree.parse(junit).iter("testcase"):
            outcome = "passed"
            for child in testcase:
                if child.tag in ("failure", "error"):
                    outcome = "failed"
                elif child.tag == "skipped":
                    outcome = "skipped"
            module = testcase.get("classname", "").rsplit(".", 1)[-1]
            outcomes[f"{module}::{testcase.get('name')}"] = outcome
        outcomes["__output__"] = done.stdout[-20000:]
        return outcomes
