"""Propagators overlap on carrier keys, or baggage comes before trace context.

What it does: reads the propagator list of every ``CompositePropagator([...])`` and every
``OTEL_PROPAGATORS`` value, both in Python (``os.environ[...] = ...``, ``setdefault``, dict
literals) and in env files and compose files (``.env``, ``*.env``, ``.env.*``,
``docker-compose*.y*ml``, ``compose*.y*ml``: lines ``OTEL_PROPAGATORS=...`` or
``OTEL_PROPAGATORS: ...``). It reports, once per list, two propagators that write the same
carrier keys (the table below mirrors each propagator's ``fields``) and ``baggage`` placed before
the first trace-context propagator. Propagators it does not know are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import Assignment, ParentNodeProvider, ScopeProvider

from scaffold.checks._envfiles import ENV_FILES, env_values
from scaffold.checks._syntax import argument, call_name, string_value, terminal_name
from scaffold.checks.base import Check, Invalid
from scaffold.engine.model import Finding

# OTEL_PROPAGATORS names (the ``opentelemetry_propagator`` entry points) -> carrier keys written
_KEYS_BY_NAME: dict[str, frozenset[str]] = {
    "tracecontext": frozenset({"traceparent", "tracestate"}),
    "baggage": frozenset({"baggage"}),
    "b3": frozenset({"b3"}),
    "b3multi": frozenset({"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}),
    "jaeger": frozenset({"uber-trace-id"}),
    "xray": frozenset({"x-amzn-trace-id"}),
    "ottrace": frozenset({"ot-tracer-traceid", "ot-tracer-spanid", "ot-tracer-sampled"}),
}
_NAME_BY_CLASS = {
    "TraceContextTextMapPropagator": "tracecontext",
    "W3CBaggagePropagator": "baggage",
    "B3SingleFormat": "b3",
    "B3MultiFormat": "b3multi",
    "B3Format": "b3multi",
    "JaegerPropagator": "jaeger",
    "AwsXRayPropagator": "xray",
    "AwsXRayFormat": "xray",
    "OTTracePropagator": "ottrace",
}
_TRACE_CONTEXT_NAMES = frozenset(_KEYS_BY_NAME) - {"baggage"}
_ENV_VARIABLE = "OTEL_PROPAGATORS"


def problems_in(names: Sequence[str]) -> list[str]:
    """What is wrong with a propagator list (``names`` as OTEL_PROPAGATORS spells them)."""
    problems = []
    seen: dict[str, str] = {}
    for name in names:
        for key in sorted(_KEYS_BY_NAME.get(name, ())):
            if key in seen:
                problems.append(
                    f"`{name}` is listed twice"
                    if seen[key] == name
                    else f"`{seen[key]}` and `{name}` both write the `{key}` key"
                )
                break
        for key in _KEYS_BY_NAME.get(name, ()):
            seen.setdefault(key, name)
    trace_positions = [i for i, name in enumerate(names) if name in _TRACE_CONTEXT_NAMES]
    if "baggage" in names and trace_positions and names.index("baggage") < trace_positions[0]:
        problems.append(
            f"`baggage` comes before `{names[trace_positions[0]]}`, so a carrier without trace "
            "context inherits the current span"
        )
    return problems


def _split_env_value(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]


class PropagatorOverlap(Check):
    WHY = (
        "`CompositePropagator` runs its propagators in order and later ones win: two that write "
        "the same keys make the header depend on list order (and Kafka header lists get the key "
        "twice). `W3CBaggagePropagator.extract` starts from the *current* context when none is "
        "given, and trace-context extraction keeps the context it is handed when the carrier "
        "has no `traceparent`; with baggage first, a message without `traceparent` is parented "
        "to whatever span is current instead of starting a new trace."
    )
    FIX_HINT = (
        "List each propagator once, trace context first: "
        "`CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])` or "
        "`OTEL_PROPAGATORS=tracecontext,baggage` (the default)."
    )
    METADATA_DEPENDENCIES = (ParentNodeProvider, ScopeProvider)
    PREFILTER = ("CompositePropagator", _ENV_VARIABLE)
    CONFIG_FILES = ENV_FILES
    VALID = (
        """
        import os
        from opentelemetry.propagators.composite import CompositePropagator

        propagator = CompositePropagator(
            [TraceContextTextMapPropagator(), W3CBaggagePropagator(), CustomPropagator()]
        )
        os.environ.setdefault("OTEL_PROPAGATORS", "tracecontext,baggage")
        """,
    )
    INVALID = (
        """
        import os
        from opentelemetry.propagators.composite import CompositePropagator

        baggage_first = [W3CBaggagePropagator(), TraceContextTextMapPropagator()]
        propagator = CompositePropagator(baggage_first)  # <-
        swapped = CompositePropagator([W3CBaggagePropagator(), B3MultiFormat()])  # <-
        doubled = CompositePropagator(  # <-
            [TraceContextTextMapPropagator(), TraceContextTextMapPropagator()]
        )
        os.environ["OTEL_PROPAGATORS"] = "baggage,tracecontext"  # <-
        env = {"OTEL_PROPAGATORS": "b3,b3"}  # <-
        """,
        Invalid(
            """
            def configure():
                os.environ.setdefault("OTEL_PROPAGATORS", "baggage,b3multi,tracecontext")  # <-
            """
        ),
    )

    def visit_Call(self, node: cst.Call) -> None:
        name = call_name(node)
        if name == "CompositePropagator":
            self._check_composite(node)
        elif name in {"setdefault", "putenv"}:
            key, value = argument(node, 0, "key"), argument(node, 1, "value")
            if key is not None and string_value(key) == _ENV_VARIABLE and value is not None:
                self._check_env_value(node, value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            subscript = target.target
            if (
                isinstance(subscript, cst.Subscript)
                and len(subscript.slice) == 1
                and isinstance(subscript.slice[0].slice, cst.Index)
                and string_value(subscript.slice[0].slice.value) == _ENV_VARIABLE
            ):
                self._check_env_value(node, node.value)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        if string_value(node.key) == _ENV_VARIABLE:
            self._check_env_value(node, node.value)

    def _check_composite(self, node: cst.Call) -> None:
        listed = argument(node, 0, "propagators")
        if isinstance(listed, cst.Name):
            listed = self._only_value_of(listed)
        if not isinstance(listed, (cst.List, cst.Tuple)):
            return
        names = []
        for element in listed.elements:
            value = element.value
            cls = terminal_name(value.func) if isinstance(value, cst.Call) else None
            names.append(_NAME_BY_CLASS.get(cls or "", f"<{cls}>"))
        self._report_problems(node, names)

    def _only_value_of(self, name: cst.Name) -> cst.BaseExpression | None:
        """The value of a name assigned exactly once in its scope (``x = [...]``), if any."""
        scope = self.get_metadata(ScopeProvider, name, None)
        assignments = list(scope.assignments[name.value]) if scope is not None else []
        if len(assignments) != 1 or not isinstance(assignments[0], Assignment):
            return None
        target = self.get_metadata(ParentNodeProvider, assignments[0].node, None)
        statement = self.get_metadata(ParentNodeProvider, target, None) if target else None
        return statement.value if isinstance(statement, cst.Assign) else None

    def _check_env_value(self, site: cst.CSTNode, value: cst.BaseExpression) -> None:
        text = string_value(value)
        if text is not None:
            self._report_problems(site, _split_env_value(text))

    def _report_problems(self, site: cst.CSTNode, names: Sequence[str]) -> None:
        problems = problems_in(names)
        if problems:
            self.report(site, "; ".join(problems))

    @classmethod
    def check_config_file(
        cls, path: str, text: str, options: Mapping[str, Any] | None = None
    ) -> list[Finding]:
        findings = []
        for line, column, value in env_values(text, _ENV_VARIABLE):
            problems = problems_in(_split_env_value(value))
            if problems:
                findings.append(Finding(path, line, column, cls.ID, "; ".join(problems)))
        return findings

