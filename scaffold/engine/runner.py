"""The parse-once runner: prefilter, parse, metadata, checks, codemods in order, imports, write.

Per file: a cheap text prefilter per rule (files no rule can match are never parsed) -> one
parse (bytes in, so encoding cookie, BOM and line endings survive) -> one MetadataWrapper
resolving only the providers the surviving rules declare -> checks visit the tree as parsed ->
codemods transform it in ``scaffold.codemods.ORDER`` -> scheduled imports are added once ->
compare -> atomic write, only when the bytes changed and the run writes. Files run in parallel
over processes; results come back sorted by path, identical to a serial run.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

from scaffold.config import Config, ConfigError, ruff_settings_for
from scaffold.engine.discovery import Target, discover, is_test_file
from scaffold.engine.fast import (
    Metadata,
    TopImportsAdder,
    place_in_sections,
    place_sites,
    without_rebuild,
)
from scaffold.engine.gates import SourceSyntax
from scaffold.engine.layout import fit_changed_lines
from scaffold.engine.model import FileResult, Finding, Kind, Settings, Site, Status, is_vendored
from scaffold.engine.rule import CodemodVisitor, Rule, as_visitor, is_codemod
from scaffold.engine.sites import (
    FILE_STATE,
    MODULE,
    REPO,
    SETTINGS,
    SUPPRESSION_MARK,
    SYNTAX,
    FileState,
    line_map,
    parse_suppressions,
)
from scaffold.engine.sitetable import fixed, out_of_scope, sites_of
from scaffold.engine.slicing import Slice, import_aliases, slice_module
from scaffold.engine.unused_imports import remove_unused_imports
from scaffold.engine.writer import atomic_write
from scaffold.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from scaffold.repo import RepoModel

UNSAFE_NOTE = " (unsafe fix: apply with --unsafe-fixes)"

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Options:
    """How to run: what to select, whether to write, how many processes."""

    write: bool = False  # apply changes on disk (--check and --diff never write)
    select: tuple[str, ...] = ()  # rule ids; replaces the config's select
    ignore: tuple[str, ...] = ()  # rule ids; added to the config's ignore
    jobs: int = 0  # processes; 0 = one per core
    unsafe_fixes: bool | None = None  # None: the config decides
    include_tests: bool | None = None  # codemods rewrite test files too; None: the config decides
    # check: a finding alone exits 1; retrofit: only changes do (findings are printed), so
    # `retrofit --check` exits 0 once nothing is left to change
    findings_fail: bool = True
    # scaffold report: codemods visit test files (when include-tests is off) and the files
    # the config excludes too, in check mode, so that the site table lists their sites as
    # skipped, with the reason
    all_sites: bool = False


class RunHooks(Protocol):
    """What a caller adds around a run (``scaffold.api``: the kit, declared dependencies).

    The engine calls ``started`` once discovery is done and before any file is read or
    written (it may raise to stop the run), ``kit_for`` for each file that reaches the rules
    (``Settings.kit``: the import path of the kit that file may call, or None), and
    ``finished`` with every file's result; what it returns is added to the run's results.
    """

    def started(self, targets: Sequence[Target]) -> None: ...

    def kit_for(self, target: Target) -> str | None: ...

    def finished(self, results: Sequence[FileResult],
                 targets: Sequence[Target]) -> Iterable[FileResult]: ...


@dataclass(frozen=True)
class GateCounts:
    """How many Python files each gate let through (the benchmark prints them)."""

    files: int = 0  # looked at
    text: int = 0  # passed some rule's text prefilter
    syntax: int = 0  # passed some rule's syntax gate too: parsed by LibCST
    parsed: tuple[str, ...] = ()  # the paths of those, as reported


@dataclass(frozen=True)
class RunResult:
    """Every file's result, sorted by path, plus the rules that could have run."""

    results: tuple[FileResult, ...]
    rules: tuple[Rule, ...]
    options: Options
    gates: GateCounts = GateCounts()
    paths: tuple[str, ...] = ()  # what the run was asked to process (services are named below)

    @property
    def sites(self) -> list[Site]:
        """Every propagation site the rules saw (``scaffold.engine.sitetable``)."""
        return [site for result in self.results for site in result.sites]

    @property
    def changed(self) -> list[FileResult]:
        return [r for r in self.results if r.status is Status.CHANGED]

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.status is Status.FAILED]

    @property
    def findings(self) -> list[Finding]:
        return [finding for result in self.results for finding in result.findings]

    @property
    def exit_code(self) -> int:
        """2: a file could not be processed; 1: changes needed or made (or, when findings
        fail the run, findings); else 0."""
        if self.failed:
            return EXIT_ERROR
        if self.changed or any(f.kind is Kind.CHANGE for f in self.findings):
            return EXIT_CHANGES
        if self.options.findings_fail and self.findings:
            return EXIT_CHANGES
        return EXIT_OK



