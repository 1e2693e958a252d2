"""Vendoring the kit through ``scaffold retrofit``: where it goes, when it is written or updated.

Every test runs the real CLI in-process over a small service in a temporary folder.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scaffold import __version__
from scaffold.cli import main
from scaffold.codemods.thread_context import ThreadContext
from scaffold.engine import FileResult, Settings, Status, discover, process_source
from scaffold.vendor import (
    HEADER_PREFIX,
    KitLocation,
    KitResolver,
    vendored_sources,
    write_vendored_kit,
)

SENDER = textwrap.dedent("""\
    from aiokafka import AIOKafkaProducer


    async def publish(producer: AIOKafkaProducer, topic, value):
        await producer.send_and_wait(topic, value)
""")
IDLE = "def nothing_to_trace():\n    return 1\n"


def _service(root: Path, package: str, modules: dict[str, str]) -> Path:
    """A service folder: pyproject.toml and a package holding ``modules``."""
    (root / package).mkdir(parents=True)
    (root / "pyproject.toml").write_text(f'[project]\nname = "{package}"\n')
    (root / package / "__init__.py").write_text("")
    for name, text in modules.items():
        (root / package / name).write_text(text)
    return root


def _kit(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(folder.glob("*.py"))}


def _retrofit(*args: object) -> int:
    return main(["retrofit", *map(str, args)])


def test_retrofit_vendors_the_kit_into_the_package_its_rewrite_imports(tmp_path, capsys):
    service = _service(tmp_path / "orders_service", "orders", {"bus.py": SENDER})

    assert _retrofit(service) == 1

    kit = service / "orders" / "tracekit"
    assert _kit(kit) == vendored_sources(KitLocation("orders.tracekit", kit))
    assert all(text.startswith(f"{HEADER_PREFIX}{__version__} (sha256:")
               for text in _kit(kit).values())
    assert "from orders.tracekit import traced_send" in (service / "orders" / "bus.py").read_text()
    assert "orders/tracekit/kafka.py:1:1: vendored-kit" in capsys.readouterr().out
    imported = subprocess.run([sys.executable, "-c", "import orders.bus, orders.tracekit"],
                              cwd=service, capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr


def test_a_second_run_changes_nothing(tmp_path, capsys):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})
    _retrofit(service)
    written = _kit(service / "orders" / "tracekit")
    capsys.readouterr()

    assert _retrofit(service, "--check") == 0
    assert _retrofit(service) == 0
    assert _kit(service / "orders" / "tracekit") == written
    assert "nothing to change" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["--check", "--diff"])
def test_check_and_diff_report_the_kit_without_writing_it(tmp_path, capsys, mode):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})

    assert _retrofit(service, mode) == 1

    out = capsys.readouterr().out
    assert "orders/tracekit/__init__.py:1:1: vendored-kit" in out
    assert not (service / "orders" / "tracekit").exists()
    assert (service / "orders" / "bus.py").read_text() == SENDER
    if mode == "--diff":
        assert "+++ b/" in out and "tracekit/kafka.py" in out


def test_no_kit_is_written_when_no_rewrite_imports_it(tmp_path):
    service = _service(tmp_path / "svc", "orders", {"idle.py": IDLE})

    assert _retrofit(service) == 0
    assert not (service / "orders" / "tracekit").exists()


def _old_kit(service: Path) -> Path:
    """The service with its kit vendored by an older scaffold and a rewrite already done."""
    kit = service / "orders" / "tracekit"
    write_vendored_kit(KitLocation("orders.tracekit", kit), kit_version="0.0.1")
    return kit


def test_a_newer_kit_updates_an_unmodified_vendored_copy(tmp_path, capsys):
    service = _service(tmp_path / "svc", "orders", {"idle.py": IDLE})
    kit = _old_kit(service)

    assert _retrofit(service) == 1

    assert _kit(kit) == vendored_sources(KitLocation("orders.tracekit", kit))
    assert "update from kit 0.0.1" in capsys.readouterr().out
    assert _retrofit(service) == 0


def test_an_edited_vendored_kit_is_not_overwritten_exit_2(tmp_path, capsys):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})
    kit = _old_kit(service)
    edited = (kit / "kafka.py").read_text() + "\n# a local fix\n"
    (kit / "kafka.py").write_text(edited)

    assert _retrofit(service) == 2

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "vendored kit" in err and "kafka.py" in err and "--force" in err
    assert (kit / "kafka.py").read_text() == edited
    assert (service / "orders" / "bus.py").read_text() == SENDER  # refused before any write


def test_force_overwrites_an_edited_vendored_kit(tmp_path, capsys):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})
    kit = _old_kit(service)
    (kit / "kafka.py").write_text((kit / "kafka.py").read_text() + "\n# a local fix\n")

    assert _retrofit(service, "--force") == 1

    assert _kit(kit) == vendored_sources(KitLocation("orders.tracekit", kit))
    assert "replaces local edits (--force)" in capsys.readouterr().out


def test_an_edited_kit_with_nothing_new_to_deliver_is_left_alone(tmp_path):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})
    _retrofit(service)
    kafka = service / "orders" / "tracekit" / "kafka.py"
    edited = kafka.read_text() + "\n# a local fix\n"
    kafka.write_text(edited)

    assert _retrofit(service, "--check") == 0
    assert kafka.read_text() == edited


def test_each_service_of_a_monorepo_gets_its_own_kit(tmp_path):
    orders = _service(tmp_path / "services" / "orders", "orders", {"bus.py": SENDER})
    billing = _service(tmp_path / "services" / "billing", "billing", {"bus.py": SENDER})
    _service(tmp_path / "services" / "catalog", "catalog", {"idle.py": IDLE})

    assert _retrofit(tmp_path) == 1

    assert "from orders.tracekit import" in (orders / "orders" / "bus.py").read_text()
    assert "from billing.tracekit import" in (billing / "billing" / "bus.py").read_text()
    assert sorted(p.relative_to(tmp_path).as_posix()
                  for p in tmp_path.rglob("tracekit")) == [
        "services/billing/billing/tracekit", "services/orders/orders/tracekit"]
    for service in (orders, billing):
        done = subprocess.run([sys.executable, "-c", f"import {service.name}.bus"],
                              cwd=service, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_a_configured_shared_location_holds_the_one_kit(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.scaffold]\nkit = "common.tracekit"\n')
    _service(tmp_path / "libs" / "common", "common", {})
    orders = _service(tmp_path / "services" / "orders", "orders", {"bus.py": SENDER})
    billing = _service(tmp_path / "services" / "billing", "billing", {"bus.py": SENDER})

    assert _retrofit(tmp_path) == 1

    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("tracekit")] == [
        "libs/common/common/tracekit"]
    for bus in (orders / "orders" / "bus.py", billing / "billing" / "bus.py"):
        assert "from common.tracekit import traced_send" in bus.read_text()


CONSUMER = textwrap.dedent("""\
    from aiokafka import AIOKafkaConsumer


    async def run(handle):
        consumer = AIOKafkaConsumer("essays", bootstrap_servers="kafka:9092")
        async for msg in consumer:
            await handle(msg)
