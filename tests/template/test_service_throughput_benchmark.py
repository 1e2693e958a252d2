"""The service throughput benchmark credits each mode only with work it did.

A few events per mode, no timing asserted: the generated worker exports its three spans an
event (CONSUMER, thread work, PRODUCER) at sampler ratio 1.0, about none at 0.01, none with
the SDK disabled; the ratios are against the SDK-disabled run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARK = ROOT / "benchmarks" / "service_throughput.py"

pytestmark = pytest.mark.slow


def test_every_mode_does_the_work_it_is_measured_for():
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--events", "100", "--passes", "1", "--json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    assert list(rows) == ["ratio 1.0", "ratio 0.01", "sdk disabled"]
    assert rows["ratio 1.0"]["spans_per_event"] == 3
    assert rows["ratio 0.01"]["spans_per_event"] < 1
    assert rows["sdk disabled"]["spans_per_event"] == 0
    assert rows["sdk disabled"]["throughput_ratio"] == 1
    for row in rows.values():
        assert row["events_per_s"] > 0 and row["cpu_us_per_event"] > 0
