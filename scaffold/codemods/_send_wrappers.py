"""What kafka-produce needs to know about a configured send wrapper, read from the repo model.

Not a codemod (the leading underscore keeps it out of the registry). A wrapper
(``kafka-producers = ["pkg.bus.KafkaBus.publish"]``) is looked up by its dotted name in
``scaffold.repo.RepoModel``; from its signature and its calls this module says

- whether its own body sends (``self._producer.send_and_wait(...)``, or already through the
  kit's ``traced_send``): then the body is where the PRODUCER span goes, and its callers are
  left alone, so a message gets one span;
- otherwise, how ``traced_publish`` may call it: which positional argument of a call is the
  headers, and whether ``headers`` takes ``(key, bytes)`` pairs (``headers_as=list``, the
  default) or a ``dict[str, str]`` (``headers_as=dict``); anything else is a reason not to
  wrap.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass

from scaffold.kit_api import TRACED_PRODUCER, TRACED_PUBLISH, TRACED_SEND
from scaffold.repo import FunctionInfo, ParamKind, RepoModel

PAIRS = "list"
DICT = "dict"
SEND_METHODS = frozenset({"send", "send_and_wait", "send_batch"})
KIT_SENDS = frozenset({TRACED_SEND, TRACED_PUBLISH, TRACED_PRODUCER})

_SEQUENCES = frozenset({
    "builtins.list", "typing.List", "typing.Sequence", "collections.abc.Sequence",
    "typing.Iterable", "collections.abc.Iterable", "typing.Collection",
    "collections.abc.Collection",
})
_MAPPINGS = frozenset({
    "builtins.dict", "typing.Dict", "typing.Mapping", "collections.abc.Mapping",
    "typing.MutableMapping", "collections.abc.MutableMapping",
})
_TUPLES = frozenset({"builtins.tuple", "typing.Tuple"})
_ANY = frozenset({"typing.Any", "builtins.object"})
_NONE = "builtins.None"


def find(model: RepoModel, entry: str) -> FunctionInfo | None:
    """The wrapper a ``kafka-producers`` entry names: by its dotted name, or (a short entry
    such as ``KafkaBus.publish``) the one function of the repo whose name ends in it."""
    found = model.function(entry)
    if found is not None:
        return found
    candidates = [info for dotted, info in model.functions.items()
                  if dotted.endswith("." + entry)]
    return candidates[0] if len(candidates) == 1 else None


def own_send(info: FunctionInfo, model: RepoModel) -> str | None:
    """The send the wrapper's body makes itself (``self._producer.send_and_wait``), directly or
    through functions of the repo it calls (``self._send_with_retry(...)``), or None."""
    for function in bodies(info, model):
        for call in function.calls:
            target = model.canonical(call.target) if call.target else ""
            if call.expression.rsplit(".", 1)[-1] in KIT_SENDS or target.rsplit(".", 1)[
                    -1] in KIT_SENDS or is_send(call.expression, direct=function is info):
                return call.expression
    return None


def is_send(expression: str, *, direct: bool) -> bool:
    """Is ``receiver.send(...)`` a Kafka send? In a wrapper's own body any ``send`` /
    ``send_and_wait`` is (it was configured as one); in a function it calls, only the
    unmistakable ones: ``send_and_wait``/``send_batch``, or ``send`` on a ``...producer``."""
    receiver, _, method = expression.rpartition(".")
    if not receiver or method not in SEND_METHODS:
        return False
    return direct or method != "send" or "producer" in receiver.rsplit(".", 1)[-1].lower()


def bodies(info: FunctionInfo, model: RepoModel) -> list[FunctionInfo]:
    """The wrapper and every function of the repo it calls, directly or not."""
    found = {info.dotted: info}
    for _, _, target in model.reachable(info.dotted):
        function = model.functions.get(target)
        if function is not None:
            found.setdefault(function.dotted, function)
    return list(found.values())


@dataclass(frozen=True)
class Plan:
    """How ``traced_publish`` can call the wrapper, or why it cannot."""

    problem: str | None = None
    headers_as: str = PAIRS
    headers_index: int | None = None  # the headers' position among a call's positionals


def plan(info: FunctionInfo, model: RepoModel, *, positionals: int,
         keywords: frozenset[str]) -> Plan:
    """Can ``traced_publish(wrapper, topic, *rest, headers=...)`` replace a call of the
    wrapper passing ``positionals`` positional arguments (the topic first) and ``keywords``?"""
    params = list(info.params)
    if info.owner is not None and params and params[0].kind in (
            ParamKind.POSITIONAL, ParamKind.POSITIONAL_ONLY):
        params = params[1:]  # self
    positional = [p for p in params if p.kind in (ParamKind.POSITIONAL_ONLY,
                                                  ParamKind.POSITIONAL)]
    if not positional:
        return Plan(f"{info.qualname} takes no topic first")
    if "topic" in keywords and positional[0].name != "topic":
        return Plan(f"{info.qualname}'s first parameter is {positional[0].name!r}, not topic")
    if keywords & {"publish", "headers_as"}:
        return Plan("passes a keyword traced_publish takes itself")
    headers = info.param("headers")
    if headers is None or headers.kind in (ParamKind.POSITIONAL_ONLY,
                                           ParamKind.VAR_POSITIONAL, ParamKind.VAR_KEYWORD):
        return Plan(f"{info.qualname} takes no headers= parameter")
    index = next((i for i, p in enumerate(positional) if p.name == "headers"), None)
    if index is not None and index >= positionals:
        index = None  # not passed by position
    if headers.annotation is None:
        return Plan(f"the headers parameter of {info.qualname} is not annotated: it cannot "
                    "be told whether it takes (key, bytes) pairs or a dict")
    form = headers_form(headers.annotation, info.module, model)
    if form is None:
        return Plan(f"the headers parameter of {info.qualname} is {headers.annotation}, "
                    "neither (key, bytes) pairs nor dict[str, str]")
    return Plan(None, form, index)


def headers_form(annotation: str, module: str, model: RepoModel) -> str | None:
    """PAIRS for ``list[tuple[str, bytes]] | None`` and the like, DICT for
    ``dict[str, str] | None`` and the like, None for anything else."""
    try:
        node = ast.parse(annotation.strip(), mode="eval").body
    except SyntaxError:
        return None
    forms = {_form(member, module, model) for member in _members(node, module, model)}
    forms.discard(_NONE)
    return forms.pop() if len(forms) == 1 and forms <= {PAIRS, DICT} else None


def _name(node: ast.expr, module: str, model: RepoModel) -> str | None:
    """What a name in an annotation stands for, canonical (``Dict`` -> ``typing.Dict``)."""
    if isinstance(node, ast.Constant) and node.value is None:
        return _NONE
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    dotted = ".".join([node.id, *reversed(parts)])
    resolved = model.resolve(module, dotted)
    if resolved is not None:
        return resolved
    if not parts and hasattr(builtins, node.id):
        return f"builtins.{node.id}"
    return dotted if parts else None


def _members(node: ast.expr, module: str, model: RepoModel) -> list[ast.expr]:
    """The members of a union annotation (``X | None``, ``Optional[X]``, ``Union[X, Y]``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _members(ast.parse(node.value, mode="eval").body, module, model)
        except SyntaxError:
            return [node]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*_members(node.left, module, model), *_members(node.right, module, model)]
    if isinstance(node, ast.Subscript):
        name = _name(node.value, module, model)
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if name == "typing.Optional":
            return [*_members(args[0], module, model), ast.Constant(None)]
        if name == "typing.Union":
            return [member for arg in args for member in _members(arg, module, model)]
    return [node]


def _args(node: ast.Subscript) -> list[ast.expr]:
    return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]


def _form(node: ast.expr, module: str, model: RepoModel) -> str | None:
    if not isinstance(node, ast.Subscript):
        return _name(node, module, model) if _name(node, module, model) == _NONE else None
    name = _name(node.value, module, model)
    args = _args(node)
    if name in _MAPPINGS and len(args) == 2:
        key, value = (_name(arg, module, model) for arg in args)
        return DICT if key == "builtins.str" and value in {"builtins.str", *_ANY} else None
    if name in _SEQUENCES and len(args) == 1 and isinstance(args[0], ast.Subscript):
        pair = args[0]
        if _name(pair.value, module, model) not in _TUPLES or len(_args(pair)) != 2:
            return None
        key_node, value_node = _args(pair)
        values = {_name(m, module, model) for m in _members(value_node, module, model)}
        values.discard(_NONE)
        if _name(key_node, module, model) == "builtins.str" and values == {"builtins.bytes"}:
            return PAIRS
    return None
