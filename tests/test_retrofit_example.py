"""Issue 5's proof (`make retrofit-example`): `scaffold retrofit` on a copy of the example.

The copy is a git repository, as a user's would be, and every scaffold run goes through the
real CLI in a subprocess. After one retrofit: nothing is left to change, every file compiles,
the service's own tests and the tests retrofit generated pass, every planted `fix` site was
rewritten by its rule, the kit is vendored, `scaffold check` reports exactly the planted
`check` sites, and one essay's trace is unbroken end to end over Tansu and Redis.

The controls live beside the harness: tests/example/test_e2e.py shows the same end-to-end
assertion failing on the untraced example (the Makefile target runs it too), and a copy that
only the Kafka codemods touched shows the per-site check naming every other site.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from example.e2e import CLIENT, SUBMITTED, assert_unbroken, run_flow
from example.service import EXAMPLE_DIR, PACKAGE, copy_service, run_service_tests

from scaffold import __version__
from scaffold.checks import all_checks
from scaffold.dependencies import FLOORS
from scaffold.vendor import KitLocation, vendored_sources

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SITES: list[dict] = tomllib.loads((EXAMPLE_DIR / "planted.toml").read_text())["site"]
FIX_SITES = [site for site in SITES if site["kind"] == "fix"]
CHECK_SITES = [site for site in SITES if site["kind"] == "check"]
CHECK_IDS = {check.ID for check in all_checks()}
KAFKA_IDS = ("kafka-produce", "kafka-consume")
# The README's before/after: one file's retrofit diff, as this run produced it.
DOC_DIFF = REPO / "docs" / "retrofit-example.diff"
DOC_DIFF_FILE = f"{PACKAGE}/handlers.py"
WRITE_DOC_DIFF = "SCAFFOLD_WRITE_EXAMPLE_DIFF"  # set by `make retrofit-example`


@dataclass(frozen=True)
class Run:
    """One CLI run: exit code, its JSON report (stdout) and stderr."""

    exit_code: int
    report: dict
    stderr: str

    def sites(self, kind: str | None = None) -> Counter:
        """(rule id, path, line) of the report's sites (of one kind: change / finding)."""
        return Counter(
            (site["rule_id"], site["path"].removeprefix("./"), site["line"])
            for site in self.report["sites"] if kind in (None, site["kind"])
        )


def _scaffold(service: Path, *args: str) -> Run:
    """``scaffold ARGS --format json .`` from the service's folder, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-m", "scaffold", *args, "--format", "json", "."],
        cwd=service, env=env, capture_output=True, text=True, timeout=600,
    )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON report (exit {done.returncode}):\n{done.stdout}"
                             f"\n{done.stderr}") from None
    return Run(done.returncode, report, done.stderr)


def _git(service: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=example", "-c", "user.email=example@localhost", *args],
        cwd=service, check=True, capture_output=True, text=True,
    ).stdout


def _user_repository(dest: Path) -> Path:
    """A copy of the example as a user's repository: git-initialised, everything committed."""
    service = copy_service(dest)
    _git(service, "init", "-q")
    _git(service, "add", "-A")
    _git(service, "commit", "-q", "-m", "legacy service, untraced")
    return service


@dataclass(frozen=True)
class Retrofitted:
    service: Path
    run: Run


@pytest.fixture(scope="module")
def retrofitted(tmp_path_factory) -> Retrofitted:
    """The one retrofitted copy every test here reads (nothing here writes to it)."""
    service = _user_repository(tmp_path_factory.mktemp("retrofit") / PACKAGE)
    return Retrofitted(service, _scaffold(service, "retrofit"))


@pytest.fixture(scope="module")
def kafka_only(tmp_path_factory) -> Retrofitted:
    """The control: a copy only the two Kafka codemods rewrote."""
    service = _user_repository(tmp_path_factory.mktemp("kafka-only") / PACKAGE)
    return Retrofitted(
        service, _scaffold(service, "retrofit", "--select", ",".join(KAFKA_IDS), "--no-tests")
    )


def _line_of(path: Path, marker: str) -> int:
    lines = [n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text]
    assert len(lines) == 1, f"{marker!r} occurs {len(lines)} times in {path}"
    return lines[0]


def _added_lines(service: Path, file: str) -> set[int]:
    """Line numbers (in the file now) that the retrofit added or changed, from git's diff."""
    added: set[int] = set()
    for start, count in re.findall(r"(?m)^@@ -\S+ \+(\d+)(?:,(\d+))? @@",
                                   _git(service, "diff", "-U0", "HEAD", "--", file)):
        added.update(range(int(start), int(start) + int(count or 1)))
    return added


