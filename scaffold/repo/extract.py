"""One module's facts from its stdlib ``ast``: imports, definitions, signatures, calls.

Names are made absolute here with what the module itself says (its imports and definitions,
Python's scoping: a name assigned in a function is local there); following re-exports into
other modules is the model's job (``RepoModel.canonical``).
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scaffold.repo.info import (
    LOCALS,
    MAIN_CODE,
    MODULE_CODE,
    Binding,
    CallSite,
    ClassInfo,
    FunctionInfo,
    ImportInfo,
    ModuleInfo,
    Param,
    ParamKind,
)

_UNTYPED = frozenset({"typing.Any", "typing_extensions.Any", "typing.Self",
                      "typing_extensions.Self"})  # annotations that say nothing to follow
_TEXT_LIMIT = 200  # longest argument/default source kept (a long literal says nothing more)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_SCOPE_TYPES = frozenset(_SCOPES)
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class _Typed(str):
    """A local holding an instance of this (absolute) type: ``x.m`` is ``Type.m``."""


@dataclass
class Extracted:
    """What one file contributes to the model."""

    module: ModuleInfo
    functions: list[FunctionInfo] = field(default_factory=list)
    classes: list[ClassInfo] = field(default_factory=list)


class _Source:
    """Source text of nodes, by the byte offsets ast gives (UTF-8 of the decoded text)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.starts = [0]
        index = data.find(b"\n")
        while index >= 0:
            self.starts.append(index + 1)
            index = data.find(b"\n", index + 1)

    def text(self, node: ast.AST, limit: int = _TEXT_LIMIT) -> str:
        try:
            start = self.starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
            end = self.starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
            text = self.data[start:end].decode("utf-8", errors="replace")
        except (AttributeError, IndexError, TypeError):
            text = ast.unparse(node)
        return text if len(text) <= limit else text[:limit] + "..."


