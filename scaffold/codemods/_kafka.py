"""What kafka-produce and kafka-consume share: which names hold a producer or a consumer.

Not a codemod (the leading underscore keeps it out of the registry). A name holds an instance
when the file binds it to a construction (``AIOKafkaProducer(...)``, ``self._consumer =
AIOKafkaConsumer(...)``, ``async with AIOKafkaProducer(...) as producer``), annotates it with
the class (``producer: AIOKafkaProducer | None``), or copies another such name. ``self.x``
bindings belong to their class, so an attribute built in ``start()`` is found in ``publish()``;
plain names belong to their function, or to the module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from scaffold.codemods._arguments import with_separators as with_separators
from scaffold.codemods.base import Codemod, dotted_name
from scaffold.engine.discovery import is_test_support
from scaffold.engine.fast import FastVisitor
from scaffold.engine.model import NO_KIT_MESSAGE

PRODUCER_CLASSES = frozenset({
    "aiokafka.AIOKafkaProducer",
    "aiokafka.producer.AIOKafkaProducer",
    "aiokafka.producer.producer.AIOKafkaProducer",
})
CONSUMER_CLASSES = frozenset({
    "aiokafka.AIOKafkaConsumer",
    "aiokafka.consumer.AIOKafkaConsumer",
    "aiokafka.consumer.consumer.AIOKafkaConsumer",
})

Scope = cst.CSTNode  # a Module, a ClassDef (its self.x attributes) or a FunctionDef
Classify = Callable[[cst.CSTNode], "str | None"]  # expression -> what its instances are
FACTORY = "()"  # a kind's suffix for what makes instances of it: the class itself, a factory


@dataclass(frozen=True)
class Binding:
    """A name holding an instance: of what, built by which call, in which function."""

    kind: str
    call: cst.Call | None = None  # the construction, when the name was bound to one
    function: cst.FunctionDef | None = None  # where it was bound (None: class or module level)


def code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def matches(qualified: str, entry: str) -> bool:
    """Does a qualified name match a configured dotted name (its module path optional)?"""
    return qualified == entry or qualified.endswith("." + entry)


class Bindings:
    """Instances by scope, filled by ``collect`` and read at each call site."""

    def __init__(self) -> None:
        self._scopes: dict[Scope, dict[str, Binding]] = {}

    def bind(self, scope: Scope, name: str, binding: Binding) -> None:
        self._scopes.setdefault(scope, {})[name] = binding

    def lookup(self, name: str, module: cst.Module, classes: Sequence[cst.ClassDef],
               functions: Sequence[cst.FunctionDef]) -> Binding | None:
        """What ``name`` holds where the innermost class and functions are the given ones."""
        if name.startswith("self."):
            return self._scopes.get(classes[-1], {}).get(name) if classes else None
        for scope in (*reversed(functions), module):
            found = self._scopes.get(scope, {}).get(name)
            if found is not None:
                return found
        return None



def collect(module: cst.Module, classify: Classify,
            derived: Mapping[tuple[str, str], str] | None = None) -> Bindings:
    """Every binding of ``module`` to an instance ``classify`` recognises.

    ``classify`` gets the callee of a call, or a name inside an annotation, and says what
    its instances are (None: nothing of interest). ``derived`` maps (kind, method) to the
    kind of what that method returns: ``("producer", "create_batch"): "batch"``.
    """
    found = Bindings()
    module.visit(_Collector(module, classify, found, derived or {}))
    return found


class _Collector(FastVisitor):
    def __init__(self, module: cst.Module, classify: Classify, found: Bindings,
                 derived: Mapping[tuple[str, str], str]) -> None:
        self.module, self.classify, self.found, self.derived = module, classify, found, derived
        self.classes: list[cst.ClassDef] = []
        self.functions: list[cst.FunctionDef] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            kind = self._annotated(param.annotation)
            if kind is not None:
                self.found.bind(node, param.name.value, Binding(kind, None, node))

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def _annotated(self, annotation: cst.Annotation | None) -> str | None:
        if annotation is None:
            return None
        names: list[cst.CSTNode] = []

        class _Names(FastVisitor):
            def visit_Name(self, node: cst.Name) -> None:
                names.append(node)

            def visit_Attribute(self, node: cst.Attribute) -> bool:
                names.append(node)
                return False

        annotation.annotation.visit(_Names())
        return next((kind for kind in map(self.classify, names) if kind is not None), None)

    def _value(self, value: cst.BaseExpression | None) -> Binding | None:
        function = self.functions[-1] if self.functions else None
        if isinstance(value, cst.Await):
            value = value.expression
        if isinstance(value, cst.Call):
            kind = self.classify(value.func)
            if kind is None:
                # a factory held in a name: ``self.factory = factory or AIOKafkaConsumer``
                held = self._value(value.func)
                if held is not None and held.kind.endswith(FACTORY):
                    kind = held.kind.removesuffix(FACTORY)
            if kind is None and isinstance(value.func, cst.Attribute):
                receiver = self._value(value.func.value)
                if receiver is not None:
                    kind = self.derived.get((receiver.kind, value.func.attr.value))
            return Binding(kind, value, function) if kind is not None else None
        if isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or):
            # ``injected or Default``: what the caller injects stands in for the default
            left, right = self._value(value.left), self._value(value.right)
            if left is None or right is None or left.kind == right.kind:
                return left or right
            return None
        name = dotted_name(value) if value is not None else None
        if name is None:
            return None
        found = self.found.lookup(name, self.module, self.classes, self.functions)
        if found is None and value is not None:
            kind = self.classify(value)  # the class itself, not an instance: a factory
            if kind is not None and not kind.endswith(FACTORY):
                return Binding(kind + FACTORY, None, function)
        return found

    def _bind(self, target: cst.CSTNode, binding: Binding | None) -> None:
        name = dotted_name(target)
        if binding is None or name is None:
            return
        if name.startswith("self."):
            if self.classes and self.functions:
                self.found.bind(self.classes[-1], name, binding)
        elif "." not in name and self.functions:
            self.found.bind(self.functions[-1], name, binding)
        else:
            self.found.bind(self.module, name, binding)

    def visit_Assign(self, node: cst.Assign) -> None:
        binding = self._value(node.value)
        for target in node.targets:
            self._bind(target.target, binding)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        binding = self._value(node.value)
        if binding is None:
            kind = self._annotated(node.annotation)
            function = self.functions[-1] if self.functions else None
            binding = Binding(kind, None, function) if kind is not None else None
        self._bind(node.target, binding)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind(node.asname.name, self._value(node.item))


class KafkaCodemod(Codemod):
    """Base of the Kafka codemods: the bindings of the file and the scopes around a node."""

    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self.bindings = Bindings()
        self.classes: list[cst.ClassDef] = []
        self.functions: list[cst.FunctionDef] = []
        self._columns = [0]

    DERIVED: ClassVar[Mapping[tuple[str, str], str]] = {}  # see collect()

    def classify(self, expr: cst.CSTNode) -> str | None:
        """What instances of the callee or annotation ``expr`` are (None: nothing of interest)."""
        raise NotImplementedError

    def visit_Module(self, node: cst.Module) -> bool:
        if self.in_test_file or is_test_support(self.path):
            return False  # tests send and read records by hand to observe propagation
        self.bindings = collect(node, self.classify, self.DERIVED)
        return True

    def lookup(self, expr: cst.CSTNode) -> Binding | None:
        """What the expression holds here, if it is a name the file bound to an instance."""
        name = dotted_name(expr)
        if name is None:
            return None
        return self.bindings.lookup(name, self.module, self.classes, self.functions)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef,
                       updated_node: cst.ClassDef) -> cst.BaseStatement:
        self.classes.pop()
        return updated_node

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.BaseStatement:
        self.functions.pop()
        return updated_node

    # -- where code is: the columns of the blocks around the node being visited --

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        self._columns.append(self._columns[-1] + self.indent_width(node))

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        self._columns.pop()
        return updated_node

    @property
    def column(self) -> int:
        """The column of the statements of the innermost block being visited."""
        return self._columns[-1]

    def indent_width(self, block: cst.BaseSuite | None = None) -> int:
        """How far a block (a new one: None) indents its statements."""
        indent = getattr(block, "indent", None)
        return len((indent if indent is not None else self.module.default_indent).expandtabs(8))

    def has_kit(self, node: cst.CSTNode) -> bool:
        """Can this file import the kit? If not, ``node`` is reported."""
        if self.settings.kit:
            return True
        self.report(node, f"{NO_KIT_MESSAGE}: retrofit found no safe place to vendor one "
                    "for this file; set kit = \"<package>.tracekit\" in [tool.scaffold]")
        return False

    def kit_name(self, name: str) -> str:
        """The local name of a kit function (call after ``has_kit``), imported if needed."""
        assert self.settings.kit is not None
        return self.name_for(self.settings.kit, name)


def argument(call: cst.Call, index: int, name: str) -> cst.Arg | None:
    """The Arg passed for a parameter, by keyword or position (None if not passed)."""
    positional = 0
    for arg in call.args:
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return arg
        elif not arg.star:
            if positional == index:
                return arg
            positional += 1
    return None


def calls_named(node: cst.CSTNode, names: frozenset[str]) -> list[cst.Call]:
    """Calls inside ``node`` whose callee's last name is one of ``names``."""
    found: list[cst.Call] = []

    class _Calls(FastVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            callee = dotted_name(call.func)
            if callee is not None and callee.rsplit(".", 1)[-1] in names:
                found.append(call)

    node.visit(_Calls())
    return found


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword and arg.keyword.value == name), None)


def keyword_arg(name: str, value: cst.BaseExpression) -> cst.Arg:
    return cst.Arg(value=value, keyword=cst.Name(name),
                   equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))


def appended(args: Sequence[cst.Arg], extra: Sequence[cst.Arg]) -> list[cst.Arg]:
    """``args`` then ``extra``, laid out as ``args`` are: the last argument's comma (a trailing
    comma before a closing line) moves to the new last one, separators between the rest."""
    if not extra or not args:
        return with_separators([*args, *extra])
    last = args[-1]
    result = with_separators([*args[:-1], last.with_changes(comma=cst.MaybeSentinel.DEFAULT),
                              *extra])
    if isinstance(last.comma, cst.Comma):
        result[-1] = result[-1].with_changes(comma=last.comma)
    return result