""")


def test_a_script_beside_several_packages_is_left_alone_on_the_second_run_too(tmp_path, capsys):
    """A consumer loop left alone the first time (no package to guess for the script) was
    rewritten by the second run, because the first had vendored a kit into one of the
    packages for that package's own rewrite."""
    service = _service(tmp_path / "svc", "alpha", {"consumer.py": CONSUMER})
    (service / "beta").mkdir()
    (service / "beta" / "__init__.py").write_text("")
    (service / "worker.py").write_text(CONSUMER)

    assert _retrofit(service, "--no-tests") == 1
    assert (service / "alpha" / "tracekit").is_dir()
    assert (service / "worker.py").read_text() == CONSUMER
    capsys.readouterr()

    assert _retrofit(service, "--check") == 0
    assert (service / "worker.py").read_text() == CONSUMER
    assert "worker.py:6:5: kafka-consume no kit to call here" in capsys.readouterr().out


def test_files_outside_the_package_use_the_kit_of_their_service(tmp_path):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})
    (service / "tests").mkdir()
    (service / "tests" / "__init__.py").write_text("")
    (service / "tests" / "test_bus.py").write_text(SENDER)
    (service / "manage.py").write_text(SENDER)
    targets = discover([service])
    kits = KitResolver(targets)

    assert {t.path.name: kits.kit_for(t) for t in targets if t.path.name != "__init__.py"} == {
        "bus.py": "orders.tracekit", "test_bus.py": None, "manage.py": "orders.tracekit"}


def test_a_test_file_gets_only_a_kit_that_exists(tmp_path):
    service = _service(tmp_path / "svc", "orders", {"bus.py": SENDER})
    (service / "tests").mkdir()
    (service / "tests" / "test_bus.py").write_text(SENDER)
    (service / "orders" / "test_helpers.py").write_text(SENDER)
    test_files = [t for t in discover([service]) if t.test]
    assert sorted(t.path.name for t in test_files) == ["test_bus.py", "test_helpers.py"]

    planning = KitResolver(discover([service]))
    assert [planning.kit_for(t) for t in test_files] == [None, None]
    # nothing was planned for them: a result importing the would-be kit writes none
    importing = FileResult("svc/tests/test_bus.py", Status.CHANGED, original="",
                           updated="from orders.tracekit import traced_send\n")
    assert planning.vendor([importing], write=True) == []
    assert not (service / "orders" / "tracekit").exists()

    write_vendored_kit(KitLocation("orders.tracekit", service / "orders" / "tracekit"))
    existing = KitResolver(discover([service]))
    assert [existing.kit_for(t) for t in discover([service]) if t.test] == [
        "orders.tracekit", "orders.tracekit"]


def test_a_file_with_no_package_to_hold_the_kit_has_none(tmp_path):
    (tmp_path / "script.py").write_text(SENDER)
    targets = discover([tmp_path])

    assert [KitResolver(targets).kit_for(t) for t in targets] == [None]


def test_the_engine_never_rewrites_or_reports_a_vendored_file():
    body = "import threading\n\n\ndef go(poll):\n    threading.Thread(target=poll).start()\n"
    vendored = f"{HEADER_PREFIX}{__version__} (sha256:{'0' * 32})\n{body}"
    settings = Settings(kit="orders.tracekit")

    inside = process_source(vendored.encode(), "orders/tracekit/threads.py",
                            [ThreadContext], settings)
    control = process_source(body.encode(), "orders/worker.py", [ThreadContext], settings)

    assert (inside.status, inside.findings) == (Status.UNCHANGED, ())
    assert control.status is Status.CHANGED
