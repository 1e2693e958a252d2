"""Where retrofit vendors the kit, layout by layout, from the packaging metadata.

Each test builds a small repo of one layout, runs a real ``scaffold retrofit`` on a file that
needs the kit (an aiokafka send: kafka-produce wraps it in the kit's ``traced_send``), and
checks where the kit lands and that the rewritten module imports in a fresh interpreter with
only the file's import root on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from scaffold.cli import main
from scaffold.engine import discover
from scaffold.vendor import KitResolver

SENDER = textwrap.dedent("""\
    from aiokafka import AIOKafkaProducer


    async def publish(producer: AIOKafkaProducer, topic, value):
        await producer.send_and_wait(topic, value)
""")
HATCH = '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _kits(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("tracekit") if p.is_dir())


def _imports(module: str, import_root: Path, tmp_path: Path) -> None:
    """``import module`` succeeds with only ``import_root`` added to ``sys.path``."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=elsewhere, capture_output=True,
        text=True, env={**os.environ, "PYTHONPATH": str(import_root)})
    assert done.returncode == 0, done.stderr


def _retrofit(*args: object) -> int:
    return main(["retrofit", "--no-tests", *map(str, args)])


def test_a_service_in_a_services_package_gets_its_kit_inside_its_own_folder(tmp_path):
    # HuleEdu: services/ is a package, each service has a pyproject.toml and is imported as
    # services.<name> with the repo root on sys.path; its image copies only services/<name>/
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "monorepo"\n',
        "services/__init__.py": "",
        "services/orders/__init__.py": "",
        "services/orders/pyproject.toml": '[project]\nname = "orders"\n[tool.pdm]\n'
                                          "distribution = false\n",
        "services/orders/kafka/__init__.py": "",
        "services/orders/kafka/bus.py": SENDER,
        # a service folder without __init__.py: a namespace portion of services
        "services/billing/pyproject.toml": '[project]\nname = "billing"\n',
        "services/billing/bus.py": SENDER,
    })

    # a run on one service (no git here) still sees the monorepo around it
    alone = [t for t in discover([repo / "services/billing"]) if t.path.name == "bus.py"]
    assert KitResolver(alone).kit_for(alone[0]) == "services.billing.tracekit"

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["services/billing/tracekit", "services/orders/tracekit"]
    assert ("from services.orders.tracekit import traced_send"
            in (repo / "services/orders/kafka/bus.py").read_text())
    assert ("from services.billing.tracekit import traced_send"
            in (repo / "services/billing/bus.py").read_text())
    _imports("services.orders.kafka.bus", repo, tmp_path)
    _imports("services.billing.bus", repo, tmp_path)


def test_a_src_layout_library_gets_its_kit_in_its_package(tmp_path):
    repo = _write(tmp_path / "repo", {
        "libs/__init__.py": "",
        "libs/shared/__init__.py": "",  # a chain above src/ that is not how it is imported
        "libs/shared/pyproject.toml": HATCH + '[project]\nname = "shared"\n',
        "libs/shared/src/shared/__init__.py": "",
        "libs/shared/src/shared/bus.py": SENDER,
    })

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["libs/shared/src/shared/tracekit"]
    assert "from shared.tracekit import" in (repo / "libs/shared/src/shared/bus.py").read_text()
    _imports("shared.bus", repo / "libs/shared/src", tmp_path)


def test_poetry_packages_from_a_folder(tmp_path):
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[tool.poetry]\nname = "orders"\n'
                          'packages = [{include = "orders", from = "lib"}]\n',
        "lib/orders/__init__.py": "",
        "lib/orders/api/__init__.py": "",
        "lib/orders/api/bus.py": SENDER,
    })

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["lib/orders/tracekit"]
    _imports("orders.api.bus", repo / "lib", tmp_path)


def test_hatch_packages_under_src(tmp_path):
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": HATCH + '[project]\nname = "orders"\n'
                          '[tool.hatch.build.targets.wheel]\npackages = ["code/orders"]\n',
        "code/orders/__init__.py": "",
        "code/orders/bus.py": SENDER,
    })

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["code/orders/tracekit"]
    _imports("orders.bus", repo / "code", tmp_path)


def test_a_runtime_whose_wheel_ships_only_its_inner_package(tmp_path):
    # runtimes/ is a package on disk, but its wheel ships only runtimes/worker as `worker`:
    # `runtimes.tracekit` would not exist where the worker runs
    repo = _write(tmp_path / "repo", {
        "runtimes/__init__.py": "",
        "runtimes/pyproject.toml": HATCH + '[project]\nname = "worker"\n'
                                   '[tool.hatch.build.targets.wheel]\npackages = ["worker"]\n',
        "runtimes/worker/__init__.py": "",
        "runtimes/worker/bus.py": SENDER,
    })

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["runtimes/worker/tracekit"]
    assert "from worker.tracekit import" in (repo / "runtimes/worker/bus.py").read_text()
    _imports("worker.bus", repo / "runtimes", tmp_path)


