"""Shared fixtures: the kit as rendered, a real Kafka broker, a real Redis, span capture.

The kit is rendered once per session from ``templates/kit`` into a temporary folder as the
package ``kitpkg.tracekit``, so every test exercises exactly the code that services receive.
The broker and Redis starters are the kit's own (``tracekit.testing``): generated services and
this repository use one implementation.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from scaffold.kit import render_kit

KIT_TEST_PACKAGE = "kitpkg"


@pytest.fixture(scope="session")
def kit_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``kitpkg/tracekit/`` as rendered (the ``PYTHONPATH`` of subprocesses)."""
    root = tmp_path_factory.mktemp("kit")
    package = root / KIT_TEST_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text('"""Test package holding the rendered kit."""\n')
    render_kit(package / "tracekit", package_name=KIT_TEST_PACKAGE)
    return root


@pytest.fixture(scope="session")
def kit_package(kit_root: Path) -> Iterator[ModuleType]:
    """The rendered kit imported as ``kitpkg.tracekit`` (its submodules are attributes)."""
    sys.path.insert(0, str(kit_root))
    try:
        kit = importlib.import_module(f"{KIT_TEST_PACKAGE}.tracekit")
        # the package loads its modules lazily; tests reach them as attributes
        for module in sorted((kit_root / KIT_TEST_PACKAGE / "tracekit").glob("[!_]*.py")):
            importlib.import_module(f"{KIT_TEST_PACKAGE}.tracekit.{module.stem}")
        yield kit
    finally:
        sys.path.remove(str(kit_root))


@pytest.fixture(scope="session")
def tansu(kit_package: ModuleType) -> Iterator[str]:
    """Bootstrap address (``127.0.0.1:PORT``) of a real Tansu broker, stopped by pid at the end."""
    with kit_package.testing.tansu_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def redis_url(kit_package: ModuleType) -> Iterator[str]:
    """URL of a throwaway ``redis-server`` (no persistence), stopped by pid at the end."""
    with kit_package.testing.redis_server() as url:
        yield url


@pytest.fixture
def span_exporter(kit_package: ModuleType):
    """The session's in-memory exporter on the shared test provider, emptied for this test."""
    exporter = kit_package.testing.install_test_exporter()
    exporter.clear()
    return exporter


@pytest.fixture
def context_leak_guard(kit_package: ModuleType, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it returns with an OpenTelemetry context still attached."""
    with kit_package.testing.guard_test_function(request.node):
        yield
