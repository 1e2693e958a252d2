"""Kafka records handled outside a CONSUMER span parented on the producer's context.

What it does: the handling of each record an aiokafka consumer returns runs inside the kit's
``consume_span(record)``: a CONSUMER span ``process {topic}`` parented on the context the
producer put in the record's headers (or its envelope's ``metadata``), current for all the
handler's work. Consumers are found by construction (``AIOKafkaConsumer(...)`` under any
import or alias, including ``self.x = ...`` attributes used in other methods), by
annotation (``consumer: AIOKafkaConsumer``), and as what a factory makes when that factory is
the class itself or an injected stand-in for it (``self.factory = factory or
AIOKafkaConsumer`` ... ``self.consumer = self.factory(...)``).

- ``async for msg in consumer:``: the loop body runs inside ``with consume_span(msg):``.
- ``msg = await consumer.getone()``: the statements after it in the same block do.
- ``batch = await consumer.getmany(...)`` iterated as ``for tp, records in batch.items()``
  or ``for records in batch.values()`` and then ``for record in records:`` (or ``for i,
  record in enumerate(records):``): each record's body does, one span per record. The batch
  may be handed to a function or method of the same file first (``await
  self._process_batch(batch)``); its loops are rewritten there.

The span starts at the first statement that names the record (or its index): leading statements
that do not (a shutdown check ``if self.should_stop: break``, a health probe) are the loop's
own work and stay before it, and so do trailing calls on the consumer itself (``await
consumer.commit()``). Lines that the deeper indentation pushes over the repo's line length
(ruff's or black's ``line-length``) are laid out again: comments re-wrapped, calls split inside
their parentheses, a string alone on its line split at a space. ``group_id=`` is passed on when
the consumer's construction names it in a form that can be repeated there. Left alone: handling
already inside ``consume_span``, batches given to ``consume_batch``, and test code. Reported: a
``getone()`` result not assigned to a name with statements after it, a ``getmany()`` result not
iterated record by record in its function, a loop whose target is not a plain name, and any
site in a file that has no kit to import.

Why: nothing makes the producer's context current on the consumer side. The handler's spans,
logs and the events it publishes start a new trace per record. The official aiokafka
instrumentation ends its receive span before ``getone`` returns, so handler work in an
``async for`` loop is never under it either.

Example::

    async for msg in consumer:
        await handle(msg)
        await consumer.commit()

Use instead::

    from myservice.tracekit import consume_span

    async for msg in consumer:
        with consume_span(msg, group_id="essays"):
            await handle(msg)
        await consumer.commit()

Fix safety: safe. The same statements run in the same order; only the current context
changes while they run. Exceptions propagate unchanged (the span records them) and
cancellation is not recorded as an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import libcst as cst

from scaffold.codemods._kafka import (
    CONSUMER_CLASSES,
    Binding,
    Bindings,
    KafkaCodemod,
    calls_named,
    code,
    keyword,
    keyword_arg,
    with_separators,
)
from scaffold.codemods._layout import fit, split_call
from scaffold.codemods._tasks import unawaited_task
from scaffold.codemods.base import dotted_name
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxGate
from scaffold.kit_api import CONSUME_BATCH, CONSUME_SPAN

CONSUMER = "consumer"
RECORD = "record"
BATCH = "batch"
SPAN_NAMES = frozenset({CONSUME_SPAN})
BATCH_HELPERS = frozenset({CONSUME_BATCH})
MESSAGE = ("now runs inside a CONSUMER span (the kit's consume_span) parented on the "
           "producer's context")


def _consumer_call(expr: cst.BaseExpression | None, method: str) -> cst.Call | None:
    """``consumer.<method>(...)`` of ``await consumer.<method>(...)``, else None."""
    if isinstance(expr, cst.Await):
        expr = expr.expression
    if (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value == method):
        return expr
    return None


def _assigned_name(statement: cst.BaseStatement) -> tuple[str, cst.BaseExpression] | None:
    """``name`` and the value of a one-statement line ``name = value`` / ``name: T = value``."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1:
        target: cst.BaseExpression = small.targets[0].target
        value: cst.BaseExpression | None = small.value
    elif isinstance(small, cst.AnnAssign):
        target, value = small.target, small.value
    else:
        return None
    if not isinstance(target, cst.Name) or value is None:
        return None
    return target.value, value


