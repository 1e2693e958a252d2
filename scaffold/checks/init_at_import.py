"""Tracing is initialised at module import time.

What it does: reports calls to ``init_tracing`` or ``set_tracer_provider`` (option
``functions``) that run when the module is imported: at module level or in a class body,
including inside module-level ``if``/``try``/``with`` blocks. Calls inside functions and under
``if __name__ == "__main__":`` are fine, and so is test code: a ``conftest.py`` that installs
the test provider once at import is the usual way to test tracing.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from scaffold.checks._syntax import call_name
from scaffold.checks.base import Check, Invalid, Valid


def _is_main(literal: str) -> bool:
    return literal.strip("'\"") == "__main__"


_MAIN_GUARD = m.If(
    test=m.Comparison(
        left=m.Name("__name__"),
        comparisons=[
            m.ComparisonTarget(
                operator=m.Equal(), comparator=m.SimpleString(value=m.MatchIfTrue(_is_main))
            )
        ],
    )
)


class InitAtImport(Check):
    WHY = (
        "Importing a module should not configure a process. A provider set at import is set "
        "before the app's settings are read, before a pre-forking server forks (the batch "
        "exporter's thread does not survive the fork, so children export nothing), and in "
        "every test that imports the module; `set_tracer_provider` works only once per process, "
        "so tests can no longer install their in-memory provider."
    )
    FIX_HINT = (
        "Call it from the entry point: the app factory, a `before_serving`/lifespan startup "
        "hook, or `main()`."
    )
    PREFILTER = ("init_tracing", "set_tracer_provider")
    OPTIONS = {"functions": ("init_tracing", "set_tracer_provider")}
    VALID = (
        """
        from opentelemetry import trace
        from tracekit import init_tracing

        def create_app():
            init_tracing("orders")
            return App()

        class Service:
            def start(self):
                trace.set_tracer_provider(TracerProvider())

        if __name__ == "__main__":
            init_tracing("orders")
        """,
        Valid("deferred = lambda: init_tracing('orders')\n"),
        Valid("trace.set_tracer_provider(TEST_PROVIDER)\n", path="tests/conftest.py"),
    )
    INVALID = (
        """
        from opentelemetry import trace
        from tracekit import init_tracing

        tracer = init_tracing("orders")  # <-

        try:
            trace.set_tracer_provider(TracerProvider())  # <-
        except Exception:
            pass

        class Settings:
            tracer = init_tracing("orders")  # <-
        """,
        Invalid(
            """
            if __name__ == "__main__":
                run()
            else:
                init_tracing("worker")  # <-
            """
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._function_depth = 0

    def visit_Module(self, node: cst.Module) -> bool:
        return not self.in_test_code

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._function_depth += 1

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._function_depth -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._function_depth += 1

    def leave_Lambda(self, original_node: cst.Lambda) -> None:
        self._function_depth -= 1

    def visit_If(self, node: cst.If) -> bool:
        if not m.matches(node, _MAIN_GUARD):
            return True
        # the guarded body runs only as a script; an else branch still runs on import
        if node.orelse is not None:
            node.orelse.visit(self)
        return False

    def visit_Call(self, node: cst.Call) -> None:
        if self._function_depth == 0 and call_name(node) in self.options["functions"]:
            self.report(node, f"`{call_name(node)}()` runs when the module is imported")
