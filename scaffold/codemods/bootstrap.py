"""A service entry point does not initialise tracing at start-up and flush it at shutdown.

What it does: in a module that is a service entry point, makes start-up call ``init_tracing``
once and shutdown flush the spans (the kit's ``shutdown_tracing``):

- a Quart app (``app = Quart(...)`` or of a subclass, in a factory or at module level):
  first thing in its ``@app.before_serving`` hook, flushed at the end of
  ``@app.after_serving`` (hooks are added when missing);
- a FastAPI app: first thing in its ``lifespan`` function (defined in the factory or at
  module level; flushed at its end), or in its ``@app.on_event("startup")`` hook (flushed in
  the ``"shutdown"`` one, added when missing);
- otherwise a worker: the function the ``if __name__ == "__main__":`` block runs (``main()``,
  ``asyncio.run(main())``), or that block itself, starts with the call and flushes in a
  ``finally``.

Start-up that already sets tracing up counts however far away it does it: the repo model
(``scaffold.repo``) follows the calls of the hooks, lifespan (also one imported from another
module), factory, ``main()`` and the module's top level through the repo to the helper
module's or a kit's ``init_tracing``, or the SDK's ``TracerProvider(...)`` /
``trace.set_tracer_provider(...)`` (``before_serving`` -> ``startup_setup.initialize_tracing``
-> ``init_tracing``): nothing is added or reported there, and the SDK's exit-time shutdown
(``shutdown_on_exit=True``, its default) is the flush of a process that exits normally.

A module-level ``init_tracing(...)`` call of such a module moves into that start-up path
(its comment goes with it; ``tracer = init_tracing(...)`` leaves ``tracer =
trace.get_tracer(__name__)``, which follows the provider installed later, or
``trace.get_tracer(<the argument>)`` when the repo model shows the helper module's
``init_tracing`` returning ``get_tracer(<that parameter>)``: the tracer keeps its
instrumentation scope name). The call is the
configured ``helper-module``'s ``init_tracing``, else the kit's; a moved call to another
``init_tracing`` taking just the service name is pointed at it. The service name is the
moved call's argument, else ``service-name`` from ``[tool.scaffold]``, else the module's
``SERVICE_NAME``; a ``__main__`` block with none of these is a script, not a service, and is
left alone. A moved call of the helper module's ``init_tracing`` (also re-exported, as
``pkg.init_tracing``) is moved as it is, never repointed. Reported, not rewritten: an app
without a service name, a FastAPI app that never initialises tracing and has no lifespan or
startup hook (or whose imported lifespan does not), a moved call whose arguments the kit's
``init_tracing`` does not take, set-up at import in a module that binds an app a server
imports by name (``module:app``) when only a ``__main__`` block could take it (it never runs
there), and (with a helper module, which has no shutdown) a missing flush the repo shows is
needed: a ``TracerProvider`` built with ``shutdown_on_exit=False``, or an ``os._exit`` on
the way; it is reported on every run until the shutdown path flushes (``force_flush()``, a
provider's ``shutdown()``), at the app (its lifespan or shutdown hook if it has one) or the
worker's entry. Modules without an entry point are left to the ``init-at-import`` check.

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

import ast
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePath
from typing import TypeVar, cast

import libcst as cst
import libcst.matchers as m
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor

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
from scaffold.engine.discovery import is_test_support
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxGate
from scaffold.engine.model import Settings
from scaffold.kit_api import INIT_TRACING, KIT_PACKAGE
from scaffold.repo import LOCALS, MAIN_CODE, MODULE_CODE, ParamKind

INIT = INIT_TRACING
SHUTDOWN = "shutdown_tracing"
QUART = frozenset({"quart.Quart", "quart.app.Quart"})
FASTAPI = frozenset({"fastapi.FastAPI", "fastapi.applications.FastAPI"})
SERVICE_NAME = "SERVICE_NAME"
# app classes a server imports by name (`module:app`): set-up under __main__ never runs there
SERVED = frozenset({
    *QUART, *FASTAPI, "starlette.applications.Starlette", "flask.Flask", "flask.app.Flask",
    "aiohttp.web.Application", "aiohttp.web_app.Application", "litestar.Litestar",
    "sanic.Sanic", "falcon.App", "falcon.asgi.App",
})
SERVED_NAMES = frozenset({"app", "application", "asgi_app", "wsgi_app"})

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
    scope_qualname: str | None = None  # the factory's qualified name in its module
    hooks: dict[str, cst.FunctionDef] = field(default_factory=dict)  # "start"/"stop" -> hook
    lifespan: cst.FunctionDef | None = None
    lifespan_given: bool = False  # lifespan= is passed (found here or not)
    lifespan_elsewhere: str | None = None  # dotted, when it is defined in another module

    def qualname_of(self, function: cst.FunctionDef) -> str:
        """The qualified name of a hook or lifespan of this app (in the factory or not)."""
        in_scope = self.scope is not None and function in self.body
        return f"{self.scope_qualname}.{LOCALS}.{function.name.value}" if in_scope \
            else function.name.value

    @property
    def body(self) -> list[cst.BaseStatement]:
        return list(statements_of(self.scope.body)) if self.scope is not None else []


def _all_calls(node: cst.CSTNode) -> list[cst.Call]:
    """Every call inside ``node``, nested functions included (a hook may delegate)."""
    found: list[cst.Call] = []

    class _Find(FastVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

    node.visit(_Find())
    return found


_Entry = _App | cst.FunctionDef | cst.If  # an app, a worker's main, a __main__ block


@dataclass
class _Plan:
    """What one entry point needs, decided on the original tree."""

    entry: _Entry
    start: cst.FunctionDef | cst.If | None  # start-up code to begin with init (None: add a hook)
    stop: cst.FunctionDef | cst.If | None  # shutdown code to end with the flush (None: add one)
    needs_init: bool
    needs_flush: bool
    init_index: int | None = None  # the top-level statement of ``start`` already calling init


class Bootstrap(PropagationCodemod):
    USES_REPO = True  # start-up code often calls set-up in another module
    PREFILTER = ("__main__", "Quart", "FastAPI", INIT)
    SITE_KIND = "tracing-setup"  # its rows in `scaffold report`
    GATE = SyntaxGate(names=QUART | FASTAPI, words={INIT, SERVICE_NAME})

    @classmethod
    def syntax_gate(cls, settings: Settings) -> SyntaxGate:
        """An app, an init call or a named service; any main guard once config names one."""
        if not settings.service_name:
            return cls.GATE
        return SyntaxGate(names=QUART | FASTAPI, words={INIT, SERVICE_NAME},
                          strings={"__main__"})

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._function_edits: dict[cst.FunctionDef, list[FunctionEdit]] = {}
        self._main_block: cst.If | None = None
        self._main_edit: Callable[[cst.If], cst.If] | None = None

    # -- what the module is --

    def _init_call(self, statement: cst.BaseStatement) -> cst.Call | None:
        """The call of ``init_tracing(...)`` / ``x = init_tracing(...)`` lines (aliases too)."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return None
        small = statement.body[0]
        value = small.value if isinstance(small, (cst.Expr, cst.Assign, cst.AnnAssign)) else None
        if isinstance(value, cst.Call) and self.calls_one_of(value, INIT):
            return value
        return None

    def visit_Module(self, node: cst.Module) -> bool:
        parts = PurePath(self.path).parts
        if self.in_test_file or is_test_support(self.path) or KIT_PACKAGE in parts[:-1]:
            return False
        moved = [statement for statement in node.body
                 if isinstance(statement, cst.SimpleStatementLine)
                 and self._init_call(statement)]
        apps = self._apps(node)
        mains = [] if apps else self._mains(node)
        if moved and mains and self._served(node):
            # a server imports `module:app` and never runs the __main__ block
            self.report(moved[0], "init_tracing runs at import in a module that binds an "
                        "app a server may import by name (`module:app`), where the __main__ "
                        "block never runs: move it into the app's start-up by hand")
            return False
        entries = [entry for entry in apps or mains if self._instrumentable(entry, moved)]
        if not entries:
            return False  # a library module: init-at-import reports a call at its top
        if not apps and not moved and self._service_name(node) is None \
                and not any(self._calls(entry, INIT) or self._initialised(entry, moved)
                            for entry in entries
                            if not isinstance(entry, _App)):  # no apps: all mains
            return False  # a script's main guard, not recognisably a service: nothing to say
        flush = self.kit_function_available
        plans = [self._plan(entry, flush, moved) for entry in entries]
        changed = self._bootstrap(node, moved, plans, flush)
        if self.settings.helper_module:
            # the SDK's provider flushes at interpreter exit (shutdown_on_exit=True): only a
            # provider built without that, or an exit that skips it, loses the last spans;
            # reported on every run while so, not only alongside the rewrite that adds init
            for entry in entries:
                reason = None if self._flushes(entry) else self._flush_needed(entry, moved)
                if reason is not None:
                    self.report(self._flush_site(entry), f"no flush at shutdown: {reason}; "
                                "flush the provider (force_flush) when stopping")
        return changed

    def _bootstrap(self, module: cst.Module, moved: list[cst.SimpleStatementLine],
                   plans: list[_Plan], flush: bool) -> bool:
        """Move or add the init call (and the kit's flush) where the plans say; True if so."""
        if not moved and not any(plan.needs_init or plan.needs_flush for plan in plans):
            for plan in plans:
                self.record_correct(self._entry_node(plan.entry), "start-up sets tracing up")
            return False
        entry = plans[0].entry
        site = moved[0] if moved else self._entry_node(entry)
        initialising = bool(moved) or any(plan.needs_init for plan in plans)
        make_init = self._init_statement(moved[0] if moved else None, module, site) \
            if initialising else None
        if (initialising and make_init is None) or not self.record_change(
                site, self._message(entry, bool(moved), flush, initialising)):
            return False
        for statement in moved:
            self._leave_behind(statement)
        init = make_init() if make_init else None  # names resolved (imports scheduled) now
        shutdown = parse_statements(f"{self.kit_function(SHUTDOWN)}()\n") if flush else []
        for plan in plans:
            self._apply(plan, init, shutdown)
        return True

    def _flushes(self, entry: _Entry) -> bool:
        """The entry point's shutdown path flushes spans: ``shutdown_tracing()``,
        ``...force_flush()`` or a provider's ``shutdown()``."""
        stop = (entry.lifespan or entry.hooks.get("stop")) if isinstance(entry, _App) else entry
        return stop is not None and any(
            self.calls_one_of(call, (SHUTDOWN, "force_flush"))
            or (last_name(call.func) == "shutdown" and "provider" in code(call.func).lower())
            for call in _all_calls(stop))

    def _flush_site(self, entry: _Entry) -> cst.CSTNode:
        """Where a missing flush is reported: a node every run finds in the same place (not
        a start-up hook this codemod may have added)."""
        if isinstance(entry, _App):
            return entry.lifespan or entry.hooks.get("stop") or entry.assignment
        return entry

    # -- what the repo model says --

    def _start_functions(self, entry: _Entry, moved: list[cst.SimpleStatementLine],
                         ) -> list[str]:
        """The dotted functions start-up of the entry point runs (as the repo model names
        them): its hooks, lifespan, factory, main; the module's top level unless an init
        call there is about to move."""
        module = self.module_name
        if module is None:
            return []
        names: list[str] = []
        if isinstance(entry, _App):
            names += [entry.qualname_of(f) for f in (entry.lifespan, entry.hooks.get("start"))
                      if f is not None]
            if entry.scope_qualname:
                names.append(entry.scope_qualname)
        elif isinstance(entry, cst.FunctionDef):
            names += [entry.name.value, MAIN_CODE]
        else:
            names.append(MAIN_CODE)
        if not moved:
            names.append(MODULE_CODE)
        dotted = [f"{module}.{name}" for name in names]
        if isinstance(entry, _App) and entry.lifespan_elsewhere:
            dotted.append(entry.lifespan_elsewhere)
        return dotted

    def _initialised(self, entry: _Entry, moved: list[cst.SimpleStatementLine]) -> bool:
        """Start-up sets tracing up already, through any chain of calls in the repo
        (``before_serving`` -> ``startup_setup.initialize_tracing`` -> ``init_tracing``)."""
        helper = self.settings.helper_module
        return any(self.repo.reaches_tracing_setup(dotted, helper)
                   for dotted in self._start_functions(entry, moved))

    def _flush_needed(self, entry: _Entry, moved: list[cst.SimpleStatementLine]) -> str | None:
        """Why the spans of this entry point are lost at shutdown unless it flushes, when the
        repo shows it; None when the SDK's exit-time shutdown covers a normal exit (or the
        set-up code is not in the repo, so nothing can be shown)."""
        repo = self.repo
        starts = self._start_functions(entry, moved)
        helper = self.settings.helper_module
        setup = [*starts, *([repo.canonical(f"{helper}.{INIT}")] if helper else [])]
        for dotted in setup:
            for call in repo.tracer_providers(dotted):
                if (call.keyword("shutdown_on_exit") or "").strip() == "False":
                    return ("its TracerProvider is built with shutdown_on_exit=False, so "
                            "nothing flushes it at exit")
        module = self.module_name
        stops = [f"{module}.{entry.qualname_of(stop)}" for stop in (
            entry.lifespan, entry.hooks.get("stop")) if stop is not None] \
            if isinstance(entry, _App) and module else []
        if any(repo.reaches(dotted, lambda target: target == "os._exit")
               for dotted in [*starts, *stops]):
            return "os._exit ends the process without the SDK's exit-time flush"
        return None

    def _app_kind(self, func: cst.BaseExpression) -> str | None:
        """"quart" / "fastapi" for the class an app is made of (its subclasses too, through
        the repo model), else None."""
        if self.refers_to(func, QUART):
            return "quart"
        if self.refers_to(func, FASTAPI):
            return "fastapi"
        target = self._resolved(func)
        if target is None or target not in self.repo.classes:
            return None
        if self.repo.is_subclass(target, QUART):
            return "quart"
        return "fastapi" if self.repo.is_subclass(target, FASTAPI) else None

    def _resolved(self, expr: cst.BaseExpression) -> str | None:
        """What a dotted name of this module's top level stands for in the repo model."""
        name = dotted_name(expr)
        module = self.module_name
        return self.repo.resolve(module, name) if name and module else None

    def _served(self, module: cst.Module) -> bool:
        """The module binds an app object at top level (``app = X(...)``) a server can
        import by name."""
        for statement in module.body:
            small = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) \
                and len(statement.body) == 1 else None
            if not isinstance(small, (cst.Assign, cst.AnnAssign)) or not isinstance(
                    small.value, cst.Call):
                continue
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) \
                else [small.target]
            if any(dotted_name(t) in SERVED_NAMES for t in targets):
                return True
            target = self._resolved(small.value.func)
            if self.refers_to(small.value.func, SERVED) or (
                    target is not None and self.repo.is_subclass(target, SERVED)):
                return True
        return False

    # -- what the module is (continued) --

    def _inits_elsewhere(self, node: cst.CSTNode) -> bool:
        """``node`` calls an ``init_tracing`` that is not the kit's (a helper library's): the
        kit's ``shutdown_tracing`` would flush nothing there (it shuts down only a provider the
        kit installed), and the SDK flushes that provider at exit."""
        kit = self.settings.kit or ""
        for call in _all_calls(node):
            if not self.calls_one_of(call, INIT):
                continue
            names = self.qualified_names(call.func)
            if names and not any(kit and name.startswith(kit) for name in names):
                return True
        return False

    def _calls(self, node: cst.CSTNode, name: str) -> bool:
        """``node`` (original tree) calls ``name`` somewhere inside, under any alias."""
        return any(self.calls_one_of(call, name) for call in _all_calls(node))

    def _apps(self, module: cst.Module) -> list[_App]:
        apps: list[_App] = []
        codemod = self

        class _Find(FastVisitor):
            def __init__(self) -> None:
                self.scopes: list[cst.FunctionDef] = []
                self.names: list[str] = []  # qualified-name parts of the enclosing scopes

            def visit_ClassDef(self, node: cst.ClassDef) -> None:
                self.names.append(node.name.value)

            def leave_ClassDef(self, node: cst.ClassDef) -> None:
                self.names.pop()

            def visit_FunctionDef(self, function: cst.FunctionDef) -> None:
                self.scopes.append(function)
                self.names.append(function.name.value)

            def leave_FunctionDef(self, function: cst.FunctionDef) -> None:
                self.scopes.pop()
                self.names.pop()

            def visit_SimpleStatementLine(self, line: cst.SimpleStatementLine) -> None:
                small = line.body[0] if len(line.body) == 1 else None
                if not isinstance(small, cst.Assign) or not isinstance(small.value, cst.Call):
                    return
                target = dotted_name(small.targets[0].target)
                if not target or len(self.scopes) > 1:
                    return
                kind = codemod._app_kind(small.value.func)
                if kind:
                    scope = self.scopes[-1] if self.scopes else None
                    qualname = ".".join(self.names) if scope is not None else None
                    apps.append(_App(target, kind, line, scope, qualname))

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
            app.lifespan_given = lifespan is not None
            name = dotted_name(lifespan.value) if lifespan is not None else None
            # defined in the factory (before the app), at module level, or imported
            app.lifespan = next((s for s in (*app.body, *module.body)
                                 if isinstance(s, cst.FunctionDef) and s.name.value == name),
                                None)
            if app.lifespan is None and lifespan is not None and name is not None:
                target = self._resolved(lifespan.value)
                function = self.repo.function(target) if target is not None else None
                if function is not None:
                    app.lifespan_elsewhere = function.dotted

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

    def _instrumentable(self, entry: _Entry, moved: list[cst.SimpleStatementLine]) -> bool:
        if isinstance(entry, _App) and entry.kind == "fastapi" and entry.lifespan is None \
                and "start" not in entry.hooks:
            if self._initialised(entry, moved):
                return False  # set up in its factory or through its lifespan elsewhere
            if entry.lifespan_elsewhere:
                self.report(entry.assignment, f"this FastAPI app's lifespan "
                            f"({entry.lifespan_elsewhere}) never initialises tracing: call "
                            "init_tracing at its start")
            elif not entry.lifespan_given:  # one it cannot see into says nothing
                self.report(entry.assignment, "this FastAPI app has no lifespan and no "
                            "startup hook, and never initialises tracing: pass lifespan= a "
                            "function that calls init_tracing")
            return False
        return True

    def _plan(self, entry: _Entry, flush: bool,
              moved: list[cst.SimpleStatementLine]) -> _Plan:
        """What the entry point lacks, judged on the original tree (aliases resolved) and
        the repo model (set-up reached through other functions counts: nothing to add,
        and the SDK flushes a provider the kit did not install at exit)."""
        ready = not moved and self._initialised(entry, moved)
        if isinstance(entry, _App) and entry.lifespan is None:
            start, stop = entry.hooks.get("start"), entry.hooks.get("stop")
            return _Plan(entry, start, stop,
                         needs_init=not ready and (start is None or not self._calls(start, INIT)),
                         needs_flush=flush and not ready
                         and (stop is None or not self._calls(stop, SHUTDOWN))
                         and not (start is not None and self._inits_elsewhere(start)))
        code_path = entry.lifespan if isinstance(entry, _App) else entry
        assert code_path is not None  # an app without hooks has a lifespan here
        first_init = next((index for index, statement in enumerate(statements_of(code_path.body))
                           if self._calls(statement, INIT)), None)
        return _Plan(entry, code_path, code_path,
                     needs_init=first_init is None and not ready,
                     needs_flush=flush and not ready and not self._calls(code_path, SHUTDOWN)
                     and not self._inits_elsewhere(code_path),
                     init_index=first_init)

    def _message(self, entry, moving: bool, flush: bool, initialising: bool = True) -> str:
        where = "in the __main__ block" if isinstance(entry, cst.If) else "at start-up"
        flushed = ", and spans are flushed at shutdown" if flush else ""
        if moving:
            return f"init_tracing runs at import; it now runs {where}{flushed}"
        if not initialising:
            return "this entry point does not flush spans at shutdown; shutdown_tracing now " \
                "runs there"
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
        call = self._init_call(moved)
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
        """The helper module's or the kit's ``init_tracing``, also through a re-export the
        repo model follows (``pkg.init_tracing`` of ``pkg.observability``)."""
        owners = {module for module in (self.settings.helper_module, self.kit) if module}
        if any(name.rsplit(".", 1)[0] in owners or name.endswith(f".tracekit.{INIT}")
               for name in self.qualified_names(func)):
            return True
        target = self._resolved(func)
        return target is not None and self.repo.is_tracing_setup(
            target, self.settings.helper_module)

    def _repointed(self, call: cst.Call, module: str) -> cst.BaseExpression:
        """``module``'s init_tracing in place of the service's own.

        When only this call used the old name, its import goes: the kit's then takes the plain
        name ``init_tracing``.
        """
        func = call.func
        if isinstance(func, cst.Name) and self._references(func.value) == 1:
            binding = self._import_binding(func.value)
            if binding is not None:
                self.replace_statement(binding, partial(_without_import_of, name=func.value))
                if func.value == INIT or (self._references(INIT) == 0
                                          and self._import_binding(INIT) is None):
                    AddImportsVisitor.add_needed_import(self.context, module, INIT)
                    return cst.Name(INIT)
        elif all(not name.startswith(".") for name in self.qualified_names(func)):
            # LibCST resolves absolute imports only; a relative one that stays unused is left
            RemoveImportsVisitor.remove_unused_import_by_node(self.context, func)
        return cst.parse_expression(self.name_for(module, INIT))

    def _import_binding(self, name: str) -> cst.SimpleStatementLine | None:
        """The module-level ``from x import ...`` line binding the local ``name``, if any."""
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine) and any(
                    _binds(small, name) for small in statement.body):
                return statement
        return None

    def _references(self, name: str) -> int:
        """How often ``name`` is read in the module (imports do not count)."""
        count = 0

        class _Count(FastVisitor):
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
        value = getattr(small, "value", None)
        named = self._tracer_named(value) if isinstance(value, cst.Call) else None
        self.replace_statement(statement, lambda updated: [updated.with_changes(
            body=[updated.body[0].with_changes(
                value=cst.parse_expression(f"{get_tracer}({named or '__name__'})"))],
            trailing_whitespace=cst.TrailingWhitespace())])

    def _tracer_named(self, call: cst.Call) -> str | None:
        """The argument of a moved ``init_tracing(...)`` naming the tracer it returns, when it
        is the helper module's (moved as it is) and the repo model shows it returning
        ``get_tracer(<that parameter>)`` (``init_tracing(service_name)``): the tracer left
        behind keeps that instrumentation scope name instead of taking the module's."""
        helper = self.settings.helper_module
        wanted = self.repo.canonical(f"{helper}.{INIT}") if helper else None
        function = next((found for name in sorted(self.qualified_names(call.func))
                         if self.repo.canonical(name) == wanted
                         and (found := self.repo.function(wanted))), None)
        path = self.repo.file_of(function.module) if function is not None else None
        if function is None or path is None:
            return None
        try:
            tree = ast.parse(Path(path).read_bytes())
        except (OSError, SyntaxError, ValueError):
            return None
        node = next((n for n in ast.walk(tree)
                     if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.lineno == function.line and n.name == function.name), None)
        returns = [n.value for n in ast.walk(node)
                   if isinstance(n, ast.Return)] if node is not None else []
        names: set[str] = set()
        for value in returns:
            if not (isinstance(value, ast.Call) and len(value.args) == 1 and not value.keywords
                    and isinstance(value.args[0], ast.Name)
                    and (getattr(value.func, "attr", None) or getattr(value.func, "id", None))
                    == "get_tracer"):
                return None
            names.add(value.args[0].id)
        if len(names) != 1:
            return None
        (param,) = names
        positional = [p.name for p in function.params
                      if p.kind in (ParamKind.POSITIONAL, ParamKind.POSITIONAL_ONLY)]
        if param not in positional:
            return None
        for index, arg in enumerate(call.args):
            if arg.star:
                return None
            if (arg.keyword is not None and arg.keyword.value == param) or (
                    arg.keyword is None and index == positional.index(param)):
                return code(arg.value)
        return None

    # -- putting it in --

    def _apply(self, plan: _Plan, init: cst.SimpleStatementLine | None,
               shutdown: list[cst.BaseStatement]) -> None:
        entry = plan.entry
        starting = init if plan.needs_init else None
        stopping = shutdown if plan.needs_flush else []
        if not isinstance(entry, _App) or entry.lifespan is not None:
            # a worker's main, its __main__ block or a lifespan: one body does both
            target = plan.start
            assert target is not None
            index = plan.init_index
            if isinstance(target, cst.If):
                self._main_block = target
                self._main_edit = lambda node: _started_and_flushed(
                    node, starting, stopping, index, guard=not isinstance(entry, _App))
            else:
                self._edit(target, lambda node: _started_and_flushed(
                    node, starting, stopping, index, guard=not isinstance(entry, _App)))
            return
        hooks: list[cst.BaseStatement] = []
        if isinstance(plan.start, cst.FunctionDef):
            if starting is not None:
                self._edit(plan.start, lambda node: _started_and_flushed(node, starting, [], None))
        elif starting is not None:
            hooks.append(self._hook(entry, "before_serving", "init_tracing_at_startup",
                                    [starting]))
        if isinstance(plan.stop, cst.FunctionDef):
            if stopping:
                self._edit(plan.stop, lambda node: _started_and_flushed(
                    node, None, stopping, None, guard=False))
        elif stopping:
            event = "after_serving" if entry.kind == "quart" else 'on_event("shutdown")'
            hooks.append(self._hook(entry, event, "flush_traces_at_shutdown", stopping))
        if hooks:
            anchor = plan.start or entry.assignment
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



