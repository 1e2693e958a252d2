"""The syntax gate: what a file's stdlib ``ast`` mentions, checked before LibCST parses it.

A file passes the text prefilter when a rule's needles occur anywhere, comments and
docstrings included. LibCST then costs about ten times a stdlib parse, and its scope analysis
several times more, so a second gate asks the ``ast`` (a C parser) whether the code itself
names anything the rule could match. A rule declares that as a ``SyntaxGate``:

- ``names``: qualified names as an import would spell them (``threading.Thread``); a file
  passes if any Name/Attribute chain resolves to one through any import of the file, in any
  scope (``from threading import Thread as T`` then ``T``; ``import concurrent.futures as
  cf`` then ``cf.ThreadPoolExecutor``), string annotations included;
- ``words``: identifiers used in code: a name, an attribute, an imported name, a function,
  class, parameter or keyword-argument name (``run_in_executor``);
- ``strings``: string constants (``"__main__"``);
- ``called_suffixes``: a call of a name ending in one of them (``EventEnvelope[T](...)``,
  ``events.EventEnvelope(...)``), or of a local name an import binds to such a name: for a
  rule that acts only where a class it knows by its suffix is constructed.

Any one hit lets the file through. Before the ``ast`` is built, ``may_admit`` asks the text
the same question cheaply: a name is only ever referenced with its last part spelled out (in
the chain itself, or in the import that binds it) and its first part spelled out in that
import, and a word is spelled out, so a source holding none of them cannot pass (strings
may be escaped or split, so a gate with strings always asks the ``ast``). The gate
over-approximates LibCST's ``QualifiedNameProvider`` (which sees only the bindings visible at
a node, and never follows an assignment), so it never drops a file a rule that matches by
qualified name could act on.
A file the ``ast`` cannot parse (newer syntax, bad encoding) passes every gate: LibCST decides.
"""

from __future__ import annotations

import ast
import keyword
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# a string constant worth parsing as a type annotation ("Optional[ThreadPoolExecutor]")
_ANNOTATION_LIKE = re.compile(r"\s*[A-Za-z_][\w.\[\], |]*\s*")
_MAX_ANNOTATION = 200
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")  # ASCII: as parsed
_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class SyntaxGate:
    """What the code must mention for a rule to act on a file; any one hit suffices."""

    names: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()
    strings: frozenset[str] = frozenset()
    called_suffixes: tuple[str, ...] = ()

    def __init__(self, *, names: Iterable[str] = (), words: Iterable[str] = (),
                 strings: Iterable[str] = (), called_suffixes: Iterable[str] = ()) -> None:
        object.__setattr__(self, "names", frozenset(names))
        object.__setattr__(self, "words", frozenset(words))
        object.__setattr__(self, "strings", frozenset(strings))
        object.__setattr__(self, "called_suffixes", tuple(sorted(set(called_suffixes))))

    @cached_property
    def _name_parts(self) -> tuple[tuple[str, str], ...]:
        """(first part, last part) of each dotted name: ``("threading", "Thread")``."""
        return tuple(sorted({(name.split(".", 1)[0], name.rsplit(".", 1)[-1])
                             for name in self.names if "." in name}))

    def may_admit(self, text: str) -> bool:
        """False when ``text`` spells out nothing the gate could admit (no ``ast`` needed).

        A dotted name is only ever reached through an import that spells its first part out
        (``import threading``, ``from threading import Thread as T``), and its last part is
        spelled out in that import or in the chain, so both must occur.
        """
        if self.strings:
            return True
        if any(word in text for word in (*self.words, *self.called_suffixes)):
            return True
        return any(last in text and first in text for first, last in self._name_parts) or any(
            name in text for name in self.names if "." not in name)

    def admits(self, index: SyntaxIndex) -> bool:
        return (
            not self.words.isdisjoint(index.words)
            or not self.strings.isdisjoint(index.strings)
            or not self.names.isdisjoint(index.referenced)
            or bool(self.called_suffixes) and self._calls_one(index)
        )

    def _calls_one(self, index: SyntaxIndex) -> bool:
        suffixes = self.called_suffixes
        return any(name.endswith(suffixes) or any(
            target.endswith(suffixes) for target in index.imports.get(name, ()))
            for name in index.called)