def _block_around(source: str, line: int) -> range:
    """The lines of the block holding the statement that starts on ``line``."""
    tree = ast.parse(source)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            if isinstance(child, ast.stmt) and child.lineno == line:
                if isinstance(parent, ast.Module):
                    return range(1, len(source.splitlines()) + 1)
                return range(parent.lineno, parent.end_lineno + 1)
    raise AssertionError(f"no statement starts on line {line}")


def _unrewritten(done: Retrofitted) -> list[str]:
    """Planted fix sites not rewritten: not reported fixed by their rule at their line, or the
    code around them unchanged (the marker's line, or the block holding its statement)."""
    fixed = done.run.sites("change")
    missing = []
    for site in FIX_SITES:
        before = _line_of(EXAMPLE_DIR / site["file"], site["marker"])
        after_path = done.service / site["file"]
        after = _line_of(after_path, site["marker"])
        changed = _added_lines(done.service, site["file"])
        touched = after in changed or bool(
            changed & set(_block_around(after_path.read_text(), after))
        )
        if not (fixed[(site["id"], site["file"], before)] and touched):
            missing.append(site["marker"].removeprefix("# planted: "))
    return missing


def _expected_findings(service: Path, sites: list[dict], rule_ids: set[str]) -> Counter:
    """(rule, file, line) of the planted sites' rules (`also` included) that are in rule_ids."""
    return Counter(
        (rule_id, site["file"], _line_of(service / site["file"], site["marker"]))
        for site in sites
        for rule_id in (site["id"], *site.get("also", ()))
        if rule_id in rule_ids
    )


# -- the run itself ------------------------------------------------------------------------


def test_retrofit_changes_the_example_and_exits_1(retrofitted):
    run = retrofitted.run
    assert run.exit_code == 1, run.stderr
    assert run.report["mode"] == "write"
    assert run.report["summary"]["changed"] > 0
    assert [f for f in run.report["files"] if f["status"] == "failed"] == []


def test_afterwards_retrofit_check_has_nothing_left_to_change(retrofitted):
    """Exit 0: no change and no failure; the only findings are planted sites no rule can fix
    (the codemods listed in `also` of a `check` site: token-finally on the hook attach), which
    retrofit prints without failing (README's exit codes)."""
    before = _git(retrofitted.service, "status", "--porcelain")
    run = _scaffold(retrofitted.service, "retrofit", "--check", "--no-tests")
    report_only = _expected_findings(retrofitted.service, CHECK_SITES,
                                     {site["id"] for site in FIX_SITES})

    assert run.sites("change") == Counter()
    assert [f for f in run.report["files"] if f["status"] == "failed"] == []
    assert run.sites("finding") == report_only
    assert report_only, "the hook-attach site should still be reported"
    assert run.exit_code == 0
    assert _git(retrofitted.service, "status", "--porcelain") == before, "--check wrote"


