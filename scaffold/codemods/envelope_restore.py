"""A handler of an event envelope starts its span only when the envelope carries metadata.

What it does: where a function parses an event envelope (``X = EventEnvelope.model_validate_json
(msg.value)``, ``model_validate``, ``parse_raw``, ``parse_obj``; any class whose name ends in
``Envelope``, or in one of the option ``envelope-suffixes``; for the guard below, also an
envelope handed over parsed, named by the guard itself), makes the handler's work run
inside the envelope's restored context, under a span that exists whether or not ``X.metadata``
is there:

- ``if X.metadata and tracer: <restore, span, work> else: <the same work>`` becomes the traced
  branch alone. With the kit it is ``with restore_span(X.metadata, name, kind=..., attributes=
  ...)`` (from ``tracer.start_as_current_span(name, context=extract(X.metadata), ...)`` or
  ``use_trace_context`` + ``trace_operation``); otherwise the branch is kept with its extract
  restoring only when ``X.metadata`` carries a traceparent (``... if X.metadata and
  "traceparent" in X.metadata else nullcontext()``; an extract falls back to the current
  context) and its tracer ``tracer or get_tracer(__name__)``. The guard may also test
  ``hasattr(X, "metadata")`` (kept in the condition). The ``else`` branch must do the traced
  work: the same code, or the same code with the span ``None`` (``span=None`` where the traced
  branch passes ``span``, no ``if span:`` bookkeeping, ``except E:`` for ``except E as e:``).
- a handler that parses the envelope from its message argument and never reads ``X.metadata``
  gets the rest of its body wrapped: ``with restore_span(X.metadata, X.event_type):`` (the
  configured ``helper-module``'s ``use_trace_context`` + ``trace_operation`` without the kit;
  OpenTelemetry's ``start_as_current_span(..., context=extract(...))`` with neither).

With a kit, "carries a traceparent" is the kit's ``should_restore(X.metadata)``, which is also
false when the current span is already in the envelope's trace (the record's CONSUMER span that
kafka-consume opens, parented on the same producer), and ``restore_span`` keeps that span as
the parent: the handler's spans are its children, not its siblings under the producer.

Branches are compared as code: comments and layout do not count. A handler that already
restores a context (``use_trace_context``, ``extract`` + ``attach``, a span started with
``context=``) is left alone. Reported, not rewritten: a guard whose two branches do different
work, a guard without an ``else`` (without metadata the work does not run at all), and a
guarded branch doing more than restoring the context and starting the span.

Why: HuleEdu handlers restore the producer's context from ``envelope.metadata`` only
``if envelope.metadata and tracer:``. An event without metadata (an old producer, a replay, a
test) is then handled with no span at all: its database calls, HTTP calls and the events it
publishes hang off whatever context happens to be current, or start unrelated traces. A span
must exist either way: a child of the producer when there is context, otherwise a child of
the context already current (the record's CONSUMER span), never a detached empty context.

Example::

    envelope = EventEnvelope.model_validate_json(msg.value)
    if envelope.metadata and tracer:
        ctx = extract(envelope.metadata)
        with tracer.start_as_current_span(envelope.event_type, context=ctx,
                                          kind=SpanKind.CONSUMER):
            await process(envelope)
    else:
        await process(envelope)

Use instead::

    envelope = EventEnvelope.model_validate_json(msg.value)
    with restore_span(envelope.metadata, envelope.event_type, kind=SpanKind.CONSUMER):
        await process(envelope)

Fix safety: safe. The work runs as before, once; only the span around it and the context
current inside it change. The kit's ``restore_span`` reads malformed or missing metadata as
"no parent" instead of raising, and records an exception before re-raising it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

import libcst as cst
from libcst.codemod.visitors import RemoveImportsVisitor
from libcst.metadata import PositionProvider

from scaffold.codemods._propagation import (
    ENVELOPE_SUFFIXES,
    EXTRACT_NAMES,
    Place,
    PropagationCodemod,
    code,
    collect,
    header_comment,
    keyword,
    last_name,
    positional,
    statements_of,
    walk,
    with_comment,
)
from scaffold.codemods._tasks import unawaited_task
from scaffold.codemods.base import dotted_name
from scaffold.kit_api import RESTORE_SPAN

PARSE_NAMES = frozenset({"model_validate_json", "model_validate", "parse_raw", "parse_obj"})
RESTORE_NAMES = EXTRACT_NAMES | {"use_trace_context", "restore_span"}
SPAN_STARTS = frozenset({"start_as_current_span", "start_span", "trace_operation", "restore_span"})
_SPAN_KEYWORDS = frozenset({"context", "kind", "attributes"})


def _operands(test: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        return [*_operands(test.left), *_operands(test.right)]
    return [test]


def _with_chain(statement: cst.With) -> tuple[list[cst.WithItem], cst.IndentedBlock, int] | None:
    """The items of directly nested ``with`` statements, the innermost block, the depth."""
    items: list[cst.WithItem] = []
    depth = 1
    while isinstance(statement.body, cst.IndentedBlock):
        items.extend(statement.items)
        body = statement.body.body
        if len(body) != 1 or not isinstance(body[0], cst.With):
            return items, statement.body, depth
        statement, depth = body[0], depth + 1
    return None


def _tested_name(operand: cst.BaseExpression) -> str | None:
    """``tracer`` for ``tracer`` or ``tracer is not None`` (dotted names only)."""
    if (
        isinstance(operand, cst.Comparison) and len(operand.comparisons) == 1
        and isinstance(operand.comparisons[0].operator, cst.IsNot)
        and code(operand.comparisons[0].comparator) == "None"
    ):
        operand = operand.left
    return dotted_name(operand)


def _same_code(first: Sequence[cst.BaseStatement], second: Sequence[cst.BaseStatement]) -> bool:
    """Whether two blocks do the same work: compared as code, not comments or layout."""
    def tree(statements: Sequence[cst.BaseStatement]) -> str:
        text = cst.Module(body=cast(Sequence[cst.SimpleStatementLine], statements)).code
        return ast.dump(ast.parse(text))

    return tree(first) == tree(second)


def _tree(statements: Sequence[cst.BaseStatement]) -> ast.Module:
    return ast.parse(cst.Module(body=cast(Sequence[cst.SimpleStatementLine], statements)).code)


class _WithoutSpan(ast.NodeTransformer):
    """The traced work as it runs when its span is ``None``: ``span`` reads as ``None``,
    ``if span:`` / ``if span is not None:`` blocks vanish, and an ``except ... as e`` whose
    body no longer reads ``e`` loses the name (what the untraced branch writes)."""

    def __init__(self, alias: str | None) -> None:
        self.alias = alias

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == self.alias and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.Constant(None), node)
        return node

    def visit_If(self, node: ast.If) -> ast.AST | list[ast.stmt]:
        self.generic_visit(node)
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(
                test.ops[0], ast.IsNot) and isinstance(test.comparators[0], ast.Constant) \
                and test.comparators[0].value is None:
            test = test.left
        if isinstance(test, ast.Constant) and test.value is None:
            return node.orelse
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.generic_visit(node)
        if node.name is not None and not any(
                isinstance(n, ast.Name) and n.id == node.name for n in ast.walk(node)):
            node.name = None
        return node


def _same_work_without_span(untraced: Sequence[cst.BaseStatement],
                            traced: Sequence[cst.BaseStatement], alias: str | None) -> bool:
    """Whether the untraced branch is the traced work with its span ``None``: the traced
    branch then does the same work, plus what it records on its span."""
    tree = _tree(traced)
    if alias is not None and any(
            (isinstance(node, ast.Name) and node.id == alias
             and not isinstance(node.ctx, ast.Load))
            or (isinstance(node, ast.arg) and node.arg == alias)
            or (isinstance(node, ast.ExceptHandler) and node.name == alias)
            for node in ast.walk(tree)):
        return False  # the name is rebound: it is not the span everywhere
    return ast.dump(_WithoutSpan(alias).visit(tree)) == ast.dump(
        _WithoutSpan(None).visit(_tree(untraced)))


class _Guard:
    """An ``if X.metadata and tracer:`` around a restore, as found on the original tree."""

    def __init__(self, statement: cst.If, envelope: str, tracers: set[str],
                 tests: Sequence[str] = ()) -> None:
        self.statement, self.envelope, self.tracers = statement, envelope, tracers
        self.tests = [test for test in tests if test.startswith("hasattr(")]
        body = statement.body.body
        self.setup, self.block = list(body[:-1]), body[-1]

    @property
    def metadata(self) -> str:
        return f"{self.envelope}.metadata"

    def has_context(self, carries: str) -> str:
        """The test that the metadata holds a context to restore (``hasattr`` kept if tested)."""
        return " and ".join([*self.tests, carries])


class EnvelopeRestore(PropagationCodemod):
    PREFILTER = ENVELOPE_SUFFIXES
    SITE_KIND = "envelope-intake"  # its rows in `scaffold report`
    OPTIONS = {"envelope_suffixes": ENVELOPE_SUFFIXES}

    @classmethod
    def wants(cls, source: str) -> bool:
        return cls.wants_configured(source, None)

    @classmethod
    def wants_configured(cls, source: str, options: Mapping[str, Any] | None) -> bool:
        suffixes = cls.resolve_options(options)["envelope_suffixes"]
        return any(suffix in source for suffix in suffixes) and any(
            name in source for name in PARSE_NAMES)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._wrap: dict[cst.FunctionDef, tuple[int, cst.With]] = {}

    def parsed_envelope(self, value: cst.CSTNode | None) -> cst.Call | None:
        """The call when ``value`` parses an envelope (``EventEnvelope.model_validate_json``)."""
        if (
            isinstance(value, cst.Call)
            and isinstance(value.func, cst.Attribute)
            and value.func.attr.value in PARSE_NAMES
            and self.is_envelope_class(value.func.value)
        ):
            return value
        return None

    def _starts_span(self, statements: Sequence[cst.BaseStatement]) -> bool:
        return any(self.calls_one_of(call, SPAN_STARTS)
                   for statement in statements for call in collect(statement).calls)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value.startswith("test"):
            return  # a test that parses an envelope checks it; it handles nothing
        places = list(walk(node.body))
        parsed: dict[str, Place] = {}
        for place in places:
            statement = place.statement
            if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
                small = statement.body[0]
                target = _parsed_target(small)
                if target is not None and self.parsed_envelope(
                        cast(cst.Assign | cst.AnnAssign, small).value) is not None:
                    parsed[target] = place
        # an envelope handed over already parsed (``envelope = _deserialize(msg)``) is known
        # by its guard: ``if envelope.metadata: with use_trace_context(envelope.metadata)``
        guarded = {name for place in places if isinstance(place.statement, cst.If)
                   for name in _metadata_tested(place.statement.test)}
        if not parsed:
            for place in places:  # a handed-over envelope's restore as this rule writes it
                if isinstance(place.statement, cst.With) and self._restores_when_carried(
                        place.statement):
                    self.record_correct(place.statement, "restores the envelope's context "
                                        "when it carries one")
        if not parsed and not guarded:
            return
        for place in places:
            if isinstance(place.statement, cst.If):
                self._guard(place.statement, set(parsed) | guarded)
        if parsed:
            self._unrestored(node, parsed)

    def _restores_when_carried(self, statement: cst.With) -> bool:
        """``with (use_trace_context(X.metadata) if <test> else nullcontext()):``."""
        for item in statement.items:
            choice = item.item
            if isinstance(choice, cst.IfExp) and isinstance(choice.body, cst.Call) \
                    and self.calls_one_of(choice.body, RESTORE_NAMES):
                first = positional(choice.body, 0)
                if first is not None and code(first.value).endswith(".metadata"):
                    return True
        return False

    # -- guards --

    def _guard(self, statement: cst.If, envelopes: set[str]) -> None:
        metadata: set[str] = set()
        tracers: set[str] = set()
        tests: list[str] = []
        for operand in _operands(statement.test):
            text = code(operand)
            envelope = next((name for name in envelopes if text in (
                f"{name}.metadata", f"{name}.metadata is not None", f"bool({name}.metadata)",
                f'hasattr({name}, "metadata")', f"hasattr({name}, 'metadata')")),
                None)
            if envelope is not None:
                metadata.add(envelope)
                tests.append(text)
                continue
            tracer = _tested_name(operand)
            if tracer is None:
                return  # tests something else: not a tracing guard
            tracers.add(tracer)
        if len(metadata) != 1 or not isinstance(statement.body, cst.IndentedBlock):
            return
        guard = _Guard(statement, metadata.pop(), tracers, tests)
        restores = [call for call in collect(statement.body).calls
                    if self.calls_one_of(call, RESTORE_NAMES | {"start_as_current_span"})
                    and guard.metadata in code(call)]
        if not restores:
            return  # the guard is not about trace context (logging, validation ...)
        chain = _with_chain(guard.block) if isinstance(guard.block, cst.With) else None
        if chain is None or not self._only_restores(guard):
            self.report(statement, f"the guard on {guard.metadata} does more than restore the "
                        "context and start a span; make the span unconditional by hand")
            return
        items, work, depth = chain
        orelse = statement.orelse
        if orelse is None:
            self.report(statement, f"without {guard.metadata} this work does not run at all; "
                        "if it should, run it under the restored span in both cases")
            return
        alias = next((code(item.asname.name) for item in items if item.asname is not None
                      and isinstance(item.asname.name, cst.Name)
                      and isinstance(item.item, cst.Call)
                      and self.calls_one_of(item.item, SPAN_STARTS)), None)
        if isinstance(orelse, cst.Else) and (
                _same_code(statements_of(orelse.body), work.body)
                or _same_work_without_span(statements_of(orelse.body), work.body, alias)):
            self._unguard(guard, items, depth)
        elif not self._starts_span(statements_of(orelse.body) if isinstance(orelse, cst.Else)
                              else [orelse]):
            self.report(statement, f"with and without {guard.metadata} this handler does "
                        "different work; only the branch with metadata runs under a span")

    def _only_restores(self, guard: _Guard) -> bool:
        """The guarded branch is ``ctx = extract(X.metadata)`` lines, then one ``with``."""
        for statement in guard.setup:
            if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
                    and isinstance(statement.body[0], cst.Assign)):
                return False
            value = statement.body[0].value
            if not (isinstance(value, cst.Call) and self.calls_one_of(value, EXTRACT_NAMES)):
                return False
        return True

    def _unguard(self, guard: _Guard, items: list[cst.WithItem], depth: int) -> None:
        spans = any(isinstance(item.item, cst.Call) and self.calls_one_of(item.item, SPAN_STARTS)
                    for item in items)
        message = (f"the handler's span no longer depends on `{code(guard.statement.test)}`: "
                   "it starts with or without metadata") if spans else (
            f"the work no longer depends on `{code(guard.statement.test)}`: it runs in the "
            f"context restored from {guard.metadata} when that carries a traceparent, in the "
            "current one otherwise")
        if not self.record_change(guard.statement, message):
            return
        call = self._restore_span_call(guard, items) if self.kit_function_available else None
        restore_span = self.kit_function(RESTORE_SPAN) if call is not None else None
        comment = header_comment(guard.statement)
        if call is not None and restore_span is not None:
            call = call.with_changes(func=cst.parse_expression(restore_span))
            for dropped in (*guard.setup, *items):
                RemoveImportsVisitor.remove_unused_import_by_node(self.context, dropped)
            alias = next((item.asname for item in items if item.asname is not None), None)

            def restored(updated: cst.If) -> list[cst.BaseStatement]:
                innermost = cst.ensure_type(statements_of(updated.body)[-1], cst.With)
                for _ in range(depth - 1):
                    innermost = cst.ensure_type(statements_of(innermost.body)[0], cst.With)
                return [_commented(cst.With(
                    items=[cst.WithItem(call, asname=alias)],
                    body=innermost.body,
                    asynchronous=None,
                    leading_lines=updated.leading_lines,
                ), comment)]

            self.replace_statement(guard.statement, restored)
            return
        if_safe = self._none_safe(guard)
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, guard.statement.test)

        column = self.get_metadata(PositionProvider, guard.statement).start.column
        limit = self.settings.line_length

        def unguarded(updated: cst.If) -> list[cst.BaseStatement]:
            body = [cast(cst.BaseStatement, statement.visit(if_safe))
                    for statement in statements_of(updated.body)]
            if isinstance(body[0], cst.With) and limit is not None:
                body[0] = _laid_out(body[0], column, limit)
            body[0] = with_comment(body[0].with_changes(leading_lines=updated.leading_lines),
                                   comment)
            return body

        self.replace_statement(guard.statement, unguarded)

    def _restore_span_call(self, guard: _Guard, items: list[cst.WithItem]) -> cst.Call | None:
        """``restore_span(X.metadata, name, ...)`` for the guarded items, when they map."""
        spans = [item.item for item in items
                 if isinstance(item.item, cst.Call)
                 and self.calls_one_of(item.item, ("start_as_current_span", "trace_operation"))]
        others = [item.item for item in items
                  if not (isinstance(item.item, cst.Call)
                          and self.calls_one_of(item.item, "use_trace_context"))
                  and item.item not in spans]
        if len(spans) != 1 or others:
            return None
        span = spans[0]
        contexts = {code(cast(cst.Assign, cast(cst.SimpleStatementLine, statement).body[0])
                         .targets[0].target) for statement in guard.setup}
        if self.calls_one_of(span, "trace_operation"):
            name = positional(span, 1, "name")
            attributes = positional(span, 2, "attributes")
            kept = [] if attributes is None else [
                attributes.with_changes(keyword=cst.Name("attributes"),
                                        equal=cst.AssignEqual(
                                            whitespace_before=cst.SimpleWhitespace(""),
                                            whitespace_after=cst.SimpleWhitespace("")))]
        else:
            name = positional(span, 0, "name")
            given = {arg.keyword.value: arg for arg in span.args if arg.keyword is not None}
            if set(given) - _SPAN_KEYWORDS - {"name"}:
                return None
            context = keyword(span, "context")
            if context is not None and not (code(context.value) in contexts or (
                isinstance(context.value, cst.Call)
                and self.calls_one_of(context.value, EXTRACT_NAMES)
                and context.value.args and code(context.value.args[0].value) == guard.metadata
            )):
                return None
            kept = [arg for word, arg in given.items() if word in ("kind", "attributes")]
        if name is None:
            return None
        first = span.args[0]
        args = [
            first.with_changes(value=cst.parse_expression(guard.metadata), keyword=None,
                               equal=cst.MaybeSentinel.DEFAULT),
            name.with_changes(comma=first.comma if kept else span.args[-1].comma),
            *kept,
        ]
        if kept:
            args[-1] = args[-1].with_changes(comma=span.args[-1].comma)
        return span.with_changes(args=args)  # the caller names restore_span

    def _none_safe(self, guard: _Guard) -> cst.CSTTransformer:
        """Restores only when ``X.metadata`` is there, and reads a tracer that may be None."""
        codemod = self
        calls = collect(guard.statement.body).calls  # local names, aliases resolved here
        restores = {last_name(call.func) for call in calls
                    if self.calls_one_of(call, RESTORE_NAMES)}
        extracts = {last_name(call.func) for call in calls
                    if self.calls_one_of(call, EXTRACT_NAMES)}
        spans = {last_name(call.func) for call in calls
                 if self.calls_one_of(call, RESTORE_SPAN)}
        operations = {last_name(call.func) for call in calls
                      if self.calls_one_of(call, "trace_operation")}

        class _NoneSafe(cst.CSTTransformer):
            def leave_Call(self, original: cst.Call,
                           updated: cst.Call) -> cst.BaseExpression:
                name = last_name(updated.func)
                args = list(updated.args)
                if name in restores and args and code(args[0].value) == guard.metadata:
                    # without metadata the context current here (the record's CONSUMER span,
                    # the correlation baggage) stays current: an empty carrier would detach it
                    # by the local names found on the original tree (aliases resolved there)
                    kind = ("restore_span" if name in spans
                            else "extract" if name in extracts else "use")
                    return codemod._unless_missing(updated, guard, kind)
                if name in operations and args and code(args[0].value) in guard.tracers:
                    args[0] = args[0].with_changes(value=codemod._any_tracer(args[0].value))
                updated = updated.with_changes(args=args)
                func = updated.func
                if (isinstance(func, cst.Attribute) and func.attr.value in SPAN_STARTS
                        and code(func.value) in guard.tracers):
                    updated = updated.with_changes(func=func.with_changes(
                        value=codemod._any_tracer(func.value).with_changes(
                            lpar=[cst.LeftParen()], rpar=[cst.RightParen()])))
                return updated

        return _NoneSafe()

    def _unless_missing(self, call: cst.Call, guard: _Guard, kind: str) -> cst.BaseExpression:
        """``call`` restoring the metadata when it holds a context to restore (it carries one
        and, with a kit, the current span is not already in that trace), else what keeps the
        current context: ``nullcontext()`` for a context manager, the current
        context for an extract, the call itself for the kit's restore_span (which parents on
        the current context when the metadata has no traceparent). Metadata holding other keys
        only (a partition key) would otherwise attach an empty context over the record's span."""
        if kind == "restore_span":
            return call
        has_context = guard.has_context(self._to_restore(guard.metadata))
        if kind == "extract":
            fallback = f"{self.otel('opentelemetry.context', 'get_current')}()"
        else:
            fallback = f"{self.otel('contextlib', 'nullcontext')}()"
        return cst.parse_expression(f"({code(call)} if {has_context} else {fallback})")

    def _to_restore(self, metadata: str) -> str:
        """The test that ``metadata`` holds a context to make current here. With a kit, its
        ``should_restore``: also false when the current span is already in that trace (the
        record's CONSUMER span, which kafka-consume opens parented on the same producer):
        restoring there would make the handler's spans siblings of that span, not children."""
        if self.kit:
            return f"{self.name_for(self.kit, 'should_restore')}({metadata})"
        return carries_context(metadata)

    def _any_tracer(self, tracer: cst.BaseExpression) -> cst.BaseExpression:
        get_tracer = self.otel("opentelemetry.trace", "get_tracer")
        return cst.parse_expression(f"{code(tracer)} or {get_tracer}(__name__)")

    # -- handlers that never restore --

    def _unrestored(self, node: cst.FunctionDef, parsed: dict[str, Place]) -> None:
        if not isinstance(node.body, cst.IndentedBlock):
            return
        params = {param.name.value for param in (
            *node.params.posonly_params, *node.params.params, *node.params.kwonly_params)
        } - {"self", "cls"}
        body = node.body.body
        if any(s in self._before or s in self._replacements for s in body):
            return  # a guard of this body is being rewritten: one reshaping at a time
        if any(self.calls_one_of(call, RESTORE_NAMES | {"attach"}) or (
                self.calls_one_of(call, SPAN_STARTS) and keyword(call, "context") is not None)
               for call in collect(node.body).calls):
            if not any(isinstance(p.statement, cst.If) and ".metadata" in code(p.statement.test)
                       for p in walk(node.body)):  # a guarded restore is the guard's site
                for place in parsed.values():
                    self.record_correct(place.statement, "its handler restores a context")
            return  # it restores a context already (another envelope's, the headers'...)
        mentions = code(node.body)
        for name, place in parsed.items():
            if len(place.chain) != 1 or f"{name}.metadata" in mentions:
                continue
            index = place.chain[0][1]
            rest = body[index + 1:]
            value = cast(cst.Assign | cst.AnnAssign,
                         cast(cst.SimpleStatementLine, place.statement).body[0]).value
            if not isinstance(value, cst.Call):
                continue
            from_message = collect(*(arg.value for arg in value.args)).names & params
            if not from_message or not any(collect(s).calls for s in rest):
                continue
            task = unawaited_task(rest)
            if task is not None:
                self.report(place.statement, f"the work after parsing {name} starts a task "
                            f"({code(task.func)}()) that would outlive a span restored from "
                            f"{name}.metadata around it; restore the context inside the task")
                return
            if self.record_change(place.statement, f"the work after parsing {name} now runs "
                                  f"in the context restored from {name}.metadata, under a span"):
                self._wrap[node] = (index, self._restoring_with(name, node))
            return

    def _restoring_with(self, name: str, node: cst.FunctionDef) -> cst.With:
        metadata = f"{name}.metadata"
        span_name = f"{name}.event_type" if "event_type" in self.module.code \
            else f'"{node.name.value}"'
        if self.kit_function_available:
            head = f"with {self.kit_function(RESTORE_SPAN)}({metadata}, {span_name}):"
        elif self.settings.helper_module:
            get_tracer = self.otel("opentelemetry.trace", "get_tracer")
            restore = (f"({self.helper('use_trace_context')}({metadata}) "
                       f"if {self._to_restore(metadata)} else "
                       f"{self.otel('contextlib', 'nullcontext')}())")
            head = (f"with {restore}, "
                    f"{self.helper('trace_operation')}({get_tracer}(__name__), {span_name}, {{}}):")
        else:
            get_tracer = self.otel("opentelemetry.trace", "get_tracer")
            extract = self.otel("opentelemetry.propagate", "extract")
            kind = self.otel("opentelemetry.trace", "SpanKind")
            head = (f"with {get_tracer}(__name__).start_as_current_span({span_name}, "
                    f"context={extract}({metadata}) if {carries_context(metadata)} else None, "
                    f"kind={kind}.CONSUMER):")
        return cst.ensure_type(cst.parse_statement(f"{head}\n    pass\n"), cst.With)

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.FunctionDef:
        wrap = self._wrap.get(original_node)
        if wrap is None:
            return updated_node
        index, head = wrap
        body = list(statements_of(updated_node.body))
        wrapped = head.with_changes(body=head.body.with_changes(body=body[index + 1:]))
        return updated_node.with_changes(body=updated_node.body.with_changes(
            body=[*body[:index + 1], wrapped]))