def _reason_for_parse_error(exc: Exception) -> str:
    if isinstance(exc, cst.ParserSyntaxError):
        return f"syntax error at line {exc.editor_line}, column {exc.editor_column}: {exc.message}"
    if isinstance(exc, RecursionError):
        return "too deeply nested to parse"
    return f"cannot decode: {exc}"


def process_source(
    source: bytes, path: str, rules: Sequence[Rule], settings: Settings | None = None, *,
    repo: RepoModel | None = None, module: str | None = None, test: bool | None = None,
) -> FileResult:
    """Run ``rules`` (codemods in the given order, checks first) over one file's bytes.

    Pure: reads and writes nothing, so tests, fixtures and workers all go through it.
    ``repo`` is the model of the repo the file is ``module`` of; without one, rules that ask
    get a model of this file alone. ``test`` tells the rules the file is test code (None:
    ``is_test_file(path)``); choosing which rules run on a test file is the caller's (``run``
    keeps codemods out unless include-tests).
    """
    test = is_test_file(path) if test is None else test
    return _transform(source, path, rules, settings or Settings(), repo=repo,
                      dotted=module, test=test)[0]


def _wants(rule: Rule, probe: str, settings: Settings) -> bool:
    """The text prefilter: the rule's own (under its configured options), then what its
    syntax gate needs spelled out."""
    options = settings.options.get(rule.ID)
    if not (rule.wants_configured(probe, options) if options else rule.wants(probe)):
        return False
    gate = rule.syntax_gate(settings)
    return gate is None or gate.may_admit(probe)


def _admits(rule: Rule, syntax: SourceSyntax, settings: Settings) -> bool:
    """The rule's syntax gate, if it has one and the stdlib can parse the file."""
    gate = rule.syntax_gate(settings)
    return gate is None or syntax.index is None or gate.admits(syntax.index)


def _read_only(rule: Rule) -> Rule:
    """A check's class (a read-only visitor) that walks without LibCST's rebuild."""
    assert isinstance(rule, type) and issubclass(rule, cst.CSTVisitor), rule
    return cast(Rule, without_rebuild(rule))  # the same rule: a subclass adding only the walk


def _placed(codemods: Sequence[CodemodVisitor]) -> list[Finding]:
    """The sites of codemods that visited one same tree, positioned in one pass."""
    place_sites(codemods)
    return [finding for codemod in codemods for finding in codemod.findings]


def _slice(active: Sequence[Rule], syntax: SourceSyntax, source: bytes,
           settings: Settings) -> Slice | None:
    """The slice of ``source`` LibCST needs for ``active``, when every one of them opts in."""
    index = syntax.index
    if index is None:
        return None
    words: set[str] = set()
    sites: set[str] = set()
    names: set[str] = set()
    for rule in active:
        own = rule.SLICE_WORDS
        if own is None:
            return None
        gate = rule.syntax_gate(settings)
        carriers = rule.slice_carriers(index, settings)
        if gate is None and carriers is None:  # nothing says what it follows: parse it all
            return None
        sites.update(own)
        words.update(rule.PREFILTER, carriers or ())
        if gate is not None:
            words.update(gate.words, (name.rsplit(".", 1)[-1] for name in gate.names))
            names.update(gate.names)
    words.update(import_aliases(index.imports, names))
    if index.tree is None:
        return None
    calls = any(rule.SLICE_CALLS for rule in active)
    return slice_module(source, index.tree, words, sites, calls=calls)


def libcst_input(source: bytes, rules: Sequence[Rule], settings: Settings) -> bytes | None:
    """What LibCST is given for this file's bytes under ``rules``: the file, or its slice;
    None when a gate keeps the file from LibCST (what the benchmark and the slicing tests
    measure, by the same steps ``_transform`` takes)."""
    probe = source.decode("latin-1")
    active = [rule for rule in rules if _wants(rule, probe, settings)]
    if not active or is_vendored(source) or b"\0" in source:
        return None
    syntax = SourceSyntax(source)
    active = [rule for rule in active if _admits(rule, syntax, settings)]
    if not active:
        return None
    sliced = _slice(active, syntax, source, settings)
    return sliced.source if sliced is not None else source


