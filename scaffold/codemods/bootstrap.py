"""A service entry point does not initialise tracing at start-up and flush it at shutdown.

What it does: in a module that is a service entry point, makes start-up call ``init_tracing``
once and shutdown flush the spans (the kit's ``shutdown_tracing``):

- a Quart app (``app = Quart(...)``, in a factory or at module level): first thing in its
  ``@app.before_serving`` hook, flushed at the end of ``@app.after_serving`` (hooks are added
  when missing);
- a FastAPI app: first thing in its ``lifespan`` function (flushed at its end), or in its
  ``@app.on_event("startup")`` hook (flushed in the ``"shutdown"`` one, added when missing);
- otherwise a worker: the function the ``if __name__ == "__main__":`` block runs (``main()``,
  ``asyncio.run(main())``), or that block itself, starts with the call and flushes in a
  ``finally``.

A module-level ``init_tracing(...)`` call of such a module moves into that start-up path
(its comment goes with it; ``tracer = init_tracing(...)`` leaves ``tracer =
trace.get_tracer(__name__)``, which follows the provider installed later). The call is the
configured ``helper-module``'s ``init_tracing``, else the kit's; a moved call to another
``init_tracing`` taking just the service name is pointed at it. The service name is the moved
call's argument, else ``service-name`` from ``[tool.scaffold]``, else the module's
``SERVICE_NAME``. Reported, not rewritten: an entry point without a service name, a FastAPI
app without a lifespan or startup hook, a moved call whose arguments the kit's
``init_tracing`` does not take, and (with a helper module, which has no shutdown) the missing
flush. Modules without an entry point are left to the ``init-at-import`` check.

Why: initialised at import, tracing is configured before settings are read, in every test
and tool that imports the module, and before a pre-forking server forks (the batch
exporter's thread does not survive the fork); never initialised, every span goes to the no-op
provider. Without a flush at shutdown the last batch of spans, often the ones explaining why
the process stopped, is lost.

Example::

    init_tracing(SERVICE_NAME)

    def create_app():
        app = Quart(__name__)

        @app.before_serving
        async def start() -> None:
            await connect()

        return app

Use instead::

    def create_app():
        app = Quart(__name__)

        @app.before_serving
        async def start() -> None:
            init_tracing(SERVICE_NAME)
            await connect()

        @app.after_serving
        async def flush_traces_at_shutdown() -> None:
            shutdown_tracing()

        return app

Fix safety: safe. Initialisation moves from import to start-up, which is when a service
starts working; the kit's ``init_tracing`` is idempotent and adopts a provider that is
already installed (tests, auto-instrumentation), and ``shutdown_tracing`` shuts down only a
provider the kit installed. A moved call to the service's own set-up function is pointed at
the kit's, which configures the sampler and propagators the checks ask for; resource
attributes other than the service name then come from ``OTEL_RESOURCE_ATTRIBUTES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TypeVar, cast

import libcst as cst
import libcst.matchers as m
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from libcst.metadata import QualifiedNameProvider

from scaffold.checks.base import is_test_path
from scaffold.codemods._propagation import (
    PropagationCodemod,
    Statement,
    code,
    collect,
    is_docstring,
    keyword,
    last_name,
    parse_statements,
    statements_of,
)
from scaffold.codemods.base import dotted_name

INIT = "init_tracing"
SHUTDOWN = "shutdown_tracing"
QUART = frozenset({"quart.Quart", "quart.app.Quart"})
FASTAPI = frozenset({"fastapi.FastAPI", "fastapi.applications.FastAPI"})
SERVICE_NAME = "SERVICE_NAME"

_MAIN_GUARD = m.If(test=m.Comparison(
    left=m.Name("__name__"),
    comparisons=[m.ComparisonTarget(
        operator=m.Equal(),
        comparator=m.SimpleString(value=m.MatchIfTrue(lambda s: s.strip("'\"") == "__main__")),
    )],
))

FunctionEdit = Callable[[cst.FunctionDef], cst.FunctionDef]


@dataclass
class _App:
    """An app object and where its hooks live."""

    name: str
    kind: str  # "quart" | "fastapi"
    assignment: cst.SimpleStatementLine
    scope: cst.FunctionDef | None  # the factory, or None at module level
    hooks: dict[str, cst.FunctionDef] = field(default_factory=dict)  # "start"/"stop" -> hook
    lifespan: cst.FunctionDef | None = None

    @property
    def body(self) -> list[cst.BaseStatement]:
        return list(statements_of(self.scope.body)) if self.scope is not None else []


def _calls(node: cst.CSTNode, name: str) -> bool:
    """``node`` (a function or block) calls something named ``name`` anywhere inside."""
    found = False

    class _Find(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            nonlocal found
            found = found or last_name(call.func) == name

    node.visit(_Find())
    return found


def _init_call(statement: cst.BaseStatement) -> cst.Call | None:
    """The ``init_tracing(...)`` of ``init_tracing(...)`` / ``x = init_tracing(...)`` lines."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    value = small.value if isinstance(small, (cst.Expr, cst.Assign, cst.AnnAssign)) else None
    if isinstance(value, cst.Call) and last_name(value.func) == INIT:
        return value
    return None


