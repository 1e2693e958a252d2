"""The engine hands one repo model to the rules that read it, in-process and in workers."""

from __future__ import annotations

import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import libcst as cst
import pytest

from scaffold.api import Options, run
from scaffold.checks.base import Check
from scaffold.codemods.base import Codemod
from scaffold.engine import discover, process_source, runner
from scaffold.repo import RepoModel


class ModelProbe(Codemod):
    """Reports what the repo model says about the file's module (a test rule)."""

    USES_REPO = True

    def visit_Module(self, node: cst.Module) -> bool:
        if node.body:
            module = self.module_name
            main = f"{module}.main"
            self.report(node.body[0], f"{module} {self.repo.reaches_tracing_setup(main)}")
        return False


class CheckProbe(Check):
    """The same question from a check."""

    USES_REPO = True
    WHY = FIX_HINT = "a test rule"

    def visit_Module(self, node: cst.Module) -> bool:
        if node.body:
            module = self.module_name
            reaches = self.repo.reaches_tracing_setup(f"{module}.main")
            self.report(node.body[0], f"{module} {reaches}")
        return False


class Blind(ModelProbe):
    """The same rule, not declaring that it reads the model."""

    USES_REPO = False


def repo(root: Path) -> Path:
    files = {
        "pyproject.toml": '[tool.scaffold]\nhelper-module = "helper"\n',
        "helper/__init__.py": "def init_tracing(name): ...\n",
        "svc/__init__.py": "",
        "svc/setup.py": "from helper import init_tracing\ndef go():\n    init_tracing('svc')\n",
        "svc/main.py": "from svc import setup\ndef main():\n    setup.go()\n",
        "svc/other.py": "def main():\n    pass\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(textwrap.dedent(text))
    return root


@pytest.mark.parametrize("rule", [ModelProbe, CheckProbe], ids=["codemod", "check"])
@pytest.mark.parametrize("jobs", [1, 2], ids=["in-process", "in-workers"])
def test_rules_see_the_run_model(tmp_path: Path, jobs: int, rule: type) -> None:
    result = run([repo(tmp_path)], [rule], Options(jobs=jobs))
    said = {Path(f.path).relative_to(tmp_path).as_posix(): f.message for f in result.findings}
    assert said == {
        "helper/__init__.py": "helper False",
        "svc/setup.py": "svc.setup False",
        "svc/main.py": "svc.main True",
        "svc/other.py": "svc.other False",
    }
    assert runner._REPO is None  # not kept past the run


def test_no_model_is_built_when_no_rule_reads_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    monkeypatch.setattr(runner, "build_repo", lambda targets, jobs=1: built.append(targets))
    run([repo(tmp_path)], [Blind], Options(jobs=1))
    assert built == []


def test_process_source_gives_a_model_of_the_file_alone() -> None:
    source = b"from helper import init_tracing\ndef main():\n    init_tracing('x')\n"
    result = process_source(source, "svc.py", [ModelProbe])
    assert [f.message for f in result.findings] == ["svc False"]  # no helper configured


def test_a_model_parsed_on_workers_equals_the_serial_one(tmp_path: Path) -> None:
    root = repo(tmp_path)
    files = [t.path for t in discover([root]) if t.python]
    serial = RepoModel.build(root, files)
    with ProcessPoolExecutor(2) as pool:
        parallel = RepoModel.build(root, files, mapper=pool.map)
    assert parallel.modules == serial.modules
    assert parallel.functions == serial.functions
    assert parallel.classes == serial.classes


def test_the_runs_model_built_on_processes_equals_the_serial_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``build_repo`` spreads parsing over processes past ``PARALLEL_MODEL`` files."""
    targets = discover([repo(tmp_path)])
    serial = runner.build_repo(targets, jobs=1)
    monkeypatch.setattr(runner, "PARALLEL_MODEL", 1)
    parallel = runner.build_repo(targets, jobs=2)
    assert serial.modules and parallel.modules == serial.modules
    assert parallel.functions == serial.functions
    assert parallel.classes == serial.classes
