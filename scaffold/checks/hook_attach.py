"""Context is attached in one request hook and detached in another.

What it does: finds request hooks (functions decorated with, or registered through,
``before_request``/``after_request``/``teardown_request`` and their ``_app_`` and websocket
variants, as Flask and Quart name them) and reports a ``context.attach(...)`` in a before-hook
that is not detached in a ``finally`` of the same function, once per attach. When no
before-hook of the module attaches, a ``detach`` in an after- or teardown-hook is reported
instead (the attach happened somewhere the check cannot see).
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from scaffold.checks._syntax import calls_in, dotted_name, positional, terminal_name
from scaffold.checks.base import Check

_BEFORE = frozenset(
    {"before_request", "before_app_request", "before_websocket", "before_app_websocket"}
)
_AFTER = frozenset(
    f"{when}_{app}{what}"
    for when in ("after", "teardown")
    for app in ("", "app_")
    for what in ("request", "websocket")
)


def _context_call(call: cst.Call, name: str) -> bool:
    """``attach(...)``/``context.attach(...)`` (not some other object's ``attach``)."""
    if isinstance(call.func, cst.Name):
        return call.func.value == name
    if isinstance(call.func, cst.Attribute) and call.func.attr.value == name:
        receiver = dotted_name(call.func.value) or ""
        return "context" in receiver.lower()
    return False


class HookAttach(Check):
    WHY = (
        "Nothing guarantees the after-hook runs for the request whose before-hook attached: a "
        "request that raises, is cancelled or times out in between skips `after_request`, so "
        "the token is never detached and its context stays current for whatever runs next in "
        "that task; and a detach that runs in a different context than its attach fails "
        "(`context.detach` only logs 'Failed to detach context')."
    )
    FIX_HINT = (
        "Attach and detach in one function with `try`/`finally`: an ASGI middleware, a "
        "decorator around the handler, or `with use_trace_context(request.headers):` in the "
        "handler."
    )
    PREFILTER = ("attach", "detach")
    VALID = (
        """
        from opentelemetry import context, propagate

        @app.before_request
        async def stamp_request():
            g.started = time.monotonic()

        @app.middleware("http")
        async def restore_context(request, call_next):
            token = context.attach(propagate.extract(request.headers))
            try:
                return await call_next(request)
            finally:
                context.detach(token)

        @app.before_request
        def scoped():
            token = context.attach(ctx)
            try:
                check_permissions()
            finally:
                context.detach(token)
        """,
    )
    INVALID = (
        """
        from opentelemetry import context, propagate

        @app.before_request
        async def restore_trace_context():
            g.otel_token = context.attach(propagate.extract(request.headers))  # <-

        @app.after_request
        async def detach_trace_context(response):
            context.detach(g.otel_token)
            return response
        """,
        """
        from opentelemetry.context import attach, detach

        def open_context():
            g.token = attach(extract(request.headers))  # <-

        def create_app():
            app.before_request(open_context)
        """,
        """
        from opentelemetry import context

        @bp.teardown_request
        def close_context(exc):
            context.detach(g.token)  # <-
        """,
    )

    def visit_Module(self, node: cst.Module) -> None:
        registered: dict[str, str] = {}
        for call in m.findall(node, m.Call()):
            assert isinstance(call, cst.Call)
            hook = terminal_name(call.func)
            first = positional(call, 0)
            if hook in _BEFORE | _AFTER and first and isinstance(first.value, cst.Name):
                registered[first.value.value] = hook
        functions = [
            statement
            for statement in _functions(node)
            if _hook_of(statement, registered) is not None
        ]
        before = [f for f in functions if _hook_of(f, registered) in _BEFORE]
        after = [f for f in functions if _hook_of(f, registered) in _AFTER]
        attaches = [
            (function, call)
            for function in before
            for call in calls_in(function)
            if _context_call(call, "attach") and not self._detached_in_finally(function)
        ]
        detach_hooks = [f for f in after if any(_context_call(c, "detach") for c in calls_in(f))]
        for function, call in attaches:
            where = (
                f"detached in hook `{detach_hooks[0].name.value}`"
                if detach_hooks
                else "not detached there"
            )
            self.report(
                call,
                f"context attached in request hook `{function.name.value}` is {where}; an error "
                "or cancellation in between leaves it attached",
            )
        if not attaches:
            for function in detach_hooks:
                for call in calls_in(function):
                    if _context_call(call, "detach"):
                        self.report(
                            call,
                            f"context detached in request hook `{function.name.value}` was "
                            "attached in another function",
                        )

    def _detached_in_finally(self, function: cst.FunctionDef) -> bool:
        return any(
            _context_call(call, "detach")
            for node in _finally_blocks(function)
            for call in calls_in(node)
        )


def _hook_of(function: cst.FunctionDef, registered: dict[str, str]) -> str | None:
    for decorator in function.decorators:
        expression = decorator.decorator
        if isinstance(expression, cst.Call):
            expression = expression.func
        name = terminal_name(expression)
        if name in _BEFORE | _AFTER:
            return name
    return registered.get(function.name.value)


def _functions(node: cst.CSTNode) -> list[cst.FunctionDef]:
    found: list[cst.FunctionDef] = []

    class _Collect(cst.CSTVisitor):
        def visit_FunctionDef(self, function: cst.FunctionDef) -> None:
            found.append(function)

    node.visit(_Collect())
    return found


def _finally_blocks(function: cst.FunctionDef) -> list[cst.Finally]:
    found: list[cst.Finally] = []

    class _Collect(cst.CSTVisitor):
        def visit_Finally(self, block: cst.Finally) -> None:
            found.append(block)

    function.visit(_Collect())
    return found
