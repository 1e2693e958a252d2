"""An event envelope is published without the current trace context in its metadata.

What it does: where a function builds an event envelope (``X = EventEnvelope(...)``, any class
whose name ends in ``Envelope`` or in one of the option ``envelope-suffixes``, generic ones too)
and then publishes it (``publish``, ``publish_event``, ``publish_to_outbox``, ``send``,
``send_and_wait``, any method named ``publish_...`` such as an event publisher's
``publish_batch_event``, or the option ``publish-methods`` when set: directly, through a bus or
through an outbox, the envelope itself or its serialised form), injects the current context
into ``X.metadata`` just before the publish, creating the dict when it is ``None``. With the
kit that is ``X.metadata = inject_metadata(X.metadata)``; with a configured ``helper-module``
its ``inject_trace_context(X.metadata)``; with neither, OpenTelemetry's ``inject``. An
injection that only runs ``if get_current_span():`` or ``if X.metadata:`` (with or without
creating the dict first) loses the guard; it never gets a second injection. A comment right
above the guard (or above an import made for it) loses the clause that described the guard
(``# Inject trace context if we have an active span`` becomes ``# Inject trace context``).
The envelope is published only when it is passed whole or serialised (``X``,
``X.model_dump_json()``), not when one field is (``X.event_type``).

Left alone: an envelope whose metadata this function did not build, because it carries a
context from elsewhere (a relay or replay that rebuilds it from a stored row:
``metadata=row.get("metadata")``, ``Envelope(**row)``, a parameter, ``X.metadata.update
(stored)``, a ``traceparent`` set by hand; a parsed ``Envelope.model_validate(...)`` is not
built here at all); a dict injected into before the envelope is built from it; an envelope
handed to a publisher method that the repo model sees injecting into that parameter's
metadata itself (every implementation of it outside the tests, also behind a protocol); and
``if X.metadata is not None: inject(X.metadata)`` after ``metadata={}`` (always true).
Reported, not rewritten: an envelope built inside the publish call, a publish in a one-line
suite, an injection behind a guard that tests more than the current span or the metadata,
and an injection nested in a branch or loop on the way to the publish.

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

Fix safety: safe. Only ``metadata`` changes, and only of an envelope built in the function
from fresh values: stale ``traceparent``/``tracestate``/``baggage`` keys are replaced by the
context current at the publish, every other key is kept; without a span the injection writes
nothing. A context stored with an event is never overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

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
    last_name,
    names_ending_in,
    parse_statements,
    positional,
    statements_of,
    walk,
    with_comment,
)
from scaffold.codemods.base import dotted_name
from scaffold.engine.gates import SyntaxGate, SyntaxIndex
from scaffold.engine.model import Settings
from scaffold.kit_api import INJECT_METADATA
from scaffold.repo.info import FunctionInfo, ParamKind
from scaffold.repo.model import is_test_file

PUBLISH_NAMES = frozenset(
    {"publish", "publish_event", "publish_to_outbox", "send", "send_and_wait"}
)
# without the option, any method named publish_... (an event publisher's
# publish_batch_event, publish_to_topic, publish_to_dlq) publishes what it is handed
PUBLISH_PREFIX = "publish_"
DEFAULT_PUBLISH_METHODS = tuple(sorted(PUBLISH_NAMES))
SPAN_PROBE = "get_current_span"


class EnvelopeInject(PropagationCodemod):
    PREFILTER = ENVELOPE_SUFFIXES
    SITE_KIND = "envelope-build"  # its rows in `scaffold report`
    USES_REPO = True  # the helper module's inject signature, for a type-correct call
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

    # a site is a function building an envelope: it calls the envelope class, and names it
    GATE = SyntaxGate(called_suffixes=ENVELOPE_SUFFIXES)
    SLICE_WORDS = frozenset()

    @classmethod
    def syntax_gate(cls, settings: Settings) -> SyntaxGate:
        suffixes = cls.resolve_options(settings.options.get(cls.ID))["envelope_suffixes"]
        return SyntaxGate(called_suffixes=suffixes)

    @classmethod
    def slice_carriers(cls, index: SyntaxIndex, settings: Settings) -> frozenset[str]:
        suffixes = tuple(cls.resolve_options(settings.options.get(cls.ID))["envelope_suffixes"])
        return names_ending_in(index, suffixes)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._guards_seen: set[cst.BaseStatement] = set()
        self._added: set[Place] = set()  # publishes this run injects before
        self._statements: dict[tuple[tuple[int, int], ...], cst.BaseStatement] = {}
        self._owner: str | None = None  # the class of the function visited (repo model)

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
        self._statements = {place.chain: place.statement for place in places}
        module = self.module_name
        here = self.repo.function_at(module, self.file_line(node)) \
            if module else None
        self._owner = here.owner if here is not None else None
        envelopes: dict[str, list[cst.Call]] = {}
        rebound: set[str] = set()
        bound: dict[str, list[cst.BaseExpression | None]] = {}
        carriers: set[str] = set()  # what this function passes to an inject call
        reassigned: dict[str, list[cst.BaseExpression | _Merged]] = {}  # X.metadata = <value>
        for place in places:
            for name, value in assignments(place.statement):
                bound.setdefault(name, []).append(value)
                built = self.construction(value)
                if built is None:
                    rebound.add(name)
                else:
                    envelopes.setdefault(name, []).append(built)
            if isinstance(place.statement, cst.SimpleStatementLine):
                for call in collect(place.statement).calls:
                    carrier = positional(call, 0, "carrier") \
                        if self.calls_one_of(call, INJECT_NAMES) else None
                    if carrier is not None:
                        carriers.add(code(carrier.value))
                for name, assigned in _metadata_assignments(place.statement):
                    if not (isinstance(assigned, cst.Call)
                            and self.calls_one_of(assigned, INJECT_NAMES)):
                        reassigned.setdefault(name, []).append(assigned)
        params = {param.name.value for param in (
            *node.params.posonly_params, *node.params.params, *node.params.kwonly_params)}
        if isinstance(node.params.star_arg, cst.Param):
            params.add(node.params.star_arg.name.value)
        if node.params.star_kwarg is not None:
            params.add(node.params.star_kwarg.name.value)
        lookup = _Bindings(bound, params, carriers)
        names = set(envelopes) - rebound
        origins = {name: self._origin(name, envelopes[name], reassigned.get(name, []), lookup)
                   for name in names}
        injected: dict[str, list[Place]] = {name: [] for name in names}
        guards: dict[cst.If, tuple[str, bool]] = {}
        for place in places:
            statement = place.statement
            target = self._injection_target(statement, names)
            if target is not None:
                injected[target].append(place)
                continue
            guard = self._guarded_target(statement, names)
            if isinstance(statement, cst.If) and guard is not None:
                guards[statement] = guard
                injected[guard[0]].append(place)
                continue
            for call in collect(*header(statement)).calls:
                if not self._publishes(call):
                    continue
                for name in self._published(call, names):
                    if origins[name] in (_CARRIED, _INJECTED):
                        self.record_correct(call, f"{name}.metadata carries a context")
                        continue  # its metadata is not built here: keep what it carries
                    if origins[name] == _GIVEN:
                        self.report(call, f"{name} is published with metadata this function "
                                    "did not build: a context it carries is kept, none is "
                                    "injected; inject where that metadata is built")
                        continue
                    self._publish(name, place, call, injected[name], guards, origins[name])
                self._report_inline(call)

    def _origin(self, name: str, built: list[cst.Call],
                reassigned: list[cst.BaseExpression | _Merged], lookup: _Bindings) -> str:
        """Where the metadata of envelope ``name`` comes from, over every build of it.

        ``_CARRIED``: read from data this function did not build (a stored row, a parsed
        message, ``**row``): it holds someone else's trace context, which is kept.
        ``_GIVEN``: handed in (a parameter, what a function returns): it may, so it is kept.
        ``_INJECTED``: a dict this function injected into before building the envelope.
        ``_DICT``: a dict built here (never None); ``_NONE``: not given, or may be None.
        """
        found: set[str] = set()
        for call in built:
            given = keyword(call, "metadata")
            if given is not None:
                found.add(lookup.origin(given.value, self))
            elif any(arg.star == "**" for arg in call.args):
                found.add(_CARRIED)  # Envelope(**row): metadata, if any, comes from the row
            else:
                found.add(_NONE)
        for value in reassigned:
            if isinstance(value, _Merged):
                if lookup.origin(value.value, self) == _CARRIED:
                    found.add(_CARRIED)  # a stored context merged in
                continue
            if f"{name}.metadata" in code(value):
                continue  # ``X.metadata = X.metadata or {}``: still its own
            found.add(lookup.origin(value, self))  # ``X.metadata = None``: None again
        return _first(found)

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

    def _guarded_target(self, statement: cst.BaseStatement,
                        names: set[str]) -> tuple[str, bool] | None:
        """``(X, only)`` for ``if <test>: ... inject(X.metadata) ...`` (a guard decides the
        injection); ``only`` when the block does nothing but create and inject X.metadata."""
        if not isinstance(statement, cst.If) or not isinstance(statement.body, cst.IndentedBlock):
            return None
        targets: set[str] = set()
        only = True
        for inner in statement.body.body:
            target = self._injection_target(inner, names)
            if target is not None:
                targets.add(target)
            elif not any(_creates(inner, name) for name in names):
                only = False
        if len(targets) != 1:
            return None
        name = targets.pop()
        return name, only and all(
            self._injection_target(inner, names) == name or _creates(inner, name)
            for inner in statement.body.body)

    def _publishes(self, call: cst.Call) -> bool:
        """A publish call, or a wrapper handed the publish method as its first argument
        (``traced_publish(self._bus.publish, topic, envelope)``, as kafka-produce writes)."""
        methods = self.options["publish_methods"]
        if self.calls_one_of(call, methods):
            return True
        if tuple(methods) == DEFAULT_PUBLISH_METHODS and isinstance(call.func, cst.Attribute) \
                and call.func.attr.value.startswith(PUBLISH_PREFIX):
            return True  # a publisher's own method: publish_batch_event(envelope)
        first = positional(call, 0)
        return first is not None and isinstance(first.value, (cst.Name, cst.Attribute)) \
            and last_name(first.value) in methods

    def _published(self, call: cst.Call, names: set[str]) -> set[str]:
        """The envelopes a publish call sends: passed whole or serialised, not one field."""
        receiver = code(call.func).split(".")[0]
        whole = _Whole()
        for arg in call.args:
            arg.value.visit(whole)
        return {name for name in names & whole.names if name != receiver}

    # -- rewriting --

    def _publish(self, name: str, place: Place, call: cst.Call, injections: list[Place],
                 guards: dict[cst.If, tuple[str, bool]], origin: str) -> None:
        before = [earlier for earlier in injections if earlier.dominates(place)]
        if before and not any(earlier.statement in guards for earlier in before):
            self.record_correct(call, f"the context is injected into {name}.metadata first")
        if before:
            for earlier in before:
                guard = earlier.statement
                if isinstance(guard, cst.If) and guard in guards \
                        and guard not in self._guards_seen:
                    self._guards_seen.add(guard)
                    self._settle(guard, name, guards[guard][1], origin, earlier)
            return
        earlier_ones = [earlier for earlier in injections
                        if earlier not in self._added and _may_precede(earlier, place)]
        if earlier_ones:  # injected before, nested: never inject a second time
            for earlier in earlier_ones:
                if not self._conditional(earlier, place):
                    continue  # in a ``with`` or ``try`` block: it runs on the way there
                if earlier.statement not in self._guards_seen:
                    self._guards_seen.add(earlier.statement)
                    self.report(earlier.statement, f"the injection into {name}.metadata does "
                                "not run on every path to its publish; where it does not, the "
                                "event starts a new trace")
            return
        injector = self._callee_injects(call, name)
        if injector is not None:
            self.record_correct(call, f"{injector} injects into the metadata of the envelope "
                                "it is handed")
            return
        if not place.in_block:
            self.report(call, f"{name} is published without trace context, in a "
                        "one-line suite: inject into its metadata on a line of its own")
            return
        if not self.record_change(place.statement, f"{name} was published without trace "
                                  f"context: the current context now goes into {name}.metadata"):
            return
        self.insert_before(place.statement, self._glue(name, origin))
        injections.append(place)
        self._added.add(place)

    def _callee_injects(self, call: cst.Call, name: str) -> str | None:
        """The publisher method a call hands envelope ``name`` to, when the repo model sees
        that it injects into that parameter's metadata itself (every implementation outside
        the tests: a publisher helper behind a protocol); a second injection at the call site
        would only repeat it."""
        if not (isinstance(call.func, cst.Attribute) and self.module_name):
            return None
        receiver = dotted_name(call.func.value)
        if receiver is None:
            return None
        if receiver.startswith("self.") and receiver.count(".") == 1 and self._owner:
            held = self.repo.type_of(f"{self._owner}.{receiver[5:]}")
        elif "." not in receiver:
            held = self.repo.type_of(f"{self.module_name}.{receiver}")
        else:
            return None
        method = call.func.attr.value
        if held is None:
            return None
        implementations = [
            function for klass in sorted(self.repo.classes)
            if self.repo.is_subclass(klass, [held]) and not self._protocol(klass)
            and (function := self.repo.function(f"{klass}.{method}")) is not None
            and not is_test_file(self.repo.file_of(function.module) or "")
        ]
        if not implementations or not all(
                self._injects_param(function, call, name) for function in implementations):
            return None
        return implementations[0].qualname if len(implementations) == 1 \
            else f"every {method} the repo has"

    def _protocol(self, klass: str) -> bool:
        return any(base.rsplit(".", 1)[-1] in ("Protocol", "ABC")
                   for base in self.repo.bases(klass))

    @staticmethod
    def _injects_param(function: FunctionInfo, call: cst.Call, name: str) -> bool:
        """Whether ``function`` injects into the metadata of the parameter ``call`` passes
        envelope ``name`` as."""
        params = [param for param in function.params if param.name not in ("self", "cls")]
        param = None
        for index, arg in enumerate(call.args):
            if arg.star or not (isinstance(arg.value, cst.Name) and arg.value.value == name):
                continue
            if arg.keyword is not None:
                param = arg.keyword.value
            elif index < len(params) and params[index].kind in (
                    ParamKind.POSITIONAL, ParamKind.POSITIONAL_ONLY):
                param = params[index].name
        if param is None:
            return False
        metadata = f"{param}.metadata"
        return any(site.expression.rsplit(".", 1)[-1] in INJECT_NAMES
                   and (site.args[:1] == (metadata,) or site.keyword("carrier") == metadata)
                   for site in function.calls)

    def _conditional(self, earlier: Place, later: Place) -> bool:
        """Whether a block between ``earlier`` and the statement shared with ``later`` may
        be skipped: an ``if``, a loop, a handler; not a ``with`` or a ``try`` body."""
        pairs = enumerate(zip(earlier.chain, later.chain, strict=False))
        shared = next(level for level, (mine, theirs) in pairs if mine != theirs)
        for level in range(shared + 1, len(earlier.chain)):
            outer, block = self._statements[earlier.chain[:level]], earlier.chain[level][0]
            if isinstance(outer, cst.With) or (isinstance(outer, cst.Try)
                                               and block == id(outer.body)):
                continue
            return True
        return False

    def _glue(self, name: str, origin: str) -> list[cst.BaseStatement]:
        metadata = f"{name}.metadata"
        inject_metadata = self.kit_function(INJECT_METADATA)
        if inject_metadata is not None:
            return parse_statements(f"{metadata} = {inject_metadata}({metadata})\n")
        creation = self._creation(name, _NONE if origin == _DICT and not self._takes_optional()
                                  else origin)
        return parse_statements(f"{creation}{self._inject()}({metadata})\n")

    def _takes_optional(self) -> bool:
        """Whether the inject function called accepts an ``Optional`` carrier, so that
        ``X.metadata`` of an envelope built with a dict here can be passed as it is.

        An envelope's ``metadata`` field is usually declared ``Optional[dict]``: a type
        checker does not know the dict literal above, so a helper module's
        ``inject_trace_context(carrier: dict)`` needs the ``is None`` guard to narrow it.
        OpenTelemetry's ``inject`` takes any carrier."""
        module = self.settings.helper_module
        if not module:
            return True
        function = self.repo.function(self.repo.canonical(f"{module}.inject_trace_context"))
        if function is None or not function.params:
            return False
        annotation = function.params[0].annotation
        return annotation is None or "Optional" in annotation or "None" in annotation

    def _inject(self) -> str:
        return self.helper("inject_trace_context") or self.otel("opentelemetry.propagate",
                                                                "inject")

    @staticmethod
    def _creation(name: str, origin: str) -> str:
        """The lines that make ``X.metadata`` a dict, unless it is built as one here."""
        metadata = f"{name}.metadata"
        return "" if origin == _DICT else f"if {metadata} is None:\n    {metadata} = {{}}\n"

    def _operand_kind(self, operand: cst.BaseExpression, name: str, origin: str) -> str | None:
        """What one ``and``-ed operand of a guard tests: the span, the metadata, or other."""
        if self._is_span_probe(operand):
            return "span"
        text = code(operand)
        if text == f"{name}.metadata is not None":
            return "true" if origin == _DICT else "metadata"
        if text in (f"{name}.metadata", f"bool({name}.metadata)"):
            return "metadata"  # an empty dict is false: the injection is skipped
        return None

    def _settle(self, guard: cst.If, name: str, only: bool, origin: str,
                place: Place) -> None:
        """An injection behind ``guard``: left as it is, made unconditional, or reported."""
        operands = _and_operands(guard.test)
        kinds = {self._operand_kind(operand, name, origin) for operand in operands}
        if guard.orelse is None and kinds == {"true"}:
            return  # ``X.metadata is not None`` of a dict built here: it always injects
        if guard.orelse is not None or None in kinds or not only:
            self.report(guard, f"injection into {name}.metadata depends on "
                        f"`{code(guard.test)}`; when that is false the event starts a new trace")
            return
        if not self.record_change(guard, f"injection into {name}.metadata no longer depends "
                                  f"on `{code(guard.test)}`"):
            return
        RemoveImportsVisitor.remove_unused_import_by_node(self.context, guard.test)
        comment = header_comment(guard)
        assert isinstance(guard.body, cst.IndentedBlock)
        creates = any(_creates(inner, name) for inner in guard.body.body) or any(
            self.calls_one_of(call, INJECT_METADATA)
            for call in collect(guard.body).calls)
        text = "" if creates else self._creation(name, origin)
        creation = parse_statements(text) if text else []

        def unguarded(updated: cst.If) -> list[cst.BaseStatement]:
            body = [*creation, *statements_of(updated.body)]
            leading = _without_the_guard(updated.leading_lines)
            body[0] = with_comment(body[0].with_changes(leading_lines=leading), comment)
            return body

        self.replace_statement(guard, unguarded, own_lines=True)
        block, index = place.chain[-1]
        above = self._statements.get((*place.chain[:-1], (block, index - 1))) if index else None
        if _imports_only(above, collect(guard.test).names):
            def decommented(updated: cst.SimpleStatementLine) -> list[cst.BaseStatement]:
                return [updated.with_changes(
                    leading_lines=_without_the_guard(updated.leading_lines))]

            self.replace_statement(cast(cst.BaseStatement, above), decommented, own_lines=True)

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

