"""The Kafka overhead benchmark credits each mode only with work it did.

A few messages per mode, no timing asserted: every tracing mode exports two spans a message, and
the propagating modes (the kit, contrib) join every consumer span to its producer span while the
``semconv-spans`` floor, which sends a fixed header and propagates nothing, joins none; the
modes at a 0.01 sampler ratio keep far fewer spans.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "kafka_overhead.py"

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def test_every_mode_does_the_work_it_is_measured_for():
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--messages", "20", "--rounds", "1", "--passes", "1",
         "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    rows = summary["rows"]
    assert list(rows) == [
        "uninstrumented", "bare-spans", "semconv-spans", "kit", "contrib",
        "kit@0.01", "contrib@0.01",
    ]
    assert rows["uninstrumented"]["spans_per_message"] == 0
    for mode in ("bare-spans", "semconv-spans", "kit", "contrib"):
        assert rows[mode]["spans_per_message"] == 2, mode
    assert rows["kit"]["joined"] == [1.0] and rows["contrib"]["joined"] == [1.0]
    assert rows["semconv-spans"]["joined"] == [0.0]
    assert rows["bare-spans"]["joined"] == [None]  # its spans have no kind to tell them apart
    # At a 0.01 sampler ratio about one message in a hundred keeps its two spans.
    for mode in ("kit@0.01", "contrib@0.01"):
        assert rows[mode]["spans_per_message"] < 1, mode
    assert summary["ratio"] == pytest.approx(
        rows["kit"]["added"] / rows["contrib"]["added"]
    )