def _in_span(statements: Sequence[cst.BaseStatement], record: frozenset[str]) -> bool:
    """Does the handling already start with ``with consume_span(...)`` (after the loop's own
    statements)?"""
    first = statements[_handling_start(statements, record, len(statements))] \
        if statements else None
    return isinstance(first, cst.With) and any(
        calls_named(item.item, SPAN_NAMES) for item in first.items
    )


def _handling_start(statements: Sequence[cst.BaseStatement], record: frozenset[str],
                    end: int) -> int:
    """Where the record's handling starts: after the loop's own leading statements (those
    naming no record), and after a shutdown check that follows the record's first log lines
    (``log(msg); if stop: break``): a record dropped there is not processed."""
    start = 0
    while start < end - 1 and _before_handling(statements[start], record):
        start += 1
    probe = start
    while probe < end - 1 and _is_plain_call(statements[probe]):
        probe += 1
    if start < probe < end - 1 and _exits_loop(statements[probe], record):
        start = probe + 1
        while start < end - 1 and _before_handling(statements[start], record):
            start += 1
    return start


def _pure(expr: cst.BaseExpression) -> bool:
    """Names, attributes, constants and f-strings of them: safe to evaluate once more."""
    if isinstance(expr, (cst.Name, cst.SimpleString, cst.Integer)):
        return True
    if isinstance(expr, cst.Attribute):
        return _pure(expr.value)
    if isinstance(expr, cst.ConcatenatedString):
        return _pure(expr.left) and _pure(expr.right)
    if isinstance(expr, cst.FormattedString):
        return all(
            _pure(part.expression) for part in expr.parts
            if isinstance(part, cst.FormattedStringExpression)
        )
    return False


class _RootNames(FastVisitor):
    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        node.value.visit(self)
        return False


