"""Proof on the codemod fixtures: the generated tests pass on every ``after.py`` and, for each
fixture whose rewrite changes what happens at run time, fail on its ``before.py``."""

from __future__ import annotations

from collections import defaultdict

import pytest

from scaffold.testgen import generate_tests
from tests.testgen.repos import fixture_cases, fixture_repo, module_name, run_pytest, swap_in_before

pytestmark = pytest.mark.slow
CONTRACT = "test_tracing_contract::test_retrofit_check_finds_nothing_to_change"


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> tuple[dict[str, str], dict[str, str], str]:
    """Per test id: the outcome on the ``after.py`` modules, then on the ``before.py`` ones."""
    repo = fixture_repo(tmp_path_factory.mktemp("fixtures") / "repo")
    summary = generate_tests(repo).summary()
    after = run_pytest(repo, "tests/tracing")
    swap_in_before(repo)
    before = run_pytest(repo, "tests/tracing")
    return after, before, summary


def _by_fixture(results: dict[str, str]) -> dict[str, dict[str, str]]:
    grouped: dict[str, dict[str, str]] = defaultdict(dict)
    for test_id, outcome in results.items():
        module, _, test = test_id.partition("::")
        grouped[module.removeprefix("test_trace_service_")][test] = outcome
    return grouped


def test_every_generated_test_passes_or_is_skipped_after_the_rewrite(outcomes):
    after, _, summary = outcomes
    failed = [test for test, outcome in after.items() if outcome == "failed"]
    assert not failed, f"{failed}\n{summary}\n{after['__output__']}"


def test_most_fixture_sites_are_driven(outcomes):
    after, _, summary = outcomes
    passed = [test for test, outcome in after.items() if outcome == "passed"]
    assert len(passed) >= 40, summary


def test_each_rewrite_with_a_runtime_effect_fails_a_generated_test_before_it(outcomes):
    after, before, _ = outcomes
    before_by_fixture = _by_fixture(before)
    unnoticed = []
    for fixture, tests in _by_fixture(after).items():
        driven = [test for test, outcome in tests.items() if outcome == "passed"]
        if not driven or fixture == "test_tracing_contract":
            continue
        if not any(before_by_fixture[fixture].get(test) == "failed" for test in driven):
            unnoticed.append(fixture)
    assert not unnoticed, f"before.py passes every generated test of {unnoticed}"


def test_every_fixture_with_a_rewrite_is_in_the_proof():
    assert {module_name(case) for case in fixture_cases()} >= {
        "fx_token_finally_exception_restores_context", "fx_thread_context_thread_subclass",
        "fx_kafka_consume_async_for_loop", "fx_kafka_produce_bus_attribute",
        "fx_envelope_restore_guarded_kit", "fx_http_inject_clients_kit",
    }


def test_the_contract_test_fails_once_code_is_untraced_again(outcomes):
    """Every before.py holds a rewrite retrofit --check proposes: the repo contract fails."""
    _, before, _ = outcomes
    assert before[CONTRACT] == "failed"


DRIVEN_NEW_SITES = {
    # Redis queues: captures pushed (a list, a stream) and items restored after blpop/rpop
    # and xreadgroup (pub/sub messages are reported, not rewritten: nothing to drive)
    "fx_redis_queue_stream_entries": 6,
    "fx_redis_queue_outbox_entry_holds_the_envelope": 1,
    # relays sending under the stored envelope's context, and a Protocol's implementation
    "fx_kafka_produce_outbox_relay": 1,
    "fx_kafka_produce_fallback_queue_replay": 1,
    "fx_http_inject_protocol_implementation": 2,
}


@pytest.mark.parametrize(("fixture", "tests"), DRIVEN_NEW_SITES.items(),
                         ids=DRIVEN_NEW_SITES.keys())
def test_queue_relay_and_protocol_sites_are_driven_and_fail_once_reverted(outcomes, fixture,
                                                                          tests):
    after, before, summary = outcomes
    module = f"test_trace_service_{fixture}"
    driven = [t for t, outcome in after.items() if t.startswith(f"{module}::")
              and outcome == "passed"]
    assert len(driven) == tests, summary
    assert all(before[t] == "failed" for t in driven), {t: before[t] for t in driven}