class Bootstrap(PropagationCodemod):
    PREFILTER = ("__main__", "Quart", "FastAPI", INIT)
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._function_edits: dict[cst.FunctionDef, list[FunctionEdit]] = {}
        self._main_block: cst.If | None = None
        self._main_edit: Callable[[cst.If], cst.If] | None = None

    # -- what the module is --

    def visit_Module(self, node: cst.Module) -> bool:
        parts = PurePath(self.path).parts
        if is_test_path(self.path) or "tracekit" in parts[:-1]:
            return False
        moved = [statement for statement in node.body
                 if isinstance(statement, cst.SimpleStatementLine) and _init_call(statement)]
        apps = self._apps(node)
        entries = apps or self._mains(node)
        if not entries:
            return False  # a library module: init-at-import reports a call at its top
        site = moved[0] if moved else self._entry_node(entries[0])
        flush = self.kit_function_available
        if not self._needs_work(entries, bool(moved), flush):
            return False
        make_init = self._init_statement(moved[0] if moved else None, node, site)
        if make_init is None or not self.record_change(
                site, self._message(entries[0], bool(moved), flush)):
            return False
        for statement in moved:
            self._leave_behind(statement)
        init = make_init()  # names resolved (imports scheduled) only now the change is on
        for entry in entries:
            self._instrument(entry, init, flush)
        if not flush:
            self.report(site, "no flush at shutdown: the helper module has no shutdown "
                        "function; flush the provider it installs (force_flush) when stopping")
        return True

    def _apps(self, module: cst.Module) -> list[_App]:
        apps: list[_App] = []
        codemod = self

        class _Find(cst.CSTVisitor):
            def __init__(self) -> None:
                self.scopes: list[cst.FunctionDef] = []

            def visit_FunctionDef(self, function: cst.FunctionDef) -> None:
                self.scopes.append(function)

            def leave_FunctionDef(self, function: cst.FunctionDef) -> None:
                self.scopes.pop()

            def visit_SimpleStatementLine(self, line: cst.SimpleStatementLine) -> None:
                small = line.body[0] if len(line.body) == 1 else None
                if not isinstance(small, cst.Assign) or not isinstance(small.value, cst.Call):
                    return
                names = codemod.qualified_names(small.value.func)
                kind = "quart" if names & QUART else "fastapi" if names & FASTAPI else None
                target = dotted_name(small.targets[0].target)
                if kind and target and len(self.scopes) <= 1:
                    scope = self.scopes[-1] if self.scopes else None
                    apps.append(_App(target, kind, line, scope))

        module.visit(_Find())
        for app in apps:
            self._hooks(app, module)
        return apps

    def _hooks(self, app: _App, module: cst.Module) -> None:
        statements = app.body if app.scope is not None else list(module.body)
        wanted = {"before_serving": "start", "after_serving": "stop"} if app.kind == "quart" \
            else {}
        for statement in statements:
            if not isinstance(statement, cst.FunctionDef):
                continue
            for decorator in statement.decorators:
                hook = decorator.decorator
                event = (dotted_name(hook) or "").removeprefix(f"{app.name}.")
                if event in wanted:
                    app.hooks.setdefault(wanted[event], statement)
                elif (isinstance(hook, cst.Call) and hook.args
                      and dotted_name(hook.func) == f"{app.name}.on_event"):
                    event = code(hook.args[0].value).strip("'\"")
                    if event in ("startup", "shutdown"):
                        app.hooks.setdefault("start" if event == "startup" else "stop", statement)
        if app.kind == "fastapi":
            lifespan = keyword(cst.ensure_type(
                cst.ensure_type(app.assignment.body[0], cst.Assign).value, cst.Call), "lifespan")
            name = dotted_name(lifespan.value) if lifespan is not None else None
            app.lifespan = next((s for s in module.body if isinstance(s, cst.FunctionDef)
                                 and s.name.value == name), None)

    def _mains(self, module: cst.Module) -> list[cst.FunctionDef | cst.If]:
        guard = next((s for s in module.body if isinstance(s, cst.If)
                      and m.matches(s, _MAIN_GUARD)), None)
        if guard is None:
            return []
        functions = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
        for call in collect(guard.body).calls:
            for candidate in (call, *(arg.value for arg in call.args)):
                if isinstance(candidate, cst.Call) and isinstance(candidate.func, cst.Name) \
                        and candidate.func.value in functions:
                    return [functions[candidate.func.value]]
        return [guard]

    def _entry_node(self, entry: _App | cst.FunctionDef | cst.If) -> cst.CSTNode:
        if isinstance(entry, _App):
            return entry.lifespan or entry.hooks.get("start") or entry.scope or entry.assignment
        return entry

    def _needs_work(self, entries, moving: bool, flush: bool) -> bool:
        if moving:
            return True
        for entry in entries:
            starts, stops = self._paths(entry)
            if not starts or not any(_calls(node, INIT) for node in starts):
                return True
            if flush and not any(_calls(node, SHUTDOWN) for node in stops or starts):
                return True
        return False

    def _paths(self, entry) -> tuple[list[cst.CSTNode], list[cst.CSTNode]]:
        """The start-up and shutdown code of an entry point as it is now."""
        if isinstance(entry, _App):
            if entry.lifespan is not None:
                return [entry.lifespan], [entry.lifespan]
            start, stop = entry.hooks.get("start"), entry.hooks.get("stop")
            return [start] if start else [], [stop] if stop else []
        return [entry], [entry]

    def _message(self, entry, moving: bool, flush: bool) -> str:
        where = "in the __main__ block" if isinstance(entry, cst.If) else "at start-up"
        flushed = ", and spans are flushed at shutdown" if flush else ""
        if moving:
            return f"init_tracing runs at import; it now runs {where}{flushed}"
        return ("this entry point does not initialise tracing and flush it at shutdown; "
                f"init_tracing now runs {where}{flushed}")

    # -- the call that goes in --

    def _service_name(self, module: cst.Module) -> str | None:
        if self.settings.service_name:
            return repr(self.settings.service_name).replace("'", '"')
        for statement in module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    names: list[cst.CSTNode] = []
                    if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(
                            small.names, cst.ImportStar):
                        names = [alias.asname.name if alias.asname else alias.name
                                 for alias in small.names]
                    elif isinstance(small, cst.Assign):
                        names = [target.target for target in small.targets]
                    if any(dotted_name(name) == SERVICE_NAME for name in names):
                        return SERVICE_NAME
        return None

    def _init_statement(self, moved: cst.SimpleStatementLine | None, module: cst.Module,
                        site: cst.CSTNode) -> Callable[[], cst.SimpleStatementLine] | None:
        """A factory of the statement to insert (so names are imported only when used)."""
        init = self.settings.helper_module or self.kit
        if init is None:
            self.report(site, "no kit and no helper-module to initialise tracing with; let "
                        "retrofit vendor the kit or set helper-module in [tool.scaffold]")
            return None
        if moved is None:
            name = self._service_name(module)
            if name is None:
                self.report(site, "this entry point never initialises tracing, and its service "
                            "name is unknown: set service-name in [tool.scaffold]")
                return None
            return lambda: cst.ensure_type(parse_statements(
                f"{self.name_for(init, INIT)}({name})\n")[0], cst.SimpleStatementLine)
        call = _init_call(moved)
        if call is None:
            return None
        if self._is_ours(call.func):
            return lambda: self._as_expression(moved, call)
        if any(arg.keyword is not None or arg.star for arg in call.args) or len(call.args) != 1:
            self.report(moved, f"`{code(call)}` takes arguments the kit's init_tracing does not; "
                        "move it into the start-up path by hand")
            return None
        return lambda: self._as_expression(
            moved, call.with_changes(func=self._repointed(call, init)))

    def _is_ours(self, func: cst.BaseExpression) -> bool:
        owners = {module for module in (self.settings.helper_module, self.kit) if module}
        return any(
            name.rsplit(".", 1)[0] in owners or name.endswith(f".tracekit.{INIT}")
            for name in self.qualified_names(func)
        )

    def _repointed(self, call: cst.Call, module: str) -> cst.BaseExpression:
        """``module``'s init_tracing, under the old name when only this call used that name."""
        func = call.func
        if isinstance(func, cst.Name) and func.value == INIT and self._references(INIT) == 1:
            binding = self._import_binding(INIT)
            if binding is not None:
                self.replace_statement(binding, _without_init_import)
                AddImportsVisitor.add_needed_import(self.context, module, INIT)
                return cst.Name(INIT)
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, func)
        return cst.parse_expression(self.name_for(module, INIT))

    def _import_binding(self, name: str) -> cst.SimpleStatementLine | None:
        """The module-level ``from x import name`` line binding ``name``, if there is one."""
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine) and any(
                    _imports_unaliased(small, name) for small in statement.body):
                return statement
        return None

    def _references(self, name: str) -> int:
        """How often ``name`` is read in the module (imports do not count)."""
        count = 0

        class _Count(cst.CSTVisitor):
            def visit_Import(self, node: cst.Import) -> bool:
                return False

            def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
                return False

            def visit_Attribute(self, node: cst.Attribute) -> bool:
                node.value.visit(self)
                return False

            def visit_Name(self, node: cst.Name) -> None:
                nonlocal count
                count += node.value == name

        self.module.visit(_Count())
        return count

    def _as_expression(self, moved: cst.SimpleStatementLine,
                       call: cst.Call) -> cst.SimpleStatementLine:
        """``init_tracing(...)`` as a statement of its own, keeping the moved line's comment."""
        return moved.with_changes(body=[cst.Expr(call)], leading_lines=())

    def _leave_behind(self, statement: cst.SimpleStatementLine) -> None:
        """Remove the module-level call; an assigned tracer becomes a proxy tracer."""
        small = statement.body[0]
        if isinstance(small, cst.Expr):
            self.replace_statement(statement, lambda updated: [])
            return
        get_tracer = self.otel("opentelemetry.trace", "get_tracer")
        self.replace_statement(statement, lambda updated: [updated.with_changes(
            body=[updated.body[0].with_changes(
                value=cst.parse_expression(f"{get_tracer}(__name__)"))],
            trailing_whitespace=cst.TrailingWhitespace())])

    # -- putting it in --

    def _instrument(self, entry, init: cst.SimpleStatementLine, flush: bool) -> None:
        shutdown = parse_statements(f"{self.kit_function(SHUTDOWN)}()\n") if flush else []
        if isinstance(entry, _App):
            self._instrument_app(entry, init, shutdown)
        elif isinstance(entry, cst.FunctionDef):
            self._edit(entry, lambda f: _started_and_flushed(f, init, shutdown))
        else:
            self._main_block = entry
            self._main_edit = lambda block: _started_and_flushed(block, init, shutdown)

    def _instrument_app(self, app: _App, init, shutdown) -> None:
        start, stop = app.hooks.get("start"), app.hooks.get("stop")
        if app.lifespan is not None:
            self._edit(app.lifespan, lambda f: _appended(_prepended(f, init, INIT), shutdown))
            return
        if app.kind == "fastapi" and start is None:
            self.report(app.assignment, "this FastAPI app has no lifespan and no startup "
                        "hook: pass lifespan= a function that calls init_tracing")
            return
        hooks: list[cst.BaseStatement] = []
        if start is not None:
            self._edit(start, lambda f: _prepended(f, init, INIT))
        else:
            hooks.append(self._hook(app, "before_serving", "init_tracing_at_startup", [init]))
        if stop is not None:
            self._edit(stop, lambda f: _appended(f, shutdown))
        elif shutdown:
            event = "after_serving" if app.kind == "quart" else 'on_event("shutdown")'
            hooks.append(self._hook(app, event, "flush_traces_at_shutdown", shutdown))
        if not hooks:
            return
        anchor = start or app.assignment
        self.replace_statement(anchor, lambda updated: [updated, *hooks])

    def _hook(self, app: _App, event: str, name: str,
              body: list[cst.BaseStatement]) -> cst.FunctionDef:
        local, number = name, 1
        while local in self._bound_names():
            number += 1
            local = f"{name}_{number}"
        function = cst.ensure_type(cst.parse_statement(
            f"@{app.name}.{event}\nasync def {local}() -> None:\n    pass\n"), cst.FunctionDef)
        return function.with_changes(
            body=function.body.with_changes(body=[s.with_changes(leading_lines=()) for s in body]),
            leading_lines=[cst.EmptyLine(indent=False)] * (1 if app.scope else 2))

    def _edit(self, function: cst.FunctionDef, edit: FunctionEdit) -> None:
        self._function_edits.setdefault(function, []).append(edit)

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.FunctionDef:
        for edit in self._function_edits.get(original_node, ()):
            updated_node = edit(updated_node)
        return updated_node

    def leave_If(self, original_node: cst.If, updated_node: cst.If) -> cst.If:
        if original_node is self._main_block and self._main_edit is not None:
            return self._main_edit(updated_node)
        return updated_node



