"""Records sent to Kafka without the current trace context in their headers.

What it does: sends through an aiokafka producer go through the kit, inside a PRODUCER span
``send {topic}`` whose context replaces any ``traceparent`` in the record's headers (other
headers kept). Producers are found by construction (``AIOKafkaProducer(...)``, under any
import or alias, including ``self.x = ...`` attributes used in other methods of the class),
by annotation (``producer: AIOKafkaProducer | None``), as the attribute of an object whose
class the repo model shows holding one (``self.kafka_bus.producer``, where ``kafka_bus:
KafkaBus`` and ``KafkaBus`` sets ``self.producer = AIOKafkaProducer(...)``, in any module),
and by ``kafka-producers`` in
``[tool.scaffold]``: factories whose calls return a producer, and send wrappers
``Class.method`` (a bus's ``publish(topic, value, ..., headers=...)``) whose producer the code
cannot see.

- ``producer.send_and_wait(...)`` -> ``traced_send(producer, ...)``;
  ``producer.send(...)`` -> ``traced_send(producer, ..., wait=False)`` (same delivery future).
- ``await bus.publish(topic, ...)`` of a configured wrapper ->
  ``await traced_publish(bus.publish, topic, ...)``, only when the wrapper's own body does not
  send (see below) and its signature, read from the repo model, takes what ``traced_publish``
  hands it: the topic first and a ``headers`` parameter annotated as ``(str, bytes)`` pairs
  (``list[tuple[str, bytes]] | None``, ``Sequence[...]``...) or as ``dict[str, str]`` (then
  ``headers_as=dict`` is added, and the kit hands it a dict). Headers passed by position are
  passed by name.
- ``batch.append(...)`` on a batch from ``producer.create_batch()`` gets
  ``headers=inject_headers(...)``: each record carries the context current when it was added
  (aiokafka sends a batch as one request, so there is no span per record).

One PRODUCER span per message: a configured wrapper whose body sends itself (a
``send``/``send_and_wait`` call, or the kit's ``traced_send``) gets the span there, where the
producer is (its send is rewritten like any other, or reported when its producer cannot be
recognised), and no call of the wrapper anywhere in the repo is wrapped. Only a wrapper with no
send of its own (a Protocol, a bus over another client) has its awaited calls wrapped.

Left alone: sends that already carry the context (``headers=inject_headers(...)``, or a
header list the function passed to an ``inject`` call), sends already through the kit or in a
function handed to ``traced_publish``, and test code, which sends records by hand on purpose.
Reported: sends with ``*args``/``**kwargs``, a wrapper call that is not awaited, a call of a
wrapper the repo does not define or whose ``headers`` parameter is missing, unannotated or of
another type (the reason is given), the send of a configured wrapper on something not known to
be a producer, a ``send_batch`` whose batch was filled out of sight, and any site in a file
that has no kit to import.

Why: a record without ``traceparent`` starts a new trace at every consumer, so the trace of
a request ends at the Kafka hop. Injecting into a header list that is reused or forwarded
appends a second ``traceparent`` that readers ignore; the kit replaces it.

Example::

    await self._producer.send_and_wait(topic, value, key=key, headers=headers)

Use instead::

    from myservice.tracekit import traced_send

    await traced_send(self._producer, topic, value, key=key, headers=headers)

Fix safety: safe. The same producer sends the same record with the same arguments;
``traced_send`` returns what ``send``/``send_and_wait`` return and re-raises their errors,
and only the propagation headers change. A wrapper call becomes ``traced_publish`` only when
the wrapper's declared signature takes the topic first and headers in the form the kit hands
it (pairs, or a ``dict[str, str]`` with ``headers_as=dict``); otherwise nothing changes.
"""

from __future__ import annotations

import libcst as cst

from scaffold.codemods import _send_wrappers as send_wrappers
from scaffold.codemods._kafka import (
    FACTORY,
    PRODUCER_CLASSES,
    Binding,
    KafkaCodemod,
    appended,
    argument,
    calls_named,
    code,
    keyword,
    keyword_arg,
    matches,
    with_separators,
)
from scaffold.codemods._layout import fit
from scaffold.codemods.base import dotted_name
from scaffold.engine.gates import SyntaxGate
from scaffold.engine.model import Settings
from scaffold.kit_api import INJECT_HEADERS, TRACED_PUBLISH, TRACED_SEND
from scaffold.repo import RepoModel