def _laid_out(statement: cst.With, column: int, limit: int) -> cst.With:
    """A ``with`` of one conditional item (``with (a if b else c):``) longer than ``limit``
    at ``column``, laid out as ruff's formatter does: the item on its own lines, split at
    ``if`` and ``else``, inside the ``with``'s parentheses."""
    if len(statement.items) != 1 or statement.items[0].asname is not None:
        return statement
    item = statement.items[0].item
    if not isinstance(item, cst.IfExp):
        return statement
    header = f"with {code(item)}:"
    if column + len(header) <= limit or "\n" in header:
        return statement
    bare = item.with_changes(lpar=[], rpar=[])
    test = f"if {code(bare.test)}"
    operands = _operands(bare.test)
    if column + 4 + len(test) > limit and len(operands) > 1:
        test = "if (\n" + "".join(
            f"        {'and ' if i else ''}{code(operand)}\n"
            for i, operand in enumerate(operands)) + "    )"
    text = (f"with (\n    {code(bare.body)}\n    {test}\n"
            f"    else {code(bare.orelse)}\n):\n    pass\n")
    laid = cst.ensure_type(cst.parse_statement(text), cst.With)
    return laid.with_changes(body=statement.body, leading_lines=statement.leading_lines,
                             asynchronous=statement.asynchronous)


