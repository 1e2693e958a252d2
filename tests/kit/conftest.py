"""Helpers for the kit's tests: fresh interpreters for tracing setup, real ConsumerRecords."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord


@pytest.fixture
def run_with_kit(kit_root: Path) -> Callable[..., dict]:
    """Run ``code`` in a fresh interpreter that can import ``kitpkg.tracekit``; return its JSON.

    A process sets its global TracerProvider once, so every test of ``init_tracing`` gets its
    own process. The script reports by printing one JSON object as its last line.
    """

    def run(code: str, env: dict[str, str] | None = None) -> dict:
        clean = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        clean["PYTHONPATH"] = str(kit_root)
        clean.update(env or {})
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True, text=True, env=clean, timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])

    return run


def _record(
    topic: str = "orders",
    headers: object = (),
    value: object = b"{}",
    *,
    offset: int = 0,
    partition: int = 0,
    key: object = None,
) -> ConsumerRecord:
    """A real aiokafka ``ConsumerRecord`` as ``getone()`` returns it, built without a broker."""
    return ConsumerRecord(
        topic=topic, partition=partition, offset=offset, timestamp=0, timestamp_type=0,
        key=key, value=value, checksum=None, serialized_key_size=-1,
        serialized_value_size=len(value) if isinstance(value, bytes) else -1,
        headers=headers,
    )


@pytest.fixture
def make_record() -> Callable[..., ConsumerRecord]:
    """Build ``ConsumerRecord``s: ``make_record(topic, headers, value, offset=..)``."""
    return _record
