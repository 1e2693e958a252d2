"""An outgoing httpx or aiohttp request carries no ``traceparent`` header.

What it does: gives every request made through an ``httpx.AsyncClient`` / ``httpx.Client`` or
an ``aiohttp.ClientSession`` (built in the file, ``async with ... as client``, ``self.x = ...``,
or a parameter or attribute annotated with the class) and every ``httpx.get(...)``-style or
``aiohttp.request(...)`` call the current trace context in its headers; existing headers are
kept. Requests are ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``, ``options``,
``request``, ``stream``, ``build_request`` and ``ws_connect``.

- ``headers=name`` where ``name`` is a dict the function builds itself: the context is injected
  into it just before the request (``inject_trace_context(headers)``).
- ``headers={...}`` or no ``headers``: with the kit the argument becomes
  ``headers=inject_trace_context({...})``; otherwise the dict is bound to ``trace_headers``
  first, injected (the configured ``helper-module``'s ``inject_trace_context``, else
  OpenTelemetry's ``inject``), and passed.

Reported, not rewritten: headers from anywhere else (a parameter, an attribute, a call: they
may be shared between requests, so injecting into them in place is not safe), a request
passing ``**kwargs``, and a request where no statement can be inserted before it.

Why: the next service extracts its parent from the ``traceparent`` header; without it every
downstream call starts a new trace and the request's path through the platform is lost. A
correlation-id header does not join traces.

Example::

    headers = {"X-Correlation-ID": correlation_id}
    response = await self._client.post("/v1/content", json=body, headers=headers)
    async with session.get(url) as response:
        ...

Use instead::

    headers = {"X-Correlation-ID": correlation_id}
    inject_trace_context(headers)
    response = await self._client.post("/v1/content", json=body, headers=headers)
    async with session.get(url, headers=inject_trace_context({})) as response:
        ...

Fix safety: safe. Request headers are merged with the client's default headers by both
libraries, so adding ``headers=`` drops none; only the propagation headers (``traceparent``,
``tracestate``, the correlation baggage) are added or replaced, and without a current span
nothing is added.
"""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

from scaffold.codemods._layout import append_arg
from scaffold.codemods._propagation import (
    INJECT_NAMES,
    Place,
    PropagationCodemod,
    assignments,
    code,
    collect,
    header,
    keyword,
    last_name,
    parse_statements,
    positional,
    walk,
)
from scaffold.codemods.base import dotted_name
from scaffold.engine.dispatch import FastVisitor
from scaffold.engine.gates import SyntaxGate

CLIENT_CLASSES = frozenset({
    "httpx.AsyncClient", "httpx.Client", "httpx._client.AsyncClient", "httpx._client.Client",
    "aiohttp.ClientSession", "aiohttp.client.ClientSession",
})
REQUEST_METHODS = frozenset({
    "get", "post", "put", "patch", "delete", "head", "options", "request", "stream",
    "build_request", "ws_connect",
})
MODULE_REQUESTS = frozenset(
    {f"httpx.{method}" for method in REQUEST_METHODS - {"build_request", "ws_connect"}}
    | {f"httpx._api.{method}" for method in REQUEST_METHODS - {"build_request", "ws_connect"}}
    | {"aiohttp.request", "aiohttp.client.request"}
)
_FRESH_DICT_CALLS = frozenset({"dict"})

CallRewrite = Callable[[cst.Call], cst.Call]


def _fresh_dict(value: cst.BaseExpression | None) -> bool:
    """A dict built right here (display, comprehension or ``dict(...)``): safe to inject into."""
    return isinstance(value, (cst.Dict, cst.DictComp)) or (
        isinstance(value, cst.Call) and code(value.func) in _FRESH_DICT_CALLS
    )


