"""The ``Codemod`` base class: a LibCST transformer that rewrites one tracing mistake.

A codemod is one module in ``scaffold.codemods`` holding one ``Codemod`` subclass. The module
name is the id (``token_finally`` -> ``token-finally``) and the first line of the module
docstring is the summary; the rest of that docstring (What it does / Why / Example / Fix
safety) is the help text ``scaffold rules`` and SARIF show. The engine builds one instance per
file, resolves only the metadata the class declares, and runs the codemods in
``scaffold.codemods.ORDER`` on one parsed tree.

Inside a visit, a codemod
- calls ``record_change(original_node, message)`` before it rewrites a site, and leaves the
  site alone when that returns False (a ``# scaffold: ignore[ID]`` comment covers it);
- calls ``report(node, message)`` for a site it will not rewrite, saying why;
- calls ``record_site(node, SiteStatus.CORRECT)`` where it recognises a site that already
  carries the context (or ``SKIPPED`` with a reason, for one it leaves out of scope): with
  its changes and findings (whose sites are ``fixable`` and ``reported``), these are the rows
  of ``scaffold report``, of the rule's ``SITE_KIND``;
- asks ``name_for(module, obj)`` for the local name of something it needs imported: an
  existing import (or alias) is reused, otherwise one is scheduled with
  ``AddImportsVisitor`` and added once by the engine after the last codemod.

Speed: a file reaches a codemod only through its ``PREFILTER`` (substrings, or a sharper
``wants``) and then its ``GATE`` (a ``SyntaxGate`` checked on the stdlib ``ast``, before LibCST
parses anything). A codemod whose sites, and whatever leads to them, always name one of its
gate's names or words, or one of its ``SLICE_WORDS``, and which follows values only as
``scaffold.engine.slicing`` does, declares them: the engine then parses only the functions
and classes that matter. Declared metadata is resolved when first read, so a codemod that
records
nothing pays for no positions; ask ``refers_to(node, names)`` rather than comparing
``qualified_names`` yourself: it answers without scope analysis whenever the node's own name
cannot end like any of ``names``.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import libcst as cst
from libcst.codemod import CodemodContext, ContextAwareTransformer
from libcst.codemod.visitors import AddImportsVisitor, ImportItem
from libcst.helpers import get_full_name_for_node
from libcst.metadata import (
    CodeRange,
    MetadataWrapper,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from scaffold.engine.fast import FastTransformer, FastVisitor, OnDemand, place_sites
from scaffold.engine.gates import SyntaxIndex
from scaffold.engine.model import Finding, Kind, Settings, Site, SiteKind, SiteStatus
from scaffold.engine.rule import RuleMetadata
from scaffold.engine.rule import dotted_name as dotted_name  # codemods import it from here
from scaffold.engine.sites import FILE_STATE, SETTINGS, SYNTAX, FileState, module_of, repo_of
from scaffold.repo import RepoModel

SAFE = "safe"
UNSAFE = "unsafe"


class Codemod(RuleMetadata, ContextAwareTransformer, FastTransformer):
    """Base of every codemod; subclasses set the class attributes and rewrite in ``leave_*``.

    ``ID``, ``SUMMARY``, ``PREFILTER``, ``GATE``, ``SLICE_WORDS`` (site words: identifiers
    that keep a function or class naming them, beside the gate's names and words, see
    ``scaffold.engine.slicing``), ``USES_REPO``, ``OPTIONS`` and the text gates are
    ``scaffold.engine.rule.RuleMetadata``'s, shared with checks.
    """

    KIND = "codemod"
    FIX_SAFETY: ClassVar[str] = SAFE  # "unsafe": applied only with --unsafe-fixes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.FIX_SAFETY not in (SAFE, UNSAFE):
            raise TypeError(f"{cls.__name__}.FIX_SAFETY must be 'safe' or 'unsafe'")
        if (QualifiedNameProvider in cls.METADATA_DEPENDENCIES
                and ScopeProvider not in cls.METADATA_DEPENDENCIES):
            # qualified_names() asks the scope per node instead of naming every node up front
            cls.METADATA_DEPENDENCIES = (*cls.METADATA_DEPENDENCIES, ScopeProvider)

    def __init__(self, context: CodemodContext, options: Mapping[str, Any] | None = None) -> None:
        self.init_codemod(context)  # what ContextAwareTransformer.__init__ does, faster
        self.options = self.resolve_options(options)
        self._findings: list[Finding] = []
        # sites recorded in a file without suppression comments: positioned after the visit,
        # all at once (LibCST's PositionProvider would position every node of the module)
        self._unplaced: list[tuple[cst.CSTNode, str, Kind]] = []
        self._unplaced_in: cst.Module | None = None
        self._sites: list[Site] = []  # recorded with record_site (and suppressed sites)
        self._unplaced_sites: list[tuple[cst.CSTNode, SiteKind, SiteStatus, str]] = []
        self._imports: dict[str, str] | None = None
        self._names: set[str] | None = None
        self.fast_dispatch()

    @contextmanager
    def resolve(self, wrapper: MetadataWrapper) -> Iterator[None]:
        """Declared metadata, each provider resolved on ``wrapper`` when first read."""
        self.metadata = OnDemand(wrapper, self.get_inherited_dependencies())
        try:
            yield
        finally:
            self.metadata = {}

    # -- what the engine handed this file --

    @property
    def path(self) -> str:
        return self.context.filename or "<string>"

    @property
    def settings(self) -> Settings:
        return self.context.scratch.get(SETTINGS) or Settings()

    @property
    def repo(self) -> RepoModel:
        """The run's repo model (``scaffold.repo``); without a run, a model of this file."""
        return repo_of(self.context.scratch, self.path, self.settings.helper_module)

    @property
    def module_name(self) -> str | None:
        """The dotted module this file is in ``repo`` (None: outside every import root)."""
        return module_of(self.context.scratch, self.path, self.settings.helper_module)

    @property
    def in_test_file(self) -> bool:
        """Whether the engine judged this file test code (``discovery.is_test_file``)."""
        return self._state.test

    @property
    def _state(self) -> FileState:
        state = self.context.scratch.get(FILE_STATE)
        if state is None:
            state = self.context.scratch[FILE_STATE] = FileState(self.path)
        return state

    # -- recording sites --

    def record_change(self, node: cst.CSTNode, message: str) -> bool:
        """Record the rewrite of ``node`` (an original node); False means: leave it alone."""
        return self._record(node, message, Kind.CHANGE)

    def report(self, node: cst.CSTNode, message: str) -> None:
        """Record a site this codemod will not rewrite, and why."""
        self._record(node, message, Kind.FINDING)

    def record_correct(self, node: cst.CSTNode, note: str = "") -> None:
        """Record a site that already carries the context (``note``: how)."""
        self.record_site(node, SiteStatus.CORRECT, note)

    def record_skipped(self, node: cst.CSTNode, reason: str) -> None:
        """Record a site seen but left out of scope, and why."""
        self.record_site(node, SiteStatus.SKIPPED, reason)

    def record_site(self, node: cst.CSTNode, status: SiteStatus, reason: str = "", *,
                    kind: SiteKind | None = None) -> None:
        """Record a site that is neither changed nor reported here: ``CORRECT`` (it already
        carries the context) or ``SKIPPED`` (out of this rule's scope, ``reason`` says why).
        ``kind`` defaults to the rule's ``SITE_KIND``; without either nothing is recorded."""
        declared = kind or self.SITE_KIND
        if declared is None:
            return
        kind = SiteKind(declared)
        if not self._state.suppressions:
            self._unplaced_sites.append((node, kind, status, reason))
            self._unplaced_in = self.module
            return
        start = self.get_metadata(PositionProvider, node).start
        self._sites.append(self._site(start.line, start.column, kind, status, reason))

    def file_line(self, node: cst.CSTNode) -> int:
        """The line ``node`` starts on in the file on disk, as the repo model numbers lines:
        the tree visited may be a slice, or carry an earlier codemod's rewrite."""
        return self._state.original_line(self.get_metadata(PositionProvider, node).start.line)

    @property
    def sites(self) -> list[Site]:
        """The sites recorded with ``record_site`` (and those a suppression comment silenced),
        positioned; the sites of changes and findings come from ``findings``
        (``scaffold.engine.sitetable.sites_of``)."""
        place_sites([self])
        return self._sites

    def _site(self, line: int, column: int, kind: SiteKind, status: SiteStatus,
              reason: str) -> Site:
        return Site(self.path, self._state.original_line(line), column + 1, kind, self.ID,
                    status, reason)

    @property
    def findings(self) -> list[Finding]:
        """Every site recorded so far, in the order recorded (read it after the visit)."""
        place_sites([self])
        return self._findings

    @property
    def unplaced(self) -> tuple[cst.Module | None, set[cst.CSTNode]]:
        """The tree visited and the nodes of sites not positioned yet (``place_sites``)."""
        return self._unplaced_in, ({node for node, _, _ in self._unplaced}
                                   | {site[0] for site in self._unplaced_sites})

    def place(self, ranges: Mapping[cst.CSTNode, CodeRange]) -> None:
        for node, message, kind in self._unplaced:
            finding = self._finding(node, ranges[node], message, kind)
            assert finding is not None  # recorded unplaced: the file has no suppressions
            self._findings.append(finding)
        self._unplaced = []
        for node, site_kind, status, reason in self._unplaced_sites:
            start = ranges[node].start
            self._sites.append(self._site(start.line, start.column, site_kind, status, reason))
        self._unplaced_sites = []

    @property
    def changed_something(self) -> bool:
        """Whether the visit recorded a rewrite (answered without positioning any site)."""
        return any(kind is Kind.CHANGE for _, _, kind in self._unplaced) or any(
            finding.kind is Kind.CHANGE for finding in self._findings)

    def _record(self, node: cst.CSTNode, message: str, kind: Kind) -> bool:
        if not self._state.suppressions:  # nothing can silence it: place it later
            self._unplaced.append((node, message, kind))
            self._unplaced_in = self.module
            return True
        finding = self._finding(node, self.get_metadata(PositionProvider, node), message, kind)
        if finding is None:
            return False
        self._findings.append(finding)
        return True

    def _finding(self, node: cst.CSTNode, where: CodeRange, message: str,
                 kind: Kind) -> Finding | None:
        """The finding at ``where`` (lines as in the file on disk); None if suppressed."""
        state = self._state
        start, end = state.original_line(where.start.line), state.original_line(where.end.line)
        lines = (start,) if isinstance(node, cst.BaseCompoundStatement) else (start, end)
        if state.suppressed(self.ID, *lines):
            if self.SITE_KIND is not None:
                self._sites.append(Site(self.path, start, where.start.column + 1,
                                        SiteKind(self.SITE_KIND), self.ID, SiteStatus.SKIPPED,
                                        f"suppressed by '# scaffold: ignore': {message}"))
            return None
        return Finding(
            path=self.path,
            line=start,
            column=where.start.column + 1,
            rule_id=self.ID,
            message=message,
            kind=kind,
            end_line=end,
            end_column=where.end.column + 1,
        )

    # -- names and imports --

    def qualified_names(self, node: cst.CSTNode) -> set[str]:
        """Qualified names of ``node`` (needs QualifiedNameProvider in METADATA_DEPENDENCIES).

        What QualifiedNameProvider would say, asked of the node's scope directly.
        """
        scope = self.get_metadata(ScopeProvider, node, None)
        return {q.name for q in scope.get_qualified_names_for(node)} if scope else set()

    def _imported_name(self, node: cst.CSTNode) -> str | None:
        if not isinstance(node, (cst.Name, cst.Attribute)):
            return None
        index = self._original_index()
        full = dotted_name(node) if index is not None else None
        if index is None or full is None:
            return None
        head, dot, rest = full.partition(".")
        target = index.import_only.get(head)
        if target is None or (not dot and head in index.early_use):
            return None  # a bare name read before its import at module level: LibCST's call
        return f"{target}.{rest}" if dot else target

    def _original_index(self) -> SyntaxIndex | None:
        """The file's stdlib index, while the tree is still the one parsed from the file."""
        syntax = self.context.scratch.get(SYNTAX)
        if syntax is None or syntax.tree is not self.module:
            return None
        return syntax.index

    def refers_to(self, node: cst.BaseExpression, names: Collection[str]) -> bool:
        """Whether an evaluated expression (a callee, a base, an annotation, a value: not a
        name inside an import or after a dot) has one of ``names`` among its qualified names,
        exactly as ``qualified_names`` says, and without scope analysis where it can:

        - no when the node's name cannot end like any of ``names`` (``may_end_in``);
        - a name or chain whose head only plain imports of one thing bind (``import
          threading``, then ``threading.Thread``) is what that import says.
        """
        if not names or not self.may_end_in(node, {name.rsplit(".", 1)[-1] for name in names}):
            return False
        imported = self._imported_name(node)
        if imported is not None:
            return imported in names
        return not self.qualified_names(node).isdisjoint(names)

    def may_end_in(self, node: cst.CSTNode, endings: Collection[str]) -> bool:
        """False only when no qualified name of ``node`` can end in one of ``endings``.

        Decided without scope analysis: a qualified name ends in the node's own last name
        (``x.y.Thread`` -> ``Thread``), in the last name of what a bare imported name imports
        (``from threading import Thread as T``: ``T`` -> ``Thread``), or, for a builtin, in
        its head (``print.x`` -> ``builtins.print``). The imports come from the stdlib index of
        the file as read; that holds for a tree earlier codemods changed too, because codemods
        never add an import themselves (they are scheduled, and added after the last one):
        a changed tree imports the same or less.
        """
        syntax = self.context.scratch.get(SYNTAX)
        index = syntax.index if syntax is not None else None
        full = get_full_name_for_node(node) if index is not None else None
        if index is None or full is None:
            return True
        head, _, rest = full.partition(".")
        possible = {full.rsplit(".", 1)[-1]}
        if rest and hasattr(builtins, head):
            possible.add(head)
        if not rest:
            possible.update(target.rsplit(".", 1)[-1] for target in index.imports.get(full, ()))
        return not possible.isdisjoint(endings)

    def name_for(
        self, module: str, obj: str | None = None, *, alias: str | None = None,
        always_alias: bool = False,
    ) -> str:
        """The expression naming ``module`` (or ``module.obj``) here, importing it if needed.

        Reuses a module-level import or alias already in the file; otherwise schedules
        ``import module`` / ``from module import obj`` (as ``alias`` when the plain name is
        already taken in this file, or always with ``always_alias``) for the engine to add
        after the last codemod.
        """
        imports = self._module_imports()
        wanted = f"{module}.{obj}" if obj else module
        if wanted in imports:
            return imports[wanted]
        if obj and module in imports:
            return f"{imports[module]}.{obj}"
        local = obj or module.split(".")[0]
        if always_alias or local in self._bound_names() or self._state.left_out_uses(local):
            local = alias or f"_{local}"
            self._schedule(module, obj, local)
            return local
        self._schedule(module, obj, None)
        return obj or module

    def _schedule(self, module: str, obj: str | None, asname: str | None) -> None:
        # AddImportsVisitor merges plain imports but would repeat an aliased one per request
        wanted = ImportItem(module, obj, asname)
        if wanted not in AddImportsVisitor._get_imports_from_context(self.context):
            AddImportsVisitor.add_needed_import(self.context, module, obj, asname=asname)

    def _module_imports(self) -> dict[str, str]:
        """Dotted target -> local expression, for every top-level import of the module."""
        if self._imports is None:
            self._imports = {}
            for statement in self.module.body:
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue
                for small in statement.body:
                    if isinstance(small, cst.Import):
                        for name in small.names:
                            dotted = _dotted(name.name)
                            if name.asname is not None:
                                self._imports[dotted] = _dotted(name.asname.name)
                            else:
                                parts = dotted.split(".")
                                for end in range(1, len(parts) + 1):
                                    prefix = ".".join(parts[:end])
                                    self._imports.setdefault(prefix, prefix)
                    elif (
                        isinstance(small, cst.ImportFrom)
                        and not small.relative
                        and small.module is not None
                        and not isinstance(small.names, cst.ImportStar)
                    ):
                        base = _dotted(small.module)
                        for name in small.names:
                            local = _dotted(name.asname.name) if name.asname else _dotted(name.name)
                            self._imports[f"{base}.{_dotted(name.name)}"] = local
        return self._imports

    def _bound_names(self) -> set[str]:
        """Every identifier used as a plain name anywhere in the module (a safe over-estimate)."""
        if self._names is None:
            collect = _PlainNames()
            self.module.visit(collect)
            self._names = collect.names
        return self._names


class _PlainNames(FastVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)  # the attribute's own name binds nothing
        return False


def _dotted(node: cst.CSTNode) -> str:
    name = dotted_name(node)
    if name is None:
        raise ValueError(f"not a dotted name: {node!r}")
    return name