def test_a_test_package_never_holds_the_kit(tmp_path):
    # the service's only packages are tests: there is no safe place, so nothing is vendored
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "svc"\n',
        "tests/__init__.py": "",
        "tests/unit/__init__.py": "",
        "tests/unit/helpers.py": SENDER,
        "testing/__init__.py": "",
        "testing/bus.py": SENDER,
    })
    targets = [t for t in discover([repo]) if t.path.name != "__init__.py"]
    kits = KitResolver(targets)

    assert [kits.kit_for(t) for t in targets] == [None, None]
    assert all("is a test package" in (kits.unplaced(t) or "") for t in targets)
    _retrofit(repo)
    assert _kits(repo) == []


def test_a_test_beside_the_service_package_never_plans_a_kit_and_never_its_own(tmp_path):
    """The old bug was a kit planned at ``unit.tracekit``; a test file now only ever gets a kit
    that exists (test files are out of the codemods' scope unless include-tests)."""
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "orders"\n',
        "orders/__init__.py": "",
        "orders/bus.py": SENDER,
        "tests/__init__.py": "",
        "tests/unit/__init__.py": "",
        "tests/unit/test_bus.py": SENDER,
    })
    targets = discover([repo])
    kits = {t.path.name: KitResolver(targets).kit_for(t) for t in targets}

    assert (kits["bus.py"], kits["test_bus.py"]) == ("orders.tracekit", None)


def test_a_file_outside_any_package_is_reported_not_vendored(tmp_path, capsys):
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "tool"\n',
        "worker.py": SENDER,
    })

    assert _retrofit(repo) == 0  # findings only: retrofit changed nothing

    assert _kits(repo) == []
    assert (repo / "worker.py").read_text() == SENDER
    out = capsys.readouterr().out
    assert "worker.py:5:" in out and "no kit to call here" in out
    assert "pyproject.toml:1:1: vendored-kit no safe place to vendor the tracing kit" in out
    assert 'kit = "<package>.tracekit"' in out


def test_a_script_beside_one_package_uses_that_package(tmp_path):
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "orders"\n',
        "orders/__init__.py": "",
        "worker.py": SENDER,
    })

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["orders/tracekit"]
    assert "from orders.tracekit import" in (repo / "worker.py").read_text()
    _imports("worker", repo, tmp_path)


def test_a_folder_of_services_never_holds_the_kit(tmp_path, capsys):
    # services/ holds other projects: a service without its own pyproject gets its kit in
    # its own folder, never in services/
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[project]\nname = "monorepo"\n',
        "services/__init__.py": "",
        "services/orders/__init__.py": "",
        "services/orders/pyproject.toml": '[project]\nname = "orders"\n',
        "services/gateway/__init__.py": "",
        "services/gateway/bus.py": SENDER,
    })

    # the same when the run sees only the gateway (the other service is only on disk)
    alone = [t for t in discover([repo / "services/gateway"]) if t.path.name == "bus.py"]
    assert KitResolver(alone).kit_for(alone[0]) == "services.gateway.tracekit"

    assert _retrofit(repo) == 1

    assert _kits(repo) == ["services/gateway/tracekit"]
    _imports("services.gateway.bus", repo, tmp_path)


def test_a_configured_kit_the_file_cannot_import_is_reported(tmp_path, capsys):
    # common/ is in the tree but in no installable project: orders cannot import it
    repo = _write(tmp_path / "repo", {
        "pyproject.toml": '[tool.scaffold]\nkit = "common.tracekit"\n',
        "libs/common/common/__init__.py": "",
        "services/orders/pyproject.toml": '[project]\nname = "orders"\n',
        "services/orders/orders/__init__.py": "",
        "services/orders/orders/bus.py": SENDER,
    })
    (repo / "libs/common/pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")

    assert _retrofit(repo) == 0  # findings only: retrofit changed nothing

    assert _kits(repo) == []
    assert (repo / "services/orders/orders/bus.py").read_text() == SENDER
    out = capsys.readouterr().out
    assert "the configured kit common.tracekit is in" in out
    assert "does not reach" in out


def test_a_kit_left_in_a_folder_above_the_project_is_not_reused(tmp_path):
    # an earlier scaffold vendored services/tracekit, which no service image holds
    repo = _write(tmp_path / "repo", {
        "services/__init__.py": "",
        "services/tracekit/__init__.py": "",
        "services/tracekit/threads.py": "",
        "services/orders/__init__.py": "",
        "services/orders/pyproject.toml": '[project]\nname = "orders"\n',
        "services/orders/bus.py": SENDER,
    })
    targets = [t for t in discover([repo]) if t.path.name == "bus.py"]

    assert KitResolver(targets).kit_for(targets[0]) == "services.orders.tracekit"
