"""Find the instrumented sites of a module by what they call, and plan a test for each.

The locator runs over code as it is after retrofit, so it sees sites a codemod just wrote and
sites that were already correct alike: calls into the kit (``consume_span``, ``traced_send``,
``inject_trace_context``, ``submit`` ...), into the configured helper module (the HuleEdu
names), OpenTelemetry's own ``propagate.inject``, ``contextvars.copy_context().run`` handed
to a thread, and ``context.attach`` whose ``detach`` sits in a ``finally``.

For each site the planner works out, from the code alone, how a test can drive it: which
function to call, which collaborators to replace with recorders or a fake consumer, which
callees to probe (or make raise), and how to build arguments the code reads before the site
(the keys of a dict, a JSON object, an envelope model). What it cannot work out becomes the
exact reason the generated test is skipped.
"""

from __future__ import annotations

import builtins
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import libcst as cst
from libcst.metadata import (
    MetadataWrapper,
    ParentNodeProvider,
    PositionProvider,
    QualifiedNameProvider,
)

from scaffold.codemods.base import dotted_name
from scaffold.kit_api import (
    CAPTURE_FOR_QUEUE,
    CONSUME_BATCH,
    CONSUME_SPAN,
    EXECUTOR_MAP,
    INIT_TRACING,
    INJECT_HEADERS,
    INJECT_METADATA,
    INJECT_TRACE_CONTEXT,
    KIT_PACKAGE,
    RESTORE_FROM_QUEUE,
    RESTORE_SPAN,
    RUN_IN_EXECUTOR,
    SUBMIT,
    TRACED_PRODUCER,
    TRACED_PUBLISH,
    TRACED_SEND,
    TRACED_THREAD,
    TRACED_TIMER,
    USE_TRACE_CONTEXT,
    WITH_CONTEXT,
)
from scaffold.testgen.model import (
    BOOTSTRAP,
    CONSUME,
    COPY_CONTEXT_TARGET,
    INJECT,
    PRODUCE,
    RESTORE,
    START_CAPTURE,
    THREAD,
    TOKEN,
    Argument,
    Case,
    ModuleTests,
    Patch,
    Recipe,
    Shape,
    Site,
    SiteKind,
    Value,
    form,
)

ATTACH = "opentelemetry.context.attach"
DETACH = "opentelemetry.context.detach"
OTEL_INJECT = "opentelemetry.propagate.inject"
COPY_CONTEXT = "contextvars.copy_context"
JSON_LOADS = {"json.loads", "orjson.loads", "ujson.loads"}

# The kit's names, and the kind of site a call to each one is.
KIT_NAMES = {
    CONSUME_SPAN: CONSUME,
    CONSUME_BATCH: CONSUME,
    RESTORE_SPAN: RESTORE,
    USE_TRACE_CONTEXT: RESTORE,
    RESTORE_FROM_QUEUE: RESTORE,
    TRACED_SEND: PRODUCE,
    TRACED_PUBLISH: PRODUCE,
    TRACED_PRODUCER: PRODUCE,
    INJECT_TRACE_CONTEXT: INJECT,
    INJECT_METADATA: INJECT,
    INJECT_HEADERS: INJECT,
    CAPTURE_FOR_QUEUE: INJECT,
    SUBMIT: THREAD,
    EXECUTOR_MAP: THREAD,
    RUN_IN_EXECUTOR: THREAD,
    TRACED_THREAD: THREAD,
    TRACED_TIMER: THREAD,
    WITH_CONTEXT: THREAD,
    INIT_TRACING: BOOTSTRAP,
}
# The HuleEdu shared library's names a configured helper module provides.
HELPER_NAMES = {
    "inject_trace_context": INJECT,
    "use_trace_context": RESTORE,
    "init_tracing": BOOTSTRAP,
}
WITH_NAMES = {CONSUME_SPAN, RESTORE_SPAN, USE_TRACE_CONTEXT, RESTORE_FROM_QUEUE}
# Where the function handed to the thread is, per kit helper: (position, keyword).
THREAD_CALLABLE = {
    SUBMIT: (1, None),
    EXECUTOR_MAP: (1, None),
    RUN_IN_EXECUTOR: (2, None),
    TRACED_THREAD: (1, "target"),
    TRACED_TIMER: (1, "function"),
    WITH_CONTEXT: (0, None),
}
_VALIDATORS = {"model_validate", "parse_obj", "model_construct"}
_JSON_VALIDATORS = {"model_validate_json", "parse_raw"}
_BUILTINS = set(dir(builtins))
_STDLIB = set(sys.stdlib_module_names)
# Callees that never send a message: a span's own API, logging, the standard library.
_NOT_SENDERS = {"opentelemetry", "logging", "structlog", "builtins", *_STDLIB}
# Exceptions whose handler would also catch the cancellation that stops a driven loop.
_CATCHES_CANCEL = {"CancelledError", "BaseException"}


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _first_line(node: cst.CSTNode) -> str:
    """The node's first line of code (a compound statement's leading comments skipped)."""
    lines = [line.strip() for line in _code(node).strip().splitlines()]
    return next((line for line in lines if line and not line.startswith("#")), lines[0])