class KafkaConsume(KafkaCodemod):
    PREFILTER = ("AIOKafkaConsumer",)
    SITE_KIND = "kafka-consume"  # its rows in `scaffold report`
    GATE = SyntaxGate(names=CONSUMER_CLASSES)
    DERIVED = {(CONSUMER, "getone"): RECORD, (CONSUMER, "getmany"): BATCH}

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._getone: list[cst.Call] = []  # every getone() on a consumer, in visit order
        self._getmany: list[cst.Call] = []
        self._settled: set[cst.Call] = set()  # rewritten, already correct, or reported
        self._sources: dict[cst.Call, Binding] = {}  # getmany() -> its consumer, at its site

    def classify(self, expr: cst.CSTNode) -> str | None:
        return CONSUMER if self.qualified_names(expr) & CONSUMER_CLASSES else None

    def visit_Module(self, node: cst.Module) -> bool:
        if not super().visit_Module(node):
            return False
        handover = _HandOver(node, self.bindings)
        while True:  # a batch handed on and on: each pass binds one more parameter
            before = handover.bound
            node.visit(handover)
            if handover.bound == before:
                break
        self._sources = handover.consumers
        return True

    # -- the consumer, and the group id its construction names --

    def _consumer_of(self, call: cst.Call) -> Binding | None:
        """The consumer binding a ``consumer.getone()``-style call is made on."""
        if not isinstance(call.func, cst.Attribute):
            return None
        binding = self.lookup(call.func.value)
        return binding if binding is not None and binding.kind == CONSUMER else None

    def _group_id(self, consumer: Binding) -> cst.BaseExpression | None:
        """The construction's ``group_id=`` when it can be evaluated here again."""
        arg = keyword(consumer.call, "group_id") if consumer.call is not None else None
        if arg is None or not _pure(arg.value):
            return None
        here = self.functions[-1] if self.functions else None
        if consumer.function is here:
            return arg.value
        roots = _RootNames()
        arg.value.visit(roots)
        return arg.value if roots.names <= {"self"} | self._module_names() else None

    def _module_names(self) -> set[str]:
        names: set[str] = set()
        for statement in self.module.body:
            if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
                names.add(statement.name.value)
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    targets = [t.target for t in getattr(small, "targets", ())]
                    targets += [small.target] if isinstance(small, cst.AnnAssign) else []
                    names.update(t.value for t in targets if isinstance(t, cst.Name))
        return names | set(self._module_imports().values())

    # -- building the span --

    def _wrap(self, statements: Sequence[cst.BaseStatement], record: cst.BaseExpression,
              consumer: Binding, receiver: str | None, column: int,
              index: cst.BaseExpression | None = None) -> list[cst.BaseStatement]:
        """``with consume_span(record):`` around the statements (at ``column``), trailing
        consumer calls out, and lines the deeper indentation pushes over the line length laid
        out again."""
        end = len(statements)
        while end > 1 and receiver is not None and _is_call_on(statements[end - 1], receiver):
            end -= 1
        names = _record_names(record, index)
        start = _handling_start(statements, names, end)
        before = list(statements[:start])
        inside, after = list(statements[start:end]), list(statements[end:])
        args = [cst.Arg(record)]
        group_id = self._group_id(consumer)
        if group_id is not None:
            args.append(keyword_arg("group_id", group_id))
        span = cst.Call(func=cst.Name(self.kit_name(CONSUME_SPAN)), args=with_separators(args))
        leading = getattr(inside[0], "leading_lines", ())  # comments above stay above
        inside[0] = inside[0].with_changes(leading_lines=())
        unit = self.indent_width()
        inside = fit(inside, column + unit, self.module, self.settings.line_length, grown=unit)
        limit = self.settings.line_length
        header = self.module.code_for_node(span)
        if limit is not None and column + len(f"with {header}:") > limit:
            span = split_call(span, column, self.module, limit) or span
        block = cst.With(items=[cst.WithItem(span)], body=cst.IndentedBlock(body=inside),
                         leading_lines=leading)
        return [*before, block, *after]

    def _hands_off(self, statements: Sequence[cst.BaseStatement], site: cst.CSTNode) -> bool:
        """Report handling that starts a task it does not wait for: a CONSUMER span around
        it would end while the task still handles the record."""
        task = unawaited_task(statements)
        if task is None:
            return False
        self.report(site, f"the record is handled in a task started by {code(task.func)}() "
                    "that outlives a CONSUMER span around this code: open "
                    "'with consume_span(record):' inside the coroutine the task runs")
        return True

    # -- async for msg in consumer --

    def leave_For(self, original_node: cst.For, updated_node: cst.For) -> cst.BaseStatement:
        if original_node.asynchronous is not None:
            return self._async_for(original_node, updated_node)
        return self._batch_loop(original_node, updated_node)

    def _async_for(self, original: cst.For, updated: cst.For) -> cst.BaseStatement:
        consumer = self.lookup(original.iter)
        if consumer is None or consumer.kind != CONSUMER:
            return updated
        if not isinstance(updated.body, cst.IndentedBlock):
            return updated
        if _in_span(updated.body.body, _record_names(original.target)):
            self.record_correct(original, "each record is handled in consume_span")
            return updated
        if dotted_name(original.target) is None:
            self.report(original, "the loop unpacks the record: wrap its handling in "
                        "'with consume_span(record):' by hand")
            return updated
        if self._hands_off(cast(cst.IndentedBlock, original.body).body, original):
            return updated
        if not self.has_kit(original) or not self.record_change(
            original, f"each record of 'async for' over {code(original.iter)} {MESSAGE}"
        ):
            return updated
        body = self._wrap(updated.body.body, original.target, consumer,
                          dotted_name(original.iter), self.column + self.indent_width(updated.body))
        return updated.with_changes(body=updated.body.with_changes(body=body))

    # -- msg = await consumer.getone() --

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        if isinstance(original_node.func, cst.Attribute) and self._consumer_of(original_node):
            method = original_node.func.attr.value
            if method == "getone":
                self._getone.append(original_node)
            elif method == "getmany":
                self._getmany.append(original_node)
        elif (dotted_name(original_node.func) or "").rsplit(".", 1)[-1] in BATCH_HELPERS:
            for arg in original_node.args[:1]:  # a batch handed to consume_batch is handled
                batch = self.lookup(arg.value)
                inline = _consumer_call(arg.value, "getmany")
                if batch is not None and batch.kind == BATCH and batch.call is not None:
                    self._settled.add(batch.call)
                    self.record_correct(batch.call, "the batch is handed to consume_batch")
                elif inline is not None:
                    self._settled.add(inline)
                    self.record_correct(inline, "the batch is handed to consume_batch")
        return updated_node

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        body = list(updated_node.body)
        for index in reversed(range(len(original_node.body))):
            assigned = _assigned_name(original_node.body[index])
            call = _consumer_call(assigned[1], "getone") if assigned else None
            consumer = self._consumer_of(call) if call is not None else None
            if assigned is None or call is None or consumer is None:
                continue
            following = body[index + 1:]
            if not following:
                continue  # handled out of sight: reported at the end
            self._settled.add(call)
            if _in_span(following, frozenset({assigned[0]})):
                self.record_correct(call, "the record is handled in consume_span")
                continue
            if self._hands_off(original_node.body[index + 1:], call):
                continue
            if not self.has_kit(call) or not self.record_change(
                call, f"the record from {code(call.func)}() {MESSAGE}"
            ):
                continue
            assert isinstance(call.func, cst.Attribute)
            body[index + 1:] = self._wrap(following, cst.Name(assigned[0]), consumer,
                                          dotted_name(call.func.value), self.column)
        return super().leave_IndentedBlock(original_node, updated_node.with_changes(body=body))

    # -- batch = await consumer.getmany(); for ... in batch.values()/items() --

    def _batch_source(self, iterated: cst.BaseExpression) -> tuple[cst.Call, str] | None:
        """The getmany() call behind ``batch.values()``/``.items()``, and which of the two."""
        if not (isinstance(iterated, cst.Call) and isinstance(iterated.func, cst.Attribute)
                and iterated.func.attr.value in ("values", "items") and not iterated.args):
            return None
        source = iterated.func.value
        call = _consumer_call(source, "getmany")
        if call is None:
            binding = self.lookup(source)
            call = binding.call if binding is not None and binding.kind == BATCH else None
        return (call, iterated.func.attr.value) if call is not None else None

    def _batch_loop(self, original: cst.For, updated: cst.For) -> cst.BaseStatement:
        found = self._batch_source(original.iter)
        if found is None or not isinstance(updated.body, cst.IndentedBlock):
            return updated
        call, kind = found
        target: cst.BaseExpression | None = original.target
        if kind == "items":
            pair = original.target
            target = (pair.elements[1].value if isinstance(pair, cst.Tuple)
                      and len(pair.elements) == 2 else None)
        if not isinstance(target, cst.Name):
            return updated
        consumer = self._consumer_of(call) or self._sources.get(call)
        body = list(updated.body.body)
        for index, statement in enumerate(body):
            loop = _record_loop(statement, target.value)
            if loop is None:
                continue
            record, position = loop
            assert isinstance(statement, cst.For) and isinstance(statement.body, cst.IndentedBlock)
            if _in_span(statement.body.body, _record_names(record, position)):
                if call not in self._settled:
                    self.record_correct(call, "each record is handled in consume_span")
                self._settled.add(call)
                continue
            if consumer is None or not self.has_kit(call):
                continue
            if call not in self._settled and self._hands_off(statement.body.body, call):
                self._settled.add(call)
                continue
            if call not in self._settled and not self.record_change(
                call, f"each record of {code(call.func)}() {MESSAGE}"
            ):
                continue
            self._settled.add(call)
            column = self.column + self.indent_width(updated.body) + self.indent_width(
                statement.body)
            inner = self._wrap(statement.body.body, record, consumer, None, column, position)
            body[index] = statement.with_changes(body=statement.body.with_changes(body=inner))
        return updated.with_changes(body=updated.body.with_changes(body=body))

    # -- what is left: sites handled out of sight --

    def leave_Module(self, original_node: cst.Module, updated_node: cst.Module) -> cst.Module:
        for call in self._getone:
            if call not in self._settled:
                self.report(call, f"the record from {code(call.func)}() is not assigned to a "
                            "name handled after it: wrap its handling in "
                            "'with consume_span(record):' by hand")
        for call in self._getmany:
            if call in self._settled:
                continue
            self.report(call, f"the batch from {code(call.func)}() is not iterated record by "
                        "record here: handle each record in 'with consume_span(record):' or "
                        "iterate consume_batch(batch)")
        return updated_node