def _transform(
    source: bytes, path: str, rules: Sequence[Rule], settings: Settings, *,
    slicing: bool = True, repo: RepoModel | None = None, dotted: str | None = None,
    test: bool = False,
) -> tuple[FileResult, bytes | None, int]:
    """``process_source``, plus the new bytes (in the file's own encoding) when it changed,
    and how many gates the file passed (0, 1: the text prefilter, 2: the syntax gate too).

    With ``slicing``, LibCST parses only the definitions the rules could act on, when they
    all allow it (``scaffold.engine.slicing``); the result is the same as without.
    """
    probe = source.decode("latin-1")  # prefilter needles are ASCII: any byte decoding keeps them
    active = [rule for rule in rules if _wants(rule, probe, settings)]
    if not active or is_vendored(source):  # a vendored kit is output, never input
        return FileResult(path, Status.UNCHANGED), None, 0
    if b"\0" in source:
        return FileResult(path, Status.FAILED, reason="binary file (contains NUL bytes)"), None, 1
    syntax = SourceSyntax(source)
    active = [rule for rule in active if _admits(rule, syntax, settings)]
    if not active:
        return FileResult(path, Status.UNCHANGED), None, 1
    try:
        sliced = _slice(active, syntax, source, settings) if slicing else None
    except Exception:  # a speed-up never fails a file: it goes through whole instead
        sliced = None
    try:
        module = cst.parse_module(sliced.source if sliced is not None else source)
        text = source.decode(module.encoding)
    except (cst.ParserSyntaxError, SyntaxError, UnicodeError, LookupError, RecursionError) as exc:
        if sliced is not None:
            return _transform(source, path, rules, settings, slicing=False, repo=repo,
                              dotted=dotted, test=test)
        return FileResult(path, Status.FAILED, reason=_reason_for_parse_error(exc)), None, 2
    parsed_text = sliced.source.decode(module.encoding) if sliced is not None else text
    syntax.tree = module
    state = FileState(path, test=test)
    if sliced is not None:
        state.sliced_lines, state.left_out_uses = sliced.original_line, sliced.uses_name
    if SUPPRESSION_MARK in probe:
        state.suppressions = parse_suppressions(text)
    scratch: dict[str, Any] = {FILE_STATE: state, SETTINGS: settings, SYNTAX: syntax}
    if repo is not None:
        scratch[REPO] = repo
    if dotted is not None:
        scratch[MODULE] = dotted
    context = CodemodContext(filename=path, scratch=scratch)
    current: Rule | None = None
    try:
        findings: list[Finding] = []
        sites: list[Site] = []
        visited: list[Any] = []  # every codemod instance: its own sites are read at the end
        wrapper = Metadata(module, unsafe_skip_copy=True)
        checks = [rule for rule in active if not is_codemod(rule)]
        if checks:
            wrapper.resolve_many(
                {dep for rule in checks for dep in rule.get_inherited_dependencies()}
            )
            check_context = replace(context, wrapper=wrapper)
            for current in checks:
                # read-only: walked without LibCST's rebuild of every node it enters
                check = _read_only(current)(check_context, settings.options.get(current.ID))
                module.visit(as_visitor(check))
                sites.extend(check.sites)
                findings.extend(
                    finding for finding in check.findings
                    if not state.suppressed(finding.rule_id, finding.line, finding.end_line or 0)
                )
        tree = module
        same_tree: list[CodemodVisitor] = []  # codemods that visited ``tree``: placed at once
        for current in active:
            if not is_codemod(current):
                continue
            if tree is not wrapper.module:
                wrapper = Metadata(tree, unsafe_skip_copy=True)
                state.lines = None
                state.pending_lines = lambda changed=tree: line_map(parsed_text, changed.code)
            applies = current.FIX_SAFETY == "safe" or settings.unsafe_fixes
            scheduled = list(context.scratch.get(AddImportsVisitor.CONTEXT_KEY, []))
            removals = list(context.scratch.get(RemoveImportsVisitor.CONTEXT_KEY, []))
            codemod = current(replace(context, wrapper=wrapper), settings.options.get(current.ID))
            with codemod.resolve(wrapper):
                rewritten = tree.visit(as_visitor(codemod))
            visited.append(codemod)
            if applies:
                same_tree.append(codemod)
                # a visit that records no change keeps the tree, and with it the metadata
                # already resolved (LibCST rebuilds every node even when nothing changed)
                if codemod.changed_something:
                    findings.extend(_placed(same_tree))  # against the tree they visited
                    same_tree = []
                    tree = rewritten
            else:  # report what it would do; keep neither its tree nor its imports
                context.scratch[AddImportsVisitor.CONTEXT_KEY] = scheduled
                context.scratch[RemoveImportsVisitor.CONTEXT_KEY] = removals
                findings.extend(
                    replace(f, kind=Kind.FINDING, message=f.message + UNSAFE_NOTE)
                    if f.kind is Kind.CHANGE else f
                    for f in codemod.findings
                )
        current = None
        findings.extend(_placed(same_tree))
        sites.extend(site for codemod in visited for site in codemod.sites)
        if tree is not module and context.scratch.get(AddImportsVisitor.CONTEXT_KEY):
            imports_added = tree.visit(TopImportsAdder(context))
            tree = place_in_sections(tree, imports_added, settings.first_party,
                                     settings.import_sorting)
        requested = context.scratch.get(RemoveImportsVisitor.CONTEXT_KEY)
        if tree is not module and requested:
            # removes only imports nothing references any more, left-out code included
            tree = remove_unused_imports(tree, requested, context,
                                         left_out_uses=state.left_out_uses)
    except Exception as exc:  # a rule crashed on this file: report it, leave the file alone
        if sliced is not None:  # (as it crashes on the whole file: stubs must not be why)
            return _transform(source, path, rules, settings, slicing=False, repo=repo,
                              dotted=dotted, test=test)
        where = f"rule {current.ID}" if current is not None else "the engine"
        failure = FileResult(path, Status.FAILED, reason=f"internal error in {where}: {exc!r}")
        return failure, None, 2
    code = tree.code if tree is not module else text  # generated once: bytes are its encoding
    updated = code.encode(tree.encoding) if tree is not module else source
    if sliced is not None and tree is not module:
        restored = sliced.restore(updated)
        if restored is None:
            return _transform(source, path, rules, settings, slicing=False, repo=repo,
                              dotted=dotted, test=test)
        updated, code = restored, restored.decode(tree.encoding)
    limit = settings.import_sorting.line_length
    if limit is not None and updated != source:
        fitted = fit_changed_lines(text, code, limit)
        if fitted != code:
            code, updated = fitted, fitted.encode(tree.encoding)
    ordered = tuple(sorted(findings))
    table = tuple(sorted({*sites, *sites_of(ordered, active)}))
    if updated == source:
        return FileResult(path, Status.UNCHANGED, ordered, sites=table), None, 2
    changed = FileResult(path, Status.CHANGED, ordered, original=text, updated=code,
                         sites=table)
    return changed, updated, 2