def _snake(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def _string(node: cst.CSTNode) -> str | None:
    if isinstance(node, cst.SimpleString):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _root(node: cst.CSTNode) -> str | None:
    """The first name of ``a.b[c].d``."""
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        node = node.value
    return node.value if isinstance(node, cst.Name) else None


def _names_in(node: cst.CSTNode) -> set[str]:
    """Dotted names (``a``, ``a.b``) mentioned in ``node``, nested functions excluded."""
    found: set[str] = set()

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

        def visit_Attribute(self, attribute: cst.Attribute) -> None:
            dotted = dotted_name(attribute)
            if dotted:
                found.add(dotted)

        def visit_Lambda(self, _: cst.Lambda) -> bool:
            return False

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

    node.visit(_Collect())
    return found


def _mentions(node: cst.CSTNode, tokens: set[str]) -> bool:
    names = _names_in(node)
    return any(name == token or name.startswith(f"{token}.") for name in names for token in tokens)


def _calls_in(nodes: Iterable[cst.CSTNode]) -> Iterator[cst.Call]:
    """Calls in ``nodes``, outer before inner, in source order; nested functions excluded."""
    found: list[cst.Call] = []

    class _Collect(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

        def visit_Lambda(self, _: cst.Lambda) -> bool:
            return False

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

        def visit_ClassDef(self, _: cst.ClassDef) -> bool:
            return False

    for node in nodes:
        node.visit(_Collect())
    return iter(found)


def _argument(call: cst.Call, index: int, keyword: str | None = None) -> cst.BaseExpression | None:
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    if keyword is not None:
        for arg in call.args:
            if arg.keyword is not None and arg.keyword.value == keyword:
                return arg.value
    if len(positional) > index:
        return positional[index].value
    return None


# -- what a module binds at its top level --


@dataclass
class _Module:
    """Top-level bindings of one module, and which imports come from the repository."""

    functions: set[str] = field(default_factory=set)
    defs: dict[str, cst.FunctionDef] = field(default_factory=dict)
    classes: dict[str, cst.ClassDef] = field(default_factory=dict)
    from_imports: dict[str, str] = field(default_factory=dict)  # local -> dotted source
    module_imports: dict[str, str] = field(default_factory=dict)  # local -> dotted module
    assigned: set[str] = field(default_factory=set)
    repo_packages: frozenset[str] = frozenset()

    @classmethod
    def of(cls, module: cst.Module, repo_packages: Iterable[str]) -> _Module:
        facts = cls(repo_packages=frozenset(repo_packages))
        for statement in module.body:
            if isinstance(statement, cst.FunctionDef):
                facts.functions.add(statement.name.value)
                facts.defs[statement.name.value] = statement
            elif isinstance(statement, cst.ClassDef):
                facts.classes[statement.name.value] = statement
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    facts._simple(small)
            elif isinstance(statement, (cst.If, cst.Try)):
                for inner in _simple_statements(statement):
                    facts._simple(inner)
        return facts

    def _simple(self, small: cst.BaseSmallStatement) -> None:
        if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
            relative = "." * len(small.relative)
            base = dotted_name(small.module) if small.module is not None else None
            for alias in small.names:
                local = _code(alias.asname.name) if alias.asname else _code(alias.name)
                imported = _code(alias.name)
                self.from_imports[local] = (
                    f"{relative}{base}.{imported}" if base else f"{relative}{imported}"
                )
        elif isinstance(small, cst.Import):
            for alias in small.names:
                dotted = _code(alias.name)
                if alias.asname is not None:
                    self.module_imports[_code(alias.asname.name)] = dotted
                else:
                    self.module_imports.setdefault(dotted.split(".")[0], dotted.split(".")[0])
        elif isinstance(small, (cst.Assign, cst.AnnAssign)):
            targets = small.targets if isinstance(small, cst.Assign) else [small]
            for target in targets:
                if isinstance(target.target, cst.Name):
                    self.assigned.add(target.target.value)

    def is_repo_import(self, name: str) -> bool:
        source = self.from_imports.get(name)
        if source is None:
            return False
        return source.startswith(".") or source.split(".")[0] in self.repo_packages

    def module_attribute(self, node: cst.CSTNode) -> tuple[str, str] | None:
        """(module, attribute) of ``mod.attr`` (or ``pkg.mod.attr``) through an ``import``."""
        dotted = dotted_name(node)
        if dotted is None or "." not in dotted:
            return None
        root, _, rest = dotted.partition(".")
        if root not in self.module_imports:
            return None
        full = f"{self.module_imports[root]}.{rest}"
        module, _, attribute = full.rpartition(".")
        return module, attribute

    def binding(self, name: str) -> str | None:
        """How ``name`` is bound at module level: def, class, repo, import, module, global."""
        if name in self.functions:
            return "def"
        if name in self.classes:
            return "class"
        if name in self.from_imports:
            return "repo" if self.is_repo_import(name) else "import"
        if name in self.module_imports:
            return "module"
        if name in self.assigned:
            return "global"
        return None


def _simple_statements(node: cst.CSTNode) -> Iterator[cst.BaseSmallStatement]:
    class _Collect(cst.CSTVisitor):
        def __init__(self) -> None:
            self.found: list[cst.BaseSmallStatement] = []

        def visit_SimpleStatementLine(self, line: cst.SimpleStatementLine) -> None:
            self.found.extend(line.body)

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

        def visit_ClassDef(self, _: cst.ClassDef) -> bool:
            return False

    collect = _Collect()
    node.visit(collect)
    return iter(collect.found)


# -- the function a test drives --


@dataclass(frozen=True)
class _Param:
    name: str
    annotation: str | None
    has_default: bool


class _Entry:
    """The function holding a site: its parameters, locals, and how names in it are bound."""

    def __init__(self, node: cst.FunctionDef, cls: cst.ClassDef | None, module: _Module,
                 outer: _Entry | None = None) -> None:
        self.node = node
        self.cls = cls
        self.module = module
        # a closure without parameters that ``outer`` defines and runs: the test calls
        # ``outer``, and reads the closure's body for what the site talks to
        self.outer = outer
        self.runner: cst.Call | None = None  # the call of ``outer`` handed the closure
        decorators = {_code(d.decorator) for d in node.decorators}
        self.is_static = "staticmethod" in decorators
        self.is_classmethod = "classmethod" in decorators
        self.is_property = any(d == "property" or d.endswith((".setter", ".getter"))
                               for d in decorators)
        self.is_async = node.asynchronous is not None
        params = list(node.params.posonly_params) + list(node.params.params)
        if cls is not None and not self.is_static and params:
            self.self_name: str | None = params[0].name.value
            params = params[1:]
        else:
            self.self_name = None
        params += list(node.params.kwonly_params)
        self.params = [
            _Param(p.name.value, _code(p.annotation.annotation) if p.annotation else None,
                   p.default is not None)
            for p in params
        ]
        if outer is not None:
            self.self_name, self.params = outer.self_name, outer.params
            self.is_static, self.is_classmethod = outer.is_static, outer.is_classmethod
            self.is_async = outer.is_async
        self.param_names = {p.name for p in self.params}
        self.locals: dict[str, list[cst.BaseExpression | None]] = {}
        self.self_assigned: dict[str, list[cst.BaseExpression]] = {}
        self._collect_locals()

    @property
    def name(self) -> str:
        """The function a test calls."""
        return (self.outer or self).node.name.value

    @property
    def qualname(self) -> str:
        name = self.name
        return f"{self.cls.name.value}.{name}" if self.cls is not None else name

    @property
    def methods(self) -> set[str]:
        if self.cls is None or not isinstance(self.cls.body, cst.IndentedBlock):
            return set()
        return {s.name.value for s in self.cls.body.body if isinstance(s, cst.FunctionDef)}

    def _collect_locals(self) -> None:
        entry = self

        def bind(target: cst.CSTNode, value: cst.BaseExpression | None) -> None:
            if isinstance(target, cst.Name):
                entry.locals.setdefault(target.value, []).append(value)
            elif isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    bind(element.value, None)
            elif (
                isinstance(target, cst.Attribute)
                and isinstance(target.value, cst.Name)
                and target.value.value == entry.self_name
                and value is not None
            ):
                entry.self_assigned.setdefault(target.attr.value, []).append(value)

        class _Collect(cst.CSTVisitor):
            def visit_Assign(self, node: cst.Assign) -> None:
                for target in node.targets:
                    bind(target.target, node.value)

            def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
                bind(node.target, node.value)

            def visit_AugAssign(self, node: cst.AugAssign) -> None:
                bind(node.target, None)

            def visit_For(self, node: cst.For) -> None:
                bind(node.target, None)

            def visit_WithItem(self, node: cst.WithItem) -> None:
                if node.asname is not None:  # clients and producers enter as themselves
                    bind(node.asname.name, node.item)

            def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
                return False

            def visit_Lambda(self, _: cst.Lambda) -> bool:
                return False

        self.node.body.visit(_Collect())

    def is_self(self, node: cst.CSTNode) -> bool:
        return isinstance(node, cst.Name) and node.value == self.self_name

    def only_value(self, name: str) -> cst.BaseExpression | None:
        values = self.locals.get(name, [])
        return values[0] if len(values) == 1 else None


def _unwrap_await(node: cst.BaseExpression | None) -> cst.BaseExpression | None:
    return node.expression if isinstance(node, cst.Await) else node


# -- how a test replaces something the site talks to --


@dataclass(frozen=True)
class _Target:
    """Where a stand-in goes: an argument of the entry, or a Patch of something else."""

    label: str
    argument: str | None = None
    patch: Patch | None = None

    def with_value(self, value: Value) -> tuple[tuple[Patch, ...], dict[str, Value]]:
        if self.argument is not None:
            return (), {self.argument: value}
        assert self.patch is not None
        patch = Patch(
            action=self.patch.action, owner=self.patch.owner, name=self.patch.name,
            label=self.label, value=value, owner_name=self.patch.owner_name,
        )
        return (patch,), {}


def _made_by(value: cst.BaseExpression | None, entry: _Entry, depth: int) -> _Target | None:
    """Where to put a stand-in for what ``value`` (a call) makes: the class it instantiates,
    the factory the instance holds (``self.consumer_factory(...)``), or the collaborator
    whose method made it (``producer.create_batch()``)."""
    value = _unwrap_await(value)
    if not isinstance(value, cst.Call):
        return None
    func = value.func
    if isinstance(func, cst.Name) and entry.module.binding(func.value) in ("import", "repo",
                                                                           "class"):
        return _Target(f"{func.value}()", patch=Patch("factory", "module", func.value))
    if isinstance(func, cst.Attribute):
        through_import = entry.module.module_attribute(func)
        if through_import is not None:
            module, attribute = through_import
            if module.split(".")[0] in _STDLIB:
                return None
            return _Target(f"{_code(func)}()", patch=Patch("factory", "import", attribute,
                                                           owner_name=module))
        if entry.is_self(func.value) and func.attr.value not in entry.methods:
            # ``self.consumer_factory(...)``: a factory the instance holds (a constructor
            # parameter, ``factory or AIOKafkaConsumer``): the test's instance holds one
            # returning the stand-in, unless the entry itself assigns it before the call
            if func.attr.value in entry.self_assigned:
                return None
            return _Target(f"{_code(func)}()",
                           patch=Patch("factory", "subject", func.attr.value))
        return _resolve_target(func.value, entry, depth + 1)
    return None


_QUEUE_READS = {"blpop", "brpop", "lpop", "rpop", "lmove", "blmove", "brpoplpush", "rpoplpush",
                "get_message", "listen", "xread", "xreadgroup"}
# Calls whose result is the Redis client itself, for the fake (a pub/sub, a pipeline).
_CLIENT_VIEWS = {"pubsub", "pipeline", "subscribe", "psubscribe"}


def _bindings(entry: _Entry, name: str) -> list[cst.BaseExpression]:
    """What ``name`` is bound to in the entry: assignments (a tuple target too), the iterable
    of a ``for`` over it, the context manager it is entered as."""
    found: list[cst.BaseExpression] = []

    def binds(target: cst.CSTNode) -> bool:
        if isinstance(target, cst.Name):
            return target.value == name
        if isinstance(target, (cst.Tuple, cst.List)):
            return any(binds(element.value) for element in target.elements)
        return False

    class _Find(cst.CSTVisitor):
        def visit_Assign(self, node: cst.Assign) -> None:
            if any(binds(target.target) for target in node.targets):
                found.append(node.value)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            if node.value is not None and binds(node.target):
                found.append(node.value)

        def visit_For(self, node: cst.For) -> None:
            if binds(node.target):
                found.append(node.iter)

        def visit_WithItem(self, node: cst.WithItem) -> None:
            if node.asname is not None and binds(node.asname.name):
                found.append(node.item)

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

    entry.node.body.visit(_Find())
    return found


def _client_of(entry: _Entry, receiver: cst.BaseExpression, depth: int
               ) -> cst.BaseExpression | None:
    """The client behind a pub/sub or pipeline (``pubsub`` of ``async with
    client.subscribe(ch) as pubsub``); the receiver itself otherwise."""
    if depth > 3 or not isinstance(receiver, cst.Name) or receiver.value in entry.param_names:
        return receiver
    values = _bindings(entry, receiver.value)
    if len(values) != 1:
        return receiver if not values else None
    value = _unwrap_await(values[0])
    if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
            and value.func.attr.value in _CLIENT_VIEWS:
        return _client_of(entry, value.func.value, depth + 1)
    return receiver


def _item_keys(entry: _Entry, name: str) -> list[str]:
    """Keys the code reads from a queued item: ``item["k"]``, ``item.get("k")`` and, for a
    stream entry's fields, ``item[b"k"]``."""
    keys = list(_keys_read(entry, name))

    class _Collect(cst.CSTVisitor):
        def visit_Subscript(self, node: cst.Subscript) -> None:
            if isinstance(node.value, cst.Name) and node.value.value == name and len(
                node.slice
            ) == 1 and isinstance(node.slice[0].slice, cst.Index) and isinstance(
                node.slice[0].slice.value, cst.SimpleString
            ):
                key = node.slice[0].slice.value.evaluated_value
                if isinstance(key, bytes):
                    key = key.decode(errors="replace")
                if key not in keys:
                    keys.append(key)

    entry.node.body.visit(_Collect())
    return keys


def _made_through(receiver: cst.BaseExpression, entry: _Entry) -> str:
    """``pipeline().`` when ``receiver`` is a local made by a collaborator's method
    (``pipe = redis.pipeline()``, ``async with redis.pipeline() as pipe``): the stand-in for
    ``redis`` sees the send as ``redis.pipeline().lpush``; "" otherwise."""
    if not (isinstance(receiver, cst.Name) and receiver.value in entry.locals):
        return ""
    value = entry.only_value(receiver.value)
    if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)):
        return ""  # awaited, or a class the test replaces: the stand-in is the receiver
    if entry.module.module_attribute(value.func) is not None:
        return ""
    return _made_through(value.func.value, entry) + f"{value.func.attr.value}()."


def _holds(node: cst.BaseExpression, call: cst.Call) -> bool:
    """Whether ``node`` is ``call``, or a serialisation of it (``json.dumps(call)``)."""
    if node is call:
        return True
    return isinstance(node, cst.Call) and any(_holds(arg.value, call) for arg in node.args)


def _resolve_target(expr: cst.BaseExpression, entry: _Entry, depth: int = 0) -> _Target | None:
    """Where to put a stand-in so that ``expr`` evaluates to it inside the entry."""
    label = _code(expr)
    if depth > 3:
        return None
    if isinstance(expr, cst.Name):
        name = expr.value
        if name in entry.param_names:
            return _Target(label, argument=name)
        if name in entry.locals:
            value = _unwrap_await(entry.only_value(name))
            if isinstance(value, (cst.Attribute, cst.Name)):
                return _resolve_target(value, entry, depth + 1)
            return _made_by(value, entry, depth)
        binding = entry.module.binding(name)
        if binding == "import" and entry.module.from_imports[name].split(".")[0] in _NOT_SENDERS:
            return None  # OpenTelemetry's own API, logging: never a collaborator to record
        if binding in ("import", "repo", "global", "def") or (
            binding is None and name not in _BUILTINS
        ):
            return _Target(label, patch=Patch("value", "module", name))
        return None
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name):
        owner = expr.value.value
        attr = expr.attr.value
        if entry.is_self(expr.value):
            assigned = entry.self_assigned.get(attr)
            if assigned:
                return _made_by(assigned[0], entry, depth) if len(assigned) == 1 else None
            return _Target(label, patch=Patch("value", "subject", attr))
        if owner in entry.param_names:
            return _Target(label, patch=Patch("value", "argument", attr, owner_name=owner))
    return None


def _patchable_callees(
    nodes: Iterable[cst.CSTNode], entry: _Entry, action: str, kit: _KitNames
) -> list[Patch]:
    """Probes (or failures) for the calls in ``nodes`` a test can replace: module functions,
    functions imported from the repository, unbound names, and the class's own methods."""
    patches: dict[tuple[str, str], Patch] = {}
    for call in _calls_in(nodes):
        func = call.func
        if isinstance(func, cst.Name):
            name = func.value
            if name in entry.param_names or name in entry.locals or kit.is_kit_name(name):
                continue
            if name == entry.node.name.value and entry.cls is None:
                continue
            binding = entry.module.binding(name)
            if binding in ("def", "repo") or (binding is None and name not in _BUILTINS):
                patches.setdefault(("module", name), Patch(action, "module", name, label=name))
        elif isinstance(func, cst.Attribute) and entry.is_self(func.value):
            name = func.attr.value
            owner = "class" if name in entry.methods else "subject"
            label = f"{entry.self_name}.{name}"
            patches.setdefault((owner, name), Patch(action, owner, name, label=label))
    return list(patches.values())