def _record_loop(statement: cst.BaseStatement, records: str
                 ) -> tuple[cst.Name, cst.BaseExpression | None] | None:
    """The record name of ``for record in <records>:``, or of ``for i, record in
    enumerate(<records>[, start]):`` with the index ``i``; else None."""
    if not (isinstance(statement, cst.For) and statement.asynchronous is None
            and isinstance(statement.body, cst.IndentedBlock)):
        return None
    iterated = statement.iter
    target: cst.BaseExpression | None = statement.target
    index: cst.BaseExpression | None = None
    if (isinstance(iterated, cst.Call) and dotted_name(iterated.func) == "enumerate"
            and 1 <= len(iterated.args) <= 2 and not any(a.star for a in iterated.args)
            and iterated.args[0].keyword is None):
        iterated = iterated.args[0].value
        pair = target.elements if isinstance(target, cst.Tuple) else ()
        index, target = (pair[0].value, pair[1].value) if len(pair) == 2 else (None, None)
    if not (isinstance(iterated, cst.Name) and iterated.value == records
            and isinstance(target, cst.Name)):
        return None
    return target, index


def _record_names(*targets: cst.BaseExpression | None) -> frozenset[str]:
    """The names a loop binds to its record (and the record's index)."""
    names = _RootNames()
    for target in targets:
        if target is not None:
            target.visit(names)
    return frozenset(names.names)