# The run's repo model, in this process: set before the pool starts, and in each worker by
# its initializer (inherited for free where workers fork), so tasks never carry it.
_REPO: RepoModel | None = None


def _start_worker(repo: RepoModel | None) -> None:
    """A worker process's initializer: the run's model, and fewer collections."""
    global _REPO
    _REPO = repo
    _collect_less()


def uses_repo(rule: Rule) -> bool:
    """Whether the rule reads the repo model (``USES_REPO``): only then is one built."""
    return rule.USES_REPO


def build_repo(targets: Sequence[Target], jobs: int = 1) -> RepoModel:
    """The model of the run's Python files, rooted where their configuration is.

    The files are parsed on ``jobs`` processes of their own when there are many
    (``PARALLEL_MODEL`` or more): the run's pool cannot do it, since its workers receive the
    finished model when they start. On a quiet 2-core machine, two processes took the model
    of site-packages (3,834 modelled files) from 11.8 s to 7.3 s and HuleEdu's (769) from
    1.1 s to 0.9 s, the facts coming back pickled included.
    """
    files = [t.path for t in targets if t.python and not t.skip_reason]
    config = next((t.config for t in targets if t.config.source is not None),
                  targets[0].config if targets else None)
    if config is not None and all(f.is_relative_to(config.root) for f in files):
        root = config.root
    else:
        root = Path(os.path.commonpath([str(f.parent) for f in files])) if files else Path()
    workers = _worker_count(jobs, len(files) // PARALLEL_MODEL)
    if workers < 2:
        return RepoModel.build(root, files, config)
    with ProcessPoolExecutor(workers) as pool:
        def mapper(extract: Callable[[Any], Any], jobs: list[Any]) -> Iterable[Any]:
            return pool.map(extract, jobs, chunksize=max(1, len(jobs) // (workers * 16)))
        return RepoModel.build(root, files, config, mapper=mapper)


PARALLEL_MODEL = 256  # files per process, below which the model is built in this process


@dataclass(frozen=True)
class _Task:
    path: Path
    display: str
    python: bool
    rules: tuple[Rule, ...]
    settings: Settings
    write: bool
    size: int = 0  # bytes, when read ahead: the largest files go to the workers first
    test: bool = False  # test code (Target.test)
    # why its sites are out of scope (Options.all_sites: a test or excluded file retrofit skips)
    out_of_scope: str | None = None


def _read(task: _Task) -> bytes | FileResult:
    try:
        return task.path.read_bytes()
    except OSError as exc:
        return FileResult(task.display, Status.FAILED, reason=f"cannot read: {exc.strerror or exc}")


def _prefilter(task: _Task) -> int | FileResult:
    """The file's size when some rule's text prefilter wants it; else its final result."""
    data = _read(task)
    if isinstance(data, FileResult):
        return data
    probe = data.decode("latin-1")
    if not any(_wants(rule, probe, task.settings) for rule in task.rules):
        return FileResult(task.display, Status.UNCHANGED)
    return len(data)


def _run_task(task: _Task) -> tuple[FileResult, int]:
    """One file, start to finish (in a worker process or in-process), and the gates it passed."""
    data = _read(task)
    if isinstance(data, FileResult):
        return data, 0
    if not task.python:
        text = data.decode("utf-8", errors="replace")
        findings = [
            finding
            for rule in task.rules
            if rule.reads_config_file(task.path.name)
            for finding in rule.check_config_file(
                task.display, text, task.settings.options.get(rule.ID)
            )
        ]
        return FileResult(task.display, Status.UNCHANGED, tuple(sorted(findings))), 0
    repo = _REPO
    module = repo.module_of(task.path) if repo is not None else None
    result, updated, passed = _transform(data, task.display, task.rules, task.settings,
                                         repo=repo, dotted=module, test=task.test)
    if task.out_of_scope is not None:  # visited for the site table only: nothing to change
        kept = tuple(f for f in result.findings if f.kind is Kind.FINDING)
        status = Status.FAILED if result.status is Status.FAILED else Status.UNCHANGED
        return replace(result, status=status, findings=kept, original=None, updated=None,
                       sites=out_of_scope(result.sites, task.out_of_scope)), passed
    if updated is not None and task.write:
        try:
            atomic_write(task.path, updated)
        except OSError as exc:
            return replace(result, status=Status.FAILED,
                           reason=f"cannot write: {exc.strerror or exc}"), passed
        result = replace(result, sites=fixed(result.sites))
    return result, passed



def _check_ids(ids: Iterable[str], known: set[str], where: str) -> None:
    for rule_id in ids:
        if rule_id not in known:
            raise ConfigError(f"unknown rule {rule_id!r} in {where}; run 'scaffold rules' for ids")


def _plan(
    config: Config, rules: Sequence[Rule], options: Options, known_ids: set[str], *,
    test: bool = False, generated: bool = False,
) -> tuple[tuple[Rule, ...], Settings]:
    """The rules that run under ``config`` (in the given order) and the settings they see,
    for its test files (``test``: codemods only when include-tests asks), the tests retrofit
    generated (``generated``: its own output, never rewritten) or its others."""
    source = f"[tool.scaffold] of {config.where}"
    _check_ids(config.select, known_ids, f"'select' in {source}")
    _check_ids(config.ignore, known_ids, f"'ignore' in {source}")
    _check_ids(config.options, known_ids, f"'options' in {source}")
    select = set(options.select or config.select)
    ignore = set(options.ignore) | set(config.ignore)
    include_tests = (config.include_tests if options.include_tests is None
                     else options.include_tests)
    chosen = tuple(
        rule for rule in rules
        if (not select or rule.ID in select) and rule.ID not in ignore
        and not ((generated or (test and not include_tests)) and is_codemod(rule))
    )
    options_by_id: dict[str, dict[str, Any]] = {}
    for rule in rules:
        configured = config.options.get(rule.ID)
        if configured is None:
            continue
        try:
            rule.resolve_options(configured)
        except ValueError as exc:
            raise ConfigError(f"{exc} in {source}") from exc
        options_by_id[rule.ID] = dict(configured)
    unsafe = config.unsafe_fixes if options.unsafe_fixes is None else options.unsafe_fixes
    settings = Settings(
        kit=config.kit,
        helper_module=config.helper_module,
        service_name=config.service_name,
        kafka_producers=config.kafka_producers,
        import_sorting=config.import_sorting,
        line_length=config.line_length,
        unsafe_fixes=unsafe,
        options=options_by_id,
    )
    return chosen, settings


TEST_FILE_SCOPE = "test file: retrofit leaves test code alone (include-tests is off)"


def _out_of_scope(target: Target, options: Options) -> str | None:
    """Why the sites of ``target`` are out of scope, when ``Options.all_sites`` has codemods
    visit a file retrofit would leave alone: the config excludes it, or it is a test file
    (None: they are in scope, or not visited)."""
    if not options.all_sites or target.generated:
        return None
    if target.excluded:
        return f"excluded by 'exclude' in [tool.scaffold] of {target.config.where}"
    if not target.test:
        return None
    include = options.include_tests
    if include is None:
        include = target.config.include_tests
    return None if include else TEST_FILE_SCOPE


def _worker_count(jobs: int, tasks: int) -> int:
    cores = os.cpu_count() or 1
    return max(1, min(jobs or cores, tasks))


def run(
    paths: Sequence[str | os.PathLike[str]],
    rules: Sequence[Rule],
    options: Options = Options(),
    *,
    known_ids: Iterable[str] = (),
    on_progress: ProgressCallback | None = None,
    hooks: RunHooks | None = None,
) -> RunResult:
    """Discover the files under ``paths`` and run ``rules`` over them.

    ``rules`` are the command's rules in run order; ``known_ids`` are every rule id any
    command knows (a config's select may name checks and codemods alike). Without ``hooks``
    each file's kit is the configured one (``scaffold.api.run`` adds the planned kit and
    vendoring). Raises ConfigError for an unknown id or bad configuration, PathNotFound for a
    missing path.
    """
    rules = tuple(rules)
    own_ids = {rule.ID for rule in rules}
    known = set(known_ids) | own_ids
    _check_ids(options.select, own_ids, "--select")
    _check_ids(options.ignore, own_ids, "--ignore")

    def reads(name: str) -> bool:
        return any(rule.reads_config_file(name) for rule in rules)

    targets = discover(paths, wants_other_file=reads, excluded=options.all_sites)
    # files the config excludes are visited for their sites only: nothing else sees them
    in_scope = [target for target in targets if not target.excluded]
    if hooks is not None:
        hooks.started(in_scope)  # before anything is written
    plans: dict[tuple[int, bool, bool], tuple[tuple[Rule, ...], Settings]] = {}
    results: list[FileResult] = []
    python: list[tuple[_Task, Target]] = []
    tasks: list[_Task] = []  # what reaches _run_task: files some rule wants, config files

    def with_kit(task: _Task, target: Target) -> _Task:
        # asked only of files that get this far: the prefilter never reads the kit
        # ruff reads the configuration nearest to each file: so do import placement and the
        # line length the codemods and the layout pass keep to
        sorting = ruff_settings_for(target.path, task.settings.import_sorting)
        kit = hooks.kit_for(target) if hooks is not None else task.settings.kit
        return replace(task, settings=replace(
            task.settings, kit=kit, import_sorting=sorting,
            line_length=sorting.line_length or task.settings.line_length))

    for target in targets:
        if target.skip_reason:
            results.append(FileResult(target.display, Status.SKIPPED, reason=target.skip_reason))
            continue
        scope = _out_of_scope(target, options)
        key = (id(target.config), target.test and scope is None, target.generated)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = _plan(target.config, rules, options, known, test=key[1],
                                      generated=target.generated)
        chosen, settings = plan
        if not chosen:  # a test file when only codemods run: nothing reads it
            if target.python:
                results.append(FileResult(target.display, Status.UNCHANGED))
            continue
        task = _Task(target.path, target.display, target.python, chosen, settings,
                     options.write and scope is None, test=target.test, out_of_scope=scope)
        if target.python:
            python.append((task, target))
        elif any(rule.reads_config_file(target.path.name) for rule in chosen):
            tasks.append(with_kit(task, target))
    global _REPO
    wanted = any(uses_repo(rule) for chosen, _ in plans.values() for rule in chosen)
    passed = [0, 0, 0]
    parsed = []
    try:
        with _fewer_collections():  # the model's facts are kept: each collection walks them
            _REPO = (build_repo([t for t in targets if not t.excluded], options.jobs)
                     if wanted else None)
        with _fewer_collections(), _Pool(options.jobs, _REPO) as pool:
            # the prefilter first, so files no rule can match never reach _run_task
            outcomes = pool.prefilter([task for task, _ in python])
            for (task, target), outcome in zip(python, outcomes, strict=True):
                if isinstance(outcome, FileResult):
                    results.append(outcome)
                else:
                    tasks.append(replace(with_kit(task, target), size=outcome))
            for result, gates_passed in _collect(pool.transform(tasks), len(tasks), on_progress):
                results.append(result)
                passed[gates_passed] += 1
                if gates_passed == 2:
                    parsed.append(result.path)
    finally:
        _REPO = None
    if hooks is not None:
        results.extend(hooks.finished(tuple(results), in_scope))
    results.sort(key=lambda result: result.path)
    gates = GateCounts(len(python), passed[1] + passed[2], passed[2], tuple(sorted(parsed)))
    return RunResult(tuple(results), rules, options, gates,
                     paths=tuple(os.fspath(path) for path in paths))


# Parsing allocates millions of objects that live as long as their file's tree: at the
# default threshold (700) the collector runs thousands of times per file for nothing it can
# free. A higher first-generation threshold cuts the transforms' time by about a seventh.
_GC_THRESHOLD = 50_000


def _collect_less() -> None:
    """Raise the collector's first threshold (a worker process's initializer)."""
    first, *older = gc.get_threshold()
    gc.set_threshold(max(first, _GC_THRESHOLD), *older)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """``_collect_less`` for the length of a run, in this process; then as it was."""
    before = gc.get_threshold()
    _collect_less()
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Pool:
    """In-process, or a process pool shared by the prefilter and the transforms.

    The pool starts on first use, so a run whose files all stay in-process starts no worker
    (where processes are spawned, not forked, each re-imports scaffold). The prefilter (a
    read and a few substring searches per file) is worth shipping to workers only for many
    files; it goes in large chunks, and comes back in input order. Transforms go largest
    first, in small chunks, so a few large files do not leave the other workers idle at the
    end; they come back in that order (the caller sorts the results).
    """

    PARALLEL_PREFILTER = 256  # files; fewer are read and searched faster than shipped

    def __init__(self, jobs: int, repo: RepoModel | None = None) -> None:
        self._jobs = jobs
        self._repo = repo
        self._pool: ProcessPoolExecutor | None = None
        self._workers = 1

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _started(self, tasks: int) -> ProcessPoolExecutor | None:
        if self._pool is None:
            self._workers = _worker_count(self._jobs, tasks)
            if self._workers > 1:
                self._pool = ProcessPoolExecutor(self._workers, initializer=_start_worker,
                                                 initargs=(self._repo,))
        return self._pool

    def prefilter(self, tasks: list[_Task]) -> Iterator[int | FileResult]:
        pool = self._started(len(tasks)) if len(tasks) >= self.PARALLEL_PREFILTER else None
        if pool is None:
            return map(_prefilter, tasks)
        return pool.map(_prefilter, tasks, chunksize=max(1, len(tasks) // (self._workers * 4)))

    def transform(self, tasks: list[_Task]) -> Iterator[tuple[FileResult, int]]:
        pool = self._started(len(tasks)) if len(tasks) > 1 else None
        if pool is None:
            return map(_run_task, tasks)
        largest_first = sorted(tasks, key=lambda task: -task.size)
        chunk = max(1, min(8, len(tasks) // (self._workers * 32)))
        return pool.map(_run_task, largest_first, chunksize=chunk)


def _collect(
    outcomes: Iterable[tuple[FileResult, int]], total: int, on_progress: ProgressCallback | None
) -> list[tuple[FileResult, int]]:
    done: list[tuple[FileResult, int]] = []
    for outcome in outcomes:
        done.append(outcome)
        if on_progress:
            on_progress(len(done), total)
    return done
