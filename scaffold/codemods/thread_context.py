"""Work handed to a thread runs without the submitting code's context.

What it does: makes the context current at submission follow the work into the thread, with
a fresh ``contextvars.copy_context()`` per submission, for
``threading.Thread(target=...)``, ``threading.Timer(interval, function)``, ``Thread``
subclasses that override ``run``, ``ThreadPoolExecutor.submit`` / ``.map`` (executors the file
creates: ``with ThreadPoolExecutor() as pool``, ``self.pool = ThreadPoolExecutor()``) and
``loop.run_in_executor(None or a thread pool, fn, ...)``. When the repo has the kit
(``tracekit``), its helpers are used instead (``TracedThread``, ``TracedTimer``, ``submit``,
``executor_map``, ``run_in_executor``). ``asyncio.to_thread`` and ``create_task`` already copy
the context and are left alone, as are process pools (a context cannot be pickled). A
``run_in_executor`` whose executor the codemod cannot identify is reported.

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

import re
from pathlib import PurePath

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from scaffold.codemods.base import Codemod, dotted_name

THREAD = "threading.Thread"
TIMER = "threading.Timer"
THREAD_POOLS = {
    "concurrent.futures.ThreadPoolExecutor", "concurrent.futures.thread.ThreadPoolExecutor",
}
PROCESS_POOLS = {
    "concurrent.futures.ProcessPoolExecutor", "concurrent.futures.process.ProcessPoolExecutor",
}
_SITES = re.compile(r"\b(?:Thread|Timer)\s*[()]|ThreadPoolExecutor|run_in_executor")
_CARRIED = "copy_context"  # already rewritten (or written by hand the same way)


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


class ThreadContext(Codemod):
    PREFILTER = ("Thread", "Timer", "run_in_executor")
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)

    @classmethod
    def wants(cls, source: str) -> bool:
        # a call or subclass of Thread/Timer, an executor, or run_in_executor must be spelled out
        return _SITES.search(source) is not None and (
            "run_in_executor" in source or "threading" in source or "concurrent" in source
        )

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._thread_pools: set[str] = set()
        self._process_pools: set[str] = set()

    # -- what the file creates --

    def _is(self, node: cst.CSTNode, names: set[str]) -> bool:
        return bool(self.qualified_names(node) & names)

    def visit_Module(self, node: cst.Module) -> bool:
        if "tracekit" in PurePath(self.path).parts[:-1]:
            return False  # the kit's own code is what carries context; never rewrite it
        codemod = self

        class _Pools(cst.CSTVisitor):
            def _bind(self, target: cst.CSTNode, value: cst.CSTNode | None) -> None:
                if not isinstance(value, cst.Call):
                    return
                name = dotted_name(target)
                if name is None:
                    return
                if codemod._is(value.func, THREAD_POOLS):
                    codemod._thread_pools.add(name)
                elif codemod._is(value.func, PROCESS_POOLS):
                    codemod._process_pools.add(name)

            def visit_Assign(self, assign: cst.Assign) -> None:
                for target in assign.targets:
                    self._bind(target.target, assign.value)

            def visit_AnnAssign(self, assign: cst.AnnAssign) -> None:
                self._bind(assign.target, assign.value)

            def visit_WithItem(self, item: cst.WithItem) -> None:
                if item.asname is not None:
                    self._bind(item.asname.name, item.item)

        node.visit(_Pools())
        return True

    def _pool_kind(self, receiver: cst.BaseExpression) -> str | None:
        if isinstance(receiver, cst.Call):
            if self._is(receiver.func, THREAD_POOLS):
                return "thread"
            return "process" if self._is(receiver.func, PROCESS_POOLS) else None
        name = dotted_name(receiver)
        if name in self._thread_pools:
            return "thread"
        return "process" if name in self._process_pools else None

    # -- building the replacement code --

    @property
    def _kit(self) -> str | None:
        return self.settings.kit

    def _kit_helper(self, name: str) -> cst.BaseExpression:
        threads = self.name_for(self._kit, "threads", alias="tracekit_threads", always_alias=True)
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
        if self._is(func, {THREAD}):
            return self._thread(original_node, updated_node, "TracedThread", 1, "target")
        if self._is(func, {TIMER}):
            return self._thread(original_node, updated_node, "TracedTimer", 1, "function")
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            if method in ("submit", "map") and self._pool_kind(func.value) == "thread":
                return self._executor(original_node, updated_node, method)
            if method == "run_in_executor":
                return self._run_in_executor(original_node, updated_node)
        return updated_node

    def _thread(self, original: cst.Call, updated: cst.Call, kit_class: str, index: int,
                name: str) -> cst.Call:
        found = _argument(updated, index, name)
        if found is None or _CARRIED in _code(found[1].value):
            return updated
        kind = "Thread" if kit_class == "TracedThread" else "Timer"
        if not self.record_change(original, f"threading.{kind} now runs its {name} in the "
                                  "context current where it was created"):
            return updated
        if self._kit:
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
            return updated
        if not self.record_change(original, f"ThreadPoolExecutor.{method} now carries the "
                                  "submitting context into the worker"):
            return updated
        receiver = updated.func.value
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
            return updated
        is_default = isinstance(executor, cst.Name) and executor.value == "None"
        kind = "thread" if is_default else self._pool_kind(original.args[0].value)
        if kind == "process":
            return updated
        if kind is None:
            self.report(original, f"cannot tell whether {_code(executor)!r} is a thread pool; "
                        "if it is, pass contextvars.copy_context().run before the function")
            return updated
        if not self.record_change(original, "run_in_executor now carries the submitting "
                                  "context into the worker"):
            return updated
        if self._kit:
            return cst.Call(func=self._kit_helper("run_in_executor"),
                            args=[cst.Arg(updated.func.value), *args])
        return updated.with_changes(args=[args[0], cst.Arg(self._copy_run()), *args[1:]])

    def leave_ClassDef(self, original_node: cst.ClassDef, updated_node: cst.ClassDef):
        bases = [i for i, base in enumerate(original_node.bases) if self._is(base.value, {THREAD})]
        body = updated_node.body
        if not bases or not isinstance(body, cst.IndentedBlock):
            return updated_node
        methods = {
            statement.name.value: index for index, statement in enumerate(body.body)
            if isinstance(statement, cst.FunctionDef)
        }
        if "run" not in methods:
            return updated_node  # Thread.run calls target=, which the call rewrite handles
        start = body.body[methods["start"]] if "start" in methods else None
        if start is not None and _CARRIED in _code(start):
            return updated_node
        if not self.record_change(original_node.bases[bases[0]], "Thread subclass overriding "
                                  "run() now runs it in the context current at start()"):
            return updated_node
        if self._kit:
            new_bases = list(updated_node.bases)
            new_bases[bases[0]] = new_bases[bases[0]].with_changes(
                value=self._kit_helper("TracedThread"))
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
            run_method = statements[methods["run"]]
            statements.insert(methods["run"], method.with_changes(
                leading_lines=run_method.leading_lines))
            statements[methods["run"] + 1] = run_method.with_changes(
                leading_lines=[cst.EmptyLine(indent=False)])
        return updated_node.with_changes(body=body.with_changes(body=statements))


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