@dataclass
class SyntaxIndex:
    """Names, words and strings of one module's ``ast``, and its import bindings."""

    tree: ast.Module | None = None
    chains: set[str] = field(default_factory=set)  # every Name/Attribute chain and its prefixes
    words: set[str] = field(default_factory=set)
    strings: set[str] = field(default_factory=set)
    called: set[str] = field(default_factory=set)  # the last name of every call's callee
    # local name (or dotted prefix of ``import a.b``) -> what it imports, over all scopes
    imports: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, source: bytes) -> SyntaxIndex | None:
        """The index of ``source``, or None when the stdlib cannot parse it."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # invalid escapes etc.: not ours to report
                tree = ast.parse(source)
        except (SyntaxError, ValueError, UnicodeError, LookupError, RecursionError,
                MemoryError):
            return None
        index = cls(tree)
        try:
            index._add(tree)
        except RecursionError:
            return None
        return index

    @cached_property
    def referenced(self) -> frozenset[str]:
        """Every qualified name a chain of the module may stand for through its imports."""
        found = set(self.chains)
        for chain in self.chains:
            for prefix, rest in _splits(chain):
                for target in self.imports.get(prefix, ()):
                    found.add(target + rest)
        return frozenset(found)

    @cached_property
    def import_only(self) -> dict[str, str]:
        """Names bound by nothing but plain imports of one same thing, one of them at module
        level (``import threading``; ``from threading import Thread as T``): name -> target.

        For such a name LibCST's scope analysis can only ever say that target, so
        ``Codemod.qualified_names`` answers from here. ``early_use`` lists those also read at
        module level before their first import there (LibCST then says nothing).
        """
        return self._bindings[0]

    @cached_property
    def early_use(self) -> frozenset[str]:
        return self._bindings[1]

    @cached_property
    def _bindings(self) -> tuple[dict[str, str], frozenset[str]]:
        targets: dict[str, set[str]] = {}
        first_import: dict[str, tuple[int, int]] = {}  # at module level
        other: set[str] = set()  # bound some other way, somewhere
        loads: list[tuple[str, tuple[int, int]]] = []  # at module level, outside any body
        pending: list[tuple[ast.AST, bool]] = [(self.tree, False)] if self.tree else []
        while pending:
            node, nested = pending.pop()
            where = (getattr(node, "lineno", 0), getattr(node, "col_offset", 0))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = "." * node.level + (node.module or "") \
                    if isinstance(node, ast.ImportFrom) else None
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    if module is None and not alias.asname and "." in alias.name:
                        other.add(alias.name.split(".")[0])  # import a.b binds a and a.b
                        continue
                    local = alias.asname or alias.name
                    target = alias.name if module is None else (
                        module + alias.name if module.endswith(".") else f"{module}.{alias.name}")
                    targets.setdefault(local, set()).add(target)
                    if not nested and where < first_import.get(local, (1 << 30, 0)):
                        first_import[local] = where
                continue
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    if not nested:
                        loads.append((node.id, where))
                else:
                    other.add(node.id)
                continue
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                other.add(node.name)
                for child in (*node.decorator_list, *_signature(node)):
                    pending.append((child, nested))
                pending.extend((statement, True) for statement in node.body)
                continue
            if isinstance(node, ast.Lambda):
                other.update(arg.arg for arg in _arguments(node.args))
                pending.extend((default, nested) for default in
                               (*node.args.defaults, *node.args.kw_defaults) if default)
                pending.append((node.body, True))
                continue
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                other.update(node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                other.add(node.name)
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                other.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                other.add(node.rest)
            elif isinstance(node, ast.arg):
                other.add(node.arg)
            pending.extend((child, nested) for child in ast.iter_child_nodes(node))
        simple = {
            name: next(iter(found)) for name, found in targets.items()
            if len(found) == 1 and name not in other and name in first_import
        }
        early = frozenset(name for name, where in loads
                          if name in simple and where <= first_import[name])
        return simple, early

    def _add(self, tree: ast.AST) -> None:
        # type identity, most frequent first: this loop is most of a gate's cost
        chains, words, strings = self.chains, self.words, self.strings
        node: Any  # narrowed by ``kind`` below, not by isinstance (slower)
        for node in _nodes(tree):
            kind = type(node)
            if kind is ast.Name:
                chains.add(node.id)
                words.add(node.id)
            elif kind is ast.Attribute:
                chain = _chain(node)
                if chain is not None:
                    chains.add(chain)
                words.add(node.attr)
            elif kind is ast.Call:
                func = node.func
                if type(func) is ast.Subscript:  # EventEnvelope[T](...)
                    func = func.value
                if type(func) is ast.Name:
                    self.called.add(func.id)
                elif type(func) is ast.Attribute:
                    self.called.add(func.attr)
            elif kind is ast.Constant:
                value = node.value
                if type(value) is str:
                    strings.add(value)
                    if len(value) <= _MAX_ANNOTATION and _ANNOTATION_LIKE.fullmatch(value):
                        self._add_annotation(value)
            elif kind is ast.Import:
                for alias in node.names:
                    words.update(alias.name.split("."))
                    if alias.asname:
                        words.add(alias.asname)
                        self._bind(alias.asname, alias.name)
                    else:
                        parts = alias.name.split(".")
                        for end in range(1, len(parts) + 1):
                            prefix = ".".join(parts[:end])
                            self._bind(prefix, prefix)
            elif kind is ast.ImportFrom:
                module = "." * node.level + (node.module or "")
                base = module if module.endswith(".") or not module else module + "."
                for alias in node.names:
                    words.add(alias.name)
                    if alias.name == "*":
                        continue
                    if alias.asname:
                        words.add(alias.asname)
                    self._bind(alias.asname or alias.name, base + alias.name)
            elif kind in _DEFINITIONS:
                words.add(node.name)
            elif kind is ast.arg:
                words.add(node.arg)
            elif kind is ast.keyword and node.arg is not None:
                words.add(node.arg)

    def _add_annotation(self, text: str) -> None:
        dotted = text.strip()
        if _DOTTED.fullmatch(dotted):  # most strings: no parse needed to know the names
            head, *rest = dotted.split(".")
            if any(keyword.iskeyword(part) for part in rest):
                return  # a syntax error
            if head in ("None", "True", "False"):  # a constant: only its attributes are names
                self.words.update(rest)
            elif not keyword.iskeyword(head):
                parts = [head, *rest]
                self.chains.update(".".join(parts[:end]) for end in range(1, len(parts) + 1))
                self.words.update(parts)
            return
        self._add_parsed_annotation(text)

    def _add_parsed_annotation(self, text: str) -> None:
        try:
            parsed = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            return
        for node in ast.walk(parsed):
            if isinstance(node, (ast.Name, ast.Attribute)):
                chain = _chain(node)
                if chain is not None:
                    self.chains.add(chain)
                self.words.add(node.id if isinstance(node, ast.Name) else node.attr)

    def _bind(self, local: str, target: str) -> None:
        self.imports.setdefault(local, set()).add(target)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree``, as ``ast.walk`` yields them but in another order, faster (a
    stack, and each node type's fields looked up once): the index is a set of facts."""
    stack = [tree]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        yield node
        kind = type(node)
        fields = _FIELDS.get(kind)
        if fields is None:
            fields = _FIELDS[kind] = kind._fields
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        push(item)
            elif isinstance(value, ast.AST):
                push(value)


