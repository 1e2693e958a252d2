"""Redis queue items and pub/sub messages carry no trace context, or are handled outside it.

What it does: on a redis-py client (``redis.Redis``, ``redis.asyncio.Redis``, their
``from_url``, ``pipeline()``; found by construction, annotation, or the repo model's type of
``self.x``), and on calls of repo functions and methods (through ``self``, ``self.x`` or an
annotated parameter) that forward one of their parameters as the payload of such a call, as
it is or as ``json.dumps(param)`` (a ``RedisPubSub.publish(channel, message)`` wrapper):

- producer: ``lpush``/``rpush``/``lpushx``/``rpushx`` of ``json.dumps(D)``, and ``xadd(stream,
  D)``, where ``D`` is a dict built in the function (a dict literal or ``dict(...)``, inline or
  in a name whose assignment reaches the call, the JSON text in such a name too) get
  ``capture_for_queue(D)`` from the kit: the item carries ``traceparent`` (and ``tracestate``,
  the correlation id) as keys of its object. A dict that may be read again after the push is
  captured as a copy (``capture_for_queue(dict(D))``).
- pub/sub: a ``publish``/``spublish`` of anything but a constant is reported, never captured
  into: a message reaches every subscriber, and a subscriber may forward it as it is (a
  websocket fan-out hands it to browsers), so propagation keys would leave with it. Its
  listeners (``listen()``, ``get_message()``) are left as they are: nothing was captured.
- consumer: where a function handles what it popped or read
  (``blpop``/``brpop``/``lpop``/``rpop``/``lmove``..., ``xread``/``xreadgroup`` entries), the
  handling (the first statement reading the item, to the end of its block; after ``P =
  json.loads(item)``, the statements after it) runs inside ``with restore_from_queue(item):``,
  a ``queue_processing`` CONSUMER span continuing the captured trace. ``restore_from_queue``
  reads the item as parsed or as Redis returns it (JSON text, stream fields with ``bytes``
  keys); anything else starts a new root.

Wrappers are followed where they are called from a file that names a Redis command (the
engine's syntax gate); a caller in a file that names none is not looked at.

Left alone: payloads that already carry the context (a ``traceparent`` key, an inject or
``capture_for_queue`` call on them, an outbox entry holding an envelope parameter's
``model_dump_json()``: the envelope's metadata carries it, and its relay reads it there),
constants (a ``"wake"`` signal has nowhere to carry context), a payload that is a parameter of
the function (a wrapper: its callers are judged), an item read from Redis queued again (a
retry, a dead-letter list: it keeps the context it carries), handling that restores a context
already (itself or in a repo function it calls), a function that returns what it popped (its
caller handles the item, out of this rule's sight), and test code. Reported: a payload that is
not a JSON object built in the function (``model_dump_json()``, a string from elsewhere, a
list), starred arguments, an item read only under a condition or handled inside a one-line
block, handling that yields.

Why: the kit and the helper library carry the trace across Kafka, but a job pushed to a Redis
list or a notification published on a channel starts a new trace at the worker or listener:
the work done for a request disappears from its trace exactly where it is queued.

Example::

    await redis.lpush("jobs", json.dumps({"job_id": job_id}))
    ...
    _, raw = await redis.blpop(["jobs"])
    job = json.loads(raw)
    await handle(job)

Use instead::

    await redis.lpush("jobs", json.dumps(capture_for_queue({"job_id": job_id})))
    ...
    _, raw = await redis.blpop(["jobs"])
    job = json.loads(raw)
    with restore_from_queue(job):
        await handle(job)

Fix safety: safe. The item stays a JSON object with every key it had; only the propagation
keys are added (readers of JSON objects ignore keys they do not know; a reader that rejects
unknown keys must be given them). The handling runs as before, once, with the same values;
``restore_from_queue`` never raises on a missing or malformed context. The kit is used even
with a configured ``helper-module``: its ``inject_trace_context`` returns nothing (no
expression form) and ``use_trace_context`` starts no span.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import cast

import libcst as cst

from scaffold.codemods._kafka import KafkaCodemod, argument, code, keyword
from scaffold.codemods._layout import fit
from scaffold.codemods._propagation import ENVELOPE_SUFFIXES, Place, header, walk
from scaffold.codemods.base import dotted_name
from scaffold.engine.fast import without_rebuild
from scaffold.engine.gates import SyntaxGate
from scaffold.kit_api import CAPTURE_FOR_QUEUE, RESTORE_FROM_QUEUE
from scaffold.repo.info import FunctionInfo, ParamKind

CLIENT = "client"
PUBSUB = "pubsub"
_MODULES = ("redis", "redis.client", "redis.asyncio", "redis.asyncio.client")
CLIENT_CLASSES = frozenset(
    {f"{module}.{name}" for module in _MODULES for name in ("Redis", "StrictRedis", "Pipeline")}
    | {"redis.cluster.RedisCluster", "redis.asyncio.RedisCluster",
       "redis.asyncio.cluster.RedisCluster", "redis.RedisCluster"})
FACTORIES = frozenset({"redis.from_url", "redis.asyncio.from_url"} | {
    f"{name}.from_url" for name in CLIENT_CLASSES})
PUBSUB_CLASSES = frozenset({f"{module}.PubSub" for module in _MODULES})
# push method -> the keyword of its payload (lpush/rpush take every value after the key)
PUSHES = {"lpush": None, "rpush": None, "lpushx": None, "rpushx": None,
          "publish": "message", "spublish": "message", "xadd": "fields"}
# pub/sub publishes: a message reaches every subscriber, which may forward it as it is
PUBLISHES = frozenset({"publish", "spublish"})
PAIR_POPS = frozenset({"blpop", "brpop"})
_SERIALISERS = frozenset({"model_dump_json", "model_dump", "json", "dict"})  # pydantic's
VALUE_POPS = frozenset({"lpop", "rpop", "lmove", "blmove", "rpoplpush", "brpoplpush"})
STREAM_READS = frozenset({"xread", "xreadgroup"})
DUMPS = frozenset({"json.dumps", "orjson.dumps", "ujson.dumps"})
LOADS = frozenset({"json.loads", "orjson.loads", "ujson.loads"})
CAPTURES = frozenset({"capture_for_queue", "inject_mapping", "inject", "inject_trace_context",
                      "inject_headers", "inject_metadata"})
RESTORES = frozenset({"restore_from_queue", "extract", "extract_trace_context", "attach",
                      "use_trace_context", "restore_span", "consume_span", "extract_mapping",
                      "attached"})
_MANAGERS = frozenset({"AbstractAsyncContextManager", "AsyncContextManager", "AsyncIterator",
                       "AsyncGenerator", "AbstractContextManager", "ContextManager", "Iterator",
                       "Generator", "Awaitable", "Coroutine"})
# what a name holds in a consumer: a (key, value) pair, an item, a pub/sub message, a stream
# read, one stream's entries, one entry's fields
PAIR, VALUE, MESSAGE, STREAMS, ENTRIES, FIELDS = "pair", "value", "message", "streams", \
    "entries", "fields"


@dataclass(frozen=True)
class _Wrap:
    index: int  # the first statement of the block that goes inside the ``with``
    item: str  # the expression restore_from_queue reads


class RedisQueue(KafkaCodemod):
    # a pub/sub's listen()/get_message() is left alone (nothing is captured into its
    # messages), so only pushes, publishes and pops let a file in
    PREFILTER = ("push", "publish", "xadd", "pop", "xread", "move")
    GATE = SyntaxGate(words={*PUSHES, *PAIR_POPS, *VALUE_POPS, *STREAM_READS})
    SLICE_WORDS = frozenset()  # a push or pop names its command
    SLICE_CALLS = True  # what the callers of a wrapper hand it to encode
    USES_REPO = True  # the type of self.x and what a wrapper forwards may be in another file
    SITE_KIND = "queue"  # its rows in `scaffold report`
    DERIVED = {(CLIENT, "pubsub"): PUBSUB, (CLIENT, "pipeline"): CLIENT}

    def __init__(self, context, options=None) -> None:
        super().__init__(context, options)
        self._statements: list[cst.SimpleStatementLine] = []
        self._capture: dict[cst.CSTNode, bool] = {}  # node -> captured as a copy
        self._wraps: dict[int, _Wrap] = {}  # id of an original block -> its wrap
        self._wrappers: dict[str, dict[str, bool]] = {}  # function -> param -> JSON text?
        self._popped: set[str] = set()  # names of the current function holding a read item
        self._local: dict[str, str] = {}  # what the current function's names hold (consumer)
        self._bound_at: dict[str, Place] = {}
        self._captured_already = False  # the payload just judged holds a capture call

    # -- what names hold --

    def classify(self, expr: cst.CSTNode) -> str | None:
        names = self.qualified_names(expr)
        if names & PUBSUB_CLASSES:
            return PUBSUB
        if names & (CLIENT_CLASSES | FACTORIES):
            return CLIENT
        return None

    def _class_of_self(self) -> str | None:
        if not self.classes or not self.module_name:
            return None
        return f"{self.module_name}.{'.'.join(c.name.value for c in self.classes)}"

    def _repo_type(self, expr: cst.CSTNode) -> str | None:
        """The class the repo model says ``self``, ``self.x`` or a module name holds."""
        name = dotted_name(expr)
        if name is None or not self.module_name:
            return None
        owner = self._class_of_self()
        if name == "self":
            return owner
        if name.startswith("self.") and name.count(".") == 1 and owner:
            return self.repo.type_of(f"{owner}.{name[5:]}")
        if "." not in name and not self.functions:
            return self.repo.type_of(f"{self.module_name}.{name}")
        if "." not in name:
            annotation = self._annotation_of(name)
            return self.repo.resolve(self.module_name, annotation) if annotation else None
        return None

    def _annotation_of(self, name: str) -> str | None:
        """The class a parameter of the current function is annotated with (``X``,
        ``X | None``, ``Optional[X]``), when the function never rebinds it."""
        params = self.functions[-1].params
        param = next((p for p in (*params.posonly_params, *params.params, *params.kwonly_params)
                      if p.name.value == name), None)
        if param is None or param.annotation is None or self._assignments(name):
            return None
        annotation = param.annotation.annotation
        if isinstance(annotation, cst.BinaryOperation) and code(annotation.right) == "None":
            annotation = annotation.left
        if isinstance(annotation, cst.Subscript) and dotted_name(annotation.value) in (
                "Optional", "typing.Optional") and len(annotation.slice) == 1 \
                and isinstance(annotation.slice[0].slice, cst.Index):
            annotation = annotation.slice[0].slice.value
        return dotted_name(annotation)

    def kind_of(self, expr: cst.CSTNode, local: dict[str, str] | None = None) -> str | None:
        if isinstance(expr, cst.Await):
            expr = expr.expression
        name = dotted_name(expr)
        if local is not None and name in local:
            return local[name]
        binding = self.lookup(expr)
        if binding is not None:
            return binding.kind
        held = self._repo_type(expr)
        if held in PUBSUB_CLASSES:
            return PUBSUB
        if held in CLIENT_CLASSES:
            return CLIENT
        return None

    # -- visiting --

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._statements.append(node)

    def leave_SimpleStatementLine(self, original_node: cst.SimpleStatementLine,
                                  updated_node: cst.SimpleStatementLine) -> cst.BaseStatement:
        """A capture that pushed a one-line statement over the line length is split."""
        self._statements.pop()
        limit = self.settings.line_length
        if limit is None or updated_node is original_node or not any(
                node in self._capture for node in _descendants(original_node)):
            return updated_node
        before = self.module.code_for_node(original_node.with_changes(leading_lines=()))
        if "\n" in before.rstrip("\n") or self.column + len(before.rstrip("\n")) > limit:
            return updated_node  # laid out by hand, or too long already
        (fitted,) = fit([updated_node], self.column, self.module, limit, grown=None)
        return fitted

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        super().visit_FunctionDef(node)
        if self.in_test_file:
            return
        self._popped = set()
        self._consumer(node)
        # decided before the body is visited: a capture may go into an earlier statement
        outer = self._statements
        for place in walk(node.body):
            self._statements = [place.statement] if isinstance(
                place.statement, cst.SimpleStatementLine) else []
            for part in header(place.statement):
                for call in _descendants(part):
                    if isinstance(call, cst.Call):
                        self._producer(call)
        self._statements = outer

    def _producer(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Attribute):
            method = node.func.attr.value
            if method in PUSHES and self.kind_of(node.func.value) == CLIENT:
                self._push(node, method, self._payloads(node, method))
                return
        function = self._called(node)
        if function is None:
            return
        for param, json_text in self._forwarded_by(function).items():
            arg = self._argument_for(node, function, param)
            if arg is not None:
                self._push(node, function.qualname, [arg], json_text=json_text)

    # -- producers --

    def _payloads(self, call: cst.Call, method: str) -> list[cst.Arg]:
        if PUSHES[method] is None:  # lpush(key, *values)
            return [arg for arg in call.args if arg.keyword is None][1:]
        found = argument(call, 1, PUSHES[method] or "")
        return [found] if found is not None else []

    def _push(self, call: cst.Call, method: str, payloads: list[cst.Arg], *,
              json_text: bool | None = None) -> None:
        if method in PUBLISHES:
            if any(not _constant(arg.value) for arg in payloads):
                self.report(call, f"{code(call.func)}(...): a pub/sub message reaches every "
                            "subscriber, and a subscriber may forward it as it is (a websocket "
                            "fan-out to browsers): propagation keys put into it would leave "
                            "with it; where every subscriber is a worker of this repo, capture "
                            "the context with capture_for_queue from the kit and strip it "
                            "before forwarding")
            return
        for arg in payloads:
            if arg.star and self._is_param(arg.value):
                continue  # a wrapper's own *values: judged at its callers
            if arg.star:
                self.report(call, f"{method} with a starred argument: cannot see the payload "
                            "to capture the trace context in; call capture_for_queue from the "
                            "kit on each item")
                continue
            self._captured_already = False
            reason = self._payload(arg.value, json_text=method != "xadd" if json_text is None
                                   else json_text)
            if reason is None and self._captured_already:
                self.record_correct(call, "its item carries the context (captured into it)")
            if reason is not None:
                self.report(call, f"{code(call.func)}(...): {reason}; the worker that reads it "
                            "starts a new trace (build the item as a dict and pass it through "
                            "capture_for_queue from the kit)")
            elif self._capture and not self.has_kit(call):
                self._capture.clear()

    def _payload(self, value: cst.BaseExpression, *, json_text: bool) -> str | None:
        """Schedule the capture into ``value`` (a payload); None, or why it cannot be done."""
        if isinstance(value, (cst.SimpleString, cst.ConcatenatedString, cst.Integer,
                              cst.Float, cst.FormattedString)) or self._is_param(value):
            return None  # a constant signal, or what a wrapper is handed: judged at its callers
        if any(self._item(node, self._local) is not None for node in _descendants(value)):
            return None  # an item read from Redis, queued again with the context it carries
        if not json_text:
            return self._dict(value)
        if isinstance(value, cst.Name):
            bound = self._bound_once(value.value)
            if bound is None:
                return (f"{value.value} is not bound once in this function before the call, "
                        "so its JSON cannot be shown to be an object built here")
            value = bound
        if isinstance(value, cst.Call) and self.refers_to(value.func, DUMPS) and value.args \
                and value.args[0].keyword is None and not value.args[0].star:
            return self._dict(value.args[0].value)
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) \
                and value.func.attr.value == "model_dump_json":
            return ("the payload is a pydantic model's JSON (model_dump_json()), which has no "
                    "room for propagation keys unless the model declares them")
        return f"the payload {code(value)} is not JSON text of a dict built here"

    def _dict(self, value: cst.BaseExpression) -> str | None:
        if isinstance(value, cst.Call) and _last(value.func) in CAPTURES:
            self._captured_already = True
            return None  # captured already
        copy = False
        target: cst.BaseExpression = value
        if isinstance(value, cst.Name):
            if self._is_param(value) or value.value in self._popped:
                return None  # a wrapper's (judged at its callers), or an item read: re-queued
            if self._is_captured(value):
                return None
            bound = self._bound_once(value.value)
            if bound is None or not self._is_dict(bound):
                return f"{value.value} is not a dict built in this function"
            if self._captured(value.value):
                return None
            copy = self._read_later(value.value)
            value = bound
        if not self._is_dict(value):
            return f"the payload {code(value)} is not a dict built here"
        if self._carries_context(value):
            return None
        if self._holds_envelope(value):
            return None  # its envelope carries the context (envelope-inject), read from there
        self._capture[target] = copy
        return None

    def _holds_envelope(self, value: cst.BaseExpression) -> bool:
        """A dict holding an event envelope as its serialised form (an outbox entry:
        ``{"topic": t, "envelope": envelope.model_dump_json()}``), where the envelope is a
        parameter annotated with an envelope class: the envelope's metadata is where the
        trace context travels, and where its relay reads it."""
        if not isinstance(value, cst.Dict) or not self.functions:
            return False
        params = self.functions[-1].params
        envelopes = {
            p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)
            if p.annotation is not None
            and (last := _last(p.annotation.annotation.value if isinstance(
                p.annotation.annotation, cst.Subscript) else p.annotation.annotation))
            and last.endswith(ENVELOPE_SUFFIXES)}
        for element in value.elements:
            item = element.value
            if isinstance(item, cst.Call) and isinstance(item.func, cst.Attribute) \
                    and item.func.attr.value in _SERIALISERS \
                    and isinstance(item.func.value, cst.Name) \
                    and item.func.value.value in envelopes:
                return True
        return False

    def _is_dict(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Dict):
            return True
        return isinstance(value, cst.Call) and self.refers_to(value.func, {"builtins.dict"})

    def _carries_context(self, value: cst.BaseExpression) -> bool:
        """A ``traceparent`` key, or a copy (``dict(x)``, ``{**x}``) of a captured dict."""
        if isinstance(value, cst.Dict):
            return any(isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)
                       and e.key.evaluated_value in ("traceparent", b"traceparent")
                       for e in value.elements) or any(
                isinstance(e, cst.StarredDictElement) and self._is_captured(e.value)
                for e in value.elements)
        if isinstance(value, cst.Call) and value.args:
            return self._is_captured(value.args[0].value)
        return False

    def _is_captured(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Name):
            if self._captured(value.value):
                return True
            bound = self._bound_once(value.value)
            value = bound if bound is not None else value
        return isinstance(value, cst.Call) and _last(value.func) in CAPTURES

    def _is_param(self, value: cst.BaseExpression) -> bool:
        if not isinstance(value, cst.Name) or not self.functions:
            return False
        params = self.functions[-1].params
        star = [params.star_arg] if isinstance(params.star_arg, cst.Param) else []
        names = {p.name.value for p in (*params.posonly_params, *params.params,
                                        *params.kwonly_params, *star)}
        return value.value in names and not self._assignments(value.value)

    def _assignments(self, name: str) -> list[tuple[cst.SimpleStatementLine | None,
                                                    cst.BaseExpression | None]]:
        """Every binding of ``name`` in the current function: (statement, value or None)."""
        return _bindings_in(self.functions[-1], name)

    def _bound_once(self, name: str) -> cst.BaseExpression | None:
        """The value ``name`` holds at the current statement: the nearest binding before it in
        its block (or, past a compound statement that binds it nowhere else, in an enclosing
        one), when that binding is a plain assignment; None when the code does not say."""
        if not self._statements:
            return None
        function = self.functions[-1]
        places = list(walk(function.body))
        here = next((p for p in places if p.statement is self._statements[-1]), None)
        if here is None or not here.in_block:
            return None
        at = {p.chain: p.statement for p in places}
        suites = {id(n): n for n in _descendants(function) if isinstance(n, cst.IndentedBlock)}
        chain = here.chain
        for depth in range(len(chain) - 1, -1, -1):
            block_id, index = chain[depth]
            block = suites.get(block_id)
            if block is None:
                return None
            for statement in reversed(block.body[:index]):
                found = _bindings_in(statement, name)
                if found:
                    (bound, value), = found if len(found) == 1 else ((None, None),)
                    return value if bound is statement else None
            enclosing = at.get(chain[:depth]) if depth else None
            if enclosing is None:
                return None
            # a loop's later statements reach it again, a try's handlers see its body's
            if not isinstance(enclosing, cst.If) and _bindings_in(enclosing, name):
                return None
        return None

    def _read_later(self, name: str) -> bool:
        """Whether ``name`` may be read after the current statement (a dict captured in place
        would then show the propagation keys there): in the statement itself besides the
        push, in the statements after it, or anywhere in a loop around it."""
        function = self.functions[-1]
        places = list(walk(function.body))
        here = next((p for p in places if p.statement is self._statements[-1]), None) \
            if self._statements else None
        if here is None:
            return True
        at = {p.chain: p.statement for p in places}
        suites = {id(n): n for n in _descendants(function) if isinstance(n, cst.IndentedBlock)}

        def reads(node: cst.CSTNode) -> int:  # its names, less the ones that bind it
            return sum(isinstance(n, cst.Name) and n.value == name
                       for n in _descendants(node)) - len(_bindings_in(node, name))

        if reads(here.statement) > 1:
            return True
        for depth in range(len(here.chain) - 1, -1, -1):
            block_id, index = here.chain[depth]
            block = suites.get(block_id)
            if block is None or any(reads(s) for s in block.body[index + 1:]):
                return True
            enclosing = at.get(here.chain[:depth]) if depth else None
            if isinstance(enclosing, (cst.For, cst.While)) and reads(enclosing) > 1:
                return True
        return False

    def _captured(self, name: str) -> bool:
        return any(dotted_name(arg.value) == name
                   for node in _descendants(self.functions[-1].body)
                   if isinstance(node, cst.Call) and _last(node.func) in CAPTURES
                   for arg in node.args)

    # -- wrappers the repo model sees --

    def _callee(self, receiver: cst.CSTNode, method: str) -> FunctionInfo | None:
        owner = self._repo_type(receiver)
        if owner is None:
            return None
        dotted = self.repo.method(owner, method)
        return self.repo.function(dotted) if dotted else None

    def _called(self, call: cst.Call) -> FunctionInfo | None:
        """The repo function a call calls: a method of a class the repo model knows the
        receiver to be, or a module function the file's name resolves to."""
        if isinstance(call.func, cst.Attribute):
            return self._callee(call.func.value, call.func.attr.value)
        if not isinstance(call.func, cst.Name) or not self.module_name or (
                self.functions and (self._assignments(call.func.value)
                                    or self._is_param(call.func))):
            return None
        dotted = self.repo.resolve(self.module_name, call.func.value)
        return self.repo.functions.get(dotted) if dotted else None

    def _forwarded_by(self, function: FunctionInfo) -> dict[str, bool]:
        if function.dotted not in self._wrappers:
            self._wrappers[function.dotted] = {}
            self._wrappers[function.dotted] = self._forwards(function, 0)
        return self._wrappers[function.dotted]

    def _forwards(self, function: FunctionInfo, depth: int) -> dict[str, bool]:
        """Parameter -> whether it is JSON text (else a dict the function encodes), for each
        parameter the function hands to a Redis push as its payload, directly, as
        ``json.dumps(param)``, or through repo functions it calls."""
        params = {p.name for p in function.params if p.kind is not ParamKind.VAR_KEYWORD}
        found: dict[str, bool] = {}
        for call in function.calls:
            if call.target is None:
                continue
            target = self.repo.canonical(call.target)
            owner, _, name = target.rpartition(".")
            if name in PUSHES and name not in PUBLISHES and owner in CLIENT_CLASSES:
                keyword_name = PUSHES[name]
                sources = list(call.args[1:]) if keyword_name is None else [
                    *call.args[1:2], *(v for k, v in call.keywords if k == keyword_name)]
                for source in sources:
                    if source in params:
                        found.setdefault(source, name != "xadd")
                    else:
                        encoded = self._encoded_param(function, source)
                        if encoded in params:
                            found.setdefault(encoded, False)
            elif depth < 3 and target in self.repo.functions:
                inner = self.repo.functions[target]
                forwarded = self._wrappers.get(target)
                if forwarded is None:
                    self._wrappers[target] = {}
                    forwarded = self._wrappers[target] = self._forwards(inner, depth + 1)
                positional = [p.name for p in inner.params
                              if p.kind in (ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL)]
                if inner.owner is not None and positional[:1] == ["self"]:
                    positional = positional[1:]
                passed = dict(zip(positional, call.args, strict=False))
                passed.update((k, v) for k, v in call.keywords if k is not None)
                for param, json_text in forwarded.items():
                    handed = passed.get(param)
                    if handed is not None and handed in params:
                        found.setdefault(handed, json_text)
        return found

    def _encoded_param(self, function: FunctionInfo, source: str) -> str | None:
        """``p`` when ``source`` is ``json.dumps(p, ...)`` in ``function``'s module."""
        try:
            tree = ast.parse(source, mode="eval").body
        except SyntaxError:
            return None
        if not (isinstance(tree, ast.Call) and tree.args and isinstance(tree.args[0], ast.Name)):
            return None
        callee = ast.unparse(tree.func)
        if self.repo.resolve(function.module, callee) not in DUMPS:
            return None
        return tree.args[0].id

    def _argument_for(self, call: cst.Call, function: FunctionInfo,
                      param: str) -> cst.Arg | None:
        positional = [p.name for p in function.params
                      if p.kind in (ParamKind.POSITIONAL_ONLY, ParamKind.POSITIONAL)]
        if function.owner is not None and positional[:1] == ["self"]:
            positional = positional[1:]
        index = positional.index(param) if param in positional else -1
        if any(arg.star for arg in call.args):
            self.report(call, f"{code(call.func)}(...) with *args/**kwargs: cannot see which "
                        f"argument is the payload {param} it pushes to Redis")
            return None
        return argument(call, index, param) if index >= 0 else keyword(call, param)

    # -- rewriting the producer's dict --

    def _captured_node(self, original: cst.CSTNode,
                       updated: cst.BaseExpression) -> cst.BaseExpression:
        copy = self._capture.get(original)
        if copy is None:
            return updated
        if not self.record_change(original, "the queued item now carries the current trace "
                                  "context (capture_for_queue)"):
            return updated
        value = cst.Call(cst.Name("dict"), [cst.Arg(updated)]) if copy else updated
        return cst.Call(cst.Name(self.kit_name(CAPTURE_FOR_QUEUE)), [cst.Arg(value)])

    def leave_Dict(self, original_node: cst.Dict,
                   updated_node: cst.Dict) -> cst.BaseExpression:
        return self._captured_node(original_node, updated_node)

    def leave_Name(self, original_node: cst.Name,
                   updated_node: cst.Name) -> cst.BaseExpression:
        return self._captured_node(original_node, updated_node)

    def leave_Call(self, original_node: cst.Call,
                   updated_node: cst.Call) -> cst.BaseExpression:
        return self._captured_node(original_node, updated_node)

    # -- consumers --

    def _consumer(self, node: cst.FunctionDef) -> None:
        if node.name.value.startswith("test"):
            return
        local: dict[str, str] = {}
        self._local = local
        self._bound_at = {}
        # a function that restores a context already is left as it is
        pending = not any(_last(n.func) in RESTORES for n in _descendants(node.body)
                          if isinstance(n, cst.Call))
        restored_seen = False  # the function's first read is its one site
        for place in walk(node.body):
            # a compound statement's header only tests the item (`if raw is None:`): the
            # handling is the first simple statement reading it
            read = None if not isinstance(place.statement, cst.SimpleStatementLine) else next(
                (e for part in header(place.statement)
                 for e in self._payload_reads(part, local)), None)
            if read is not None:
                parsed = _parsed_name(place.statement, self)
                if parsed is not None:
                    self._popped.add(parsed)  # what was read, parsed: re-queued as it is
                if pending:
                    self._restore(node, place, read)
                    pending = False
                elif not restored_seen:
                    self.record_correct(place.statement, "its handling restores a context")
                restored_seen = True
            before = dict(local)
            self._bind_consumer(place.statement, local)
            for name, kind in local.items():
                if before.get(name) != kind:
                    self._bound_at[name] = place
                    if kind in (VALUE, FIELDS, MESSAGE):
                        self._popped.add(name)

    def _source(self, expr: cst.BaseExpression, local: dict[str, str]) -> str | None:
        """What a pop, read or message iteration gives (PAIR, VALUE, STREAMS, MESSAGE...)."""
        if isinstance(expr, cst.Await):
            expr = expr.expression
        name = dotted_name(expr)
        if name is not None and name in local:
            return local[name]
        if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
            return None
        method, receiver = expr.func.attr.value, expr.func.value
        kind = self.kind_of(receiver, local)
        if kind == CLIENT:
            if method in PAIR_POPS:
                return PAIR
            if method in VALUE_POPS and argument(expr, 1, "count") is None:
                return VALUE
            if method in STREAM_READS:
                return STREAMS
            if method == "pubsub":
                return PUBSUB
        if kind == PUBSUB and method in ("get_message", "listen"):
            return None  # pub/sub messages are not captured into (see _push): nothing to restore
        function = self._callee(receiver, method)
        if function is not None and function.returns and _returns_pubsub(
                function, self.repo.resolve):
            return PUBSUB
        return None

    def _bind_consumer(self, statement: cst.BaseStatement, local: dict[str, str]) -> None:
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
                    targets = [t.target for t in small.targets] if isinstance(
                        small, cst.Assign) else [small.target]
                    kind = self._source(small.value, local)
                    for target in targets:
                        self._bind_target(target, kind, local)
        elif isinstance(statement, cst.For):
            kind = self._source(statement.iter, local)
            element = {"messages": MESSAGE, STREAMS: "stream", ENTRIES: "entry"}.get(kind or "")
            if element == MESSAGE:
                self._bind_target(statement.target, MESSAGE, local)
            elif element == "stream":
                self._bind_target(statement.target, "stream", local)
            elif element == "entry":
                self._bind_target(statement.target, "entry", local)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                if item.asname is not None:
                    self._bind_target(item.asname.name, self._source(item.item, local), local)

    def _bind_target(self, target: cst.BaseExpression, kind: str | None,
                     local: dict[str, str]) -> None:
        for name in _names(target):
            local.pop(name, None)  # rebound to something else
        if kind is None:
            return
        if isinstance(target, cst.Name):
            local[target.value] = kind
        elif isinstance(target, (cst.Tuple, cst.List)) and len(target.elements) == 2:
            second = target.elements[1].value
            inner = {PAIR: VALUE, "stream": ENTRIES, "entry": FIELDS}.get(kind)
            if inner is not None and isinstance(second, cst.Name):
                local[second.value] = inner

    def _payload_reads(self, node: cst.CSTNode, local: dict[str, str]) -> Iterator[str]:
        """The item expressions (as code) that ``node`` reads, outermost first."""
        for found in _descendants(node):
            item = self._item(found, local)
            if item is not None:
                yield item

    def _item(self, expr: cst.CSTNode, local: dict[str, str]) -> str | None:
        if isinstance(expr, cst.Name) and local.get(expr.value) in (VALUE, FIELDS):
            return expr.value
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1:
            base = dotted_name(expr.value)
            index = expr.slice[0].slice
            if base is None or not isinstance(index, cst.Index):
                return None
            key = index.value
            if local.get(base) == PAIR and isinstance(key, cst.Integer) and key.value == "1":
                return f"{base}[1]"
            if local.get(base) == MESSAGE and isinstance(key, cst.SimpleString) \
                    and key.evaluated_value == "data":
                return code(expr)
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) \
                and expr.func.attr.value == "get" and local.get(
                    dotted_name(expr.func.value) or "") == MESSAGE and expr.args \
                and isinstance(expr.args[0].value, cst.SimpleString) \
                and expr.args[0].value.evaluated_value == "data":
            return code(expr)
        return None

    def _restore(self, function: cst.FunctionDef, place: Place, item: str) -> None:
        base = item.split("[", 1)[0].split(".", 1)[0]
        bound = self._bound_at.get(base)
        if bound is None:
            return
        if _conditional(place.statement, item) and place.in_block:
            self.report(place.statement, f"{item} is read here only under a condition; handle "
                        "the item in its own statement inside with restore_from_queue(...)")
            return
        # handling inside a try body is the try statement's, so the except sees the span too
        while True:
            parent = self._enclosing_try(function, place)
            if parent is None or _inside(bound, parent):
                break
            place = parent
        statement, chain = place.statement, place.chain
        parsed = _parsed_name(statement, self)
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(
                statement.body[0], cst.Return):
            return  # a pop wrapper: its caller handles the item, out of this rule's sight
        if not place.in_block:  # a one-line suite's line is not in the tree: its statement is
            owner = next((p.statement for p in walk(function.body)
                          if p.chain == place.chain[:-1]), None)
            if owner is not None:
                self.report(owner, "the item popped from Redis is handled in a one-line block; "
                            "put it on its own lines so it can run in restore_from_queue(...)")
            return
        block, index = chain[-1]
        start = index
        if parsed is not None:
            block_node = self._block(function, block)
            if block_node is not None and index + 1 < len(block_node.body):
                item, start = parsed, index + 1
        block_node = self._block(function, block)
        if block_node is None:
            return
        region = block_node.body[start:]
        if any(isinstance(n, (cst.Yield)) for s in region for n in _descendants(s)):
            self.report(statement, "the handling of the item popped from Redis yields; a span "
                        "restored around it would stay open across the yields")
            return
        if self._restored_by_callee(region):
            return
        if not self.has_kit(statement):
            return
        if self.record_change(region[0], "the handling of the item read from Redis now runs "
                              "in a queue_processing span continuing its captured trace"):
            self._wraps[id(block_node)] = _Wrap(start, item)

    def _restored_by_callee(self, region: Sequence[cst.BaseStatement]) -> bool:
        """Whether the handling calls a repo function that restores a context itself."""
        if not self.module_name:
            return False
        for statement in region:
            for call in _descendants(statement):
                if not isinstance(call, cst.Call):
                    continue
                function = None
                if isinstance(call.func, cst.Attribute):
                    function = self._callee(call.func.value, call.func.attr.value)
                elif isinstance(call.func, cst.Name):
                    dotted = self.repo.resolve(self.module_name, call.func.value)
                    function = self.repo.function(dotted) if dotted else None
                if function is not None and self.repo.reaches(
                        function.dotted, lambda target: target.rsplit(".", 1)[-1] in RESTORES):
                    return True
        return False

    def _block(self, function: cst.FunctionDef, block_id: int) -> cst.IndentedBlock | None:
        for node in _descendants(function):
            if id(node) == block_id and isinstance(node, cst.IndentedBlock):
                return node
        return None

    def _enclosing_try(self, function: cst.FunctionDef, place: Place) -> Place | None:
        """The ``try`` whose body is the block holding the statement, if any."""
        for other in walk(function.body):
            if isinstance(other.statement, cst.Try) and other.in_block \
                    and other.chain == place.chain[:-1] \
                    and place.chain[-1][0] == id(other.statement.body):
                return other
        return None

    def leave_IndentedBlock(self, original_node: cst.IndentedBlock,
                            updated_node: cst.IndentedBlock) -> cst.IndentedBlock:
        updated_node = super().leave_IndentedBlock(original_node, updated_node)
        wrap = self._wraps.get(id(original_node))
        if wrap is None:
            return updated_node
        body = list(updated_node.body)
        region = body[wrap.index:]
        first = cast(cst.SimpleStatementLine, region[0])  # every statement has leading_lines
        head = cst.ensure_type(cst.parse_statement(
            f"with {self.kit_name(RESTORE_FROM_QUEUE)}({wrap.item}):\n    pass\n"), cst.With)
        wrapped = head.with_changes(
            leading_lines=first.leading_lines,
            body=head.body.with_changes(body=[first.with_changes(leading_lines=()),
                                              *region[1:]]))
        return updated_node.with_changes(body=[*body[:wrap.index], wrapped])


