"""The engine's shortcuts give LibCST's answers: metadata, qualified names, visitor dispatch."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.codemod import CodemodContext, ContextAwareTransformer
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import (
    ExpressionContextProvider,
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
    ScopeProvider,
)

from scaffold.codemods.base import Codemod
from scaffold.engine import Settings, process_source
from scaffold.engine.fast.dispatch import FastTransformer, FastVisitor, without_rebuild
from scaffold.engine.fast.imports import TopImportsAdder
from scaffold.engine.fast.metadata import Metadata
from scaffold.engine.fast.positions import positions

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [*ROOT.glob("tests/fixtures/*/*/before.py"), *ROOT.glob("examples/legacy_service/*/*.py"),
     ROOT / "scaffold" / "codemods" / "thread_context.py"]
)
PROBES = frozenset({
    "threading.Thread", "threading.Timer", "concurrent.futures.ThreadPoolExecutor",
    "opentelemetry.context.attach", "opentelemetry.context.detach", "aiokafka.AIOKafkaProducer",
    "quart.Quart", "httpx.AsyncClient", "typing.Optional", "builtins.print",
})


def _ids(paths):
    return [path.relative_to(ROOT).as_posix() for path in paths]


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_metadata_resolves_what_libcst_resolves(path):
    module = cst.parse_module(path.read_bytes())
    ours, theirs = Metadata(module, unsafe_skip_copy=True), MetadataWrapper(
        module, unsafe_skip_copy=True)
    for provider in (PositionProvider, ExpressionContextProvider, ParentNodeProvider):
        assert dict(ours.resolve(provider)) == dict(theirs.resolve(provider)), provider
    names = ours.resolve(QualifiedNameProvider)
    expected = theirs.resolve(QualifiedNameProvider)
    scopes = ours.resolve(ScopeProvider)
    assert names.keys() == expected.keys()
    for node, value in expected.items():
        assert _value(names[node]) == _value(value)
        scope = scopes.get(node)
        assert (set(scope.get_qualified_names_for(node)) if scope else set()) == _value(value)


def _value(value):
    return set(value() if callable(value) else value)


class _Probe(Codemod):
    """Asks refers_to about every evaluated expression, as codemods do, next to the scope."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider,)
    mismatches: list[str] = []
    asked = 0

    def _check(self, node: cst.BaseExpression) -> None:
        scope = self.get_metadata(ScopeProvider, node, None)  # what LibCST itself says
        names = {q.name for q in scope.get_qualified_names_for(node)} if scope else set()
        if self.qualified_names(node) != names:
            type(self).mismatches.append(f"{self.path}: {self.qualified_names(node)} {names}")
        for probe in PROBES | names:
            type(self).asked += 1
            if self.refers_to(node, {probe}) != (probe in names):
                type(self).mismatches.append(f"{self.path}: {probe} {names}")

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node.func)
        self._check(node)

    def visit_Arg(self, node: cst.Arg) -> None:
        self._check(node.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._check(node.value)

    def visit_Annotation(self, node: cst.Annotation) -> None:
        self._check(node.annotation)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        for base in node.bases:
            self._check(base.value)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        self._check(node.value)


def test_qualified_names_and_refers_to_say_what_the_scope_says():
    _Probe.mismatches, _Probe.asked = [], 0
    for path in SOURCES:
        result = process_source(path.read_bytes(), path.name, [_Probe], Settings())
        assert result.reason is None, result.reason
    assert _Probe.asked > 1000
    assert _Probe.mismatches == []


class _Recording:
    """Logs every hook call; the attribute hooks too, which turn the fast path's skip off."""

    def visit_Call(self, node):
        self.log.append(("visit Call", node))

    def visit_Call_func(self, node):
        self.log.append(("visit Call.func", node))

    def leave_Call_args(self, node):
        self.log.append(("leave Call.args", node))

    def visit_FunctionDef(self, node):
        self.log.append(("visit FunctionDef", node))
        return False  # children skipped, on both paths


class _SlowTransformer(_Recording, ContextAwareTransformer):
    def leave_Name(self, original, updated):
        self.log.append(("leave Name", original))
        return updated.with_changes(value=updated.value.upper())


class _FastTransformer(_SlowTransformer, FastTransformer):
    pass


class _SlowVisitor(_Recording, cst.CSTVisitor):
    def leave_Name(self, node):
        self.log.append(("leave Name", node))


class _FastVisitor(_SlowVisitor, FastVisitor):
    pass


def test_fast_dispatch_calls_the_same_hooks_in_the_same_order():
    module = cst.parse_module((ROOT / "scaffold" / "codemods" / "thread_context.py").read_text())
    transformers = []
    for cls in (_SlowTransformer, _FastTransformer):
        transformer = cls(CodemodContext())
        transformer.log = []
        if cls is _FastTransformer:
            transformer.fast_dispatch()
            assert transformer._dispatch is not None and transformer._dispatch.attribute_hooks
        transformers.append((transformer, module.visit(transformer).code))
    (slow, slow_code), (fast, fast_code) = transformers
    assert fast.log == slow.log and fast_code == slow_code and fast_code != module.code
    visitors = [cls() for cls in (_SlowVisitor, _FastVisitor)]
    for visitor in visitors:
        visitor.log = []
        module.visit(visitor)
    assert visitors[0].log == visitors[1].log and visitors[0].log


IMPORT_REQUESTS = [
    ("contextvars", None, None), ("functools", None, None), ("typing", "Any", None),
    ("opentelemetry", "trace", "otel_trace"), ("concurrent.futures", "ThreadPoolExecutor", None),
    ("service.tracekit", "threads", "tracekit_threads"), ("__future__", "annotations", None),
]


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_top_imports_adder_adds_what_libcst_adds(path):
    module = cst.parse_module(path.read_bytes())
    for count in (1, 3, len(IMPORT_REQUESTS)):
        outputs = []
        for adder in (AddImportsVisitor, TopImportsAdder):
            context = CodemodContext()
            for module_name, obj, alias in IMPORT_REQUESTS[:count]:
                AddImportsVisitor.add_needed_import(context, module_name, obj, asname=alias)
            outputs.append(module.visit(adder(context)).code)
        assert outputs[0] == outputs[1]


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_positions_of_some_nodes_are_position_providers(path):
    module = cst.parse_module(path.read_bytes())
    expected = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    nodes = list(expected)
    sites = [node for node in nodes if isinstance(
        node, (cst.Call, cst.BaseCompoundStatement, cst.SimpleStatementLine, cst.Arg))]
    assert positions(module, sites) == {node: expected[node] for node in sites}
    for node in nodes[:: max(1, len(nodes) // 40)]:  # alone: nothing else recorded around it
        assert positions(module, [node]) == {node: expected[node]}


def _logging_methods() -> dict[str, object]:
    """visit_X/leave_X for every LibCST node type, each logging what it met."""
    methods: dict[str, object] = {}
    for kind in vars(cst).values():
        if isinstance(kind, type) and issubclass(kind, cst.CSTNode) and kind.__module__ != "abc":
            name = kind.__name__
            methods[f"visit_{name}"] = lambda self, node, name=name: self.log.append(
                ("visit", name, id(node)))
            methods[f"leave_{name}"] = lambda self, node, name=name: self.log.append(
                ("leave", name, id(node)))
    return methods


_LoggingSlow = type("_LoggingSlow", (cst.CSTVisitor,), _logging_methods())
_LoggingFast = type("_LoggingFast", (FastVisitor,), _logging_methods())


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_the_fast_walk_meets_every_node_in_libcsts_order(path):
    module = cst.parse_module(path.read_bytes())
    logs = []
    for cls in (_LoggingSlow, _LoggingFast):
        visitor = cls()
        visitor.log = []
        module.visit(visitor)
        logs.append(visitor.log)
    assert logs[0] == logs[1] and logs[0]


class _LikeScopeVisitor(_LoggingSlow):
    """Attribute hooks, and visits started by the visitor itself, as LibCST's ScopeVisitor."""

    def visit_ClassDef_bases(self, node):
        self.log.append(("visit bases", id(node)))

    def leave_Call_args(self, node):
        self.log.append(("leave args", id(node)))

    def visit_FunctionDef(self, node):
        self.log.append(("visit", "FunctionDef", id(node)))
        node.body.visit(self)  # the body first, the parameters after
        node.params.visit(self)
        return False

    def on_leave(self, original_node):
        self.log.append(("on_leave", id(original_node)))
        super().on_leave(original_node)


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_a_visitor_without_rebuild_calls_the_same_hooks_and_rebuilds_nothing(path, monkeypatch):
    module = cst.parse_module(path.read_bytes())
    logs = []
    for cls in (_LikeScopeVisitor, without_rebuild(_LikeScopeVisitor)):
        visitor = cls()
        visitor.log = []
        module.visit(visitor)
        logs.append(visitor.log)
    assert logs[0] == logs[1] and logs[0]

    def rebuilt(*args, **kwargs):
        raise AssertionError("a node was rebuilt")

    for kind in (cst.Name, cst.Call, cst.FunctionDef, cst.SimpleStatementLine):
        monkeypatch.setattr(kind, "_visit_and_replace_children", rebuilt)
    visitor = without_rebuild(_LikeScopeVisitor)()
    visitor.log = []
    module.visit(visitor)  # no AssertionError: nothing rebuilt
    assert visitor.log == logs[0]


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_the_marking_walk_meets_the_same_nodes_and_marks_whole_paths(path):
    module = cst.parse_module(path.read_bytes())
    plain, marking = _LoggingFast(), _LoggingFast()
    plain.log, marking.log = [], []
    marking.marked = set()
    module.visit(plain)
    module.visit(marking)
    assert marking.log == plain.log
    assert marking.marked == set() and not marking._path  # nothing asked to be marked

    class _MarkCalls(FastVisitor):
        def visit_Call(self, node):
            self.mark_path()

    marker = _MarkCalls()
    marker.marked = set()
    module.visit(marker)
    calls = [node for node in _all_nodes(module) if isinstance(node, cst.Call)]
    assert set(calls) <= marker.marked
    assert (module in marker.marked) == bool(calls)


def _all_nodes(module):
    found = []

    class _All(FastVisitor):
        def on_visit(self, node):
            found.append(node)
            return True

        def on_leave(self, original_node):
            pass

    module.visit(_All())
    return found


# real third-party code with thread work, none of it written here
_THREADED = [Path(module.__file__) for module in (
    __import__("anyio._backends._asyncio", fromlist=["_"]),
    __import__("redis.client", fromlist=["_"]),
    __import__("opentelemetry.sdk.trace", fromlist=["_"]),
    __import__("opentelemetry.sdk._logs._internal", fromlist=["_"]),
    __import__("aiohttp.client", fromlist=["_"]),
)]


@pytest.mark.parametrize("path", _THREADED, ids=[p.name for p in _THREADED])
def test_a_pruned_transform_rewrites_what_a_full_one_rewrites(path, monkeypatch):
    from scaffold.codemods.thread_context import ThreadContext

    source = path.read_bytes()
    pruned = process_source(source, "pkg/module.py", [ThreadContext], Settings())
    monkeypatch.setattr(FastTransformer, "prune_to", lambda self, nodes: None)
    full = process_source(source, "pkg/module.py", [ThreadContext], Settings())
    assert pruned.updated == full.updated and pruned.findings == full.findings
    assert pruned.status == full.status