def _metadata_tested(test: cst.BaseExpression) -> set[str]:
    """The names ``X`` whose ``X.metadata`` an ``and``-ed operand of a guard tests."""
    found = set()
    for operand in _operands(test):
        text = code(operand)
        match = re.fullmatch(r"(?:bool\()?([A-Za-z_]\w*)\.metadata(?: is not None|\))?", text) \
            or re.fullmatch(r"hasattr\(([A-Za-z_]\w*), [\"']metadata[\"']\)", text)
        if match:
            found.add(match.group(1))
    return found


def _parsed_target(small: cst.BaseSmallStatement) -> str | None:
    """The name ``X`` of ``X = value`` or ``X: T = value``."""
    if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(
            small.targets[0].target, cst.Name):
        return small.targets[0].target.value
    if isinstance(small, cst.AnnAssign) and small.value is not None and isinstance(
            small.target, cst.Name):
        return small.target.value
    return None


def carries_context(metadata: str) -> str:
    """The test that ``metadata`` (a dict carrier) holds a W3C trace context."""
    return f'{metadata} and "traceparent" in {metadata}'


def _commented(statement: cst.With, comment: cst.Comment | None) -> cst.With:
    """The comment on the ``with`` line itself: inside an opened call it stays on line one."""
    if comment is None:
        return statement
    call = statement.items[0].item
    if isinstance(call, cst.Call) and isinstance(call.whitespace_before_args,
                                                 cst.ParenthesizedWhitespace):
        first = call.whitespace_before_args.first_line.with_changes(
            whitespace=cst.SimpleWhitespace("  "), comment=comment)
        call = call.with_changes(
            whitespace_before_args=call.whitespace_before_args.with_changes(first_line=first))
        return statement.with_changes(items=[statement.items[0].with_changes(item=call)])
    return cst.ensure_type(with_comment(statement, comment), cst.With)
