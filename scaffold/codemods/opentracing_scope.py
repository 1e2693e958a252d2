"""OpenTracing's ``tracer.scope_manager.activate(span, finish_on_close)`` in OpenTelemetry code.

What it does: rewrites ``with <tracer>.scope_manager.activate(span, finish_on_close):`` to
``with trace.use_span(span, end_on_exit=finish_on_close):``, importing ``trace`` from
``opentelemetry`` (or reusing the file's existing import or alias). A ``with ... as scope``
whose ``scope`` is never used loses the unused name. Reported, not rewritten: an activate
outside a ``with`` (its ``scope.close()`` has no one-to-one OpenTelemetry form) and a ``with``
whose scope object is used in the body (``scope.span`` does not exist on a span).

Why: there is no ``scope_manager`` in OpenTelemetry; that is the OpenTracing API. On an
OpenTelemetry tracer the line raises ``AttributeError``, or, behind a shim, activates the span
in a second, separate context that OpenTelemetry instrumentation never sees. ``use_span`` makes
the span current in OpenTelemetry's context and, with ``end_on_exit``, ends it on exit.

Example::

    with tracer.scope_manager.activate(span, True):
        handle(message)

Use instead::

    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=True):
        handle(message)

Fix safety: safe. ``finish_on_close`` and ``end_on_exit`` mean the same thing, and the
rewrite only happens where the scope object is not used.
"""

from __future__ import annotations

from typing import ClassVar, TypeGuard

import libcst as cst

from scaffold.codemods.base import Codemod
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxGate


def _is_activate(node: cst.CSTNode) -> TypeGuard[cst.Call]:
    return (
        isinstance(node, cst.Call)
        and isinstance(node.func, cst.Attribute)
        and node.func.attr.value == "activate"
        and isinstance(node.func.value, cst.Attribute)
        and node.func.value.attr.value == "scope_manager"
    )


def _argument(call: cst.Call, index: int, name: str) -> cst.Arg | None:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    positional = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return positional[index] if index < len(positional) else None


class _Uses(FastVisitor):
    def __init__(self, name: str) -> None:
        self.name, self.used = name, False

    def visit_Name(self, node: cst.Name) -> None:
        self.used = self.used or node.value == self.name


class OpentracingScope(Codemod):
    PREFILTER = ("scope_manager",)
    GATE = SyntaxGate(words={"scope_manager"})
    SLICE_WORDS: ClassVar[frozenset[str] | None] = frozenset()  # a site names scope_manager itself

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._in_with: set[cst.Call] = set()

    def visit_With(self, node: cst.With) -> None:
        for item in node.items:
            if _is_activate(item.item):
                self._in_with.add(item.item)

    def leave_With(self, original_node: cst.With, updated_node: cst.With) -> cst.With:
        items = list(updated_node.items)
        changed = False
        for index, (original, item) in enumerate(zip(original_node.items, items, strict=True)):
            if not _is_activate(original.item):
                continue
            call = original.item
            if len([a for a in call.args if a.star]) or _argument(call, 0, "span") is None:
                self.report(call, "activate() with unusual arguments: rewrite it by hand")
                continue
            drop_as = False
            if item.asname is not None:
                target = item.asname.name
                if not isinstance(target, cst.Name):
                    self.report(call, "the scope is unpacked: rewrite it by hand")
                    continue
                uses = _Uses(target.value)
                original_node.body.visit(uses)
                if uses.used:
                    self.report(call, f"the scope object '{target.value}' is used in the "
                                "body; use trace.use_span(...) and the span itself instead")
                    continue
                drop_as = True
            if not self.record_change(call, "OpenTracing scope_manager.activate() replaced "
                                      "by trace.use_span()"):
                continue
            items[index] = item.with_changes(
                item=self._use_span(call), asname=None if drop_as else item.asname
            )
            changed = True
        return updated_node.with_changes(items=items) if changed else updated_node

    def _use_span(self, call: cst.Call) -> cst.Call:
        span = _argument(call, 0, "span")
        assert span is not None  # leave_With leaves a call without one alone
        finish = _argument(call, 1, "finish_on_close")
        trace = self.name_for("opentelemetry", "trace", alias="otel_trace")
        args = [cst.Arg(span.value)]
        if finish is not None:
            args.append(cst.Arg(finish.value, keyword=cst.Name("end_on_exit"),
                                equal=cst.AssignEqual(cst.SimpleWhitespace(""),
                                                      cst.SimpleWhitespace(""))))
        return cst.Call(func=cst.parse_expression(f"{trace}.use_span"), args=args)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        if _is_activate(original_node) and original_node not in self._in_with:
            self.report(original_node, "scope_manager.activate() outside a 'with': use "
                        "'with trace.use_span(span, end_on_exit=...)' around the work")
        return updated_node
