"""The example service as a test subject: copy it, instrument a copy by hand, run its tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from scaffold.kit import render_kit

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "legacy_service"
PACKAGE = "legacy_service"
# What retrofit is meant to produce on the example, written by hand (kit rendered separately).
HAND_RETROFIT_PATCH = Path(__file__).with_name("hand_retrofit.patch")


def copy_service(dest: Path) -> Path:
    """A fresh copy of the example at ``dest``, without caches."""
    shutil.copytree(
        EXAMPLE_DIR, dest, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache")
    )
    return dest


def hand_retrofit(service_dir: Path) -> Path:
    """Instrument a copy the way retrofit should: the patch, plus the kit in the package."""
    subprocess.run(
        ["git", "apply", "--whitespace=nowarn", str(HAND_RETROFIT_PATCH)],
        cwd=service_dir,
        check=True,
        capture_output=True,
        text=True,
    )
    render_kit(service_dir / PACKAGE / "tracekit", package_name=PACKAGE)
    return service_dir


def run_service_tests(service_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run a service's own test suite with this repository's interpreter, from its own folder.

    In a subprocess: the service's tests install their own tracer provider, which can be set
    only once per process, and import the service package, which every copy names alike.
    """
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PYTEST_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *extra],
        cwd=service_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