def _parsed_name(statement: cst.BaseStatement, codemod: RedisQueue) -> str | None:
    """``P`` for ``P = json.loads(...)``."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign) and len(small.targets) == 1 \
            and isinstance(small.targets[0].target, cst.Name) \
            and isinstance(small.value, cst.Call) and codemod.refers_to(small.value.func, LOADS):
        return small.targets[0].target.value
    return None


def _inside(inner: Place, outer: Place) -> bool:
    """Whether ``inner`` is nested in the compound statement at ``outer``."""
    return len(inner.chain) > len(outer.chain) and inner.chain[:len(outer.chain)] == outer.chain


def _conditional(statement: cst.BaseStatement, item: str) -> bool:
    """Whether ``item`` is read in ``statement`` only under a condition (``a and item``, a
    conditional expression, a comprehension, a lambda)."""
    for node in _descendants(statement):
        if isinstance(node, cst.BooleanOperation):
            parts = [node.right]
        elif isinstance(node, cst.IfExp):
            parts = [node.body, node.orelse]
        elif isinstance(node, (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp,
                               cst.Lambda)):
            parts = [node]
        else:
            continue
        if any(code(n) == item for part in parts for n in _descendants(part)):
            return True
    return False


def _returns_pubsub(function: FunctionInfo, resolve) -> bool:
    """Whether the return annotation is a PubSub, or a context manager / awaitable of one."""
    try:
        tree = ast.parse(function.returns or "", mode="eval").body
    except SyntaxError:
        return False
    while isinstance(tree, ast.Subscript):
        outer = ast.unparse(tree.value).rsplit(".", 1)[-1]
        if outer not in _MANAGERS:
            return False
        inner = tree.slice
        tree = inner.elts[-1 if outer in ("Coroutine",) else 0] \
            if isinstance(inner, ast.Tuple) and inner.elts else inner
    name = ast.unparse(tree) if isinstance(tree, (ast.Name, ast.Attribute)) else None
    return name is not None and resolve(function.module, name) in PUBSUB_CLASSES


Binding = tuple[cst.SimpleStatementLine | None, cst.BaseExpression | None]


def _bindings_in(root: cst.CSTNode, name: str) -> list[Binding]:
    """Every binding of ``name`` in ``root`` (not in nested scopes): (its simple statement, the
    value of a plain ``name = value``; None for any other kind of binding)."""
    return _all_bindings(root).get(name, [])


@functools.lru_cache(maxsize=512)
def _all_bindings(root: cst.CSTNode) -> dict[str, list[Binding]]:
    """The bindings of every name in ``root``, found in one walk that rebuilds nothing (the
    rule asks about a function's names many times; walking it per name was most of its cost)."""
    finder = without_rebuild(_BindingFinder)(root)
    root.visit(finder)
    return finder.found


class _BindingFinder(cst.CSTVisitor):
    def __init__(self, root: cst.CSTNode) -> None:
        self.root = root
        self.statement: cst.SimpleStatementLine | None = None
        self.found: dict[str, list[Binding]] = {}

    def _add(self, name: str | None, value: cst.BaseExpression | None = None,
             statement: cst.SimpleStatementLine | None = None) -> None:
        if name:
            self.found.setdefault(name, []).append((statement, value))

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.statement = node

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Name):
                self._add(target.target.value, node.value, self.statement)
            else:
                for name in _names(target.target):
                    self._add(name, None, self.statement)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._add(dotted_name(node.target), node.value, self.statement)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._add(dotted_name(node.target), None, self.statement)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self._add(dotted_name(node.target))

    def visit_For(self, node: cst.For) -> None:
        for name in _names(node.target):
            self._add(name)

    def visit_AsName(self, node: cst.AsName) -> None:
        for name in _names(node.name):
            self._add(name)

    def visit_Del(self, node: cst.Del) -> None:
        for name in _names(node.target):
            self._add(name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if node is not self.root:
            self._add(node.name.value)
        return node is self.root

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self._add(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


def _names(target: cst.CSTNode) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return {n for e in target.elements for n in _names(e.value)}
    if isinstance(target, cst.StarredElement):
        return _names(target.value)
    return set()


def _last(func: cst.CSTNode) -> str | None:
    name = dotted_name(func)
    return name.rsplit(".", 1)[-1] if name else None


def _descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    """``node`` and everything under it, outermost first, not entering nested scopes."""
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        yield current
        children: Sequence[cst.CSTNode] = current.children
        stack.extend(reversed([c for c in children if current is node or not isinstance(
            c, (cst.FunctionDef, cst.ClassDef, cst.Lambda))]))


def _constant(value: cst.BaseExpression) -> bool:
    """A literal signal (``"wake"``, ``1``): it has nowhere to carry context."""
    return isinstance(value, (cst.SimpleString, cst.ConcatenatedString, cst.Integer,
                              cst.Float, cst.FormattedString))