def _imports_unaliased(small: cst.BaseSmallStatement, name: str) -> bool:
    return isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar) \
        and any(alias.asname is None and dotted_name(alias.name) == name for alias in small.names)


def _without_init_import(line: cst.SimpleStatementLine) -> list[cst.BaseStatement]:
    """The import line without its ``init_tracing`` (nothing, when that was all it imported)."""
    body: list[cst.BaseSmallStatement] = []
    for small in line.body:
        if isinstance(small, cst.ImportFrom) and _imports_unaliased(small, INIT):
            assert not isinstance(small.names, cst.ImportStar)  # _imports_unaliased said so
            names = [alias for alias in small.names if dotted_name(alias.name) != INIT]
            if not names:
                continue
            small = small.with_changes(names=[*names[:-1], names[-1].with_changes(
                comma=cst.MaybeSentinel.DEFAULT)])
        body.append(small)
    return [line.with_changes(body=body)] if body else []


_Block = TypeVar("_Block", cst.FunctionDef, cst.If)


def _with_body(node: _Block, statements: list[cst.BaseStatement]) -> _Block:
    body = node.body.with_changes(body=statements) if isinstance(node.body, cst.IndentedBlock) \
        else cst.IndentedBlock(body=statements)
    return node.with_changes(body=body)