# where an envelope's metadata comes from (``EnvelopeInject._origin``)
_CARRIED, _GIVEN, _INJECTED, _DICT, _NONE = "carried", "given", "injected", "dict", "none"


def _first(origins: set[str]) -> str:
    """The origin that decides for several builds: a carried context wins, a dict built
    here everywhere is the only way to ``_DICT``."""
    return next((origin for origin in (_CARRIED, _GIVEN, _INJECTED, _NONE) if origin in origins),
                _DICT)
_CONTEXT_KEYS = frozenset({"traceparent", "tracestate", "baggage"})


# a clause of a comment that says when the injection runs: "if we have an active span"
_GUARD_CLAUSE = re.compile(
    r"[\s,]*\b(?:only\s+)?(?:if|when|while|unless)\b[^.;]*?"
    r"\b(?:spans?|recording|active|tracing|tracer|metadata)\b[^.;]*", re.IGNORECASE)


def _without_the_guard(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """The comment lines right above a removed guard without the clause that described it
    (``# Inject trace context if we have an active span`` -> ``# Inject trace context``); a
    line that said nothing else goes. Other comments, and any after a blank line, are kept."""
    kept = list(lines)
    start = len(kept)
    while start and kept[start - 1].comment is not None:
        start -= 1
    for position in range(len(kept) - 1, start - 1, -1):
        comment = cast(cst.Comment, kept[position].comment)
        text = comment.value.lstrip("#").strip()
        shorter = _GUARD_CLAUSE.sub("", text, count=1).strip()
        if shorter == text:
            continue
        shorter = re.sub(r"^only\s+", "", shorter, flags=re.IGNORECASE)
        if not shorter:
            del kept[position]
            continue
        kept[position] = kept[position].with_changes(
            comment=cst.Comment(f"# {shorter[0].upper()}{shorter[1:]}"))
    return kept


def _imports_only(statement: cst.BaseStatement | None, names: set[str]) -> bool:
    """Is ``statement`` one ``from m import a, b`` line of names the guard tests (an import
    inside the function made for the guard, which goes with it)?"""
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1
            and isinstance(statement.body[0], cst.ImportFrom)):
        return False
    imported = statement.body[0].names
    return not isinstance(imported, cst.ImportStar) and all(
        code(alias.asname.name if alias.asname else alias.name) in names
        for alias in imported)