def _observable(nodes: Sequence[cst.CSTNode], entry: _Entry) -> bool:
    """Whether some call in ``nodes`` goes to a collaborator built or replaced by the test."""
    roots = entry.param_names | ({entry.self_name} if entry.self_name else set())
    return any(_root(call.func) in roots for call in _calls_in(nodes))


# -- building the entry's arguments from how the code reads them --


def _keys_read(entry: _Entry, name: str) -> list[str]:
    """String keys the entry reads from ``name`` (a dotted name: ``envelope.data``):
    ``name["k"]`` and ``name.get("k")``."""
    keys: list[str] = []

    class _Collect(cst.CSTVisitor):
        def visit_Subscript(self, node: cst.Subscript) -> None:
            if dotted_name(node.value) == name and len(
                node.slice
            ) == 1 and isinstance(node.slice[0].slice, cst.Index):
                key = _string(node.slice[0].slice.value)
                if key is not None and key not in keys:
                    keys.append(key)

        def visit_Call(self, node: cst.Call) -> None:
            func = node.func
            if (
                isinstance(func, cst.Attribute)
                and dotted_name(func.value) == name
                and func.attr.value in ("get", "pop")
                and node.args
            ):
                key = _string(node.args[0].value)
                if key is not None and key not in keys:
                    keys.append(key)

    entry.node.body.visit(_Collect())
    return keys


class _Qualified:
    """Qualified names of call targets, resolved once per module."""

    def __init__(self, wrapper: MetadataWrapper) -> None:
        self._names = wrapper.resolve(QualifiedNameProvider)

    def of(self, node: cst.CSTNode) -> set[str]:
        found = self._names.get(node, set())
        if callable(found):  # LibCST resolves qualified names lazily
            found = found()
        return {q.name for q in found}


def _parameter_value(entry: _Entry, param: _Param, qualified: _Qualified) -> Value:
    """How to build ``param`` so the code before the site can use it: a JSON object or a dict
    with the keys the code reads, a model with its validated parts, or (unannotated) what
    the callee it is passed to expects."""
    for name, values in entry.locals.items():
        for value in values:
            value = _unwrap_await(value)
            if (
                isinstance(value, cst.Call)
                and qualified.of(value.func) & JSON_LOADS
                and value.args
                and isinstance(value.args[0].value, cst.Name)
                and value.args[0].value.value == param.name
            ):
                keys = _keys_read(entry, name)
                if keys:
                    return Value(Recipe.JSON, label=param.name, keys=tuple(keys))
    keys = _keys_read(entry, param.name)
    if keys and (param.annotation is None or re.search(r"dict|Mapping|Any", param.annotation)):
        return Value(Recipe.KEYS, label=param.name, keys=tuple(keys))
    overrides = _validated_attributes(entry, param.name) + _keyed_attributes(entry, param.name)
    if param.annotation in (None, "str") and not overrides:
        passed = _passed_to(entry, param.name)
        if passed is not None:  # a str passed on to a Literal field takes one of its values
            return passed if param.annotation is None else Value(
                Recipe.PASSED, label=passed.label, model=passed.model, attribute=passed.attribute,
                keys=("str",))
    return Value(Recipe.BUILD, label=param.name, overrides=overrides)


