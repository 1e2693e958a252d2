"""Private OpenTelemetry names are used outside tests.

What it does: reports imports and attribute reads of underscore names from ``opentelemetry``
packages (``opentelemetry.context._RUNTIME_CONTEXT``, ``trace._TRACER_PROVIDER``,
``_CONTEXT_STORAGE``...) once per site, following import aliases. Test code (``tests/``,
``test_*.py``, ``conftest.py``, ``testing.py``) is not checked. The experimental signals whose
public API lives in private modules (option ``allowed``, default ``_logs``, ``_events``) are
accepted.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import QualifiedNameProvider

from scaffold.checks._syntax import dotted_name
from scaffold.checks.base import Check, Valid


def _is_private(segment: str) -> bool:
    return segment.startswith("_") and not segment.startswith("__")


class PrivateContextApi(Check):
    WHY = (
        "Underscore names are OpenTelemetry's implementation, not its API: they change between "
        "minor releases without notice, and code that swaps or pokes the runtime context or the "
        "global provider bypasses the checks (set-once provider, token validation) that keep "
        "context correct for every other library in the process."
    )
    FIX_HINT = (
        "Use the public API: `context.attach`/`detach`/`get_current`, `trace.get_tracer_provider`, "
        "`trace.set_tracer_provider` once at startup; tests may reset globals in a fixture."
    )
    METADATA_DEPENDENCIES = (QualifiedNameProvider,)
    PREFILTER = ("opentelemetry",)
    OPTIONS = {"allowed": ("_logs", "_events")}
    VALID = (
        """
        from opentelemetry import context, trace
        from opentelemetry._logs import set_logger_provider

        token = context.attach(ctx)
        provider = trace.get_tracer_provider()
        """,
        Valid(
            """
            from opentelemetry import trace
            from opentelemetry.context import _RUNTIME_CONTEXT

            def reset_provider():
                trace._TRACER_PROVIDER = None
            """,
            path="tests/conftest.py",
        ),
    )
    INVALID = (
        """
        import opentelemetry.context
        from opentelemetry import trace as otel_trace
        from opentelemetry.context import _RUNTIME_CONTEXT, get_current  # <-

        current = _RUNTIME_CONTEXT.get_current()
        storage = opentelemetry.context._CONTEXT_STORAGE  # <-
        otel_trace._TRACER_PROVIDER_SET_ONCE._done = False  # <-
        """,
    )

    def visit_Module(self, node: cst.Module) -> bool:
        return not self.in_test_code

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        module = dotted_name(node.module) if node.module else None
        if not module or module.split(".")[0] != "opentelemetry" or node.relative:
            return
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            if _is_private(name) and name not in self.options["allowed"]:
                self.report(alias, f"`{module}.{name}` is private to OpenTelemetry")

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if not _is_private(node.attr.value) or node.attr.value in self.options["allowed"]:
            return
        for qualified in self.get_metadata(QualifiedNameProvider, node, set()):
            segments = qualified.name.split(".")
            # report the first private segment only, so `a._b._c` is one site, not two
            if segments[0] == "opentelemetry" and not any(map(_is_private, segments[:-1])):
                self.report(node, f"`{qualified.name}` is private to OpenTelemetry")
                return
