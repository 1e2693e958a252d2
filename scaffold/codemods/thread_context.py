"""Work handed to a thread runs without the submitting code's context.

What it does: makes the context current at submission follow the work into the thread, with
a fresh ``contextvars.copy_context()`` per submission, for
``threading.Thread(target=...)``, ``threading.Timer(interval, function)``, ``Thread``
subclasses that override ``run`` or are constructed with ``target=``,
``ThreadPoolExecutor.submit`` / ``.map`` and ``loop.run_in_executor(None or a thread pool, fn,
...)``. A name is a thread pool when the file builds it (``with ThreadPoolExecutor() as pool``,
``self.pool = ThreadPoolExecutor()``) or annotates it (a parameter ``pool:
ThreadPoolExecutor``, ``self._pool`` assigned from one, a module-level ``POOL:
ThreadPoolExecutor``, a dataclass/attrs/pydantic field ``pool: ThreadPoolExecutor`` read as
``deps.pool`` where ``deps: HandlerDeps``; ``Optional[...]``/``... | None`` too). When the
repo has the kit (``tracekit``), its helpers are used instead (``TracedThread``,
``TracedTimer``, ``submit``, ``executor_map``, ``run_in_executor``). ``asyncio.to_thread`` and
``create_task`` already copy the context and are left alone, as are process pools (a context
cannot be pickled). A ``run_in_executor`` whose executor the codemod cannot identify is
reported.

Why: ``asyncio`` tasks copy contextvars; threads do not. A span started in the worker has no
parent: the work shows up as a separate trace, and baggage (the correlation id) is gone. A
``Thread`` subclass overriding ``run`` loses the context even under the official threading
instrumentation.

Example::

    pool.submit(handle, message)
    threading.Thread(target=poll, daemon=True).start()

Use instead::

    pool.submit(contextvars.copy_context().run, handle, message)
    threading.Thread(target=functools.partial(contextvars.copy_context().run, poll),
                     daemon=True).start()

Fix safety: safe. The worker runs the same callable with the same arguments; it only sees
the context variables that were current when the work was submitted, as asyncio tasks do.
The context of a ``Thread`` is captured when it is constructed (kit: when it starts).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import TypeVar, cast

import libcst as cst
from libcst.codemod.visitors import RemoveImportsVisitor
from libcst.helpers import get_full_name_for_node
from libcst.metadata import QualifiedNameProvider, ScopeProvider

from scaffold.codemods.base import Codemod, dotted_name
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxGate
from scaffold.kit_api import (
    EXECUTOR_MAP,
    KIT_PACKAGE,
    RUN_IN_EXECUTOR,
    SUBMIT,
    THREADS_MODULE,
    TRACED_THREAD,
    TRACED_TIMER,
)

THREAD = "threading.Thread"
TIMER = "threading.Timer"
THREAD_POOLS = {
    "concurrent.futures.ThreadPoolExecutor", "concurrent.futures.thread.ThreadPoolExecutor",
}
PROCESS_POOLS = {
    "concurrent.futures.ProcessPoolExecutor", "concurrent.futures.process.ProcessPoolExecutor",
}
TYPE_UNIONS = {
    "typing.Optional", "typing.Union", "typing_extensions.Optional", "typing_extensions.Union",
}
ANNOTATED = {"typing.Annotated", "typing_extensions.Annotated"}
THREAD_KIND, PROCESS_KIND = "thread", "process"
POOL_CLASS_NAMES = {name.rsplit(".", 1)[-1] for name in THREAD_POOLS | PROCESS_POOLS}
_THREAD_ENDINGS = {"Thread", "Timer"}
_POOL_METHODS = {"submit", "map", "run_in_executor"}  # the calls leave_Call looks at by name
_CARRIED = "copy_context"  # already rewritten (or written by hand the same way)
# what this codemod writes with a kit (its threads module): sites that carry the context
_KIT_HELPERS = (TRACED_THREAD, TRACED_TIMER, SUBMIT, EXECUTOR_MAP, RUN_IN_EXECUTOR)
# what names them in a file (the module is imported under this alias): correct sites to count
_KIT_WORDS = frozenset({TRACED_THREAD, TRACED_TIMER, EXECUTOR_MAP, "tracekit_threads"})
_SITE_METHODS = _POOL_METHODS | set(_KIT_HELPERS)

Scope = cst.CSTNode  # the Module, a ClassDef (its self.x attributes) or a FunctionDef
T = TypeVar("T")


def _code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def _argument(call: cst.Call, index: int, name: str) -> tuple[int, cst.Arg] | None:
    """Position in ``call.args`` and the Arg passed for a parameter, by keyword or position."""
    positional = 0
    for number, arg in enumerate(call.args):
        if arg.keyword is not None:
            if arg.keyword.value == name:
                return number, arg
        elif arg.star:
            return None  # *args: cannot tell which parameter gets what
        else:
            if positional == index:
                return number, arg
            positional += 1
    return None


class _Pools(FastVisitor):
    """Which names hold a thread or process pool, and what plain names are annotated as.

    Keys are (scope, dotted name): plain names belong to their function or to the module,
    ``self.x`` (and a class-level ``x: T``) to their class.
    """

    def __init__(self, codemod: ThreadContext, module: cst.Module) -> None:
        super().__init__()
        self.codemod = codemod
        self.module = module
        self.classes: list[cst.ClassDef] = []
        self.functions: list[cst.FunctionDef] = []
        self.kinds: dict[tuple[Scope, str], str] = {}
        self.annotations: dict[tuple[Scope, str], cst.BaseExpression] = {}
        self.classes_by_name: dict[str, cst.ClassDef] = {}
        self.given_target: set[str] = set()  # callees called with target=

    # -- where a name lives, and what it holds --

    def _key(self, name: str) -> tuple[Scope, str] | None:
        if name.startswith("self."):
            return (self.classes[-1], name) if self.classes and self.functions else None
        if "." in name:
            return None
        if self.functions:
            return self.functions[-1], name
        if self.classes:
            return self.classes[-1], f"self.{name}"  # a class-level field
        return self.module, name

    def lookup(self, table: Mapping[tuple[Scope, str], T], name: str,
               classes: list[cst.ClassDef], functions: list[cst.FunctionDef]) -> T | None:
        """What ``table`` says ``name`` is, seen from inside ``classes`` and ``functions``."""
        if name.startswith("self."):
            return table.get((classes[-1], name)) if classes else None
        for scope in (*reversed(functions), self.module):
            found = table.get((scope, name))
            if found is not None:
                return found
        return None

    def kind_of(self, name: str, classes: list[cst.ClassDef],
                functions: list[cst.FunctionDef]) -> str | None:
        """``thread``/``process`` for a name holding a pool, also through a typed owner
        (``deps.pool`` where ``deps: HandlerDeps`` and ``HandlerDeps`` has ``pool: T``)."""
        kind = self.lookup(self.kinds, name, classes, functions)
        if kind is None and "." in name:
            owner, _, attribute = name.rpartition(".")
            annotation = self.lookup(self.annotations, owner, classes, functions)
            owner_class = self._class_of(annotation) if annotation is not None else None
            if owner_class is not None:
                kind = self.kinds.get((owner_class, f"self.{attribute}"))
        return kind

    def _class_of(self, annotation: cst.BaseExpression) -> cst.ClassDef | None:
        inner = self.codemod.only_type(*self.codemod.unquoted(annotation))
        name = dotted_name(inner) if inner is not None else None
        return self.classes_by_name.get(name.rsplit(".", 1)[-1]) if name else None

    def _bind(self, target: cst.CSTNode, kind: str | None,
              annotation: cst.BaseExpression | None = None) -> None:
        name = dotted_name(target)
        key = self._key(name) if name else None
        if key is None:
            return
        if kind is not None:
            self.kinds[key] = kind
        if annotation is not None:
            self.annotations[key] = annotation

    def _value(self, value: cst.BaseExpression | None
               ) -> tuple[str | None, cst.BaseExpression | None]:
        """The pool kind a value carries, and the annotation of a name it copies."""
        if isinstance(value, cst.Call):
            return self.codemod.class_kind(value.func), None
        name = dotted_name(value) if value is not None else None
        if name is None:
            return None, None
        return (self.kind_of(name, self.classes, self.functions),
                self.lookup(self.annotations, name, self.classes, self.functions))

    # -- the visit --

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes_by_name.setdefault(node.name.value, node)
        self.classes.append(node)
        if any(self.codemod.may_end_in(base.value, _THREAD_ENDINGS) for base in node.bases):
            self.mark_path()  # a possible Thread subclass: the transform must see it

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.annotation is not None:
                annotation = param.annotation.annotation
                self._bind(param.name, self.codemod.annotation_kind(annotation), annotation)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def visit_Assign(self, node: cst.Assign) -> None:
        kind, annotation = self._value(node.value)
        for target in node.targets:
            self._bind(target.target, kind, annotation)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        kind, _ = self._value(node.value)
        annotation = node.annotation.annotation
        self._bind(node.target, kind or self.codemod.annotation_kind(annotation), annotation)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self._bind(node.asname.name, self._value(node.item)[0])

    def visit_Call(self, node: cst.Call) -> None:
        if any(arg.keyword is not None and arg.keyword.value == "target" for arg in node.args):
            name = dotted_name(node.func)
            if name is not None:
                self.given_target.add(name)
        func = node.func
        if (isinstance(func, cst.Attribute) and func.attr.value in _SITE_METHODS) \
                or self.codemod.may_end_in(func, _THREAD_ENDINGS):
            self.mark_path()  # a call leave_Call may rewrite


class ThreadContext(Codemod):
    PREFILTER = ("Thread", "Timer", "run_in_executor")
    SITE_KIND = "thread-hand-off"  # its rows in `scaffold report`
    # A Thread, Timer or run_in_executor call is a site where it is named, but nothing it
    # returns is followed: these keep a definition without carrying anything. A pool is
    # followed (pool.submit), so its class stays a carrier.
    SLICE_WORDS = frozenset({"Thread", "Timer", "run_in_executor", *_KIT_WORDS})
    GATE = SyntaxGate(names={THREAD, TIMER, *THREAD_POOLS},
                      words={"run_in_executor", *_KIT_WORDS})
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    @classmethod
    def wants(cls, source: str) -> bool:
        # a Thread/Timer/pool is only named through an import of threading or concurrent
        return "run_in_executor" in source or any(word in source for word in _KIT_WORDS) or (
            ("threading" in source or "concurrent" in source)
            and ("Thread" in source or "Timer" in source)
        )

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._pools: _Pools | None = None
        self._classes: list[cst.ClassDef] = []
        self._functions: list[cst.FunctionDef] = []

    # -- what names and annotations stand for --

    def _resolves_to(self, node: cst.BaseExpression, names: set[str],
                     anchor: cst.CSTNode | None) -> bool:
        """``refers_to``, or for a node parsed out of a quoted annotation, its names as the
        scope of the quoted ``anchor`` resolves them."""
        if anchor is None:
            return self.refers_to(node, names)
        full = get_full_name_for_node(node)
        scope = self.get_metadata(ScopeProvider, anchor, None)
        return bool(full and scope and not names.isdisjoint(
            q.name for q in scope.get_qualified_names_for(full)))

    def class_kind(self, callee: cst.BaseExpression,
                   anchor: cst.CSTNode | None = None) -> str | None:
        """``thread``/``process`` when ``callee`` is a pool class."""
        if self._resolves_to(callee, THREAD_POOLS, anchor):
            return THREAD_KIND
        return PROCESS_KIND if self._resolves_to(callee, PROCESS_POOLS, anchor) else None

    def unquoted(self, annotation: cst.BaseExpression
                 ) -> tuple[cst.BaseExpression, cst.CSTNode | None]:
        """A quoted annotation parsed (with the string as the anchor its names resolve at)."""
        if isinstance(annotation, cst.SimpleString):
            text = annotation.evaluated_value
            if isinstance(text, str):
                try:
                    return cst.parse_expression(text.strip()), annotation
                except cst.ParserSyntaxError:
                    pass
        return annotation, None

    def only_type(self, annotation: cst.BaseExpression,
                  anchor: cst.CSTNode | None = None) -> cst.BaseExpression | None:
        """The one type an annotation allows besides None (``Optional[T]``, ``T | None``,
        ``Union[T, None]``, ``Annotated[T, ...]``), or None when it allows several."""
        types: list[cst.BaseExpression] = []
        pending = [annotation]
        while pending:
            current = pending.pop()
            if isinstance(current, cst.BinaryOperation) and isinstance(
                    current.operator, cst.BitOr):
                pending += [current.left, current.right]
            elif isinstance(current, cst.Subscript) and self._resolves_to(
                    current.value, TYPE_UNIONS | ANNOTATED, anchor):
                elements = [element.slice.value for element in current.slice
                            if isinstance(element.slice, cst.Index)]
                annotated = self._resolves_to(current.value, ANNOTATED, anchor)
                pending += elements[:1] if annotated else elements
            elif not (isinstance(current, cst.Name) and current.value == "None"):
                types.append(current)
        return types[0] if len(types) == 1 else None

    def annotation_kind(self, annotation: cst.BaseExpression) -> str | None:
        """``thread``/``process`` for an annotation naming exactly one pool type."""
        expression, anchor = self.unquoted(annotation)
        if not any(self.may_end_in(name, POOL_CLASS_NAMES) for name in _names_in(expression)):
            return None  # most annotations: decided without resolving a single scope
        only = self.only_type(expression, anchor)
        return self.class_kind(only, anchor) if only is not None else None

    # -- where the transform is --

    def visit_Module(self, node: cst.Module) -> bool:
        if KIT_PACKAGE in PurePath(self.path).parts[:-1]:
            return False  # the kit's own code is what carries context; never rewrite it
        self._pools = _Pools(self, node)
        self._pools.marked = set()
        node.visit(self._pools)
        self.prune_to(self._pools.marked | {node})  # only where a site may be is rebuilt
        return True

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self._functions.pop()
        return updated_node

    def _pool_kind(self, receiver: cst.BaseExpression) -> str | None:
        if isinstance(receiver, cst.Call):
            return self.class_kind(receiver.func)
        name = dotted_name(receiver)
        if name is None or self._pools is None:
            return None
        return self._pools.kind_of(name, self._classes, self._functions)

    # -- building the replacement code --

    @property
    def _kit(self) -> str | None:
        return self.settings.kit

    def _kit_helper(self, name: str) -> cst.BaseExpression:
        kit = self._kit
        assert kit is not None  # only called once self._kit said there is one
        threads = self.name_for(kit, THREADS_MODULE, alias="tracekit_threads", always_alias=True)
        return cst.parse_expression(f"{threads}.{name}")

    def _copy_run(self) -> cst.BaseExpression:
        return cst.parse_expression(f"{self.name_for('contextvars')}.copy_context().run")

    def _bound(self, fn: cst.BaseExpression) -> cst.BaseExpression:
        functools = self.name_for("functools")
        return cst.Call(
            func=cst.parse_expression(f"{functools}.partial"),
            args=[cst.Arg(self._copy_run()), cst.Arg(fn)],
        )

    # -- rewriting --

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if self.refers_to(func, {THREAD}):
            return self._thread(original_node, updated_node, TRACED_THREAD, 1, "target")
        if self.refers_to(func, {TIMER}):
            return self._thread(original_node, updated_node, TRACED_TIMER, 1, "function")
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in ("submit", "map") and self._pool_kind(func.value) == THREAD_KIND:
                return self._executor(original_node, updated_node, method)
            if method == "run_in_executor" and not self._is_kit_helper(func):
                return self._run_in_executor(original_node, updated_node)
            if self._kit is not None and self.refers_to(func, {
                    f"{self._kit}.threads.{name}" for name in _KIT_HELPERS}):
                self.record_correct(original_node, "it goes through the kit's thread helpers")
        return updated_node

    def _is_kit_helper(self, func: cst.Attribute) -> bool:
        """``tracekit_threads.run_in_executor(loop, ...)``: this codemod's own output."""
        return self._kit is not None and self.refers_to(
            func, {f"{self._kit}.threads.run_in_executor"})

    def _thread(self, original: cst.Call, updated: cst.Call, kit_class: str, index: int,
                name: str) -> cst.Call:
        found = _argument(updated, index, name)
        if found is None or _CARRIED in _code(found[1].value):
            if found is not None:
                self.record_correct(original, f"its {name} runs in a copied context")
            return updated
        kind = "Thread" if kit_class == TRACED_THREAD else "Timer"
        if not self.record_change(original, f"threading.{kind} now runs its {name} in the "
                                  "context current where it was created"):
            return updated
        if self._kit:
            # the Thread/Timer import may now be unused: removed unless something else uses it
            RemoveImportsVisitor.remove_unused_import_by_node(self.context, original.func)
            return updated.with_changes(func=self._kit_helper(kit_class))
        position, arg = found
        args = list(updated.args)
        args[position] = arg.with_changes(value=self._bound(arg.value))
        return updated.with_changes(args=args)

    def _executor(self, original: cst.Call, updated: cst.Call, method: str) -> cst.Call:
        args = list(updated.args)
        if not args or args[0].keyword is not None or args[0].star:
            return updated
        fn = args[0].value
        if _CARRIED in _code(fn):
            self.record_correct(original, "the function runs in a copied context")
            return updated
        if not self.record_change(original, f"ThreadPoolExecutor.{method} now carries the "
                                  "submitting context into the worker"):
            return updated
        receiver = cast(cst.Attribute, updated.func).value
        if self._kit:
            helper = "submit" if method == "submit" else "executor_map"
            return cst.Call(func=self._kit_helper(helper), args=[cst.Arg(receiver), *args])
        if method == "submit":
            return updated.with_changes(args=[cst.Arg(self._copy_run()), *args])
        contextvars = self.name_for("contextvars")
        per_call = cst.parse_expression(
            f"lambda *args, _fn={_code(fn)}, _context={contextvars}.copy_context(): "
            "_context.copy().run(_fn, *args)"
        )
        return updated.with_changes(args=[args[0].with_changes(value=per_call), *args[1:]])

    def _run_in_executor(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        args = list(updated.args)
        if len(args) < 2 or any(arg.keyword is not None or arg.star for arg in args[:2]):
            return updated
        executor, fn = args[0].value, args[1].value
        if _CARRIED in _code(fn):
            self.record_correct(original, "the function runs in a copied context")
            return updated
        is_default = isinstance(executor, cst.Name) and executor.value == "None"
        kind = THREAD_KIND if is_default else self._pool_kind(original.args[0].value)
        if kind == PROCESS_KIND:
            return updated
        if kind is None:
            self.report(original, f"cannot tell whether {_code(executor)!r} is a thread pool; "
                        "if it is, pass contextvars.copy_context().run before the function")
            return updated
        if not self.record_change(original, "run_in_executor now carries the submitting "
                                  "context into the worker"):
            return updated
        if self._kit:
            return cst.Call(func=self._kit_helper(RUN_IN_EXECUTOR),
                            args=[cst.Arg(cast(cst.Attribute, updated.func).value), *args])
        return updated.with_changes(args=[args[0], cst.Arg(self._copy_run()), *args[1:]])

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef):
        self._classes.pop()
        bases = [i for i, base in enumerate(original_node.bases)
                 if self.refers_to(base.value, {THREAD})]
        body = updated_node.body
        if not bases or not isinstance(body, cst.IndentedBlock):
            return updated_node
        methods = {
            statement.name.value: index for index, statement in enumerate(body.body)
            if isinstance(statement, cst.FunctionDef)
        }
        given_target = self._pools is not None and original_node.name.value in (
            self._pools.given_target)
        if "run" not in methods and not given_target:
            return updated_node  # no run() of its own and no target= here: nothing runs
        start = cast(cst.FunctionDef, body.body[methods["start"]]) if "start" in methods else None
        if start is not None and _CARRIED in _code(start):
            return updated_node
        what = "overriding run() now runs it" if "run" in methods else (
            "constructed with target= now runs the target")
        if not self.record_change(original_node.bases[bases[0]], f"Thread subclass {what} "
                                  "in the context current at start()"):
            return updated_node
        if self._kit:
            RemoveImportsVisitor.remove_unused_import_by_node(
                self.context, original_node.bases[bases[0]].value)
            new_bases = list(updated_node.bases)
            new_bases[bases[0]] = new_bases[bases[0]].with_changes(
                value=self._kit_helper(TRACED_THREAD))
            return updated_node.with_changes(bases=new_bases)
        capture = cst.parse_statement(
            f"self.run = {self.name_for('functools')}.partial("
            f"{self.name_for('contextvars')}.copy_context().run, self.run)\n"
        )
        statements = list(body.body)
        if start is not None:
            start_body = list(start.body.body)
            at = 1 if start_body and _is_docstring(start_body[0]) else 0
            start_body.insert(at, capture)
            statements[methods["start"]] = start.with_changes(
                body=start.body.with_changes(body=start_body))
        else:
            method = cst.parse_statement(
                "def start(self):\n"
                f"    {_code(capture).strip()}\n"
                "    super().start()\n"
            )
            if "run" in methods:  # start() goes just before run()
                run_method = cast(cst.FunctionDef, statements[methods["run"]])
                statements.insert(methods["run"], method.with_changes(
                    leading_lines=run_method.leading_lines))
                statements[methods["run"] + 1] = run_method.with_changes(
                    leading_lines=[cst.EmptyLine(indent=False)])
            else:
                statements.append(method.with_changes(
                    leading_lines=[cst.EmptyLine(indent=False)]))
        return updated_node.with_changes(body=body.with_changes(body=statements))


def _names_in(node: cst.CSTNode) -> Iterator[cst.BaseExpression]:
    """The names and attribute chains inside an expression (a chain counts once)."""
    if isinstance(node, (cst.Name, cst.Attribute)):
        yield node
        return
    for child in node.children:
        yield from _names_in(child)


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