class HttpInject(PropagationCodemod):
    PREFILTER = ("httpx", "aiohttp")
    GATE = SyntaxGate(names=CLIENT_CLASSES | MODULE_REQUESTS)

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._attributes: set[str] = set()  # self.x holding a client, anywhere in the file
        self._module_clients: set[str] = set()
        self._calls: dict[cst.Call, CallRewrite] = {}
        self._injected: set[tuple[int, str]] = set()  # (statement, headers name) done

    def _is_client_class(self, node: cst.CSTNode) -> bool:
        """``node`` names (or, in an annotation, mentions) an HTTP client class."""
        codemod = self
        found = False

        class _Names(FastVisitor):
            def visit_Name(self, name: cst.Name) -> None:
                nonlocal found
                found = found or bool(codemod.qualified_names(name) & CLIENT_CLASSES)

            def visit_Attribute(self, attribute: cst.Attribute) -> None:
                nonlocal found
                found = found or bool(codemod.qualified_names(attribute) & CLIENT_CLASSES)

        node.visit(_Names())
        return found

    def _builds_client(self, value: cst.CSTNode | None) -> bool:
        return isinstance(value, cst.Call) and self._is_client_class(value.func)

    # -- which names hold clients --

    def visit_Module(self, node: cst.Module) -> None:
        codemod = self

        class _Clients(FastVisitor):
            def __init__(self) -> None:
                self.params: list[set[str]] = []

            def visit_FunctionDef(self, function: cst.FunctionDef) -> None:
                self.params.append(codemod._client_params(function))

            def leave_FunctionDef(self, function: cst.FunctionDef) -> None:
                self.params.pop()

            def visit_ClassDef(self, cls: cst.ClassDef) -> None:
                for statement in getattr(cls.body, "body", ()):
                    if isinstance(statement, cst.SimpleStatementLine):
                        for small in statement.body:
                            if (isinstance(small, cst.AnnAssign)
                                    and isinstance(small.target, cst.Name)
                                    and codemod._is_client_class(small.annotation)):
                                codemod._attributes.add(f"self.{small.target.value}")

            def _bind(self, target: cst.CSTNode, value: cst.CSTNode | None,
                      annotation: cst.Annotation | None = None) -> None:
                name = dotted_name(target)
                if name is None:
                    return
                is_client = codemod._builds_client(value) or (
                    annotation is not None and codemod._is_client_class(annotation)
                ) or bool(self.params and value is not None
                          and dotted_name(value) in self.params[-1])
                if not is_client:
                    return
                if isinstance(target, cst.Attribute):
                    codemod._attributes.add(name)
                elif not self.params:
                    codemod._module_clients.add(name)

            def visit_Assign(self, assign: cst.Assign) -> None:
                for target in assign.targets:
                    self._bind(target.target, assign.value)

            def visit_AnnAssign(self, assign: cst.AnnAssign) -> None:
                self._bind(assign.target, assign.value, assign.annotation)

            def visit_WithItem(self, item: cst.WithItem) -> None:
                if item.asname is not None and not self.params:
                    self._bind(item.asname.name, item.item)

        node.visit(_Clients())
        self._scan(node.body, set(self._module_clients), params=set())

    def _client_params(self, function: cst.FunctionDef) -> set[str]:
        params = (*function.params.posonly_params, *function.params.params,
                  *function.params.kwonly_params)
        return {param.name.value for param in params
                if param.annotation is not None and self._is_client_class(param.annotation)}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        clients = set(self._module_clients) | self._client_params(node)
        params = {param.name.value for param in (
            *node.params.posonly_params, *node.params.params, *node.params.kwonly_params)}
        places = list(walk(node.body))
        for place in places:
            for name, value in assignments(place.statement):
                if self._builds_client(value):
                    clients.add(name)
            if isinstance(place.statement, cst.With):
                for item in place.statement.items:
                    if item.asname is not None and self._builds_client(item.item):
                        bound = dotted_name(item.asname.name)
                        if bound:
                            clients.add(bound)
        self._scan(node.body, clients, params)

    # -- finding requests --

    def _is_request(self, call: cst.Call, clients: set[str]) -> bool:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in REQUEST_METHODS:
            receiver = dotted_name(func.value)
            if receiver in clients or receiver in self._attributes:
                return True
            if isinstance(func.value, cst.Call) and self._builds_client(func.value):
                return True
        return bool(self.qualified_names(func) & MODULE_REQUESTS)

    def _scan(self, body, clients: set[str], params: set[str]) -> None:
        places = list(walk(body))
        for place in places:
            for call in collect(*header(place.statement)).calls:
                if self._is_request(call, clients):
                    self._request(call, place, places, params)

    # -- rewriting --

    def _request(self, call: cst.Call, place: Place, places: list[Place],
                 params: set[str]) -> None:
        if any(arg.star == "**" for arg in call.args):
            self.report(call, "this request passes **kwargs, which may hold its headers: "
                        "inject the trace context into them where they are built")
            return
        given = keyword(call, "headers")
        if given is not None and any(last_name(inner.func) in INJECT_NAMES
                                     for inner in collect(given.value).calls):
            return
        if given is not None and isinstance(given.value, cst.Name):
            self._inject_into_name(call, given.value.value, place, places, params)
        elif given is None or isinstance(given.value, cst.Dict):
            self._inject_into_argument(call, given, place)
        else:
            self.report(call, f"headers come from `{code(given.value)}`, which other requests "
                        "may share: copy it, inject the trace context into the copy, pass that")

    def _inject_into_name(self, call: cst.Call, name: str, place: Place, places: list[Place],
                          params: set[str]) -> None:
        bound = [value for other in places for target, value in assignments(other.statement)
                 if target == name]
        if name in params or not bound or not all(_fresh_dict(value) for value in bound):
            self.report(call, f"headers come from `{name}`, which other requests may share: "
                        "copy it, inject the trace context into the copy, pass that")
            return
        if any(self._injects_into(other.statement, name) and other.dominates(place)
               for other in places):
            return
        if (id(place.statement), name) in self._injected:
            return
        if not place.in_block:
            self.report(call, "this request sends no traceparent; inject into its headers on "
                        "a line of its own")
            return
        if not self.record_change(call, "the request now carries the current trace context "
                                  f"in `{name}` (existing headers kept)"):
            return
        self._injected.add((id(place.statement), name))
        self.insert_before(place.statement, parse_statements(f"{self._inject()}({name})\n"))

    def _inject_into_argument(self, call: cst.Call, given: cst.Arg | None, place: Place) -> None:
        carrier = code(given.value) if given is not None else "{}"
        in_argument = self.kit_function_available  # the kit's inject returns its carrier
        if not in_argument and not place.in_block:
            self.report(call, "this request sends no traceparent; inject into its headers on "
                        "a line of its own")
            return
        if not self.record_change(call, "the request now carries the current trace context "
                                  "in its headers (existing headers kept)"):
            return
        if in_argument:
            value = cst.parse_expression(f"{self.helper('inject_trace_context')}({carrier})")
        else:
            local = self._local_name("trace_headers")
            self.insert_before(place.statement, parse_statements(
                f"{local} = {carrier}\n{self._inject()}({local})\n"))
            value = cst.Name(local)
        self._calls[call] = lambda updated: _with_headers(updated, value)

    def _inject(self) -> str:
        return self.helper("inject_trace_context") or self.otel("opentelemetry.propagate",
                                                               "inject")

    def _local_name(self, wanted: str) -> str:
        name, number = wanted, 1
        while name in self._bound_names():
            number += 1
            name = f"{wanted}_{number}"
        return name

    def _injects_into(self, statement: cst.BaseStatement, name: str) -> bool:
        if not isinstance(statement, cst.SimpleStatementLine):
            return False
        for inner in collect(statement).calls:
            carrier = positional(inner, 0, "carrier")
            if (last_name(inner.func) in INJECT_NAMES and carrier is not None
                    and code(carrier.value) == name):
                return True
        return False

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.Call:
        rewrite = self._calls.get(original_node)
        return updated_node if rewrite is None else rewrite(updated_node)


def _with_headers(call: cst.Call, value: cst.BaseExpression) -> cst.Call:
    """``call`` passing ``headers=value``: the existing argument replaced, or one appended."""
    args = list(call.args)
    for index, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == "headers":
            args[index] = arg.with_changes(value=value)
            return call.with_changes(args=args)
    new = cst.Arg(value=value, keyword=cst.Name("headers"),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    return append_arg(call, new)
