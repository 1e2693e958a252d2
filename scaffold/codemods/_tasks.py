"""Tasks a stretch of code starts and does not wait for: a span wrapped around it would end
while the task still runs (what the ``task-outlives-span`` check reports), so the codemods
that wrap code in a span leave such code alone and report it instead."""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from scaffold.codemods.base import dotted_name
from scaffold.engine.fast import FastVisitor

TASK_CALLS = frozenset({"create_task", "ensure_future"})


class _Tasks(FastVisitor):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[tuple[cst.Call, str | None]] = []  # (call, name it is kept in)
        self.awaited_calls: set[int] = set()
        self.awaited_names: set[str] = set()
        self.groups: set[str] = set()  # ``async with TaskGroup() as tg``: it waits

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # defined here, run elsewhere

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_WithItem(self, node: cst.WithItem) -> None:
        callee = dotted_name(node.item.func) if isinstance(node.item, cst.Call) else None
        if callee and callee.rsplit(".", 1)[-1] == "TaskGroup" and node.asname is not None:
            name = dotted_name(node.asname.name)
            if name:
                self.groups.add(name)

    def visit_Await(self, node: cst.Await) -> None:
        # a task started inside an awaited expression is waited for (wait_for(create_task()))
        node.expression.visit(_Names(self.awaited_names, self.awaited_calls))

    def visit_Assign(self, node: cst.Assign) -> None:
        if isinstance(node.value, cst.Call) and len(node.targets) == 1:
            self._start(node.value, dotted_name(node.targets[0].target))

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("append", "add") \
                and len(node.args) == 1 and isinstance(node.args[0].value, cst.Call):
            self._start(node.args[0].value, dotted_name(func.value))  # tasks.append(...)
        self._start(node, None)

    def _start(self, call: cst.Call, kept_in: str | None) -> None:
        callee = dotted_name(call.func) or ""
        head, _, last = callee.rpartition(".")
        if last not in TASK_CALLS or any(
                arg.keyword is not None and arg.keyword.value == "context" for arg in call.args):
            return
        if head and head in self.groups:
            return
        if any(started is call for started, _ in self.started):
            if kept_in is not None:  # seen bare first (visit order): now we know its holder
                self.started = [(c, kept_in if c is call else k) for c, k in self.started]
            return
        self.started.append((call, kept_in))


class _Names(FastVisitor):
    def __init__(self, names: set[str], calls: set[int]) -> None:
        super().__init__()
        self.names, self.calls = names, calls

    def visit_Call(self, node: cst.Call) -> None:
        self.calls.add(id(node))

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        name = dotted_name(node)
        if name:
            self.names.add(name)
        return True


def unawaited_task(statements: Sequence[cst.CSTNode]) -> cst.Call | None:
    """The first ``create_task``/``ensure_future`` call in ``statements`` whose task they do
    not wait for (not awaited, not kept in a name or collection an ``await`` there reads, not
    in a ``TaskGroup`` they enter, no ``context=`` of its own); None when there is none."""
    tasks = _Tasks()
    for statement in statements:
        statement.visit(tasks)
    for call, kept_in in tasks.started:
        if id(call) in tasks.awaited_calls:
            continue
        if kept_in is not None and kept_in in tasks.awaited_names:
            continue
        return call
    return None