def test_every_file_still_compiles(retrofitted, tmp_path):
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path)}  # keep the copy free of .pyc
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-f", str(retrofitted.service)],
        env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _unsorted_imports(root: Path, files: list[str]) -> set[str]:
    """The files among ``files`` whose imports ruff's isort rules (``I``) would reorder."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "I",
         "--line-length", "100", "--output-format", "json",
         "--config", f"lint.isort.known-first-party={json.dumps([PACKAGE, 'support'])}",
         *files], cwd=root, capture_output=True, text=True,
    )
    return {Path(finding["filename"]).relative_to(root).as_posix()
            for finding in json.loads(done.stdout)}


def test_what_retrofit_writes_keeps_the_imports_in_isorts_order(retrofitted):
    """A repo whose CI runs ruff's import rules stays green: every file retrofit changed
    whose imports were sorted still is, and every file it wrote is sorted."""
    service = retrofitted.service
    written = sorted(
        {f["path"].removeprefix("./") for f in retrofitted.run.report["files"]
         if f["status"] == "changed" and f["path"].endswith(".py")}
        | {p.relative_to(service).as_posix() for p in (service / "tests" / "tracing").glob("*.py")}
    )
    existed = [name for name in written if (EXAMPLE_DIR / name).is_file()]
    assert existed and len(existed) < len(written)  # rewritten files, and new ones
    unsorted_before = _unsorted_imports(EXAMPLE_DIR, existed)
    assert _unsorted_imports(service, written) <= unsorted_before


def test_the_services_own_tests_still_pass(retrofitted):
    collected = run_service_tests(EXAMPLE_DIR, "--collect-only")
    expected = re.search(r"(\d+) tests? collected", collected.stdout)

    done = run_service_tests(retrofitted.service, "--ignore=tests/tracing")

    assert done.returncode == 0, done.stdout + done.stderr
    assert expected and f"{expected.group(1)} passed" in done.stdout, done.stdout
    assert "skipped" not in done.stdout


def test_the_tests_retrofit_generated_pass(retrofitted):
    summary = re.search(r"tracing tests: (\d+) sites, (\d+) driven", retrofitted.run.stderr)
    assert summary, retrofitted.run.stderr

    done = run_service_tests(retrofitted.service, "tests/tracing")

    passed = re.search(r"(\d+) passed", done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert passed and int(passed.group(1)) >= int(summary.group(2)), done.stdout


# -- what changed ---------------------------------------------------------------------------


def test_every_planted_fix_site_is_rewritten_by_its_rule(retrofitted):
    assert _unrewritten(retrofitted) == []


def test_control_sites_of_codemods_that_did_not_run_are_named(kafka_only):
    """The per-site check tells one rule's sites from another's, even in the same function."""
    expected = [site["marker"].removeprefix("# planted: ")
                for site in FIX_SITES if site["id"] not in KAFKA_IDS]

    assert kafka_only.run.exit_code == 1
    assert _unrewritten(kafka_only) == expected


def test_the_kit_is_vendored_with_its_header(retrofitted):
    kit = retrofitted.service / PACKAGE / "tracekit"
    written = {path.name: path.read_text() for path in sorted(kit.glob("*.py"))}

    assert written == vendored_sources(KitLocation(f"{PACKAGE}.tracekit", kit))
    assert all(text.startswith(f"# Generated by scaffold {__version__}\n"
                               f"# from templates/kit/{name}.jinja\n# sha256:")
               for name, text in written.items())


def test_retrofit_declares_what_the_kits_tracing_set_up_needs(retrofitted):
    """The example declares the API, SDK and OTLP exporter; the kit's init_tracing, which
    bootstrap now calls, also needs the baggage processor: added as a lower bound."""
    notes = [site for site in retrofitted.run.report["sites"]
             if site["rule_id"] == "declared-dependencies"]
    diff = _git(retrofitted.service, "diff", "HEAD", "--", "pyproject.toml")

    assert [(note["path"], note["kind"]) for note in notes] == [("pyproject.toml", "change")]
    assert [line for line in diff.splitlines() if line.startswith(("+ ", "- "))] == [
        f'+    "{name}>={FLOORS[name]}",' for name in ["opentelemetry-processor-baggage"]]


def test_scaffold_check_reports_exactly_the_planted_check_sites(retrofitted):
    run = _scaffold(retrofitted.service, "check", "--jobs", "1")
    every_rule = CHECK_IDS | {site["id"] for site in FIX_SITES}

    assert run.sites() == _expected_findings(retrofitted.service, CHECK_SITES, every_rule)
    assert run.exit_code == 1


# -- the trace ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retrofitted_flow(retrofitted, tansu, redis_url):
    return run_flow(retrofitted.service, kafka_bootstrap=tansu, redis_url=redis_url)


def test_the_essay_still_goes_the_whole_way(retrofitted_flow):
    assert retrofitted_flow.response_status == 202
    assert retrofitted_flow.essay["status"] == "analysed"
    assert retrofitted_flow.course_stats["essays"] == 1


def test_the_end_to_end_trace_is_unbroken(retrofitted_flow):
    """HTTP -> queue -> worker -> Kafka -> consumer -> thread work -> downstream event."""
    assert_unbroken(retrofitted_flow.spans)


def test_the_context_is_on_the_wire_of_every_outgoing_hop(retrofitted_flow):
    client = retrofitted_flow.spans.one(CLIENT)
    handler = retrofitted_flow.spans.one(SUBMITTED)
    sent = retrofitted_flow.content_service_headers["traceparent"].split("-")
    downstream = retrofitted_flow.downstream_envelope["metadata"]["traceparent"].split("-")

    assert sent[1] == client.trace_id
    assert (downstream[1], downstream[2]) == (client.trace_id, handler.span_id)


# -- the README's before/after ---------------------------------------------------------------


def _documented_diff(service: Path) -> str:
    diff = _git(service, "diff", "--no-color", "HEAD", "--", DOC_DIFF_FILE)
    return (f"# `scaffold retrofit` on examples/legacy_service: {DOC_DIFF_FILE}, before/after.\n"
            "# Generated by tests/test_retrofit_example.py; `make retrofit-example` rewrites it.\n"
            + diff)


def test_the_documented_before_after_is_this_run(retrofitted):
    diff = _documented_diff(retrofitted.service)
    if os.environ.get(WRITE_DOC_DIFF):
        DOC_DIFF.write_text(diff)

    assert DOC_DIFF.is_file() and DOC_DIFF.read_text() == diff, (
        f"{DOC_DIFF.relative_to(REPO)} is not what retrofit writes now: run make retrofit-example")
