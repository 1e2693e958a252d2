"""Proof on examples/legacy_service: after retrofit the generated tests pass, they fail on the
untraced service, the repo contract catches a new untraced consumer, and the mutation check
kills every driven site."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from example.service import EXAMPLE_DIR, PACKAGE, copy_service, hand_retrofit, run_service_tests

from scaffold import mutation
from scaffold.cli import main
from scaffold.kit import render_kit
from scaffold.testgen import find_sites, generate_tests
from tests.testgen.repos import run_pytest

pytestmark = pytest.mark.slow

# Planted rule -> the kind of site its rewrite leaves for the generated tests.
KIND_OF_RULE = {
    "token-finally": "token", "thread-context": "thread", "kafka-produce": "produce",
    "kafka-consume": "consume", "envelope-inject": "inject", "envelope-restore": "restore",
    "http-inject": "inject",
}
# Planted sites whose generated test rightly passes on the untraced service too.
SAME_BEHAVIOUR_UNTRACED = {
    "envelope-inject:outbox-guard": "planted.toml: a span object is always truthy, so under a "
    "span the guard never skipped the injection; the rewrite changes nothing at run time",
}
CONTRACT = "test_tracing_contract::test_retrofit_check_finds_nothing_to_change"


def _planted() -> list[dict]:
    sites = tomllib.loads((EXAMPLE_DIR / "planted.toml").read_text())["site"]
    return [site for site in sites if site["kind"] == "fix" and site["id"] in KIND_OF_RULE]


def _tests_of_planted(service: Path) -> dict[str, list[str]]:
    """Planted marker slug -> the generated test ids of the site its rewrite left behind."""
    modules = find_sites(service).modules
    found: dict[str, list[str]] = {}
    for planted in _planted():
        text = (service / planted["file"]).read_text().splitlines()
        line = next(n for n, code in enumerate(text, 1) if planted["marker"] in code)
        for module in modules:
            for case in module.cases:
                if (case.site.path, case.site.kind) == (
                    planted["file"], KIND_OF_RULE[planted["id"]]
                ) and abs(case.site.line - line) <= 3 and case.skip is None:
                    stem = f"test_trace_{module.module.replace('.', '_')}"
                    found[planted["marker"].split("planted: ")[1]] = [
                        f"{stem}::{name}" for name in case.test_names]
    return found


@pytest.fixture(scope="module")
def hand(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The hand-retrofitted example with its generated tests, and their outcomes."""
    service = hand_retrofit(copy_service(tmp_path_factory.mktemp("hand") / PACKAGE))
    generate_tests(service)
    return service, run_pytest(service, "tests/tracing")


def test_on_the_hand_retrofitted_example_every_generated_test_passes(hand):
    service, outcomes = hand
    failed = [test for test, outcome in outcomes.items() if outcome == "failed"]
    assert not failed, outcomes["__output__"]
    assert set(_tests_of_planted(service)) == {
        f"{site['id']}:{site['marker'].split(':')[-1]}" for site in _planted()
    }


def test_the_same_tests_fail_on_the_untraced_example(hand, tmp_path):
    """The control: the original service (kit added so the tests import) fails them."""
    service, _ = hand
    untraced = copy_service(tmp_path / PACKAGE)
    render_kit(untraced / PACKAGE / "tracekit", package_name=PACKAGE)
    shutil.copytree(service / "tests" / "tracing", untraced / "tests" / "tracing")
    outcomes = run_pytest(untraced, "tests/tracing")
    unnoticed = [
        slug for slug, tests in _tests_of_planted(service).items()
        if slug not in SAME_BEHAVIOUR_UNTRACED
        and not any(outcomes[test] == "failed" for test in tests)
    ]
    assert not unnoticed, outcomes["__output__"]
    assert outcomes[CONTRACT] == "failed"


def test_mutation_kills_every_driven_site_of_the_hand_retrofitted_example(hand):
    service, _ = hand
    report = mutation.mutate(service)
    assert report.driven and not report.survivors, report.render()
    assert len(report.killed) >= 12, report.render()


@pytest.fixture(scope="module")
def retrofitted(tmp_path_factory) -> tuple[Path, str]:
    """A copy of the example after `scaffold retrofit`, which wrote its tests."""
    service = copy_service(tmp_path_factory.mktemp("retrofit") / PACKAGE)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main(["retrofit", "--jobs", "1", str(service)])
    return service, output.getvalue()


def test_after_retrofit_the_generated_tests_and_the_service_tests_pass(retrofitted):
    service, output = retrofitted
    summary = re.search(r"tracing tests: (\d+) sites, (\d+) driven", output)
    assert summary and int(summary.group(2)) >= 8, output
    outcomes = run_pytest(service, "tests/tracing")
    failed = [test for test, outcome in outcomes.items() if outcome == "failed"]
    assert not failed, outcomes["__output__"]
    covered = _tests_of_planted(service)
    assert all(outcomes[test] == "passed" for tests in covered.values() for test in tests)
    assert len(covered) >= 7, covered
    own = run_service_tests(service, "--ignore=tests/tracing")
    assert own.returncode == 0, own.stdout + own.stderr


def test_the_contract_test_fails_when_an_untraced_consumer_is_added(retrofitted, tmp_path):
    service, _ = retrofitted
    added = shutil.copytree(service, tmp_path / PACKAGE)
    (added / PACKAGE / "audit.py").write_text(
        "from aiokafka import AIOKafkaConsumer\n\n\n"
        "async def audit(handle):\n"
        '    consumer = AIOKafkaConsumer("audit")\n'
        "    async for record in consumer:\n"
        "        await handle(record)\n"
    )
    outcomes = run_pytest(added, f"tests/tracing/{CONTRACT.split('::')[0]}.py")
    assert outcomes[CONTRACT] == "failed"
    assert "legacy_service/audit.py" in outcomes["__output__"]


def test_make_mutation_kills_every_driven_site():
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = mutation.main([str(EXAMPLE_DIR)])
    assert code == 0, output.getvalue()
    assert "survivors: none" in output.getvalue()
    rate = re.search(r"kill rate: (\d+)/(\d+) driven sites \(100%\)", output.getvalue())
    assert rate and int(rate.group(2)) >= 8, output.getvalue()
