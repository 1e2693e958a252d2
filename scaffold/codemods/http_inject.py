"""An outgoing httpx or aiohttp request to an internal host carries no ``traceparent`` header.

What it does: gives every request made through an ``httpx.AsyncClient`` / ``httpx.Client`` or
an ``aiohttp.ClientSession`` (built in the file, ``async with ... as client``, ``self.x = ...``,
or a parameter or attribute annotated with the class) and every ``httpx.get(...)``-style or
``aiohttp.request(...)`` call the current trace context in its headers, when the request goes
to a host of the platform; existing headers are kept. Requests are ``get``, ``post``, ``put``,
``patch``, ``delete``, ``head``, ``options``, ``request``, ``stream``, ``build_request`` and
``ws_connect``.

Where a request goes is read from its URL, followed back through the file: f-strings and
``+`` (the host is in the first part), ``.rstrip("/")``, local variables, ``self.x`` assigned
in any method, module constants, ``os.getenv("X")``, a relative path's client ``base_url``,
and a private function's (``_name``, or a nested one's) parameters to what its callers in the
file pass. Then:

- a literal host is internal when it is listed in ``internal-hosts``, or when no public DNS
  has it: a single label (``content_service``, a compose or Kubernetes service), ``localhost``,
  ``*.localhost``/``*.local``/``*.internal``/``*.svc``/``*.home.arpa``, a private or loopback
  address. Any other literal host (``https://api.openai.com/v1``) is a third party's: the
  request is left alone, silently;
- a URL from a setting, parameter or variable is internal when every name it comes from
  matches ``internal-url-names`` (by default ``*_service_url`` and ``*_service_base_url``, any
  case: ``settings.CONTENT_SERVICE_URL``, a ``content_service_url`` parameter); a path on a
  client a class is given goes where that client's base_url points, set elsewhere: the class
  name stands for it (``ContentServiceClient`` matches the default ``*ServiceClient``), the
  same naming convention as a ``*_SERVICE_URL`` setting;
- a request that sends an API key (a header or query key like ``x-api-key``, or a value read
  from a name like ``api_key``: ``f"Bearer {self.api_key}"``) goes to a third party's API and
  is left alone, unless its literal host is internal; an API key sent to a URL named like an
  internal service is reported (the signs disagree);
- anything else (``settings.BOS_URL``, a public method's ``url`` parameter, a path on a client
  passed in) is reported with the name it comes from, and left alone.

Clients an OpenTelemetry instrumentation propagates for are left alone: one passed to
``HTTPXClientInstrumentor.instrument_client``, one built with
``trace_configs=[create_trace_config()]``, and every client of a module that calls
``HTTPXClientInstrumentor().instrument()`` or ``AioHttpClientInstrumentor().instrument()``
(an instrumentor started in another module is not seen: ``ignore`` the rule for such a repo).

- ``headers=name`` where ``name`` is a dict the function builds itself: the context is injected
  into it just before the request (``inject_trace_context(headers)``).
- ``headers={...}`` or no ``headers``: with the kit the argument becomes
  ``headers=inject_trace_context({...})``; otherwise the dict is bound to a typed temporary
  (``trace_headers: dict[str, str] = {...}``) first, injected (the configured
  ``helper-module``'s ``inject_trace_context``, else OpenTelemetry's ``inject``), and passed.

Reported, not rewritten: headers from anywhere else (a parameter, an attribute, a call: they
may be shared between requests, so injecting into them in place is not safe), a request
passing ``**kwargs``, and a request where no statement can be inserted before it.

Why: the next service extracts its parent from the ``traceparent`` header; without it every
downstream call starts a new trace and the request's path through the platform is lost. A
correlation-id header does not join traces. The context also carries the correlation-id
baggage, and trace ids name the platform's requests: a third party (an LLM API, a payment
provider) has no use for either, so they go only to hosts the code shows to be internal, and
where it cannot tell, a person decides.

Example::

    headers = {"X-Correlation-ID": correlation_id}
    response = await self._client.post(f"{settings.CONTENT_SERVICE_URL}/v1/content",
                                       json=body, headers=headers)
    async with session.get("http://spellchecker_service:8080/health") as response:
        ...

Use instead::

    headers = {"X-Correlation-ID": correlation_id}
    inject_trace_context(headers)
    response = await self._client.post(f"{settings.CONTENT_SERVICE_URL}/v1/content",
                                       json=body, headers=headers)
    async with session.get("http://spellchecker_service:8080/health",
                           headers=inject_trace_context({})) as response:
        ...

Fix safety: safe. Request headers are merged with the client's default headers by both
libraries, so adding ``headers=`` drops none; only the propagation headers (``traceparent``,
``tracestate``, the correlation baggage) are added or replaced, and without a current span
nothing is added.

Options (``[tool.scaffold.options.http-inject]``):

- ``internal-hosts`` (list of host globs, default none): literal hosts that are the platform's
  own beside the built-in ones, e.g. ``["*.svc.cluster.local", "*.corp.example.com"]``.
- ``internal-url-names`` (list of name globs, default ``["*_service_url",
  "*_service_base_url", "*ServiceClient"]``, matched case-insensitively): settings,
  parameters, variables or environment variables whose URLs point at the platform's own
  services, and classes calling paths on a client they are given; e.g. add ``"BOS_URL"``.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import libcst as cst

from scaffold.codemods._arguments import append_arg
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
# requests whose URL is their second argument (the first is the method)
_METHOD_FIRST = frozenset({"request", "stream", "build_request"})
# string methods and functions that keep the host of the URL they are given
_KEEP_HOST_METHODS = frozenset({"rstrip", "strip", "lstrip", "removesuffix", "format"})
_KEEP_HOST_CALLS = frozenset({"str", "urljoin", "URL"})
_ENVIRONMENT_READS = frozenset({"getenv", "get"})  # os.getenv("X"), os.environ.get("X")
# host names no public DNS answers: one label (a container, a compose or Kubernetes service),
# and the special-use and private suffixes (RFC 6761, 6762, 8375; ICANN's ".internal";
# Kubernetes' "<service>.<namespace>.svc[.cluster.local]")
_PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".svc", ".home.arpa")
_API_KEY = re.compile(r"api[-_]?key", re.IGNORECASE)
# requests are left alone under these: they propagate the context already
_INSTRUMENTORS = frozenset({"HTTPXClientInstrumentor", "AioHttpClientInstrumentor"})
_TRACE_CONFIG = "create_trace_config"

CallRewrite = Callable[[cst.Call], cst.Call]


def _fresh_dict(value: cst.BaseExpression | None) -> bool:
    """A dict built right here (display, comprehension or ``dict(...)``): safe to inject into."""
    return isinstance(value, (cst.Dict, cst.DictComp)) or (
        isinstance(value, cst.Call) and code(value.func) in _FRESH_DICT_CALLS
    )


@dataclass
class _Where:
    """What the code shows about the host a URL goes to."""

    hosts: set[str] = field(default_factory=set)  # host names written out literally
    names: set[str] = field(default_factory=set)  # settings, parameters, variables it comes from
    relative: bool = False  # a path only: the client's base_url decides
    opaque: bool = False  # built in a way this rule does not follow
    elsewhere: bool = False  # a path on a client whose base_url is not in the file

    def add(self, other: _Where) -> _Where:
        self.hosts |= other.hosts
        self.names |= other.names
        self.relative = self.relative or other.relative
        self.opaque = self.opaque or other.opaque
        return self


@dataclass(frozen=True)
class _Scope:
    """Where the names of a URL expression are looked up: the function's statements and
    parameters (empty for a value assigned to an attribute, read in another method)."""

    places: tuple[Place, ...] = ()
    params: frozenset[str] = frozenset()
    function: cst.FunctionDef | None = None  # whose parameters ``params`` are
    outer: _Scope | None = None  # the enclosing function's, for a closure


def _params(function: cst.FunctionDef) -> list[cst.Param]:
    params = function.params
    return [*params.posonly_params, *params.params, *params.kwonly_params]


def _from_text(text: str) -> _Where:
    """A URL written out: its host, or a path that the client's base_url completes."""
    if "://" not in text:
        return _Where(relative=True)
    try:
        host = urlsplit(text).hostname
    except ValueError:
        host = None
    return _Where(hosts={host}) if host else _Where(opaque=True)


