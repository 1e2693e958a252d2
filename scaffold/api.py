"""The library front of ``scaffold``: what its commands do, without a command line.

The commands (``scaffold.commands``) parse flags and print; everything else is here, as
Fixit splits ``fixit.api`` from ``fixit.cli``::

    from scaffold import api

    done = api.retrofit(["src"], write=False)   # the codemods; vendoring; tests when writing
    done.result.changed, done.exit_code
    api.check(["src"]).findings                 # codemods as --check, plus the checks

``retrofit`` and ``check`` wrap ``scaffold.engine.run`` with what comes around it: the kit
vendored where rewritten files import it, declared dependencies, and (``retrofit`` after a
write) the tests that prove the tracing. What the user can fix raises a ``UsageError``
(exit 2): ``ConfigError`` for a bad configuration, ``PathNotFound``, ``KitEdited`` for a
hand-edited vendored kit, ``NewServiceError``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scaffold import dependencies, engine
from scaffold.engine.discovery import Target
from scaffold.engine.model import FileResult
from scaffold.engine.report import FORMATS, rules_table, write_report
from scaffold.engine.rule import Rule
from scaffold.engine.runner import ProgressCallback, RunResult
from scaffold.engine.sitetable import TABLE_FORMATS, SiteTable, root_of, site_table, write_table
from scaffold.errors import UsageError
from scaffold.registry import all_rule_ids, all_rules
from scaffold.vendor import KitResolver

if TYPE_CHECKING:
    from scaffold.testgen import Generated

__all__ = [
    "FORMATS", "TABLE_FORMATS", "Options", "Report", "Retrofit", "RunResult", "SiteTable",
    "UsageError", "check", "new_service", "report", "retrofit", "rules", "run", "write_report",
    "write_table",
]

Paths = Sequence[str | os.PathLike[str]]


@dataclass(frozen=True)
class Options(engine.Options):
    """The engine's options, and what retrofit does around the run."""

    vendor_kit: bool = False  # write the kit where rewritten files import it
    force: bool = False  # with vendor_kit: overwrite a vendored kit someone edited
    # with vendor_kit: add what rewritten files now import to their project's dependency list
    # (False, --no-deps: report it as a finding)
    add_dependencies: bool = True


class _AroundRun:
    """The engine's hooks (``engine.runner.RunHooks``): each file's kit, planned where none
    exists yet (``KitResolver``); with ``vendor_kit``, the kit and the dependencies written
    (or, without ``write``, reported) after the files ran."""

    def __init__(self, options: engine.Options) -> None:
        self._options = options
        self._kits: KitResolver | None = None

    @property
    def _vendoring(self) -> bool:
        return isinstance(self._options, Options) and self._options.vendor_kit

    def started(self, targets: Sequence[Target]) -> None:
        self._kits = KitResolver(targets)
        if self._vendoring:
            assert isinstance(self._options, Options)
            self._kits.refuse_edited(force=self._options.force)  # before anything is written

    def kit_for(self, target: Target) -> str | None:
        assert self._kits is not None  # the engine calls started first
        return self._kits.kit_for(target)

    def finished(self, results: Sequence[FileResult],
                 targets: Sequence[Target]) -> list[FileResult]:
        options = self._options
        if not isinstance(options, Options) or not options.vendor_kit:
            return []
        assert self._kits is not None
        added = self._kits.vendor(results, write=options.write, force=options.force)
        added.extend(dependencies.declare([*results, *added], targets, write=options.write,
                                          add=options.add_dependencies))
        return added


def run(paths: Paths, rules: Sequence[Rule], options: engine.Options | None = None, *,
        known_ids: Iterable[str] | None = None,
        on_progress: ProgressCallback | None = None) -> RunResult:
    """``rules`` over ``paths``: the engine's run, each file given the kit it may import
    (configured, existing, else planned) and, under ``Options(vendor_kit=True)``, the kit
    and the dependencies written or reported after it; ``known_ids`` (default: every rule's)
    are the ids a configuration may name."""
    options = options or Options()
    known = all_rule_ids() if known_ids is None else set(known_ids)
    return engine.run(paths, rules, options, known_ids=known, on_progress=on_progress,
                      hooks=_AroundRun(options))

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

@dataclass(frozen=True)
class Report:
    """``scaffold report``'s run and the site table built from it."""

    result: RunResult
    table: SiteTable


def report(
    paths: Paths, *, select: Sequence[str] = (), ignore: Sequence[str] = (), jobs: int = 0,
    include_tests: bool | None = None, on_progress: ProgressCallback | None = None,
) -> Report:
    """Every propagation site under ``paths``, as ``check`` runs the rules (never writing),
    test files and files the config excludes included as skipped sites."""
    options = Options(write=False, select=tuple(select), ignore=tuple(ignore), jobs=jobs,
                      include_tests=include_tests, vendor_kit=True, all_sites=True)
    result = run(paths, all_rules(), options, on_progress=on_progress)
    return Report(result, site_table(result.results, root_of(paths)))

def rules() -> list[dict[str, str]]:
    """Every codemod (in run order) and check: id, kind, fix safety, summary, help."""
    return rules_table(all_rules())

def new_service(dest: str | os.PathLike[str], *, data: Mapping[str, Any] | None = None,
                defaults: bool = False, vcs_ref: str | None = None) -> None:
    """A traced service generated from the Copier template at ``dest``."""
    # Copier is imported here: every other command starts without it
    from scaffold.new_service import create_service

    create_service(os.fspath(dest), data=dict(data or {}), defaults=defaults, vcs_ref=vcs_ref)
