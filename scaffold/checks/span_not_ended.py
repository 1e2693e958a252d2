"""A span from ``start_span(...)`` is not ended on every path.

What it does: follows each ``start_span(...)`` result within its function. It is fine when the
span is used as a context manager (``with tracer.start_span(...)``), handed to
``use_span(..., end_on_exit=True)``, ended in a ``finally``, returned or yielded, or handed to
other code (stored on an object, passed to a call other than ``use_span`` or
``set_span_in_context``, captured by a nested function): the new owner ends it, or ended by
the very next statement (nothing can raise in between). It reports a span that is never ended,
and one whose ``end()`` runs only if nothing raises first.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import ParentNodeProvider, ScopeProvider

from scaffold.checks._syntax import call_name, is_true, keyword
from scaffold.checks.base import Check

# calls that take a span without taking over ending it (use_span only with end_on_exit=True)
_BORROWING_CALLS = frozenset({"use_span", "set_span_in_context"})


class SpanNotEnded(Check):
    WHY = (
        "A span is exported only when it ends. A span that is never ended is never exported "
        "and keeps its attributes and events in memory; one ended only on the success path "
        "disappears exactly when something went wrong, including when an asyncio task is "
        "cancelled (`CancelledError` is not an `Exception`), and its children point to a "
        "parent that never reaches the backend."
    )
    FIX_HINT = (
        "Prefer `with tracer.start_as_current_span(name):`; when the span must be started "
        "separately, use `with trace.use_span(span, end_on_exit=True):` or call `span.end()` "
        "in a `finally`."
    )
    METADATA_DEPENDENCIES = (ParentNodeProvider, ScopeProvider)
    PREFILTER = ("start_span",)
    VALID = (
        """
        from opentelemetry import trace

        def context_managed():
            with tracer.start_span("work") as span:
                span.set_attribute("n", 1)

        def ended_in_finally():
            span = tracer.start_span("work")
            try:
                work()
            finally:
                span.end()

        async def used(message):
            span = tracer.start_span("process")
            with trace.use_span(span, end_on_exit=True):
                await handle(message)

        def factory(name):
            span = tracer.start_span(name)
            return span

        def ended_at_once():
            span = tracer.start_span("marker")
            span.end()
            return span.get_span_context()

        class Scope:
            def __enter__(self):
                self.span = tracer.start_span("scope")
                return self.span
        """,
    )
    INVALID = (
        """
        from opentelemetry import trace

        def forgotten():
            tracer.start_span("lost")  # <-

        def success_path_only():
            span = tracer.start_span("work")  # <-
            work()
            span.end()

        async def not_ended_on_exit(message):
            span = tracer.start_span("process")  # <-
            with trace.use_span(span):
                await handle(message)

        def in_context_only():
            ctx = trace.set_span_in_context(tracer.start_span("parent"))  # <-
            return ctx
        """,
    )

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) != "start_span":
            return
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(parent, cst.Expr):
            self.report(node, "the span is never ended")
        elif isinstance(parent, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, parent)
            if self._borrows(call):
                self.report(node, "the span is never ended")
        elif isinstance(parent, (cst.Assign, cst.AnnAssign)):
            problem = self._problem_with_name(parent)
            if problem:
                self.report(node, problem)

    def _borrows(self, call: cst.CSTNode) -> bool:
        """A call that uses the span but leaves ending it to the caller."""
        if not isinstance(call, cst.Call) or call_name(call) not in _BORROWING_CALLS:
            return False
        end_on_exit = keyword(call, "end_on_exit")
        return not (end_on_exit and is_true(end_on_exit.value))

    def _problem_with_name(self, statement: cst.Assign | cst.AnnAssign) -> str | None:
        targets = (
            [t.target for t in statement.targets]
            if isinstance(statement, cst.Assign)
            else [statement.target]
        )
        if len(targets) != 1 or not isinstance(targets[0], cst.Name):
            return None  # stored on an object or unpacked: its owner ends it
        target = targets[0]
        scope = self.get_metadata(ScopeProvider, target, None)
        if scope is None:
            return None
        ended_elsewhere = False
        for assignment in scope.assignments[target.value]:
            for reference in assignment.references:
                use = self._use_of(reference.node, scope, statement)
                if use == "owned":
                    return None
                ended_elsewhere = ended_elsewhere or use == "ended"
        if ended_elsewhere:
            return "the span is not ended if an exception or cancellation comes first"
        return "the span is never ended"

    def _use_of(self, name: cst.CSTNode, scope: object, started: cst.CSTNode) -> str:
        """How one read of the span's name treats it: ``owned``, ``ended`` or ``neutral``.

        ``owned`` means it is ended on every path or handed to an owner that ends it.
        """
        if self.get_metadata(ScopeProvider, name, None) is not scope:
            return "owned"  # captured by a nested function
        parent = self.get_metadata(ParentNodeProvider, name)
        if isinstance(parent, cst.Attribute):
            call = self.get_metadata(ParentNodeProvider, parent)
            if parent.attr.value == "end" and isinstance(call, cst.Call):
                if self._inside_finally(call) or self._next_statement(started, call):
                    return "owned"
                return "ended"
            return "neutral"
        if isinstance(parent, cst.Arg):
            call = self.get_metadata(ParentNodeProvider, parent)
            return "neutral" if self._borrows(call) else "owned"
        if isinstance(parent, (cst.WithItem, cst.Return, cst.Yield, cst.Element, cst.DictElement)):
            return "owned"
        if isinstance(parent, (cst.Assign, cst.AnnAssign)) and parent.value is name:
            return "owned"  # aliased or stored elsewhere
        return "neutral"

    def _next_statement(self, started: cst.CSTNode, call: cst.CSTNode) -> bool:
        """``call`` is the whole statement right after the one that started the span."""
        start_line = self.get_metadata(ParentNodeProvider, started, None)
        expr = self.get_metadata(ParentNodeProvider, call, None)
        end_line = self.get_metadata(ParentNodeProvider, expr, None) if expr else None
        if not (isinstance(expr, cst.Expr) and isinstance(end_line, cst.SimpleStatementLine)
                and isinstance(start_line, cst.SimpleStatementLine)
                and len(end_line.body) == 1 and len(start_line.body) == 1):
            return False
        block = self.get_metadata(ParentNodeProvider, start_line, None)
        # a statement line sits in a block or the module (None: no metadata)
        if not isinstance(block, (cst.IndentedBlock, cst.Module)) \
                or self.get_metadata(ParentNodeProvider, end_line, None) is not block:
            return False
        body = list(block.body)
        return body.index(start_line) + 1 == body.index(end_line)

    def _inside_finally(self, node: cst.CSTNode) -> bool:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, (cst.FunctionDef, cst.Module)):
            if isinstance(current, cst.Finally):
                return True
            current = self.get_metadata(ParentNodeProvider, current, None)
        return False