def _and_operands(test: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(test, cst.BooleanOperation) and isinstance(test.operator, cst.And):
        return [*_and_operands(test.left), *_and_operands(test.right)]
    return [test]


def _may_precede(earlier: Place, later: Place) -> bool:
    """True when ``earlier`` can run before ``later``: it is, or is nested in, a statement
    that comes before ``later`` in a block both share (not in another branch of an ``if``)."""
    for (block, index), (other_block, other_index) in zip(earlier.chain, later.chain,
                                                              strict=False):
        if (block, index) != (other_block, other_index):
            return block == other_block and index < other_index
    return False  # one holds the other


def _creates(statement: cst.BaseStatement, name: str) -> bool:
    """``if X.metadata is None: X.metadata = {}`` (or ``if not X.metadata``), or
    ``X.metadata = X.metadata or {}``: makes the metadata a dict, changes nothing else."""
    metadata = f"{name}.metadata"
    if isinstance(statement, cst.If):
        if statement.orelse is not None or code(statement.test) not in (
                f"{metadata} is None", f"not {metadata}"):
            return False
        inner = statements_of(statement.body)
        return len(inner) == 1 and _creates_line(inner[0], metadata, ("{}", "dict()"))
    return _creates_line(statement, metadata, (f"{metadata} or {{}}", f"{metadata} or dict()"))


def _creates_line(statement: cst.BaseStatement, metadata: str, values: tuple[str, ...]) -> bool:
    if not (isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1):
        return False
    small = statement.body[0]
    return (isinstance(small, cst.Assign) and len(small.targets) == 1
            and code(small.targets[0].target) == metadata and code(small.value) in values)


@dataclass(frozen=True)
class _Merged:
    """What ``X.metadata.update(value)`` merges in: only stored data there counts."""

    value: cst.BaseExpression


def _metadata_assignments(statement: cst.SimpleStatementLine,
                          ) -> list[tuple[str, cst.BaseExpression | _Merged]]:
    """(X, value) for every ``X.metadata = value`` of a simple statement; also
    ``X.metadata.update(value)``, and ``X.metadata["traceparent"] = ...`` as a carried value
    (a context set by hand)."""
    found: list[tuple[str, cst.BaseExpression | _Merged]] = []
    for small in statement.body:
        if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
            func = small.value.func
            if (isinstance(func, cst.Attribute) and func.attr.value == "update"
                    and isinstance(func.value, cst.Attribute)
                    and isinstance(func.value.value, cst.Name)
                    and func.value.attr.value == "metadata"):
                found.extend((func.value.value.value, _Merged(arg.value))
                             for arg in small.value.args if arg.keyword is None)
        if isinstance(small, cst.Assign):
            for assigned in small.targets:
                target = assigned.target
                if (isinstance(target, cst.Subscript) and isinstance(target.value, cst.Attribute)
                        and isinstance(target.value.value, cst.Name)
                        and target.value.attr.value == "metadata"
                        and any(isinstance(element.slice, cst.Index)
                                and isinstance(element.slice.value, cst.SimpleString)
                                and element.slice.value.evaluated_value in _CONTEXT_KEYS
                                for element in target.slice)):
                    found.append((target.value.value.value, small.value))
        if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) \
                else [small.target]
            for target in targets:
                if (isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name)
                        and target.attr.value == "metadata"):
                    found.append((target.value.value, small.value))
    return found


