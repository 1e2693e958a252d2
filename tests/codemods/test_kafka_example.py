"""kafka-produce and kafka-consume on a copy of the example service.

Retrofit with just these two rewrites every planted site of theirs and nothing else, vendors
the kit, leaves the service compiling with its own tests green, and puts the Kafka hops of the
end-to-end flow into the request's trace (the other hops are other codemods' work).
"""

from __future__ import annotations

import json
import tomllib

import pytest
from example.e2e import ANALYSED, MISSING, SUBMITTED, broken_hops, run_flow
from example.service import EXAMPLE_DIR, copy_service, run_service_tests

from scaffold.cli import main

IDS = ("kafka-produce", "kafka-consume")


def _planted_lines() -> set[tuple[str, int]]:
    sites = tomllib.loads((EXAMPLE_DIR / "planted.toml").read_text())["site"]
    found = set()
    for site in sites:
        if site["id"] not in IDS:
            continue
        lines = (EXAMPLE_DIR / site["file"]).read_text().splitlines()
        number = next(n for n, line in enumerate(lines, 1) if site["marker"] in line)
        found.add((f"{site['id']}:{site['file']}", number))
    return found


@pytest.fixture(scope="module")
def retrofitted(tmp_path_factory):
    service = copy_service(tmp_path_factory.mktemp("kafka") / "legacy_service")
    # --no-tests: the generated tests would demand the other codemods' rewrites too
    code = main(["retrofit", "--select", ",".join(IDS), "--no-tests", "--format", "json",
                 str(service)])
    assert code == 1
    return service


def test_every_planted_kafka_site_is_rewritten_and_nothing_else(tmp_path, capsys):
    service = copy_service(tmp_path / "legacy_service")
    main(["retrofit", "--select", ",".join(IDS), "--no-tests", "--format", "json", "--check",
          str(service)])
    report = json.loads(capsys.readouterr().out)
    prefix = f"{service}/"
    sites = {
        (f"{site['rule_id']}:{site['path'].removeprefix(prefix)}", site["line"])
        for site in report["sites"] if site["rule_id"] in IDS
    }

    assert sites == _planted_lines()
    notes = [site for site in report["sites"] if site["kind"] != "change"]
    # the example declares opentelemetry-api, all the Kafka rewrites need: nothing to report
    assert notes == []
    assert not [site for site in report["sites"] if site["rule_id"] == "declared-dependencies"]


def test_the_retrofitted_service_compiles_and_its_tests_pass(retrofitted):
    for path in retrofitted.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert (retrofitted / "legacy_service" / "tracekit" / "kafka.py").is_file()

    done = run_service_tests(retrofitted)

    assert done.returncode == 0, done.stdout + done.stderr
    assert main(["retrofit", "--select", ",".join(IDS), "--no-tests", "--check",
                 str(retrofitted)]) == 0


@pytest.mark.slow
def test_the_kafka_hops_join_the_request_trace(retrofitted, tansu, redis_url):
    untouched = broken_hops(run_flow(EXAMPLE_DIR, kafka_bootstrap=tansu, redis_url=redis_url).spans)
    breaks = broken_hops(run_flow(retrofitted, kafka_bootstrap=tansu, redis_url=redis_url).spans)

    for hop in (f"send {SUBMITTED}", f"process {SUBMITTED}"):
        assert hop in untouched
        assert hop not in breaks, breaks
    for hop in (f"send {ANALYSED}", f"process {ANALYSED}"):
        assert untouched[hop] == MISSING
        assert breaks.get(hop) != MISSING, breaks
