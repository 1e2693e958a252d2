"""Records sent to Kafka without the current trace context in their headers.

What it does: sends through an aiokafka producer go through the kit, inside a PRODUCER span
``send {topic}`` whose context replaces any ``traceparent`` in the record's headers (other
headers kept). Producers are found by construction (``AIOKafkaProducer(...)``, under any
import or alias, including ``self.x = ...`` attributes used in other methods of the class),
by annotation (``producer: AIOKafkaProducer | None``), and by ``kafka-producers`` in
``[tool.scaffold]``: factories whose calls return a producer, and send wrappers
``Class.method`` (a bus's ``publish(topic, value, ..., headers=...)``) whose producer the code
cannot see.

- ``producer.send_and_wait(...)`` -> ``traced_send(producer, ...)``;
  ``producer.send(...)`` -> ``traced_send(producer, ..., wait=False)`` (same delivery future).
- ``await bus.publish(topic, ...)`` of a configured wrapper ->
  ``await traced_publish(bus.publish, topic, ...)``.
- ``batch.append(...)`` on a batch from ``producer.create_batch()`` gets
  ``headers=inject_headers(...)``: each record carries the context current when it was added
  (aiokafka sends a batch as one request, so there is no span per record).

Left alone: sends that already carry the context (``headers=inject_headers(...)``, or a
header list the function passed to an ``inject`` call), sends already through the kit or in a
function handed to ``traced_publish``, and test code, which sends records by hand on purpose.
Reported: sends with ``*args``/``**kwargs``, a wrapper call that is not awaited or passes four
or more positional arguments, a ``send_batch`` whose batch was filled out of sight, and any
site in a file that has no kit to import.

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
and only the propagation headers change.
"""

from __future__ import annotations

import libcst as cst

from scaffold.codemods._kafka import (
    PRODUCER_CLASSES,
    KafkaCodemod,
    argument,
    calls_named,
    code,
    keyword,
    keyword_arg,
    matches,
    with_separators,
)
from scaffold.codemods.base import dotted_name
from scaffold.engine.gates import SyntaxGate
from scaffold.engine.model import Settings

PRODUCER = "producer"
BATCH = "batch"
SEND_PARAMETERS = ("topic", "value", "key", "partition", "timestamp_ms", "headers")
# Calls that put the current context into a carrier: the kit's, OpenTelemetry's, HuleEdu's.
INJECTS = frozenset({"inject", "inject_headers", "inject_trace_context"})
MAX_WRAPPER_POSITIONALS = 3  # topic, value, key: a fourth might be the headers


class KafkaProduce(KafkaCodemod):
    # Configured wrappers are named by the user, so the gate is what every send mentions.
    PREFILTER = ("send", "publish", "roducer")

    @classmethod
    def syntax_gate(cls, settings: Settings) -> SyntaxGate:
        """A producer class, or a configured factory or wrapper class, must be named."""
        entries = settings.kafka_producers
        return SyntaxGate(names=PRODUCER_CLASSES, words={
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
            for call in calls_named(node, frozenset({"traced_publish"})) if call.args
            for name in [dotted_name(call.args[0].value)] if name is not None
        }
        return super().visit_Module(node)

    def visit_Await(self, node: cst.Await) -> None:
        if isinstance(node.expression, cst.Call):
            self._awaited.add(node.expression)

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        func = original_node.func
        if not isinstance(func, cst.Attribute):
            return updated_node
        binding = self.lookup(func.value)
        if binding is None:
            return updated_node
        method = func.attr.value
        if binding.kind == PRODUCER and method in ("send", "send_and_wait"):
            return self._send(original_node, updated_node, wait=method == "send_and_wait")
        if binding.kind == PRODUCER and method == "send_batch":
            self._send_batch(original_node)
        elif binding.kind == BATCH and method == "append":
            return self._append(original_node, updated_node)
        elif (binding.kind, method) in self._wrappers:
            return self._publish(original_node, updated_node)
        return updated_node

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
            return updated
        if argument(original, 0, "topic") is None:
            return updated
        method = "send_and_wait" if wait else "send"
        if not self.has_kit(original) or not self.record_change(
            original, f"{method} now runs in a PRODUCER span whose context goes in the "
            "record's headers (traceparent replaced)"
        ):
            return updated
        traced_send = self.kit_name("traced_send")
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
        if not wait:
            args.append(keyword_arg("wait", cst.Name("False")))
        return updated.with_changes(func=cst.Name(traced_send), args=with_separators(args))

    def _append(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        headers = keyword(original, "headers")
        if any(arg.star for arg in original.args) or self._carries_context(headers):
            return updated
        if not self.has_kit(original) or not self.record_change(
            original, "the batched record now carries the current trace context in its "
            "headers (traceparent replaced)"
        ):
            return updated
        inject = self.kit_name("inject_headers")
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

    def _publish(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        if self._carries_context(keyword(original, "headers")):
            return updated
        wrapper = code(original.func)
        positional = [arg for arg in updated.args if arg.keyword is None]
        topic = argument(original, 0, "topic")
        problem = None
        if any(arg.star for arg in original.args):
            problem = "passes *args/**kwargs"
        elif original not in self._awaited:
            problem = "is not awaited here"
        elif topic is None:
            problem = "passes no topic"
        elif len(positional) > MAX_WRAPPER_POSITIONALS:
            problem = "passes four or more positional arguments (one may be the headers)"
        if problem is not None:
            self.report(original, f"{wrapper}(...) {problem}: wrap it by hand as "
                        f"await traced_publish({wrapper}, topic, ..., headers=...)")
            return updated
        if not self.has_kit(original) or not self.record_change(
            original, f"{wrapper}(...) now runs in a PRODUCER span whose context goes in the "
            "headers it is given"
        ):
            return updated
        traced_publish = self.kit_name("traced_publish")
        index = next(i for i, arg in enumerate(original.args) if arg is topic)
        topic_arg = updated.args[index].with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
        rest = [arg for i, arg in enumerate(updated.args) if i != index]
        args = [cst.Arg(updated.func), topic_arg, *rest]
        return cst.Call(func=cst.Name(traced_publish), args=with_separators(args),
                        whitespace_before_args=updated.whitespace_before_args)