def _arguments(arguments: ast.arguments) -> list[ast.arg]:
    found = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    return found + [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> list[ast.AST]:
    """What a def or class evaluates where it stands: defaults, annotations, bases."""
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *node.keywords]
    arguments = node.args
    found: list[ast.AST] = [*arguments.defaults,
                            *(default for default in arguments.kw_defaults if default)]
    found += [arg.annotation for arg in _arguments(arguments) if arg.annotation]
    found += _arguments(arguments)  # the parameters themselves bind names
    return [*found, node.returns] if node.returns else found


def _chain(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _splits(chain: str) -> Iterator[tuple[str, str]]:
    """``a.b.c`` -> (``a``, ``.b.c``), (``a.b``, ``.c``), (``a.b.c``, ``""``)."""
    start = 0
    while True:
        dot = chain.find(".", start)
        if dot == -1:
            yield chain, ""
            return
        yield chain[:dot], chain[dot:]
        start = dot + 1


class SourceSyntax:
    """One file's stdlib index (built on first use) and the LibCST tree parsed from it."""

    def __init__(self, source: bytes) -> None:
        self._source = source
        self.tree: object | None = None  # the engine's parse; codemods trust the index on it

    @property
    def source(self) -> bytes:
        """The file's bytes, as read (the whole file, also when LibCST parses a slice)."""
        return self._source

    @cached_property
    def index(self) -> SyntaxIndex | None:
        return SyntaxIndex.of(self._source)
