"""An outgoing httpx or aiohttp request to an internal host carries no ``traceparent`` header.

What it does: gives every request made through an ``httpx.AsyncClient`` / ``httpx.Client`` or
an ``aiohttp.ClientSession`` (built in the file, ``async with ... as client``, ``self.x = ...``,
or a parameter or attribute annotated with the class) and every ``httpx.get(...)``-style or
``aiohttp.request(...)`` call the current trace context in its headers, when the request goes
to a host of the platform; existing headers are kept. Requests are ``get``, ``post``, ``put``,
``patch``, ``delete``, ``head``, ``options``, ``request``, ``stream``, ``build_request`` and
``ws_connect``.

Where a request goes is read from its URL, followed back through the file: f-strings, ``+``
and adjacent strings (the host is in the first part), ``.rstrip("/")``, local variables,
``self.x`` assigned in any method (read there: ``__init__``'s parameters), module constants
and those imported from another module of the repo, ``os.getenv("X", "http://default")``, a
setting's declared default (``BOS_URL: str = Field(default="http://bos:5000")`` in the class
of ``settings``, ``self.settings`` or a ``settings: Settings`` parameter), a relative path's
client ``base_url``, a private function's (``_name``, or a nested one's) parameters to what
its callers in the file pass (also through a forwarder like a circuit breaker's
``call(func, *args, **kwargs)`` that the repo shows calling only ``func(*args, **kwargs)``),
and a public method's parameters to what every call of it the repo model can name passes:
calls through its class, a base or a ``Protocol`` it implements (a route given a
``FromDishka[HttpClientProtocol]``), and for ``__init__`` the class's construction (not
followed when the class has subclasses). So an implementation of a client protocol injects
once, for every call made through the protocol, when all those calls go to internal hosts;
calls through the protocol then need nothing. Then:

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

Requests of a command-line program are left alone (skipped) when it never sets tracing up: a
module importing ``typer`` or ``click``, or ``argparse`` under a ``__main__`` guard, where no
module of its package reaches tracing set-up (no span is ever current there).

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
- headers that other requests may share (a parameter, an attribute, a helper's result): a
  copy is injected into and passed instead, so the caller's dict is never written to:
  ``trace_headers = dict(headers or {})`` when it may be None (annotated ``dict[...] | None``
  or defaulting to None), ``dict(headers)`` when it is always a dict (annotated ``dict[...]``,
  assigned dict displays, or returned by a repo function annotated ``-> dict[...]``); with the
  kit, ``headers=inject_trace_context(dict(...))`` in the argument itself.

Reported, not rewritten: shared headers not shown to be a dict (unannotated, a ``Mapping``,
which may be multi-valued headers), a call's result without the kit (copying it on a line
before would run it before the request's other arguments), a request passing ``**kwargs``,
and a request where no statement can be inserted before it.

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
libraries, so adding ``headers=`` drops none (and ``{}`` merges like None); only the
propagation headers (``traceparent``, ``tracestate``, the correlation baggage) are added or
replaced, and without a current span nothing is added. Shared dicts are copied, never
changed.

Options (``[tool.scaffold.options.http-inject]``):

- ``internal-hosts`` (list of host globs, default none): literal hosts that are the platform's
  own beside the built-in ones, e.g. ``["*.svc.cluster.local", "*.corp.example.com"]``.
- ``internal-url-names`` (list of name globs, default ``["*_service_url",
  "*_service_base_url", "*ServiceClient"]``, matched case-insensitively): settings,
  parameters, variables or environment variables whose URLs point at the platform's own
  services, and classes calling paths on a client they are given; e.g. add ``"BOS_URL"``.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    statements_of,
    walk,
)
from scaffold.codemods.base import dotted_name
from scaffold.engine.fast import FastVisitor
from scaffold.engine.gates import SyntaxGate
from scaffold.repo import LOCALS, MAIN_CODE, MODULE_CODE, CallSite, FunctionInfo, ParamKind

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
_FIELD_CALLS = frozenset({"Field", "field"})  # pydantic's, dataclasses': their default
_DICT_TYPES = frozenset({"dict", "Dict"})  # annotations of headers copied by ``dict(...)``
# what a headers expression holds: always a dict, a dict or None, None
_DICT, _OPTIONAL, _NONE = "dict", "optional", "none"
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


def _annotation_kind(annotation: cst.BaseExpression) -> str | None:
    """``dict[str, str]`` -> ``_DICT``, ``dict[str, str] | None`` / ``Optional[dict]`` ->
    ``_OPTIONAL``; anything else (a ``Mapping``, a string annotation) None."""
    if isinstance(annotation, cst.BinaryOperation) and isinstance(annotation.operator,
                                                                  cst.BitOr):
        sides = [annotation.left, annotation.right]
        kinds = {_NONE if isinstance(side, cst.Name) and side.value == "None"
                 else _annotation_kind(side) for side in sides}
        return _OPTIONAL if kinds == {_DICT, _NONE} else None
    if isinstance(annotation, cst.Subscript) and last_name(annotation.value) == "Optional":
        inner = annotation.slice[0].slice if len(annotation.slice) == 1 else None
        if isinstance(inner, cst.Index) and _annotation_kind(inner.value) == _DICT:
            return _OPTIONAL
        return None
    base = annotation.value if isinstance(annotation, cst.Subscript) else annotation
    return _DICT if last_name(base) in _DICT_TYPES else None


def _param_kind(param: cst.Param) -> str | None:
    """What a parameter holds, from its annotation (``= None`` makes it optional)."""
    if param.annotation is None:
        return None
    kind = _annotation_kind(param.annotation.annotation)
    default = param.default
    if kind == _DICT and isinstance(default, cst.Name) and default.value == "None":
        return _OPTIONAL
    return kind


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
    declared: bool = False  # a host from a default a deployment may override

    def add(self, other: _Where) -> _Where:
        self.hosts |= other.hosts
        self.names |= other.names
        self.relative = self.relative or other.relative
        self.opaque = self.opaque or other.opaque
        self.declared = self.declared or other.declared
        return self


@dataclass(frozen=True)
class _Scope:
    """Where the names of a URL expression are looked up: the function's statements and
    parameters (empty for a value assigned to an attribute, read in another method)."""

    places: tuple[Place, ...] = ()
    params: frozenset[str] = frozenset()
    function: cst.FunctionDef | None = None  # whose parameters ``params`` are
    outer: _Scope | None = None  # the enclosing function's, for a closure
    # the codemod that reads another module's names (a caller's, through the repo model)
    reader: HttpInject | None = field(default=None, compare=False)


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


CLI_FRAMEWORKS = frozenset({"typer", "click"})


class HttpInject(PropagationCodemod):
    USES_REPO = True  # headers a function of another module builds; protocol implementations
    PREFILTER = ("httpx", "aiohttp")
    SITE_KIND = "http-call"  # its rows in `scaffold report`
    GATE = SyntaxGate(names=CLIENT_CLASSES | MODULE_REQUESTS)
    SLICE_WORDS = frozenset()  # a call site names its client, or what holds one
    SLICE_CALLS = True  # headers a helper builds; what callers hand a wrapper
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
        # self.x -> (value, the method assigning it)
        self._attribute_values: dict[str, list[tuple[cst.BaseExpression | None,
                                                     cst.FunctionDef | None]]] = {}
        self._module_values: dict[str, list[cst.BaseExpression | None]] = {}
        self._builds: dict[str, cst.Call] = {}  # client name -> the call that built it
        self._instrumented: set[str] = set()  # clients an instrumentation propagates for
        self._all_instrumented = False  # an instrumentor patches every client of the file
        # calls of the file's functions by name, with the function each is made in
        self._call_sites: dict[str, list[tuple[cst.Call, cst.FunctionDef | None]]] = {}
        # functions handed to a call by name (``run(self._f, a)``): the call, the position
        self._handed: dict[str, list[tuple[cst.Call, int, cst.FunctionDef | None]]] = {}
        self._mentions: Counter[str] = Counter()  # every identifier of the file, counted
        self._scopes: dict[int, _Scope] = {}
        self._module_scope = _Scope()
        self._enclosing: list[_Scope] = []  # the scopes of the functions being visited
        self._classes: list[str] = []  # the classes being visited, innermost last
        self._module_node: cst.Module | None = None
        self._owners: dict[int, str] = {}  # id of a method -> its class's qualname
        # (method, parameter) -> the calls in the repo it was followed to
        self._followed: dict[tuple[int, str], list[str]] = {}
        self._repo_passed: dict[tuple[int, str], list[tuple[cst.BaseExpression | None, _Scope]]
                                | None] = {}
        self._foreign: str | None = None  # the module read, for a caller's module
        self._readers: dict[str, HttpInject | None] = {}  # other modules' readers, by module
        self._own_tree: ast.Module | None = None  # the file's stdlib tree, when one is needed
        self._cli: bool | None = None  # a command-line program without tracing (computed once)

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

        self._module_node = node
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
        if self._classes and not self._enclosing:
            self._owners[id(node)] = ".".join(self._classes)
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
        if scope.reader is not None and scope.reader is not self:
            return scope.reader._where(expr, scope, depth)
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
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add) or (
                isinstance(expr, cst.ConcatenatedString)):  # the host is in the first part
            return self._where(cast(cst.BinaryOperation, expr).left, scope, deeper)
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
            if values is None and isinstance(expr, cst.Attribute):
                default = self._declared_default(expr, scope)
                if default is not None and "://" in default:
                    declared = _from_text(default)  # the URL the setting is declared with
                    declared.declared = True
                    return declared
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
        if scope.reader is not None and scope.reader is not self:
            return scope.reader._values_of(expr, scope)
        if isinstance(expr, cst.Attribute):
            dotted = dotted_name(expr)
            values = self._attribute_values.get(dotted) if dotted else None
            # read where it is assigned: a method's parameters and locals (``__init__``'s)
            return [(value, self._scope_of(function) if function is not None else _Scope())
                    for value, function in values] if values else None
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
        if module:
            return [(value, _Scope()) for value in module]
        return self._imported_values(name)

    def _imported_values(self, name: str
                         ) -> list[tuple[cst.BaseExpression | None, _Scope]] | None:
        """What a constant imported from another module of the repo is assigned there."""
        here = self._module()
        dotted = self.repo.resolve(here, name) if here is not None else None
        owner, _, constant = (dotted or "").rpartition(".")
        if not owner or owner == here or owner not in self.repo.modules:
            return None
        reader = self._reader(owner)
        values = reader._module_values.get(constant) if reader is not None else None
        if reader is None or not values:
            return None
        return [(value, reader._module_scope) for value in values]

    def _passed(self, name: str, scope: _Scope
                ) -> list[tuple[cst.BaseExpression | None, _Scope]] | None:
        """What the callers of a private function (``_name``, or one nested in another) pass
        for its parameter ``name``: all its callers are in this file. None for any other."""
        function = scope.function
        if function is None:
            return None
        own = function.name.value
        private = (own.startswith("_") and not own.endswith("__")) or scope.outer is not None
        if not private and scope.outer is None and id(function) in self._owners:
            if self._internal_name(name):
                return None  # named for an internal service: the name says it, as before
            key = (id(function), name)
            if key not in self._repo_passed:
                self._repo_passed[key] = self._passed_in_repo(name, function)
            return self._repo_passed[key]
        # (call, caller, where its arguments start, whether the function is bound: self.f)
        sites = [(call, caller, 0, isinstance(call.func, cst.Attribute))
                 for call, caller in self._call_sites.get(own, [])]
        for call, at, caller in self._handed.get(own, []):
            if self._forwards(call, at, caller):  # breaker.call(self._f, a, b): f(a, b)
                sites.append((call, caller, at + 1,
                              isinstance(call.args[at].value, cst.Attribute)))
        if not private or not sites or self._mentions[own] > len(sites) + 1:
            return None  # (mentioned otherwise too: passed as a callback, called elsewhere)
        params = _params(function)
        param = next(param for param in params if param.name.value == name)
        positional_params = [*function.params.posonly_params, *function.params.params]
        found: list[tuple[cst.BaseExpression | None, _Scope]] = []
        for call, caller, offset, bound in sites:
            ordered = positional_params
            if bound and ordered and ordered[0].name.value in ("self", "cls"):
                ordered = ordered[1:]
            index = next((number for number, item in enumerate(ordered) if item is param), None)
            if any(arg.star for arg in call.args):
                found.append((None, scope))
                continue
            given = (positional(call, index + offset, name) if index is not None
                     else keyword(call, name))
            if given is not None:
                found.append((given.value, self._scope_of(caller)))
            else:
                found.append((param.default, _Scope()) if param.default is not None
                             else (None, scope))
        return found

    def _forwards(self, call: cst.Call, at: int, caller: cst.FunctionDef | None) -> bool:
        """Whether ``call`` hands the function it is given at position ``at`` the arguments
        after it, as they are: its callee, in the repo, is ``def f(self, func, *args,
        **kwargs)`` calling only ``func(*args, **kwargs)`` (a circuit breaker's ``call``)."""
        module = self._module()
        if module is None or caller is None:
            return False
        owner = self._owners.get(id(caller))
        dotted = f"{module}.{owner}.{caller.name.value}" if owner else \
            f"{module}.{caller.name.value}"
        info = self.repo.function(dotted)
        written = code(call.func)
        sites = [site for site in info.calls if site.expression == written] if info else []
        targets = {self.repo.canonical(site.target) for site in sites if site.target}
        if not sites or len(targets) != 1 or len(sites) != sum(1 for s in sites if s.target):
            return False
        callee = self.repo.function(targets.pop())
        if callee is None:
            return False
        params = list(callee.params)
        if callee.owner is not None and params and params[0].kind is not ParamKind.KEYWORD_ONLY:
            params = params[1:]
        before = (ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL)
        forwarding = [ParamKind.POSITIONAL, ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD]
        if len(params) != at + 3 or [param.kind for param in params[at:]] != forwarding or any(
                param.kind not in before for param in params[:at]):
            return False
        func, args, kwargs = (param.name for param in params[at:])
        uses = [site for site in callee.calls if site.expression == func]
        return bool(uses) and all(site.args == (f"*{args}",) and
                                  site.keywords == ((None, kwargs),) for site in uses)

    def _untraced_command_line(self) -> bool:
        """Whether the file is part of a command-line program (it imports a CLI framework,
        ``typer`` or ``click``, or ``argparse`` under a ``__main__`` guard) and no module of
        its package sets tracing up: no span is ever current in its requests."""
        if self._cli is None:
            self._cli = False
            module = self.module_name
            info = self.repo.module(module) if module else None
            if module and info is not None:
                frameworks = {item.target.split(".")[0] for item in info.imports}
                if frameworks & CLI_FRAMEWORKS or (
                        "argparse" in frameworks and info.has_main_guard):
                    package = module.rpartition(".")[0] if not info.is_package else module
                    self._cli = not any(
                        self.repo.reaches_tracing_setup(function, self.settings.helper_module)
                        for name, other in self.repo.modules.items()
                        if name in (package, module) or (
                            package and name.startswith(f"{package}."))
                        for function in (*other.functions, f"{name}.{MODULE_CODE}",
                                         f"{name}.{MAIN_CODE}"))
        return self._cli

    # -- a method's callers anywhere in the repo --

    def _module(self) -> str | None:
        return self._foreign or self.module_name

    def _passed_in_repo(self, name: str, function: cst.FunctionDef
                        ) -> list[tuple[cst.BaseExpression | None, _Scope]] | None:
        """What the repo's calls of a public method pass for its parameter ``name``: calls
        through its class, or through a base or ``Protocol`` of it (a router given a
        ``FromDishka[HttpClientProtocol]``), each read in its caller's module. None when
        the repo shows no call, or this is a caller's module already (one hop only)."""
        module = self._module()
        if module is None or self._foreign is not None:
            return None
        repo = self.repo
        klass = repo.canonical(f"{module}.{self._owners[id(function)]}")
        method = function.name.value
        classes = {current for current in repo.mro(klass) if current in repo.classes}
        targets = {f"{current}.{method}" for current in classes}
        if method == "__init__":  # the class called; a subclass's super().__init__ is not seen
            if any(other != klass and repo.is_subclass(other, {klass})
                   for other in repo.classes):
                return None
            targets, classes = {klass}, set()
        positional_params = [*function.params.posonly_params, *function.params.params]
        if not any(last_name(d.decorator) == "staticmethod" for d in function.decorators):
            positional_params = positional_params[1:]  # self or cls: the call binds it
        param = next(p for p in _params(function) if p.name.value == name)
        index = next((n for n, p in enumerate(positional_params) if p is param), None)
        found: list[tuple[cst.BaseExpression | None, _Scope]] = []
        for caller in list(repo.functions.values()):
            for site in caller.calls:
                if not self._calls_one_of(caller, site, targets, classes, method):
                    continue
                found.append(self._argument_of(caller, site, index, name, param))
                self._followed.setdefault((id(function), name), []).append(
                    f"`{caller.dotted}` line {site.line}")
        return found or None

    def _calls_one_of(self, caller: FunctionInfo, site: CallSite, targets: set[str],
                      classes: set[str], method: str) -> bool:
        """Whether ``site`` calls one of ``targets``: as the model resolves it, or on a
        parameter whose annotation names one of ``classes`` (``FromDishka[Protocol]``)."""
        if site.target is not None and self.repo.canonical(site.target) in targets:
            return True
        receiver, _, called = site.expression.rpartition(".")
        param = caller.param(receiver) if called == method and receiver else None
        if param is None or param.annotation is None:
            return False
        try:
            annotation = ast.parse(param.annotation, mode="eval")
        except SyntaxError:
            return False
        for node in ast.walk(annotation):
            written = _ast_dotted(node)
            if written and self.repo.resolve(caller.module, written) in classes:
                return True
        return False

    def _argument_of(self, caller: FunctionInfo, site: CallSite, index: int | None,
                     name: str, param: cst.Param
                     ) -> tuple[cst.BaseExpression | None, _Scope]:
        """What ``site`` passes for the parameter, with the caller's scope to read it in."""
        unknown = (None, _Scope())
        reader = self._reader(caller.module)
        scope = reader._caller_scope(caller) if reader is not None else None
        if scope is None or any(a.startswith("*") for a in site.args) or any(
                key is None for key, _ in site.keywords):
            return unknown
        if index is not None and index < len(site.args):
            text: str | None = site.args[index]
        else:
            text = site.keyword(name)
        if text is None:
            return (param.default, _Scope()) if param.default is not None else unknown
        try:
            return cst.parse_expression(text), scope
        except cst.ParserSyntaxError:
            return unknown

    def _reader(self, module: str) -> HttpInject | None:
        """A codemod reading ``module`` (names only: it rewrites nothing)."""
        if module == self._module():
            return self
        if module not in self._readers:
            path = self.repo.file_of(module)
            reader: HttpInject | None = None
            try:
                tree = cst.parse_module(path.read_bytes()) if path is not None else None
            except (OSError, cst.ParserSyntaxError):
                tree = None
            if tree is not None:
                reader = HttpInject(self.context)
                reader.options = self.options
                reader._foreign = module
                reader._module_node = tree
                tree.visit(_Assigned(reader))
                for statement in tree.body:
                    for bound, value in assignments(statement):
                        reader._module_values.setdefault(bound, []).append(value)
                reader._module_scope = _Scope(tuple(walk(tree.body)), reader=reader)
            self._readers[module] = reader
        return self._readers[module]

    def _caller_scope(self, caller: FunctionInfo) -> _Scope | None:
        """The scope of a function of this (read) module, by its qualname; None for a
        nested one or module code."""
        if self._module_node is None or LOCALS in caller.qualname or "<" in caller.qualname:
            return None
        body: Sequence[cst.CSTNode] = self._module_node.body
        parts = caller.qualname.split(".")
        found: cst.CSTNode | None = None
        for part in parts:
            found = next((node for node in body
                          if isinstance(node, (cst.ClassDef, cst.FunctionDef))
                          and node.name.value == part), None)
            if found is None:
                return None
            body = statements_of(cast(cst.ClassDef | cst.FunctionDef, found).body)
        if not isinstance(found, cst.FunctionDef):
            return None
        if len(parts) > 1:
            self._owners[id(found)] = ".".join(parts[:-1])
        scope = self._scope_of(found)
        scope = self._scopes[id(found)] = _Scope(scope.places, scope.params, found,
                                                 reader=self)
        return scope

    # -- settings declared in another module --

    def _declared_default(self, expr: cst.Attribute, scope: _Scope) -> str | None:
        """The text a setting (``settings.X``, ``self.settings.X``) is declared with in its
        class in the repo: ``X: str = "http://content:8000"`` or ``Field(default="...")``."""
        klass = self._class_held(expr.value, scope)
        if klass is None:
            return None
        wanted = expr.attr.value
        for current in self.repo.mro(klass):
            info = self.repo.classes.get(current)
            path = self.repo.file_of(info.module) if info is not None else None
            if info is None or path is None:
                continue
            body = _class_body(self._tree_of(info.module, path), info.qualname)
            for statement in body:
                targets: list[ast.expr] = []
                if isinstance(statement, ast.AnnAssign):
                    targets = [statement.target]
                elif isinstance(statement, ast.Assign):
                    targets = statement.targets
                if any(isinstance(t, ast.Name) and t.id == wanted for t in targets):
                    return _declared_text(getattr(statement, "value", None))
        return None

    def _tree_of(self, module: str, path: Path) -> ast.Module | None:
        """A module of the repo parsed: this file as it is being visited, another from disk."""
        if module != self._module():
            return _parsed(path)
        if self._own_tree is None and self._module_node is not None:
            try:
                self._own_tree = ast.parse(self._module_node.code)
            except (SyntaxError, ValueError):
                return None
        return self._own_tree

    def _class_held(self, expr: cst.BaseExpression, scope: _Scope) -> str | None:
        """The repo class of what ``settings``, ``self.settings`` or ``Settings`` holds or is."""
        module = self._module()
        name = dotted_name(expr)
        if module is None or name is None:
            return None
        head, _, rest = name.partition(".")
        repo = self.repo
        owner = self._owners.get(id(scope.function)) if scope.function is not None else None
        classes = owner.split(".") if owner else self._classes
        if head in ("self", "cls") and classes:
            klass = repo.canonical(f"{module}.{'.'.join(classes)}")
            if not rest:
                return klass
            return repo.type_of(f"{klass}.{rest}") if "." not in rest else None
        param = self._param_named(head, scope)
        if param is not None:
            annotation = param.annotation.annotation if param.annotation else None
            written = dotted_name(annotation) if annotation is not None else None
            found = repo.resolve(module, written) if written and not rest else None
            return found if found in repo.classes else None
        if rest or any(head == target for place in scope.places
                       for target, _ in assignments(place.statement)):
            return None
        resolved = repo.resolve(module, head)
        if resolved is None or resolved in repo.classes:
            return resolved
        return repo.type_of(resolved)

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
            fallback = positional(call, 1, "default")
            default = _string(fallback.value) if fallback is not None else None
            if variable and default is not None and "://" in default:
                declared = _from_text(default)  # the URL the variable is declared with
                declared.declared = True
                return declared
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
            if where.hosts and not names and not where.opaque and not where.declared:
                return True, None  # a host the repo says is its own
            if where.hosts and not names and not where.opaque:
                hosts = ", ".join(f"`{host}`" for host in sorted(where.hosts))
                return False, (f"this request sends {credential}, as third-party APIs ask, to "
                               f"a URL whose declared default is internal ({hosts}) but which a "
                               "deployment may point elsewhere: no trace context was added; "
                               "inject it by hand if that host is internal")
            if internal_names:
                return False, (f"this request sends {credential}, as third-party APIs ask, "
                               f"to a host from {shown}: no trace context was added; inject "
                               "it by hand if that host is internal")
            return False, None  # a third party's API: no context for it
        if (where.hosts or names) and not where.opaque and len(internal_names) == len(names):
            return True, None
        param = url.value if isinstance(url, cst.Name) else ""
        callers = self._followed.get((id(scope.function), param), [])
        shown_callers = f"{', '.join(callers[:3])}{' and more' if len(callers) > 3 else ''}"
        passed = f" (as `{param}`, by {shown_callers})" if callers else ""
        if names:
            return False, (f"this request sends no traceparent, and its host comes from {shown}"
                           f"{passed}, which may be a third party's: to add the context, list "
                           "that name in internal-url-names (or its host in internal-hosts) under "
                           "[tool.scaffold.options.http-inject], or inject it by hand")
        if callers:
            return False, (f"this request sends no traceparent, and its `{param}` is what its "
                           f"callers in the repo pass ({shown_callers}), where its host is not "
                           "visible: inject the trace context by hand if those hosts are "
                           "internal")
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
        if self._untraced_command_line():
            self.record_skipped(call, "a command-line program that never sets tracing up: "
                                "no span is current here, there is no context to carry")
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
            self._inject_into_name(call, given, place, places, scope)
        elif given is None or isinstance(given.value, cst.Dict):
            self._inject_into_argument(call, given, place)
        else:
            self._inject_into_copy(call, given, place, scope)

    def _inject_into_name(self, call: cst.Call, given: cst.Arg, place: Place,
                          places: list[Place], scope: _Scope) -> None:
        name = cast(cst.Name, given.value).value
        bound = [value for other in places for target, value in assignments(other.statement)
                 if target == name]
        if name in scope.params or not bound or not all(_fresh_dict(value) for value in bound):
            self._inject_into_copy(call, given, place, scope)  # maybe shared: not in place
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

    def _inject_into_argument(self, call: cst.Call, given: cst.Arg | None, place: Place, *,
                              copy: str | None = None, moves: bool = False) -> None:
        """Pass headers with the context injected: the dict display (or ``{}``) given, or
        ``copy``, a copy of headers the caller may share (``moves``: evaluating it on a line
        before the request could change what it is)."""
        in_argument = self.kit_function_available  # the kit's inject returns its carrier
        carrier = copy or "{}"
        if given is not None and not copy:
            # a display moved to a line of its own keeps its lines where the argument had them
            moved = given.value if in_argument else _dedented(given.value, _indent_of(call,
                                                                                   given))
            carrier = code(moved)
        if not in_argument and moves:
            self.report(call, f"headers come from `{code(cast(cst.Arg, given).value)}`, which "
                        "other requests may share, and copying it on a line before the request "
                        "would run it before the request's other arguments: copy it, inject the "
                        "trace context into the copy, pass that")
            return
        if not in_argument and not place.in_block:
            self.report(call, "this request sends no traceparent; inject into its headers on "
                        "a line of its own")
            return
        shared = cast(cst.Arg, given).value if copy else None
        if shared is None:
            where = "its headers (existing headers kept)"
        elif isinstance(shared, cst.Call):
            where = f"a copy of what `{code(shared)}` returns"
        else:
            where = f"a copy of `{code(shared)}` (`{code(shared)}` itself left as it is)"
        if not self.record_change(call, f"the request now carries the current trace context "
                                  f"in {where}"):
            return
        if in_argument:
            value = cst.parse_expression(f"{self.helper('inject_trace_context')}({carrier})")
        else:
            local = self._local_name("trace_headers")
            # a copy's type is the copied dict's; a display needs one for mypy
            typed = "" if copy else ": dict[str, str]"
            self.insert_before(place.statement, parse_statements(
                f"{local}{typed} = {carrier}\n{self._inject()}({local})\n"))
            value = cst.Name(local)
        self._calls[call] = lambda updated: _with_headers(updated, value)

    def _inject_into_copy(self, call: cst.Call, given: cst.Arg, place: Place,
                          scope: _Scope) -> None:
        """Headers that other requests may share: inject into a copy, passed instead."""
        value = given.value
        kind = self._mapping_kind(value, scope)
        if kind is None:
            self.report(call, f"headers come from `{code(value)}`, which other requests may "
                        "share and which is not shown to be a dict: copy it, inject the trace "
                        "context into the copy, pass that")
            return
        source = code(value)
        if not isinstance(value, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
            source = f"({source})"
        copy = f"dict({source} or {{}})" if kind == _OPTIONAL else f"dict({source})"
        self._inject_into_argument(call, given, place, copy=copy,
                                   moves=not isinstance(value, (cst.Name, cst.Attribute)))

    # -- what headers hold --

    def _mapping_kind(self, expr: cst.BaseExpression, scope: _Scope, depth: int = 0
                      ) -> str | None:
        """``_DICT`` when ``expr`` always holds a dict, ``_OPTIONAL`` when a dict or None,
        None when the code does not show which (a Mapping may be multi-valued headers)."""
        if depth > 6:
            return None
        deeper = depth + 1
        if _fresh_dict(expr):
            return _DICT
        if isinstance(expr, cst.Name) and expr.value == "None":
            return _NONE
        if isinstance(expr, cst.BooleanOperation) and isinstance(expr.operator, cst.Or):
            right = self._mapping_kind(expr.right, scope, deeper)
            left = self._mapping_kind(expr.left, scope, deeper)
            return _DICT if right == _DICT and left is not None else None
        if isinstance(expr, cst.Call):
            return self._returned_kind(expr)
        kinds: set[str | None] = set()
        if isinstance(expr, cst.Name):
            # its parameter's annotation, and whatever the function assigns it
            local = [value for place in scope.places
                     for target, value in assignments(place.statement) if target == expr.value]
            kinds |= {self._mapping_kind(value, scope, deeper) if value is not None else None
                      for value in local}
            param = self._param_named(expr.value, scope)
            if param is not None:
                kinds.add(_param_kind(param))
            elif not local:
                kinds |= self._kinds_held(expr, scope, deeper)
        elif isinstance(expr, cst.Attribute):
            kinds |= self._kinds_held(expr, scope, deeper)
        if not kinds or None in kinds:
            return None
        return _DICT if kinds == {_DICT} else _OPTIONAL

    def _kinds_held(self, expr: cst.Name | cst.Attribute, scope: _Scope, depth: int
                    ) -> set[str | None]:
        """The kinds of what an enclosing function, the module or ``self.x`` assigns."""
        values = self._values_of(expr, scope) or [(None, scope)]
        return {self._mapping_kind(value, where, depth) if value is not None else None
                for value, where in values}

    def _param_named(self, name: str, scope: _Scope) -> cst.Param | None:
        here: _Scope | None = scope
        while here is not None:
            if name in here.params and here.function is not None:
                return next(p for p in _params(here.function) if p.name.value == name)
            here = here.outer
        return None

    def _returned_kind(self, call: cst.Call) -> str | None:
        """What a repo function called here returns, read from its return annotation."""
        function = self._callee(call)
        if function is None or function.returns is None:
            return None
        try:
            annotation = cst.parse_expression(function.returns)
        except cst.ParserSyntaxError:
            return None
        return _annotation_kind(annotation)

    def _callee(self, call: cst.Call) -> FunctionInfo | None:
        """The repo function ``call`` calls: a name the module binds, or a method of the
        class being visited (``self.method(...)``)."""
        module = self._module()
        name = dotted_name(call.func)
        if module is None or name is None:
            return None
        head, _, rest = name.partition(".")
        if head in ("self", "cls") and rest and "." not in rest and self._classes:
            method = self.repo.method(f"{module}.{'.'.join(self._classes)}", rest)
            return self.repo.function(method) if method else None
        dotted = self.repo.resolve(module, name)
        return self.repo.function(dotted) if dotted else None

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


def _indent_of(call: cst.Call, given: cst.Arg) -> int:
    """How far the argument's line is indented past the call's (0: on the call's line)."""
    before: cst.BaseParenthesizableWhitespace = call.whitespace_before_args
    for arg in call.args:
        if arg is given:
            break
        if arg.comma is not cst.MaybeSentinel.DEFAULT:
            before = cast(cst.Comma, arg.comma).whitespace_after
    return (len(before.last_line.value)
            if isinstance(before, cst.ParenthesizedWhitespace) else 0)


def _dedented(node: cst.BaseExpression, width: int) -> cst.BaseExpression:
    """``node`` with each of its continuation lines ``width`` spaces less indented."""
    if not width:
        return node

    class _Dedent(cst.CSTTransformer):
        def leave_ParenthesizedWhitespace(self, original_node: cst.ParenthesizedWhitespace,
                                          updated_node: cst.ParenthesizedWhitespace
                                          ) -> cst.ParenthesizedWhitespace:
            spaces = updated_node.last_line.value
            kept = spaces[width:] if spaces.startswith(" " * width) else spaces
            return updated_node.with_changes(last_line=cst.SimpleWhitespace(kept))

    return cast(cst.BaseExpression, node.visit(_Dedent()))


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


def _parsed(path: Path) -> ast.Module | None:
    try:
        return _parsed_version(path, path.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=64)
def _parsed_version(path: Path, version: int) -> ast.Module | None:
    """A file of the repo parsed once per version (configuration modules are read often)."""
    try:
        return ast.parse(path.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return None


def _ast_dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _ast_dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _class_body(tree: ast.Module | None, qualname: str) -> list[ast.stmt]:
    """The statements of class ``qualname`` (``Outer.Inner``) of a module."""
    body: list[ast.stmt] = tree.body if tree is not None else []
    for part in qualname.split("."):
        found = next((node for node in body
                      if isinstance(node, ast.ClassDef) and node.name == part), None)
        if found is None:
            return []
        body = found.body
    return body


def _declared_text(value: ast.expr | None) -> str | None:
    """A field's literal text default: ``"..."``, ``Field("...")``, ``Field(default="...")``."""
    if isinstance(value, ast.Call):
        called = _ast_dotted(value.func) or ""
        if called.rpartition(".")[2] not in _FIELD_CALLS:
            return None
        value = next((k.value for k in value.keywords if k.arg == "default"),
                     value.args[0] if value.args else None)
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


class _Assigned(FastVisitor):
    """What a file assigns to attributes (``self.base_url = ...``), where its functions are
    called, and which clients an instrumentation propagates for (``instrument_client(c)``,
    ``...Instrumentor().instrument()``)."""

    def __init__(self, codemod: HttpInject) -> None:
        self.codemod = codemod
        self.functions: list[cst.FunctionDef] = []
        self.classes: list[str] = []  # the classes around, while no function is

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        if not self.functions:
            self.classes.append(node.name.value)

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        if not self.functions:
            self.classes.pop()

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if self.classes and not self.functions:  # a method: whose it is
            self.codemod._owners[id(node)] = ".".join(self.classes)
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
            self.codemod._attribute_values.setdefault(name, []).append(
                (value, self.functions[-1] if self.functions else None))
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
        for at, arg in enumerate(node.args):
            if arg.keyword is not None or arg.star:
                break
            value = arg.value
            if isinstance(value, cst.Name) or (isinstance(value, cst.Attribute) and isinstance(
                    value.value, cst.Name) and value.value.value in ("self", "cls")):
                self.codemod._handed.setdefault(cast(str, last_name(value)), []).append(
                    (node, at, self.functions[-1] if self.functions else None))
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