def _local(alias: cst.ImportAlias) -> str | None:
    return dotted_name(alias.asname.name) if alias.asname else dotted_name(alias.name)


def _binds(small: cst.BaseSmallStatement, name: str) -> bool:
    """``small`` is a ``from x import ...`` binding the local ``name``."""
    return isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar) \
        and any(_local(alias) == name for alias in small.names)


def _without_import_of(line: cst.SimpleStatementLine, name: str) -> list[cst.BaseStatement]:
    """The import line without the alias binding ``name`` (nothing, when that was all)."""
    body: list[cst.BaseSmallStatement] = []
    for small in line.body:
        if isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar) \
                and _binds(small, name):
            names = [alias for alias in small.names if _local(alias) != name]
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


def _started_and_flushed(node: _Block, init: cst.SimpleStatementLine | None,
                         shutdown: list[cst.BaseStatement], init_index: int | None,
                         *, guard: bool = True) -> _Block:
    """``init`` first (after a docstring); then ``shutdown`` after the rest of the body.

    With ``guard`` the rest (everything after the init call) runs in ``try`` and the flush in
    its ``finally``; without, the flush is appended (a shutdown hook, a lifespan's tail).
    """
    body: list[cst.BaseStatement] = list(statements_of(node.body))
    start = 1 if body and is_docstring(body[0]) else 0
    if init is not None:
        body.insert(start, init)
        start += 1
    elif init_index is not None:
        start = init_index + 1
    if shutdown:
        rest: list[Statement] = cast(list[Statement], body[start:])
        if guard and rest:
            body[start:] = [cst.Try(
                body=cst.IndentedBlock(body=[rest[0].with_changes(leading_lines=()), *rest[1:]]),
                finalbody=cst.Finally(body=cst.IndentedBlock(body=shutdown)),
                leading_lines=rest[0].leading_lines,
            )]
        else:
            body.extend(shutdown)
    return _with_body(node, body)