def _literal_prefix(fstring: cst.FormattedString) -> tuple[str, cst.BaseExpression | None]:
    """The text an f-string starts with, and the expression right after it (None: none)."""
    text = ""
    for part in fstring.parts:
        if isinstance(part, cst.FormattedStringText):
            text += part.value
        else:
            return text, cast(cst.FormattedStringExpression, part).expression
    return text, None


def _string(node: cst.BaseExpression) -> str | None:
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


class _Identifiers(FastVisitor):
    """Every identifier in some code, attribute names included (``self.api_key`` -> api_key)."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_Name(self, node: cst.Name) -> None:
        self.found.append(node.value)


def _identifiers(node: cst.CSTNode) -> list[str]:
    visitor = _Identifiers()
    node.visit(visitor)
    return visitor.found


Pair = tuple[cst.BaseExpression | None, cst.BaseExpression]  # a dict's key (None: **) and value


def _api_key_in(pairs: Iterable[Pair]) -> str | None:
    """How a header or query dict carries an API key: a key named like one, or a value read
    from a name like one (``f"Bearer {self.api_key}"``); None when it carries none."""
    for key, value in pairs:
        written = _string(key) if key is not None else None
        if written is not None and _API_KEY.search(written):
            return f"an API key (`{written}`)"
        for identifier in _identifiers(value):
            if _API_KEY.search(identifier):
                return f"an API key (`{identifier}`)"
    return None


def _pairs(value: cst.BaseExpression) -> list[Pair]:
    """(key, value) of a dict display or ``dict(...)`` call (key None: ``**`` or unknown)."""
    if isinstance(value, cst.Dict):
        return [(element.key if isinstance(element, cst.DictElement) else None, element.value)
                for element in value.elements]
    if isinstance(value, cst.Call):
        return [(cst.SimpleString(repr(arg.keyword.value)) if arg.keyword else None, arg.value)
                for arg in value.args]
    return [(None, value)]


class HttpInject(PropagationCodemod):
    PREFILTER = ("httpx", "aiohttp")
    SITE_KIND = "http-call"  # its rows in `scaffold report`
    GATE = SyntaxGate(names=CLIENT_CLASSES | MODULE_REQUESTS)
    OPTIONS = {
        # host globs (fnmatch, case-insensitive) that are the platform's own
        "internal_hosts": (),
        # globs of the settings, parameters and variables a URL of an internal host comes from,
        # and of the classes that call paths on a client they are given
        "internal_url_names": ("*_service_url", "*_service_base_url", "*ServiceClient"),
    }

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._attributes: set[str] = set()  # self.x holding a client, anywhere in the file
        self._module_clients: set[str] = set()
        self._calls: dict[cst.Call, CallRewrite] = {}
        self._injected: set[tuple[int, str]] = set()  # (statement, headers name) done
        # what the file assigns, for following a URL back to where it is written
        self._attribute_values: dict[str, list[cst.BaseExpression | None]] = {}
        self._module_values: dict[str, list[cst.BaseExpression | None]] = {}
        self._builds: dict[str, cst.Call] = {}  # client name -> the call that built it
        self._instrumented: set[str] = set()  # clients an instrumentation propagates for
        self._all_instrumented = False  # an instrumentor patches every client of the file
        # calls of the file's functions by name, with the function each is made in
        self._call_sites: dict[str, list[tuple[cst.Call, cst.FunctionDef | None]]] = {}
        self._mentions: Counter[str] = Counter()  # every identifier of the file, counted
        self._scopes: dict[int, _Scope] = {}
        self._module_scope = _Scope()
        self._enclosing: list[_Scope] = []  # the scopes of the functions being visited
        self._classes: list[str] = []  # the classes being visited, innermost last

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
        node.visit(_Assigned(self))
        for statement in node.body:
            for name, value in assignments(statement):
                self._module_values.setdefault(name, []).append(value)
        self._module_scope = _Scope(tuple(walk(node.body)))
        self._scan(node.body, set(self._module_clients), self._module_scope)

    def _note_build(self, name: str, value: cst.CSTNode | None) -> None:
        """Remember the call that built client ``name``, and whether it propagates itself."""
        if not isinstance(value, cst.Call) or not self._builds_client(value):
            return
        self._builds[name] = value
        configs = keyword(value, "trace_configs")
        if configs is not None and any(last_name(inner.func) == _TRACE_CONFIG
                                       for inner in collect(configs.value).calls):
            self._instrumented.add(name)

    def _client_params(self, function: cst.FunctionDef) -> set[str]:
        params = (*function.params.posonly_params, *function.params.params,
                  *function.params.kwonly_params)
        return {param.name.value for param in params
                if param.annotation is not None and self._is_client_class(param.annotation)}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        clients = set(self._module_clients) | self._client_params(node)
        scope = self._scope_of(node)
        if self._enclosing:  # a closure reads the names of the functions around it
            scope = self._scopes[id(node)] = _Scope(scope.places, scope.params, node,
                                                    self._enclosing[-1])
        self._enclosing.append(scope)
        places = list(scope.places)
        for place in places:
            for name, value in assignments(place.statement):
                if self._builds_client(value):
                    clients.add(name)
                    self._note_build(name, value)
            if isinstance(place.statement, cst.With):
                for item in place.statement.items:
                    if item.asname is not None and self._builds_client(item.item):
                        bound = dotted_name(item.asname.name)
                        if bound:
                            clients.add(bound)
                            self._note_build(bound, item.item)
        self._scan(node.body, clients, scope)

    def leave_FunctionDef(self, original_node: cst.FunctionDef,
                          updated_node: cst.FunctionDef) -> cst.FunctionDef:
        self._enclosing.pop()
        return updated_node

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._classes.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef,
                       updated_node: cst.ClassDef) -> cst.ClassDef:
        self._classes.pop()
        return updated_node

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

    def _scan(self, body, clients: set[str], scope: _Scope) -> None:
        places = list(walk(body))
        for place in places:
            for call in collect(*header(place.statement)).calls:
                if self._is_request(call, clients):
                    self._request(call, place, places, scope)

    # -- where a request goes --

    def _receiver(self, call: cst.Call) -> str | None:
        return dotted_name(call.func.value) if isinstance(call.func, cst.Attribute) else None

    def _propagates_already(self, call: cst.Call) -> bool:
        """An instrumentation sends the context for this request's client."""
        return self._all_instrumented or self._receiver(call) in self._instrumented

    def _url(self, call: cst.Call) -> cst.BaseExpression | None:
        func = call.func
        method = func.attr.value if isinstance(func, cst.Attribute) else last_name(func)
        first = 1 if method in _METHOD_FIRST else 0
        given = positional(call, first, "url")
        return given.value if given is not None else None

    def _build_of(self, call: cst.Call) -> cst.Call | None:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Call):
            return func.value if self._builds_client(func.value) else None
        receiver = self._receiver(call)
        return self._builds.get(receiver) if receiver else None

    def _where(self, expr: cst.BaseExpression, scope: _Scope, depth: int = 0) -> _Where:
        """Follow a URL expression back to the text or names its host comes from."""
        if depth > 8:
            return _Where(opaque=True)
        deeper = depth + 1
        text = _string(expr)
        if text is not None:
            return _from_text(text)
        if isinstance(expr, cst.FormattedString):
            prefix, following = _literal_prefix(expr)
            if not prefix:
                return (self._where(following, scope, deeper) if following is not None
                        else _Where(relative=True))
            if "://" not in prefix:
                return _Where(relative=True) if prefix.startswith("/") else _Where(opaque=True)
            authority = prefix.split("://", 1)[1].rpartition("@")[2]
            host = re.split(r"[/?#:]", authority, maxsplit=1)[0]
            complete = following is None or len(host) < len(authority)
            return _Where(hosts={host.lower()}) if host and complete else _Where(opaque=True)
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            return self._where(expr.left, scope, deeper)
        if isinstance(expr, cst.BooleanOperation):
            return self._where(expr.left, scope, deeper).add(
                self._where(expr.right, scope, deeper))
        if isinstance(expr, cst.IfExp):
            return self._where(expr.body, scope, deeper).add(
                self._where(expr.orelse, scope, deeper))
        if isinstance(expr, cst.Call):
            return self._where_call(expr, scope, deeper)
        if isinstance(expr, cst.Subscript):  # os.environ["X"], config["X"]
            index = expr.slice[0].slice if len(expr.slice) == 1 else None
            key = _string(index.value) if isinstance(index, cst.Index) else None
            return _Where(names={key}) if key else _Where(opaque=True)
        if isinstance(expr, cst.Name) and expr.value == "None":
            return _Where()  # (a caller passing nothing: the others decide)
        if isinstance(expr, (cst.Name, cst.Attribute)):
            values = self._values_of(expr, scope)
            if values is None:
                return _Where(names={cast(str, last_name(expr))})
            found = _Where()
            for value, where in values:
                found.add(self._where(value, where, deeper) if value is not None
                          else _Where(opaque=True))
            return found
        return _Where(opaque=True)

    def _values_of(self, expr: cst.Name | cst.Attribute, scope: _Scope
                   ) -> list[tuple[cst.BaseExpression | None, _Scope]] | None:
        """What a name or ``self.x`` may hold, each with the scope its names are read in:
        its assignments (in the function, an enclosing one, the module, or any method for an
        attribute), or for a private function's parameter what its callers in the file pass.
        None when nothing in the file says (an import, a setting, a public parameter)."""
        if isinstance(expr, cst.Attribute):
            dotted = dotted_name(expr)
            values = self._attribute_values.get(dotted) if dotted else None
            return [(value, _Scope()) for value in values] if values else None
        name = expr.value
        here: _Scope | None = scope
        while here is not None:
            if name in here.params:
                return self._passed(name, here)
            local = [value for place in here.places
                     for target, value in assignments(place.statement) if target == name]
            if local:
                return [(value, here) for value in local]
            here = here.outer
        module = self._module_values.get(name)
        return [(value, _Scope()) for value in module] if module else None

    def _passed(self, name: str, scope: _Scope
                ) -> list[tuple[cst.BaseExpression | None, _Scope]] | None:
        """What the callers of a private function (``_name``, or one nested in another) pass
        for its parameter ``name``: all its callers are in this file. None for any other."""
        function = scope.function
        if function is None:
            return None
        own = function.name.value
        private = (own.startswith("_") and not own.endswith("__")) or scope.outer is not None
        sites = self._call_sites.get(own, [])
        if not private or not sites or self._mentions[own] > len(sites) + 1:
            return None  # (mentioned otherwise too: passed as a callback, called elsewhere)
        params = _params(function)
        param = next(param for param in params if param.name.value == name)
        positional_params = [*function.params.posonly_params, *function.params.params]
        found: list[tuple[cst.BaseExpression | None, _Scope]] = []
        for call, caller in sites:
            ordered = positional_params
            if isinstance(call.func, cst.Attribute) and ordered and ordered[0].name.value in (
                    "self", "cls"):
                ordered = ordered[1:]
            index = next((number for number, item in enumerate(ordered) if item is param), None)
            if any(arg.star for arg in call.args):
                found.append((None, scope))
                continue
            given = (positional(call, index, name) if index is not None
                     else keyword(call, name))
            if given is not None:
                found.append((given.value, self._scope_of(caller)))
            else:
                found.append((param.default, _Scope()) if param.default is not None
                             else (None, scope))
        return found

    def _scope_of(self, function: cst.FunctionDef | None) -> _Scope:
        """The scope a call in ``function`` (None: the module) reads its names in."""
        if function is None:
            return self._module_scope
        key = id(function)
        if key not in self._scopes:
            self._scopes[key] = _Scope(tuple(walk(function.body)),
                                       frozenset(param.name.value for param in _params(function)),
                                       function)
        return self._scopes[key]

    def _where_call(self, call: cst.Call, scope: _Scope, depth: int) -> _Where:
        func = call.func
        if isinstance(func, cst.Attribute) and func.attr.value in _KEEP_HOST_METHODS:
            return self._where(func.value, scope, depth)
        called = dotted_name(func) or ""
        first = call.args[0].value if call.args and not call.args[0].star else None
        if first is not None and (called.endswith(("getenv", "environ.get"))):
            variable = _string(first)
            return _Where(names={variable}) if variable else _Where(opaque=True)
        if first is not None and last_name(func) in _KEEP_HOST_CALLS:
            return self._where(first, scope, depth)
        return _Where(opaque=True)

    def _internal_host(self, host: str) -> bool:
        """A host of the platform: configured in internal-hosts, or one no public DNS has."""
        host = host.lower().rstrip(".").strip("[]")
        if any(fnmatch.fnmatchcase(host, pattern.lower())
               for pattern in self.options["internal_hosts"]):
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return "." not in host or host == "localhost" or host.endswith(_PRIVATE_SUFFIXES)
        return address.is_private or address.is_loopback or address.is_link_local

    def _internal_name(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name.lower(), pattern.lower())
                   for pattern in self.options["internal_url_names"])

    def _dict_pairs(self, expr: cst.BaseExpression, scope: _Scope, depth: int = 0
                    ) -> list[Pair]:
        """The (key, value) pairs a headers or params argument may hold, followed through a
        local or attribute it is assigned to, and the ``name[key] = value`` lines after."""
        name = dotted_name(expr)
        if name is None or depth > 4:
            return _pairs(expr)
        found: list[Pair] = []
        for value, where in self._values_of(cast(cst.Name | cst.Attribute, expr), scope) or ():
            if value is not None:
                found.extend(self._dict_pairs(value, where, depth + 1))
        for place in scope.places:
            statement = place.statement
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if isinstance(small, cst.Assign):
                    for target in small.targets:
                        item = target.target
                        if (isinstance(item, cst.Subscript) and dotted_name(item.value) == name
                                and len(item.slice) == 1
                                and isinstance(item.slice[0].slice, cst.Index)):
                            found.append((item.slice[0].slice.value, small.value))
        return found

    def _credential(self, call: cst.Call, scope: _Scope) -> str | None:
        """An API key this request (or its client's defaults) sends: a third party's sign."""
        build = self._build_of(call)
        for source, own in ((call, scope), (build, _Scope())):
            if source is None:
                continue
            for name in ("headers", "params"):
                given = keyword(source, name)
                if given is not None:
                    found = _api_key_in(self._dict_pairs(given.value, own))
                    if found:
                        return found
        return None

    def _destination(self, call: cst.Call, scope: _Scope) -> tuple[bool, str | None]:
        """Whether the request goes to an internal host (then it gets the context), and when
        not, why it is reported (None: a third party's, left alone without a word)."""
        url = self._url(call)
        where = self._where(url, scope) if url is not None else _Where(opaque=True)
        if where.relative:
            build = self._build_of(call)
            base = None
            if build is not None:
                given = keyword(build, "base_url") or positional(build, 0)
                base = given.value if given is not None else None
            if base is None and self._classes:
                # a client given to a class: what the class is named after is where it goes
                where.names.add(self._classes[-1])
            elif base is None:
                where.opaque = where.elsewhere = True
            else:
                where.add(self._where(base, _Scope()))
        if any(not self._internal_host(host) for host in where.hosts):
            return False, None  # a literal external host: no context for a third party
        names = sorted(where.names)
        shown = ", ".join(f"`{name}`" for name in names)
        credential = self._credential(call, scope)
        internal_names = [name for name in names if self._internal_name(name)]
        if credential is not None:
            if where.hosts and not names and not where.opaque:
                return True, None  # a host the repo says is its own
            if internal_names:
                return False, (f"this request sends {credential}, as third-party APIs ask, "
                               f"to a host from {shown}: no trace context was added; inject "
                               "it by hand if that host is internal")
            return False, None  # a third party's API: no context for it
        if (where.hosts or names) and not where.opaque and len(internal_names) == len(names):
            return True, None
        if names:
            return False, (f"this request sends no traceparent, and its host comes from {shown}, "
                           "which may be a third party's: to add the context, list that name in "
                           "internal-url-names (or its host in internal-hosts) under "
                           "[tool.scaffold.options.http-inject], or inject it by hand")
        if where.elsewhere:
            return False, ("this request sends no traceparent, and it goes to a path on a client "
                           "whose base_url is set elsewhere: inject the trace context by hand if "
                           "that host is internal")
        return False, ("this request sends no traceparent, and where it goes is not visible "
                       "here: inject the trace context by hand if its host is internal")

    # -- rewriting --

    def _request(self, call: cst.Call, place: Place, places: list[Place],
                 scope: _Scope) -> None:
        given = keyword(call, "headers")
        if given is not None and any(self.calls_one_of(inner, INJECT_NAMES)
                                     for inner in collect(given.value).calls):
            self.record_correct(call, "its headers are injected")
            return
        if given is not None and isinstance(given.value, cst.Name) and any(
                self._injects_into(other.statement, given.value.value) and other.dominates(place)
                for other in places):
            self.record_correct(call, "its headers are injected into on a line before")
            return  # injected into on a line before
        if self._propagates_already(call):
            self.record_correct(call, "its client is instrumented")
            return
        internal, reason = self._destination(call, scope)
        if not internal:
            if reason is not None:
                self.report(call, reason)
            else:
                self.record_skipped(call, "a third party's host: it gets no trace context")
            return
        if any(arg.star == "**" for arg in call.args):
            self.report(call, "this request passes **kwargs, which may hold its headers: "
                        "inject the trace context into them where they are built")
            return
        if given is not None and isinstance(given.value, cst.Name):
            self._inject_into_name(call, given.value.value, place, places, set(scope.params))
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
                f"{local}: dict[str, str] = {carrier}\n{self._inject()}({local})\n"))
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
            if (self.calls_one_of(inner, INJECT_NAMES) and carrier is not None
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


class _Assigned(FastVisitor):
    """What a file assigns to attributes (``self.base_url = ...``), where its functions are
    called, and which clients an instrumentation propagates for (``instrument_client(c)``,
    ``...Instrumentor().instrument()``)."""

    def __init__(self, codemod: HttpInject) -> None:
        self.codemod = codemod
        self.functions: list[cst.FunctionDef] = []

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.functions.append(node)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.functions.pop()

    def visit_Name(self, node: cst.Name) -> None:
        self.codemod._mentions[node.value] += 1

    def _bind(self, target: cst.BaseExpression, value: cst.BaseExpression | None) -> None:
        name = dotted_name(target)
        if name is None:
            return
        if isinstance(target, cst.Attribute):
            self.codemod._attribute_values.setdefault(name, []).append(value)
        if name in self.codemod._attributes or name in self.codemod._module_clients:
            self.codemod._note_build(name, value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._bind(target.target, node.value)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None and isinstance(node.asname.name, (cst.Name, cst.Attribute)):
            self._bind(node.asname.name, node.item)

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if isinstance(func, cst.Name) or (isinstance(func, cst.Attribute) and isinstance(
                func.value, cst.Name) and func.value.value in ("self", "cls")):
            callee = cast(str, last_name(func))
            self.codemod._call_sites.setdefault(callee, []).append(
                (node, self.functions[-1] if self.functions else None))
        if not isinstance(func, cst.Attribute):
            return
        owner = func.value.func if isinstance(func.value, cst.Call) else func.value
        if last_name(owner) not in _INSTRUMENTORS:
            return
        if func.attr.value == "instrument":
            self.codemod._all_instrumented = True
        elif func.attr.value == "instrument_client" and node.args:
            client = dotted_name(node.args[0].value)
            if client:
                self.codemod._instrumented.add(client)
