"""Visitor dispatch without LibCST's per-node method lookups.

For every node a LibCST visitor visits, ``on_visit``, ``on_leave`` and, for every child
field, ``on_visit_attribute`` / ``on_leave_attribute`` build a method name with an f-string
and ``getattr`` it; the name always resolves, to a no-op stub of ``CSTTyped*Functions`` when
the visitor does not override it. A matcher-decoratable transformer (every codemod) adds
matcher bookkeeping on top. Profiled on real code, that dispatch was over a third of a
codemod's time.

``FastTransformer`` and ``FastVisitor`` look each node type up once per class, skip the
stubs, and do nothing per child field unless the class overrides an attribute hook. They
call exactly the methods LibCST would call, in the same order, with the same results; a
transformer that uses matcher decorators (``@m.visit``, ``@m.call_if_inside``) keeps
LibCST's own dispatch.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import libcst as cst
from libcst._typed_visitor import CSTTypedTransformerFunctions, CSTTypedVisitorFunctions
from libcst.matchers import MatcherDecoratableTransformer


class _Table:
    """The names of the visit/leave methods one visitor class overrides, by node type."""

    def __init__(self, cls: type, stubs: type) -> None:
        self._cls = cls
        self._stubs = stubs
        self._visit: dict[type, str | None] = {}
        self._leave: dict[type, str | None] = {}
        self.attribute_hooks = any(
            name.startswith(("visit_", "leave_")) and name.count("_") >= 2
            and getattr(cls, name) is not getattr(stubs, name, None)
            for name in dir(cls)
        )

    def _own(self, name: str) -> str | None:
        method = getattr(self._cls, name, None)
        return None if method is None or method is getattr(self._stubs, name, None) else name

    def visit(self, kind: type) -> str | None:
        try:
            return self._visit[kind]
        except KeyError:
            name = self._visit[kind] = self._own(f"visit_{kind.__name__}")
            return name

    def leave(self, kind: type) -> str | None:
        try:
            return self._leave[kind]
        except KeyError:
            name = self._leave[kind] = self._own(f"leave_{kind.__name__}")
            return name


_TABLES: WeakKeyDictionary[type, _Table] = WeakKeyDictionary()


def _table(cls: type, stubs: type) -> _Table:
    table = _TABLES.get(cls)
    if table is None:
        table = _TABLES[cls] = _Table(cls, stubs)
    return table


class FastTransformer(MatcherDecoratableTransformer):
    """A matcher-decoratable transformer with cached dispatch (see the module docstring).

    Call ``fast_dispatch()`` at the end of ``__init__`` (LibCST's codemod classes call their
    bases' initialisers by name, so this one could be skipped); until then, LibCST's own.
    """

    _dispatch: _Table | None = None

    def fast_dispatch(self) -> None:
        plain = not (self._extra_visit_funcs or self._extra_leave_funcs or self._matchers)
        self._dispatch = _table(type(self), CSTTypedTransformerFunctions) if plain else None

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._dispatch is None:
            return super().on_visit(node)
        name = self._dispatch.visit(type(node))
        return name is None or getattr(self, name)(node) is not False

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        if self._dispatch is None:
            return super().on_leave(original_node, updated_node)
        name = self._dispatch.leave(type(original_node))
        return updated_node if name is None else getattr(self, name)(original_node, updated_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if self._dispatch is None or self._dispatch.attribute_hooks:
            super().on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        if self._dispatch is None or self._dispatch.attribute_hooks:
            super().on_leave_attribute(original_node, attribute)


class FastVisitor(cst.CSTVisitor):
    """A read-only visitor with cached dispatch (see the module docstring)."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        name = _table(type(self), CSTTypedVisitorFunctions).visit(type(node))
        return name is None or getattr(self, name)(node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        name = _table(type(self), CSTTypedVisitorFunctions).leave(type(original_node))
        if name is not None:
            getattr(self, name)(original_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if _table(type(self), CSTTypedVisitorFunctions).attribute_hooks:
            super().on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        if _table(type(self), CSTTypedVisitorFunctions).attribute_hooks:
            super().on_leave_attribute(original_node, attribute)
