"""A ratio sampler ignores the parent's decision, or a trace id's low 64 bits are not random.

What it does: reports a ``TraceIdRatioBased(...)`` that is not the root of a ``ParentBased``
(directly or through a local name), ``OTEL_TRACES_SAMPLER=traceidratio`` in env and compose
files, and a ``generate_trace_id`` method whose returned low 64 bits are visibly not random:
a constant, a shift by 64 or more bits, fewer than 64 random bits, a clock, ``uuid1``, or a
counter (``next(...)``, a field incremented with ``+=``). Unknown sources are given the benefit
of the doubt. Test code is not checked for the ratio sampler (tests measure samplers directly).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

import libcst as cst
import libcst.matchers as m
from libcst.metadata import ParentNodeProvider, ScopeProvider

from scaffold.checks._envfiles import ENV_FILES, env_values
from scaffold.checks._syntax import call_name, dotted_name, positional
from scaffold.checks.base import Check, Valid
from scaffold.engine.model import Finding

_RATIO = "TraceIdRatioBased"
_RANDOM_CALLS = frozenset(
    {"getrandbits", "randbits", "randrange", "randint", "randbelow", "urandom", "token_bytes",
     "token_hex", "uuid4", "generate_trace_id"}
)
_CLOCK_CALLS = frozenset(
    {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "now",
     "utcnow", "timestamp", "uuid1"}
)
_BIT_COUNT_CALLS = frozenset({"getrandbits", "randbits"})
_PASS_THROUGH_CALLS = frozenset({"int", "from_bytes", "abs"})


class _Bits(Enum):
    RANDOM = "random"
    FIXED = "fixed"
    UNKNOWN = "unknown"


class SamplerRoot(Check):
    WHY = (
        "`TraceIdRatioBased` decides on the low 64 bits of the trace id and ignores the "
        "parent: a service that samples 10% drops spans of traces its callers kept, leaving "
        "broken traces with missing middles. `ParentBased(TraceIdRatioBased(r))` follows a "
        "sampled parent and applies the ratio only to new traces. The ratio decision is only "
        "a ratio if the low 64 bits of trace ids are uniformly random; a clock, a counter or "
        "too few random bits sample everything or nothing."
    )
    FIX_HINT = (
        "Use `ParentBased(TraceIdRatioBased(r))` (or `OTEL_TRACES_SAMPLER="
        "parentbased_traceidratio`); keep `RandomIdGenerator` or put time or other structure "
        "only in the high 64 bits: `(prefix << 64) | random.getrandbits(64)`."
    )
    METADATA_DEPENDENCIES = (ParentNodeProvider, ScopeProvider)
    PREFILTER = (_RATIO, "generate_trace_id")
    CONFIG_FILES = ENV_FILES
    VALID = (
        """
        import random, time
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.id_generator import IdGenerator
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
        root = TraceIdRatioBased(0.5)
        other = TracerProvider(sampler=ParentBased(root=root))

        class HalfOfNewTraces(ParentBased):
            def __init__(self):
                ratio = TraceIdRatioBased(0.5)
                super().__init__(root=ratio)

        class TimePrefixedIds(IdGenerator):
            def generate_span_id(self):
                return random.getrandbits(64)

            def generate_trace_id(self):
                return (int(time.time()) << 96) | random.getrandbits(96)
        """,
        Valid(
            "def test_ratio():\n    assert TraceIdRatioBased(0.5).bound == 2**63\n",
            path="tests/test_sampling.py",
        ),
    )
    INVALID = (
        """
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

        provider = TracerProvider(sampler=TraceIdRatioBased(0.1))  # <-
        sampler = TraceIdRatioBased(0.25)  # <-
        TracerProvider(sampler=sampler)
        """,
        """
        import itertools, random, time, uuid

        class ClockIds:
            def generate_trace_id(self):
                return time.time_ns()  # <-

        class HighBitsOnly:
            def generate_trace_id(self):
                return random.getrandbits(64) << 64  # <-

        class Counting:
            def __init__(self):
                self._next = 0

            def generate_trace_id(self):
                self._next += 1
                return self._next  # <-

        class Uuid1Ids:
            def generate_trace_id(self):
                value = uuid.uuid1().int
                return value  # <-

        class FewBits:
            def generate_trace_id(self):
                return random.getrandbits(32)  # <-
        """,
    )

    def visit_Module(self, node: cst.Module) -> None:
        self._ratio_checked = not self.in_test_code

    def visit_Call(self, node: cst.Call) -> None:
        if self._ratio_checked and call_name(node) == _RATIO and not self._under_parent_based(node):
            self.report(node, f"`{_RATIO}` is used without `ParentBased`")

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value != "generate_trace_id":
            return
        for statement in _returns(node):
            bits, reason = self._low_bits(statement.value, node)
            if bits is _Bits.FIXED:
                self.report(statement, f"the low 64 bits of this trace id are not random: {reason}")
                return

    def _under_parent_based(self, call: cst.Call) -> bool:
        parent = self.get_metadata(ParentNodeProvider, call)
        if isinstance(parent, cst.Arg):
            return _is_parent_based_root(parent, self.get_metadata(ParentNodeProvider, parent))
        if not (isinstance(parent, cst.Assign) and len(parent.targets) == 1):
            return False
        target = parent.targets[0].target
        scope = self.get_metadata(ScopeProvider, target, None)
        if not isinstance(target, cst.Name) or scope is None:
            return False
        for assignment in scope.assignments[target.value]:
            for reference in assignment.references:
                arg = self.get_metadata(ParentNodeProvider, reference.node, None)
                if isinstance(arg, cst.Arg) and _is_parent_based_root(
                    arg, self.get_metadata(ParentNodeProvider, arg)
                ):
                    return True
        return False

    def _low_bits(
        self, node: cst.BaseExpression | None, function: cst.FunctionDef
    ) -> tuple[_Bits, str]:
        """Whether the low 64 bits of an expression's value are random, with the reason."""
        if node is None:
            return _Bits.UNKNOWN, ""
        if isinstance(node, cst.Integer):
            return _Bits.FIXED, "a constant"
        if isinstance(node, cst.BinaryOperation):
            return self._low_bits_of_operation(node, function)
        if isinstance(node, cst.Attribute) and isinstance(node.value, cst.Call):
            return self._low_bits(node.value, function)  # uuid4().int, uuid1().int
        if isinstance(node, cst.Call):
            return self._low_bits_of_call(node, function)
        if isinstance(node, (cst.Name, cst.Attribute)):
            return self._low_bits_of_variable(node, function)
        return _Bits.UNKNOWN, ""

    def _low_bits_of_operation(
        self, node: cst.BinaryOperation, function: cst.FunctionDef
    ) -> tuple[_Bits, str]:
        operator = node.operator
        if isinstance(operator, cst.LeftShift):
            if isinstance(node.right, cst.Integer) and node.right.evaluated_value >= 64:
                return _Bits.FIXED, f"shifted left by {node.right.value} bits, they are zero"
            return self._low_bits(node.left, function)
        if isinstance(operator, cst.RightShift):
            return self._low_bits(node.left, function)
        if isinstance(operator, cst.BitAnd):
            masked = [side for side in (node.left, node.right) if not isinstance(side, cst.Integer)]
            return self._low_bits(masked[0], function) if masked else (_Bits.FIXED, "a constant")
        if isinstance(operator, (cst.BitOr, cst.BitXor, cst.Add)):
            sides = [self._low_bits(side, function) for side in (node.left, node.right)]
            for wanted in (_Bits.RANDOM, _Bits.UNKNOWN):
                if any(bits is wanted for bits, _ in sides):
                    return wanted, ""
            return _Bits.FIXED, " and ".join(reason for _, reason in sides)
        return _Bits.UNKNOWN, ""

    def _low_bits_of_call(self, node: cst.Call, function: cst.FunctionDef) -> tuple[_Bits, str]:
        name = call_name(node)
        first = positional(node, 0)
        if name in _BIT_COUNT_CALLS and first and isinstance(first.value, cst.Integer):
            if first.value.evaluated_value < 64:
                return _Bits.FIXED, f"only {first.value.value} bits are random"
        if name in _RANDOM_CALLS:
            return _Bits.RANDOM, ""
        if name in _CLOCK_CALLS:
            return _Bits.FIXED, f"`{name}()` is a clock"
        if name == "next" or name == "count":
            return _Bits.FIXED, "a counter"
        if name in _PASS_THROUGH_CALLS and first is not None:
            return self._low_bits(first.value, function)
        return _Bits.UNKNOWN, ""

    def _low_bits_of_variable(
        self, node: cst.Name | cst.Attribute, function: cst.FunctionDef
    ) -> tuple[_Bits, str]:
        name = dotted_name(node)
        incremented = m.AugAssign(target=m.MatchIfTrue(lambda t: dotted_name(t) == name))
        if m.findall(function, incremented):
            return _Bits.FIXED, f"`{name}` is a counter"
        assigned = [
            statement.value
            for statement in m.findall(function, m.Assign())
            if isinstance(statement, cst.Assign)
            and any(dotted_name(target.target) == name for target in statement.targets)
        ]
        if len(assigned) == 1 and isinstance(node, cst.Name):
            return self._low_bits(assigned[0], function)
        return _Bits.UNKNOWN, ""

    @classmethod
    def check_config_file(
        cls, path: str, text: str, options: Mapping[str, Any] | None = None
    ) -> list[Finding]:
        return [
            Finding(path, line, column, cls.ID, "`OTEL_TRACES_SAMPLER=traceidratio` ignores "
                    "the parent's decision; use `parentbased_traceidratio`")
            for line, column, value in env_values(text, "OTEL_TRACES_SAMPLER")
            if value.lower() == "traceidratio"
        ]


def _is_parent_based_root(arg: cst.Arg, call: cst.CSTNode) -> bool:
    """``ParentBased(x)``, or ``root=x`` of any call (as a ParentBased subclass passes it on)."""
    if arg.keyword is not None:
        return arg.keyword.value == "root"
    return call_name(call) == "ParentBased" and isinstance(call, cst.Call) and (
        call.args.index(arg) == 0
    )


def _returns(function: cst.FunctionDef) -> list[cst.Return]:
    """The function's own return statements (not those of nested functions)."""
    found: list[cst.Return] = []

    class _Collect(cst.CSTVisitor):
        def visit_Return(self, node: cst.Return) -> None:
            found.append(node)

        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            return node is function

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return False

    function.visit(_Collect())
    return found

