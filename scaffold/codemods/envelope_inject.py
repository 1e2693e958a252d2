"""An event envelope is published without the current trace context in its metadata.

What it does: where a function builds an event envelope (``X = EventEnvelope(...)``, any class
whose name ends in ``Envelope`` or in one of the option ``envelope-suffixes``, generic ones too)
and then publishes it (``publish``, ``publish_event``, ``publish_to_outbox``, ``send``,
``send_and_wait``, or the option ``publish-methods`` when set: directly, through a bus or
through an outbox, the envelope itself or its serialised form), injects the current context
into ``X.metadata`` just before the publish, creating the dict when it is ``None``. With the
kit that is ``X.metadata = inject_metadata(X.metadata)``; with a configured ``helper-module``
its ``inject_trace_context(X.metadata)``; with neither, OpenTelemetry's ``inject``. An
injection that only runs ``if get_current_span():`` loses the guard. Reported, not rewritten:
an envelope built inside the publish call, a publish in a one-line suite, and an injection
behind a guard that tests more than the current span.

Why: HuleEdu events carry their trace context in ``envelope.metadata``, inside the message
body; an envelope published without it starts a new trace in every consumer. The guard
``if get_current_span():`` skips injection when no span is recording (HuleEdu's helper returns
``None`` then; OpenTelemetry's always returns a span, so there it only hides where injection
happens). An unsampled trace must still travel, its ``traceparent`` saying "not sampled";
skipped, each consumer starts a new root trace and samples it on its own.

Example::

    envelope = EventEnvelope(event_type=ESSAY_SUBMITTED, correlation_id=cid, data=payload)
    await bus.publish(topic, envelope)

    result = EventEnvelope(event_type=ESSAY_ANALYSED, correlation_id=cid, data=data, metadata={})
    if get_current_span():
        inject_trace_context(result.metadata)
    await publish_to_outbox(session, topic, result)

Use instead::

    envelope = EventEnvelope(event_type=ESSAY_SUBMITTED, correlation_id=cid, data=payload)
    envelope.metadata = inject_metadata(envelope.metadata)
    await bus.publish(topic, envelope)

    result = EventEnvelope(event_type=ESSAY_ANALYSED, correlation_id=cid, data=data, metadata={})
    inject_trace_context(result.metadata)
    await publish_to_outbox(session, topic, result)

Fix safety: safe. Only ``metadata`` changes: stale ``traceparent``/``tracestate``/``baggage``
keys are replaced by the context current at the publish, every other key is kept; without a
span the injection writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import libcst as cst
from libcst.codemod.visitors import RemoveImportsVisitor

from scaffold.codemods._propagation import (
    ENVELOPE_SUFFIXES,
    INJECT_NAMES,
    Place,
    PropagationCodemod,
    assignments,
    code,
    collect,
    header,
    header_comment,
    keyword,
    parse_statements,
    positional,
    statements_of,
    walk,
    with_comment,
)

PUBLISH_NAMES = frozenset(
    {"publish", "publish_event", "publish_to_outbox", "send", "send_and_wait"}
)
SPAN_PROBE = "get_current_span"


class EnvelopeInject(PropagationCodemod):
    PREFILTER = ENVELOPE_SUFFIXES
    OPTIONS = {"envelope_suffixes": ENVELOPE_SUFFIXES, "publish_methods": tuple(
        sorted(PUBLISH_NAMES))}

    @classmethod
    def wants(cls, source: str) -> bool:
        return cls.wants_configured(source, None)

    @classmethod
    def wants_configured(cls, source: str, options: Mapping[str, Any] | None) -> bool:
        resolved = cls.resolve_options(options)
        return any(suffix in source for suffix in resolved["envelope_suffixes"]) and any(
            method in source for method in resolved["publish_methods"])

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._guards_seen: set[cst.If] = set()

    def construction(self, expr: cst.CSTNode | None) -> cst.Call | None:
        """The call when ``expr`` builds an envelope: ``Envelope[T](...)``."""
        return expr if isinstance(expr, cst.Call) and self.is_envelope_class(expr.func) else None

    def _is_span_probe(self, test: cst.BaseExpression) -> bool:
        """``get_current_span()``, ``trace.get_current_span().is_recording()`` ..., and-ed."""
        if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
            return self._is_span_probe(test.left) and self._is_span_probe(test.right)
        found = collect(test)
        probes = [call for call in found.calls if self.calls_one_of(call, SPAN_PROBE)]
        roots = {code(call.func).split(".")[0] for call in probes}
        return bool(probes) and found.names <= roots | {"INVALID_SPAN"}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        places = list(walk(node.body))
        envelopes: dict[str, list[cst.Call]] = {}
        rebound: set[str] = set()
        for place in places:
            for name, value in assignments(place.statement):
                built = self.construction(value)
                if built is None:
                    rebound.add(name)
                else:
                    envelopes.setdefault(name, []).append(built)
        names = set(envelopes) - rebound
        injected: dict[str, list[Place]] = {name: [] for name in names}
        guards: dict[cst.If, str] = {}
        for place in places:
            statement = place.statement
            target = self._injection_target(statement, names)
            if target is not None:
                injected[target].append(place)
                continue
            guard = self._guarded_target(statement, names)
            if isinstance(statement, cst.If) and guard is not None:
                guards[statement] = guard
                injected[guard].append(place)
                continue
            for call in collect(*header(statement)).calls:
                if not self.calls_one_of(call, self.options["publish_methods"]):
                    continue
                for name in self._published(call, names):
                    self._publish(name, place, call, injected[name], guards, envelopes[name])
                self._report_inline(call)

    # -- what a statement does --

    def _injection_target(self, statement: cst.BaseStatement, names: set[str]) -> str | None:
        """The envelope whose metadata this simple statement injects into, if any."""
        if not isinstance(statement, cst.SimpleStatementLine):
            return None
        for call in collect(statement).calls:
            if self.calls_one_of(call, INJECT_NAMES):
                carrier = positional(call, 0, "carrier")
                for name in names:
                    if carrier is not None and code(carrier.value) == f"{name}.metadata":
                        return name
        return None

    def _guarded_target(self, statement: cst.BaseStatement, names: set[str]) -> str | None:
        """The envelope of ``if <test>: inject(X.metadata)`` (a guard decides the injection)."""
        if not isinstance(statement, cst.If) or not isinstance(statement.body, cst.IndentedBlock):
            return None
        targets = {self._injection_target(inner, names) for inner in statement.body.body}
        if len(targets) != 1 or None in targets:
            return None
        return targets.pop()

    def _published(self, call: cst.Call, names: set[str]) -> set[str]:
        receiver = code(call.func).split(".")[0]
        used = collect(*(arg.value for arg in call.args)).names
        return {name for name in names & used if name != receiver}

    # -- rewriting --

    def _publish(self, name: str, place: Place, call: cst.Call, injections: list[Place],
                 guards: dict[cst.If, str], built: list[cst.Call]) -> None:
        before = [earlier for earlier in injections if earlier.dominates(place)]
        if before:
            for earlier in before:
                guard = earlier.statement
                if isinstance(guard, cst.If) and guard in guards \
                        and guard not in self._guards_seen:
                    self._guards_seen.add(guard)
                    self._unguard(guard, name)
            return
        if not place.in_block:
            self.report(call, f"{name} is published without trace context, in a "
                        "one-line suite: inject into its metadata on a line of its own")
            return
        if not self.record_change(place.statement, f"{name} was published without trace "
                                  f"context: the current context now goes into {name}.metadata"):
            return
        self.insert_before(place.statement, self._glue(name, built))
        injections.append(place)

    def _glue(self, name: str, built: list[cst.Call]) -> list[cst.BaseStatement]:
        metadata = f"{name}.metadata"
        inject_metadata = self.kit_function("inject_metadata")
        if inject_metadata is not None:
            return parse_statements(f"{metadata} = {inject_metadata}({metadata})\n")
        inject = self.helper("inject_trace_context") or self.otel("opentelemetry.propagate",
                                                                 "inject")
        always_a_dict = all(
            (given := keyword(call, "metadata")) is not None
            and (isinstance(given.value, cst.Dict)
                 or (isinstance(given.value, cst.Call) and code(given.value.func) == "dict"))
            for call in built
        )
        create = "" if always_a_dict else f"if {metadata} is None:\n    {metadata} = {{}}\n"
        return parse_statements(f"{create}{inject}({metadata})\n")

    def _unguard(self, guard: cst.If, name: str) -> None:
        if guard.orelse is not None or not self._is_span_probe(guard.test):
            self.report(guard, f"injection into {name}.metadata depends on "
                        f"`{code(guard.test)}`; when that is false the event starts a new trace")
            return
        if not self.record_change(guard, f"injection into {name}.metadata no longer depends "
                                  f"on `{code(guard.test)}`"):
            return
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, guard.test)
        comment = header_comment(guard)

        def unguarded(updated: cst.If) -> list[cst.BaseStatement]:
            body = list(statements_of(updated.body))
            body[0] = with_comment(body[0].with_changes(leading_lines=updated.leading_lines),
                                   comment)
            return body

        self.replace_statement(guard, unguarded)

    def _report_inline(self, call: cst.Call) -> None:
        for arg in call.args:
            built = self.construction(arg.value)
            if built is None:
                continue
            metadata = keyword(built, "metadata")
            if metadata is not None and any(
                self.calls_one_of(inner, INJECT_NAMES) for inner in collect(metadata.value).calls
            ):
                continue
            self.report(call, "an envelope built inside the publish call carries no trace "
                        "context: bind it to a name, so its metadata can be injected")
