"""The library front of ``scaffold``: what its commands do, without a command line.

The commands (``scaffold.commands``) parse flags and print; everything else is here, as
Fixit splits ``fixit.api`` from ``fixit.cli``::

    from scaffold import api

    done = api.retrofit(["src"], write=False)   # the codemods; vendoring; tests when writing
    done.result.changed, done.exit_code
    api.check(["src"]).findings                 # codemods as --check, plus the checks

``retrofit`` and ``check`` wrap ``scaffold.engine.run`` with what comes around it: the kit
vendored where rewritten files import it, declared dependencies, and (``retrofit`` after a
write) the tests that prove the tracing. They raise ``UsageError`` (exit 2) for a bad
configuration, a missing PATH or a hand-edited vendored kit.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scaffold.config import ConfigError
from scaffold.engine.discovery import PathNotFound
from scaffold.engine.registry import all_rule_ids, all_rules
from scaffold.engine.report import FORMATS, rules_table, write_report
from scaffold.engine.runner import Options, ProgressCallback, Rule, RunResult
from scaffold.engine.runner import run as _engine_run
from scaffold.errors import UsageError
from scaffold.vendor import KitEdited

if TYPE_CHECKING:
    from scaffold.testgen import Generated

__all__ = [
    "FORMATS", "Options", "Retrofit", "RunResult", "UsageError", "check", "new_service",
    "retrofit", "rules", "run", "write_report",
]

Paths = Sequence[str | os.PathLike[str]]


def run(paths: Paths, rules: Sequence[Rule], options: Options | None = None, *,
        known_ids: Iterable[str] | None = None,
        on_progress: ProgressCallback | None = None) -> RunResult:
    """``rules`` over ``paths``: the engine's run and what comes around it under ``options``;
    ``known_ids`` (default: every rule's) are the ids a configuration may name."""
    known = all_rule_ids() if known_ids is None else set(known_ids)
    try:
        return _engine_run(paths, rules, options or Options(), known_ids=known,
                           on_progress=on_progress)
    except (ConfigError, PathNotFound, KitEdited) as exc:
        raise UsageError(str(exc)) from exc

@dataclass(frozen=True)
class Retrofit:
    """A retrofit's files (``result``) and, after a write, the tests written per repository."""

    result: RunResult
    tests: tuple[Generated, ...] = ()

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

def retrofit(
    paths: Paths, *, write: bool = True, select: Sequence[str] = (), ignore: Sequence[str] = (),
    jobs: int = 0, unsafe_fixes: bool | None = None, include_tests: bool | None = None,
    force: bool = False, add_dependencies: bool = True, generate_tests: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Retrofit:
    """Rewrite ``paths`` so their tracing is correct (``write=False``: only say what would
    change). Vendors the kit, declares dependencies and, after a write with
    ``generate_tests``, writes the tests proving the retrofit."""
    from scaffold.codemods import all_codemods

    options = Options(
        write=write, select=tuple(select), ignore=tuple(ignore), jobs=jobs,
        unsafe_fixes=unsafe_fixes, include_tests=include_tests, vendor_kit=True, force=force,
        add_dependencies=add_dependencies,
        # a finding alone does not fail a retrofit: `retrofit --check` exits 0 once nothing
        # is left to change
        findings_fail=False,
    )
    result = run(paths, all_codemods(), options, on_progress=on_progress)
    if not (write and generate_tests):
        return Retrofit(result)
    from scaffold.testgen import generate_for

    return Retrofit(result, tuple(generate_for([os.fspath(path) for path in paths])))

def check(
    paths: Paths, *, select: Sequence[str] = (), ignore: Sequence[str] = (), jobs: int = 0,
    include_tests: bool | None = None, on_progress: ProgressCallback | None = None,
) -> RunResult:
    """Every rule over ``paths`` without writing: the checks' findings and every rewrite
    retrofit would make, the kit files it would write included."""
    options = Options(write=False, select=tuple(select), ignore=tuple(ignore), jobs=jobs,
                      include_tests=include_tests, vendor_kit=True)
    return run(paths, all_rules(), options, on_progress=on_progress)

def rules() -> list[dict[str, str]]:
    """Every codemod (in run order) and check: id, kind, fix safety, summary, help."""
    return rules_table(all_rules())

def new_service(dest: str | os.PathLike[str], *, data: Mapping[str, Any] | None = None,
                defaults: bool = False, vcs_ref: str | None = None) -> None:
    """A traced service generated from the Copier template at ``dest``."""
    # Copier is imported here: every other command starts without it
    from scaffold.new_service import NewServiceError, create_service

    try:
        create_service(os.fspath(dest), data=dict(data or {}), defaults=defaults, vcs_ref=vcs_ref)
    except NewServiceError as exc:
        raise UsageError(str(exc)) from exc