PRODUCER = "producer"
HELD_PRODUCER_WORDS = ("producer", "_producer", "kafka_producer", "_kafka_producer")
BATCH = "batch"
SEND_PARAMETERS = ("topic", "value", "key", "partition", "timestamp_ms", "headers")
# Calls that put the current context into a carrier: the kit's, OpenTelemetry's, HuleEdu's.
INJECTS = frozenset({"inject", "inject_headers", "inject_trace_context"})


class KafkaProduce(KafkaCodemod):
    # Configured wrappers are named by the user, so the gate is what every send mentions.
    PREFILTER = ("send", "publish", "roducer")
    SITE_KIND = "kafka-produce"  # its rows in `scaffold report`
    USES_REPO = True  # a configured wrapper's signature and body may be in another file

    @classmethod
    def syntax_gate(cls, settings: Settings) -> SyntaxGate:
        """A producer class, or a configured factory or wrapper class, must be named."""
        entries = settings.kafka_producers
        # a producer held by another object (``self.bus.producer``) is named in its class
        return SyntaxGate(names=PRODUCER_CLASSES, words={*HELD_PRODUCER_WORDS,
            *(entry.rsplit(".", 1)[-1] for entry in entries),
            *(entry.rsplit(".", 1)[0].rsplit(".", 1)[-1] for entry in entries if "." in entry),
        })
    DERIVED = {(PRODUCER, "create_batch"): BATCH}

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._awaited: set[cst.Call] = set()
        self._in_producer_span: set[str] = set()
        entries = self.settings.kafka_producers
        self._wrappers = [tuple(e.rsplit(".", 1)) for e in entries if "." in e]
        self._factories = list(entries)
        self._grown = False  # a call of the current statement was rewritten
        # dotted name of each configured wrapper (True) and of each function it calls (False)
        self._wrapper_bodies: dict[str, bool] | None = None

    # -- what the file's names hold --

    def classify(self, expr: cst.CSTNode) -> str | None:
        names = self.qualified_names(expr)
        if names & PRODUCER_CLASSES or any(matches(n, f) for n in names for f in self._factories):
            return PRODUCER
        for owner, _method in self._wrappers:
            if any(matches(name, owner) for name in names):
                return owner
        return None

    # -- rewriting --

    def visit_Module(self, node: cst.Module) -> bool:
        # functions handed to traced_publish already run inside its PRODUCER span
        self._in_producer_span = {
            name.rsplit(".", 1)[-1]
            for call in calls_named(node, frozenset({TRACED_PUBLISH})) if call.args
            for name in [dotted_name(call.args[0].value)] if name is not None
        }
        return super().visit_Module(node)

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._grown = False

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine) -> cst.BaseStatement:
        """A rewritten call that pushed a one-line statement over the line length is split."""
        limit = self.settings.line_length
        if not self._grown or limit is None or updated_node is original_node:
            return updated_node
        self._grown = False
        before = self.module.code_for_node(original_node.with_changes(leading_lines=()))
        if "\n" in before.rstrip("\n") or self.column + len(before.rstrip("\n")) > limit:
            return updated_node  # laid out by hand, or too long already
        (fitted,) = fit([updated_node], self.column, self.module, limit, grown=None)
        return fitted

    def visit_Await(self, node: cst.Await) -> None:
        if isinstance(node.expression, cst.Call):
            self._awaited.add(node.expression)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        result = self._rewrite(original_node, updated_node)
        self._grown = self._grown or result is not updated_node
        return result

    def _rewrite(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if (dotted_name(func) or "").rsplit(".", 1)[-1] in (TRACED_SEND, TRACED_PUBLISH):
            self.record_correct(original_node, "sends through the kit")
        if not isinstance(func, cst.Attribute):
            return updated_node
        binding = self.lookup(func.value)
        method = func.attr.value
        if (binding is None and method in ("send", "send_and_wait")
                and self._held_producer(func.value)):
            binding = Binding(PRODUCER, None, self.functions[-1] if self.functions else None)
        if (binding is None or binding.kind != PRODUCER) and method in (
                "send", "send_and_wait") and self._in_wrapper(code(func)):
            self.report(original_node, f"{code(func)}(...) is where a configured "
                        "kafka-producers wrapper sends, so its callers are left alone, but "
                        f"{code(func.value)} is not known to be an AIOKafkaProducer: annotate it, "
                        "or send through traced_send from the kit")
            return updated_node
        if binding is None:
            return updated_node
        if binding.kind == PRODUCER and method in ("send", "send_and_wait"):
            return self._send(original_node, updated_node, wait=method == "send_and_wait")
        if binding.kind == PRODUCER and method == "send_batch":
            self._send_batch(original_node)
        elif binding.kind == BATCH and method == "append":
            return self._append(original_node, updated_node)
        elif (binding.kind, method) in self._wrappers:
            return self._publish(original_node, updated_node, f"{binding.kind}.{method}")
        return updated_node

    def _held_producer(self, expr: cst.BaseExpression) -> bool:
        """``self.bus.producer``, ``bus.producer``: an attribute that the repo model says holds
        an AIOKafkaProducer, on an object whose class the file or the model tells."""
        if not isinstance(expr, cst.Attribute):
            return False
        owner = self._class_of(expr.value)
        return owner is not None and self.repo.type_of(
            f"{owner}.{expr.attr.value}") in PRODUCER_CLASSES

    def _class_of(self, expr: cst.BaseExpression) -> str | None:
        """The class (dotted, canonical) of what ``expr`` holds here, when known."""
        if isinstance(expr, cst.Name) and expr.value == "self":
            if not (self.classes and self.functions and self.module_name):
                return None
            return ".".join([self.module_name, *(c.name.value for c in self.classes)])
        binding = self.lookup(expr)
        if binding is not None:
            if binding.kind in (PRODUCER, BATCH) or binding.kind.endswith(FACTORY):
                return None  # not an instance of a class the repo model knows
            return self.repo.canonical(binding.kind)
        if isinstance(expr, cst.Attribute):
            owner = self._class_of(expr.value)
            return self.repo.type_of(f"{owner}.{expr.attr.value}") if owner else None
        return None

    def _carries_context(self, headers: cst.Arg | None) -> bool:
        """Headers built by an inject call, or a list the function hands to one."""
        if headers is None:
            return False
        if calls_named(headers.value, INJECTS):
            return True
        name = dotted_name(headers.value)
        if name is None or not self.functions:
            return False
        return any(
            any(dotted_name(arg.value) == name for arg in call.args)
            for call in calls_named(self.functions[-1], INJECTS)
        )

    def _send(self, original: cst.Call, updated: cst.Call, *, wait: bool) -> cst.Call:
        if any(arg.star for arg in original.args):
            self.report(original, "send with *args/**kwargs: cannot tell which argument is the "
                        "topic or the headers; call traced_send from the kit by hand")
            return updated
        if self._carries_context(argument(original, 5, "headers")) or (
            self.functions and self.functions[-1].name.value in self._in_producer_span
        ):
            self.record_correct(original, "its headers carry the context")
            return updated
        if argument(original, 0, "topic") is None:
            return updated
        method = "send_and_wait" if wait else "send"
        if not self.has_kit(original) or not self.record_change(
            original, f"{method} now runs in a PRODUCER span whose context goes in the "
            "record's headers (traceparent replaced)"
        ):
            return updated
        traced_send = self.kit_name(TRACED_SEND)
        assert isinstance(updated.func, cst.Attribute)
        args: list[cst.Arg] = [cst.Arg(updated.func.value)]
        positional = 0
        for arg in updated.args:
            if arg.keyword is None:
                if positional >= 3:  # partition, timestamp_ms, headers are keyword-only there
                    arg = arg.with_changes(
                        keyword=cst.Name(SEND_PARAMETERS[positional]),
                        equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
                    )
                positional += 1
            args.append(arg)
        laid = with_separators(args)
        if not wait:
            wait_arg = keyword_arg("wait", cst.Name("False"))
            last = laid[-1]
            between = laid[-2].comma if len(laid) > 2 else None
            if isinstance(last.comma, cst.Comma) and isinstance(between, cst.Comma) and (
                    "\n" in code(between)):  # one argument a line: wait=False on its own line
                laid[-1] = last.with_changes(comma=laid[-2].comma)
                laid.append(wait_arg.with_changes(comma=last.comma))
            else:
                laid = with_separators([*args, wait_arg])
        return updated.with_changes(func=cst.Name(traced_send), args=laid)

    def _append(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        headers = keyword(original, "headers")
        if any(arg.star for arg in original.args) or self._carries_context(headers):
            if not any(arg.star for arg in original.args):
                self.record_correct(original, "its headers carry the context")
            return updated
        if not self.has_kit(original) or not self.record_change(
            original, "the batched record now carries the current trace context in its "
            "headers (traceparent replaced)"
        ):
            return updated
        inject = self.kit_name(INJECT_HEADERS)
        args = list(updated.args)
        if headers is None:
            call = cst.Call(func=cst.Name(inject), args=[cst.Arg(cst.Name("None"))])
            args.append(keyword_arg("headers", call))
        else:
            index = next(i for i, a in enumerate(original.args) if a is headers)
            wrapped = cst.Call(func=cst.Name(inject), args=[cst.Arg(args[index].value)])
            args[index] = args[index].with_changes(value=wrapped)
        return updated.with_changes(args=with_separators(args))

    def _send_batch(self, original: cst.Call) -> None:
        batch = argument(original, 0, "batch")
        filled_here = batch is not None and self.functions and any(
            dotted_name(call.func.value) == dotted_name(batch.value)
            for call in calls_named(self.functions[-1], frozenset({"append"}))
            if isinstance(call.func, cst.Attribute)
        )
        if not filled_here:
            self.report(original, "send_batch of a batch filled elsewhere: give each "
                        "batch.append(...) headers=inject_headers(...) from the kit")

    def _model(self) -> RepoModel:
        """The run's repo model (without a run, this file's): where wrappers are defined."""
        return self.repo

    def _in_wrapper(self, send: str) -> bool:
        """Is ``send`` a Kafka send of a configured wrapper, or of a function it calls?"""
        if not (self.functions and self._wrappers and self.module_name):
            return False
        if self._wrapper_bodies is None:
            self._wrapper_bodies = {}
            for owner, method in self._wrappers:
                info = send_wrappers.find(self.repo, f"{owner}.{method}")
                for function in send_wrappers.bodies(info, self.repo) if info else ():
                    direct = function is info or self._wrapper_bodies.get(function.dotted, False)
                    self._wrapper_bodies[function.dotted] = direct
        owner = f".{self.classes[-1].name.value}" if self.classes else ""
        here = f"{self.module_name}{owner}.{self.functions[-1].name.value}"
        return here in self._wrapper_bodies and send_wrappers.is_send(
            send, direct=self._wrapper_bodies[here])

    def _publish(self, original: cst.Call, updated: cst.Call,
                 entry: str) -> cst.BaseExpression:
        if self._carries_context(keyword(original, "headers")):
            self.record_correct(original, "its headers carry the context")
            return updated
        wrapper = code(original.func)
        model = self._model()
        info = send_wrappers.find(model, entry)
        if info is not None and send_wrappers.own_send(info, model) is not None:
            return updated  # its body sends: the PRODUCER span goes there, once per message
        positional = [arg for arg in original.args if arg.keyword is None]
        keywords = frozenset(arg.keyword.value for arg in original.args if arg.keyword)
        topic = argument(original, 0, "topic")
        problem = None
        plan = send_wrappers.Plan()
        if any(arg.star for arg in original.args):
            problem = "passes *args/**kwargs"
        elif original not in self._awaited:
            problem = "is not awaited here"
        elif topic is None:
            problem = "passes no topic"
        elif info is None:
            problem = (f"calls {entry}, which is not defined in this repo, so what its headers "
                       "take cannot be checked")
        else:
            plan = send_wrappers.plan(info, model, positionals=len(positional),
                                      keywords=keywords)
            problem = plan.problem
        if problem is not None:
            self.report(original, f"{wrapper}(...) {problem}: wrap it by hand as "
                        f"await traced_publish({wrapper}, topic, ..., headers=...), "
                        "handing it headers in the form the wrapper takes")
            return updated
        if not self.has_kit(original) or not self.record_change(
            original, f"{wrapper}(...) now runs in a PRODUCER span whose context goes in the "
            "headers it is given"
        ):
            return updated
        traced_publish = self.kit_name(TRACED_PUBLISH)
        index = next(i for i, arg in enumerate(original.args) if arg is topic)
        topic_arg = updated.args[index].with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        rest: list[cst.Arg] = []
        extra: list[cst.Arg] = []
        for i, arg in enumerate(updated.args):
            if i == index:
                continue
            if (plan.headers_index is not None and arg.keyword is None
                    and original.args[i] is positional[plan.headers_index]):
                # traced_publish hands the headers on by name
                arg = arg.with_changes(keyword=cst.Name("headers"), equal=cst.AssignEqual(
                    cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
            rest.append(arg)
        if plan.headers_as == send_wrappers.DICT:
            extra.append(keyword_arg("headers_as", cst.Name("dict")))
        args = appended([cst.Arg(updated.func), topic_arg, *rest], extra)
        return updated.with_changes(func=cst.Name(traced_publish), args=args)
