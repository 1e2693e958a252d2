"""Small readers of LibCST nodes that the checks share (``dotted_name`` is the codemods' own)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst
import libcst.matchers as m

from scaffold.engine.rule import dotted_name


def terminal_name(node: cst.BaseExpression) -> str | None:
    """The last name of a callee: ``c`` for ``a.b().c`` and for ``c``."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return node.attr.value
    return None


def call_name(node: cst.CSTNode) -> str | None:
    """The terminal name of a call's callee, or ``None`` if ``node`` is not a call."""
    return terminal_name(node.func) if isinstance(node, cst.Call) else None


def keyword(call: cst.Call, name: str) -> cst.Arg | None:
    return next((arg for arg in call.args if arg.keyword and arg.keyword.value == name), None)


def positional(call: cst.Call, index: int) -> cst.Arg | None:
    args = [arg for arg in call.args if arg.keyword is None and not arg.star]
    return args[index] if index < len(args) else None


def argument(call: cst.Call, index: int, name: str) -> cst.BaseExpression | None:
    """The value passed for a parameter, by keyword or by position."""
    arg = keyword(call, name) or positional(call, index)
    return arg.value if arg else None


def string_value(node: cst.CSTNode) -> str | None:
    """The value of a plain (non f-) string literal, implicit concatenation included."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def is_true(node: cst.BaseExpression | None) -> bool:
    return m.matches(node, m.Name("True")) if node is not None else False


def calls_in(node: cst.CSTNode) -> Iterator[cst.Call]:
    """Every call in ``node``'s own code: nested functions, lambdas and classes are skipped."""
    found: list[cst.Call] = []

    class _Collect(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> None:
            found.append(call)

        def visit_FunctionDef(self, function: cst.FunctionDef) -> bool:
            return function is node

        def visit_Lambda(self, lambda_: cst.Lambda) -> bool:
            return lambda_ is node

        def visit_ClassDef(self, class_: cst.ClassDef) -> bool:
            return class_ is node

    node.visit(_Collect())
    return iter(found)


def names_read(node: cst.CSTNode) -> set[str]:
    """Every dotted name (``x``, ``self.span``) read inside ``node``, nested scopes included."""
    found: set[str] = set()

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            found.add(name.value)

        def visit_Attribute(self, attribute: cst.Attribute) -> None:
            dotted = dotted_name(attribute)
            if dotted:
                found.add(dotted)

    node.visit(_Collect())
    return found


_WORD = re.compile(r"[a-z0-9]+")


def identifier_words(node: cst.CSTNode) -> set[str]:
    """Lower-case words of every name, attribute and string key used inside an expression.

    ``request.headers["X-User-Id"]`` gives ``{"request", "headers", "x", "user", "id"}``, so a
    value can be judged by the identifiers it is built from.
    """
    words: set[str] = set()

    def add(text: str) -> None:
        # camelCase to snake words before splitting on anything that is not a letter or digit
        snake = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text).lower()
        words.update(_WORD.findall(snake))

    class _Collect(cst.CSTVisitor):
        def visit_Name(self, name: cst.Name) -> None:
            add(name.value)

        def visit_Subscript(self, subscript: cst.Subscript) -> None:
            for element in subscript.slice:
                if isinstance(element.slice, cst.Index):
                    key = string_value(element.slice.value)
                    if key:
                        add(key)

        def visit_Call(self, call: cst.Call) -> None:
            # dict.get("key") / getattr(obj, "key") read a named field, like a subscript
            if terminal_name(call.func) in {"get", "getattr", "getenv", "pop"}:
                for arg in call.args:
                    key = string_value(arg.value)
                    if key:
                        add(key)

    node.visit(_Collect())
    return words