def _prepended(node: _Block, init: cst.SimpleStatementLine, name: str) -> _Block:
    """``init`` as the first statement (after a docstring), unless the body already calls it."""
    if _calls(node.body, name):
        return node
    body = list(statements_of(node.body))
    at = 1 if body and is_docstring(body[0]) else 0
    body.insert(at, init)
    return _with_body(node, body)


def _appended(node: _Block, shutdown: list[cst.BaseStatement]) -> _Block:
    if not shutdown or _calls(node.body, SHUTDOWN):
        return node
    return _with_body(node, [*statements_of(node.body), *shutdown])


def _started_and_flushed(node: _Block, init: cst.SimpleStatementLine,
                         shutdown: list[cst.BaseStatement]) -> _Block:
    """``init`` first, the rest of the body in ``try`` with the flush in ``finally``."""
    started = _prepended(node, init, INIT)
    if not shutdown or _calls(started.body, SHUTDOWN):
        return started
    body: list[cst.BaseStatement] = list(statements_of(started.body))
    at: int = next(i for i, statement in enumerate(body) if _calls(statement, INIT)) + 1
    rest: list[Statement] = cast(list[Statement], body[at:])
    if not rest:
        return _appended(started, shutdown)
    guarded = cst.Try(
        body=cst.IndentedBlock(body=[rest[0].with_changes(leading_lines=()), *rest[1:]]),
        finalbody=cst.Finally(body=cst.IndentedBlock(body=shutdown)),
        leading_lines=rest[0].leading_lines,
    )
    return _with_body(started, [*body[:at], guarded])
