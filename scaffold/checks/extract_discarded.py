"""The context returned by ``extract(...)`` is thrown away.

What it does: finds calls that extract a context from a carrier (``propagate.extract``,
``<propagator>.extract``, ``get_global_textmap().extract`` and the helpers named in option
``functions``, default ``extract_trace_context`` and ``extract_context``) and reports those
whose result is not used: a bare expression statement, an assignment to ``_``, or a local name
that is never read afterwards. Any read of the name counts as use (attaching it, passing it as
``context=``, reading its span for a link).
"""

from __future__ import annotations

import re

import libcst as cst
from libcst.metadata import ParentNodeProvider, QualifiedNameProvider, ScopeProvider

from scaffold.checks._syntax import terminal_name
from scaffold.checks.base import Check

_PROPAGATOR_RECEIVER = re.compile(r"propagat|textmap", re.IGNORECASE)


class ExtractDiscarded(Check):
    WHY = (
        "`extract` does not change the current context: it returns a new one. Unless that "
        "context is attached or passed as `context=` to the span that handles the message, "
        "the span starts a new trace (or joins whatever happens to be current), and the hop "
        "is lost."
    )
    FIX_HINT = (
        "Start the handling span with `context=ctx` "
        "(`tracer.start_as_current_span(name, context=ctx)`), or attach it in a `try` and "
        "detach in `finally` (`use_trace_context(carrier)` does both)."
    )
    METADATA_DEPENDENCIES = (ParentNodeProvider, QualifiedNameProvider, ScopeProvider)
    PREFILTER = ("extract",)
    OPTIONS = {"functions": ("extract_trace_context", "extract_context")}
    VALID = (
        """
        from opentelemetry import context, propagate, trace

        def handle(message):
            ctx = propagate.extract(message.headers)
            with tracer.start_as_current_span("process", context=ctx):
                work()

        def handle_attached(carrier):
            token = context.attach(extract_trace_context(carrier))
            try:
                work()
            finally:
                context.detach(token)

        def linked(carrier):
            origin = propagate.extract(carrier)
            link = trace.Link(trace.get_current_span(origin).get_span_context())
            return tracer.start_span("process", links=[link])

        archive.extract("member.txt")
        """,
    )
    INVALID = (
        """
        from opentelemetry import propagate
        from opentelemetry.propagate import get_global_textmap

        async def handle(envelope):
            extract_trace_context(envelope.metadata)  # <-
            with tracer.start_as_current_span(envelope.event_type):
                await process(envelope)

        def on_message(message):
            ctx = propagate.extract(message.headers)  # <-
            _ = get_global_textmap().extract(message.headers)  # <-
            with tracer.start_as_current_span("process"):
                work()
        """,
    )

    def visit_Call(self, node: cst.Call) -> None:
        if not self._is_extract(node):
            return
        parent = self.get_metadata(ParentNodeProvider, node)
        if isinstance(parent, cst.Expr):
            self.report(node, "the extracted context is discarded")
        elif isinstance(parent, (cst.Assign, cst.AnnAssign)) and self._never_read(parent):
            self.report(node, "the extracted context is assigned but never used")

    def _is_extract(self, call: cst.Call) -> bool:
        name = terminal_name(call.func)
        if name in self.options["functions"]:
            return True
        if name != "extract":
            return False
        for qualified in self.get_metadata(QualifiedNameProvider, call.func, set()):
            if qualified.name.split(".")[0] == "opentelemetry":
                return True
        receiver = call.func.value if isinstance(call.func, cst.Attribute) else None
        return receiver is not None and bool(
            _PROPAGATOR_RECEIVER.search(self.module.code_for_node(receiver))
        )

    def _never_read(self, statement: cst.Assign | cst.AnnAssign) -> bool:
        targets = (
            [target.target for target in statement.targets]
            if isinstance(statement, cst.Assign)
            else [statement.target]
        )
        for target in targets:
            if not isinstance(target, cst.Name):
                return False  # stored on an object or unpacked: used elsewhere
            if target.value == "_":
                continue
            scope = self.get_metadata(ScopeProvider, target, None)
            if scope is None or any(
                assignment.references for assignment in scope.assignments[target.value]
            ):
                return False
        return True