def utf8_of(source: bytes) -> bytes:
    """The source as UTF-8 (what ast's column offsets count in), whatever its encoding."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError:
        return source
    if encoding in ("utf-8", "utf-8-sig"):
        return source.removeprefix(b"\xef\xbb\xbf")
    try:
        return source.decode(encoding).encode("utf-8")
    except (LookupError, UnicodeError):
        return source


def dotted_expression(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of attributes on a name; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either way round)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = (test.left, test.comparators[0])
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
        isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def absolute_module(module: str, is_package: bool, level: int, name: str | None) -> str | None:
    """The module a ``from {'.' * level}{name} import`` in ``module`` reads from."""
    if level == 0:
        return name
    package = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(package) or (level - 1 == len(package) and not name):
        return None
    base = package[:len(package) - (level - 1)]
    return ".".join([*base, *([name] if name else [])]) or None


def _imports(node: ast.Import | ast.ImportFrom, module: str,
             is_package: bool) -> Iterator[ImportInfo]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                yield ImportInfo(alias.asname, alias.name, node.lineno)
            else:  # `import a.b` binds `a`
                head = alias.name.split(".")[0]
                yield ImportInfo(head, head, node.lineno)
        return
    source = absolute_module(module, is_package, node.level, node.module)
    if source is None:
        return
    for alias in node.names:
        if alias.name == "*":
            yield ImportInfo("*", source, node.lineno, star=True)
        else:
            yield ImportInfo(alias.asname or alias.name, f"{source}.{alias.name}", node.lineno)


# fields that never hold a node (or hold ones nothing here reads): not entered
_SCALAR_FIELDS = frozenset({
    "ctx", "op", "ops", "id", "attr", "arg", "name", "names", "module", "level",
    "type_comment", "kind", "conversion", "kwd_attrs", "type_ignores", "is_async",
    "lineno", "col_offset", "end_lineno", "end_col_offset",
})
_FIELDS: dict[type, tuple[str, ...]] = {}
_LEAVES = (ast.Constant, ast.Import, ast.ImportFrom, ast.Global, ast.Nonlocal, ast.Pass,
           ast.Break, ast.Continue, ast.alias, ast.MatchSingleton)


def _fields(cls: type) -> tuple[str, ...]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = () if not issubclass(cls, ast.AST) or issubclass(cls, _LEAVES) else tuple(
            name for name in cls._fields if name not in _SCALAR_FIELDS)  # type: ignore[attr-defined]
        _FIELDS[cls] = fields
    return fields


def _walk_scope(nodes: Iterable[ast.AST]) -> Iterator[ast.AST]:
    """Every node under ``nodes`` that runs in their scope: nested functions and classes are
    yielded but not entered (their decorators, defaults and bases are entered)."""
    stack: list[Any] = list(nodes)
    stack.reverse()
    pop, extend, append = stack.pop, stack.extend, stack.append
    while stack:
        node = pop()
        cls = node.__class__
        if node is None or cls not in _FIELDS and not issubclass(cls, ast.AST):
            continue  # Dict.keys and kw_defaults hold Nones
        yield node
        if cls in _SCOPE_TYPES:
            outer: list[Any] = list(node.decorator_list)
            if cls is ast.ClassDef:
                outer += [*node.bases, *(k.value for k in node.keywords)]
            else:
                args = node.args
                outer += [*args.defaults, *args.kw_defaults]
            outer.reverse()
            extend(outer)
            continue
        for name in reversed(_fields(cls)):
            value = getattr(node, name, None)
            if value is None:
                continue
            if value.__class__ is list:
                extend(reversed(value))
            else:
                append(value)


class _Extractor:
    def __init__(self, module: str, path: Path, is_package: bool, source: _Source) -> None:
        self.module = module
        self.path = path
        self.is_package = is_package
        self.source = source
        self.out = Extracted(ModuleInfo(module, path, is_package))
        self.globals: dict[str, str | None] = {}  # top-level name -> absolute target
        self.stars: list[str] = []
        self.attributes: dict[str, dict[str, str]] = {}  # class -> attribute -> type
        self.assigns: list[ast.AST] = []  # of the block _block walked last

    # -- the module's top level --

    def run(self, tree: ast.Module) -> Extracted:
        imports: list[ImportInfo] = []
        bindings: dict[str, Binding] = {}
        top: list[ast.stmt] = []  # top-level statements outside the main guard
        main: ast.If | None = None
        pending = list(tree.body)
        while pending:
            statement = pending.pop(0)
            if main is None and is_main_guard(statement):
                main = statement  # type: ignore[assignment]
                continue
            top.append(statement)
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                for item in _imports(statement, self.module, self.is_package):
                    imports.append(item)
                    if item.star:
                        self.stars.append(item.target)
                        continue
                    self.globals[item.local] = item.target
                    bindings[item.local] = Binding.IMPORT
            elif isinstance(statement, _SCOPES):
                kind = Binding.CLASS if isinstance(statement, ast.ClassDef) else Binding.FUNCTION
                self.globals[statement.name] = f"{self.module}.{statement.name}"
                bindings[statement.name] = kind
            elif isinstance(statement, (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For,
                                        ast.AsyncFor, ast.While, ast.TryStar)):
                # conditional imports and definitions bind at top level too; their other code
                # runs at import as well, so it stays in `top` through its parent
                for child in _blocks(statement):
                    self._bind_nested(child, imports, bindings)
            else:
                for name in _stored_names([statement]):
                    if name not in bindings:
                        self.globals.setdefault(name, f"{self.module}.{name}")
                        bindings[name] = Binding.VARIABLE
        self.out.module = ModuleInfo(self.module, self.path, self.is_package, tuple(imports),
                                     bindings, has_main_guard=main is not None)
        self._code(MODULE_CODE, top, tree)
        if main is not None:
            self._code(MAIN_CODE, main.body, main, scoped=True)
        functions = tuple(f.dotted for f in self.out.functions)
        classes = tuple(c.dotted for c in self.out.classes)
        self.out.module = replace(self.out.module, functions=functions, classes=classes)
        return self.out

    def _bind_nested(self, statement: ast.stmt, imports: list[ImportInfo],
                     bindings: dict[str, Binding]) -> None:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for item in _imports(statement, self.module, self.is_package):
                imports.append(item)
                if item.star:
                    self.stars.append(item.target)
                elif bindings.get(item.local) is not Binding.FUNCTION:
                    self.globals[item.local] = item.target
                    bindings[item.local] = Binding.IMPORT
        elif isinstance(statement, _SCOPES):
            kind = Binding.CLASS if isinstance(statement, ast.ClassDef) else Binding.FUNCTION
            if bindings.get(statement.name) is not Binding.IMPORT:
                self.globals[statement.name] = f"{self.module}.{statement.name}"
                bindings[statement.name] = kind
        elif isinstance(statement, (ast.If, ast.Try, ast.With, ast.AsyncWith, ast.For,
                                    ast.AsyncFor, ast.While, ast.TryStar)):
            for child in _blocks(statement):
                self._bind_nested(child, imports, bindings)
        else:
            for name in _stored_names([statement]):
                if name not in bindings:
                    self.globals.setdefault(name, f"{self.module}.{name}")
                    bindings[name] = Binding.VARIABLE

    # -- code blocks --

    def _code(self, qualname: str, body: list[ast.stmt], node: ast.AST, *,
              scoped: bool = False) -> None:
        """Top-level code (``<module>``) or the main guard's body (``<main>``, its own names)."""
        dotted = f"{self.module}.{qualname}"
        local, found, nested = self._block(body, dotted, set() if scoped else None)
        if not scoped:
            variables: dict[str, str] = {}
            for name, kind in self._assigned_types(self.assigns, []):
                if isinstance(name, str) and self.out.module.bindings.get(name) \
                        is Binding.VARIABLE:
                    variables.setdefault(name, kind)
            self.out.module = replace(self.out.module, variables=variables)
        calls = tuple(self._call(call, [local] if scoped else [], None) for call in found)
        last = body[-1] if body else node
        self.out.functions.append(FunctionInfo(
            dotted, self.module, qualname, getattr(node, "lineno", 1),
            getattr(last, "end_lineno", None) or 1, calls=calls))
        self._nested(nested, prefix="" if not scoped else f"{qualname}.{LOCALS}.",
                     scopes=[local] if scoped else [], owner=None)

    def _nested(self, nodes: list[ast.AST], *, prefix: str, scopes: list[dict[str, str | None]],
                owner: str | None) -> None:
        for node in nodes:
            if isinstance(node, ast.ClassDef):
                self._class(node, prefix, scopes)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(node, prefix, scopes, owner)

    def _class(self, node: ast.ClassDef, prefix: str,
               scopes: list[dict[str, str | None]]) -> None:
        qualname = f"{prefix}{node.name}"
        dotted = f"{self.module}.{qualname}"
        bases = tuple(self._absolute(base, scopes, None) or self.source.text(base)
                      for base in node.bases)
        methods: list[str] = []
        inner: list[ast.AST] = []
        body = list(_flat(node.body))
        attributes = self.attributes.setdefault(dotted, {})
        for name, kind in self._assigned_types(
                [s for s in body if isinstance(s, (ast.Assign, ast.AnnAssign))], scopes):
            if isinstance(name, str):
                attributes.setdefault(name, kind)
        for statement in body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.append(statement.name)
                self._function(statement, f"{qualname}.", scopes, dotted)
            elif isinstance(statement, ast.ClassDef):
                inner.append(statement)
        self._nested(inner, prefix=f"{qualname}.", scopes=scopes, owner=None)
        self.out.classes.append(ClassInfo(
            dotted, self.module, qualname, node.lineno, node.end_lineno or node.lineno, bases,
            tuple(dict.fromkeys(methods)), tuple(self.source.text(d) for d in node.decorator_list),
            self.attributes.pop(dotted, {})))

    def _function(self, node: _FunctionNode, prefix: str, scopes: list[dict[str, str | None]],
                  owner: str | None) -> None:
        qualname = f"{prefix}{node.name}"
        dotted = f"{self.module}.{qualname}"
        params = tuple(self._params(node.args))
        local, found, nested = self._block(node.body, dotted, {p.name for p in params})
        assigns = self.assigns
        self_name = None
        if owner is not None and params and params[0].kind in (
                ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL) and not any(
                _decorator_name(d) in ("staticmethod", "classmethod")
                for d in node.decorator_list):
            self_name = params[0].name
        arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        for arg in arguments:  # annotations are read in the enclosing scopes
            if arg.annotation is not None and arg.arg != self_name:
                kind = self._annotation_type(arg.annotation, scopes)
                if kind is not None:
                    local[arg.arg] = _Typed(kind)
        inner_scopes = [local, *scopes]
        for name, kind in self._assigned_types(assigns, inner_scopes):
            if isinstance(name, str) and local.get(name) is None and name in local:
                local[name] = _Typed(kind)
            elif isinstance(name, tuple) and self_name is not None and name[0] == self_name \
                    and owner is not None:
                self.attributes.setdefault(owner, {}).setdefault(name[1], kind)
        receiver = (self_name, owner)
        calls = tuple(self._call(call, inner_scopes, receiver) for call in found)
        returns = self._annotation_type(node.returns, scopes) if node.returns is not None \
            else None
        self.out.functions.append(FunctionInfo(
            dotted, self.module, qualname, node.lineno, node.end_lineno or node.lineno,
            isinstance(node, ast.AsyncFunctionDef), params,
            self.source.text(node.returns) if node.returns is not None else None,
            tuple(self.source.text(d) for d in node.decorator_list), calls, owner,
            min((d.lineno for d in node.decorator_list), default=0), returns))
        self._nested(nested, prefix=f"{qualname}.{LOCALS}.", scopes=inner_scopes, owner=None)

    def _assigned_types(self, assigns: list[ast.AST], scopes: list[dict[str, str | None]],
                        ) -> Iterator[tuple[str | tuple[str, str], str]]:
        """(name or (object, attribute), type) for each assignment whose type can be told:
        an annotation, a call (``X(...)`` -> ``X()``), a typed local copied."""
        for node in assigns:
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
                kind = self._annotation_type(node.annotation, scopes)
            else:
                targets = node.targets  # type: ignore[attr-defined]
                kind = self._value_type(node.value, scopes)  # type: ignore[attr-defined]
            if kind is None:
                continue
            for target in targets:
                if isinstance(target, ast.Name):
                    yield target.id, kind
                elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    yield (target.value.id, target.attr), kind

    def _value_type(self, value: ast.AST, scopes: list[dict[str, str | None]]) -> str | None:
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Call):
            callee = self._absolute(value.func, scopes, None)
            return f"{callee}()" if callee is not None else None
        if isinstance(value, ast.Name):
            found = self._lookup(value.id, scopes)
            return str(found) if isinstance(found, _Typed) else None
        return None

    def _annotation_type(self, node: ast.AST | None,
                         scopes: list[dict[str, str | None]]) -> str | None:
        """The class an annotation names (``X``, ``X | None``, ``Optional[X]``, ``"X"``,
        ``Generic[T]`` -> ``Generic``), absolute; None for anything else."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node = ast.parse(node.value.strip(), mode="eval").body
            except SyntaxError:
                return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = [side for side in (node.left, node.right)
                     if not (isinstance(side, ast.Constant) and side.value is None)]
            return self._annotation_type(sides[0], scopes) if len(sides) == 1 else None
        if isinstance(node, ast.Subscript):
            head = (dotted_expression(node.value) or "").rsplit(".", 1)[-1]
            inner = node.slice
            items = list(inner.elts) if isinstance(inner, ast.Tuple) else [inner]
            if head in ("Optional", "Annotated", "Final", "ClassVar"):
                return self._annotation_type(items[0], scopes)
            if head == "Union":
                kept = [i for i in items if not (isinstance(i, ast.Constant) and i.value is None)]
                return self._annotation_type(kept[0], scopes) if len(kept) == 1 else None
            node = node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            found = self._absolute(node, scopes, None)
            if found is None or isinstance(found, _Typed) or found in _UNTYPED:
                return None
            return str(found)
        return None

    def _params(self, args: ast.arguments) -> Iterator[Param]:
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults += list(args.defaults)
        for index, (arg, default) in enumerate(zip(positional, defaults, strict=True)):
            kind = ParamKind.POSITIONAL_ONLY if index < len(args.posonlyargs) \
                else ParamKind.POSITIONAL
            yield self._param(arg, kind, default)
        if args.vararg is not None:
            yield self._param(args.vararg, ParamKind.VAR_POSITIONAL, None)
        for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            yield self._param(arg, ParamKind.KEYWORD_ONLY, default)
        if args.kwarg is not None:
            yield self._param(args.kwarg, ParamKind.VAR_KEYWORD, None)

    def _param(self, arg: ast.arg, kind: ParamKind, default: ast.expr | None) -> Param:
        annotation = self.source.text(arg.annotation) if arg.annotation is not None else None
        return Param(arg.arg, kind, annotation,
                     self.source.text(default) if default is not None else None)

    def _block(self, body: list[ast.stmt], dotted: str, params: set[str] | None,
               ) -> tuple[dict[str, str | None], list[ast.Call], list[ast.AST]]:
        """One walk of a block: the names it binds (``params`` None: none, top-level code),
        its calls and the functions and classes defined in it.

        Imports and nested definitions bind to what they are; anything else assigned (and
        the parameters) to None: a local nothing resolves.
        """
        local: dict[str, str | None] = dict.fromkeys(params or ())
        declared_global: set[str] = set()
        calls: list[ast.Call] = []
        nested: list[ast.AST] = []
        self.assigns = assigns = []
        scoped = params is not None
        for node in _walk_scope(body):
            cls = node.__class__
            if cls is ast.Call:
                calls.append(node)  # type: ignore[arg-type]
            elif cls is ast.Assign or cls is ast.AnnAssign:
                assigns.append(node)
                if not scoped:
                    continue
            elif not scoped:
                if cls in _SCOPE_TYPES:
                    nested.append(node)
            elif cls is ast.Name:
                if node.ctx.__class__ is not ast.Load:  # type: ignore[attr-defined]
                    local.setdefault(node.id, None)  # type: ignore[attr-defined]
            elif cls in _SCOPE_TYPES:
                nested.append(node)
                local[node.name] = f"{dotted}.{LOCALS}.{node.name}"  # type: ignore[attr-defined]
            elif cls is ast.Import or cls is ast.ImportFrom:
                for item in _imports(node, self.module, self.is_package):  # type: ignore[arg-type]
                    if not item.star:
                        local[item.local] = item.target
            elif cls is ast.Global or cls is ast.Nonlocal:
                declared_global.update(node.names)  # type: ignore[attr-defined]
            elif cls is ast.ExceptHandler or cls is ast.MatchAs or cls is ast.MatchStar:
                if node.name:  # type: ignore[attr-defined]
                    local.setdefault(node.name, None)  # type: ignore[attr-defined]
        for name in declared_global:
            local.pop(name, None)
        return local, calls, nested

    def _call(self, node: ast.Call, scopes: list[dict[str, str | None]],
              receiver: tuple[str | None, str | None] | None) -> CallSite:
        expression = dotted_expression(node.func)
        target = self._absolute(node.func, scopes, receiver)
        if isinstance(target, _Typed):  # calling an instance: its __call__, not its class
            target = None
        args = tuple(self.source.text(arg) for arg in node.args)
        keywords = tuple((k.arg, self.source.text(k.value)) for k in node.keywords)
        return CallSite(target, expression or self.source.text(node.func, 80),
                        node.lineno, node.col_offset, args, keywords)

    def _absolute(self, node: ast.AST, scopes: list[dict[str, str | None]],
                  receiver: tuple[str | None, str | None] | None) -> str | None:
        """The absolute dotted name an expression stands for, when its module can tell
        (``Service().start`` -> ``pkg.Service().start``: an attribute of a call's result)."""
        expression = dotted_expression(node)
        if expression is None:
            attributes: list[str] = []
            while isinstance(node, ast.Attribute):
                attributes.append(node.attr)
                node = node.value
            if not attributes or not isinstance(node, ast.Call):
                return None
            callee = self._absolute(node.func, scopes, receiver)
            if callee is None or isinstance(callee, _Typed):
                return None
            return ".".join([f"{callee}()", *reversed(attributes)])
        head, _, rest = expression.partition(".")
        if receiver is not None and receiver[0] == head and receiver[1] is not None:
            base: str | None = receiver[1]
        else:
            base = self._lookup(head, scopes)
        if base is None:
            return None
        if isinstance(base, _Typed):  # an instance: only its attributes have names
            return _Typed(base) if not rest else f"{base}.{rest}"
        return f"{base}.{rest}" if rest else base

    def _lookup(self, name: str, scopes: list[dict[str, str | None]]) -> str | None:
        for scope in scopes:
            if name in scope:
                return scope[name]
        if name in self.globals:
            return self.globals[name]
        if self.stars:  # `from x import *`: the model looks the name up there
            return f"{self.stars[-1]}.{name}"
        return None


def _blocks(statement: ast.stmt) -> Iterator[ast.stmt]:
    for name in ("body", "orelse", "finalbody"):
        yield from getattr(statement, name, ())
    for handler in getattr(statement, "handlers", ()):
        yield from handler.body


def _flat(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """A class body's statements, those inside if/try blocks included."""
    for statement in body:
        if isinstance(statement, (ast.If, ast.Try, ast.TryStar)):
            yield from _flat(list(_blocks(statement)))
        else:
            yield statement


def _stored_names(statements: list[ast.stmt]) -> Iterator[str]:
    for statement in statements:
        targets: list[ast.expr] = []
        if isinstance(statement, ast.Assign):
            targets = statement.targets
        elif isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
            targets = [statement.target]
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    yield node.id


def _decorator_name(node: ast.expr) -> str | None:
    return dotted_expression(node.func if isinstance(node, ast.Call) else node)


def extract(source: bytes, path: Path, module: str, *, is_package: bool = False,
            tree: ast.Module | None = None) -> Extracted:
    """The facts of one file imported as ``module`` (``tree``: its ast, if already parsed)."""
    data = utf8_of(source)
    if tree is None:
        try:
            tree = ast.parse(data, filename=str(path))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            info = ModuleInfo(module, path, is_package, syntax_error=str(exc) or type(exc).__name__)
            return Extracted(info)
    return _Extractor(module, path, is_package, _Source(data)).run(tree)
