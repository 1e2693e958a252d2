"""Visitor dispatch without LibCST's per-node method lookups.

For every node a LibCST visitor visits, ``on_visit``, ``on_leave`` and, for every child
field, ``on_visit_attribute`` / ``on_leave_attribute`` build a method name with an f-string
and ``getattr`` it; the name always resolves, to a no-op stub of ``CSTTyped*Functions`` when
the visitor does not override it. A matcher-decoratable transformer (every codemod) adds
matcher bookkeeping on top. Profiled on real code, that dispatch was over a third of a
codemod's time.

``FastTransformer`` and ``FastVisitor`` look each node type up once per class, skip the
stubs, and do nothing per child field unless the class overrides an attribute hook; a
``FastVisitor`` also walks the tree without rebuilding it. They call exactly the methods
LibCST would call, in the same order, with the same results; a transformer that uses matcher
decorators (``@m.visit``, ``@m.call_if_inside``) keeps LibCST's own dispatch.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast
from weakref import WeakKeyDictionary

import libcst as cst
from libcst._typed_visitor import CSTTypedTransformerFunctions, CSTTypedVisitorFunctions
from libcst.codemod import Codemod as LibcstCodemod
from libcst.codemod import CodemodContext
from libcst.matchers import MatcherDecoratableTransformer
from libcst.matchers._decorators import (
    CONSTRUCTED_LEAVE_MATCHER_ATTR,
    CONSTRUCTED_VISIT_MATCHER_ATTR,
    VISIT_NEGATIVE_MATCHER_ATTR,
    VISIT_POSITIVE_MATCHER_ATTR,
)

from scaffold.engine.fast._mode import is_plain

_DECORATOR_MARKS = (CONSTRUCTED_LEAVE_MATCHER_ATTR, CONSTRUCTED_VISIT_MATCHER_ATTR,
                    VISIT_NEGATIVE_MATCHER_ATTR, VISIT_POSITIVE_MATCHER_ATTR)


class _Table:
    """The names of the visit/leave methods one visitor class overrides, by node type."""

    def __init__(self, cls: type, stubs: type) -> None:
        self._cls = cls
        self._stubs = stubs
        self._visit: dict[type, str | None] = {}
        self._leave: dict[type, str | None] = {}
        own = {name for klass in cls.__mro__
               if not klass.__module__.startswith("libcst.") and klass.__module__ != __name__
               for name in vars(klass)}  # LibCST's own classes define only stubs
        # attribute hooks, or on_visit/on_leave of its own: the class gets LibCST's traversal
        self.attribute_hooks = any(
            name.startswith(("visit_", "leave_")) and name.count("_") >= 2 for name in own
        ) or bool(own & {"on_visit", "on_leave", "on_visit_attribute", "on_leave_attribute"})

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


_DECORATED: WeakKeyDictionary[type, bool] = WeakKeyDictionary()


def uses_matcher_decorators(cls: type) -> bool:
    """Whether a visitor class has methods under ``@m.visit``, ``@m.call_if_inside``..."""
    decorated = _DECORATED.get(cls)
    if decorated is None:
        decorated = _DECORATED[cls] = any(
            hasattr(getattr(cls, name, None), mark) for name in dir(cls)
            for mark in _DECORATOR_MARKS
        )
    return decorated


class FastTransformer(MatcherDecoratableTransformer):
    """A matcher-decoratable transformer with cached dispatch (see the module docstring).

    Call ``fast_dispatch()`` at the end of ``__init__`` (LibCST's codemod classes call their
    bases' initialisers by name, so this one could be skipped); until then, LibCST's own.
    """

    _dispatch: _Table | None = None
    _keep: set[cst.CSTNode] | frozenset[cst.CSTNode] | None = None

    def init_codemod(self, context: CodemodContext) -> None:
        """``ContextAwareTransformer.__init__``, minus its three scans of ``dir(self)`` for
        matcher decorators when the class has none (a fifth of a small file's time)."""
        if is_plain() or uses_matcher_decorators(type(self)):
            MatcherDecoratableTransformer.__init__(self)
        else:
            cst.CSTTransformer.__init__(self)
            self._matchers = {}
            self._extra_visit_funcs = {}
            self._extra_leave_funcs = {}
        # a mixin: every FastTransformer subclass is also a LibCST Codemod
        LibcstCodemod.__init__(cast(LibcstCodemod, self), context)

    def fast_dispatch(self) -> None:
        plain = not (self._extra_visit_funcs or self._extra_leave_funcs or self._matchers)
        fast = plain and not is_plain()
        self._dispatch = _table(type(self), CSTTypedTransformerFunctions) if fast else None

    def prune_to(self, nodes: set[cst.CSTNode] | frozenset[cst.CSTNode]) -> None:
        """Visit only ``nodes`` (each with its ancestors, see ``FastVisitor.mark_path``) from
        here on: any other subtree is neither visited nor rebuilt, and comes out as it went in.

        LibCST rebuilds every node a transformer enters; on a large file with three sites,
        that rebuild was most of a codemod's time. Only for a transformer whose every
        ``visit_*`` has a matching ``leave_*`` that undoes it (a stack): both are skipped.
        """
        if not is_plain():  # plain LibCST visits and rebuilds everything
            self._keep = nodes

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self._keep is not None and node not in self._keep:
            return False
        if self._dispatch is None:
            return super().on_visit(node)
        name = self._dispatch.visit(type(node))
        return name is None or getattr(self, name)(node) is not False

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        if self._keep is not None and original_node not in self._keep:
            return updated_node
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


class _FieldOrder(cst.CSTVisitor):
    """Records the fields a node's own traversal visits, in order (children not entered)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[str] = []

    def on_visit(self, node: cst.CSTNode) -> bool:
        return False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        pass

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        self.fields.append(attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(node: cst.CSTNode) -> tuple[str, ...]:
    """The child fields of a node type in LibCST's visiting order, learnt from its first node."""
    fields = _FIELDS.get(type(node))
    if fields is None:
        order = _FieldOrder()
        node._visit_and_replace_children(order)
        fields = _FIELDS[type(node)] = tuple(order.fields)
    return fields


class FastVisitor(cst.CSTVisitor):
    """A read-only visitor with cached dispatch that does not rebuild the tree it reads.

    LibCST's ``visit`` rebuilds every node even for a read-only visitor (and throws the copy
    away). Here ``node.visit(visitor)`` walks the node's fields itself, in LibCST's order,
    calling the same ``visit_*``/``leave_*`` methods; a visitor with attribute hooks
    (``visit_Call_func``) gets LibCST's own traversal.
    """

    marked: set[cst.CSTNode] | None = None  # set it to a set before the visit to mark paths
    _path: list[cst.CSTNode]

    def mark_path(self) -> None:
        """Add the node being visited and all its ancestors to ``marked`` (for a
        transformer's ``prune_to``)."""
        assert self.marked is not None, "set marked = set() before the visit"
        self.marked.update(self._path)

    def on_visit(self, node: cst.CSTNode) -> bool:
        table = _table(type(self), CSTTypedVisitorFunctions)
        if table.attribute_hooks or is_plain():
            if self.marked is not None:  # LibCST's traversal: the path kept on the way
                self._path = getattr(self, "_path", [])
                self._path.append(node)
            return super().on_visit(node)
        self._path = []
        self._walk(node, table)
        return False  # walked already; LibCST's on_leave below is then a no-op

    def on_leave(self, original_node: cst.CSTNode) -> None:
        if _table(type(self), CSTTypedVisitorFunctions).attribute_hooks or is_plain():
            super().on_leave(original_node)
            if self.marked is not None and getattr(self, "_path", None):
                self._path.pop()

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        if _table(type(self), CSTTypedVisitorFunctions).attribute_hooks or is_plain():
            super().on_visit_attribute(node, attribute)

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        if _table(type(self), CSTTypedVisitorFunctions).attribute_hooks or is_plain():
            super().on_leave_attribute(original_node, attribute)

    def _walk(self, node: cst.CSTNode, table: _Table) -> None:
        path = self._path  # the ancestors, for mark_path (two list operations a node)
        path.append(node)
        name = table.visit(type(node))
        if name is None or getattr(self, name)(node) is not False:
            for field_name in _fields(node):
                value = getattr(node, field_name)
                shape = _SHAPES.get(type(value)) or _shape(value)
                if shape is _NODE:
                    self._walk(value, table)
                elif shape is _SEQUENCE:
                    for child in value:
                        self._walk(child, table)
        name = table.leave(type(node))
        if name is not None:
            getattr(self, name)(node)
        path.pop()


# What a child field holds, by the type of its value: a node, a sequence of nodes, or
# neither (None, MaybeSentinel). A dict lookup: ``isinstance(value, CSTNode)`` goes through
# ``ABCMeta.__instancecheck__``, and a walk asks it for every field of every node.
_NODE, _SEQUENCE, _LEAF = "node", "sequence", "leaf"
_SHAPES: dict[type, str] = {}


def _shape(value: object) -> str:
    shape = _SHAPES[type(value)] = (
        _NODE if isinstance(value, cst.CSTNode)
        else _SEQUENCE if isinstance(value, (list, tuple)) else _LEAF
    )
    return shape


_V = TypeVar("_V", bound=cst.CSTVisitor)
_WITHOUT_REBUILD: WeakKeyDictionary[type, type] = WeakKeyDictionary()


def without_rebuild(cls: type[_V]) -> type[_V]:
    """A subclass of a read-only LibCST visitor that calls the same hooks in the same order,
    and never rebuilds the nodes it walks.

    For visitors whose classes are not ours: LibCST's metadata providers run their own
    (``ScopeVisitor``, ``ExpressionContextVisitor``), and ``CSTNode.visit`` rebuilds every node
    it enters even for a ``CSTVisitor`` ("TODO: provide traversal where children are not
    replaced"), then drops the copy. Here ``on_visit`` walks the children itself and answers
    False, so ``visit`` enters nothing; the visits such a visitor starts itself
    (``node.body.visit(self)``) come back through the same ``on_visit``.
    """
    if is_plain():
        return cls
    sub = _WITHOUT_REBUILD.get(cls)
    if sub is None:
        # the rule's own module: a class hook that reads it (a rule's ID) sees the same
        namespace = {"__module__": cls.__module__, "__doc__": cls.__doc__}
        sub = _WITHOUT_REBUILD[cls] = type(
            f"{cls.__name__}WithoutRebuild", (_NoRebuild, cls), namespace)
    return sub  # type: ignore[return-value]


class _NoRebuild(cst.CSTVisitor):
    """``without_rebuild``'s walk; first in the MRO, so ``super()`` is the visitor's own."""

    def on_visit(self, node: cst.CSTNode) -> bool:
        if super().on_visit(node):
            hooks = _attribute_hooks(type(self))
            for field_name in _fields(node):
                hooked = hooks is None or (type(node).__name__, field_name) in hooks
                if hooked:
                    self.on_visit_attribute(node, field_name)
                value = getattr(node, field_name)
                shape = _SHAPES.get(type(value)) or _shape(value)
                if shape is _NODE:
                    self.on_visit(value)
                    self.on_leave(value)
                elif shape is _SEQUENCE:
                    for child in value:
                        self.on_visit(child)
                        self.on_leave(child)
                if hooked:
                    self.on_leave_attribute(node, field_name)
        return False  # children walked: CSTNode.visit goes straight to on_leave


_HOOKS: WeakKeyDictionary[type, frozenset[tuple[str, str]] | None] = WeakKeyDictionary()


def _attribute_hooks(cls: type[cst.CSTVisitor]) -> frozenset[tuple[str, str]] | None:
    """The (node type, field) pairs a visitor class has attribute hooks for
    (``visit_ClassDef_bases``); None when it overrides the attribute dispatch itself."""
    if cls in _HOOKS:
        return _HOOKS[cls]
    hooks: frozenset[tuple[str, str]] | None
    if (cls.on_visit_attribute is not cst.CSTVisitor.on_visit_attribute
            or cls.on_leave_attribute is not cst.CSTVisitor.on_leave_attribute):
        hooks = None
    else:
        found = set()
        for name in dir(cls):
            prefix, _, rest = name.partition("_")
            kind, _, field_name = rest.partition("_")
            if prefix in ("visit", "leave") and field_name and getattr(cls, name) is not getattr(
                    CSTTypedVisitorFunctions, name, None):
                found.add((kind, field_name))
        hooks = frozenset(found)
    _HOOKS[cls] = hooks
    return hooks