class _Whole(cst.CSTVisitor):
    """Names an expression uses whole: ``envelope``, ``envelope.model_dump_json()``,
    ``serialize(envelope)``; not ``envelope.event_type`` (one field is not the event)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Call(self, node: cst.Call) -> bool:
        func = node.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            self.names.add(func.value.value)  # a method of it: its serialised form
            for arg in node.args:
                arg.value.visit(self)
            return False
        return True

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        if not isinstance(node.value, cst.Name):
            node.value.visit(self)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        node.value.visit(self)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


class _Bindings:
    """What the local names of one function are bound to, for ``origin``."""

    def __init__(self, bound: Mapping[str, list[cst.BaseExpression | None]],
                 params: set[str], carriers: set[str]) -> None:
        self.bound, self.params, self.carriers = bound, params, carriers

    def origin(self, value: cst.BaseExpression | None, codemod: PropagationCodemod,
               seen: frozenset[str] = frozenset()) -> str:
        """Where a metadata value comes from: built here, injected here, or carried in."""
        if value is None or (isinstance(value, cst.Name) and value.value == "None"):
            return _NONE
        if isinstance(value, cst.Dict):
            for element in value.elements:
                if isinstance(element, cst.StarredDictElement):
                    copied = self.origin(element.value, codemod, seen)
                    if copied in (_CARRIED, _GIVEN):
                        return copied  # a copy of other metadata
                elif (isinstance(element, cst.DictElement)
                      and isinstance(element.key, cst.SimpleString)
                      and element.key.evaluated_value in _CONTEXT_KEYS):
                    return _CARRIED  # a context set by hand
            return _DICT
        if isinstance(value, cst.Call):
            if codemod.calls_one_of(value, INJECT_NAMES):
                return _INJECTED
            if code(value.func) == "dict":
                origins = {self.origin(arg.value, codemod, seen) for arg in value.args
                           if arg.keyword is None}
                return _DICT if origins <= {_DICT, _NONE} else _first(origins)
            # a method reads another object (``row.get("metadata")``); a function makes one
            return _CARRIED if isinstance(value.func, cst.Attribute) else _GIVEN
        if isinstance(value, cst.BooleanOperation) and isinstance(value.operator, cst.Or):
            left = self.origin(value.left, codemod, seen)
            right = self.origin(value.right, codemod, seen)
            return _DICT if left in (_NONE, _DICT) and right == _DICT else left
        if isinstance(value, cst.Name):
            name = value.value
            if name in self.carriers:
                return _INJECTED
            if name in self.params:
                return _GIVEN
            if name not in self.bound or name in seen:
                return _CARRIED  # a loop or ``with`` target, a global: not built here
            return _first({self.origin(bound, codemod, seen | {name})
                           for bound in self.bound[name]})
        return _CARRIED  # an attribute, a subscript ...: read from data built elsewhere