def _keyed_attributes(entry: _Entry, holder: str) -> tuple[tuple[str, Value], ...]:
    """``holder.attr["k"]`` reads: ``attr`` must be a dict with those keys."""
    attributes: list[str] = []

    class _Collect(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> None:
            if isinstance(node.value, cst.Name) and node.value.value == holder and (
                node.attr.value not in attributes
            ):
                attributes.append(node.attr.value)

    entry.node.body.visit(_Collect())
    found = []
    for attribute in attributes:
        keys = _keys_read(entry, f"{holder}.{attribute}")
        if keys:
            found.append((attribute, Value(Recipe.KEYS, keys=tuple(keys))))
    return tuple(found)


def _passed_to(entry: _Entry, name: str) -> Value | None:
    """An unannotated parameter passed to a class or function of the module's namespace:
    build it as that callee's parameter (``EventEnvelope(correlation_id=correlation_id)``),
    also through a local that only renames it (``kind: SubjectType = subject_type``)."""
    aliases = {name} | {
        local for local, values in entry.locals.items()
        if len(values) == 1 and isinstance(values[0], cst.Name) and values[0].value == name}
    for call in _calls_in([entry.node.body]):
        callee = dotted_name(call.func)
        if callee is None or entry.module.binding(callee.split(".")[0]) is None:
            continue
        if callee.split(".")[0] in entry.param_names | set(entry.locals):
            continue
        positional = 0
        for arg in call.args:
            if arg.star:
                break
            if isinstance(arg.value, cst.Name) and arg.value.value in aliases:
                where = arg.keyword.value if arg.keyword is not None else str(positional)
                return Value(Recipe.PASSED, label=name, model=_model_path(entry, callee),
                             attribute=where)
            if arg.keyword is None:
                positional += 1
    return None


def _validated_attributes(entry: _Entry, name: str, within: Sequence[cst.CSTNode] = ()
                          ) -> tuple[tuple[str, Value], ...]:
    """``M.model_validate(name.attr)`` in the entry: ``attr`` must hold the data of an ``M``;
    a call in ``within`` (the branch holding the site) first."""
    found: dict[str, Value] = {}
    for call in [*_calls_in(within), *_calls_in([entry.node.body])]:
        func = call.func
        model = _validator_model(func, _VALIDATORS)
        if model is None or not call.args:
            continue
        argument = call.args[0].value
        if (
            isinstance(argument, cst.Attribute)
            and isinstance(argument.value, cst.Name)
            and argument.value.value == name
        ):
            found.setdefault(argument.attr.value,
                             Value(Recipe.DUMP, model=_model_path(entry, model)))
    return tuple(found.items())


def _model_path(entry: _Entry, dotted: str) -> str:
    """``dotted`` as the test reaches it: as is when the module binds its first name, else
    the absolute import path of a class the function imports itself."""
    if "[" in dotted or entry.module.binding(dotted.partition(".")[0]) is not None:
        return dotted
    root, _, rest = dotted.partition(".")
    for statement in _simple_statements(entry.node.body):
        if not isinstance(statement, cst.ImportFrom) or statement.relative or isinstance(
            statement.names, cst.ImportStar
        ) or statement.module is None:
            continue
        for alias in statement.names:
            local = _code(alias.asname.name) if alias.asname else _code(alias.name)
            if local == root:
                source = f"{dotted_name(statement.module)}.{_code(alias.name)}"
                return f"{source}.{rest}" if rest else source
    return dotted


def _validator_model(func: cst.BaseExpression, methods: set[str]) -> str | None:
    """``M`` of ``M.model_validate(...)``; ``M[X]`` for a generic model's parametrisation."""
    if not (isinstance(func, cst.Attribute) and func.attr.value in methods):
        return None
    model = func.value
    if isinstance(model, cst.Subscript):
        outer = dotted_name(model.value)
        inner = [dotted_name(element.slice.value) for element in model.slice
                 if isinstance(element.slice, cst.Index)]
        if outer is None or not inner or None in inner:
            return None
        return f"{outer}[{', '.join(str(name) for name in inner)}]"
    return dotted_name(model)


def _envelope_model(entry: _Entry, record: str, qualified: _Qualified) -> str | None:
    """``M`` of ``M.model_validate_json(record.value)`` (or from ``json.loads(record.value)``,
    or through a local: ``raw = record.value.decode(); M.model_validate_json(raw)``)."""
    for call in _calls_in([entry.node.body]):
        if not call.args:
            continue
        argument = _unwrap_decode(_through_locals(entry, call.args[0].value))
        json_model = _validator_model(call.func, _JSON_VALIDATORS)
        if json_model is not None and _is_value_of(argument, record):
            return json_model
        model = _validator_model(call.func, _VALIDATORS)
        if (
            model is not None
            and isinstance(argument, cst.Call)
            and qualified.of(argument.func) & JSON_LOADS
            and argument.args
            and _is_value_of(
                _unwrap_decode(_through_locals(entry, argument.args[0].value)), record)
        ):
            return model
    return None


def _through_locals(entry: _Entry, node: cst.BaseExpression, depth: int = 0
                    ) -> cst.BaseExpression:
    """What a local name was first bound to (``raw`` of ``raw = msg.value.decode()``)."""
    while isinstance(node, cst.Name) and node.value in entry.locals and depth < 3:
        values = [value for value in entry.locals[node.value] if value is not None]
        if not values:
            break
        node = _unwrap_await(values[0]) or node
        depth += 1
    return node


def _unwrap_decode(node: cst.BaseExpression) -> cst.BaseExpression:
    if (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "decode"
    ):
        return node.func.value
    return node


def _is_value_of(node: cst.BaseExpression, record: str) -> bool:
    return (
        isinstance(node, cst.Attribute)
        and node.attr.value == "value"
        and isinstance(node.value, cst.Name)
        and node.value.value == record
    )


# -- finding the sites --


@dataclass(frozen=True)
class _KitNames:
    """Which qualified names are the kit's or the helper module's."""

    kit: str | None
    helper: str | None
    local_kit_names: frozenset[str] = frozenset()

    def kind(self, names: set[str]) -> tuple[SiteKind, str] | None:
        """(kind, kit name) of a call target, if it is an instrumentation helper."""
        for name in names:
            parts = name.split(".")
            last = parts[-1]
            if self.helper and name.startswith(f"{self.helper}.") and last in HELPER_NAMES:
                return HELPER_NAMES[last], last
            if last in KIT_NAMES and self._is_kit(parts[:-1]):
                return KIT_NAMES[last], last
            if name == OTEL_INJECT:
                return INJECT, "inject"
        return None

    def _is_kit(self, parents: list[str]) -> bool:
        if KIT_PACKAGE in parents:
            return True
        if self.kit:
            kit_parts = self.kit.split(".")
            return parents[: len(kit_parts)] == kit_parts or parents[-1:] == kit_parts[-1:]
        return False

    def is_kit_name(self, local: str) -> bool:
        return local in self.local_kit_names


@dataclass
class _Found:
    """A site as found, with the nodes the planner needs."""

    kind: SiteKind
    form: str
    anchor: cst.CSTNode
    statement: cst.CSTNode
    entry: _Entry | None
    cls: cst.ClassDef | None
    skip: str | None = None
    name: str = ""  # the kit name, or the token, or the pattern
    call: cst.Call | None = None
    block: Sequence[cst.CSTNode] = ()  # consume/restore: the body; token: the guarded block
    ancestors: tuple[cst.CSTNode, ...] = ()  # innermost first, up to the entry function


class _Locator(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (QualifiedNameProvider, PositionProvider, ParentNodeProvider)

    def __init__(self, module: _Module, kit: _KitNames) -> None:
        super().__init__()
        self.module = module
        self.kit = kit
        self.found: list[_Found] = []
        self._stack: list[cst.CSTNode] = []
        self._handled: set[cst.CSTNode] = set()

    def _names(self, node: cst.CSTNode) -> set[str]:
        return {q.name for q in self.get_metadata(QualifiedNameProvider, node, set())}

    # -- scopes --

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._stack.append(node)
        self._thread_class(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._stack.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._stack.append(node)
        self._tokens(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._stack.pop()

    def _entry(self) -> tuple[_Entry | None, cst.ClassDef | None, str | None]:
        """The function a test calls for a site here, or why there is none."""
        functions = [i for i, node in enumerate(self._stack) if isinstance(node, cst.FunctionDef)]
        classes = [node for node in self._stack if isinstance(node, cst.ClassDef)]
        if not functions:
            if classes:
                return None, classes[-1], "the site is in a class body, outside any method"
            return None, None, "the site runs at import time, outside any function"
        if len(functions) > 1:
            closure = self._closure(functions)
            if closure is not None:
                return closure
            outer = ".".join(_scope_name(n) for n in self._stack[: functions[-1]])
            inner = _scope_name(self._stack[functions[-1]])
            return None, None, (
                f"the site is in {inner}, a function nested in {outer}, which a test cannot "
                f"call on its own; call {outer} from this test instead"
            )
        index = functions[0]
        cls = self._stack[index - 1] if index > 0 else None
        if index > 1 or (cls is not None and not isinstance(cls, cst.ClassDef)):
            return None, None, "the site is in a class nested in another scope"
        function = self._stack[index]
        assert isinstance(function, cst.FunctionDef)
        entry = _Entry(function, cls, self.module)
        if entry.is_property:
            return None, cls, f"the site is in the property {entry.qualname}"
        if entry.node.name.value == "__init__":
            return entry, cls, (
                f"the site is in the constructor {entry.qualname}; a test builds the instance "
                "before it can observe anything"
            )
        return entry, cls, None

    def _closure(self, functions: list[int]
                 ) -> tuple[_Entry | None, cst.ClassDef | None, str | None] | None:
        """A site in a closure without parameters that its function (a method or a module
        function) hands, by name, to one call (``await self.retry.with_retry(_request)``):
        the test drives the function, with that call's receiver running the closure."""
        if len(functions) != 2 or functions[1] != functions[0] + 1:
            return None
        outer_node, inner_node = self._stack[functions[0]], self._stack[functions[1]]
        assert isinstance(outer_node, cst.FunctionDef) and isinstance(inner_node, cst.FunctionDef)
        index = functions[0]
        cls = self._stack[index - 1] if index > 0 else None
        if index > 1 or (cls is not None and not isinstance(cls, cst.ClassDef)):
            return None
        params = inner_node.params
        if params.params or params.posonly_params or params.kwonly_params or isinstance(
                params.star_arg, cst.Param) or params.star_kwarg is not None:
            return None
        outer = _Entry(outer_node, cls, self.module)
        if outer.is_property or outer.node.name.value == "__init__":
            return None
        name = inner_node.name.value
        handed = [call for call in _calls_in([outer_node.body])
                  if any(isinstance(arg.value, cst.Name) and arg.value.value == name
                         for arg in call.args)]
        called = [call for call in _calls_in([outer_node.body])
                  if isinstance(call.func, cst.Name) and call.func.value == name]
        if len(handed) + len(called) != 1:
            return None
        entry = _Entry(inner_node, cls, self.module, outer=outer)
        entry.runner = handed[0] if handed else None
        return entry, cls, None

    def _add(self, kind: SiteKind, written: str, anchor: cst.CSTNode, statement: cst.CSTNode,
             **details) -> None:
        entry, cls, skip = self._entry()
        self.found.append(_Found(kind, written, anchor, statement, entry, cls,
                                 skip=details.pop("skip", None) or skip,
                                 ancestors=self._ancestors(anchor), **details))

    def _ancestors(self, node: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
        found: list[cst.CSTNode] = []
        current = node
        while not isinstance(current, (cst.FunctionDef, cst.Module)):
            parent = self.get_metadata(ParentNodeProvider, current, None)
            if parent is None:
                break
            found.append(parent)
            current = parent
        return tuple(found)

    def _statement(self, node: cst.CSTNode) -> cst.CSTNode:
        current = node
        while not isinstance(current, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            current = self.get_metadata(ParentNodeProvider, current)
        return current

    # -- kit and helper calls --

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            if isinstance(call, cst.IfExp):  # ``with (restore(m) if m else nullcontext()):``
                call = call.body
            if not isinstance(call, cst.Call):
                continue
            found = self.kit.kind(self._names(call.func))
            if found is None or found[1] not in WITH_NAMES:
                continue
            kind, name = found
            self._handled.add(call)
            self._add(kind, form(Shape.WITH, name), node, node, name=name, call=call,
                      block=node.body.body if isinstance(node.body, cst.IndentedBlock) else ())

    def visit_For(self, node: cst.For) -> None:
        call = node.iter
        if not isinstance(call, cst.Call):
            return
        found = self.kit.kind(self._names(call.func))
        if found is None or found[1] != CONSUME_BATCH:
            return
        self._handled.add(call)
        self._add(CONSUME, form(Shape.FOR, CONSUME_BATCH), node, node, name=CONSUME_BATCH,
                  call=call,
                  block=node.body.body if isinstance(node.body, cst.IndentedBlock) else ())

    def visit_Call(self, node: cst.Call) -> None:
        if node in self._handled:
            return
        names = self._names(node.func)
        if COPY_CONTEXT in names:
            self._copy_context(node)
            return
        found = self.kit.kind(names)
        if found is None:
            return
        kind, name = found
        statement = self._statement(node)
        if name in WITH_NAMES or name == CONSUME_BATCH:
            self._add(kind, form(Shape.CALL, name), node, statement, name=name, call=node,
                      skip=f"{name}(...) is used outside a with statement (or for loop), so "
                      "the test cannot tell which code runs inside its span")
            return
        if name == TRACED_PRODUCER:
            self._add(kind, form(Shape.CALL, name), node, statement, name=name, call=node,
                      skip="TracedProducer(...) only wraps the producer; the sends through it "
                      "are driven by the tests of the functions that call send")
            return
        self._add(kind, form(Shape.CALL, name), node, statement, name=name, call=node)

    def _copy_context(self, node: cst.Call) -> None:
        """``copy_context().run`` handed to a thread, in one of the forms retrofit writes."""
        run = self.get_metadata(ParentNodeProvider, node)
        if not (isinstance(run, cst.Attribute) and run.attr.value == "run"):
            return
        holder = self.get_metadata(ParentNodeProvider, run)
        if not isinstance(holder, cst.Arg):
            return
        call = self.get_metadata(ParentNodeProvider, holder)
        if not isinstance(call, cst.Call) or call.args[0] is not holder:
            if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and (
                call.func.attr.value == "run_in_executor"
                and len(call.args) > 1 and call.args[1] is holder
            ):
                self._add(THREAD, form(Shape.ARG, COPY_CONTEXT_TARGET), call, self._statement(call),
                          name="run_in_executor", call=call)
            return
        if "functools.partial" in self._names(call.func):
            statement = self._statement(call)
            inside = next((n for n in reversed(self._stack) if isinstance(n, cst.FunctionDef)),
                          None)
            if (
                inside is not None
                and inside.name.value == "start"
                and isinstance(statement, cst.SimpleStatementLine)
                and isinstance(statement.body[0], cst.Assign)
                and _code(statement.body[0].targets[0].target).endswith(".run")
            ):
                return  # the start() capture of a Thread subclass: see _thread_class
            self._add(THREAD, form(Shape.PARTIAL, COPY_CONTEXT_TARGET), call, statement,
                      name="partial", call=call)
        elif isinstance(call.func, cst.Attribute) and call.func.attr.value == "submit":
            self._add(THREAD, form(Shape.ARG, COPY_CONTEXT_TARGET), call, self._statement(call),
                      name="submit", call=call)

    def visit_Lambda(self, node: cst.Lambda) -> None:
        """``pool.map(lambda *args, _fn=f, _context=copy_context(): ...)``, thread-context's map."""
        defaults = {p.name.value: p.default for p in node.params.params if p.default is not None}
        context = defaults.get("_context")
        if "_fn" not in defaults or context is None or not isinstance(context, cst.Call):
            return
        if COPY_CONTEXT not in self._names(context.func):
            return
        self._handled.add(context)
        self._add(THREAD, form(Shape.LAMBDA, COPY_CONTEXT_TARGET), node, self._statement(node),
                  name="lambda")

    # -- thread classes --

    def _thread_class(self, node: cst.ClassDef) -> None:
        body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
        methods = {s.name.value: s for s in body if isinstance(s, cst.FunctionDef)}
        based = next((base for base in node.bases if self.kit.kind(self._names(base.value))
                      == (THREAD, TRACED_THREAD)), None)
        start = methods.get("start")
        capture = None
        if start is not None:
            for statement in start.body.body:
                if (
                    isinstance(statement, cst.SimpleStatementLine)
                    and isinstance(statement.body[0], cst.Assign)
                    and "copy_context" in _code(statement)
                    and _code(statement.body[0].targets[0].target).endswith(".run")
                ):
                    capture = statement
        if based is None and capture is None:
            return
        skip = None
        if any(isinstance(n, cst.FunctionDef) for n in self._stack[:-1]):
            skip = "the thread class is defined inside a function"
        anchor: cst.CSTNode
        if based is not None:
            self._handled.update(c for c in [based.value] if isinstance(c, cst.Call))
            anchor, written = based, form(Shape.BASE, TRACED_THREAD)
        else:
            assert capture is not None
            anchor, written = capture, form(Shape.STMT, START_CAPTURE)
        self.found.append(_Found(THREAD, written, anchor, anchor, None, node, skip=skip,
                                 name=node.name.value))

    # -- tokens --

    def _attach_token(self, statement: cst.CSTNode) -> str | None:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and isinstance(small.targets[0].target, cst.Name)
            and isinstance(small.value, cst.Call)
            and self._is(small.value.func, ATTACH)
        ):
            return small.targets[0].target.value
        return None

    def _is(self, func: cst.CSTNode, wanted: str) -> bool:
        if wanted in self._names(func):
            return True
        return isinstance(func, cst.Name) and func.value in self._aliases.get(wanted, set())

    @property
    def _aliases(self) -> dict[str, set[str]]:
        return getattr(self, "_alias_map", {})

    @property
    def attach_aliases(self) -> set[str]:
        """Module-level names bound to ``context.attach`` (``otel_attach = context.attach``)."""
        return self._aliases.get(ATTACH, set())

    def visit_Module(self, node: cst.Module) -> None:
        aliases: dict[str, set[str]] = {ATTACH: set(), DETACH: set()}
        for statement in node.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if (
                        isinstance(small, cst.Assign)
                        and len(small.targets) == 1
                        and isinstance(small.targets[0].target, cst.Name)
                    ):
                        for wanted in aliases:
                            if wanted in self._names(small.value):
                                aliases[wanted].add(small.targets[0].target.value)
        self._alias_map = aliases

    def _detached(self, statement: cst.CSTNode) -> str | None:
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        if (
            isinstance(small, cst.Expr)
            and isinstance(small.value, cst.Call)
            and self._is(small.value.func, DETACH)
            and len(small.value.args) == 1
            and isinstance(small.value.args[0].value, cst.Name)
        ):
            return small.value.args[0].value.value
        return None

    def _tokens(self, function: cst.FunctionDef) -> None:
        """Attaches whose detach is in the finally of the try that follows or holds them."""
        locator = self

        class _Blocks(cst.CSTVisitor):
            def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
                return node is function

            def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
                locator._tokens_in_block(list(node.body))

        function.visit(_Blocks())

    def _tokens_in_block(self, body: list[cst.BaseStatement]) -> None:
        for index, statement in enumerate(body):
            if not isinstance(statement, cst.Try) or statement.finalbody is None:
                continue
            detached = {self._detached(s) for s in statement.finalbody.body.body} - {None}
            if not detached:
                continue
            before = index - 1
            while before >= 0 and self._attach_token(body[before]) is not None:
                token = self._attach_token(body[before])
                if token is not None and token in detached:
                    self._add(TOKEN, form(Shape.TRY_FINALLY, token), body[before], body[before],
                              name=token, block=statement.body.body)
                before -= 1
            inside = list(statement.body.body)
            for position, inner in enumerate(inside):
                token = self._attach_token(inner)
                if token is not None and token in detached:
                    self._add(TOKEN, form(Shape.TRY_FINALLY, token), inner, inner, name=token,
                              block=inside[position + 1:])


def _scope_name(node: cst.CSTNode) -> str:
    return node.name.value if isinstance(node, (cst.FunctionDef, cst.ClassDef)) else "?"


# -- planning a test per site --


class _Planner:
    def __init__(self, module: _Module, kit: _KitNames, qualified: _Qualified,
                 attach_aliases: set[str]) -> None:
        self.module = module
        self.kit = kit
        self.qualified = qualified
        self.attach_aliases = attach_aliases
        self._guards: set[str] = set()
        self._falsy_guards: dict[str, tuple[str, ...]] = {}
        self._literal_guards: dict[str, str] = {}

    def plan(self, found: _Found, site: Site) -> Case:
        entry = found.entry
        base = Case(site=site, name="", summary=_SUMMARIES[found.kind])
        if found.kind == BOOTSTRAP:
            return _skip(base, "tracing set-up has no trace context to carry, so there is "
                         "nothing to drive; test_tracing_contract.py keeps it in place")
        if found.form in (form(Shape.BASE, TRACED_THREAD), form(Shape.STMT, START_CAPTURE)):
            return self._thread_class(base, found)
        if found.skip is not None:
            return _skip(base, found.skip)
        assert entry is not None
        case = Case(
            site=site, name="", summary=base.summary, is_async=entry.is_async,
            subject="class" if entry.is_static or entry.is_classmethod else (
                "instance" if entry.cls is not None else "module"),
            subject_class=entry.cls.name.value if entry.cls is not None else None,
            function=entry.name,
        )
        planner = {
            CONSUME: self._consume, RESTORE: self._restore, PRODUCE: self._produce,
            INJECT: self._inject, THREAD: self._thread, TOKEN: self._token,
        }[found.kind]
        # parameters with defaults that decide whether the site runs (``if ... and tracer:``)
        self._guards = {
            name for node in found.ancestors if isinstance(node, (cst.If, cst.While))
            for name in _names_in(node.test)
        }
        self._falsy_guards = _falsy_guards(found, entry)
        self._literal_guards = _literal_guards(found, entry)
        try:
            planned = planner(case, found, entry)
        except _CannotDrive as reason:
            return _skip(case, str(reason))
        return self._with_runner(planned, entry) if entry.runner is not None else planned

    def _with_runner(self, case: Case, entry: _Entry) -> Case:
        """The receiver of the call the closure is handed to runs it (a retry helper)."""
        assert entry.runner is not None and entry.outer is not None
        func = entry.runner.func
        if isinstance(func, cst.Attribute):
            target = _resolve_target(func.value, entry.outer)
            method = func.attr.value
        else:
            target, method = _resolve_target(func, entry.outer), ""
        if target is None:
            return _skip(case, f"the closure is handed to `{_first_line(entry.runner)}`, whose "
                         "receiver the test cannot replace with one that runs it")
        runner = Value(Recipe.RUNNER, label=target.label, attribute=method)
        patches, given = target.with_value(runner)
        arguments = tuple(
            Argument(argument.name, given.get(argument.name, argument.value))
            for argument in case.arguments)
        return _with(case, patches=(*case.patches, *patches), arguments=arguments)

    def _arguments(
        self, entry: _Entry, given: dict[str, Value], *, before: int | None = None
    ) -> tuple[Argument, ...]:
        """Every required parameter, plus those the plan fills in and those with defaults
        that the conditions around the site read, in signature order."""
        arguments = []
        guards = self._guards
        for param in entry.params:
            if param.name in given:
                arguments.append(Argument(param.name, given[param.name]))
            elif param.name in self._literal_guards:  # ``if mode == "stream":`` holds the site
                arguments.append(Argument(param.name, Value(
                    Recipe.EXPRESSION, label=self._literal_guards[param.name])))
            elif not param.has_default or param.name in guards:
                value = _parameter_value(entry, param, self.qualified)
                filled = [name for name in self._falsy_guards.get(param.name, ())
                          if name not in dict(value.overrides)]
                if value.recipe is Recipe.BUILD and filled:
                    value = replace(value, overrides=(
                        *value.overrides, *((name, Value(Recipe.FILL)) for name in filled)))
                arguments.append(Argument(param.name, value))
        return tuple(arguments)

    # -- per kind --

    def _thread(self, case: Case, found: _Found, entry: _Entry) -> Case:
        work = self._thread_callable(found)
        if work is None:
            raise _CannotDrive(f"the function handed to the thread in `{_first_line(found.anchor)}`"
                               " is not a name or method the test can replace with a probe")
        patches: list[Patch] = []
        given: dict[str, Value] = {}
        if isinstance(work, cst.Name) and work.value in entry.param_names:
            label = work.value
            given[work.value] = Value(Recipe.RECORDER, label=label)
        elif isinstance(work, cst.Name) and work.value not in entry.locals:
            if self.module.binding(work.value) not in ("def", "repo", "import", None):
                raise _CannotDrive(f"{work.value} is bound at module level to something the "
                                   "test cannot replace with a probe")
            label = work.value
            patches.append(Patch("probe", "module", work.value, label=label))
        elif isinstance(work, cst.Attribute) and entry.is_self(work.value):
            name = work.attr.value
            label = f"{entry.self_name}.{name}"
            owner = "class" if name in entry.methods else "subject"
            patches.append(Patch("probe" if owner == "class" else "value", owner, name,
                                 label=label, value=None if owner == "class" else
                                 Value(Recipe.RECORDER, label=label)))
        else:
            raise _CannotDrive(f"the function handed to the thread, `{_code(work)}`, is neither "
                               "a module-level name nor a method, so no probe can replace it")
        return _with(case, patches=tuple(patches), arguments=self._arguments(entry, given),
                     label=label)

    def _thread_callable(self, found: _Found) -> cst.BaseExpression | None:
        call = found.call
        if found.form == form(Shape.LAMBDA, COPY_CONTEXT_TARGET):
            lambda_ = found.anchor
            assert isinstance(lambda_, cst.Lambda)
            return next(p.default for p in lambda_.params.params if p.name.value == "_fn")
        assert call is not None
        if found.form == form(Shape.PARTIAL, COPY_CONTEXT_TARGET):
            return _argument(call, 1)
        if found.form == form(Shape.ARG, COPY_CONTEXT_TARGET):
            return _argument(call, 2 if found.name == RUN_IN_EXECUTOR else 1)
        index, keyword = THREAD_CALLABLE[found.name]
        return _argument(call, index, keyword)

    def _thread_class(self, case: Case, found: _Found) -> Case:
        cls = found.cls
        assert cls is not None
        if found.skip is not None:
            return _skip(case, found.skip)
        label = f"{cls.name.value}.run"
        return _with(case, subject="instance", subject_class=cls.name.value, function=None,
                     patches=(Patch("probe", "class", "run", label=label),), label=label)

    def _produce(self, case: Case, found: _Found, entry: _Entry) -> Case:
        """traced_send(producer, ...): a recording producer; traced_publish(bus.publish, ...): a
        recording bus (or a probe for a module-level publish function)."""
        assert found.call is not None
        producer = _argument(found.call, 0, "producer" if found.name == TRACED_SEND else
                             "publish")
        if (
            found.name == TRACED_PUBLISH
            and isinstance(producer, cst.Name)
            and self.module.binding(producer.value) in ("def", "repo", "import")
        ):
            patch = Patch("probe", "module", producer.value, label=producer.value)
            return _with(case, patches=(patch,), arguments=self._arguments(entry, {}),
                         label=producer.value)
        sends: tuple[str, ...] = ("send", "send_and_wait")
        if found.name == TRACED_PUBLISH and isinstance(producer, cst.Attribute):
            sends = (producer.attr.value,)
            producer = producer.value  # the bus whose publish is called
        target = _resolve_target(producer, entry) if producer is not None else None
        if target is None:
            raise _CannotDrive(f"the producer `{_code(producer) if producer else '?'}` is "
                               "neither a parameter, an attribute of self, nor made by a class "
                               "the test can replace with a recorder")
        patches, given = target.with_value(Value(Recipe.RECORDER, label=target.label))
        return _with(case, patches=(*patches, *_ready_flags(found, entry)),
                     arguments=self._arguments(entry, given), label=target.label, sends=sends)

    def _inject(self, case: Case, found: _Found, entry: _Entry) -> Case:
        outgoing = self._outgoing(found, entry)
        if isinstance(outgoing, str):
            return _with(case, arguments=self._arguments(entry, {}), returned=True)
        if outgoing is None:
            filled = self._filled_parameter(found, entry)
            if filled is not None:
                return _with(case, arguments=self._arguments(entry, {}), filled=filled)
            raise _CannotDrive(
                f"no call after `{_first_line(found.statement)}` passes the carrier to a "
                "collaborator (a parameter, an attribute of self, a module function) that the "
                "test can replace with a recorder"
            )
        target, action, method = outgoing
        if action == "probe":
            patch = target.patch
            assert patch is not None
            patches: tuple[Patch, ...] = (Patch("probe", patch.owner, patch.name,
                                                label=target.label, owner_name=patch.owner_name),)
            given: dict[str, Value] = {}
        else:
            patches, given = target.with_value(Value(Recipe.RECORDER, label=target.label))
        return _with(case, patches=patches, arguments=self._arguments(entry, given),
                     label=target.label, sends=(method,) if method else ())

    def _filled_parameter(self, found: _Found, entry: _Entry) -> tuple[str, str] | None:
        """(parameter, attribute) when the carrier is the caller's own (``metadata`` or
        ``envelope.metadata`` of a parameter) and nothing passes it on: the function fills
        in its caller's carrier, so the test reads it after the call."""
        call = found.call
        carrier = _argument(call, 0) if call is not None else None
        if isinstance(carrier, cst.Name) and carrier.value in entry.param_names:
            name, attribute = carrier.value, ""
        elif (
            isinstance(carrier, cst.Attribute)
            and isinstance(carrier.value, cst.Name)
            and carrier.value.value in entry.param_names
        ):
            name, attribute = carrier.value.value, carrier.attr.value
        else:
            return None
        if name in entry.locals:  # rebound before or after: no longer the caller's object
            return None
        return name, attribute

    def _outgoing(
        self, found: _Found, entry: _Entry
    ) -> tuple[_Target, str, str | None] | str | None:
        """The first call after the injection that passes the carrier on, how to catch it,
        and the method of the caught collaborator that sends (None: the callee sends)."""
        call = found.call
        assert call is not None
        tokens: set[str] = set()
        carrier = _argument(call, 0)
        carriers: set[str] = set()
        if carrier is not None and dotted_name(carrier):
            tokens.add(_taint(carrier))
            carriers.add(dotted_name(carrier) or "")
        statement = found.statement
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(
            statement.body[0], (cst.Assign, cst.AnnAssign)
        ):
            small = statement.body[0]
            targets = small.targets if isinstance(small, cst.Assign) else [small]
            for target in targets:
                if dotted_name(target.target):
                    tokens.add(_taint(target.target))
        passed_on = self._passed_on_in(statement, call, tokens, carriers, entry)
        if passed_on is not None:  # ``return await client.get(url, headers=inject(...))``
            return passed_on
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(
            statement.body[0], cst.Return
        ):
            return "return"
        if not tokens:
            return None
        for later in _statements_after(entry.node, statement):
            passed_on = self._passed_on_in(later, None, tokens, carriers, entry)
            if passed_on is not None:
                return passed_on
            if isinstance(later, cst.SimpleStatementLine):
                for line in later.body:
                    if isinstance(line, cst.Return) and line.value is not None and _carries(
                        line.value, tokens, carriers
                    ):
                        return "return"
            if isinstance(later, cst.SimpleStatementLine):
                for line in later.body:
                    if isinstance(line, (cst.Assign, cst.AnnAssign)) and line.value is not None \
                            and _carries(line.value, tokens, carriers):
                        assigned = line.targets if isinstance(line, cst.Assign) else [line]
                        tokens.update(_taint(t.target) for t in assigned if dotted_name(t.target))
        return None

    def _passed_on_in(
        self, statement: cst.CSTNode, skip: cst.Call | None, tokens: set[str],
        carriers: set[str], entry: _Entry,
    ) -> tuple[_Target, str, str | None] | None:
        header = [statement] if isinstance(statement, cst.SimpleStatementLine) else \
            _header_parts(statement)
        for call in _calls_in(header):
            carries = any(_carries(arg.value, tokens, carriers) for arg in call.args) or (
                skip is not None and any(_holds(arg.value, skip) for arg in call.args))
            if call is skip or not carries:
                continue
            kit = self.kit.kind(self.qualified.of(call.func))
            if kit is not None:
                caught = self._through_kit_send(call, kit[1], entry)
                if caught is not None:
                    return caught
                continue
            if _builds(call.func):  # a class builds a value (an enum, a model): not a send
                continue
            if any(name.split(".")[0] in _NOT_SENDERS for name in self.qualified.of(call.func)):
                continue  # OpenTelemetry (a span event), logging, the standard library
            caught = self._catch(call.func, entry)
            if caught is not None:
                return caught
        return None

    def _through_kit_send(
        self, call: cst.Call, name: str, entry: _Entry
    ) -> tuple[_Target, str, str | None] | None:
        """The carrier handed to the kit's own send (``traced_publish(bus.publish, topic,
        envelope)``, ``traced_send(producer, ...)``) reaches the publish callable or producer."""
        if name == TRACED_PUBLISH:
            publish = _argument(call, 0, "publish")
            return self._catch(publish, entry) if publish is not None else None
        if name == TRACED_SEND:
            producer = _argument(call, 0, "producer")
            target = _resolve_target(producer, entry) if producer is not None else None
            return (target, "value", "send") if target is not None else None
        return None

    def _catch(
        self, func: cst.BaseExpression, entry: _Entry
    ) -> tuple[_Target, str, str | None] | None:
        """How a test records the calls of ``func``: a probe, or a recorder for its receiver
        (with the receiver's method that sends)."""
        if isinstance(func, cst.Name):
            binding = self.module.binding(func.value)
            if func.value in entry.param_names:
                return _Target(func.value, argument=func.value), "value", None
            if binding in ("def", "repo") or (binding is None and func.value not in _BUILTINS
                                              and func.value not in entry.locals):
                patch = Patch("probe", "module", func.value)
                return _Target(func.value, patch=patch), "probe", None
            return None
        if not isinstance(func, cst.Attribute):
            return None
        through_import = self.module.module_attribute(func)
        if through_import is not None:  # httpx.get(...): a client library's module function
            module, attribute = through_import
            if module.split(".")[0] in _STDLIB or module.split(".")[0] in _NOT_SENDERS:
                return None
            patch = Patch("probe", "import", attribute, owner_name=module)
            return _Target(_code(func), patch=patch), "probe", None
        if _root(func.value) in self.module.from_imports and self.module.from_imports[
            _root(func.value) or ""
        ].split(".")[0] in _NOT_SENDERS:
            return None
        if entry.is_self(func.value):  # ``self.publish(channel, message)``: a method of its own
            if func.attr.value not in entry.methods:
                return None
            patch = Patch("probe", "class", func.attr.value)
            return _Target(_code(func), patch=patch), "probe", None
        target = _resolve_target(func.value, entry)
        if target is None:
            return None
        return target, "value", _made_through(func.value, entry) + func.attr.value

    def _record_source(
        self, found: _Found, entry: _Entry, record: cst.BaseExpression | None
    ) -> tuple[tuple[Patch, ...], dict[str, Value], Value]:
        """Where the record comes from, and how the test hands over its own."""
        if found.form == form(Shape.FOR, CONSUME_BATCH):
            assert found.call is not None
            batch = _argument(found.call, 0)
            if not isinstance(batch, cst.Name) or batch.value not in entry.locals:
                raise _CannotDrive("the batch handed to consume_batch is not a local variable "
                                   "filled by getmany() in the same function")
            source = self._loop_source(entry, batch.value)
            name = None
        else:
            if not isinstance(record, cst.Name):
                raise _CannotDrive(f"the record `{_code(record) if record else '?'}` is not a "
                                   "plain name")
            name = record.value
            if name in entry.param_names:
                value = self._record(entry, name)
                return (), {name: value}, value
            source = self._loop_source(entry, name)
        if source is None:
            raise _CannotDrive("the records come from neither a parameter, an `async for` over "
                               "a consumer, getone() nor getmany()")
        target = _resolve_target(source, entry)
        if target is None:
            raise _CannotDrive(f"the consumer `{_code(source)}` is neither a parameter, an "
                               "attribute of self, nor made by a class the test can replace")
        value = self._record(entry, name) if name else Value(Recipe.RECORD)
        patches, given = target.with_value(Value(Recipe.CONSUMER, label=target.label))
        return patches, given, value

    def _loop_source(self, entry: _Entry, name: str, depth: int = 0) -> cst.BaseExpression | None:
        """The consumer a record variable comes from, through ``async for``, ``getone()``,
        ``getmany()`` and the loops over its batch (``for rs in batch.values(): for r in rs``)."""
        if depth > 4:
            return None
        loops: list[cst.BaseExpression] = []

        class _Find(cst.CSTVisitor):
            def visit_For(self, node: cst.For) -> None:
                targets = [node.target] if isinstance(node.target, cst.Name) else [
                    element.value for element in getattr(node.target, "elements", ())]
                if any(isinstance(t, cst.Name) and t.value == name for t in targets):
                    loops.append(node.iter)

        entry.node.body.visit(_Find())
        if not loops:
            value = _unwrap_await(entry.only_value(name))
            return _consumer_of(value, "getone") or _consumer_of(value, "getmany")
        source = loops[0]
        if (isinstance(source, cst.Call) and isinstance(source.func, cst.Name)
                and source.func.value == "enumerate" and source.args):
            source = source.args[0].value  # ``for i, record in enumerate(records)``
        if (
            isinstance(source, cst.Call)
            and isinstance(source.func, cst.Attribute)
            and source.func.attr.value in ("values", "items")
        ):
            source = source.func.value  # the batch of a getmany()
        consumer = _consumer_of(_unwrap_await(source), "getmany")
        if consumer is not None:
            return consumer
        if isinstance(source, cst.Name) and source.value in entry.locals:
            value = _unwrap_await(entry.only_value(source.value))
            if value is None or _consumer_of(value, "getmany") is not None:
                return self._loop_source(entry, source.value, depth + 1)  # a batch or its slice
        return source

    def _record(self, entry: _Entry, name: str) -> Value:
        """A record named ``name`` in the entry; its value an envelope when the code parses one
        (with the keys it reads from the envelope's parts)."""
        model = _envelope_model(entry, name, self.qualified)
        if model is None:  # parsed by a function of the module the record is handed to
            model = next((parsed[1] for values in entry.locals.values() for value in values
                          if (parsed := self._parsed_by(value)) is not None
                          and parsed[0] == name), None)
        model = _model_path(entry, model) if model is not None else None
        overrides: tuple[tuple[str, Value], ...] = ()
        for holder, values in entry.locals.items():
            if any(self._record_feeding_value(value, entry) == name for value in values):
                overrides = _validated_attributes(entry, holder) + _keyed_attributes(
                    entry, holder)
        return Value(Recipe.RECORD, label=name, model=model,
                     attribute="metadata" if model else None, overrides=overrides)

    def _consume(self, case: Case, found: _Found, entry: _Entry) -> Case:
        record = _argument(found.call, 0, "record") if found.call is not None else None
        patches, given, value = self._record_source(found, entry, record)
        for node in found.ancestors:
            # a getmany() batch handed to this function (``for tp, records in batch.items()``)
            # is a dict of record lists, not a consumer: the test hands it its record so
            if (isinstance(node, cst.For) and isinstance(node.iter, cst.Call)
                    and isinstance(node.iter.func, cst.Attribute)
                    and node.iter.func.attr.value in ("items", "values")
                    and isinstance(node.iter.func.value, cst.Name)
                    and node.iter.func.value.value in given):
                batch = node.iter.func.value.value
                given[batch] = Value(Recipe.BATCH, label=batch)
        probes = _patchable_callees(found.block, entry, "probe", self.kit)
        if not probes and not _observable(found.block, entry):
            raise _CannotDrive(f"the block of `{_first_line(found.anchor)}` calls nothing the "
                               "test can observe (no function of this module, no method, no "
                               "collaborator)")
        return _with(case, patches=(*probes, *patches), arguments=self._arguments(entry, given),
                     record=value, without_context=True, stops=self._stops(found, patches, entry))

    def _stops(self, found: _Found, patches: Sequence[Patch], entry: _Entry
               ) -> tuple[tuple[str, str], ...]:
        """How the loops around a site fed by the fake consumer are stopped after its records:
        the stop flags their conditions read (``while not self.should_stop``), else the
        cancellation the fake consumer raises; a loop that swallows that cancellation and has
        no flag cannot be stopped, so its site is not driven."""
        if not any(patch.value is not None and patch.value.recipe in (Recipe.CONSUMER, Recipe.QUEUE)
                   for patch in patches):
            return ()
        stops: list[tuple[str, str]] = []
        loops = [node for node in found.ancestors if isinstance(node, cst.While)]
        for loop in loops:
            stops.extend(_stop_flags(loop.test, entry))
        if loops and not stops:
            outermost = found.ancestors.index(loops[-1])
            for node in found.ancestors[:outermost]:
                if isinstance(node, cst.Try) and any(_swallows_cancel(h) for h in node.handlers):
                    raise _CannotDrive(
                        f"the loop `{_first_line(loops[-1])}` catches the cancellation that "
                        "would stop it after the test's records and has no stop flag the test "
                        "can set, so a test could not end it")
        return tuple(dict.fromkeys(stops))

    def _restore(self, case: Case, found: _Found, entry: _Entry) -> Case:
        assert found.call is not None
        metadata = _argument(found.call, 0)
        given: dict[str, Value] = {}
        patches: tuple[Patch, ...] = ()
        record: Value | None = None
        if isinstance(metadata, cst.Name) and metadata.value in entry.param_names:
            given[metadata.value] = Value(Recipe.CARRIER, label=metadata.value)
        elif isinstance(metadata, cst.Attribute) and isinstance(metadata.value, cst.Name):
            holder, attribute = metadata.value.value, metadata.attr.value
            if holder in entry.param_names:
                overrides = dict(_validated_attributes(
                    entry, holder, [body for _, body in _branches(found)]))
                for guarded, expression in _equal_guards(found, entry).get(holder, {}).items():
                    overrides.setdefault(guarded, Value(Recipe.EXPRESSION, label=expression))
                overrides.pop(attribute, None)
                given[holder] = Value(Recipe.MODEL, label=holder, attribute=attribute,
                                      overrides=tuple(overrides.items()))
            else:
                record_name = self._record_feeding(entry, holder)
                if record_name is None:
                    raise _CannotDrive(f"`{_code(metadata)}` does not come from a parameter or "
                                       "from a record parsed in this function")
                if record_name in entry.param_names:
                    record = _with_attribute(self._record(entry, record_name), attribute)
                    given[record_name] = record
                else:
                    patches, given, record = self._record_source(
                        found, entry, cst.Name(record_name))
                    record = _with_attribute(record, attribute)
        elif metadata is not None and (queued := self._queue_source(entry, metadata)):
            target, keys = queued
            patches, given = target.with_value(Value(Recipe.QUEUE, label=target.label, keys=keys))
        else:
            raise _CannotDrive(f"the trace context `{_code(metadata) if metadata else '?'}` is "
                               "not a parameter or an attribute of one, nor an item read from "
                               "a Redis client the test can replace")
        probes = _patchable_callees(found.block, entry, "probe", self.kit)
        if not probes and not _observable(found.block, entry):
            raise _CannotDrive(f"the block of `{_first_line(found.anchor)}` calls nothing the "
                               "test can observe (no function of this module, no method, no "
                               "collaborator)")
        return _with(case, patches=(*probes, *patches), arguments=self._arguments(entry, given),
                     record=record, without_context=found.name != USE_TRACE_CONTEXT,
                     stops=self._stops(found, patches, entry))

    def _queue_source(
        self, entry: _Entry, item: cst.BaseExpression
    ) -> tuple[_Target, tuple[str, ...]] | None:
        """Where the Redis client the restored ``item`` is read from goes, and the keys the
        code reads from the item: ``item`` is a local bound (through ``json.loads``,
        ``.decode()``, loops over a stream reply, ``message["data"]``) to what a read
        (``blpop``, ``rpop``, ``get_message``, ``listen()``, ``xreadgroup`` ...) returned."""
        name = item.value.value if isinstance(item, cst.Subscript) and isinstance(
            item.value, cst.Name) else item.value if isinstance(item, cst.Name) else None
        if name is None:
            return None
        keys = tuple(_item_keys(entry, name)) if isinstance(item, cst.Name) else ()
        receiver = self._queue_read(entry, name, 0)
        client = _client_of(entry, receiver, 0) if receiver is not None else None
        if client is None:
            return None
        if isinstance(client, cst.Attribute) and entry.is_self(client.value):
            # the subject's own client: replaced on the instance, whatever __init__ made
            return _Target(_code(client), patch=Patch("value", "subject", client.attr.value)), keys
        target = _resolve_target(client, entry)
        return (target, keys) if target is not None else None

    def _queue_read(self, entry: _Entry, name: str, depth: int) -> cst.BaseExpression | None:
        """The receiver of the Redis read whose reply ``name`` holds (or part of it)."""
        if depth > 5:
            return None
        for bound in _bindings(entry, name):
            value: cst.BaseExpression | None = _unwrap_await(bound)
            if isinstance(value, cst.Subscript):  # ``raw = reply[1]``
                value = _unwrap_await(value.value)
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute):
                if value.func.attr.value in _QUEUE_READS:
                    return value.func.value
                if value.func.attr.value == "decode":
                    value = value.func.value
            if isinstance(value, cst.Call) and self.qualified.of(value.func) & JSON_LOADS \
                    and value.args:
                value = _unwrap_decode(value.args[0].value)
            if isinstance(value, cst.Subscript):
                value = value.value
            if isinstance(value, cst.Name) and value.value != name:
                found = self._queue_read(entry, value.value, depth + 1)
                if found is not None:
                    return found
        return None

    def _record_feeding(self, entry: _Entry, holder: str) -> str | None:
        """``msg`` of ``holder = M.model_validate_json(msg.value)`` (its first binding)."""
        values = [value for value in entry.locals.get(holder, []) if value is not None]
        return self._record_feeding_value(values[0] if values else None, entry)

    def _parsed_by(self, value: cst.BaseExpression | None) -> tuple[str, str] | None:
        """(record, model) of ``parse(record)``, a module function whose first parameter is
        a record it parses into a model (``_deserialize_message(msg)`` returning
        ``EventEnvelope[Any].model_validate_json(msg.value.decode())``)."""
        value = _unwrap_await(value)
        if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.args
                and isinstance(value.args[0].value, cst.Name) and value.args[0].keyword is None):
            return None
        helper = self.module.defs.get(value.func.value)
        if helper is None:
            return None
        parser = _Entry(helper, None, self.module)
        if not parser.params:
            return None
        model = _envelope_model(parser, parser.params[0].name, self.qualified)
        return (value.args[0].value.value, model) if model is not None else None

    def _record_feeding_value(self, value: cst.BaseExpression | None,
                              entry: _Entry | None = None) -> str | None:
        parsed = self._parsed_by(value)
        if parsed is not None:
            return parsed[0]
        value = _unwrap_await(value)
        if not isinstance(value, cst.Call) or not value.args:
            return None
        argument = value.args[0].value
        argument = _unwrap_decode(_through_locals(entry, argument) if entry else argument)
        if isinstance(argument, cst.Call) and self.qualified.of(argument.func) & JSON_LOADS:
            argument = _unwrap_decode(argument.args[0].value) if argument.args else argument
            if entry is not None:
                argument = _unwrap_decode(_through_locals(entry, argument))
        if isinstance(argument, cst.Attribute) and argument.attr.value == "value" and isinstance(
            argument.value, cst.Name
        ):
            return argument.value.value
        return None

    def _token(self, case: Case, found: _Found, entry: _Entry) -> Case:
        attach = found.anchor
        used_before = _names_before(entry.node, attach)
        in_attach = _names_in(attach)
        guarded = list(found.block)
        failures = _patchable_callees(guarded, entry, "fail", self.kit)
        given: dict[str, Value] = {}
        attached = {
            name for call in _calls_in([entry.node.body])
            if ATTACH in self.qualified.of(call.func) or _code(call.func) in self.attach_aliases
            for arg in call.args for name in _names_in(arg.value)
        }
        for param in entry.params:
            if param.name in attached or (param.name in in_attach and
                                          param.name not in used_before):
                given[param.name] = Value(Recipe.CONTEXT, label=param.name)
            elif param.name not in used_before and any(
                param.name in _names_in(node) for node in guarded
            ):
                given[param.name] = Value(Recipe.POISON, label=param.name)
        poisons = [name for name, value in given.items() if value.recipe is Recipe.POISON]
        if not failures and not poisons:
            raise _CannotDrive(
                f"nothing inside the block guarded by `{_first_line(attach)}` can be made to "
                "raise: it calls no function of this module or method of the class, and uses no "
                "parameter first; edit this test to raise inside it"
            )
        return _with(case, patches=tuple(failures), arguments=self._arguments(entry, given))


def _branches(found: _Found) -> list[tuple[cst.If, cst.IndentedBlock]]:
    """The ``if``/``elif`` statements whose body holds the site, innermost first, each with
    that body."""
    branches = []
    child: cst.CSTNode = found.anchor
    for node in found.ancestors:
        if isinstance(node, cst.If) and child is node.body and isinstance(
                node.body, cst.IndentedBlock):
            branches.append((node, node.body))
        child = node
    return branches


def _equal_guards(found: _Found, entry: _Entry) -> dict[str, dict[str, str]]:
    """What the branches holding the site require of parameters' attributes:
    ``if event_type == topic_name(Event.X):`` with ``event_type = envelope.event_type``
    gives ``{"envelope": {"event_type": "topic_name(Event.X)"}}``. Only a right-hand side
    made of names, attributes, literals and calls of those is kept (a test evaluates it in
    the module)."""
    wanted: dict[str, dict[str, str]] = {}
    for branch, _ in _branches(found):
        test = branch.test
        if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
                and isinstance(test.comparisons[0].operator, cst.Equal)):
            continue
        left, right = test.left, test.comparisons[0].comparator
        if isinstance(left, cst.Name) and left.value in entry.locals:
            bound = entry.only_value(left.value)
            left = bound if bound is not None else left
        if not (isinstance(left, cst.Attribute) and isinstance(left.value, cst.Name)
                and left.value.value in entry.param_names and _evaluable(right, entry)):
            continue
        wanted.setdefault(left.value.value, {}).setdefault(left.attr.value, _code(right))
    return wanted


def _literal_guards(found: _Found, entry: _Entry) -> dict[str, str]:
    """Parameters a branch holding the site compares with a literal (``if mode ==
    "stream":``), never rebound: the test passes that literal."""
    wanted: dict[str, str] = {}
    for branch, _ in _branches(found):
        test = branch.test
        if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
                and isinstance(test.comparisons[0].operator, cst.Equal)):
            continue
        left, right = test.left, test.comparisons[0].comparator
        if isinstance(right, cst.Name) and isinstance(left, (cst.SimpleString, cst.Integer)):
            left, right = right, left
        if (isinstance(left, cst.Name) and left.value in entry.param_names
                and left.value not in entry.locals
                and isinstance(right, (cst.SimpleString, cst.Integer))):
            wanted.setdefault(left.value, _code(right))
    return wanted


def _ready_flags(found: _Found, entry: _Entry) -> tuple[Patch, ...]:
    """``self.started = True`` for an ``if not self.started: raise ...`` before the site (a
    readiness flag the start-up the test does not run would set)."""
    if not entry.self_name:
        return ()
    around = set(map(id, found.ancestors))
    flags: list[str] = []

    class _Collect(cst.CSTVisitor):
        def visit_If(self, node: cst.If) -> None:
            test = node.test
            if id(node) in around or node.orelse is not None or not (
                isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
                and isinstance(test.expression, cst.Attribute)
                and entry.is_self(test.expression.value)
            ):
                return
            body = node.body.body if isinstance(node.body, cst.IndentedBlock) else ()
            if len(body) == 1 and isinstance(body[0], cst.SimpleStatementLine) and isinstance(
                body[0].body[0], cst.Raise
            ):
                flag = test.expression.attr.value
                if flag not in entry.self_assigned and flag not in entry.methods:
                    flags.append(flag)

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

    entry.node.body.visit(_Collect())
    return tuple(Patch("value", "subject", flag, label=f"{entry.self_name}.{flag}",
                       value=Value(Recipe.EXPRESSION, label="True"))
                 for flag in dict.fromkeys(flags))


def _falsy_guards(found: _Found, entry: _Entry) -> dict[str, tuple[str, ...]]:
    """Attributes of parameters that an ``if`` not holding the site refuses when empty
    (``if not event_data.parent_id: raise ...``, ``if data.x is None: return``): a test
    fills them in, though the model lets them default to None."""
    around = set(map(id, found.ancestors))
    wanted: dict[str, list[str]] = {}

    def attribute(node: cst.CSTNode) -> tuple[str, str] | None:
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and (
                node.value.value in entry.param_names):
            return node.value.value, node.attr.value
        return None

    class _Collect(cst.CSTVisitor):
        def visit_If(self, node: cst.If) -> None:
            if id(node) in around:
                return
            test, found_attribute = node.test, None
            if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
                found_attribute = attribute(test.expression)
            elif (isinstance(test, cst.Comparison) and len(test.comparisons) == 1
                  and isinstance(test.comparisons[0].operator, cst.Is)
                  and isinstance(test.comparisons[0].comparator, cst.Name)
                  and test.comparisons[0].comparator.value == "None"):
                found_attribute = attribute(test.left)
            if found_attribute is not None:
                names = wanted.setdefault(found_attribute[0], [])
                if found_attribute[1] not in names:
                    names.append(found_attribute[1])

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

    entry.node.body.visit(_Collect())
    return {name: tuple(attributes) for name, attributes in wanted.items()}


def _evaluable(node: cst.CSTNode, entry: _Entry) -> bool:
    """Whether ``node`` is built only from module-level names, attributes, literals and calls."""
    if isinstance(node, (cst.SimpleString, cst.Integer)):
        return True
    if isinstance(node, cst.Name):
        return entry.module.binding(node.value) is not None and node.value not in (
            entry.locals.keys() | entry.param_names)
    if isinstance(node, cst.Attribute):
        return _evaluable(node.value, entry)
    if isinstance(node, cst.Call):
        return _evaluable(node.func, entry) and all(
            arg.star == "" and _evaluable(arg.value, entry) for arg in node.args)
    return False


# what ``Case.test_names`` adds to a consume or restore case's name
_LONGEST_SUFFIX = len("_without_context_still_gets_a_span")


def _cut(name: str, limit: int | None) -> str:
    """``name`` within ``limit`` characters (room kept for a ``_<n>`` suffix), cut at a word."""
    if limit is None or len(name) <= limit:
        return name
    room = max(limit - 3, 12)
    cut = name[:room]
    return cut.rsplit("_", 1)[0] if "_" in cut[5:] else cut


class _CannotDrive(Exception):
    """The reason a site's test is generated skipped."""


def _with(case: Case, **changes) -> Case:
    from dataclasses import replace

    return replace(case, **changes)


def _with_attribute(record: Value, attribute: str) -> Value:
    from dataclasses import replace

    return replace(record, attribute=attribute)


def _skip(case: Case, reason: str) -> Case:
    return _with(case, skip=reason)


def _taint(node: cst.CSTNode) -> str:
    """The name a carrier travels under: ``result`` for ``result.metadata``, ``self.x`` kept."""
    dotted = dotted_name(node) or ""
    parts = dotted.split(".")
    if parts[0] == "self" and len(parts) > 1:
        return ".".join(parts[:2])
    return parts[0]


def _builds(func: cst.BaseExpression) -> bool:
    """A call of a CapWords name builds a value (a class), it does not send one."""
    name = func.attr.value if isinstance(func, cst.Attribute) else (
        func.value if isinstance(func, cst.Name) else "")
    return bool(name) and name[0].isupper() and not name.isupper()


def _carries(node: cst.CSTNode, tokens: set[str], carriers: set[str]) -> bool:
    """Whether ``node`` hands the carrier on: the carrier itself, the object holding it (or
    what its methods make of it, ``envelope.model_dump()``) inside a value or a call; not an
    attribute read of another field (``envelope.event_type``) nor a test (``"k" in carrier``)."""
    found = [False]

    class _Look(cst.CSTVisitor):
        def visit_Comparison(self, _: cst.Comparison) -> bool:
            return False

        def visit_Lambda(self, _: cst.Lambda) -> bool:
            return False

        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            dotted = dotted_name(attribute)
            if dotted is None:
                return True
            if dotted in tokens or dotted in carriers or any(
                carrier.startswith(f"{dotted}.") for carrier in carriers
            ):
                found[0] = True
                return False
            return False  # another field of the holder, or a name's attribute

        def visit_Call(self, call: cst.Call) -> bool:
            func = call.func
            if isinstance(func, cst.Attribute) and dotted_name(func.value) in tokens:
                # a method of the holder serialises or copies it; of the carrier itself,
                # anything but its key names (``carrier.get("traceparent")``, ``.items()``)
                holder = dotted_name(func.value) not in carriers
                found[0] = found[0] or holder or func.attr.value != "keys"
                return False
            return True

        def visit_Name(self, name: cst.Name) -> None:
            if name.value in tokens:
                found[0] = True

    node.visit(_Look())
    return found[0]


def _stop_flags(test: cst.BaseExpression, entry: _Entry) -> list[tuple[str, str]]:
    """(attribute of self, value that ends the loop) for each flag a ``while`` test reads:
    ``not self.stop`` -> True, ``self.running`` -> False, ``not self.done.is_set()`` -> "set"."""
    if isinstance(test, cst.BooleanOperation):
        if isinstance(test.operator, cst.And):  # either side ends it
            return _stop_flags(test.left, entry) + _stop_flags(test.right, entry)
        return []
    negated = isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
    inner = test.expression if isinstance(test, cst.UnaryOperation) else test
    if (
        isinstance(inner, cst.Attribute)
        and entry.is_self(inner.value)
    ):
        return [(inner.attr.value, "True" if negated else "False")]
    if (
        negated
        and isinstance(inner, cst.Call)
        and isinstance(inner.func, cst.Attribute)
        and inner.func.attr.value == "is_set"
        and isinstance(inner.func.value, cst.Attribute)
        and entry.is_self(inner.func.value.value)
    ):
        return [(inner.func.value.attr.value, "set")]
    return []


def _swallows_cancel(handler: cst.ExceptHandler) -> bool:
    """A handler that catches a cancellation and neither re-raises nor leaves the loop."""
    if handler.type is not None:
        caught = _names_in(handler.type)
        if not any(name.split(".")[-1] in _CATCHES_CANCEL for name in caught):
            return False
    leaves = [False]

    class _Leave(cst.CSTVisitor):
        def visit_Raise(self, _: cst.Raise) -> None:
            leaves[0] = True

        def visit_Return(self, _: cst.Return) -> None:
            leaves[0] = True

        def visit_Break(self, _: cst.Break) -> None:
            leaves[0] = True

        def visit_FunctionDef(self, _: cst.FunctionDef) -> bool:
            return False

    handler.body.visit(_Leave())
    return not leaves[0]


def _consumer_of(value: cst.BaseExpression | None, method: str) -> cst.BaseExpression | None:
    if (
        isinstance(value, cst.Call)
        and isinstance(value.func, cst.Attribute)
        and value.func.attr.value == method
    ):
        return value.func.value
    return None


def _header_parts(statement: cst.CSTNode) -> list[cst.CSTNode]:
    """The expressions a compound statement evaluates itself (not its body)."""
    if isinstance(statement, (cst.If, cst.While)):
        return [statement.test]
    if isinstance(statement, cst.For):
        return [statement.iter]
    if isinstance(statement, cst.With):
        return [item.item for item in statement.items]
    return []


def _statements_after(function: cst.FunctionDef, statement: cst.CSTNode) -> list[cst.CSTNode]:
    """Statements that run after ``statement`` in source order (any depth, same function)."""
    ordered: list[cst.CSTNode] = []

    class _Collect(cst.CSTVisitor):
        def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
            ordered.append(node)

        def visit_If(self, node: cst.If) -> None:
            ordered.append(node)

        def visit_For(self, node: cst.For) -> None:
            ordered.append(node)

        def visit_While(self, node: cst.While) -> None:
            ordered.append(node)

        def visit_With(self, node: cst.With) -> None:
            ordered.append(node)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is function

    function.visit(_Collect())
    if statement not in ordered:
        return []
    return ordered[ordered.index(statement) + 1:]


def _names_before(function: cst.FunctionDef, statement: cst.CSTNode) -> set[str]:
    """Names used by the statements before ``statement`` in the function (source order)."""
    names: set[str] = set()
    stop = [False]

    class _Collect(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if stop[0]:
                return False
            if node is statement:
                stop[0] = True
                return False
            if isinstance(node, cst.Name):
                names.add(node.value)
            return True

    function.body.visit(_Collect())
    return names


_SUMMARIES = {
    CONSUME: "records are handled inside a span continuing the record's trace",
    RESTORE: "the handler's work continues the trace carried in the message",
    PRODUCE: "what is sent carries the sending span's trace context",
    INJECT: "what is sent carries the caller's trace context",
    THREAD: "the work handed to the thread runs in the submitting span's trace",
    TOKEN: "after a failure inside the guarded block the caller's context is current again",
    BOOTSTRAP: "tracing is set up at start-up",
}


def locate(
    source: str,
    *,
    path: str,
    module: str,
    repo_packages: Iterable[str],
    kit: str | None = None,
    helper_module: str | None = None,
    max_name: int | None = None,
) -> ModuleTests:
    """Every instrumented site of one module, each with the plan of its test; ``max_name``
    cuts the tests' names (at a word) so their ``def`` lines fit the repo's line length."""
    tree = cst.parse_module(source)
    wrapper = MetadataWrapper(tree, unsafe_skip_copy=True)
    facts = _Module.of(tree, repo_packages)
    kit_names = _KitNames(kit, helper_module)
    locator = _Locator(facts, kit_names)
    wrapper.visit(locator)
    local_kit = frozenset(
        local for local, source_name in facts.from_imports.items()
        if kit_names.kind({source_name.lstrip(".")} | {source_name}) is not None
    )
    kit_names = _KitNames(kit, helper_module, local_kit)
    positions = wrapper.resolve(PositionProvider)
    planner = _Planner(facts, kit_names, _Qualified(wrapper), locator.attach_aliases)
    tests = ModuleTests(module=module, path=path)
    names: dict[str, int] = {}
    for found in sorted(locator.found, key=lambda f: (positions[f.anchor].start.line,
                                                      positions[f.anchor].start.column)):
        where = positions[found.anchor].start
        entry_name = found.entry.qualname if found.entry is not None else (
            found.cls.name.value if found.cls is not None else None)
        site = Site(
            kind=found.kind, form=found.form, path=path, module=module, line=where.line,
            column=where.column + 1, code=_first_line(found.anchor), entry=entry_name,
        )
        case = planner.plan(found, site)
        limit = max_name - _LONGEST_SUFFIX if max_name is not None and found.kind in (
            CONSUME, RESTORE) else max_name
        base = _cut(f"test_{found.kind}_{_snake(entry_name or 'module')}", limit)
        names[base] = names.get(base, 0) + 1
        name = base if names[base] == 1 else f"{base}_{names[base]}"
        tests.cases.append(_with(case, name=name))
    return tests
