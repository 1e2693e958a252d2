"""Writing the tests into a repository: once, never over the user's edits, in its own style."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scaffold.cli import main
from scaffold.emitted import Ownership, ownership
from scaffold.kit import render_kit
from scaffold.testgen import generate_tests
from tests.testgen.repos import run_pytest

TRACED = """\
from concurrent.futures import ThreadPoolExecutor

from svc.tracekit import submit


def step():
    return "done"


async def run(pool: ThreadPoolExecutor):
    return submit(pool, step).result()
"""
UNTRACED = """\
from concurrent.futures import ThreadPoolExecutor


def step():
    return "done"


def run():
    with ThreadPoolExecutor() as pool:
        return pool.submit(step).result()
"""


def make_repo(root: Path, source: str = TRACED, *, pytest_options: str = "",
              kit: bool = True, scaffold_table: str = "") -> Path:
    (root / "svc").mkdir(parents=True)
    (root / "svc" / "__init__.py").write_text("")
    (root / "svc" / "jobs.py").write_text(source)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "svc"\nversion = "0"\n'
        + (f"\n[tool.pytest.ini_options]\n{pytest_options}\n" if pytest_options else "")
        + (f"\n[tool.scaffold]\n{scaffold_table}\n" if scaffold_table else "")
    )
    if kit:
        render_kit(root / "svc" / "tracekit", package_name="svc")
    return root


def tracing_dir(root: Path) -> Path:
    return root / "tests" / "tracing"


def test_tests_are_written_once_with_a_header_and_a_rerun_changes_nothing(tmp_path):
    repo = make_repo(tmp_path)
    first = generate_tests(repo)
    names = sorted(p.name for p in first.written)
    assert names == ["conftest.py", "test_trace_svc_jobs.py", "test_tracing_contract.py",
                     "tracing_samples.py", "tracing_support.py"]
    assert (first.driven, first.skipped) == (1, 0)
    for path in first.written:
        expected = Ownership.FOREIGN if path.name == "tracing_samples.py" else Ownership.OURS
        assert ownership(path) is expected, path
    second = generate_tests(repo)
    assert second.written == [] and len(second.unchanged) == 4


def test_an_edited_test_is_kept_and_reported(tmp_path):
    repo = make_repo(tmp_path)
    generate_tests(repo)
    module = tracing_dir(repo) / "test_trace_svc_jobs.py"
    edited = module.read_text().replace("harness.assert_thread_descends", "# mine\n    harness."
                                        "assert_thread_descends")
    module.write_text(edited)
    again = generate_tests(repo)
    assert again.kept == [module] and module.read_text() == edited
    assert "1 edited by you and kept" in again.summary()


def test_a_module_that_lost_its_sites_loses_its_untouched_test(tmp_path):
    repo = make_repo(tmp_path)
    generate_tests(repo)
    (repo / "svc" / "jobs.py").write_text("def step():\n    return 1\n")
    again = generate_tests(repo)
    assert again.removed == [tracing_dir(repo) / "test_trace_svc_jobs.py"]
    assert not (tracing_dir(repo) / "test_trace_svc_jobs.py").exists()


def test_the_samples_file_is_written_once_and_then_belongs_to_the_user(tmp_path):
    repo = make_repo(tmp_path)
    generate_tests(repo)
    samples = tracing_dir(repo) / "tracing_samples.py"
    samples.write_text("SAMPLES = {'svc.jobs.run:pool': None}\n")
    again = generate_tests(repo)
    assert samples not in again.written
    assert samples.read_text() == "SAMPLES = {'svc.jobs.run:pool': None}\n"


def test_a_user_file_in_the_tests_folder_is_never_overwritten(tmp_path):
    repo = make_repo(tmp_path)
    tracing_dir(repo).mkdir(parents=True)
    (tracing_dir(repo) / "conftest.py").write_text("# the user's own conftest\n")
    result = generate_tests(repo)
    assert tracing_dir(repo) / "conftest.py" in result.kept
    assert (tracing_dir(repo) / "conftest.py").read_text() == "# the user's own conftest\n"


def test_a_repository_without_a_kit_gets_no_tests_and_the_reason(tmp_path):
    repo = make_repo(tmp_path, kit=False)
    result = generate_tests(repo)
    assert result.written == [] and not tracing_dir(repo).exists()
    assert "has no kit" in result.summary()


def test_the_configured_folder_is_used(tmp_path):
    repo = make_repo(tmp_path, scaffold_table='tests-dir = "checks/trace"')
    result = generate_tests(repo)
    assert result.tests_dir == (repo / "checks" / "trace").resolve()
    assert (repo / "checks" / "trace" / "test_trace_svc_jobs.py").is_file()


@pytest.mark.parametrize(("options", "expected"), [
    ('asyncio_mode = "auto"', "\nasync def test_thread_run(harness):"),
    ('asyncio_mode = "strict"', "@pytest.mark.asyncio\nasync def test_thread_run(harness):"),
    ("", "    asyncio.run(scenario())"),
    ('asyncio_mode = "auto"\nmarkers = ["tracing: trace propagation tests"]',
     "pytestmark = pytest.mark.tracing"),
], ids=["auto mode", "strict mode", "no pytest-asyncio", "a declared tracing marker"])
def test_generated_tests_follow_the_repository_pytest_conventions(tmp_path, options, expected):
    repo = make_repo(tmp_path, pytest_options=options)
    generate_tests(repo)
    assert expected in (tracing_dir(repo) / "test_trace_svc_jobs.py").read_text()


@pytest.mark.parametrize("options", ['asyncio_mode = "auto"', ""], ids=["auto mode", "plain"])
def test_the_generated_tests_pass_and_are_lint_clean(tmp_path, options):
    repo = make_repo(tmp_path, pytest_options=options)
    generate_tests(repo)
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F,E9",
         "--isolated", str(tracing_dir(repo))], capture_output=True, text=True,
    )
    assert lint.returncode == 0, lint.stdout
    outcomes = run_pytest(repo, "tests/tracing")
    assert outcomes["test_trace_svc_jobs::test_thread_run"] == "passed", outcomes["__output__"]


def _retrofit(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["retrofit", "--jobs", "1", *argv])
    return code, out.getvalue(), err.getvalue()


def test_retrofit_writes_the_tests_after_rewriting_and_says_so(tmp_path):
    repo = make_repo(tmp_path, UNTRACED, kit=False, pytest_options='asyncio_mode = "auto"')
    code, out, _ = _retrofit(str(repo))
    assert code == 1
    assert "tracing tests: 1 sites, 1 driven, 0 skipped" in out
    test = tracing_dir(repo) / "test_trace_svc_jobs.py"
    assert "harness.probe(module, 'step', 'step')" in test.read_text()
    outcomes = run_pytest(repo, "tests/tracing/test_trace_svc_jobs.py")
    assert outcomes["test_trace_svc_jobs::test_thread_run"] == "passed", outcomes["__output__"]


@pytest.mark.parametrize(("argv", "table"), [
    (("--no-tests",), ""), (("--check",), ""), (("--diff",), ""),
    ((), "generate-tests = false"),
], ids=["--no-tests", "--check", "--diff", "generate-tests = false"])
def test_no_tests_are_written_when_told_not_to_or_when_nothing_is_written(tmp_path, argv, table):
    repo = make_repo(tmp_path, UNTRACED, kit=False, scaffold_table=table)
    _retrofit(*argv, str(repo))
    assert not (repo / "tests").exists()


def test_a_machine_readable_report_stays_parseable_with_the_summary_on_stderr(tmp_path):
    repo = make_repo(tmp_path, UNTRACED, kit=False)
    _, out, err = _retrofit("--format", "json", str(repo))
    assert json.loads(out)["mode"] == "write"
    assert textwrap.dedent(err).startswith("tracing tests: 1 sites")


def test_a_configured_kit_outside_the_tree_is_trusted(tmp_path):
    """A kit installed as a library (``kit = "company.tracekit"``) is imported from there."""
    repo = make_repo(tmp_path, TRACED.replace("svc.tracekit", "company.tracekit"), kit=False,
                     scaffold_table='kit = "company.tracekit"')
    result = generate_tests(repo)
    assert result.driven == 1
    assert "from company.tracekit.testing import" in (
        tracing_dir(repo) / "tracing_support.py").read_text()


DISHKA = '''\
from concurrent.futures import ThreadPoolExecutor
from inspect import Parameter
from typing import Protocol

from dishka import FromDishka
from dishka.integrations.base import wrap_injection

from svc.tracekit import submit


class Store(Protocol):
    def save(self, value: str) -> None: ...


def inject(func):
    """What a web framework's dishka integration does: the container comes with the call."""
    return wrap_injection(
        func=func, is_async=True,
        container_getter=lambda args, kwargs: kwargs["dishka_container"],
        additional_params=[Parameter("dishka_container", Parameter.KEYWORD_ONLY)],
    )


def step():
    return "done"


@inject
async def run(pool: FromDishka[ThreadPoolExecutor], store: FromDishka[Store]):
    store.save("started")
    return SUBMISSION.result()
'''


def test_a_dishka_injected_function_is_driven_with_its_dependencies_built(tmp_path):
    """No container in a test: the injected parameters are built from their hints (a pool, a
    recorder for the Protocol) and the function under ``@inject`` is called; the same test
    fails once the submission no longer carries the context."""
    repo = make_repo(tmp_path, DISHKA.replace("SUBMISSION", "submit(pool, step)"))
    generate_tests(repo)
    test = "test_trace_svc_jobs::test_thread_run"
    outcomes = run_pytest(repo, "tests/tracing")
    assert outcomes[test] == "passed", outcomes["__output__"]
    (repo / "svc" / "jobs.py").write_text(DISHKA.replace("SUBMISSION", "pool.submit(step)"))
    outcomes = run_pytest(repo, "tests/tracing")
    assert outcomes[test] == "failed", outcomes["__output__"]
