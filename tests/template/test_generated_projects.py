"""Each answer set's generated project passes its own ``make setup``, ``make test``, ``make lint``.

This is what a new user does after ``scaffold new``: the generated tests prove the trace over
a real Tansu broker, the export to a real OTLP receiver and the Redis queue where chosen.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _make(project: Path, target: str) -> None:
    # The project's own environment: nothing of this test run's venv or OTEL_* settings.
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not key.startswith("OTEL_")
    }
    done = subprocess.run(
        ["make", target], cwd=project, env=env, capture_output=True, text=True
    )
    output = f"{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"make {target} failed:\n{output}"


def test_generated_project_sets_up_passes_its_tests_and_lints(rendered):
    _, project = rendered
    _make(project, "setup")
    _make(project, "test")
    _make(project, "lint")