class _HandOver(FastVisitor):
    """Binds the parameter of a function of the file that is handed a ``getmany()`` batch
    (``await self._process_batch(batch)``) to that batch, and notes each getmany's consumer."""

    def __init__(self, module: cst.Module, bindings: Bindings) -> None:
        self.module, self.bindings = module, bindings
        self.classes: list[cst.ClassDef] = []
        self.functions: list[cst.FunctionDef] = []
        self.consumers: dict[cst.Call, Binding] = {}
        self.bound = 0

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.classes.append(node)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def _lookup(self, expr: cst.CSTNode) -> Binding | None:
        name = dotted_name(expr)
        if name is None:
            return None
        return self.bindings.lookup(name, self.module, self.classes, self.functions)

    def _callee(self, func: cst.BaseExpression) -> tuple[cst.FunctionDef, bool] | None:
        """The function of this file a call runs, and whether it is a method called on self."""
        name = dotted_name(func)
        if name is None:
            return None
        owner: Sequence[cst.BaseStatement] | Sequence[cst.BaseSmallStatement]  # class X: ...
        if name.startswith("self.") and name.count(".") == 1 and self.classes:
            owner, name, method = self.classes[-1].body.body, name[5:], True
        elif "." not in name:
            owner, method = self.module.body, False
        else:
            return None
        found = [s for s in owner if isinstance(s, cst.FunctionDef) and s.name.value == name]
        return (found[0], method) if len(found) == 1 else None

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Attribute) and node.func.attr.value == "getmany":
            consumer = self._lookup(node.func.value)
            if consumer is not None and consumer.kind == CONSUMER:
                self.consumers.setdefault(node, consumer)
        if any(arg.star for arg in node.args):
            return
        handed = [(index, arg) for index, arg in enumerate(node.args)
                  if (b := self._lookup(arg.value)) is not None and b.kind == BATCH]
        callee = self._callee(node.func) if handed else None
        if callee is None:
            return
        function, method = callee
        params = function.params
        positional = [*params.posonly_params, *params.params][1 if method else 0:]
        for index, arg in handed:
            batch = self._lookup(arg.value)
            assert batch is not None
            if arg.keyword is None:
                param = positional[index] if index < len(positional) else None
            else:
                param = next((p for p in (*params.params, *params.kwonly_params)
                              if p.name.value == arg.keyword.value), None)
            if param is None or self.bindings.lookup(
                    param.name.value, self.module, (), (function,)) is not None:
                continue
            self.bindings.bind(function, param.name.value, Binding(BATCH, batch.call, function))
            self.bound += 1


def _before_handling(statement: cst.BaseStatement, record: frozenset[str]) -> bool:
    """Does the statement name none of ``record`` (the record, and its index when enumerated)?
    Then it is the loop's own work (a shutdown check, a health probe), not the record's."""
    names = _RootNames()
    statement.visit(names)
    return names.names.isdisjoint(record)


def _is_plain_call(statement: cst.BaseStatement) -> bool:
    """Is the statement one ``[await] f(...)`` call and nothing else (a log line)?"""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    return isinstance(value, cst.Call)


def _exits_loop(statement: cst.BaseStatement, record: frozenset[str]) -> bool:
    """``if <a test naming no record>: ...; break`` (or ``return``), with no ``else``: the
    loop's own stop check."""
    if not isinstance(statement, cst.If) or statement.orelse is not None:
        return False
    names = _RootNames()
    statement.test.visit(names)
    if not names.names.isdisjoint(record) or not isinstance(statement.body, cst.IndentedBlock):
        return False
    last = statement.body.body[-1] if statement.body.body else None
    return isinstance(last, cst.SimpleStatementLine) and isinstance(
        last.body[-1], (cst.Break, cst.Return))


def _is_call_on(statement: cst.BaseStatement, receiver: str) -> bool:
    """Is the statement just ``[await] <receiver>.<method>(...)`` (the loop's bookkeeping)?"""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return False
    small = statement.body[0]
    if not isinstance(small, cst.Expr):
        return False
    value = small.value.expression if isinstance(small.value, cst.Await) else small.value
    return (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
            and dotted_name(value.func.value) == receiver)
